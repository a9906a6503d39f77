#!/usr/bin/env node
// MCP server start-up and idle memory: `meshwire mcp --mesh ID` against the
// official reference server (@modelcontextprotocol/server-everything, stdio).
//
// For each run: spawn the server, write the `initialize` line at once, time
// spawn -> initialize answer (process.hrtime), send notifications/initialized,
// wait IDLE_MS, read VmRSS from /proc/PID/status, then close stdin and wait for
// the process to exit (SIGKILL after 2 s). The two servers alternate run by
// run so that drift on the machine hits both alike. meshwire runs against a
// relay this script starts on 127.0.0.1 (temp dir), with a valid token.
//
// Usage (from the repository root; `npm ci` in tests/ first):
//   node bench/mcp_startup.mjs [--runs N] [--idle-ms MS] [--warmup N]
// Environment: MESHWIRE_BINARY (default build/cli/meshwire), EVERYTHING_ENTRY
// (default tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js),
// MCP_STARTUP_RUNS, MCP_STARTUP_IDLE_MS, MCP_STARTUP_WARMUP.
// Prints a markdown table, the ratios, and one JSON line (last line of stdout).
// Exit status: 0 done, 1 a run failed (no or bad initialize answer), 2 usage.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  BINARY,
  ROOT,
  createToken,
  exitOnSignals,
  killAll,
  removeDirs,
  rest,
  sleep,
  startRelay,
  tempDir,
  track,
} from "../tests/js/support/relay.mjs";

const EVERYTHING =
  process.env.EVERYTHING_ENTRY ||
  path.join(ROOT, "tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js");

function usage(message) {
  process.stderr.write(`${message}\nusage: node bench/mcp_startup.mjs [--runs N] [--idle-ms MS] [--warmup N]\n`);
  process.exit(2);
}

const options = {
  runs: Number(process.env.MCP_STARTUP_RUNS ?? 30),
  idleMs: Number(process.env.MCP_STARTUP_IDLE_MS ?? 1000),
  warmup: Number(process.env.MCP_STARTUP_WARMUP ?? 1),
};
for (let i = 2; i < process.argv.length; i++) {
  const flag = process.argv[i];
  const value = Number(process.argv[i + 1]);
  const key = { "--runs": "runs", "--idle-ms": "idleMs", "--warmup": "warmup" }[flag];
  if (flag === "--help" || flag === "-h") usage("MCP server start-up time and idle memory, meshwire vs server-everything.");
  if (!key) usage(`unknown argument: ${flag}`);
  options[key] = value;
  i++;
}
if (!Number.isInteger(options.runs) || options.runs < 1 || options.runs > 1000) usage("--runs: 1 to 1000");
if (!Number.isInteger(options.idleMs) || options.idleMs < 0 || options.idleMs > 60000) usage("--idle-ms: 0 to 60000");
if (!Number.isInteger(options.warmup) || options.warmup < 0 || options.warmup > 10) usage("--warmup: 0 to 10");
if (!fs.existsSync(BINARY)) usage(`no meshwire binary at ${BINARY}: build it or set MESHWIRE_BINARY`);
if (!fs.existsSync(EVERYTHING)) usage(`no server-everything at ${EVERYTHING}: run \`npm ci\` in tests/ or set EVERYTHING_ENTRY`);

// ---------------------------------------------------------------------------
// Cleanup of everything started here, whatever happens (../tests/js/support/relay.mjs
// kills every tracked process and removes its temp dirs at exit)

const dir = tempDir("mw-mcp-startup-");
exitOnSignals(130);
// Hard bound: (answer 10 s + idle + exit 2 s) per run, plus set-up.
const budgetMs = 30000 + (options.runs + options.warmup) * 2 * (12000 + options.idleMs);
setTimeout(() => {
  process.stderr.write(`mcp_startup: still running after ${budgetMs} ms, giving up\n`);
  killAll();
  removeDirs();
  process.exit(1);
}, budgetMs).unref();

function baseEnv(extra) {
  const env = { PATH: process.env.PATH, HOME: path.join(dir, "home"), LANG: process.env.LANG ?? "C.UTF-8" };
  return { ...env, ...extra };
}

// The relay meshwire talks to, and the token command: their own MESHWIRE_HOME.
const relayEnv = baseEnv({ MESHWIRE_HOME: path.join(dir, "relay-home") });

// ---------------------------------------------------------------------------
// One run: spawn -> initialize answer, then RSS after IDLE_MS, then EOF -> exit

const INITIALIZE =
  JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: {
      protocolVersion: "2025-11-25",
      capabilities: {},
      clientInfo: { name: "meshwire-mcp-startup-bench", version: "1.0.0" },
    },
  }) + "\n";
const INITIALIZED = JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n";

function rssKib(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) : NaN;
}

async function runOnce(server) {
  const t0 = process.hrtime.bigint();
  const child = track(spawn(server.command, server.args, { stdio: ["pipe", "pipe", "ignore"], env: server.env, cwd: server.cwd }));
  child.stdin.on("error", () => {}); // a server that exits early must not crash the bench
  child.stdin.write(INITIALIZE);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  let buffer = "";
  const answer = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ error: "no initialize answer within 10 s" }), 10000);
    child.once("exit", (code) => resolve({ error: `exited (${code}) before answering initialize` }));
    child.once("error", (err) => resolve({ error: err.message }));
    child.stdout.on("data", (chunk) => {
      const now = process.hrtime.bigint();
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        let message;
        try {
          message = JSON.parse(line);
        } catch {
          clearTimeout(timer);
          resolve({ error: `stdout line is not JSON: ${line.slice(0, 200)}` });
          return;
        }
        if (message.id === 1) {
          clearTimeout(timer);
          resolve(message.result?.protocolVersion ? { ms: Number(now - t0) / 1e6 } : { error: `bad answer: ${line.slice(0, 200)}` });
          return;
        }
      }
    });
  });
  const run = { ms: answer.ms ?? null, error: answer.error ?? null, rss_kib: null, eof_exit: false };
  if (!run.error) {
    child.stdin.write(INITIALIZED);
    await sleep(options.idleMs);
    try {
      run.rss_kib = rssKib(child.pid);
    } catch (err) {
      run.error = `cannot read /proc/${child.pid}/status: ${err.message}`;
    }
  }
  child.stdout.resume();
  child.stdin.end();
  const timer = setTimeout(() => child.kill("SIGKILL"), 2000);
  const { code, signal } = await exited;
  clearTimeout(timer);
  run.eof_exit = signal === null && code === 0;
  return run;
}

// ---------------------------------------------------------------------------
// Figures

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1];
}

function summarize(runs) {
  const ok = runs.filter((r) => !r.error);
  const ms = ok.map((r) => r.ms).sort((a, b) => a - b);
  const rss = ok.map((r) => r.rss_kib / 1024).sort((a, b) => a - b);
  const round = (x, digits = 2) => (x == null ? null : Number(x.toFixed(digits)));
  return {
    runs: runs.length,
    failures: runs.length - ok.length,
    errors: [...new Set(runs.filter((r) => r.error).map((r) => r.error))],
    init_p50_ms: round(percentile(ms, 50)),
    init_p90_ms: round(percentile(ms, 90)),
    init_max_ms: round(ms.at(-1)),
    init_min_ms: round(ms[0]),
    rss_p50_mib: round(percentile(rss, 50), 1),
    rss_max_mib: round(rss.at(-1), 1),
    eof_exits: runs.filter((r) => r.eof_exit).length,
  };
}

// ---------------------------------------------------------------------------

const relay = await startRelay(dir, { env: relayEnv });
const token = createToken(dir, "bench", { env: relayEnv });
const { mesh_id: meshId } = await rest(relay.url, token, "POST", "/mesh", { name: "mcp-startup-bench" });
fs.mkdirSync(path.join(dir, "home"), { recursive: true });

const servers = [
  {
    key: "meshwire",
    label: "`meshwire mcp --mesh ID`",
    command: BINARY,
    args: ["mcp", "--mesh", meshId, "--name", "bench-agent"],
    env: baseEnv({
      MESHWIRE_HOME: path.join(dir, "home/.meshwire"),
      MESHWIRE_TOKEN: token,
      MESHWIRE_URL: relay.url,
    }),
    cwd: path.join(dir, "home"),
    version: execFileSync(BINARY, ["--version"]).toString().trim(),
  },
  {
    key: "everything",
    label: "server-everything (node, stdio)",
    command: process.execPath,
    args: [EVERYTHING, "stdio"],
    env: baseEnv({}),
    cwd: path.join(dir, "home"),
    version: (() => {
      try {
        return JSON.parse(fs.readFileSync(path.join(path.dirname(EVERYTHING), "../package.json"), "utf8")).version;
      } catch {
        return "unknown";
      }
    })(),
  },
];

const results = Object.fromEntries(servers.map((s) => [s.key, []]));
for (let i = 0; i < options.warmup; i++) for (const server of servers) await runOnce(server);
for (let i = 0; i < options.runs; i++) {
  for (const server of servers) results[server.key].push(await runOnce(server));
  process.stderr.write(`\rrun ${i + 1}/${options.runs}`);
}
process.stderr.write("\n");
await relay.stop();

const summary = Object.fromEntries(servers.map((s) => [s.key, { version: s.version, ...summarize(results[s.key]) }]));
const ratio = (a, b) => (a != null && b ? Number((a / b).toFixed(1)) : null);
const ratios = {
  init_p50: ratio(summary.everything.init_p50_ms, summary.meshwire.init_p50_ms),
  init_p90: ratio(summary.everything.init_p90_ms, summary.meshwire.init_p90_ms),
  rss_p50: ratio(summary.everything.rss_p50_mib, summary.meshwire.rss_p50_mib),
};

const cpu = (os.cpus()[0]?.model ?? "unknown").trim();
console.log(
  `MCP start-up, ${options.runs} runs each (${options.warmup} warm-up), spawn -> initialize answer; ` +
    `RSS ${options.idleMs} ms after initialize. ${os.cpus().length} × ${cpu}, Node ${process.version}.\n`,
);
console.log("| server | version | runs | init p50 ms | init p90 ms | init max ms | RSS p50 MiB | RSS max MiB | exits on EOF |");
console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|");
for (const server of servers) {
  const s = summary[server.key];
  console.log(
    `| ${server.label} | ${s.version} | ${s.runs - s.failures}/${s.runs} | ${s.init_p50_ms} | ${s.init_p90_ms} | ${s.init_max_ms} | ` +
      `${s.rss_p50_mib} | ${s.rss_max_mib} | ${s.eof_exits}/${s.runs} |`,
  );
}
console.log(
  `\neverything / meshwire: start-up p50 ×${ratios.init_p50}, p90 ×${ratios.init_p90}; idle RSS p50 ×${ratios.rss_p50}\n`,
);
for (const server of servers) {
  for (const error of summary[server.key].errors) console.log(`${server.key}: ${error}`);
}
console.log(
  JSON.stringify({
    bench: "mcp_startup",
    runs: options.runs,
    warmup: options.warmup,
    idle_ms: options.idleMs,
    node: process.version,
    cpus: os.cpus().length,
    cpu,
    kernel: os.release(),
    meshwire: summary.meshwire,
    everything: summary.everything,
    ratio: ratios,
  }),
);
process.exitCode = summary.meshwire.failures + summary.everything.failures > 0 ? 1 : 0;
