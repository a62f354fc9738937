// The official TypeScript SDK's 2.x client pinned to MCP 2026-07-28 (no `initialize`, no session
// id: protocol version and client info travel with every request) against a real engine, and
// beside a 2025-11-25 client on the same endpoint. Under 2026-07-28 a sandbox belongs to the
// client's token (crates/airlock/src/sessions.rs): two tokens, two sandboxes, and a process
// handle of one is nothing to the other.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { AIRLOCK_BIN, Server, TOKEN, TestEnv, sdkClient, text, waitUntil } from "./harness.mjs";

const MODERN = "2026-07-28";

/// A 2.x client that speaks only 2026-07-28 (`pin`: no fallback to `initialize`).
async function modernClient(transport, env, server, token = TOKEN) {
  const client = new Client({ name: "airlock-ts-modern", version: "2" }, { versionNegotiation: { mode: { pin: MODERN } } });
  const t =
    transport === "http"
      ? new StreamableHTTPClientTransport(new URL(server.url), {
          requestInit: { headers: { Authorization: `Bearer ${token}` } },
        })
      : new StdioClientTransport({
          command: AIRLOCK_BIN,
          args: transport === "stdio" ? ["serve", "--stdio", "--config", env.config] : ["connect", "--config", env.config],
          env: env.processEnv(),
          stderr: "inherit",
        });
  await client.connect(t);
  return client;
}

/// The sandbox a client's calls run in (its container's hostname).
async function sandboxOf(client) {
  const r = await client.callTool({ name: "run_command", arguments: { command: "hostname" } });
  assert.ok(!r.isError, text(r));
  const host = r.structuredContent.stdout.trim();
  assert.ok(host.length > 0, text(r));
  return host;
}

/// How many `sleep` processes run in the client's sandbox.
async function sleeps(client) {
  const r = await client.callTool({ name: "run_command", arguments: { command: "ps -o comm | grep -c '^sleep'; true" } });
  const count = Number(r.structuredContent.stdout.trim());
  assert.ok(Number.isInteger(count), `no count in ${text(r)}`);
  return count;
}

for (const transport of ["http", "stdio", "connect"]) {
  describe(`TypeScript SDK 2.x pinned to ${MODERN} over ${transport}`, () => {
    let env;
    let server;
    let client;

    before(async () => {
      env = new TestEnv(`modern-${transport}`);
      if (transport !== "stdio") server = await Server.start(env);
      client = await modernClient(transport, env, server);
    });

    after(async () => {
      await client?.close();
      await server?.stop();
      // The engine removes its sandboxes when it stops, whatever their sessions were.
      const left = await waitUntil(() => env.containers().length === 0, 10000);
      const leftover = env.containers();
      env.cleanup();
      assert.ok(left, `sandboxes outlived the engine: ${leftover}`);
    });

    test("negotiates 2026-07-28 and lists the tools, cacheable", async () => {
      assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
      const listed = await client.listTools();
      const names = listed.tools.map((t) => t.name);
      for (const name of ["list_workspaces", "read_file", "run_command", "start_process"]) {
        assert.ok(names.includes(name), `${name} missing from ${names}`);
      }
      assert.ok(listed.ttlMs > 0, `no freshness on the tool list: ${JSON.stringify(Object.keys(listed))}`);
      assert.equal(listed.cacheScope, "public");
    });

    test("reads a file", async () => {
      const r = await client.callTool({ name: "read_file", arguments: { path: "hello.txt" } });
      assert.ok(!r.isError, text(r));
      assert.equal(text(r), "hello from the host\n");
      assert.equal(r.structuredContent.path, "/workspaces/project/hello.txt");
    });

    test("an unknown tool is a protocol error (-32602), not a tool result", async () => {
      await assert.rejects(client.callTool({ name: "no_such_tool", arguments: {} }), (e) => {
        assert.equal(e.code, -32602, `${e.code}: ${e.message}`);
        assert.match(e.message, /unknown tool `no_such_tool`/);
        return true;
      });
    });

    test("a long call reports progress and completes", async () => {
      let progress = 0;
      const r = await client.callTool(
        { name: "run_command", arguments: { command: "sleep 3; echo finished" } },
        { onprogress: () => progress++ },
      );
      assert.ok(!r.isError, text(r));
      assert.match(text(r), /finished/);
      assert.ok(progress >= 2, `${progress} progress notifications while the command ran`);
    });

    test("cancelling a call stops its command", async () => {
      const marker = "cancelled-marker";
      const abort = new AbortController();
      const call = client.callTool(
        { name: "run_command", arguments: { command: `sleep 8 && touch /workspaces/project/${marker}` } },
        { signal: abort.signal },
      );
      const rejected = assert.rejects(call);
      assert.ok(await waitUntil(async () => (await sleeps(client)) === 1, 5000), "the command never started");
      abort.abort("the user pressed stop");
      await rejected;
      assert.ok(await waitUntil(async () => (await sleeps(client)) === 0, 4000), "the cancelled command kept running");
      const left = await client.callTool({ name: "list_directory", arguments: { path: "." } });
      assert.ok(!text(left).includes(marker), text(left));
    });
  });
}

describe(`${MODERN} sessions over HTTP: a sandbox per client token, beside 2025-11-25 sessions`, () => {
  let env;
  let server;
  let cursorToken;

  before(async () => {
    env = new TestEnv("modern-sessions");
    env.useSharedKeychain();
    server = await Server.start(env);
    cursorToken = env.installClient("cursor", ".cursor/mcp.json");
    assert.notEqual(cursorToken, TOKEN);
  });

  after(async () => {
    await server?.stop();
    const left = await waitUntil(() => env.containers().length === 0, 10000);
    const leftover = env.containers();
    env.cleanup();
    assert.ok(left, `sandboxes outlived the engine: ${leftover}`);
  });

  test("two tokens get two sandboxes; one token's clients share one", async () => {
    const mine = await modernClient("http", env, server);
    const again = await modernClient("http", env, server);
    const cursor = await modernClient("http", env, server, cursorToken);
    const [a, b, c] = await Promise.all([sandboxOf(mine), sandboxOf(again), sandboxOf(cursor)]);
    assert.equal(a, b, "two connections with one token are one client: one sandbox");
    assert.notEqual(a, c, "another client's token got the same sandbox");
    await Promise.all([mine.close(), again.close(), cursor.close()]);
  });

  test("a conversation handle in _meta narrows a client's sandbox", async () => {
    const client = await modernClient("http", env, server);
    const inChat = async (conversation) => {
      const _meta = conversation ? { "airlock/conversation": conversation } : undefined;
      const r = await client.callTool({ name: "run_command", arguments: { command: "hostname" }, _meta });
      assert.ok(!r.isError, text(r));
      return r.structuredContent.stdout.trim();
    };
    const [plain, one, two, oneAgain] = await Promise.all([inChat(null), inChat("chat-1"), inChat("chat-2"), inChat("chat-1")]);
    assert.equal(one, oneAgain, "one conversation, one sandbox");
    assert.notEqual(one, two, "two conversations shared a sandbox");
    assert.notEqual(one, plain, "a conversation shared the client's own sandbox");
    await client.close();
  });

  test("a process handle of one client is refused to another", async () => {
    const mine = await modernClient("http", env, server);
    const cursor = await modernClient("http", env, server, cursorToken);
    const started = await mine.callTool({ name: "start_process", arguments: { command: "echo only-mine; sleep 30" } });
    assert.ok(!started.isError, text(started));
    const handle = started.structuredContent.handle;
    const own = await waitUntil(async () => {
      const r = await mine.callTool({ name: "read_process_output", arguments: { handle } });
      return text(r).includes("only-mine") && r;
    }, 5000);
    assert.ok(own, "the process's own client could not read it");
    for (const tool of ["read_process_output", "write_process_input", "kill_process"]) {
      const args = tool === "write_process_input" ? { handle, input: "x\n" } : { handle };
      const r = await cursor.callTool({ name: tool, arguments: args });
      assert.ok(r.isError, `${tool} with another client's handle: ${text(r)}`);
      assert.ok(!text(r).includes("only-mine"), text(r));
    }
    // Still running and still its owner's.
    const after = await mine.callTool({ name: "kill_process", arguments: { handle } });
    assert.ok(!after.isError, text(after));
    await Promise.all([mine.close(), cursor.close()]);
  });

  test("a 2025-11-25 session id presented with another client's token is refused", async () => {
    const owner = await sdkClient("http", env, server);
    const own = await sandboxOf(owner);
    const sessionId = owner.transport.sessionId;
    assert.ok(sessionId, "the SDK client has no session id");
    const hijack = await fetch(server.url, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${cursorToken}`,
        "Mcp-Session-Id": sessionId,
        "MCP-Protocol-Version": owner.transport.protocolVersion,
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "run_command", arguments: { command: "hostname" } } }),
    });
    const body = await hijack.text();
    assert.match(body, /belongs to another client's token/, body);
    assert.match(body, /"code":-32600/, body);
    assert.ok(!body.includes(own), `the other client's token reached the session's sandbox: ${body}`);
    // The session still serves its own client.
    assert.equal(await sandboxOf(owner), own);
    await owner.transport.terminateSession();
    await owner.close();
  });

  test("a 2025-11-25 client and a 2026-07-28 client work at the same time", async () => {
    const legacy = await sdkClient("http", env, server);
    const modern = await modernClient("http", env, server);
    assert.equal(legacy.transport.protocolVersion, "2025-11-25");
    const reads = await Promise.all(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? legacy : modern).callTool({ name: "read_file", arguments: { path: "hello.txt" } })),
    );
    for (const r of reads) assert.equal(text(r), "hello from the host\n");
    const [own, theirs] = await Promise.all([sandboxOf(legacy), sandboxOf(modern)]);
    assert.notEqual(own, theirs, "the protocol session has a sandbox of its own");
    // Ending the legacy session removes its sandbox only.
    const before = env.containers().length;
    await legacy.transport.terminateSession();
    await legacy.close();
    assert.ok(await waitUntil(() => env.containers().length === before - 1, 5000), "the ended session's sandbox stayed");
    assert.equal(await sandboxOf(modern), theirs);
    await modern.close();
  });
});
