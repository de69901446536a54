"""Every protocol era through the SDK's Streamable HTTP client: connect, list and page tools,
read Linear data, page tool results, create an issue and read it back.

`auto` is the SDK's default flow (server/discover at 2026-07-28, falling back to initialize);
the dated eras force that initialize version (see `conftest.connect`).
"""

from __future__ import annotations

import re
import uuid

import mcp_types as types
import pytest
from conftest import ALL_ERAS, AUTO, connect

pytestmark = pytest.mark.anyio

# What alice (staff, writers) sees of Linear under the demo policies: every tool but the
# destructive update_issue, which only admins may see and call.
EXPECTED_TOOLS = {
    f"linear_{name}"
    for name in ["search_issues", "list_issues", "get_issue", "create_issue",
                 "add_comment", "list_teams", "list_projects", "list_workflow_states"]
}
HINTS = ["read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint"]
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
era_param = pytest.mark.parametrize("era", ALL_ERAS)


async def call_ok(session, name: str, arguments: dict) -> tuple[dict, str]:
    """Calls a tool that must succeed; returns (structuredContent, text)."""
    result = await session.call_tool(name, arguments)
    text = "\n".join(c.text for c in result.content if c.type == "text")
    assert not result.is_error, f"{name}({arguments}) failed: {text}"
    assert isinstance(result.structured_content, dict), f"{name}: no structuredContent"
    return result.structured_content, text


def assert_issue_in_text(issue: dict, text: str) -> None:
    for key in ["identifier", "title", "id", "url"]:
        assert issue[key] in text, f"text does not mention {key}={issue[key]!r}:\n{text}"
    assert issue["state"]["name"] in text


def assert_page_in_text(page: dict, text: str) -> None:
    for issue in page["issues"]:
        assert_issue_in_text(issue, text)
    if page["next_cursor"] is not None:
        assert page["next_cursor"] in text, "text does not give the next cursor"


@era_param
async def test_connects_at_the_requested_era(demo, era):
    async with connect(demo.mcp_url, era) as session:
        assert session.protocol_version == ("2026-07-28" if era == AUTO else era)


async def list_every_tool(session) -> list:
    """Every tool, following next_cursor to the end."""
    tools, cursor = [], None
    for _ in range(100):
        params = None if cursor is None else types.PaginatedRequestParams(cursor=cursor)
        listing = await session.list_tools(params=params)
        tools += listing.tools
        cursor = listing.next_cursor
        if cursor is None:
            return tools
    raise AssertionError("tools/list never ended")


@era_param
async def test_tools_list_has_every_tool_with_names_hints_and_output_schemas(demo, era):
    async with connect(demo.mcp_url, era) as session:
        tools = await list_every_tool(session)
    names = [tool.name for tool in tools]
    assert len(names) == len(set(names)), "a tool is listed twice"
    assert EXPECTED_TOOLS <= set(names), sorted(EXPECTED_TOOLS - set(names))
    assert "linear_update_issue" not in names, "destructive tools are for admins only"
    for tool in tools:
        assert NAME_RE.match(tool.name), tool.name
        assert tool.annotations is not None, f"{tool.name}: no annotations"
        for hint in HINTS:
            value = getattr(tool.annotations, hint)
            assert isinstance(value, bool), f"{tool.name}: {hint} is {value!r}, not a boolean"
        assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
        assert tool.input_schema.get("type") == "object", tool.name


@era_param
async def test_tools_list_pages_with_cursor_without_duplicates(paged_demo, era):
    async with connect(paged_demo.mcp_url, era) as session:
        everything = {tool.name for tool in await list_every_tool(session)}
        pages, names, cursor = 0, [], None
        while True:
            params = None if cursor is None else types.PaginatedRequestParams(cursor=cursor)
            listing = await session.list_tools(params=params)
            pages += 1
            assert len(listing.tools) <= 2
            names += [tool.name for tool in listing.tools]
            cursor = listing.next_cursor
            if cursor is None:
                break
            assert pages < 100, "tools/list never ended"
    assert pages == (len(everything) + 1) // 2
    assert len(names) == len(set(names)), f"duplicates across pages: {names}"
    assert set(names) == everything and EXPECTED_TOOLS <= everything


@era_param
async def test_read_tools_return_structured_content_matching_text(demo, era):
    async with connect(demo.mcp_url, era) as session:
        await session.list_tools()  # lets the SDK validate structuredContent against outputSchema
        teams, text = await call_ok(session, "linear_list_teams", {})
        assert teams["teams"], "no teams"
        for team in teams["teams"]:
            assert team["key"] in text and team["name"] in text and team["id"] in text

        found, text = await call_ok(session, "linear_search_issues", {"query": "webhook", "first": 3})
        assert found["issues"], "search for 'webhook' found nothing"
        assert all("webhook" in (i["title"]).lower() for i in found["issues"][:1])
        assert_page_in_text(found, text)

        seen, cursor = [], None
        for page_number in range(3):
            arguments = {"first": 2} | ({"cursor": cursor} if cursor else {})
            page, text = await call_ok(session, "linear_list_issues", arguments)
            assert len(page["issues"]) == 2, f"page {page_number}: {page['issues']}"
            assert_page_in_text(page, text)
            seen += [issue["id"] for issue in page["issues"]]
            cursor = page["next_cursor"]
            assert cursor, f"page {page_number} has no next_cursor"
        assert len(seen) == len(set(seen)), f"list_issues pages repeat issues: {seen}"

        wanted = found["issues"][0]
        got, text = await call_ok(session, "linear_get_issue", {"id": wanted["identifier"]})
        issue = got["issue"]
        assert issue["id"] == wanted["id"] and issue["title"] == wanted["title"]
        assert "description" in issue and "comments" in issue
        assert_issue_in_text(issue, text)


@era_param
async def test_created_issue_can_be_read_back(demo, era):
    title = f"e2e {era} {uuid.uuid4().hex[:8]}"
    async with connect(demo.mcp_url, era) as session:
        await session.list_tools()
        teams, _ = await call_ok(session, "linear_list_teams", {})
        team = teams["teams"][0]
        arguments = {"team_id": team["id"], "title": title, "description": "Made by the e2e suite.",
                     "priority": 3}
        created, text = await call_ok(session, "linear_create_issue", arguments)
        issue = created["issue"]
        assert issue["title"] == title and issue["team"]["id"] == team["id"]
        assert issue["identifier"].startswith(team["key"] + "-")
        assert issue["identifier"] in text and title in text

        got, text = await call_ok(session, "linear_get_issue", {"id": issue["identifier"]})
        assert got["issue"]["id"] == issue["id"]
        assert got["issue"]["title"] == title
        assert got["issue"]["description"] == "Made by the e2e suite."
        assert got["issue"]["priority"] == 3
        assert_issue_in_text(got["issue"], text)
