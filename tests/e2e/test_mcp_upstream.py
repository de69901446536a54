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


# The notes server asks the calling client: `pick_note` asks the user which note they mean
# (elicitation), `suggest_title` asks the client's model (sampling). The gateway speaks
# 2026-07-28 to the notes server, which asks in `input_required` rounds; a 2026-07-28 client
# gets those rounds (the SDK's `Client` answers and retries), a session of an earlier era is
# asked on its request's stream.

TITLE = "Quarterly plan"


async def suggest(context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = params.messages[0].content
    assert "Suggest a short title" in asked.text, asked
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=TITLE), model="e2e-model"
    )


async def pick_first(context, params: types.ElicitRequestParams) -> types.ElicitResult:
    offered = params.requested_schema["properties"]["note"]["enum"]
    return types.ElicitResult(action="accept", content={"note": offered[0]})


ANSWERS = {"sampling_callback": suggest, "elicitation_callback": pick_first}


async def asks(call) -> None:
    titled = await call("notes_suggest_title", {"body": "Goals and budget for next quarter."})
    assert not titled.is_error, titled.content
    assert titled.content[0].text == f"Suggested title: {TITLE}", titled.content
    picked = await call("notes_pick_note", {"query": ""})
    assert not picked.is_error, picked.content
    assert picked.content[0].text.startswith("The user picked note-"), picked.content


async def test_a_2026_client_answers_the_notes_servers_questions_in_rounds(demo):
    from conftest import auth_headers
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    with anyio.fail_after(60):
        async with create_mcp_http_client(headers=auth_headers(demo.mcp_url)) as http:
            transport = streamable_http_client(demo.mcp_url, http_client=http)
            async with Client(transport, mode="auto", client_info=CLIENT_INFO, cache=None,
                              **ANSWERS) as client:
                await until_notes(client.session)
                assert client.session.protocol_version == "2026-07-28"
                await asks(client.call_tool)


@pytest.mark.parametrize("era", ["2025-11-25"])
async def test_a_session_client_is_asked_the_notes_servers_questions_on_its_stream(demo, era):
    with anyio.fail_after(60):
        async with connect(demo.mcp_url, era, **ANSWERS) as session:
            await until_notes(session)
            await asks(session.call_tool)


async def test_a_client_that_cannot_answer_gets_the_missing_capability(demo):
    with anyio.fail_after(60):
        async with connect(demo.mcp_url, "2025-11-25") as session:
            await until_notes(session)
            with pytest.raises(Exception) as refused:
                await session.call_tool("notes_pick_note", {"query": ""})
            assert "elicitation" in str(refused.value), refused.value
