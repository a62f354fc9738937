"""Pytest hooks and fixtures for the Python SDK end-to-end tests: one real `airlock serve` per
module, and one SDK session per transport (Streamable HTTP, stdio) per module. See harness.py.
"""

from __future__ import annotations

import pytest

from harness import Client, Server, TestEnv, http_session, missing_prerequisites, portal_session, stdio_session, wait_until


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = missing_prerequisites()
    if problems:
        pytest.exit("prerequisites missing (these tests never skip):\n  " + "\n  ".join(problems), returncode=1)


# ---------------------------------------------------------------------------------------------
# Fixtures: one server (and one session per transport) per module.


@pytest.fixture(scope="module")
def http_env():
    env = TestEnv("http")
    yield env
    env.cleanup()


@pytest.fixture(scope="module")
def server(http_env):
    srv = Server(http_env)
    try:
        yield srv
        assert srv.alive(), f"airlock serve died during the tests (exit {srv.proc.returncode}): {srv.stderr_lines}"
    finally:
        code = srv.stop()
    panics = [line for line in srv.stderr_lines if "panicked" in line]
    assert not panics, f"airlock serve panicked: {panics}"
    assert code == 0, f"airlock serve exited with {code} after SIGTERM: {srv.stderr_lines}"
    assert wait_until(lambda: not http_env.containers()), (
        f"sandboxes left behind after the server stopped: {http_env.containers()}"
    )


@pytest.fixture(scope="module")
def stdio_env():
    env = TestEnv("stdio")
    yield env
    env.cleanup()


@pytest.fixture(scope="module", params=["http", "stdio"])
def client(request):
    """One SDK session per transport for the whole module."""
    if request.param == "http":
        srv = request.getfixturevalue("server")
        env = srv.env
        factory = lambda: http_session(srv.url)  # noqa: E731
    else:
        env = request.getfixturevalue("stdio_env")
        factory = lambda: stdio_session(env)  # noqa: E731
    with portal_session(factory) as (portal, session, init):
        yield Client(request.param, portal, session, init, env)
    if request.param == "stdio":
        # The stdio client closed the server's stdin: the engine must have removed its sandbox.
        log = env.stdio_log.read_text()
        assert "panicked" not in log, f"airlock serve --stdio panicked: {log}"
        assert wait_until(lambda: not env.containers()), (
            f"sandboxes left behind after the stdio session ended: {env.containers()}\n{log}"
        )
