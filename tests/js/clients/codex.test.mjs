// The real OpenAI Codex CLI (@openai/codex, pinned in tests/package.json)
// against a real meshwire relay, wired only by `meshwire init --harness codex`.
//
// What it proves:
//  1. Codex lists the meshwire MCP server that init wrote into
//     $CODEX_HOME/config.toml, with its five tools.
//  2. A meshwire_status call through Codex reaches the relay (online, names
//     the mesh) whether the token is only in Codex's environment (MESHWIRE_TOKEN,
//     passed on by init's `env_vars`) or only in credentials.json (found
//     through MESHWIRE_HOME, also passed on by `env_vars`); and that without
//     the `env_vars` line the same call gets "No meshwire credentials", so
//     that line is what makes the environment case work.
//  3. A full model turn: a stand-in model (./openai_standin.mjs, Responses API
//     on 127.0.0.1) is offered the meshwire tools, calls meshwire_status, and
//     gets back the tool output naming the mesh.
//  4. One config.toml, two workspaces on different meshes: init warns that the
//     entry's default mesh changed, and each thread still reaches the mesh of
//     its own workspace's .mesh.json.
//
// How: `codex app-server` (JSON-RPC over JSONL on stdio: initialize,
// mcpServerStatus/list, thread/start, mcpServer/tool/call, turn/start) in a
// temp HOME and CODEX_HOME per test. Nothing leaves 127.0.0.1: a custom model
// provider with no key (no OpenAI account, no api.openai.com), plugins off (no
// github.com look-ups) and no shell snapshot (no ~/.bashrc).
//
// Needs `npm ci` in tests/; skips when @openai/codex is not installed. Run
// from the repository root:
//   MESHWIRE_BINARY=$PWD/build/cli/meshwire node --test tests/js/clients/codex.test.mjs

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { BINARY, childEnv, exitOnSignals, tempDir, trackPid, until, untrackPid } from "../support/relay.mjs";
import {
  MESHWIRE_TOOLS,
  clientBin,
  initHarness,
  killGroup,
  missingUnless,
  mkdirIn,
  notInstalled,
  run,
  startRelayFixture,
  stopRelayFixture,
} from "./client_support.mjs";
import { startStandin } from "./openai_standin.mjs";

exitOnSignals();

const CODEX = clientBin("codex");
const MISSING = missingUnless(CODEX, notInstalled("@openai/codex", CODEX, "Codex"));
const T = { timeout: 90000 };
const NAMES = MESHWIRE_TOOLS;

// ---------------------------------------------------------------------------
// Fixture: one relay, one stand-in model and two meshes for the whole file

const fx = {};
const sessions = new Set();

before(async () => {
  if (MISSING) return;
  [fx.mesh1, fx.mesh2] = await startRelayFixture(fx, "mw-codex-relay-", ["codex-one", "codex-two"]);
  fx.standin = await startStandin({ tool: "meshwire_status" });
});

after(async () => {
  for (const codex of sessions) await codex.close();
  await fx.standin?.close();
  await stopRelayFixture(fx);
});

// ---------------------------------------------------------------------------
// Helpers (the fixture, `meshwire init` and process groups: ./client_support.mjs)

// The Codex settings init does not write: the stand-in model as the provider,
// and nothing that would reach beyond 127.0.0.1. init merges its
// [mcp_servers.meshwire] into this file and keeps the rest.
function baseConfig() {
  return `model = "standin-model"
model_provider = "standin"
approval_policy = "never"
sandbox_mode = "read-only"

[model_providers.standin]
name = "Standin"
base_url = "${fx.standin.baseUrl}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 20000

[features]
plugins = false
shell_snapshot = false
`;
}

// A temp HOME, CODEX_HOME (holding the base config.toml), MESHWIRE_HOME and
// the named workspaces: { root, home, codexHome, config, mwHome, ws: {name: dir} }.
function setup(label, workspaces = ["ws"]) {
  const root = tempDir(`mw-codex-${label}-`);
  const dir = (name) => mkdirIn(root, name);
  const dirs = { root, home: dir("home"), codexHome: dir("codex-home"), mwHome: dir("meshwire-home"), ws: {} };
  for (const name of workspaces) dirs.ws[name] = dir(name);
  dirs.config = path.join(dirs.codexHome, "config.toml");
  fs.writeFileSync(dirs.config, baseConfig());
  return dirs;
}

// Runs `meshwire init --harness codex --mesh MESH` in workspace; the token goes
// in as MESHWIRE_TOKEN (tokenVia "env": nothing saved) or as --token/--url
// (tokenVia "flag": saved into MESHWIRE_HOME/credentials.json). Its stdout.
function initCodex(dirs, workspace, mesh, tokenVia = "env") {
  return initHarness("codex", fx, {
    cwd: workspace,
    mesh,
    tokenVia,
    env: { HOME: dirs.home, CODEX_HOME: dirs.codexHome },
    flagEnv: { MESHWIRE_HOME: dirs.mwHome },
  });
}

// A running `codex app-server`, initialized: { request(method, params),
// next(what, predicate), messages, close() }. Its process group is killed on
// close and by killAll (it runs `meshwire mcp` children of its own).
async function startCodex(dirs, extraEnv = {}) {
  const env = childEnv({ HOME: dirs.home, CODEX_HOME: dirs.codexHome, ...extraEnv });
  for (const key of ["OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL"]) delete env[key];
  const child = spawn(CODEX, ["app-server"], { cwd: dirs.root, env, stdio: ["pipe", "pipe", "pipe"], detached: true });
  trackPid(-child.pid);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const messages = [];
  const pending = new Map();
  let stderr = "";
  let buffered = "";
  let nextId = 1;
  const tail = () => stderr.split("\n").slice(-12).join("\n");
  const send = (message) => child.stdin.write(JSON.stringify(message) + "\n");

  child.stderr.on("data", (chunk) => (stderr += chunk));
  child.stdout.on("data", (chunk) => {
    buffered += chunk;
    for (let end; (end = buffered.indexOf("\n")) >= 0; ) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (!line) continue;
      const message = JSON.parse(line);
      messages.push(message);
      if (message.id !== undefined && message.method === undefined && pending.has(message.id)) {
        const { resolve, reject, method } = pending.get(message.id);
        pending.delete(message.id);
        if (message.error) reject(new Error(`${method}: ${JSON.stringify(message.error)}`));
        else resolve(message.result);
      } else if (message.id !== undefined && message.method) {
        // A request to us (an approval): none is expected for the read-only status tool.
        send({ id: message.id, error: { code: -32601, message: `the test does not answer ${message.method}` } });
      }
    }
  });
  child.once("exit", (code, signal) => {
    for (const { reject, method } of pending.values()) {
      reject(new Error(`codex app-server exited (${code ?? signal}) before answering ${method}:\n${tail()}`));
    }
    pending.clear();
  });

  const codex = {
    messages,
    request(method, params, timeoutMs = 30000) {
      const id = nextId++;
      const answer = new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
      send({ id, method, params });
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer to ${method} within ${timeoutMs} ms:\n${tail()}`)), timeoutMs);
      });
      return Promise.race([answer, timeout]).finally(() => clearTimeout(timer));
    },
    next(what, predicate, timeoutMs = 30000) {
      return until(what, () => messages.find(predicate), timeoutMs);
    },
    async close() {
      if (!sessions.delete(codex)) return;
      child.stdin.end(); // EOF: the app-server shuts down its MCP servers and exits
      let timer;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
      killGroup(-child.pid); // the whole group
      untrackPid(-child.pid);
    },
  };
  sessions.add(codex);
  await codex.request("initialize", {
    clientInfo: { name: "meshwire_tests", title: "meshwire tests", version: "0.0.1" },
    capabilities: { experimentalApi: true },
  });
  send({ method: "initialized" });
  return codex;
}

// A new thread whose MCP servers run in cwd; resolves once meshwire is ready.
async function startThread(codex, cwd) {
  const { thread } = await codex.request("thread/start", { cwd, ephemeral: true });
  const startup = await codex.next(
    `meshwire to start in thread ${thread.id}`,
    (m) =>
      m.method === "mcpServer/startupStatus/updated" &&
      m.params?.threadId === thread.id &&
      m.params.name === "meshwire" &&
      ["ready", "failed"].includes(m.params.status),
  );
  assert.equal(startup.params.status, "ready", `meshwire MCP server failed to start: ${startup.params.error}`);
  return thread.id;
}

// meshwire_status called through Codex (no model involved): { isError, text }.
async function callStatus(codex, threadId) {
  const result = await codex.request("mcpServer/tool/call", {
    threadId,
    server: "meshwire",
    tool: "meshwire_status",
    arguments: {},
  });
  return { isError: result.isError, text: result.content.map((part) => part.text ?? "").join("\n") };
}

function assertOnline(status, mesh) {
  assert.equal(status.isError, false, status.text);
  assert.match(status.text, /\bonline\b/);
  assert.ok(status.text.includes(mesh), `status names mesh ${mesh}: ${status.text}`);
}

// ---------------------------------------------------------------------------
// Tests

test("mcpServerStatus/list shows the meshwire server init configured, with its five tools", T, async (t) => {
  if (MISSING) return t.skip(MISSING);
  const dirs = setup("list");
  await initCodex(dirs, dirs.ws.ws, fx.mesh1);
  const config = fs.readFileSync(dirs.config, "utf8");
  assert.match(config, /^\[mcp_servers\.meshwire\]$/m);
  assert.match(config, /^model_provider = "standin"$/m, "init kept the keys it does not own");

  const codex = await startCodex(dirs, { MESHWIRE_TOKEN: fx.token });
  const { data } = await codex.request("mcpServerStatus/list", { detail: "toolsAndAuthOnly" });
  const meshwire = data.find((server) => server.name === "meshwire");
  assert.ok(meshwire, `meshwire is listed: ${JSON.stringify(data.map((server) => server.name))}`);
  assert.equal(meshwire.toolsError, null);
  assert.deepEqual(Object.keys(meshwire.tools).sort(), [...NAMES].sort());
  await codex.close();
});

test("meshwire_status through Codex is online with the token in the environment or in credentials.json", T, async (t) => {
  if (MISSING) return t.skip(MISSING);

  await t.test("(a) MESHWIRE_TOKEN only in Codex's environment (passed on by env_vars)", async () => {
    const dirs = setup("env");
    await initCodex(dirs, dirs.ws.ws, fx.mesh1, "env");
    assert.match(fs.readFileSync(dirs.config, "utf8"), /^env_vars = \[.*"MESHWIRE_TOKEN".*\]$/m);
    assert.ok(!fs.existsSync(path.join(dirs.home, ".meshwire/credentials.json")), "no credentials.json");
    assert.ok(!fs.existsSync(path.join(dirs.mwHome, "credentials.json")), "no credentials.json");

    const codex = await startCodex(dirs, { MESHWIRE_TOKEN: fx.token });
    assertOnline(await callStatus(codex, await startThread(codex, dirs.ws.ws)), fx.mesh1);
    await codex.close();
  });

  await t.test("(a') the same without the env_vars line: the token does not reach meshwire", async () => {
    const dirs = setup("no-env-vars");
    await initCodex(dirs, dirs.ws.ws, fx.mesh1, "env");
    const config = fs.readFileSync(dirs.config, "utf8");
    const stripped = config.replace(/^env_vars = .*\n/m, "");
    assert.notEqual(stripped, config, "init wrote an env_vars line");
    fs.writeFileSync(dirs.config, stripped);

    const codex = await startCodex(dirs, { MESHWIRE_TOKEN: fx.token });
    const status = await callStatus(codex, await startThread(codex, dirs.ws.ws));
    assert.equal(status.isError, true, status.text);
    assert.match(status.text, /No meshwire credentials/);
    await codex.close();
  });

  await t.test("(b) credentials.json only (in MESHWIRE_HOME), no MESHWIRE_TOKEN", async () => {
    const dirs = setup("cred");
    await initCodex(dirs, dirs.ws.ws, fx.mesh1, "flag");
    const saved = JSON.parse(fs.readFileSync(path.join(dirs.mwHome, "credentials.json"), "utf8"));
    assert.equal(saved.token, fx.token);

    const codex = await startCodex(dirs, { MESHWIRE_HOME: dirs.mwHome });
    assertOnline(await callStatus(codex, await startThread(codex, dirs.ws.ws)), fx.mesh1);
    await codex.close();
  });
});

test("a workspace wired for Codex and then for Cursor: Codex's server is still codex-agent, not the .mesh.json's cursor-agent", T, async (t) => {
  if (MISSING) return t.skip(MISSING);
  const dirs = setup("two-platforms");
  await initCodex(dirs, dirs.ws.ws, fx.mesh1);
  // Cursor's user-wide entry goes to HOME/.cursor; .mesh.json now names cursor-agent.
  await initHarness("cursor", fx, { cwd: dirs.ws.ws, mesh: fx.mesh1, tokenVia: "env", env: { HOME: dirs.home } });
  const meshJson = JSON.parse(fs.readFileSync(path.join(dirs.ws.ws, ".mesh.json"), "utf8"));
  assert.deepEqual([meshJson.harness, meshJson.agent_name], ["cursor", "cursor-agent"]);

  const codex = await startCodex(dirs, { MESHWIRE_TOKEN: fx.token });
  const status = await callStatus(codex, await startThread(codex, dirs.ws.ws));
  assertOnline(status, fx.mesh1);
  assert.match(status.text, /\bcodex-agent\b/);
  assert.doesNotMatch(status.text, /\bcursor-agent\b/);
  await codex.close();
});

test("a model turn: the stand-in model is offered the meshwire tools, calls meshwire_status and gets the mesh back", T, async (t) => {
  if (MISSING) return t.skip(MISSING);
  const dirs = setup("turn");
  await initCodex(dirs, dirs.ws.ws, fx.mesh1);
  const codex = await startCodex(dirs, { MESHWIRE_TOKEN: fx.token });
  const threadId = await startThread(codex, dirs.ws.ws);
  const first = fx.standin.requests.length;

  await codex.request("turn/start", {
    threadId,
    input: [{ type: "text", text: "Check the meshwire status.", text_elements: [] }],
  });
  const completed = await codex.next(
    "turn/completed",
    (m) => m.method === "turn/completed" && m.params?.threadId === threadId,
    60000,
  );
  assert.equal(completed.params.turn.status, "completed", JSON.stringify(completed.params.turn));

  const turn = fx.standin.requests.slice(first).filter((r) => r.api === "responses");
  assert.ok(turn.length >= 2, `the stand-in got the turn and the tool output (${turn.length} requests)`);
  const offered = turn[0].tools.filter((tool) => tool.name.startsWith("meshwire_"));
  assert.deepEqual(offered.map((tool) => tool.name).sort(), [...NAMES].sort());
  assert.ok(offered.every((tool) => tool.namespace === "mcp__meshwire"), JSON.stringify(offered));

  const call = codex.messages.find((m) => m.method === "item/completed" && m.params?.item?.type === "mcpToolCall");
  assert.ok(call, "Codex ran an MCP tool call");
  assert.equal(call.params.item.server, "meshwire");
  assert.equal(call.params.item.tool, "meshwire_status");
  assert.equal(call.params.item.status, "completed", JSON.stringify(call.params.item.error));

  const withOutput = turn.find((r) => r.toolOutput !== undefined);
  assert.ok(withOutput, "the stand-in received the tool output");
  assert.ok(withOutput.toolOutput.includes(fx.mesh1), `the tool output names mesh ${fx.mesh1}: ${withOutput.toolOutput}`);
  const answer = completed.params.turn.items?.find((item) => item.type === "agentMessage");
  assert.equal(answer?.text, "done");
  await codex.close();
});

test("two workspaces on different meshes share one config.toml; each thread reaches its own mesh", T, async (t) => {
  if (MISSING) return t.skip(MISSING);
  const dirs = setup("two", ["ws-a", "ws-b"]);
  await initCodex(dirs, dirs.ws["ws-a"], fx.mesh1);
  const output = await initCodex(dirs, dirs.ws["ws-b"], fx.mesh2);
  const warning = `Warning: the meshwire entry in ${dirs.config} named mesh ${fx.mesh1}; it now names ${fx.mesh2}`;
  assert.ok(output.includes(warning), `init in B warns:\n${output}`);

  const codex = await startCodex(dirs, { MESHWIRE_TOKEN: fx.token });
  const [threadA, threadB] = [await startThread(codex, dirs.ws["ws-a"]), await startThread(codex, dirs.ws["ws-b"])];
  const [statusA, statusB] = [await callStatus(codex, threadA), await callStatus(codex, threadB)];
  assertOnline(statusA, fx.mesh1);
  assert.ok(!statusA.text.includes(fx.mesh2), statusA.text);
  assertOnline(statusB, fx.mesh2);
  assert.ok(!statusB.text.includes(fx.mesh1), statusB.text);
  await codex.close();
});

test("--remote: Codex reaches the relay's endpoint (url, bearer_token_env_var) and calls meshwire_status", T, async (t) => {
  if (MISSING) return t.skip(MISSING);
  const dirs = setup("remote");
  const init = await run(BINARY, ["init", "--harness", "codex", "--remote", "--mesh", fx.mesh1, "--url", fx.url], {
    cwd: dirs.ws.ws,
    env: childEnv({ HOME: dirs.home, CODEX_HOME: dirs.codexHome, MESHWIRE_TOKEN: fx.token, MESHWIRE_HOME: dirs.mwHome }),
    timeoutMs: 20000,
  });
  assert.equal(init.code, 0, JSON.stringify(init));
  const config = fs.readFileSync(dirs.config, "utf8");
  assert.ok(config.includes(`url = "${fx.url}/mesh/${fx.mesh1}/mcp?agent=codex-agent"\nbearer_token_env_var = "MESHWIRE_TOKEN"\n`), config);
  assert.ok(!config.includes(fx.token), "no token in config.toml");

  const codex = await startCodex(dirs, { MESHWIRE_TOKEN: fx.token });
  const { data } = await codex.request("mcpServerStatus/list", { detail: "toolsAndAuthOnly" });
  const meshwire = data.find((server) => server.name === "meshwire");
  assert.equal(meshwire.toolsError, null, JSON.stringify(meshwire));
  assert.deepEqual(Object.keys(meshwire.tools).sort(), [...NAMES].sort());
  const thread = await startThread(codex, dirs.ws.ws);
  const status = await callStatus(codex, thread);
  assertOnline(status, fx.mesh1);
  assert.match(status.text, /you are agent codex-agent/);
  await codex.close();
});
