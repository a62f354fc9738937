// The MCP conformance suite's server scenarios that apply to Airlock, against a real engine
// over Streamable HTTP. The suite takes only a URL and sends no credentials: a `node --import`
// preload (bearer.mjs) adds Airlock's bearer token to its requests; the product has no bypass.
//
// Scenarios left out test features Airlock does not offer (resources, prompts, logging,
// completions, sampling, elicitation) or call the reference server's own test tools; of those,
// tools-call-error applies: the tool it names is unknown here, and a failed call must still come
// back as a result with isError, not as a protocol error.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Server, TestEnv, TOKEN } from "./harness.mjs";

const SCENARIOS = [
  "server-initialize",
  "ping",
  "tools-list",
  "tools-call-error",
  "server-sse-multiple-streams",
  "dns-rebinding-protection",
];

const here = dirname(fileURLToPath(import.meta.url));
const conformance = createRequire(import.meta.url).resolve("@modelcontextprotocol/conformance/dist/index.js");

let env;
let server;

before(async () => {
  env = new TestEnv("conformance");
  server = await Server.start(env);
});

after(async () => {
  await server?.stop();
  env.cleanup();
});

for (const scenario of SCENARIOS) {
  test(`conformance: ${scenario}`, async () => {
    const args = ["--import", join(here, "bearer.mjs"), conformance, "server", "--url", server.url];
    args.push("--scenario", scenario, "--output-dir", join(env.dir, "conformance"));
    const run = await promisify(execFile)(process.execPath, args, {
      env: { ...process.env, AIRLOCK_TEST_BEARER: TOKEN },
      timeout: 60000,
    }).catch((e) => assert.fail(`${scenario} failed (exit ${e.code}):\n${e.stdout}\n${e.stderr}`));
    assert.doesNotMatch(run.stdout, /FAILURE|✗/, run.stdout);
  });
}
