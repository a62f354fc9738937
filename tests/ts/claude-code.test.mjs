// Claude Code (pinned in tests/ts) against a real engine: its `claude mcp list` health check
// connects to Airlock as installed by `airlock clients --install claude-code`, and as set up by
// the `claude mcp add` line `airlock clients` prints; a refused token shows Airlock's own words.
// Claude Code runs with a HOME of the test's own and no account: the health check needs none.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { AIRLOCK_BIN, REPO, Server, TestEnv } from "./harness.mjs";

const CLAUDE = join(REPO, "tests", "ts", "node_modules", ".bin", "claude");

/// Runs `claude` with `home` as its HOME (its config is `home/.claude.json`), in `cwd`.
function claude(home, cwd, args) {
  const r = spawnSync(CLAUDE, args, {
    cwd,
    env: { PATH: process.env.PATH, HOME: home, DISABLE_AUTOUPDATER: "1" },
    encoding: "utf8",
    timeout: 60000,
  });
  assert.equal(r.error, undefined, `claude ${args.join(" ")}: ${r.error}`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/// The line `claude mcp list` prints for the server named `name`.
function healthOf(home, cwd, name) {
  const { status, out } = claude(home, cwd, ["mcp", "list"]);
  assert.equal(status, 0, out);
  const line = out.split("\n").find((l) => l.startsWith(`${name}:`));
  assert.ok(line, `no ${name} in \`claude mcp list\`:\n${out}`);
  return line;
}

describe("Claude Code's `claude mcp list`", () => {
  let env;
  let server;

  before(async () => {
    env = new TestEnv("claude-code");
    env.useSharedKeychain();
    server = await Server.start(env);
    const { status, out } = claude(env.home, env.dir, ["--version"]);
    assert.equal(status, 0, `Claude Code does not run here: ${out}`);
  });

  after(async () => {
    await server?.stop();
    env.cleanup();
  });

  test("connects to Airlock as `airlock clients --install claude-code` configured it", () => {
    execFileSync(AIRLOCK_BIN, ["clients", "--install", "claude-code", "--config", env.config], {
      env: env.processEnv(),
      stdio: ["ignore", "ignore", "inherit"],
    });
    assert.match(healthOf(env.home, env.dir, "airlock"), /✔ Connected/);
  });

  test("connects through the `claude mcp add` line `airlock clients` prints, run as pasted", () => {
    const printed = execFileSync(AIRLOCK_BIN, ["clients", "--config", env.config], { env: env.processEnv(), encoding: "utf8" });
    const line = printed.split("\n").find((l) => l.startsWith("claude mcp add "));
    assert.ok(line, `no \`claude mcp add\` line in:\n${printed}`);
    const home = mkdtempSync(join(env.dir, "pasted-"));
    const r = spawnSync("sh", ["-c", line.replace(/^claude /, `"${CLAUDE}" `)], {
      cwd: env.dir,
      env: { PATH: process.env.PATH, HOME: home },
      encoding: "utf8",
      timeout: 60000,
    });
    assert.equal(r.status, 0, `${line}\n${r.stdout}${r.stderr}`);
    assert.match(healthOf(home, env.dir, "airlock"), /✔ Connected/);
  });

  test("a token Airlock refuses is shown with Airlock's advice, not an OAuth prompt", () => {
    const home = join(env.dir, "refused");
    mkdirSync(home);
    const add = ["mcp", "add", "--scope", "user", "--transport", "http", "airlock", server.url, "--header", "Authorization: Bearer not-a-token"];
    assert.equal(claude(home, env.dir, add).status, 0);
    const line = healthOf(home, env.dir, "airlock");
    assert.match(line, /✘ Failed/);
    assert.match(line, /airlock clients --install/);
  });
});
