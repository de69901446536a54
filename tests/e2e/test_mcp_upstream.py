"""An MCP server behind the gateway, through the official Python SDK: the demo's notes server
(`[adapters.notes] kind = "mcp"`) reached on Streamable HTTP at every era the SDK offers and on
the legacy SSE transport — its tools called, its resources listed and read under their
namespaced URIs, its prompt got with an argument.
"""

from __future__ import annotations

import anyio
import pytest
from conftest import ALL_ERAS, CLIENT_INFO, connect
from mcp import types
from mcp.client import ClientSession
from mcp.client.sse import sse_client

pytestmark = pytest.mark.anyio

NOTE = "manifold://notes/notes://note/note-0001"


async def until_notes(session) -> list[types.Tool]:
    """The notes server connects after the gateway starts: wait for its tools."""
    with anyio.fail_after(20):
        while True:
            tools = (await session.list_tools()).tools
            if any(tool.name == "notes_search_notes" for tool in tools):
                return tools
            await anyio.sleep(0.2)


async def exercise(session) -> None:
    await until_notes(session)
    found = await session.call_tool("notes_search_notes", {"query": ""})
    assert not found.is_error, found.content
    assert "note-0001" in found.content[0].text

    uris = [str(resource.uri) for resource in (await session.list_resources()).resources]
    assert NOTE in uris, uris
    templates = (await session.list_resource_templates()).resource_templates
    assert "manifold://notes/notes://note/{id}" in [t.uri_template for t in templates]
    read = await session.read_resource(NOTE)
    assert str(read.contents[0].uri) == NOTE
    assert read.contents[0].text

    prompts = [prompt.name for prompt in (await session.list_prompts()).prompts]
    assert "notes_summarize_note" in prompts, prompts
    got = await session.get_prompt("notes_summarize_note", {"note_id": "note-0001"})
    assert got.messages, got


@pytest.mark.parametrize("era", ALL_ERAS)
async def test_notes_server_through_streamable_http(demo, era):
    with anyio.fail_after(40):
        async with connect(demo.mcp_url, era) as session:
            await exercise(session)


async def test_notes_server_through_legacy_sse(demo):
    with anyio.fail_after(40):
        async with sse_client(demo.sse_url, headers=demo.headers) as (read, write):
            async with ClientSession(read, write, client_info=CLIENT_INFO) as session:
                await session.initialize()
                await exercise(session)
