// The harness for the peer suites: a real `airlock serve` on real Docker, and the clients people
// use (the official TypeScript SDK client on HTTP, stdio and through `airlock connect`).
//
// The same ground rules as the Rust and Python end-to-end tests: the local test image, the static
// agent and a real `airlock` binary; a missing prerequisite fails the run, nothing is skipped.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const TARGET = process.env.CARGO_TARGET_DIR || join(REPO, "target");
export const AIRLOCK_BIN = process.env.AIRLOCK_BIN || join(TARGET, "debug", "airlock");
const AGENT_DIR = process.env.AIRLOCK_AGENT_DIR || join(TARGET, "airlock-agent");
const TEST_IMAGE = process.env.AIRLOCK_TEST_IMAGE || "airlock-test-busybox:1";
export const TOKEN = "ts-test-token-0123456789";
const SANDBOX_UID = 65532;

/// What is missing to run these suites, as lines saying what to do.
function missingPrerequisites() {
  const problems = [];
  if (!existsSync(AIRLOCK_BIN)) problems.push(`the engine binary ${AIRLOCK_BIN} is missing: run \`make build\``);
  if (!existsSync(join(AGENT_DIR, "airlock-agent-linux-amd64"))) {
    problems.push(`the static agent in ${AGENT_DIR} is missing: run \`make agent\``);
  }
  try {
    execFileSync("docker", ["image", "inspect", TEST_IMAGE], { stdio: "ignore" });
  } catch {
    problems.push(`no Docker engine answers, or the test image ${TEST_IMAGE} is missing: run \`make setup\``);
  }
  return problems;
}

const problems = missingPrerequisites();
if (problems.length > 0) {
  throw new Error(`prerequisites missing (these tests never skip):\n  ${problems.join("\n  ")}`);
}

/// Polls `check` (sync or async) until it is truthy or `ms` pass; returns its last value.
export async function waitUntil(check, ms = 15000, every = 100) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value || Date.now() >= deadline) return value;
    await new Promise((r) => setTimeout(r, every));
  }
}

/// The text content of a tool result.
export const text = (result) => result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");

function giveToSandbox(path) {
  if (process.getuid() !== 0) return;
  chownSync(path, SANDBOX_UID, SANDBOX_UID);
  if (lstatSync(path).isDirectory()) {
    for (const name of readdirSync(path)) giveToSandbox(join(path, name));
  }
}

/// A temp config and data dir with a `project` (rw) and a `data` (ro) workspace. `approval` is the
/// body of the `[approval]` table (every tool allowed unless told otherwise).
export class TestEnv {
  constructor(label, approval = 'allow = ["*"]') {
    this.dir = mkdtempSync(join(tmpdir(), `airlock-ts-${label}-`));
    this.config = join(this.dir, "airlock.toml");
    this.data = join(this.dir, "state");
    this.project = join(this.dir, "project");
    const dataWs = join(this.dir, "data");
    mkdirSync(this.project);
    mkdirSync(dataWs);
    writeFileSync(join(this.project, "hello.txt"), "hello from the host\n");
    writeFileSync(join(dataWs, "readme.txt"), "read only data\n");
    giveToSandbox(this.project);
    writeFileSync(
      this.config,
      `listen = "127.0.0.1:0"
[runtime]
image = "${TEST_IMAGE}"
memory_mb = 256
pids = 64
command_timeout_secs = 20

[approval]
${approval}

[[workspaces]]
name = "project"
path = "${this.project}"
access = "rw"

[[workspaces]]
name = "data"
path = "${dataWs}"
access = "ro"
`,
    );
  }

  /// Keeps this env's tokens in a keychain (the kernel's keyutils, a service of its own) that
  /// other `airlock` processes of the env share, so `airlock clients --install` can issue one.
  useSharedKeychain() {
    this.keychainService = `dev.airlock.test.ts-${process.pid}-${Date.now()}`;
    this.home = join(this.dir, "home");
    mkdirSync(this.home);
  }

  /// The environment an `airlock` process of this env runs with.
  processEnv() {
    const env = { ...process.env };
    for (const name of Object.keys(env)) if (name.startsWith("npm_")) delete env[name];
    const keychain = this.keychainService
      ? { AIRLOCK_KEYRING: "keyutils", AIRLOCK_KEYCHAIN_SERVICE: this.keychainService, HOME: this.home }
      : { AIRLOCK_KEYRING: "mock" };
    return {
      ...env,
      AIRLOCK_DATA_DIR: this.data,
      AIRLOCK_TOKEN: TOKEN,
      AIRLOCK_AGENT_DIR: AGENT_DIR,
      ...keychain,
    };
  }

  /// Issues `client` a token of its own with `airlock clients --install` (needs
  /// `useSharedKeychain`) and returns it, as read from the client's installed config.
  installClient(client, configFile) {
    execFileSync(AIRLOCK_BIN, ["clients", "--install", client, "--config", this.config], {
      env: this.processEnv(),
      stdio: ["ignore", "ignore", "inherit"],
    });
    const installed = JSON.parse(readFileSync(join(this.home, configFile), "utf8"));
    return installed.mcpServers.airlock.headers.Authorization.replace(/^Bearer /, "");
  }

  /// The engine labels its containers with sha256(data dir)[:12] (crates/airlock/src/paths.rs).
  containers() {
    const id = createHash("sha256").update(this.data).digest("hex").slice(0, 12);
    const out = execFileSync("docker", ["ps", "-aq", "--filter", `label=dev.airlock.instance=${id}`], { encoding: "utf8" });
    return out.split("\n").filter(Boolean);
  }

  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/// A running `airlock serve` on HTTP; `args` are extra arguments (e.g. `--control stdio`).
export class Server {
  static async start(env, args = []) {
    const server = new Server();
    server.stderr = [];
    server.proc = spawn(AIRLOCK_BIN, ["serve", "--config", env.config, "--listen", "127.0.0.1:0", ...args], {
      env: env.processEnv(),
      stdio: ["pipe", "pipe", "pipe"],
    });
    server.exited = new Promise((r) => server.proc.once("exit", (code, signal) => r({ code, signal })));
    let buffered = "";
    server.url = await new Promise((resolveUrl, reject) => {
      const timer = setTimeout(() => reject(new Error(`airlock serve did not report its URL: ${server.stderr.join("\n")}`)), 30000);
      server.proc.stderr.setEncoding("utf8");
      server.proc.stderr.on("data", (chunk) => {
        buffered += chunk;
        let nl;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          server.stderr.push(line);
          const url = line.match(/^airlock: listening on (\S+)/);
          if (url) {
            clearTimeout(timer);
            resolveUrl(url[1]);
          }
        }
      });
      server.exited.then(({ code }) => reject(new Error(`airlock serve exited (${code}): ${server.stderr.join("\n")}`)));
    });
    return server;
  }

  /// SIGTERM, as a user's Ctrl-C would; the engine removes its sandboxes and exits 0.
  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGTERM");
    const exit = await Promise.race([this.exited, new Promise((r) => setTimeout(() => r(null), 30000).unref())]);
    if (exit === null) {
      this.proc.kill("SIGKILL");
      throw new Error(`airlock serve did not exit within 30 s of SIGTERM: ${this.stderr.join("\n")}`);
    }
    const panics = this.stderr.filter((l) => l.includes("panicked"));
    if (panics.length > 0) throw new Error(`airlock serve panicked: ${panics.join("\n")}`);
    return exit;
  }
}

/// The official SDK client, with its default options, on one of the transports: `http` (to
/// `server`), `stdio` (`airlock serve --stdio`, launched by the SDK) or `connect` (`airlock
/// connect`, launched by the SDK, bridging to `server`).
export async function sdkClient(transport, env, server) {
  const client = new Client({ name: "airlock-ts-tests", version: "1" });
  let t;
  if (transport === "http") {
    t = new StreamableHTTPClientTransport(new URL(server.url), {
      requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
    });
  } else {
    const args = transport === "stdio" ? ["serve", "--stdio"] : ["connect"];
    t = new StdioClientTransport({
      command: AIRLOCK_BIN,
      args: [...args, "--config", env.config],
      env: env.processEnv(),
      stderr: "inherit",
    });
  }
  await client.connect(t);
  return client;
}
