// The official TypeScript SDK client (what Claude Code, Cursor and VS Code use), with its
// default options, against a real engine on each transport: Streamable HTTP, `serve --stdio`
// and `airlock connect`. Its client validates every `structuredContent` against the tool's
// `outputSchema`, so a result that strays from its schema fails here.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Server, TestEnv, sdkClient, text, waitUntil } from "./harness.mjs";

/// How many `sleep` processes run in the session's sandbox.
async function sleeps(client) {
  const r = await client.callTool({ name: "run_command", arguments: { command: "ps -o comm | grep -c '^sleep'; true" } });
  const count = Number(text(r).split("--- stdout ---\n")[1]?.split("\n")[0]);
  assert.ok(Number.isInteger(count), `no count in ${text(r)}`);
  return count;
}

for (const transport of ["http", "stdio", "connect"]) {
  describe(`TypeScript SDK client over ${transport}`, () => {
    let env;
    let server;
    let client;

    before(async () => {
      env = new TestEnv(transport);
      if (transport !== "stdio") server = await Server.start(env);
      client = await sdkClient(transport, env, server);
    });

    after(async () => {
      // Over HTTP the SDK ends its session only when asked (a DELETE); stdio ends with the process.
      if (transport === "http") await client?.transport.terminateSession();
      await client?.close();
      // The session ends with its client: its sandbox goes at once, not at the idle timeout.
      const left = await waitUntil(() => env.containers().length === 0, 5000);
      await server?.stop();
      const leftover = env.containers();
      env.cleanup();
      assert.ok(left, `the ${transport} session's sandbox outlived its client: ${leftover}`);
    });

    test("lists the tools, each schema one the SDK compiles", async () => {
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      for (const name of ["list_workspaces", "read_file", "run_command", "grep"]) {
        assert.ok(names.includes(name), `${name} missing from ${names}`);
      }
      for (const tool of tools) assert.equal(tool.inputSchema.type, "object", tool.name);
    });

    test("reads a file", async () => {
      const r = await client.callTool({ name: "read_file", arguments: { path: "hello.txt" } });
      assert.ok(!r.isError, text(r));
      assert.equal(text(r), "hello from the host\n");
      assert.equal(r.structuredContent.path, "/workspaces/project/hello.txt");
    });

    test("every structured result fits its tool's outputSchema (the SDK validates each)", async () => {
      const { tools } = await client.listTools();
      const declared = tools.filter((t) => t.outputSchema).map((t) => t.name);
      const results = {};
      const callTool = async (name, args) => {
        results[name] = await client.callTool({ name, arguments: args });
        assert.ok(results[name].structuredContent, `${name} returned no structuredContent: ${text(results[name])}`);
        return results[name];
      };
      await callTool("list_workspaces", {});
      await callTool("read_file", { path: "hello.txt" });
      await callTool("write_file", { path: "schema/out.txt", content: "x\n" });
      await callTool("edit_file", { path: "schema/out.txt", edits: [{ old_text: "x", new_text: "y" }] });
      await callTool("list_directory", { path: "." });
      await callTool("directory_tree", { path: "." });
      await callTool("search_files", { path: ".", pattern: "**/*.txt" });
      await callTool("grep", { path: ".", regex: "hello" });
      await callTool("file_info", { path: "hello.txt" });
      // A failed command is an error result, and its structured content is validated all the same.
      assert.ok((await callTool("run_command", { command: "echo out; echo err >&2; exit 3" })).isError);
      const { handle } = (await callTool("start_process", { command: "echo started; sleep 30" })).structuredContent;
      await callTool("read_process_output", { handle, wait_ms: 2000 });
      await callTool("list_processes", {});
      assert.equal((await callTool("kill_process", { handle })).structuredContent.running, false);
      // install_packages returns run_command's shape; it needs a network this suite does not give.
      assert.deepEqual(
        declared.filter((name) => !(name in results)),
        ["install_packages"],
        "every tool with an outputSchema was called",
      );
    });

    test("a long call reports progress and completes under the default options", async () => {
      let progress = 0;
      const r = await client.callTool(
        { name: "run_command", arguments: { command: "sleep 3; echo finished" } },
        undefined,
        { onprogress: () => progress++ },
      );
      assert.ok(!r.isError, text(r));
      assert.match(text(r), /finished/);
      assert.ok(progress >= 2, `${progress} progress notifications while the command ran`);
    });

    test("cancelling a call stops its command", async () => {
      const marker = "/workspaces/project/cancelled-marker";
      const abort = new AbortController();
      const call = client.callTool(
        { name: "run_command", arguments: { command: `sleep 8 && touch ${marker}` } },
        undefined,
        { signal: abort.signal },
      );
      const rejected = assert.rejects(call);
      assert.ok(await waitUntil(async () => (await sleeps(client)) === 1, 5000), "the command never started");
      abort.abort("the user pressed stop");
      await rejected;
      assert.ok(await waitUntil(async () => (await sleeps(client)) === 0, 4000), "the cancelled command kept running");
      assert.ok(!existsSync(join(env.project, "cancelled-marker")));
    });
  });
}

/// The app's side of the control channel: approval requests as they arrive on the engine's
/// stdout, answered on its stdin.
class Approver {
  constructor(server) {
    this.server = server;
    this.waiting = [];
    this.requests = [];
    let buffered = "";
    server.proc.stdout.setEncoding("utf8");
    server.proc.stdout.on("data", (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const message = JSON.parse(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if (message.type !== "approval_request") continue;
        const waiter = this.waiting.shift();
        if (waiter) waiter(message);
        else this.requests.push(message);
      }
    });
  }

  next() {
    const ready = this.requests.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolveRequest, reject) => {
      const timer = setTimeout(() => reject(new Error("no approval request arrived")), 20000);
      this.waiting.push((m) => {
        clearTimeout(timer);
        resolveRequest(m);
      });
    });
  }

  decide(id, decision) {
    this.server.proc.stdin.write(`${JSON.stringify({ type: "approval_decision", id, decision })}\n`);
  }
}

describe("an approval prompt answered in time", () => {
  let env;
  let server;
  let approver;

  before(async () => {
    env = new TestEnv("approval", 'ask = ["run_command"]\nallow = ["read_file"]');
    server = await Server.start(env, ["--control", "stdio"]);
    approver = new Approver(server);
  });

  after(async () => {
    await server?.stop();
    env.cleanup();
  });

  for (const transport of ["http", "connect"]) {
    test(`over ${transport}: the call waits, reports progress, and runs once allowed`, async () => {
      const client = await sdkClient(transport, env, server);
      try {
        let progress = 0;
        let sawProgress;
        const progressed = new Promise((r) => (sawProgress = r));
        const call = client.callTool(
          { name: "run_command", arguments: { command: "echo approved" } },
          undefined,
          {
            onprogress: () => {
              progress++;
              sawProgress();
            },
          },
        );
        const request = await approver.next();
        assert.equal(request.tool, "run_command");
        // The client hears that the call waits for the user before the user answers.
        await progressed;
        approver.decide(request.id, "allow_once");
        const r = await call;
        assert.ok(!r.isError, text(r));
        assert.match(text(r), /approved/);
        assert.ok(progress >= 1);
      } finally {
        await client.close();
      }
    });
  }
});
