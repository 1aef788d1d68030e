"""Drives `qsearch mcp --http` with the official MCP Python SDK's streamable HTTP client.

Run by tests/mcp.rs with one JSON argument: the server's URL, the indexed folder and a file
outside it. Several clients connect at once, each with its own session, and each does what an
agent would: initialize, list tools, search, read a hit, be refused outside the folder. Then a
request that names a host other than loopback is refused (DNS rebinding guard). Prints one line
per step; any failed check raises, and the exit status is not 0.

With "token" in the configuration (a server off loopback), every client sends it as
`Authorization: Bearer TOKEN`, as a user configures the SDK's HTTP client, and the checks of a
foreign Host (not refused off loopback: the token is the guard there) are left to tests/mcp.rs.
"""

import asyncio
import contextlib
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from mcp_helpers import call, step, text_of  # tests/mcp_helpers.py, beside this file

CFG = json.loads(sys.argv[1])
URL = CFG["url"]
ROOT = CFG["root"]
TOKEN = CFG.get("token")


@contextlib.asynccontextmanager
async def connect():
    """The SDK's transport, with the bearer token when the server needs one."""
    if not TOKEN:
        async with streamable_http_client(URL) as streams:
            yield streams
        return
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with streamable_http_client(URL, http_client=http) as streams:
            yield streams


async def agent(n):
    async with connect() as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "qsearch", init.server_info
            tools = {t.name for t in (await session.list_tools()).tools}
            assert tools == {"search", "get", "status", "index"}, tools

            out = (await call(session, "search", {"query": "lost commit reflog", "k": 5})).structured_content
            first = out["hits"][0]
            assert first["path"].endswith("git.md"), out
            assert first["line"] == 5 and first["heading"] == "Git", first
            out = (await call(session, "search", {"query": "risotto", "mode": "keyword"})).structured_content
            assert [h["path"].rsplit("/", 1)[1] for h in out["hits"]] == ["cook.md"], out

            got = (await call(session, "get", {"chunk_id": first["chunk_id"]})).structured_content
            assert got["path"].endswith("git.md") and "reflog" in got["text"], got
            got = (await call(session, "get", {"path": "code/own.md"})).structured_content
            assert got["text"].startswith("   1\t# Ownership"), got

            for args, wording in [
                ({"path": "../secret.txt"}, "`..` is not allowed"),
                ({"path": CFG["outside"]}, "outside the indexed folders"),
                ({"path": "escape.md"}, "leads outside its indexed folder"),
            ]:
                result = await session.call_tool("get", args)
                said = text_of(result)
                assert result.is_error, f"client {n}: get {args} was not refused: {said[:200]}"
                assert wording in said, f"get {args}: expected {wording!r} in {said!r}"
                assert "TOP SECRET" not in said, "a refused read leaked the file"

            # Several calls in flight on this session too.
            batch = await asyncio.gather(*[call(session, "search", {"query": q}) for q in ("reflog", "risotto", "borrow checker")])
            assert all(r.structured_content["hits"] for r in batch), batch
            return init.protocol_version


async def main():
    versions = await asyncio.gather(*[agent(n) for n in range(3)])
    step(f"3 clients at once (protocol {versions[0]}): initialize, list tools, search, get, get refused outside the folder")
    if TOKEN:
        step("the clients were admitted with the bearer token")
        return

    # A page elsewhere that makes the browser post to this port names its own host: refused.
    async with httpx2.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "rebind", "version": "0"}}}
        headers = {"Host": "attacker.example", "Accept": "application/json, text/event-stream"}
        response = await http.post(URL, json=body, headers=headers)
        assert response.status_code == 403, (response.status_code, response.text)
        response = await http.post(URL.rsplit("/", 1)[0] + "/elsewhere", json=body)
        assert response.status_code == 404, (response.status_code, response.text)
    step("a foreign Host header is refused (403); paths other than /mcp are 404")


asyncio.run(main())
