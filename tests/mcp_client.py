"""Drives `qsearch mcp` with the official MCP Python SDK (PyPI `mcp`), as an agent would.

Run by tests/mcp.rs with one JSON argument: the qsearch binary, the server's environment, the
indexed folder and a file outside it. A watcher (started by the Rust test) owns the index.
Prints one line per step; any failed check raises, and the exit status is not 0.
"""

import asyncio
import datetime
import json
import sys
import time

import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from mcp_helpers import call, step, text_of  # tests/mcp_helpers.py, beside this file

CFG = json.loads(sys.argv[1])
ROOT = CFG["root"]


async def refused(session, args, wording):
    result = await session.call_tool("get", args)
    said = text_of(result)
    assert result.is_error, f"get {args} was not refused: {said[:200]}"
    assert wording in said, f"get {args}: expected {wording!r} in {said!r}"
    assert "TOP SECRET" not in said, "a refused read leaked the file"


async def main():
    params = StdioServerParameters(command=CFG["qsearch"], args=["mcp"], env=CFG["env"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "qsearch", init.server_info
            assert init.capabilities.tools is not None
            step(f"initialize (protocol {init.protocol_version})")

            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert set(tools) == {"search", "get", "status", "index"}, set(tools)
            schema = tools["search"].input_schema
            assert schema["required"] == ["query"], schema
            assert "query" in schema["properties"] and "path" in schema["properties"], schema
            assert all(tools[t].description for t in tools)
            assert tools["search"].annotations.read_only_hint is True
            step("list tools with schemas and descriptions")

            # Search: the expected files, with what an agent needs to act on a hit.
            out = (await call(session, "search", {"query": "lost commit reflog", "k": 5})).structured_content
            first = out["hits"][0]
            assert first["path"].endswith("git.md"), out
            for key in ("line", "end_line", "heading", "score", "match", "snippet", "chunk_id", "date"):
                assert key in first, (key, first)
            # The file's modification time (no frontmatter date), RFC 3339: written a moment ago.
            age = datetime.datetime.now(datetime.timezone.utc) - datetime.datetime.fromisoformat(first["date"])
            assert datetime.timedelta(0) <= age < datetime.timedelta(hours=1), first["date"]
            assert first["line"] == 5 and first["heading"] == "Git", first
            out = (await call(session, "search", {"query": "risotto", "mode": "keyword"})).structured_content
            assert [h["path"].rsplit("/", 1)[1] for h in out["hits"]] == ["cook.md"], out
            assert out["hits"][0]["tags"] == ["food/italian", "kitchen"], out
            out = (await call(session, "search", {"query": "ownership borrow", "path": "code/**"})).structured_content
            assert out["hits"] and all("/code/" in h["path"] for h in out["hits"]), out
            out = (await call(session, "search", {"query": "borrow checker", "path": "nothing/**"})).structured_content
            assert out["hits"] == [], out
            step("search returns the expected files (hybrid, keyword, path glob)")

            # Filters: frontmatter tags (nested ones too), type and modification time.
            assert {"type", "tags", "since", "until"} <= set(schema["properties"]), schema
            out = (await call(session, "search", {"query": "constant stirring", "tags": ["#Food"], "type": "markdown", "since": "1d"})).structured_content
            assert [h["path"].rsplit("/", 1)[1] for h in out["hits"]] == ["cook.md"], out
            assert out["hits"][0]["tags"] == ["food/italian", "kitchen"], out
            out = (await call(session, "search", {"query": "risotto", "tags": ["kitchen", "nothing"]})).structured_content
            assert out["hits"] == [] and any("no indexed file matches the filter (tag kitchen and nothing)" in n for n in out["notes"]), out
            out = (await call(session, "search", {"query": "risotto", "until": "2000-01-01"})).structured_content
            assert out["hits"] == [], out
            result = await session.call_tool("search", {"query": "risotto", "since": "soon"})
            assert result.is_error and "cannot read `soon` as a date" in text_of(result), text_of(result)
            step("search filters by tag, type and time; a value it cannot read is refused with the reason")

            # Get inside a root: numbered lines, by path and by a hit's chunk.
            result = await call(session, "get", {"path": "git.md", "start_line": 3, "end_line": 5})
            got = result.structured_content
            assert (got["start_line"], got["end_line"], got["total_lines"]) == (3, 5, 5), got
            assert got["text"] == "   3\t## Undo\n   4\t\n   5\tUse git reflog to find a lost commit.\n", got
            assert "Use git reflog" in text_of(result)
            got = (await call(session, "get", {"path": f"{ROOT}/code/own.md"})).structured_content
            assert got["text"].startswith("   1\t# Ownership"), got
            got = (await call(session, "get", {"chunk_id": first["chunk_id"]})).structured_content
            assert got["path"].endswith("git.md") and "reflog" in got["text"], got
            step("get inside a root returns the lines")

            # Get outside: refused, with a clear reason.
            await refused(session, {"path": "../secret.txt"}, "`..` is not allowed")
            await refused(session, {"path": "code/../../secret.txt"}, "`..` is not allowed")
            await refused(session, {"path": CFG["outside"]}, "outside the indexed folders")
            await refused(session, {"path": "/etc/passwd"}, "outside the indexed folders")
            await refused(session, {"path": "escape.md"}, "leads outside its indexed folder")
            await refused(session, {"path": "ignored.md"}, "not in the index")
            step("get outside a root is refused (.., absolute elsewhere, symlink out, unindexed)")

            # Malformed requests: JSON-RPC errors, and the server keeps serving. (Arguments that
            # do not fit a tool's schema are a tool error the model can read and correct, as the
            # MCP specification asks since 2025-11-25.)
            result = await session.call_tool("search", {"query": 5, "k": "ten"})
            assert result.is_error and "parameters" in text_of(result), result
            try:
                await session.send_request(types.Request(method="qsearch/no-such-method", params=None), types.EmptyResult)
                raise AssertionError("an unknown method was accepted")
            except MCPError as e:
                assert e.code in (types.METHOD_NOT_FOUND, types.INVALID_REQUEST), (e.code, e.message)
            try:
                await session.call_tool("no-such-tool", {})
                raise AssertionError("an unknown tool was accepted")
            except MCPError as e:
                assert e.code in (types.INVALID_PARAMS, types.METHOD_NOT_FOUND), (e.code, e.message)
            await call(session, "search", {"query": "risotto"})
            step("malformed requests get JSON-RPC errors (bad arguments a tool error); the server keeps serving")

            status = (await call(session, "status")).structured_content
            assert status["folders"] == [ROOT], status
            assert status["files"] == 3 and status["chunks"] == 3 and status["pending"] == 0, status
            assert status["tags"] == [{"tag": "food/italian", "documents": 1}, {"tag": "kitchen", "documents": 1}], status
            assert status["watcher"] is not None and status["writer"]["role"] == "watch", status
            assert status["model"]["state"] in ("ready", "loading"), status
            step("status: folders, files, chunks, pending, model, watcher")

            out = (await call(session, "index")).structured_content
            assert out["refreshed"] is False and "watcher" in out["note"], out
            step("index while a watcher owns the index changes nothing and says so")

            # The watcher writes while several calls run at once: none fails, new files show up.
            async def write_files():
                for i in range(8):
                    with open(f"{ROOT}/new{i}.md", "w") as f:
                        f.write(f"# New {i}\n\nzebrafinch{i} sighting notes\n")
                    await asyncio.sleep(0.15)

            async def search_meanwhile():
                calls = 0
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    batch = [call(session, "search", {"query": f"zebrafinch{i} sighting"}) for i in range(4)]
                    batch.append(call(session, "status"))
                    await asyncio.gather(*batch)
                    calls += len(batch)
                    out = (await call(session, "search", {"query": "zebrafinch7", "mode": "keyword"})).structured_content
                    if out["hits"] and out["hits"][0]["path"].endswith("new7.md"):
                        return calls
                raise AssertionError("the watcher's changes never showed up in the server's results")

            _, calls = await asyncio.gather(write_files(), search_meanwhile())
            out = (await call(session, "search", {"query": "zebrafinch3 sighting", "mode": "hybrid"})).structured_content
            assert out["hits"][0]["path"].endswith("new3.md"), out
            step(f"a watcher writing meanwhile: {calls} concurrent calls, no error, new files found")
    step("client closed")


asyncio.run(main())
