"""Fixtures for the end-to-end suite: real `manifold demo` processes and SDK client sessions.

The binary comes from `MANIFOLD_BIN` (default: target/debug/manifold of this repo). Each demo
runs on a free port with its own temporary data dir and is always terminated (killed if it
does not stop) when the test session ends.

The demo requires OAuth: every fixture demo gets a bearer token for alice from
`manifold token`, and `connect` / `Demo.headers` send it (test_oauth.py runs the real flow).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Iterator

import httpx
import mcp_types as types
import pytest
from mcp.client import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "manifold"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0

# How a test asks for a protocol era: "auto" is the SDK's default flow (server/discover first,
# falling back to initialize); the dates force that initialize handshake version.
AUTO = "auto"
HANDSHAKE_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]
ALL_ERAS = [AUTO, *HANDSHAKE_VERSIONS]
CLIENT_INFO = types.Implementation(name="manifold-e2e", version="1.0")


@dataclass
class Demo:
    """URLs of one running `manifold demo`."""

    mcp_url: str
    sse_url: str
    sandbox_url: str
    data_dir: str = ""
    token: str = ""

    @property
    def base_url(self) -> str:
        return self.mcp_url.removesuffix("/mcp")

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of alice's token."""
        return {"authorization": f"Bearer {self.token}"}

    def token_for(self, user: str) -> str:
        return mint_token(self.base_url, self.data_dir, user)

    @property
    def linear(self) -> str:
        return self.sandbox_url.rstrip("/") + "/linear"

    def set_delay(self, millis: int) -> None:
        r = httpx.post(f"{self.linear}/_sandbox/delay", json={"millis": millis}, timeout=5)
        r.raise_for_status()

    def throttle(self, fail_next: int, retry_after_secs: int) -> None:
        body = {"fail_next": fail_next, "retry_after_secs": retry_after_secs}
        httpx.post(f"{self.linear}/_sandbox/throttle", json=body, timeout=5).raise_for_status()

    def upstream_requests(self) -> list[dict]:
        r = httpx.get(f"{self.linear}/_sandbox/requests", timeout=5)
        r.raise_for_status()
        return r.json()


def _binary() -> Path:
    path = Path(os.environ.get("MANIFOLD_BIN", DEFAULT_BIN))
    if not path.is_file():
        pytest.fail(
            f"manifold binary not found at {path}: build it with `cargo build -p manifold` "
            "or set MANIFOLD_BIN",
            pytrace=False,
        )
    return path


# Bearer tokens by gateway base URL, so `connect` authenticates without every test passing one.
TOKENS: dict[str, str] = {}


def mint_token(base_url: str, data_dir: str, user: str = "alice") -> str:
    """A bearer token from `manifold token` (signed with the demo's stored key)."""
    out = subprocess.run(
        [str(_binary()), "token", "--user", user, "--data-dir", data_dir, "--public-url", base_url],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return out.stdout.strip()


def auth_headers(url: str) -> dict[str, str]:
    for base, token in TOKENS.items():
        if url.startswith(base + "/"):
            return {"authorization": f"Bearer {token}"}
    return {}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def demo_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Starts demos on demand (`start(*extra_args)`) and stops every one at session end."""
    procs: list[subprocess.Popen] = []

    def start(*extra_args: str) -> Demo:
        binary = _binary()
        data_dir = tmp_path_factory.mktemp("manifold-data")
        out_path, err_path = data_dir / "stdout.txt", data_dir / "stderr.txt"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [str(binary), "demo", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
                 *extra_args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            )
        procs.append(proc)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = out_path.read_text(errors="replace")
            if "Tools exposed:" in text:
                urls = {
                    key: re.search(rf"{label}:\s*(\S+)", text).group(1)
                    for key, label in [("mcp_url", r"MCP endpoint \(Streamable HTTP\)"),
                                       ("sse_url", "Legacy SSE endpoint"),
                                       ("sandbox_url", "Sandbox provider emulators")]
                }
                demo = Demo(**urls, data_dir=str(data_dir))
                demo.token = mint_token(demo.base_url, str(data_dir))
                TOKENS[demo.base_url] = demo.token
                return demo
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        _stop(proc)
        pytest.fail(
            f"manifold demo did not become ready (exit {proc.returncode}).\n"
            f"stdout:\n{out_path.read_text(errors='replace')}\n"
            f"stderr:\n{err_path.read_text(errors='replace')[-4000:]}",
            pytrace=False,
        )

    try:
        yield start
    finally:
        for proc in procs:
            _stop(proc)


@pytest.fixture(scope="session")
def demo(demo_factory) -> Demo:
    """The demo with default settings."""
    return demo_factory()


@pytest.fixture(scope="session")
def paged_demo(demo_factory) -> Demo:
    """A second demo that serves tools/list two tools per page."""
    return demo_factory("--tools-page-size", "2")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def connect(url: str, era: str = AUTO, **session_kwargs) -> AsyncIterator[ClientSession]:
    """An SDK client session over Streamable HTTP at `era`.

    AUTO and 2025-11-25 use the SDK's own connect flows (`Client(mode="auto"|"legacy")`). The SDK
    always offers its newest handshake version, so older versions are forced through the SDK's
    public low-level API: send an `initialize` naming that version, `adopt()` the result, then
    send `notifications/initialized`, exactly what `ClientSession.initialize()` does.
    """
    headers = auth_headers(url)
    if era in (AUTO, "2025-11-25"):
        mode = "auto" if era == AUTO else "legacy"
        async with create_mcp_http_client(headers=headers) as http:
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, mode=mode, client_info=CLIENT_INFO, cache=None,
                              **session_kwargs) as client:
                yield client.session
        return
    async with create_mcp_http_client(headers=headers) as http, \
            streamable_http_client(url, http_client=http) as (read, write):
        async with ClientSession(read, write, client_info=CLIENT_INFO, **session_kwargs) as session:
            params = types.InitializeRequestParams(
                protocol_version=era, capabilities=types.ClientCapabilities(), client_info=CLIENT_INFO
            )
            result = await session.send_request(
                types.InitializeRequest(params=params), types.InitializeResult
            )
            assert result.protocol_version == era, f"server answered {result.protocol_version}"
            session.adopt(result)
            await session.send_notification(types.InitializedNotification())
            yield session
