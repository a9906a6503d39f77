// The real GitHub Copilot CLI (@github/copilot, pinned in tests/package.json)
// against a real meshwire relay, wired only by `meshwire init --harness copilot`.
//
// What it proves:
//  1. A plain `copilot -p` session (no --experimental, no tool approvals) in a
//     fresh COPILOT_HOME after init is offered the five meshwire MCP tools
//     from the mcp-config.json entry init wrote (Copilot names them
//     `meshwire-meshwire_status` etc.), and a meshwire_status call through
//     Copilot comes back online naming the mesh, whether the token is only in
//     Copilot's environment (MESHWIRE_TOKEN, no credentials.json) or only in
//     credentials.json (saved by `init --token`, no MESHWIRE_TOKEN). The
//     extension init also wrote does not load there (no MeshWire session
//     context reaches the model).
//  2. With experimental mode on (`--experimental`), the extension loads (its
//     onSessionStart context reaches the model and names the MCP server's
//     tools), yet the model is offered the meshwire tools exactly once: the
//     five MCP tools and none of the extension's own mesh_* tools, because
//     the extension saw the meshwire entry in mcp-config.json.
//
// How: `copilot -p PROMPT --output-format json` in a temp HOME, COPILOT_HOME
// and workspace per run, with a stand-in model (./openai_standin.mjs, chat
// completions over SSE on 127.0.0.1) as a BYOK provider in offline mode: no
// GitHub account, no auth, telemetry, auto-update or GitHub MCP server, so
// nothing leaves 127.0.0.1. The stand-in calls `meshwire-meshwire_status` when
// offered it and records every request (tools offered, messages, tool result).
// Copilot unpacks its 235 MB package on first run; one temp XDG_CACHE_HOME is
// shared by the runs of this file so that happens once.
//
// Needs `npm ci` in tests/; skips when @github/copilot is not installed. Run
// from the repository root:
//   MESHWIRE_BINARY=$PWD/build/cli/meshwire node --test tests/js/clients/copilot.test.mjs

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { BINARY, childEnv, exitOnSignals, tempDir, untrackPid } from "../support/relay.mjs";
import {
  MESHWIRE_TOOLS,
  clientBin,
  initHarness,
  killGroup,
  missingUnless,
  mkdirIn,
  notInstalled,
  spawnGroup,
  startRelayFixture,
  stopRelayFixture,
} from "./client_support.mjs";
import { startStandin } from "./openai_standin.mjs";

exitOnSignals();

const COPILOT = clientBin("copilot");
const MISSING = missingUnless(COPILOT, notInstalled("@github/copilot", COPILOT, "Copilot"));
const T = { timeout: 90000 };
const RUN_TIMEOUT_MS = 60000;
const STATUS_TOOL = "meshwire-meshwire_status";
// Copilot's names for the five MCP tools (server "meshwire"), sorted.
const TOOLS = MESHWIRE_TOOLS.map((name) => `meshwire-${name}`).sort();
// The first words of the extension's onSessionStart context (meshwire-extension.mjs).
const EXTENSION_CONTEXT = "MeshWire is set up in this session";
// Copilot settings that would send it elsewhere or change what it loads.
const STRIPPED = ["GITHUB_TOKEN", "GH_TOKEN", "COPILOT_GITHUB_TOKEN", "COPILOT_ALLOW_ALL", "XDG_CONFIG_HOME", "OPENAI_API_KEY"];

// ---------------------------------------------------------------------------
// Fixture: one relay, one mesh and one Copilot package cache for the whole file

const fx = {};

before(async () => {
  if (MISSING) return;
  [fx.mesh] = await startRelayFixture(fx, "mw-copilot-relay-", ["copilot-one"]);
  fx.cache = tempDir("mw-copilot-cache-");
});

after(() => stopRelayFixture(fx));

// ---------------------------------------------------------------------------
// Helpers (the fixture, `meshwire init` and process groups: ./client_support.mjs)

// A temp HOME, COPILOT_HOME and workspace: { root, home, copilotHome, ws }.
function setup(label) {
  const root = tempDir(`mw-copilot-${label}-`);
  const dir = (name) => mkdirIn(root, name);
  return { root, home: dir("home"), copilotHome: dir("copilot-home"), ws: dir("ws") };
}

// Runs `meshwire init --harness copilot --mesh MESH` in the workspace; the token
// goes in as MESHWIRE_TOKEN (tokenVia "env": nothing saved) or as --token/--url
// (tokenVia "flag": saved into HOME/.meshwire/credentials.json). Its stdout.
function initCopilot(dirs, tokenVia) {
  return initHarness("copilot", fx, {
    cwd: dirs.ws,
    mesh: fx.mesh,
    tokenVia,
    env: { HOME: dirs.home, COPILOT_HOME: dirs.copilotHome },
  });
}

// One `copilot -p` run in the workspace against a fresh stand-in model; resolves
// once it exits: { code, events (the JSONL output), requests (the stand-in's),
// stderr }. Its process group (Copilot, its MCP servers and extensions) is
// killed when it exits and after RUN_TIMEOUT_MS at most.
async function runCopilot(dirs, { env = {}, args = [] } = {}) {
  const standin = await startStandin({ tool: STATUS_TOOL });
  const childEnvironment = childEnv({
    HOME: dirs.home,
    COPILOT_HOME: dirs.copilotHome,
    XDG_CACHE_HOME: fx.cache,
    COPILOT_OFFLINE: "true",
    COPILOT_AUTO_UPDATE: "false",
    COPILOT_PROVIDER_BASE_URL: standin.baseUrl,
    COPILOT_MODEL: "standin-model",
    ...env,
  });
  for (const key of STRIPPED) delete childEnvironment[key];
  for (const key of Object.keys(childEnvironment)) {
    if (key.startsWith("COPILOT_PROVIDER_") && key !== "COPILOT_PROVIDER_BASE_URL") delete childEnvironment[key];
  }
  const { child, group, output } = spawnGroup(
    COPILOT,
    ["-p", "Check the meshwire status.", "--output-format", "json", ...args],
    { cwd: dirs.ws, env: childEnvironment },
  );
  let timer;
  try {
    const code = await new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (status, signal) => resolve(status ?? signal));
      timer = setTimeout(() => killGroup(group), RUN_TIMEOUT_MS);
    });
    const events = output.stdout
      .split("\n")
      .filter((line) => line.trim().startsWith("{"))
      .map((line) => JSON.parse(line));
    return { code, events, requests: standin.requests.filter((r) => r.api === "chat"), stderr: output.stderr };
  } finally {
    clearTimeout(timer);
    killGroup(group); // MCP servers and extensions left behind
    untrackPid(group);
    await standin.close();
  }
}

// The meshwire tools offered in a request: names with "meshwire" or "mesh_" in them, sorted.
const meshTools = (request) => request.tools.map((t) => t.name).filter((n) => /meshwire|mesh_/.test(n)).sort();

// Whether the extension's session context reached the model in a request.
const hasExtensionContext = (request) => JSON.stringify(request.body?.messages ?? []).includes(EXTENSION_CONTEXT);

// Checks a run: it exited 0, the model was offered exactly the five MCP
// tools, called meshwire_status through Copilot, and got back online + the mesh.
function assertStatusRound(run) {
  const detail = () => `exit ${run.code}; stderr:\n${run.stderr.slice(-2000)}`;
  assert.equal(run.code, 0, detail());
  assert.ok(run.requests.length >= 2, `the stand-in got the turn and the tool result (${run.requests.length} requests); ${detail()}`);
  for (const request of run.requests) assert.deepEqual(meshTools(request), TOOLS, "the meshwire tools, once each");

  const complete = run.events.find((e) => e.type === "tool.execution_complete");
  assert.ok(complete, `Copilot ran a tool; ${detail()}`);
  const start = run.events.find((e) => e.type === "tool.execution_start" && e.data?.toolCallId === complete.data.toolCallId);
  assert.equal(start?.data?.toolName, STATUS_TOOL);
  assert.equal(start.data.mcpServerName, "meshwire");
  assert.equal(start.data.mcpConfigSource, "user", "from $COPILOT_HOME/mcp-config.json");
  assert.equal(complete.data.success, true, JSON.stringify(complete.data));

  const withResult = run.requests.find((r) => r.toolOutput !== undefined);
  assert.ok(withResult, "the stand-in received the tool result");
  assert.match(withResult.toolOutput, /\bonline\b/);
  assert.ok(withResult.toolOutput.includes(fx.mesh), `the tool result names mesh ${fx.mesh}: ${withResult.toolOutput}`);
  assert.doesNotMatch(withResult.toolOutput, /No meshwire credentials/);
  const answer = run.events.filter((e) => e.type === "assistant.message").at(-1);
  assert.equal(answer?.data?.content, "done");
}

// The meshwire entry init wrote into $COPILOT_HOME/mcp-config.json.
function assertMcpEntry(dirs) {
  const config = JSON.parse(fs.readFileSync(path.join(dirs.copilotHome, "mcp-config.json"), "utf8"));
  const entry = config.mcpServers?.meshwire;
  assert.ok(entry, JSON.stringify(config));
  assert.equal(entry.command, BINARY);
  assert.deepEqual(entry.args.slice(0, 3), ["mcp", "--default-mesh", fx.mesh]);
  assert.equal(entry.env?.MESHWIRE_URL, fx.url);
  assert.ok(!fs.existsSync(path.join(dirs.home, ".copilot")), "init used COPILOT_HOME, not ~/.copilot");
  assert.ok(fs.existsSync(path.join(dirs.copilotHome, "extensions/meshwire/extension.mjs")), "init wrote the extension");
}

// ---------------------------------------------------------------------------
// Tests

test("a plain copilot -p session gets the five meshwire MCP tools; meshwire_status is online with either credential", T, async (t) => {
  if (MISSING) return t.skip(MISSING);

  await t.test("(a) MESHWIRE_TOKEN only in Copilot's environment, no credentials.json", async () => {
    const dirs = setup("env");
    await initCopilot(dirs, "env");
    assertMcpEntry(dirs);
    assert.ok(!fs.existsSync(path.join(dirs.home, ".meshwire/credentials.json")), "no credentials.json");

    const run = await runCopilot(dirs, { env: { MESHWIRE_TOKEN: fx.token } });
    assertStatusRound(run);
    assert.ok(!run.requests.some(hasExtensionContext), "without experimental mode the extension does not load");
    const settings = path.join(dirs.copilotHome, "settings.json");
    assert.ok(!fs.existsSync(settings) || !/"experimental"\s*:\s*true/.test(fs.readFileSync(settings, "utf8")), "not experimental");
  });

  await t.test("(b) credentials.json only (saved by init --token), no MESHWIRE_TOKEN", async () => {
    const dirs = setup("cred");
    await initCopilot(dirs, "flag");
    assertMcpEntry(dirs);
    const saved = JSON.parse(fs.readFileSync(path.join(dirs.home, ".meshwire/credentials.json"), "utf8"));
    assert.equal(saved.token, fx.token);

    const run = await runCopilot(dirs);
    assertStatusRound(run);
    assert.ok(!run.requests.some(hasExtensionContext), "without experimental mode the extension does not load");
  });
});

test("with --experimental the extension loads, and the model still gets the meshwire tools once (no mesh_* copies)", T, async (t) => {
  if (MISSING) return t.skip(MISSING);
  const dirs = setup("experimental");
  await initCopilot(dirs, "env");
  assertMcpEntry(dirs);

  // --allow-all-tools approves the extension's "elevated permissions" (it registers hooks) in -p.
  const run = await runCopilot(dirs, { env: { MESHWIRE_TOKEN: fx.token }, args: ["--experimental", "--allow-all-tools"] });
  assertStatusRound(run);
  const settings = JSON.parse(fs.readFileSync(path.join(dirs.copilotHome, "settings.json"), "utf8"));
  assert.equal(settings.experimental, true, "--experimental was taken (and saved in COPILOT_HOME)");

  const withContext = run.requests.find(hasExtensionContext);
  assert.ok(withContext, "the extension loaded: its onSessionStart context reached the model");
  const context = JSON.stringify(withContext.body.messages);
  assert.ok(context.includes("Tools: those of the meshwire MCP server"), "the extension saw the MCP entry and offers no tools of its own");
  assert.ok(context.includes(`in mesh ${fx.mesh}`), "the extension knows the mesh");
  for (const request of run.requests) {
    assert.deepEqual(request.tools.map((tool) => tool.name).filter((name) => name.startsWith("mesh_")), []);
  }
});
