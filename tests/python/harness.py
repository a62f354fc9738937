"""The harness for the Python SDK end-to-end tests (fixtures are in conftest.py).

The same ground rules as the Rust end-to-end tests (crates/airlock/tests/common/mod.rs): a real
Docker engine, the local test image, the static agent and a real `airlock` binary. Nothing is
skipped: a missing prerequisite stops the run with a message that says what to do.

The SDK is asyncio/anyio based while the tests are plain synchronous functions: each MCP session
lives inside an anyio blocking portal (an event loop on a helper thread), so one session, and so
one sandbox container, serves every test of a module instead of one per test.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
from anyio.from_thread import start_blocking_portal
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

REPO = Path(__file__).resolve().parents[2]
# Where cargo built (`CARGO_TARGET_DIR`, as `make` sets it, else the repo's `target/`).
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
AIRLOCK_BIN = Path(os.environ.get("AIRLOCK_BIN", TARGET / "debug" / "airlock"))
AGENT_DIR = Path(os.environ.get("AIRLOCK_AGENT_DIR", TARGET / "airlock-agent"))
TEST_IMAGE = os.environ.get("AIRLOCK_TEST_IMAGE", "airlock-test-busybox:1")
TOKEN = "py-test-token-0123456789"
SANDBOX_UID = 65532
# Every SDK request gets an answer within this, or the test fails instead of hanging.
READ_TIMEOUT_SECS = 60.0


# ---------------------------------------------------------------------------------------------
# Prerequisites: checked once, before anything starts.


def missing_prerequisites() -> list[str]:
    problems = []
    if not (AIRLOCK_BIN.is_file() and os.access(AIRLOCK_BIN, os.X_OK)):
        problems.append(f"the engine binary {AIRLOCK_BIN} is missing: run `make build`")
    agent = AGENT_DIR / "airlock-agent-linux-amd64"
    if not agent.is_file():
        problems.append(f"the static agent {agent} is missing: run `make agent` (or `make build`)")
    if shutil.which("docker") is None:
        problems.append("the docker CLI is not installed: run `make setup`")
    else:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=60)
        if info.returncode != 0:
            problems.append("no Docker engine answers `docker info`: run `make setup`")
        else:
            image = subprocess.run(["docker", "image", "inspect", TEST_IMAGE], capture_output=True, timeout=60)
            if image.returncode != 0:
                problems.append(f"the test image {TEST_IMAGE} is missing: run `make setup` (or scripts/test-image.sh)")
    return problems


# ---------------------------------------------------------------------------------------------
# Workspaces, settings and the server process.


def give_to_sandbox(path: Path) -> None:
    """Makes a host folder writable by the sandbox user (tests may run as root; the sandbox never does)."""
    if os.getuid() != 0:
        return
    os.lchown(path, SANDBOX_UID, SANDBOX_UID)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), SANDBOX_UID, SANDBOX_UID)


def docker_ps(label: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True, timeout=60, check=True
    )
    return [line for line in out.stdout.splitlines() if line]


class TestEnv:
    """A temp config + data dir + a `project` (rw) and a `data` (ro) workspace."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, label: str):
        self.dir = Path(tempfile.mkdtemp(prefix=f"airlock-py-{label}-"))
        self.config = self.dir / "airlock.toml"
        self.data = self.dir / "state"
        self.project = self.dir / "project"
        self.data_ws = self.dir / "data"
        self.stdio_log = self.dir / "stdio-server.log"
        self.project.mkdir()
        self.data_ws.mkdir()
        (self.project / "hello.txt").write_text("hello from the host\n")
        (self.data_ws / "readme.txt").write_text("read only data\n")
        give_to_sandbox(self.project)
        self.config.write_text(
            f"""listen = "127.0.0.1:0"
[runtime]
image = "{TEST_IMAGE}"
memory_mb = 256
pids = 64
command_timeout_secs = 20

[approval]
timeout_secs = 10
allow = ["*"]

[[workspaces]]
name = "project"
path = "{self.project}"
access = "rw"

[[workspaces]]
name = "data"
path = "{self.data_ws}"
access = "ro"
"""
        )

    def server_env(self) -> dict[str, str]:
        env = {
            "AIRLOCK_DATA_DIR": str(self.data),
            "AIRLOCK_TOKEN": TOKEN,
            "AIRLOCK_KEYRING": "mock",
            "AIRLOCK_AGENT_DIR": str(AGENT_DIR),
        }
        for name in ("DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "RUST_LOG", "RUST_BACKTRACE"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def instance_id(self) -> str:
        """The engine labels its containers with sha256(data dir)[:6] (crates/airlock/src/paths.rs)."""
        return hashlib.sha256(str(self.data).encode()).hexdigest()[:12]

    def containers(self) -> list[str]:
        return docker_ps(f"dev.airlock.instance={self.instance_id()}")

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """A running `airlock serve` on HTTP (`--listen 127.0.0.1:0`)."""

    def __init__(self, env: TestEnv):
        self.env = env
        self.stderr_lines: list[str] = []
        self.proc = subprocess.Popen(
            [str(AIRLOCK_BIN), "serve", "--config", str(env.config), "--listen", "127.0.0.1:0"],
            env={**os.environ, **env.server_env()},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        found = threading.Event()
        self.url = ""

        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                line = line.rstrip("\n")
                self.stderr_lines.append(line)
                print(f"[serve] {line}", file=sys.stderr)
                if line.startswith("airlock: listening on "):
                    self.url = line.removeprefix("airlock: listening on ").strip()
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(30) or not self.url:
            self.kill()
            raise AssertionError(f"airlock serve did not report its URL; stderr: {self.stderr_lines}")
        self.port = int(self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a user's Ctrl-C would; the engine removes its sandboxes and exits."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"airlock serve did not exit within {timeout}s of SIGTERM; stderr: {self.stderr_lines}")

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)


# ---------------------------------------------------------------------------------------------
# The SDK clients.


@contextlib.asynccontextmanager
async def http_session(url: str, token: str = TOKEN):
    """The SDK's Streamable HTTP client with the bearer token on every request."""
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=timeout) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT_SECS) as session:
                init = await session.initialize()
                yield session, init


@contextlib.asynccontextmanager
async def stdio_session(env: TestEnv):
    """The SDK's stdio client, launching `airlock serve --stdio` itself."""
    params = StdioServerParameters(
        command=str(AIRLOCK_BIN),
        args=["serve", "--stdio", "--config", str(env.config)],
        env=env.server_env(),
    )
    with open(env.stdio_log, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT_SECS) as session:
                init = await session.initialize()
                yield session, init


class Client:
    """A synchronous face for one SDK session running in a blocking portal."""

    def __init__(self, transport: str, portal: Any, session: ClientSession, init: Any, env: TestEnv):
        self.transport = transport
        self.portal = portal
        self.session = session
        self.init = init
        self.env = env

    def run(self, fn, *args, **kwargs):
        return self.portal.call(functools.partial(fn, *args, **kwargs))

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        return self.run(self.session.call_tool, tool, arguments if arguments is not None else {})

    def list_tools(self):
        return self.run(self.session.list_tools)


def text(result: CallToolResult) -> str:
    """The text content of a tool result."""
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def is_error(result: CallToolResult) -> bool:
    return result.is_error is True


@contextlib.contextmanager
def portal_session(cm_factory):
    """Enters an async session context manager on a portal thread and yields (portal, session, init)."""
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(cm_factory()) as (session, init):
            yield portal, session, init


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
