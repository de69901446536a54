"""Behaviour beyond plain calls, through the SDK client: cancellation of a slow call, progress
notifications, provider rate limiting, logging/setLevel, and JSON-RPC errors for bad calls.

The Linear emulator's `/_sandbox` switches (delay, throttle, request log) drive the slow and
rate-limited cases; every test that turns one on turns it off again.
"""

from __future__ import annotations

import uuid
import warnings

import anyio
import httpx
import pytest
from conftest import AUTO, HANDSHAKE_VERSIONS, connect
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio

INVALID_PARAMS = -32602
SLOW_MILLIS = 1500


async def upstream_log(demo) -> list[dict]:
    """Every request the Linear emulator received (it logs them before any throttle or delay)."""
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(f"{demo.linear}/_sandbox/requests")).raise_for_status().json()


async def mutations_with(demo, text: str) -> list[dict]:
    """Upstream requests whose variables mention `text`."""
    return [r for r in await upstream_log(demo) if text in str(r.get("variables"))]


async def team_id(session) -> str:
    result = await session.call_tool("linear_list_teams", {})
    return result.structured_content["teams"][0]["id"]


@pytest.mark.parametrize("era", [AUTO, "2025-11-25", "2024-11-05"])
async def test_cancelling_a_slow_call_leaves_the_session_usable_and_the_call_undone(demo, era):
    marker = uuid.uuid4().hex
    async with connect(demo.mcp_url, era) as session:
        team = await team_id(session)
        demo.set_delay(SLOW_MILLIS)
        completed = False
        try:
            with anyio.fail_after(10):
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tg:

                        async def cancel_once_upstream_has_it():
                            while not await mutations_with(demo, marker):
                                await anyio.sleep(0.02)
                            scope.cancel()  # the SDK abandons the request: notifications/cancelled

                        tg.start_soon(cancel_once_upstream_has_it)
                        await session.call_tool(
                            "linear_create_issue", {"team_id": team, "title": f"cancelled {marker}"}
                        )
                        completed = True
            assert scope.cancel_called and not completed, "the slow call was not cancelled"
        finally:
            demo.set_delay(0)

        with anyio.fail_after(3):  # the session still answers promptly
            if era != AUTO:  # ping does not exist at 2026-07-28
                await session.send_ping()
            await session.call_tool("linear_list_teams", {})

        # Wait past the emulator delay, then check the create never took effect upstream.
        await anyio.sleep(SLOW_MILLIS / 1000 + 0.3)
        found = await session.call_tool("linear_search_issues", {"query": marker})
        assert found.structured_content["issues"] == [], "the cancelled create_issue still happened"


@pytest.mark.parametrize("era", [AUTO, "2025-11-25"])
async def test_progress_notifications_reach_the_callback(demo, era):
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    async with connect(demo.mcp_url, era) as session:
        with anyio.fail_after(10):
            result = await session.call_tool("linear_list_teams", {}, progress_callback=on_progress)
    assert not result.is_error
    assert updates, "no progress notification arrived"
    values = [progress for progress, _, _ in updates]
    assert values == sorted(values), f"progress went backwards: {updates}"


async def test_rate_limited_provider_is_retried_within_budget(demo):
    async with connect(demo.mcp_url) as session:
        before = len(await upstream_log(demo))
        demo.throttle(fail_next=2, retry_after_secs=0)
        try:
            with anyio.fail_after(15):
                result = await session.call_tool("linear_list_teams", {})
        finally:
            demo.throttle(fail_next=0, retry_after_secs=0)
        assert not result.is_error, result.content
        assert result.structured_content["teams"]
        after = len(await upstream_log(demo))
        assert after - before >= 3, "expected two 429s and one retry to reach the emulator"


async def test_rate_limit_with_retry_after_one_second_still_succeeds(demo):
    async with connect(demo.mcp_url, "2025-06-18") as session:
        demo.throttle(fail_next=1, retry_after_secs=1)
        try:
            with anyio.fail_after(15):
                result = await session.call_tool("linear_search_issues", {"query": "webhook"})
        finally:
            demo.throttle(fail_next=0, retry_after_secs=0)
    assert not result.is_error, result.content
    assert result.structured_content["issues"]


@pytest.mark.parametrize("era", HANDSHAKE_VERSIONS)
async def test_set_logging_level_succeeds(demo, era):
    async with connect(demo.mcp_url, era) as session:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated in the SDK as of 2026-07-28
            await session.set_logging_level("debug")
        await session.send_ping()


@pytest.mark.parametrize("era", [AUTO, "2025-11-25", "2024-11-05"])
async def test_unknown_tool_is_an_invalid_params_error(demo, era):
    async with connect(demo.mcp_url, era) as session:
        with pytest.raises(MCPError) as caught:
            await session.call_tool("linear_no_such_tool", {})
    assert caught.value.code == INVALID_PARAMS, caught.value.error


@pytest.mark.parametrize("era", [AUTO, "2025-11-25", "2024-11-05"])
@pytest.mark.parametrize(
    "name, arguments",
    [
        ("linear_search_issues", {}),  # missing required query
        ("linear_search_issues", {"query": 5}),  # wrong type
        ("linear_search_issues", {"query": "x", "bogus": True}),  # additionalProperties false
        ("linear_list_issues", {"first": 0}),  # below minimum
        ("linear_get_issue", {"id": ""}),  # below minLength
    ],
    ids=["missing", "type", "extra", "minimum", "min-length"],
)
async def test_arguments_failing_the_input_schema_are_tool_errors_the_model_reads(
    demo, era, name, arguments
):
    # MCP 2025-11-25 (SEP-1303): a tool execution error, so the model can correct its call.
    async with connect(demo.mcp_url, era) as session:
        result = await session.call_tool(name, arguments)
    assert result.is_error
    assert result.content[0].text.startswith(f"invalid arguments for {name}: "), result


async def test_provider_failure_is_a_tool_result_with_is_error(demo):
    async with connect(demo.mcp_url) as session:
        result = await session.call_tool("linear_get_issue", {"id": "NOPE-99999"})
    assert result.is_error
    assert result.content and result.content[0].text
