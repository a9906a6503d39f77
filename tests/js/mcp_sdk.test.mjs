// `meshwire mcp` driven by the official MCP TypeScript SDK (Client +
// StdioClientTransport) and by the MCP Inspector's CLI mode, against a real
// relay on loopback: initialize, tools/list, every tool (the SDK validates
// structuredContent against each tool's outputSchema, so a mismatch fails
// here), delivery receipts, concurrency (a long wait never delays a ping),
// cancellation through an AbortSignal, errors as isError results, a relay that
// goes away and comes back, a restart that keeps the agent and loses nothing,
// and a stdout that carries JSON-RPC alone.
//
// Needs `npm ci` in tests/ (@modelcontextprotocol/sdk, @modelcontextprotocol/
// inspector). Run from the repository root:
//   MESHWIRE_BINARY=$PWD/build/cli/meshwire node --test tests/js/mcp_sdk.test.mjs
// Every process it starts is killed and every temp dir removed, even on failure.

import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import {
  BINARY,
  childEnv,
  createToken,
  exitOnSignals,
  importSdk,
  killAll,
  removeDirs,
  rest,
  ROOT,
  sleep,
  startRelay,
  storedSince,
  tempDir,
  track,
  trackPid,
  until,
  untrackPid,
} from "./support/relay.mjs";

const INSPECTOR = path.join(ROOT, "tests/node_modules/.bin/mcp-inspector");
const T = { timeout: 15000 };
const NAMES = [
  "meshwire_send_message",
  "meshwire_get_messages",
  "meshwire_list_agents",
  "meshwire_status",
  "meshwire_reply_to_message",
];

const sdk = await importSdk("client/index.js", "client/stdio.js", "types.js");

// ---------------------------------------------------------------------------
// The relay (started, and every process and temp dir cleaned up, through
// ./support/relay.mjs, even on SIGINT/SIGTERM)

exitOnSignals(1);

// The relay's and the token command's environment: nothing of the user's.
const relayEnv = (storageDir) => childEnv({ MESHWIRE_HOME: path.join(storageDir, "home") });

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// ---------------------------------------------------------------------------
// MCP clients through the official SDK

// Records every JSON-RPC message in both directions.
class RecordingTransport extends sdk.StdioClientTransport {
  constructor(params) {
    super(params);
    this.received = [];
    this.sentMessages = [];
  }
  set onmessage(handler) {
    this._onmessage = handler
      ? (message, extra) => {
          this.received.push(message);
          handler(message, extra);
        }
      : handler;
  }
  get onmessage() {
    return this._onmessage;
  }
  send(message, options) {
    this.sentMessages.push(message);
    return super.send(message, options);
  }
}

// Starts `meshwire mcp --mesh MESH --name NAME` with a temp HOME and
// MESHWIRE_HOME (no user file is read), connected through the SDK client.
async function startMcp({ name = "mcp-agent", url = fx.url, token = fx.token, mesh = fx.meshId, clientName = "meshwire-sdk-test", capabilities = {}, extraArgs = [] } = {}) {
  const home = tempDir("mw-sdk-home-");
  const transport = new RecordingTransport({
    command: BINARY,
    args: ["mcp", "--mesh", mesh, "--name", name, ...extraArgs],
    env: {
      PATH: process.env.PATH,
      HOME: home,
      MESHWIRE_HOME: path.join(home, ".meshwire"),
      MESHWIRE_TOKEN: token,
      MESHWIRE_URL: url,
    },
    cwd: home,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr.on("data", (chunk) => {
    if (stderr.length < 100000) stderr += chunk;
  });
  const client = new sdk.Client({ name: clientName, version: "1.0.0" }, { capabilities });
  const errors = [];
  const notifications = [];
  client.onerror = (err) => errors.push(err);
  client.fallbackNotificationHandler = async (n) => {
    notifications.push(n);
  };
  let closed = false;
  client.onclose = () => {
    closed = true;
  };
  await client.connect(transport, { timeout: 10000 });
  trackPid(transport.pid);
  const pid = transport.pid;
  await client.listTools(); // the SDK caches each tool's outputSchema validator here
  return {
    client,
    transport,
    pid,
    errors,
    notifications,
    get stderr() {
      return stderr;
    },
    get closed() {
      return closed;
    },
    call: (tool, args = {}, options) => client.callTool({ name: tool, arguments: args }, undefined, options),
    async close() {
      await client.close();
      untrackPid(pid);
    },
  };
}

function textOf(result) {
  return result.content
    .filter((block) => block.type === "text")
    .map((block) => block.text)
    .join("\n");
}

// A tool error: isError, one or more sentences, no structuredContent.
function assertToolError(result, pattern) {
  assert.equal(result.isError, true, `expected isError, got ${JSON.stringify(result)}`);
  const text = textOf(result);
  assert.match(text, /^[A-Z"`].{10,}[.!]$/s, `a sentence: ${text}`);
  if (pattern) assert.match(text, pattern);
  assert.equal(result.structuredContent, undefined);
}

async function assertAlive(mcp) {
  const started = Date.now();
  assert.deepEqual(await mcp.client.ping({ timeout: 5000 }), {});
  assert.ok(Date.now() - started < 1000, "ping answered within 1 s");
  assert.equal(mcp.closed, false, "the MCP server process is still running");
}

// How many ESTABLISHED TCP connections process `pid` has to 127.0.0.1:port
// (Linux: its socket fds matched against /proc/net/tcp).
function openConnections(pid, port) {
  const inodes = new Set();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]);
    } catch {
      // closed meanwhile
    }
  }
  let count = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, "utf8").split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const remotePort = parseInt(cols[2].split(":")[1], 16);
      if (cols[3] === "01" && remotePort === port && inodes.has(cols[9])) count++;
    }
  }
  return count;
}

function relayPort() {
  return Number(new URL(fx.url).port);
}

function findSchemaRefs(value, where, found = []) {
  if (Array.isArray(value)) value.forEach((item, i) => findSchemaRefs(item, `${where}[${i}]`, found));
  else if (value && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) {
      if (["$schema", "$ref", "$defs", "definitions"].includes(key)) found.push(`${where}.${key}`);
      findSchemaRefs(inner, `${where}.${key}`, found);
    }
  }
  return found;
}

// ---------------------------------------------------------------------------
// Shared fixture: a relay, alice's token, a mesh, a REST agent, the MCP agent

const fx = {};

// The REST agent's poll, acknowledging as it goes, until `match` is seen.
async function restReceive(match, what, timeoutMs = 8000) {
  const deadline = Date.now() + timeoutMs;
  const seen = [];
  while (Date.now() < deadline) {
    const query = `?agent_id=${fx.rest.agent_id}&wait=2` + (fx.restCursor != null ? `&after=${fx.restCursor}` : "");
    const { messages, cursor } = await rest(fx.url, fx.token, "GET", `${fx.m}/messages${query}`);
    fx.restCursor = cursor;
    seen.push(...messages);
    const hit = messages.find(match);
    if (hit) return hit;
  }
  throw new Error(`the REST agent never received ${what}; it saw ${JSON.stringify(seen)}`);
}

async function restSend(body) {
  return rest(fx.url, fx.token, "POST", `${fx.m}/messages`, { from: fx.rest.agent_id, ...body });
}

async function agentsByName() {
  const { agents } = await rest(fx.url, fx.token, "GET", `${fx.m}/agents`);
  return Object.fromEntries(agents.map((a) => [a.name, a]));
}

before(async () => {
  fx.storage = tempDir("mw-sdk-relay-");
  fx.relay = await startRelay(fx.storage, { env: relayEnv(fx.storage) });
  fx.url = fx.relay.url;
  fx.token = createToken(fx.storage, "alice", { env: relayEnv(fx.storage) });
  const mesh = await rest(fx.url, fx.token, "POST", "/mesh", { name: "sdk-mesh" });
  fx.meshId = mesh.mesh_id;
  fx.m = `/mesh/${fx.meshId}`;
  fx.rest = await rest(fx.url, fx.token, "POST", `${fx.m}/agents`, { name: "rest-agent", harness: "rest" });
  fx.mcp = await startMcp();
});

after(async () => {
  // Fail rather than hang if something still holds the process open.
  setTimeout(() => {
    process.stderr.write(`still running 10 s after the tests: ${JSON.stringify(process.getActiveResourcesInfo())}\n`);
    killAll();
    process.exit(1);
  }, 10000).unref();
  for (const mcp of [fx.mcp, ...(fx.extra ?? [])]) await mcp?.close().catch(() => {});
  await fx.relay?.stop();
  await fx.relay2?.stop();
  killAll();
  removeDirs();
});

// ---------------------------------------------------------------------------
// Lifecycle and tools/list

test("initialize: server info, protocol version, capabilities and instructions", T, () => {
  const { client, transport } = fx.mcp;
  const version = execFileSync(BINARY, ["--version"]).toString().trim();
  const info = client.getServerVersion();
  assert.equal(info.name, "meshwire");
  assert.ok(version.includes(info.version), `serverInfo.version ${info.version} is the binary's (${version})`);
  const init = transport.received.find((m) => m.id === 0 && m.result);
  assert.ok(init, "the initialize answer (id 0) was received");
  assert.equal(init.result.protocolVersion, "2025-11-25", "the SDK's newest revision is echoed");
  assert.deepEqual(client.getServerCapabilities().tools, { listChanged: false });
  const instructions = client.getInstructions();
  assert.equal(typeof instructions, "string");
  for (const needle of [fx.meshId, "mcp-agent", "meshwire_get_messages", "meshwire_send_message", "not from"]) {
    assert.ok(instructions.includes(needle), `instructions mention ${needle}: ${instructions}`);
  }
});

test("tools/list: the five tools, plain object schemas without $schema/$ref/$defs", T, async () => {
  const { tools } = await fx.mcp.client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), [...NAMES].sort());
  for (const tool of tools) {
    assert.ok(tool.description.length > 20, tool.name);
    assert.equal(tool.inputSchema.type, "object", `${tool.name} inputSchema`);
    assert.equal(tool.outputSchema?.type, "object", `${tool.name} outputSchema`);
    assert.deepEqual(findSchemaRefs(tool, tool.name), [], `${tool.name} has no $schema/$ref/$defs`);
  }
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.deepEqual(byName.meshwire_send_message.inputSchema.required, ["content"]);
  assert.deepEqual(byName.meshwire_reply_to_message.inputSchema.required, ["message_id", "content"]);
  assert.equal(byName.meshwire_get_messages.inputSchema.properties.wait_seconds.type, "integer");
  assert.match(byName.meshwire_get_messages.inputSchema.properties.wait_seconds.description, /capped at 25\)/);
});

test("--max-wait: tools/list and the instructions state the server's own cap", T, async () => {
  const mcp = await startMcp({ name: "short-wait-agent", extraArgs: ["--max-wait", "5"] });
  try {
    const { tools } = await mcp.client.listTools();
    const wait = tools.find((t) => t.name === "meshwire_get_messages").inputSchema.properties.wait_seconds;
    assert.match(wait.description, /capped at 5\)/);
    assert.equal(wait.maximum, 60);
    assert.match(mcp.client.getInstructions(), /wait up to 5 s/);
  } finally {
    await mcp.close();
  }
});

// ---------------------------------------------------------------------------
// Every tool, with the SDK checking structuredContent against outputSchema

test("meshwire_status: online, this mesh, this agent, counts", T, async () => {
  const result = await fx.mcp.call("meshwire_status");
  assert.equal(result.isError, false, textOf(result));
  const s = result.structuredContent;
  assert.equal(s.service.url, fx.url);
  assert.equal(s.service.status, "online");
  assert.equal(s.mesh.mesh_id, fx.meshId);
  assert.equal(s.mesh.name, "sdk-mesh");
  assert.equal(s.agent.name, "mcp-agent");
  assert.match(s.agent.agent_id, /^[A-Za-z0-9]{9,}$/);
  assert.ok(s.agents.registered >= 2, "rest-agent and mcp-agent");
  assert.ok(s.agents.active >= 1);
  assert.deepEqual(JSON.parse(result.content[1].text), s, "the same JSON in a text block");
  fx.mcpAgentId = s.agent.agent_id;
  const agents = await agentsByName();
  assert.equal(agents["mcp-agent"].agent_id, fx.mcpAgentId);
  assert.equal(agents["mcp-agent"].owner, "alice");
});

test("meshwire_send_message: the REST agent receives it, from mcp-agent", T, async () => {
  const result = await fx.mcp.call("meshwire_send_message", { content: "hello rest", to: "rest-agent" });
  assert.equal(result.isError, false, textOf(result));
  const sent = result.structuredContent;
  assert.equal(sent.from, fx.mcpAgentId);
  assert.equal(sent.from_name, "mcp-agent");
  assert.equal(sent.to, fx.rest.agent_id);
  assert.equal(sent.to_name, "rest-agent");
  assert.equal(sent.content, "hello rest");
  assert.equal(sent.mesh_id, fx.meshId);
  assert.match(textOf(result), /rest-agent/);
  const got = await restReceive((m) => m.id === sent.id, "the MCP agent's message");
  assert.equal(got.from_name, "mcp-agent");
  assert.equal(got.from, fx.mcpAgentId);
  assert.equal(got.content, "hello rest");
});

test("meshwire_get_messages: returns what rest-agent sent, framed as from another agent", T, async () => {
  fx.incoming = await restSend({ to: "mcp-agent", content: "please review PR 7" });
  const result = await fx.mcp.call("meshwire_get_messages", { wait_seconds: 5 });
  assert.equal(result.isError, false, textOf(result));
  const { messages } = result.structuredContent;
  assert.deepEqual(
    messages.map((m) => m.id),
    [fx.incoming.id],
  );
  assert.equal(messages[0].from_name, "rest-agent");
  assert.equal(messages[0].content, "please review PR 7");
  const text = textOf(result);
  assert.ok(text.includes("rest-agent"), "names the sender");
  assert.ok(text.includes(fx.rest.agent_id), "gives the sender's id");
  assert.ok(text.includes("harness rest"), "gives the sender's harness");
  assert.match(text, /another agent/);
  assert.match(text, /not by the user/);
  assert.ok(text.includes("please review PR 7"));
  // Clients that show the model only structuredContent (Claude Code) get the warning too.
  assert.match(result.structuredContent.notice, /other AI agents, not by the user/);
  const detail = await rest(fx.url, fx.token, "GET", `${fx.m}/messages/${fx.incoming.id}`);
  const row = detail.delivery.find((d) => d.name === "mcp-agent");
  assert.equal(row.state, "fetched", "returned, not yet acknowledged");
});

test("meshwire_get_messages again acknowledges the previous batch (delivery state acked)", T, async () => {
  const result = await fx.mcp.call("meshwire_get_messages", {});
  assert.equal(result.isError, false, textOf(result));
  assert.deepEqual(result.structuredContent, { messages: [] });
  assert.match(textOf(result), /No new messages/);
  const detail = await rest(fx.url, fx.token, "GET", `${fx.m}/messages/${fx.incoming.id}`);
  const row = detail.delivery.find((d) => d.name === "mcp-agent");
  assert.equal(row.state, "acked");
  assert.equal(row.agent_id, fx.mcpAgentId);
});

test("meshwire_list_agents: both agents, with status and listening", T, async () => {
  const result = await fx.mcp.call("meshwire_list_agents");
  assert.equal(result.isError, false, textOf(result));
  const byName = Object.fromEntries(result.structuredContent.agents.map((a) => [a.name, a]));
  assert.equal(byName["mcp-agent"].agent_id, fx.mcpAgentId);
  assert.equal(byName["mcp-agent"].status, "active");
  assert.equal(byName["mcp-agent"].harness, "mcp");
  assert.equal(byName["rest-agent"].agent_id, fx.rest.agent_id);
  assert.equal(byName["rest-agent"].harness, "rest");
  assert.equal(typeof byName["rest-agent"].listening, "boolean");
  assert.match(textOf(result), /mcp-agent .*\(you\)/);
});

test("meshwire_reply_to_message: lands at rest-agent with metadata.reply_to", T, async () => {
  const result = await fx.mcp.call("meshwire_reply_to_message", { message_id: fx.incoming.id, content: "on it" });
  assert.equal(result.isError, false, textOf(result));
  const reply = result.structuredContent;
  assert.equal(reply.to, fx.rest.agent_id);
  assert.equal(reply.metadata.reply_to, fx.incoming.id);
  const got = await restReceive((m) => m.id === reply.id, "the reply");
  assert.equal(got.from_name, "mcp-agent");
  assert.equal(got.content, "on it");
  assert.equal(got.metadata.reply_to, fx.incoming.id);
});

// ---------------------------------------------------------------------------
// Concurrency and cancellation

test("a waiting get_messages does not delay ping or list_agents, and a REST send wakes it", T, async () => {
  const started = Date.now();
  const waiting = fx.mcp.call("meshwire_get_messages", { wait_seconds: 20 });
  await until("the relay to report mcp-agent listening", async () => (await agentsByName())["mcp-agent"].listening);

  let t = Date.now();
  await fx.mcp.client.ping();
  assert.ok(Date.now() - t < 1000, `ping took ${Date.now() - t} ms`);
  t = Date.now();
  const list = await fx.mcp.call("meshwire_list_agents");
  assert.ok(Date.now() - t < 1000, `list_agents took ${Date.now() - t} ms`);
  assert.equal(list.isError, false);
  assert.equal(list.structuredContent.agents.find((a) => a.name === "mcp-agent").listening, true);

  const sent = await restSend({ to: "mcp-agent", content: "wake up" });
  const woken = Date.now();
  const result = await waiting;
  assert.ok(Date.now() - woken < 3000, "woken by the send, not by the 20 s timeout");
  assert.ok(Date.now() - started < 10000);
  assert.equal(result.isError, false, textOf(result));
  assert.deepEqual(
    result.structuredContent.messages.map((m) => m.id),
    [sent.id],
  );
});

test("cancellation: an aborted get_messages rejects at the client; the server stays and answers", T, async () => {
  const { transport } = fx.mcp;
  const controller = new AbortController();
  const waiting = fx.mcp.call("meshwire_get_messages", { wait_seconds: 20 }, { signal: controller.signal });
  await until("the relay to report mcp-agent listening", async () => (await agentsByName())["mcp-agent"].listening);
  const request = transport.sentMessages.findLast((m) => m.method === "tools/call");
  assert.ok(openConnections(fx.mcp.pid, relayPort()) >= 1, "the poll is open on a connection to the relay");
  const t = Date.now();
  controller.abort();
  // SDK 1.x wraps the signal's reason: McpError -32001 "AbortError: This operation was aborted".
  await assert.rejects(waiting, (err) => err.name === "AbortError" || /AbortError/.test(err.message));
  assert.ok(Date.now() - t < 1000, "the abort is immediate");

  const cancel = transport.sentMessages.find(
    (m) => m.method === "notifications/cancelled" && m.params?.requestId === request.id,
  );
  assert.ok(cancel, "the SDK sent notifications/cancelled for the request");

  await assertAlive(fx.mcp);
  const status = await fx.mcp.call("meshwire_status");
  assert.equal(status.isError, false, textOf(status));
  // The server hangs up its long-poll to the relay, and never answers the cancelled request.
  await until("the MCP server to close its poll connection", () => openConnections(fx.mcp.pid, relayPort()) === 0);
  await until("the relay to stop counting mcp-agent as listening", async () => !(await agentsByName())["mcp-agent"].listening);
  await sleep(300);
  assert.equal(
    transport.received.some((m) => m.id === request.id),
    false,
    "no answer to a cancelled request",
  );
  assert.deepEqual(fx.mcp.errors.map(String), [], "the SDK saw no stray message");
});

test("an agent deleted on the relay (by hand, or by retention) is registered again by its next call", T, async () => {
  const mcp = await startMcp({ name: "phoenix-agent" });
  (fx.extra ??= []).push(mcp);
  assert.equal((await mcp.call("meshwire_status")).isError, false);
  const old = (await agentsByName())["phoenix-agent"];
  await rest(fx.url, fx.token, "DELETE", `${fx.m}/agents/${old.agent_id}`);
  assert.equal((await agentsByName())["phoenix-agent"], undefined);
  // Before: every call failed with `No agent "<id>"` until the server was restarted.
  const first = await mcp.call("meshwire_get_messages", {});
  assert.equal(first.isError, false, textOf(first));
  const again = (await agentsByName())["phoenix-agent"];
  assert.ok(again && again.agent_id !== old.agent_id, "the same name, a new agent");
  const sent = await restSend({ to: "phoenix-agent", content: "you are back" });
  const got = await mcp.call("meshwire_get_messages", { wait_seconds: 5 });
  assert.deepEqual(got.structuredContent.messages.map((m) => m.id), [sent.id]);
  const reply = await mcp.call("meshwire_send_message", { to: "rest-agent", content: "thanks" });
  assert.equal(reply.isError, false, textOf(reply));
  assert.equal(reply.structuredContent.from, again.agent_id);
  // Deleted while a get_messages waits: the call waits only what was left of its wait, not all of it again.
  const started = Date.now();
  const waiting = mcp.call("meshwire_get_messages", { wait_seconds: 6 });
  await until("the wait is parked", async () => (await agentsByName())["phoenix-agent"]?.listening);
  await sleep(Math.max(0, 3000 - (Date.now() - started)));
  await rest(fx.url, fx.token, "DELETE", `${fx.m}/agents/${again.agent_id}`);
  const waited = await waiting;
  assert.equal(waited.isError, false, textOf(waited));
  assert.ok(Date.now() - started < 7500, `answered after ${Date.now() - started} ms (asked: 6 s; all of it again: 9 s)`);
});

// A proxy in front of the relay that holds each `GET .../agents` while
// `hold` is set: the look-up of a new sender's harness, which `meshwire mcp`
// makes between its poll's answer and its own, made slow as on a slow link.
async function agentsHoldingProxy(target) {
  const proxy = { hold: false, held: null };
  let arrived;
  proxy.heldOne = new Promise((resolve) => (arrived = resolve));
  const server = http.createServer((req, res) => {
    const forward = () => {
      const out = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      });
      out.on("error", () => res.destroy());
      req.pipe(out);
    };
    if (proxy.hold && req.method === "GET" && /\/agents(\?|$)/.test(req.url)) {
      arrived();
      proxy.release = forward;
    } else {
      forward();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.url = `http://127.0.0.1:${server.address().port}`;
  proxy.close = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  };
  return proxy;
}

test("a get_messages cancelled after its poll returned, before its answer went, loses nothing: the next call has it", T, async () => {
  const proxy = await agentsHoldingProxy(fx.url);
  const mcp = await startMcp({ name: "cancel-late-agent", url: proxy.url });
  (fx.extra ??= []).push(mcp);
  try {
    const controller = new AbortController();
    const waiting = mcp.call("meshwire_get_messages", { wait_seconds: 20 }, { signal: controller.signal });
    await until("the relay to report cancel-late-agent listening", async () => (await agentsByName())["cancel-late-agent"]?.listening);
    // A sender this MCP server has not seen: its answer waits for the agent list.
    const sender = await rest(fx.url, fx.token, "POST", `${fx.m}/agents`, { name: "late-sender" });
    proxy.hold = true;
    const sent = await rest(fx.url, fx.token, "POST", `${fx.m}/messages`, {
      from: sender.agent_id,
      to: "cancel-late-agent",
      content: "the one that must not be lost",
    });
    await proxy.heldOne; // the poll has returned the message; its answer waits
    controller.abort();
    await assert.rejects(waiting, (err) => err.name === "AbortError" || /AbortError/.test(err.message));
    await mcp.client.ping(); // read after notifications/cancelled, in order: the cancel was taken
    proxy.hold = false;
    proxy.release();
    const again = await mcp.call("meshwire_get_messages", { wait_seconds: 2 });
    assert.equal(again.isError, false, textOf(again));
    assert.deepEqual(
      again.structuredContent.messages.map((m) => m.id),
      [sent.id],
      "the message the cancelled call never showed comes again",
    );
    // And that call's answer was received: the next one acknowledges it.
    const after = await mcp.call("meshwire_get_messages", {});
    assert.deepEqual(after.structuredContent.messages, []);
    const detail = await rest(fx.url, fx.token, "GET", `${fx.m}/messages/${sent.id}`);
    assert.equal(detail.delivery.find((d) => d.name === "cancel-late-agent").state, "acked");
  } finally {
    await proxy.close();
  }
});

// The relay's side of a cancelled wait: it asks the kernel once a second
// which parked polls' connections are still open (server/tcp_probe.h), so a
// client that hung up stops "listening" at once, and a message sent after is
// not written to the dead connection nor recorded "fetched".
test(
  "relay: a long-poll whose client hung up stops listening and marks nothing fetched",
  T,
  async () => {
    const agent = await rest(fx.url, fx.token, "POST", `${fx.m}/agents`, { name: "hangup-agent" });
    const controller = new AbortController();
    const poll = fetch(`${fx.url}${fx.m}/messages?agent_id=${agent.agent_id}&wait=20`, {
      headers: { authorization: `Bearer ${fx.token}` },
      signal: controller.signal,
    }).catch(() => null);
    await until("hangup-agent listening", async () => (await agentsByName())["hangup-agent"].listening);
    controller.abort();
    await poll;
    await until("the relay to see the hang-up", async () => !(await agentsByName())["hangup-agent"].listening);
    const listening = (await agentsByName())["hangup-agent"].listening;
    const sent = await restSend({ to: "hangup-agent", content: "anyone there?" });
    await sleep(300);
    const detail = await rest(fx.url, fx.token, "GET", `${fx.m}/messages/${sent.id}`);
    assert.deepEqual(
      { listening, state: detail.delivery[0].state },
      { listening: false, state: "queued" },
    );
  },
);

// ---------------------------------------------------------------------------
// Errors: isError results with a sentence; the process lives on

test("content over 10,240 bytes is an isError result; exactly 10,240 bytes is sent", T, async () => {
  const atLimit = "é".repeat(5120); // 10,240 bytes of UTF-8
  const ok = await fx.mcp.call("meshwire_send_message", { content: atLimit, to: "rest-agent" });
  assert.equal(ok.isError, false, textOf(ok));
  const over = await fx.mcp.call("meshwire_send_message", { content: atLimit + "x", to: "rest-agent" });
  assertToolError(over, /10,?240/);
  const overReply = await fx.mcp.call("meshwire_reply_to_message", { message_id: fx.incoming.id, content: "x".repeat(10241) });
  assertToolError(overReply, /10,?240/);
  await assertAlive(fx.mcp);
});

test("an unknown recipient is an isError result naming the tool that lists the agents", T, async () => {
  const result = await fx.mcp.call("meshwire_send_message", { content: "hi", to: "nobody" });
  assertToolError(result, /No agent "nobody".*call meshwire_list_agents to see who is there/);
  assert.doesNotMatch(textOf(result), /meshwire agents/);
  await assertAlive(fx.mcp);
});

test("bad argument types are isError results", T, async () => {
  assertToolError(await fx.mcp.call("meshwire_get_messages", { wait_seconds: "5" }), /wait_seconds/);
  assertToolError(await fx.mcp.call("meshwire_get_messages", { wait_seconds: 61 }), /wait_seconds/);
  assertToolError(await fx.mcp.call("meshwire_get_messages", { limit: 0 }), /limit/);
  assertToolError(await fx.mcp.call("meshwire_send_message", {}), /content/);
  assertToolError(await fx.mcp.call("meshwire_send_message", { content: 42 }), /content/);
  assertToolError(await fx.mcp.call("meshwire_reply_to_message", { content: "x" }), /message_id/);
  assertToolError(
    await fx.mcp.call("meshwire_reply_to_message", { message_id: "999999999", content: "x" }),
    /message/i,
  );
  // An id or name longer than any is refused by the tool, not echoed whole nor sent as a 9 KB URL.
  const long = "9".repeat(9000);
  for (const [tool, args, key] of [
    ["meshwire_reply_to_message", { message_id: long, content: "x" }, "message_id"],
    ["meshwire_send_message", { to: long, content: "x" }, "to"],
  ]) {
    const result = await fx.mcp.call(tool, args);
    assertToolError(result, new RegExp(`^"${key}" is 9000 bytes long; .* at most 64: copy it from meshwire_`));
    assert.ok(textOf(result).length < 200, textOf(result));
  }
  await assertAlive(fx.mcp);
});

test("a lone surrogate (JSON.stringify writes it as \\ud800) is sent as U+FFFD; the call was left unanswered", T, async () => {
  const result = await fx.mcp.call("meshwire_send_message", { content: "lone \ud800 surrogate", to: "rest-agent" });
  assert.equal(result.isError, false, textOf(result));
  const got = await restReceive((m) => m.id === result.structuredContent.id, "the message with a lone surrogate");
  assert.equal(got.content, "lone \ufffd surrogate");
  await assertAlive(fx.mcp);
});

test("an unknown tool is a -32602 protocol error (McpError), not an isError result", T, async () => {
  await assert.rejects(fx.mcp.call("meshwire_no_such_tool", {}), (err) => {
    assert.ok(err instanceof sdk.McpError, `an McpError: ${err}`);
    assert.equal(err.code, sdk.ErrorCode.InvalidParams);
    assert.equal(err.code, -32602);
    assert.match(err.message, /meshwire_no_such_tool/);
    return true;
  });
  await assertAlive(fx.mcp);
});

test("a revoked token: isError telling to run `meshwire login`", T, async () => {
  const { id, token } = await rest(fx.url, fx.token, "POST", "/tokens", { name: "mcp-revoke-test" });
  const mcp = await startMcp({ name: "revoke-agent", token });
  (fx.extra ??= []).push(mcp);
  const ok = await mcp.call("meshwire_status");
  assert.equal(ok.isError, false, textOf(ok));
  await rest(fx.url, fx.token, "DELETE", `/tokens/${id}`);
  for (const tool of ["meshwire_status", "meshwire_list_agents", "meshwire_get_messages"]) {
    assertToolError(await mcp.call(tool), /`meshwire login`/);
  }
  assertToolError(await mcp.call("meshwire_send_message", { content: "x" }), /`meshwire login`/);
  await assertAlive(mcp);
  await mcp.close();
});

test("no token: initialize still answers; the tools say to run `meshwire login`", T, async () => {
  const mcp = await startMcp({ name: "tokenless-agent", token: "" });
  (fx.extra ??= []).push(mcp);
  assert.equal(mcp.client.getServerVersion().name, "meshwire");
  // Clients show the server as connected, so it says so itself: on stderr at
  // start, in its instructions, and in meshwire_status (which still checks
  // the relay).
  assert.match(mcp.stderr, /No meshwire credentials.*`meshwire login`/);
  assert.match(mcp.client.getInstructions(), /not set up yet.*`meshwire login`/);
  const status = await mcp.call("meshwire_status");
  assertToolError(status, /No meshwire credentials.*`meshwire login`/);
  assert.match(status.content[0].text, /The relay at http:\/\/127\.0\.0\.1:\d+ is online/);
  assertToolError(await mcp.call("meshwire_send_message", { content: "x" }), /`meshwire login`/);
  await assertAlive(mcp);
  await mcp.close();
});

test("an invalid agent name: initialize answers; stderr, instructions and tools name it and where it came from", T, async () => {
  const mcp = await startMcp({ name: "not a name!" });
  (fx.extra ??= []).push(mcp);
  const said = /The agent name "not a name!" \(from --name\) is not valid: use 1-64 letters.*restart the server/;
  assert.match(mcp.stderr, said);
  assert.match(mcp.client.getInstructions(), /not set up yet/);
  assert.match(mcp.client.getInstructions(), said);
  assertToolError(await mcp.call("meshwire_status"), said);
  assertToolError(await mcp.call("meshwire_send_message", { content: "x" }), said);
  assertToolError(await mcp.call("meshwire_get_messages"), said);
  await assertAlive(mcp);
  await mcp.close();
});

test("a reserved agent name (all, in any case): initialize answers; stderr, instructions and tools say so, and where it came from", T, async () => {
  const mcp = await startMcp({ name: "ALL" });
  (fx.extra ??= []).push(mcp);
  const said = /The agent name "ALL" \(from --name\) is reserved .*restart the server/;
  assert.match(mcp.stderr, said);
  assert.match(mcp.client.getInstructions(), said);
  assert.doesNotMatch(mcp.client.getInstructions(), /You are the agent/);
  assertToolError(await mcp.call("meshwire_send_message", { content: "x" }), said);
  await assertAlive(mcp);
  await mcp.close();
});

test("a token with a line break (a pasted file's newline) is a setup problem said as the CLI says it, not the relay's 400", T, async () => {
  for (const token of [`${fx.token}\n`, ` ${fx.token}`]) {
    const mcp = await startMcp({ name: "token-typo", token });
    (fx.extra ??= []).push(mcp);
    const said = /The token from MESHWIRE_TOKEN holds spaces or line breaks: set it to the token alone.*restart the server/;
    assert.match(mcp.stderr, said);
    assert.match(mcp.client.getInstructions(), said);
    assertToolError(await mcp.call("meshwire_status"), said);
    assertToolError(await mcp.call("meshwire_send_message", { content: "x" }), said);
    await assertAlive(mcp);
    await mcp.close();
  }
});

// ---------------------------------------------------------------------------
// A relay that does not answer: the retry the error advises stores nothing twice

test("a send with no answer in time says it may have been stored, and the same call again stores it once", { timeout: 60000 }, async () => {
  const storage = tempDir("mw-sdk-relay3-");
  const relay = await startRelay(storage, { env: relayEnv(storage) });
  const token = createToken(storage, "carol", { env: relayEnv(storage) });
  const mesh = await rest(relay.url, token, "POST", "/mesh", { name: "hung" });
  await rest(relay.url, token, "POST", `/mesh/${mesh.mesh_id}/agents`, { name: "peer" });
  const mcp = await startMcp({ name: "patient", url: relay.url, token, mesh: mesh.mesh_id });
  (fx.extra ??= []).push(mcp);
  assert.equal((await mcp.call("meshwire_status")).isError, false);
  const pid = relay.child.pid;
  try {
    // Stopped, the relay answers nothing; continued, it reads the request the
    // client gave up on and stores it (the case a plain retry sent twice).
    process.kill(pid, "SIGSTOP");
    const hung = mcp.call("meshwire_send_message", { content: "exactly once", to: "peer" }, { timeout: 45000 });
    assertToolError(await hung, /did not answer in time.*calling the tool again with the same arguments is safe/);
  } finally {
    process.kill(pid, "SIGCONT");
  }
  const inbox = () => rest(relay.url, token, "GET", `/mesh/${mesh.mesh_id}/messages?after=0`);
  await until("the relay stores the request the client gave up on", async () => (await inbox()).messages.length === 1);
  const again = await mcp.call("meshwire_send_message", { content: "exactly once", to: "peer" });
  assert.equal(again.isError, false, textOf(again));
  const polled = await inbox();
  assert.deepEqual(polled.messages.map((m) => m.content), ["exactly once"]);
  assert.equal(polled.messages[0].id, again.structuredContent.id); // the first one's, returned again
  // Another call with other arguments is another message.
  assert.equal((await mcp.call("meshwire_send_message", { content: "a second", to: "peer" })).isError, false);
  await mcp.close();
  await relay.stop();
});

test("a send the relay stored but answered 503 (a lost COMMIT's outcome unknown): the same call again stores it once", T, async () => {
  // A proxy in front of the relay: the relay stores the send, the proxy
  // answers 503 in its place, as the relay does when the database lost the
  // COMMIT's answer and could not tell whether it committed.
  let unsure = 0;
  const proxy = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const headers = {};
    for (const name of ["authorization", "content-type", "accept"]) if (req.headers[name]) headers[name] = req.headers[name];
    const upstream = await fetch(fx.url + req.url, { method: req.method, headers, body: body.length > 0 ? body : undefined });
    const text = await upstream.text();
    if (unsure > 0 && req.method === "POST" && req.url.split("?")[0].endsWith("/messages")) {
      unsure -= 1;
      const error = { code: "unavailable", message: "The database did not say whether the write committed; retry with the same idempotency_key." };
      res.writeHead(503, { "content-type": "application/json", "retry-after": "1" });
      return res.end(JSON.stringify({ error }));
    }
    res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" });
    res.end(text);
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  try {
    const mcp = await startMcp({ name: "unsure-agent", url: `http://127.0.0.1:${proxy.address().port}` });
    (fx.extra ??= []).push(mcp);
    assert.equal((await mcp.call("meshwire_status")).isError, false);
    const stored = await storedSince(fx.url, fx.token, fx.m);
    unsure = 1;
    assertToolError(await mcp.call("meshwire_send_message", { content: "unsure once", to: "rest-agent" }), /same idempotency_key/);
    assert.equal((await stored("unsure once")).length, 1, "the relay stored it");
    const again = await mcp.call("meshwire_send_message", { content: "unsure once", to: "rest-agent" });
    assert.equal(again.isError, false, textOf(again));
    const kept = await stored("unsure once");
    assert.equal(kept.length, 1, "the same call again stored nothing more");
    assert.equal(kept[0].id, again.structuredContent.id);
    await mcp.close();
  } finally {
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
  }
});

// ---------------------------------------------------------------------------
// A relay that goes away and comes back on the URL the server was given

test("relay down: isError naming the URL; a server started meanwhile initializes; both recover", { timeout: 30000 }, async () => {
  const storage = tempDir("mw-sdk-relay2-");
  const port = await freePort();
  fx.relay2 = await startRelay(storage, { port, env: relayEnv(storage) });
  const url = `http://127.0.0.1:${port}`;
  assert.equal(fx.relay2.url, url);
  const token = createToken(storage, "bob", { env: relayEnv(storage) });
  const mesh = await rest(url, token, "POST", "/mesh", { name: "flaky" });

  const early = await startMcp({ name: "early-agent", url, token, mesh: mesh.mesh_id });
  (fx.extra ??= []).push(early);
  const ok = await early.call("meshwire_status");
  assert.equal(ok.isError, false, textOf(ok));

  await fx.relay2.stop("SIGKILL");
  const unreachable = new RegExp(`${url.replace(/[.]/g, "\\.")}.*cannot be reached`);
  assertToolError(await early.call("meshwire_status"), unreachable);
  assertToolError(await early.call("meshwire_send_message", { content: "anyone?" }), unreachable);
  assertToolError(await early.call("meshwire_get_messages", { wait_seconds: 1 }), unreachable);
  await assertAlive(early);

  // Started while the relay is down: initialize and tools/list still answer.
  const late = await startMcp({ name: "late-agent", url, token, mesh: mesh.mesh_id });
  fx.extra.push(late);
  assert.equal(late.client.getServerVersion().name, "meshwire");
  for (const tool of ["meshwire_status", "meshwire_list_agents", "meshwire_get_messages"]) {
    assertToolError(await late.call(tool), unreachable);
  }
  await assertAlive(late);

  // Back on the same port (same storage): the next call succeeds, no restart needed.
  fx.relay2 = await startRelay(storage, { port, env: relayEnv(storage) });
  const status = await late.call("meshwire_status");
  assert.equal(status.isError, false, textOf(status));
  assert.equal(status.structuredContent.agent.name, "late-agent");
  assert.equal(status.structuredContent.service.url, url);
  const sent = await early.call("meshwire_send_message", { content: "back", to: "late-agent" });
  assert.equal(sent.isError, false, textOf(sent));
  const got = await late.call("meshwire_get_messages", { wait_seconds: 5 });
  assert.equal(got.isError, false, textOf(got));
  assert.deepEqual(
    got.structuredContent.messages.map((m) => m.content),
    ["back"],
  );
  await early.close();
  await late.close();
  await fx.relay2.stop();
});

// ---------------------------------------------------------------------------
// Restart: same agent, nothing lost

test("restart with the same --name: same agent_id, a message sent meanwhile is delivered", T, async () => {
  // Acknowledge everything so far, then stop the MCP server.
  const drain = await fx.mcp.call("meshwire_get_messages", {});
  assert.equal(drain.isError, false);
  await fx.mcp.call("meshwire_get_messages", {});
  await fx.mcp.close();
  const sent = await restSend({ to: "mcp-agent", content: "sent while you were away" });

  fx.mcp = await startMcp();
  const status = await fx.mcp.call("meshwire_status");
  assert.equal(status.isError, false, textOf(status));
  assert.equal(status.structuredContent.agent.agent_id, fx.mcpAgentId, "the same agent");
  const result = await fx.mcp.call("meshwire_get_messages", { wait_seconds: 2 });
  assert.equal(result.isError, false, textOf(result));
  assert.deepEqual(
    result.structuredContent.messages.map((m) => m.id),
    [sent.id],
  );
  const agents = await agentsByName();
  assert.equal(Object.values(agents).filter((a) => a.name === "mcp-agent").length, 1);
});

// ---------------------------------------------------------------------------
// Raw stdio: nothing but JSON-RPC on stdout, and EOF ends the process

// `meshwire mcp` as agent `name` on bare pipes (no SDK), and the promise of its exit.
function spawnRawMcp(name) {
  const home = tempDir(`mw-${name}-home-`);
  const child = track(
    spawn(BINARY, ["mcp", "--mesh", fx.meshId, "--name", name], {
      stdio: ["pipe", "pipe", "pipe"],
      cwd: home,
      env: childEnv({ HOME: home, MESHWIRE_HOME: path.join(home, ".meshwire"), MESHWIRE_TOKEN: fx.token, MESHWIRE_URL: fx.url }),
    }),
  );
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return { child, exited };
}

test("stdout carries JSON-RPC alone; errors for bad lines; EOF exits 0 within 2 s", T, async () => {
  const { child, exited } = spawnRawMcp("raw-agent");
  let stdout = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.resume();
  const lines = [
    { jsonrpc: "2.0", id: 1, method: "server/discover", params: {} },
    {
      jsonrpc: "2.0",
      id: 2,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
    },
    "this is not json",
    { jsonrpc: "2.0", method: "notifications/initialized" },
    { jsonrpc: "2.0", method: "notifications/no_such_notification", params: {} },
    [{ jsonrpc: "2.0", id: 3, method: "ping" }],
    { jsonrpc: "2.0", id: 4, method: "server/discover" },
    { jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "meshwire_status", arguments: {} } },
    { jsonrpc: "2.0", id: "string-id", method: "ping" },
    { jsonrpc: "2.0", id: 6, method: "ping" },
  ];
  for (const line of lines) child.stdin.write((typeof line === "string" ? line : JSON.stringify(line)) + "\n");

  const answers = () =>
    stdout
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l)); // every stdout line must be JSON
  await until("answers to ids 5 and 6", () => {
    const ids = answers().map((a) => a.id);
    return ids.includes(5) && ids.includes(6);
  });
  await sleep(200); // anything late (e.g. an answer to a notification) shows up now

  const got = answers();
  for (const a of got) {
    assert.equal(a.jsonrpc, "2.0");
    assert.ok("id" in a, `a response, not a notification: ${JSON.stringify(a)}`);
    assert.ok(("result" in a) !== ("error" in a), `result xor error: ${JSON.stringify(a)}`);
  }
  const byId = (id) => got.filter((a) => a.id === id);
  assert.equal(byId(1)[0].error.code, -32601, "server/discover before initialize");
  assert.equal(byId(2)[0].result.protocolVersion, "2025-06-18");
  assert.equal(byId(4)[0].error.code, -32601, "server/discover after initialize");
  assert.equal(byId(5)[0].result.isError, false);
  assert.deepEqual(byId(6)[0].result, {});
  assert.deepEqual(byId("string-id")[0].result, {}, "a string id is echoed");
  const nulls = byId(null).map((a) => a.error.code).sort();
  assert.deepEqual(nulls, [-32700, -32600].sort(), "parse error and batch, with id null");
  assert.equal(byId(3).length, 0, "nothing inside a batch is run");
  assert.equal(got.length, 8, `one answer per request, none to notifications: ${stdout}`);

  const t = Date.now();
  child.stdin.end();
  const timer = setTimeout(() => child.kill("SIGKILL"), 2000);
  const { code, signal } = await exited;
  clearTimeout(timer);
  assert.equal(signal, null, "exited by itself within 2 s of EOF");
  assert.equal(code, 0);
  assert.ok(Date.now() - t < 2000);
});

test("a client that stops reading stdout (stdin still open) stops the server at its next answer, as SIGPIPE does", T, async () => {
  const { child, exited } = spawnRawMcp("deaf-agent");
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  child.stdout.destroy(); // the read end closes: the server's next write fails
  // A ping every 100 ms (the first answer may beat the close into the pipe).
  child.stdin.on("error", () => {}); // the last ones meet a server that stopped
  let id = 0;
  const pings = setInterval(() => child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id: ++id, method: "ping" }) + "\n"), 100);
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  const { signal } = await exited;
  clearInterval(pings);
  clearTimeout(timer);
  assert.equal(signal, "SIGPIPE", `it went on running (it heartbeat for a client that was gone): ${stderr}`);
  assert.match(stderr, /the client no longer reads standard output; stopping/);
});

// ---------------------------------------------------------------------------
// Push into the session (stdio): notifications/claude/channel

const channelOf = (mcp) => mcp.notifications.filter((n) => n.method === "notifications/claude/channel");

// Until the relay has agent `name`: `meshwire mcp` registers it from its
// heartbeat thread, which may finish after initialize and tools/list have
// answered (on CI it did not, and the first send got 404 agent_not_found).
async function untilRegistered(name) {
  await until(`${name} to be registered`, async () => (await agentsByName())[name]);
}

// Sends `content` to agent `to` every 300 ms until `mcp` has a push (its event
// stream opens a moment after initialized, and carries only what comes after).
// The messages sent, oldest first.
async function untilPushed(mcp, to, content) {
  await untilRegistered(to);
  const sent = [];
  const deadline = Date.now() + 8000;
  while (channelOf(mcp).length === 0) {
    if (Date.now() > deadline) throw new Error(`no push to ${to} within 8 s`);
    sent.push(await restSend({ to, content }));
    const t = Date.now();
    while (channelOf(mcp).length === 0 && Date.now() - t < 300) await sleep(20);
  }
  await sleep(200); // a push of a later one, if any, lands too
  return sent;
}

test("push: Claude Code (clientInfo claude-code) is sent each message as notifications/claude/channel; get_messages still has it", T, async () => {
  const mcp = await startMcp({ name: "push-stdio", clientName: "claude-code" });
  (fx.extra ??= []).push(mcp);
  assert.deepEqual(mcp.client.getServerCapabilities().experimental, { "claude/channel": {} });
  // The event stream opens after initialized (live only): send until a push comes.
  const sent = await untilPushed(mcp, "push-stdio", "pushed over stdio");
  const { params } = channelOf(mcp)[0];
  const first = sent.find((m) => m.id === params.meta.message_id);
  assert.ok(first, "the push is of a message sent");
  const pushes = channelOf(mcp).length;
  assert.equal(params.meta.message_id, first.id);
  assert.equal(params.meta.seq, String(first.seq));
  assert.match(params.content, /<<<message (\w{12})\npushed over stdio\nmessage \1>>>/);
  assert.match(params.content, /from agent "rest-agent" \(id \w+, harness rest\)/); // as get_messages frames it
  const second = await restSend({ to: "push-stdio", content: "again" });
  await until("the second push", () => channelOf(mcp).length === pushes + 1);
  assert.equal(channelOf(mcp)[pushes].params.meta.message_id, second.id);
  // Claude Code did not declare it shows channel pushes: get_messages returns all, the pushed ones marked.
  const got = await mcp.call("meshwire_get_messages", {});
  assert.deepEqual(got.structuredContent.messages.map((m) => m.id), [...sent.map((m) => m.id), second.id]);
  assert.match(textOf(got), /also pushed to this session/);
  assert.deepEqual(mcp.errors.map(String), []);
});

test("push: a relay URL no client can use is a tool error, never an abort of the server (it was std::terminate)", T, async () => {
  const mcp = await startMcp({ name: "bad-url", clientName: "claude-code", url: `${fx.url}/a path` });
  (fx.extra ??= []).push(mcp);
  await sleep(300); // the push loop has started, after initialized
  const status = await mcp.call("meshwire_status");
  assertToolError(status, /has a path with characters a URL path cannot hold/);
  await assertAlive(mcp);
});

test("push: a client declaring experimental claude/channel has pushed messages left out of get_messages; others get no push", T, async () => {
  const shows = await startMcp({ name: "push-shows", capabilities: { experimental: { "claude/channel": {} } } });
  const plain = await startMcp({ name: "push-plain" });
  (fx.extra ??= []).push(shows, plain);
  const sent = await untilPushed(shows, "push-shows", "once");
  const got = await shows.call("meshwire_get_messages", {});
  // What was pushed before the answer (a push written before it is read
  // before it; once returned, a message is never pushed).
  const pushed = new Set(channelOf(shows).map((n) => n.params.meta.message_id));
  assert.ok(sent.some((m) => pushed.has(m.id)));
  // Those sent before the stream opened were never pushed: only they are returned.
  assert.deepEqual(
    got.structuredContent.messages.map((m) => m.id),
    sent.filter((m) => !pushed.has(m.id)).map((m) => m.id),
    "the pushed ones: the client has them",
  );
  // A plain client (no claude/channel, not Claude Code) is never pushed to.
  await untilRegistered("push-plain");
  const toPlain = await restSend({ to: "push-plain", content: "poll me" });
  await sleep(500);
  assert.deepEqual(channelOf(plain), []);
  const polled = await plain.call("meshwire_get_messages", {});
  assert.deepEqual(polled.structuredContent.messages.map((m) => m.id), [toPlain.id]);
  assert.doesNotMatch(textOf(polled), /also pushed/);
});

test("push: get_messages looks past a batch that was all pushed: it waits out wait_seconds, and acknowledges what it passed", T, async () => {
  const shows = await startMcp({ name: "push-wait", capabilities: { experimental: { "claude/channel": {} } } });
  (fx.extra ??= []).push(shows);
  await untilPushed(shows, "push-wait", "early");
  await shows.call("meshwire_get_messages", {}); // those sent before the stream opened
  const pushed = await restSend({ to: "push-wait", content: "pushed, then waited past" });
  await until("its push", () => channelOf(shows).some((n) => n.params.meta.message_id === pushed.id));
  const started = Date.now();
  const got = await shows.call("meshwire_get_messages", { wait_seconds: 2 });
  assert.deepEqual(got.structuredContent.messages, []);
  // It answered "No new messages." at once, and left the pushed one unacknowledged.
  assert.ok(Date.now() - started >= 1500, `answered after ${Date.now() - started} ms`);
  const detail = await rest(fx.url, fx.token, "GET", `${fx.m}/messages/${pushed.id}`);
  assert.equal(detail.delivery.find((d) => d.name === "push-wait").state, "acked");
});

// ---------------------------------------------------------------------------
// The MCP Inspector's CLI mode

function inspector(args, home) {
  return new Promise((resolve) => {
    execFile(
      INSPECTOR,
      [
        "--cli",
        "--cwd",
        home,
        "-e",
        `MESHWIRE_TOKEN=${fx.token}`,
        "-e",
        `MESHWIRE_URL=${fx.url}`,
        "-e",
        `HOME=${home}`,
        "-e",
        `MESHWIRE_HOME=${path.join(home, ".meshwire")}`,
        BINARY,
        "mcp",
        "--mesh",
        fx.meshId,
        "--name",
        "inspector-agent",
        ...args,
      ],
      { env: childEnv({ HOME: home }), cwd: home, timeout: 20000, killSignal: "SIGKILL", maxBuffer: 4 << 20 },
      (error, stdout, stderr) => resolve({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr }),
    );
  });
}

test("MCP Inspector --cli: tools/list (strict schema check) and tools/call meshwire_status", { timeout: 45000 }, async () => {
  assert.ok(fs.existsSync(INSPECTOR), "run `npm ci` in tests/ (the inspector is a devDependency)");
  const home = tempDir("mw-inspector-home-");

  const list = await inspector(["--method", "tools/list", "--strict"], home);
  assert.equal(list.code, 0, `inspector tools/list failed: ${list.stderr}`);
  const { tools } = JSON.parse(list.stdout);
  assert.deepEqual(tools.map((t) => t.name).sort(), [...NAMES].sort());
  assert.match(list.stderr, /\b0 errors\b/, "no error-severity schema portability problem");

  const call = await inspector(["--method", "tools/call", "--tool-name", "meshwire_status"], home);
  assert.equal(call.code, 0, `inspector tools/call failed: ${call.stderr}`);
  const result = JSON.parse(call.stdout);
  assert.equal(result.isError, false, JSON.stringify(result));
  assert.equal(result.structuredContent.service.status, "online");
  assert.equal(result.structuredContent.mesh.mesh_id, fx.meshId);
  assert.equal(result.structuredContent.agent.name, "inspector-agent");
  assert.deepEqual(fs.readdirSync(home).filter((f) => f !== ".meshwire"), [], "nothing written to HOME");
});
