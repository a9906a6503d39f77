#!/usr/bin/env node
// The relay's MCP endpoint (issue 12's figures), against a relay this script
// starts on 127.0.0.1 (temp dir, SQLite):
//
// 1. tools/call meshwire_send_message latency, remote (the official SDK's
//    Streamable HTTP client to /mesh/ID/mcp) next to local (the same SDK's
//    stdio client to `meshwire mcp`, which calls the same relay over REST),
//    CALLS sequential calls each, alternating in blocks of 50 so that drift
//    on the machine hits both alike. p50/p99 in ms and the ratio.
// 2. STREAMS open push streams: that many MCP sessions (agents bench-0..N-1),
//    each initialized with its GET stream open (raw HTTP, one keep-alive
//    socket each). The relay's RSS (VmRSS) before and after gives the memory
//    per session with its stream. Then PUSHES direct messages (REST, to a
//    random agent each, one at a time): the time from just before the send
//    to the arrival of its notifications/claude/channel on that agent's
//    stream (commit included), and that arrival minus the arrival of the
//    send's own answer, which the relay also writes after the commit: the
//    push's delay after the commit, as near as a client can see it. p50/p99.
//
// Usage (from the repository root; `npm ci` in tests/ first):
//   node bench/mcp_http.mjs [--calls N] [--streams N] [--pushes N]
// Environment: MESHWIRE_BINARY (default build/cli/meshwire).
// Prints a markdown summary and one JSON line (last line of stdout).
// Exit status: 0 done, 1 a step failed, 2 usage.

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import {
  BINARY,
  createToken,
  exitOnSignals,
  importSdk,
  killAll,
  removeDirs,
  rest,
  startRelay,
  tempDir,
} from "../tests/js/support/relay.mjs";

const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(args[i + 1]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} needs a whole number >= 1`);
    process.exit(2);
  }
  return n;
}
if (args.includes("--help")) {
  console.log("node bench/mcp_http.mjs [--calls N (2000)] [--streams N (1000)] [--pushes N (500)]");
  process.exit(0);
}
const CALLS = option("calls", 2000);
const STREAMS = option("streams", 1000);
const PUSHES = option("pushes", 500);

const { Client, StdioClientTransport, StreamableHTTPClientTransport } = await importSdk(
  "client/index.js",
  "client/stdio.js",
  "client/streamableHttp.js",
);

exitOnSignals();
process.on("exit", () => {
  killAll();
  removeDirs();
});

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const ms = (ns) => Number(ns) / 1e6;
function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p99: pct(s, 99), max: s[s.length - 1] };
}
const fmt = (x) => x.toFixed(3);
function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]);
}

// ---------------------------------------------------------------------------
// The relay

const storage = tempDir("mw-bench-mcp-http-");
const env = { ...process.env, MESHWIRE_HOME: path.join(storage, "home") };
for (const key of Object.keys(env)) if (key.startsWith("MESHWIRE_") && key !== "MESHWIRE_HOME") delete env[key];
const relay = await startRelay(storage, { env });
const token = createToken(storage, "bench", { env });
const mesh = (await rest(relay.url, token, "POST", "/mesh", { name: "bench" })).mesh_id;
const sink = await rest(relay.url, token, "POST", `/mesh/${mesh}/agents`, { name: "sink", harness: "rest" });

// ---------------------------------------------------------------------------
// 1. send latency: remote vs stdio

async function connectRemote() {
  const transport = new StreamableHTTPClientTransport(new URL(`${relay.url}/mesh/${mesh}/mcp?agent=remote-sender`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "bench", version: "1" });
  await client.connect(transport);
  await client.listTools();
  return client;
}

async function connectStdio() {
  const home = tempDir("mw-bench-stdio-home-");
  const transport = new StdioClientTransport({
    command: BINARY,
    args: ["mcp", "--mesh", mesh, "--name", "stdio-sender"],
    env: { PATH: process.env.PATH, HOME: home, MESHWIRE_HOME: path.join(home, ".meshwire"), MESHWIRE_TOKEN: token, MESHWIRE_URL: relay.url },
    stderr: "ignore",
  });
  const client = new Client({ name: "bench", version: "1" });
  await client.connect(transport);
  await client.listTools();
  return client;
}

async function timedSend(client, i) {
  const t = process.hrtime.bigint();
  const r = await client.callTool({ name: "meshwire_send_message", arguments: { to: "sink", content: `m${i}` } });
  const dt = ms(process.hrtime.bigint() - t);
  if (r.isError) throw new Error(`send failed: ${JSON.stringify(r)}`);
  return dt;
}

const remote = await connectRemote();
const stdio = await connectStdio();
for (let i = 0; i < 50; i++) {
  await timedSend(remote, i); // warm-up: connections, caches
  await timedSend(stdio, i);
}
const lat = { remote: [], stdio: [] };
for (let done = 0; done < CALLS; done += 50) {
  for (let i = 0; i < 50 && done + i < CALLS; i++) lat.remote.push(await timedSend(remote, done + i));
  for (let i = 0; i < 50 && done + i < CALLS; i++) lat.stdio.push(await timedSend(stdio, done + i));
}
await remote.close();
await stdio.close();
const sendRemote = summary(lat.remote);
const sendStdio = summary(lat.stdio);

// ---------------------------------------------------------------------------
// 2. push streams

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
function post(body, headers = {}, query = "", bearer = token) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${relay.url}/mesh/${mesh}/mcp${query}`,
      {
        method: "POST",
        agent,
        headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      },
      (res) => {
        let data = "";
        res.on("data", (c) => (data += c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

// One session for agent `name` with its GET stream open: { sid, request, onPush }.
// A token keeps at most 32 sessions, so every 30 sessions get a token of their own.
const tokens = [];
async function tokenFor(i) {
  const k = Math.floor(i / 30);
  if (!tokens[k]) tokens[k] = (await rest(relay.url, token, "POST", "/tokens", { name: `bench-${k}` })).token;
  return tokens[k];
}
async function openSession(name, bearer) {
  const init = await post(
    { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "bench", version: "1" } } },
    {},
    `?agent=${name}`,
    bearer,
  );
  if (init.status !== 200) throw new Error(`initialize ${name}: ${init.status} ${init.body}`);
  const sid = init.headers["mcp-session-id"];
  await post({ jsonrpc: "2.0", method: "notifications/initialized" }, { "mcp-session-id": sid }, "", bearer);
  const session = { sid, onPush: null, buffer: "" };
  await new Promise((resolve, reject) => {
    const req = http.get(
      `${relay.url}/mesh/${mesh}/mcp`,
      { headers: { authorization: `Bearer ${bearer}`, "mcp-session-id": sid, accept: "text/event-stream" } },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${name}: ${res.statusCode}`));
        res.setEncoding("utf8");
        let first = true;
        res.on("data", (chunk) => {
          if (first) {
            first = false;
            resolve();
          }
          session.buffer += chunk;
          let end;
          while ((end = session.buffer.indexOf("\n\n")) >= 0) {
            const event = session.buffer.slice(0, end);
            session.buffer = session.buffer.slice(end + 2);
            const data = /^data: (.*)$/m.exec(event);
            if (!data) continue;
            const id = JSON.parse(data[1]).params?.meta?.message_id;
            if (id && session.onPush) session.onPush(process.hrtime.bigint(), id);
          }
        });
      },
    );
    req.on("error", reject);
    session.request = req;
  });
  return session;
}

const before = rssKiB(relay.child.pid);
const sessions = [];
for (let i = 0; i < STREAMS; i++) sessions.push(await openSession(`bench-${i}`, await tokenFor(i)));
await new Promise((r) => setTimeout(r, 500));
const after = rssKiB(relay.child.pid);
const perSessionKiB = (after - before) / STREAMS;

const pushLat = [];
const sendLat = [];
const afterAnswer = [];
for (let i = 0; i < PUSHES; i++) {
  const k = Math.floor(Math.random() * STREAMS);
  const session = sessions[k];
  // One push in flight at a time: the stream's next one is this message's
  // (it may arrive before the send's answer).
  const got = new Promise((resolve) => (session.onPush = (t, id) => resolve({ t, id })));
  const t0 = process.hrtime.bigint();
  const message = await rest(relay.url, token, "POST", `/mesh/${mesh}/messages`, { from: sink.agent_id, to: `bench-${k}`, content: `push ${i}` });
  const t1 = process.hrtime.bigint();
  const { t: t2, id } = await Promise.race([got, new Promise((_, reject) => setTimeout(() => reject(new Error(`no push for ${message.id}`)), 5000))]);
  if (id !== message.id) throw new Error(`pushed ${id}, expected ${message.id}`);
  session.onPush = null;
  pushLat.push(ms(t2 - t0));
  sendLat.push(ms(t1 - t0));
  afterAnswer.push(ms(t2 - t1)); // negative: the push came before the sender's answer
}
const push = summary(pushLat);
const send = summary(sendLat);
const lag = summary(afterAnswer);

for (const s of sessions) s.request.destroy();
agent.destroy();
await relay.stop();

// ---------------------------------------------------------------------------

console.log(`## The relay's MCP endpoint (${new Date().toISOString()})\n`);
console.log(`tools/call meshwire_send_message, ${CALLS} sequential calls each (official SDK client):\n`);
console.log("| transport | p50 ms | p99 ms | max ms |");
console.log("|---|---|---|---|");
console.log(`| remote: Streamable HTTP to /mesh/ID/mcp | ${fmt(sendRemote.p50)} | ${fmt(sendRemote.p99)} | ${fmt(sendRemote.max)} |`);
console.log(`| local: stdio to \`meshwire mcp\` (REST to the relay) | ${fmt(sendStdio.p50)} | ${fmt(sendStdio.p99)} | ${fmt(sendStdio.max)} |`);
console.log(`\nremote/stdio: p50 ${(sendRemote.p50 / sendStdio.p50).toFixed(2)}x, p99 ${(sendRemote.p99 / sendStdio.p99).toFixed(2)}x\n`);
console.log(`${STREAMS} open push streams (sessions with their GET stream): relay RSS ${before} -> ${after} KiB, ${perSessionKiB.toFixed(1)} KiB each.`);
console.log(`${PUSHES} pushes to a random one: send -> notifications/claude/channel arrival p50 ${fmt(push.p50)} ms, p99 ${fmt(push.p99)} ms, max ${fmt(push.max)} ms (the REST send's own answer, which the relay writes after the commit: p50 ${fmt(send.p50)} ms, p99 ${fmt(send.p99)} ms).`);
console.log(`The push's arrival minus the send's answer's arrival (both written after the commit; negative: the push came first): p50 ${fmt(lag.p50)} ms, p99 ${fmt(lag.p99)} ms, max ${fmt(lag.max)} ms.`);
console.log(
  JSON.stringify({
    calls: CALLS,
    send_remote_ms: sendRemote,
    send_stdio_ms: sendStdio,
    streams: STREAMS,
    rss_before_kib: before,
    rss_after_kib: after,
    kib_per_stream: perSessionKiB,
    pushes: PUSHES,
    push_ms: push,
    rest_send_ms: send,
    push_after_send_answer_ms: lag,
  }),
);
process.exit(0);
