// `make bench`: a warm `read_file` as the official TypeScript MCP SDK client sees it (the
// client Claude Code, Cursor and VS Code use), against Airlock and, in the same run, against a
// plain TypeScript-SDK server reading the same file natively.
//
//   node read_bench.mjs measure <name> <url> <token|-> <path> <n>   prints "<name> p50 <ms> p99 <ms>"
//   node read_bench.mjs serve <dir>                                  a native server; prints its URL
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { z } from "zod";

const [mode, ...args] = process.argv.slice(2);

async function measure(name, url, token, path, n) {
  const headers = token === "-" ? {} : { Authorization: `Bearer ${token}` };
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name: "airlock-bench", version: "1" });
  await client.connect(transport);
  const once = async () => {
    const r = await client.callTool({ name: "read_file", arguments: { path } });
    if (r.isError) throw new Error(`read_file failed: ${JSON.stringify(r.content)}`);
  };
  for (let i = 0; i < 30; i++) await once();
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await once();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  console.log(`${name} p50 ${at(0.5).toFixed(3)} p99 ${at(0.99).toFixed(3)} n ${n}`);
  await client.close();
}

async function serve(dir) {
  const transports = new Map();
  const server = createServer(async (req, res) => {
    const id = req.headers["mcp-session-id"];
    let transport = id && transports.get(id);
    if (!transport) {
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sid) => transports.set(sid, transport),
      });
      const mcp = new McpServer({ name: "native-read", version: "1" });
      mcp.registerTool(
        "read_file",
        { description: "Read a file", inputSchema: { path: z.string() } },
        async ({ path }) => ({
          content: [{ type: "text", text: await readFile(join(dir, path), "utf8") }],
        }),
      );
      await mcp.connect(transport);
    }
    await transport.handleRequest(req, res);
  });
  server.listen(0, "127.0.0.1", () => {
    console.log(`http://127.0.0.1:${server.address().port}/mcp`);
  });
}

if (mode === "measure") {
  const [name, url, token, path, n] = args;
  await measure(name, url, token, path, Number(n));
} else if (mode === "serve") {
  await serve(args[0]);
} else {
  console.error("usage: read_bench.mjs measure <name> <url> <token|-> <path> <n> | serve <dir>");
  process.exit(2);
}
