"""The legacy HTTP+SSE transport (/sse) through the SDK's `sse_client`: handshake, tools/list and
a tool call with structured content.
"""

from __future__ import annotations

import anyio
import pytest
from conftest import CLIENT_INFO
from mcp.client import ClientSession
from mcp.client.sse import sse_client

pytestmark = pytest.mark.anyio


async def test_sse_client_lists_tools_and_calls_one(demo):
    with anyio.fail_after(15):
        async with sse_client(demo.sse_url, headers=demo.headers) as (read, write):
            async with ClientSession(read, write, client_info=CLIENT_INFO) as session:
                init = await session.initialize()
                assert init.protocol_version in ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
                listing = await session.list_tools()
                assert "linear_list_teams" in {tool.name for tool in listing.tools}
                result = await session.call_tool("linear_list_teams", {})
                assert not result.is_error, result.content
                keys = [team["key"] for team in result.structured_content["teams"]]
                assert keys and all(key in result.content[0].text for key in keys)
                await session.send_ping()
