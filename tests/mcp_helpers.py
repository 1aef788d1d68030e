"""What both MCP test clients (tests/mcp_client.py over stdio, tests/mcp_http_client.py over
HTTP) share: a step printed as done, a tool result's text, and a call that must succeed."""


def step(what):
    print(f"ok: {what}", flush=True)


def text_of(result):
    return "".join(c.text for c in result.content if c.type == "text")


async def call(session, tool, args=None):
    result = await session.call_tool(tool, args or {})
    assert not result.is_error, f"{tool} {args} failed: {text_of(result)}"
    return result
