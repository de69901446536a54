"""The MCP Python SDK's own OAuth client against `manifold demo`, unattended: discovery from the
401 challenge, dynamic client registration, authorization with the sandbox IdP's login page and
the consent page driven over HTTP by the redirect handler, the code exchange, tools, and a
refresh (rotation; reusing the old refresh token then revokes the whole family).
"""

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import parse_qs, urljoin, urlparse

import anyio
import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from conftest import CLIENT_INFO

pytestmark = pytest.mark.anyio

# Never contacted: the redirect handler stops at it and hands the code to the SDK.
REDIRECT = "http://127.0.0.1:9/oauth/callback"


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def hidden_fields(html: str) -> dict[str, str]:
    return {unescape(name): unescape(value) for name, value in
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)}


class Browser:
    """Follows the authorization redirects like a browser (cookies kept), picking `user` at the
    sandbox IdP and approving the consent page, until the redirect to the client."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.http = httpx.Client(follow_redirects=False, timeout=10)
        self.pages: list[str] = []

    def drive(self, url: str) -> dict[str, str]:
        response = self.http.get(url)
        for _ in range(10):
            if response.status_code in (302, 303):
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(REDIRECT):
                    query = parse_qs(urlparse(location).query)
                    return {key: values[0] for key, values in query.items()}
                response = self.http.get(location)
            elif response.status_code == 200 and 'action="/sandbox-idp/authorize"' in response.text:
                self.pages.append("login")
                form = {**hidden_fields(response.text), "user": self.user}
                response = self.http.post(urljoin(str(response.url), "/sandbox-idp/authorize"), data=form)
            elif response.status_code == 200 and 'action="/authorize/consent"' in response.text:
                self.pages.append("consent")
                form = {**hidden_fields(response.text), "decision": "approve"}
                response = self.http.post(urljoin(str(response.url), "/authorize/consent"), data=form)
            else:
                raise AssertionError(f"unexpected page {response.status_code}: {response.text[:500]}")
        raise AssertionError("too many redirects")


def provider_for(demo, storage: MemoryStorage, browser: Browser) -> OAuthClientProvider:
    result: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        result.clear()
        result.update(await anyio.to_thread.run_sync(browser.drive, url))

    async def callback_handler() -> AuthorizationCodeResult:
        assert "code" in result, result
        return AuthorizationCodeResult(code=result["code"], state=result.get("state"), iss=result.get("iss"))

    metadata = OAuthClientMetadata(
        client_name="manifold-e2e-oauth", redirect_uris=[REDIRECT],
        grant_types=["authorization_code", "refresh_token"], response_types=["code"],
    )
    return OAuthClientProvider(server_url=demo.mcp_url, client_metadata=metadata, storage=storage,
                               redirect_handler=redirect_handler, callback_handler=callback_handler)


async def list_and_call(demo, provider: OAuthClientProvider) -> None:
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        transport = streamable_http_client(demo.mcp_url, http_client=http)
        async with Client(transport, mode="auto", client_info=CLIENT_INFO, cache=None) as client:
            listing = await client.session.list_tools()
            assert "linear_list_teams" in {tool.name for tool in listing.tools}
            result = await client.session.call_tool("linear_list_teams", {})
            assert not result.is_error, result.content


def mcp_status(demo, token: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "oauth-e2e", "version": "1"}}}
    headers = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {token}"}
    return httpx.post(demo.mcp_url, json=body, headers=headers, timeout=10).status_code


async def test_sdk_oauth_flow_discovery_dcr_login_consent_tools_and_refresh(demo):
    storage, browser = MemoryStorage(), Browser("alice")
    provider = provider_for(demo, storage, browser)
    with anyio.fail_after(60):
        await list_and_call(demo, provider)
    assert browser.pages == ["login", "consent"]
    assert storage.client_info is not None and storage.client_info.client_id
    first = storage.tokens
    assert first is not None and first.refresh_token and first.access_token
    assert mcp_status(demo, first.access_token) == 200

    # The SDK refreshes once the access token has expired; the refresh token rotates.
    provider.context.token_expiry_time = time.time() - 1
    with anyio.fail_after(60):
        await list_and_call(demo, provider)
    second = storage.tokens
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert browser.pages == ["login", "consent"], "a refresh needs no browser"

    # One retry of the rotated-out refresh token within auth.refresh_retry_grace (a client
    # that lost the answer) gets the same pair again; the next reuse is refused and revokes
    # the whole family.
    refresh = {"grant_type": "refresh_token", "refresh_token": first.refresh_token,
               "client_id": storage.client_info.client_id}
    retry = httpx.post(f"{demo.base_url}/token", data=refresh, timeout=10)
    assert retry.status_code == 200, retry.text
    assert retry.json()["refresh_token"] == second.refresh_token
    reuse = httpx.post(f"{demo.base_url}/token", data=refresh, timeout=10)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert mcp_status(demo, second.access_token) == 401
    again = httpx.post(f"{demo.base_url}/token", data={
        "grant_type": "refresh_token", "refresh_token": second.refresh_token,
        "client_id": storage.client_info.client_id}, timeout=10)
    assert again.status_code == 400


async def test_second_authorization_by_the_same_user_skips_consent(demo):
    storage, browser = MemoryStorage(), Browser("bob")
    provider = provider_for(demo, storage, browser)
    with anyio.fail_after(60):
        await list_and_call(demo, provider)
    # Same browser and client, new authorization: signed in and consented already.
    storage.tokens = None
    provider.context.current_tokens = None
    with anyio.fail_after(60):
        await list_and_call(demo, provider)
    assert browser.pages == ["login", "consent"]


async def test_chatgpt_redirect_uris_register(demo):
    body = {"client_name": "ChatGPT", "redirect_uris": [
        "https://chatgpt.com/connector_platform_oauth_redirect",
        "https://chatgpt.com/connector/oauth/abc123"],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post"}
    response = httpx.post(f"{demo.base_url}/register", json=body, timeout=10)
    assert response.status_code == 201, response.text
    assert response.json()["token_endpoint_auth_method"] == "none"
