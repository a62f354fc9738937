// The MCP Inspector's CLI in strict mode lists Airlock's tools over HTTP and finds no schema
// portability problem in any input or output schema (not even a warning).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { Server, TestEnv, TOKEN } from "./harness.mjs";

const inspector = createRequire(import.meta.url).resolve("@modelcontextprotocol/inspector/clients/launcher/build/index.js");

let env;
let server;

before(async () => {
  env = new TestEnv("inspector");
  server = await Server.start(env);
});

after(async () => {
  await server?.stop();
  env.cleanup();
});

test("Inspector CLI --strict: tools/list with no warning", async () => {
  const args = [inspector, "--cli", server.url, "--transport", "http", "--header", `Authorization: Bearer ${TOKEN}`];
  args.push("--method", "tools/list", "--strict");
  // Its catalog goes to the test's own dir, never the user's home.
  const run = await promisify(execFile)(process.execPath, args, {
    env: { ...process.env, MCP_CATALOG_PATH: join(env.dir, "catalog.json") },
    timeout: 60000,
  }).catch((e) => assert.fail(`the Inspector CLI failed (exit ${e.code}):\n${e.stderr}\n${e.stdout}`));
  assert.doesNotMatch(run.stderr, /Warning|Error|portability/i, run.stderr);
  const { tools } = JSON.parse(run.stdout);
  assert.equal(tools.length, 19, run.stdout);
  const withOutput = tools.filter((t) => t.outputSchema).map((t) => t.name);
  assert.ok(withOutput.includes("read_file") && withOutput.includes("run_command"), `outputSchema on ${withOutput}`);
});
