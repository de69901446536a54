"""Wire-level checks the SDK cannot provoke, with plain httpx: JSON-RPC error codes for broken
bodies and unknown methods, HTTP statuses for bad Origin, protocol version, session and size,
session deletion, and the stateless 2026-07-28 envelope.
"""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import auth_headers

ACCEPT = "application/json, text/event-stream"
VERSION = "2025-11-25"
MODERN = "2026-07-28"


def messages_of(response: httpx.Response) -> list[dict]:
    """The JSON-RPC messages in a JSON or SSE response body."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = response.text.replace("\r\n", "\n").split("\n\n")
        datas = ["\n".join(l[5:].lstrip() for l in e.split("\n") if l.startswith("data:"))
                 for e in events]
        return [json.loads(d) for d in datas if d.strip()]
    if not response.content:
        return []
    body = response.json()
    return body if isinstance(body, list) else [body]


def post(url: str, body: str | bytes | dict, headers: dict | None = None) -> httpx.Response:
    content = json.dumps(body) if isinstance(body, dict) else body
    all_headers = {"content-type": "application/json", "accept": ACCEPT, **auth_headers(url),
                   **(headers or {})}
    return httpx.post(url, content=content, headers=all_headers, timeout=10)


def error_code(response: httpx.Response) -> int | None:
    errors = [m["error"]["code"] for m in messages_of(response) if "error" in m]
    return errors[0] if errors else None


@pytest.fixture
def session(demo) -> dict:
    """Headers of a fresh initialized 2025-11-25 session."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": VERSION, "capabilities": {},
        "clientInfo": {"name": "raw-e2e", "version": "1"}}}
    response = post(demo.mcp_url, init)
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    headers = {"mcp-session-id": session_id, "mcp-protocol-version": VERSION}
    done = post(demo.mcp_url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
    assert done.status_code == 202, done.text
    return headers


def test_malformed_json_is_400_with_parse_error(demo):
    response = post(demo.mcp_url, '{"jsonrpc":"2.0","id":1,"method":"initia')
    assert response.status_code == 400
    assert error_code(response) == -32700, response.text


def test_invalid_request_is_400_with_invalid_request(demo):
    response = post(demo.mcp_url, {"jsonrpc": "1.0", "id": 1, "method": "ping"})
    assert response.status_code == 400
    assert error_code(response) == -32600, response.text


def test_unknown_method_is_method_not_found(demo, session):
    response = post(demo.mcp_url, {"jsonrpc": "2.0", "id": 7, "method": "no/such/method"}, session)
    assert error_code(response) == -32601, response.text


def test_foreign_origin_is_403(demo, session):
    headers = {**session, "origin": "https://evil.example"}
    response = post(demo.mcp_url, {"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers)
    assert response.status_code == 403, response.text


def test_unsupported_protocol_version_header_is_400(demo, session):
    headers = {**session, "mcp-protocol-version": "1999-01-01"}
    response = post(demo.mcp_url, {"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers)
    assert response.status_code == 400, response.text


def test_unknown_session_is_404(demo):
    headers = {"mcp-session-id": "no-such-session", "mcp-protocol-version": VERSION}
    response = post(demo.mcp_url, {"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers)
    assert response.status_code == 404, response.text


def test_deleted_session_is_404_afterwards(demo, session):
    deleted = httpx.delete(demo.mcp_url, headers={**session, **demo.headers}, timeout=10)
    assert deleted.status_code == 204, deleted.status_code
    response = post(demo.mcp_url, {"jsonrpc": "2.0", "id": 2, "method": "ping"}, session)
    assert response.status_code == 404, response.text


def test_body_over_limit_is_413(demo, session):
    pad = "x" * (5 * 1024 * 1024)
    body = f'{{"jsonrpc":"2.0","id":3,"method":"ping","params":{{"pad":"{pad}"}}}}'
    response = post(demo.mcp_url, body, session)
    assert response.status_code == 413


def test_stateless_2026_discover_and_tools_list_without_session(demo):
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw-e2e", "version": "1"}}
    headers = {"mcp-protocol-version": MODERN, "mcp-method": "server/discover"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}
    response = post(demo.mcp_url, body, headers)
    assert response.status_code == 200, response.text
    assert "mcp-session-id" not in response.headers
    supported = messages_of(response)[0]["result"]["supportedVersions"]
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", MODERN]:
        assert version in supported, supported

    headers["mcp-method"] = "tools/list"
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta}}
    response = post(demo.mcp_url, body, headers)
    assert response.status_code == 200, response.text
    names = {tool["name"] for tool in messages_of(response)[0]["result"]["tools"]}
    assert "linear_search_issues" in names, sorted(names)
