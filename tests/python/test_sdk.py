"""Airlock's MCP server driven by the official Python MCP SDK (PyPI `mcp`), over Streamable HTTP and
over stdio, against a real `airlock serve`, real Docker and the real agent: every tool family's
happy path and its main error, plus the HTTP endpoint's guards (token, Origin, Host) seen from a
raw HTTP client.

Each transport keeps one session for the module, so tests share one sandbox; every test works on
its own paths so the order does not matter.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import LATEST_PROTOCOL_VERSION

from harness import AIRLOCK_BIN, TOKEN, Client, http_session, is_error, portal_session, text, wait_until

EXPECTED_TOOLS = {
    "list_workspaces",
    "read_file",
    "write_file",
    "edit_file",
    "list_directory",
    "directory_tree",
    "search_files",
    "grep",
    "move_path",
    "delete_path",
    "create_directory",
    "file_info",
    "run_command",
    "start_process",
    "read_process_output",
    "write_process_input",
    "kill_process",
    "list_processes",
    "install_packages",
}


def ok(result) -> str:
    """Asserts a tool call succeeded and returns its text."""
    assert not is_error(result), f"tool call failed: {text(result)}"
    return text(result)


def err(result) -> str:
    """Asserts a tool call is a tool error (isError, not a protocol error) and returns its text."""
    assert is_error(result), f"expected a tool error, got success: {text(result)}"
    return text(result)


# ---------------------------------------------------------------------------------------------
# Handshake and listing


def test_initialize(client: Client):
    init = client.init
    assert init.server_info.name == "airlock"
    assert init.server_info.version
    assert init.capabilities.tools is not None, "the server must advertise tools"
    # The SDK refuses versions it does not speak, so reaching here means the negotiation worked;
    # still, pin what the server chose to what the SDK offered.
    assert init.protocol_version <= LATEST_PROTOCOL_VERSION
    assert init.protocol_version >= "2025-03-26", init.protocol_version
    assert "sandbox" in (init.instructions or ""), init.instructions
    # A ping round-trips on the same session.
    client.run(client.session.send_ping)


def test_list_tools_and_annotations(client: Client):
    tools = client.list_tools().tools
    names = [t.name for t in tools]
    assert len(names) == 19, names
    assert set(names) == EXPECTED_TOOLS
    by_name = {t.name: t for t in tools}
    assert by_name["read_file"].annotations is not None
    assert by_name["read_file"].annotations.read_only_hint is True
    assert by_name["delete_path"].annotations is not None
    assert by_name["delete_path"].annotations.destructive_hint is True
    assert by_name["delete_path"].annotations.read_only_hint is not True
    for tool in tools:
        assert tool.description, f"{tool.name} has no description"
        assert tool.input_schema.get("type") == "object", (tool.name, tool.input_schema)
    assert "path" in by_name["read_file"].input_schema.get("required", []), by_name["read_file"].input_schema


# ---------------------------------------------------------------------------------------------
# Files


def test_list_workspaces(client: Client):
    t = ok(client.call("list_workspaces"))
    assert "/workspaces/project (read-write)" in t, t
    assert "/workspaces/data (read-only)" in t, t


def test_read_file(client: Client):
    r = client.call("read_file", {"path": "hello.txt"})
    assert ok(r) == "hello from the host\n"
    assert r.structured_content is not None and r.structured_content.get("size") == 20, r.structured_content
    assert ok(client.call("read_file", {"path": "/workspaces/data/readme.txt"})) == "read only data\n"
    err(client.call("read_file", {"path": "missing.txt"}))
    t = err(client.call("read_file", {"path": "../../etc/passwd"}))
    assert "outside the workspaces" in t, t
    assert "root:" not in t, t


def test_write_file_lands_on_host_and_ro_refuses(client: Client):
    env = client.env
    ok(client.call("write_file", {"path": "w/new.txt", "content": "written in the sandbox"}))
    assert (env.project / "w" / "new.txt").read_text() == "written in the sandbox"
    t = err(client.call("write_file", {"path": "/workspaces/data/x.txt", "content": "no"}))
    assert "read-only" in t, t
    assert not (env.data_ws / "x.txt").exists()


def test_edit_file_shows_a_diff(client: Client):
    env = client.env
    ok(client.call("write_file", {"path": "edit/e.txt", "content": "written in the sandbox\n"}))
    t = ok(client.call("edit_file", {"path": "edit/e.txt", "edits": [{"old_text": "sandbox", "new_text": "box"}]}))
    assert "-written in the sandbox" in t and "+written in the box" in t, t
    assert (env.project / "edit" / "e.txt").read_text() == "written in the box\n"
    err(client.call("edit_file", {"path": "edit/e.txt", "edits": [{"old_text": "absent", "new_text": "x"}]}))
    assert (env.project / "edit" / "e.txt").read_text() == "written in the box\n", "a failed edit changed the file"


def test_list_directory(client: Client):
    ok(client.call("write_file", {"path": "ls/inner/f.txt", "content": "x"}))
    t = ok(client.call("list_directory", {"path": "ls"}))
    assert "inner/" in t, t
    t = ok(client.call("list_directory", {"path": "."}))
    assert "hello.txt" in t and "ls/" in t, t
    err(client.call("list_directory", {"path": "no-such-dir"}))


def test_directory_tree(client: Client):
    ok(client.call("write_file", {"path": "tree/a/b/leaf.txt", "content": "x"}))
    t = ok(client.call("directory_tree", {"path": "/workspaces/project/tree", "depth": 3}))
    assert "leaf.txt" in t, t
    t = ok(client.call("directory_tree", {"path": "/workspaces/project/tree", "depth": 1}))
    assert "leaf.txt" not in t, f"depth 1 must not reach the leaf: {t}"
    err(client.call("directory_tree", {"path": "/etc"}))


def test_search_files(client: Client):
    ok(client.call("write_file", {"path": "glob/one.md", "content": "x"}))
    ok(client.call("write_file", {"path": "glob/deep/two.md", "content": "x"}))
    t = ok(client.call("search_files", {"path": "glob", "pattern": "**/*.md"}))
    assert "two.md" in t and "one.md" in t, t
    t = ok(client.call("search_files", {"path": "glob", "pattern": "**/*.nothing"}))
    assert "two.md" not in t, t
    err(client.call("search_files", {"path": "../..", "pattern": "*"}))


def test_grep(client: Client):
    ok(client.call("write_file", {"path": "grep/g.txt", "content": "alpha\nneedle here\nomega\n"}))
    t = ok(client.call("grep", {"path": "grep", "regex": "need+le"}))
    assert "g.txt:2" in t, t
    t = ok(client.call("grep", {"path": ".", "regex": "hel+o"}))
    assert "hello.txt:1" in t, t
    t = err(client.call("grep", {"path": ".", "regex": "("}))
    assert t, "a bad regex must say why"


def test_create_directory(client: Client):
    env = client.env
    ok(client.call("create_directory", {"path": "mk/a/b/c"}))
    assert (env.project / "mk" / "a" / "b" / "c").is_dir()
    t = err(client.call("create_directory", {"path": "/workspaces/data/newdir"}))
    assert "read-only" in t, t
    assert not (env.data_ws / "newdir").exists()


def test_file_info(client: Client):
    t = ok(client.call("file_info", {"path": "hello.txt"}))
    assert "20 bytes" in t, t
    err(client.call("file_info", {"path": "no-such-file"}))


def test_move_path(client: Client):
    env = client.env
    ok(client.call("write_file", {"path": "mv/src.txt", "content": "moving"}))
    ok(client.call("create_directory", {"path": "mv/dst"}))
    ok(client.call("move_path", {"source": "mv/src.txt", "destination": "mv/dst/moved.txt"}))
    assert (env.project / "mv" / "dst" / "moved.txt").read_text() == "moving"
    assert not (env.project / "mv" / "src.txt").exists()
    err(client.call("move_path", {"source": "mv/dst/moved.txt", "destination": "/tmp/out.txt"}))
    assert (env.project / "mv" / "dst" / "moved.txt").exists(), "a refused move removed the source"


def test_delete_path(client: Client):
    env = client.env
    ok(client.call("write_file", {"path": "rm/sub/file.txt", "content": "x"}))
    t = err(client.call("delete_path", {"path": "rm"}))
    assert t, "refusing a non-empty directory must say why"
    assert (env.project / "rm" / "sub" / "file.txt").exists()
    ok(client.call("delete_path", {"path": "rm", "recursive": True}))
    assert not (env.project / "rm").exists()
    err(client.call("delete_path", {"path": "/workspaces/data/readme.txt"}))
    assert (env.data_ws / "readme.txt").exists()


# ---------------------------------------------------------------------------------------------
# Commands and processes


def test_run_command(client: Client):
    t = err(client.call("run_command", {"command": "echo out; echo err >&2; exit 3"}))
    assert "Exit code: 3" in t, t
    assert "--- stdout ---\nout" in t and "--- stderr ---\nerr" in t, t
    t = ok(
        client.call(
            "run_command",
            {"command": "cat; echo $GREETING; pwd; id -u", "stdin": "piped ", "env": {"GREETING": "hi"}, "cwd": "/workspaces/data"},
        )
    )
    assert "piped hi\n/workspaces/data\n" in t, t
    assert "\n0\n" not in t, f"the sandbox must never run as uid 0: {t}"
    # It ran in a container of this engine instance (the label the teardown checks are gone).
    assert client.env.containers(), "no sandbox container carries this engine's instance label"
    # Files written by a command land in the workspace on the host.
    ok(client.call("run_command", {"command": "echo from-shell > /workspaces/project/cmd.txt"}))
    assert (client.env.project / "cmd.txt").read_text() == "from-shell\n"


def test_background_processes(client: Client):
    r = client.call("start_process", {"command": "while read l; do echo got:$l; done"})
    ok(r)
    assert r.structured_content is not None, text(r)
    handle = r.structured_content["handle"]
    assert isinstance(handle, int)
    ok(client.call("write_process_input", {"handle": handle, "input": "ping\n"}))
    t = ok(client.call("read_process_output", {"handle": handle, "wait_ms": 3000}))
    assert "got:ping" in t, t
    t = ok(client.call("list_processes"))
    assert "running" in t and str(handle) in t, t
    ok(client.call("kill_process", {"handle": handle}))
    err(client.call("kill_process", {"handle": 999}))
    err(client.call("read_process_output", {"handle": 999}))
    err(client.call("write_process_input", {"handle": 999, "input": "x"}))


def test_install_packages_needs_egress(client: Client):
    t = err(client.call("install_packages", {"manager": "apt", "packages": ["curl"]}))
    assert "runtime.network" in t, t
    t = err(client.call("install_packages", {"manager": "pip", "packages": ["--index-url=http://evil"]}))
    assert "not a valid" in t, t


def test_bad_arguments_and_unknown_tools_are_tool_errors(client: Client):
    t = err(client.call("read_file", {"path": 42}))
    assert "invalid arguments" in t, t
    err(client.call("no_such_tool", {}))
    # The session keeps serving.
    assert ok(client.call("read_file", {"path": "hello.txt"})) == "hello from the host\n"


# ---------------------------------------------------------------------------------------------
# The HTTP endpoint's guards, seen from a raw HTTP client (no SDK)

INIT_BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    }
)


def raw_post(server, body: str, headers: dict[str, str] | None = None, auth: str | None = TOKEN):
    """POSTs to /mcp; returns (status, headers, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if auth is not None:
        h["Authorization"] = f"Bearer {auth}"
    h.update(headers or {})
    try:
        conn.request("POST", "/mcp", body=body.encode(), headers=h)
        resp = conn.getresponse()
        status, resp_headers = resp.status, {k.lower(): v for k, v in resp.getheaders()}
        if resp_headers.get("content-type", "").startswith("text/event-stream"):
            # Read until the first JSON-RPC message; the stream may stay open after it.
            data = read_first_sse_message(resp)
        else:
            data = resp.read().decode()
        return status, resp_headers, data
    finally:
        conn.close()


def read_first_sse_message(resp) -> str:
    for raw in resp:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data:"):
            payload = line[5:].strip()
            if payload:
                return payload
    return ""


def test_http_accepts_the_right_token(server):
    status, headers, body = raw_post(server, INIT_BODY)
    assert status == 200, (status, body)
    assert headers.get("mcp-session-id"), headers
    message = json.loads(body)
    assert message["id"] == 1 and message["result"]["serverInfo"]["name"] == "airlock", message


def test_http_without_token_is_401(server):
    status, headers, body = raw_post(server, INIT_BODY, auth=None)
    assert status == 401, (status, body)
    # No WWW-Authenticate: it would start an OAuth flow Airlock does not offer.
    assert "www-authenticate" not in {k.lower() for k in headers}, headers
    error = json.loads(body)["error"]
    assert "Authorization: Bearer" in error["message"], body
    assert "airlock clients --install" in error["message"], body


def test_http_wrong_token_is_401(server):
    status, _, body = raw_post(server, INIT_BODY, auth="not-the-token")
    assert status == 401, (status, body)
    status, _, body = raw_post(server, INIT_BODY, headers={"Authorization": f"Basic {TOKEN}"}, auth=None)
    assert status == 401, (status, body)


def test_http_foreign_origin_is_403(server):
    status, _, body = raw_post(server, INIT_BODY, headers={"Origin": "https://evil.example"})
    assert status == 403, (status, body)
    assert "cross-origin" in body, body
    # The server's own origin is fine.
    status, _, body = raw_post(server, INIT_BODY, headers={"Origin": f"http://127.0.0.1:{server.port}"})
    assert status == 200, (status, body)


def test_http_foreign_host_is_403(server):
    status, _, body = raw_post(server, INIT_BODY, headers={"Host": "evil.example"})
    assert status == 403, (status, body)
    status, _, body = raw_post(server, INIT_BODY, headers={"Host": f"evil.example:{server.port}"})
    assert status == 403, (status, body)
    status, _, body = raw_post(server, INIT_BODY, headers={"Host": f"localhost:{server.port}"})
    assert status == 200, (status, body)


def initialized_session(server) -> str:
    status, headers, body = raw_post(server, INIT_BODY)
    assert status == 200, (status, body)
    sid = headers["mcp-session-id"]
    status, _, body = raw_post(
        server, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), headers={"Mcp-Session-Id": sid}
    )
    assert status == 202, (status, body)
    return sid


def test_http_invalid_jsonrpc_requests_get_jsonrpc_errors(server):
    sid = initialized_session(server)
    # A method that does not exist: a JSON-RPC error answering the same id.
    status, _, body = raw_post(
        server, json.dumps({"jsonrpc": "2.0", "id": 7, "method": "no/such/method"}), headers={"Mcp-Session-Id": sid}
    )
    assert status == 200, (status, body)
    message = json.loads(body)
    assert message["id"] == 7 and message["error"]["code"] == -32601, message
    # tools/call without the required `name`: a JSON-RPC error, not a crash.
    status, _, body = raw_post(
        server,
        json.dumps({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"nope": 1}}),
        headers={"Mcp-Session-Id": sid},
    )
    assert status == 200, (status, body)
    message = json.loads(body)
    assert message["id"] == 8 and "result" not in message, message
    assert isinstance(message["error"]["code"], int) and message["error"]["code"] < 0, message


@pytest.mark.parametrize(
    "body",
    ['{"jsonrpc":"2.0","id":2,"method":', "not json at all", '{"hello":"world"}', "[1,2"],
    ids=["truncated", "not-json", "not-jsonrpc", "broken-batch"],
)
def test_http_malformed_body_is_refused_and_the_server_keeps_serving(server, body):
    sid = initialized_session(server)
    status, headers, answer = raw_post(server, body, headers={"Mcp-Session-Id": sid})
    # Refused as the client's fault (4xx), or answered with a JSON-RPC error: never a 5xx or a
    # dropped connection.
    if status == 200:
        message = json.loads(answer)
        assert "error" in message and message["error"]["code"] in (-32700, -32600), message
    else:
        assert 400 <= status < 500, (status, answer)
    assert server.alive(), f"airlock serve died on a malformed body: {server.stderr_lines}"
    # The same session and a brand-new SDK client both still work.
    status, _, answer = raw_post(
        server, json.dumps({"jsonrpc": "2.0", "id": 9, "method": "ping"}), headers={"Mcp-Session-Id": sid}
    )
    assert status == 200 and json.loads(answer) == {"jsonrpc": "2.0", "id": 9, "result": {}}, (status, answer)
    with portal_session(lambda: http_session(server.url)) as (portal, session, _init):
        tools = portal.call(session.list_tools).tools
        assert len(tools) == 19


def test_sdk_with_a_wrong_token_cannot_connect(server):
    async def attempt():
        with anyio.fail_after(30):
            async with http_session(server.url, token="wrong-token-0000"):
                pass

    with pytest.raises(BaseException) as info:
        anyio.run(attempt)
    # The SDK reports a non-2xx answer without a JSON-RPC body as an MCPError (the 401 itself is
    # checked with a raw client above); anything else means it failed for another reason.
    errors = list(leaves(info.value))
    assert any(isinstance(e, MCPError) for e in errors), repr(info.value)
    assert server.alive()


def leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def test_http_closing_a_session_removes_its_sandbox(server):
    env = server.env
    before = set(env.containers())
    with portal_session(lambda: http_session(server.url)) as (portal, session, _init):
        r = portal.call(session.call_tool, "run_command", {"command": "echo mine"})
        assert ok(r).count("mine") == 1, text(r)
        mine = set(env.containers()) - before
        assert len(mine) == 1, f"a new session must get its own sandbox: before {before}, now {env.containers()}"
    # The SDK ends the session with DELETE /mcp; the engine removes that session's sandbox.
    assert wait_until(lambda: not (mine & set(env.containers()))), f"sandbox {mine} outlived its session"


# ---------------------------------------------------------------------------------------------
# stdio, seen from a raw pipe (no SDK)


def test_stdio_garbage_line_does_not_end_the_session(stdio_env):
    """Unparseable input on stdin must not end the session: the next request is still answered."""
    proc = subprocess.Popen(
        [str(AIRLOCK_BIN), "serve", "--stdio", "--config", str(stdio_env.config)],
        env={**os.environ, **stdio_env.server_env(), "AIRLOCK_DATA_DIR": str(stdio_env.dir / "state-raw")},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [
            INIT_BODY,
            json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            "this is not json",
            '{"jsonrpc":"2.0","id":2,"method":',
            json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        ]
        out, errs = proc.communicate("\n".join(lines) + "\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, (proc.returncode, errs)
    assert "panicked" not in errs, errs
    messages = [json.loads(line) for line in out.splitlines() if line.strip()]  # stdout is protocol only
    by_id = {m.get("id"): m for m in messages}
    assert by_id[1]["result"]["serverInfo"]["name"] == "airlock", messages
    assert len(by_id[3]["result"]["tools"]) == 19, messages
    for m in messages:
        assert m.get("jsonrpc") == "2.0", m
