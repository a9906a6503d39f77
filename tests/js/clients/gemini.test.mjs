// The real Gemini CLI (@google/gemini-cli in tests/node_modules) against a
// real relay, configured only by `meshwire init --harness gemini`. It proves:
//  1. the trust step init prints is needed and right: in an untrusted
//     workspace `gemini mcp list` shows meshwire Disabled; after writing
//     ~/.gemini/trustedFolders.json exactly as init's note says, Connected;
//  2. a headless `gemini -p` run gets a working meshwire_status tool in both
//     credential modes: MESHWIRE_TOKEN in Gemini's environment only (Gemini
//     strips *TOKEN* variables from MCP servers; init's `"$MESHWIRE_TOKEN"`
//     env entry brings it back: a control run without that entry gets "No
//     meshwire credentials"), and ~/.meshwire/credentials.json only;
//  3. one user-level entry serves two workspaces on two meshes: init warns
//     when it moves the entry's default mesh, and each workspace's
//     .mesh.json still decides the mesh the server uses.
// How: no Google account and no network. The model is a stand-in Gemini API
// on loopback (./gemini_standin.mjs) that calls the meshwire status tool and
// records the tool result Gemini sends back. Every run has its own temp HOME
// (the user's ~/.gemini and ~/.meshwire are never touched), auto-update,
// usage statistics and telemetry are off in the settings, and the only
// servers are the relay and the stand-in, both on 127.0.0.1.
//
// Needs `npm ci` in tests/. Run from the repository root:
//   node --test tests/js/clients/gemini.test.mjs
// (MESHWIRE_BINARY overrides the meshwire binary.)

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { BINARY, childEnv, exitOnSignals, tempDir } from "../support/relay.mjs";
import { clientBin, missingUnless, run, startRelayFixture, stopRelayFixture } from "./client_support.mjs";
import { startGeminiStandin } from "./gemini_standin.mjs";

const GEMINI = clientBin("gemini");
const NOT_INSTALLED = missingUnless(GEMINI, `the Gemini CLI is not installed at ${GEMINI}: run \`npm ci\` in tests/`);

exitOnSignals();

// ---------------------------------------------------------------------------
// Helpers (the relay, REST calls and cleanup: ../support/relay.mjs; running a
// client, the fixture: ./client_support.mjs)

// A fresh user: a temp HOME (so ~/.gemini and ~/.meshwire are throwaway)
// whose Gemini settings keep it offline and on the stand-in's API key auth.
function newUser() {
  const home = tempDir("mw-gemini-home-");
  fs.mkdirSync(path.join(home, ".gemini"));
  const settings = {
    security: { auth: { selectedType: "gemini-api-key" } },
    general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
    privacy: { usageStatisticsEnabled: false },
    telemetry: { enabled: false },
  };
  fs.writeFileSync(path.join(home, ".gemini/settings.json"), JSON.stringify(settings, null, 2));
  return home;
}

// The environment of a user's shell: this one without MESHWIRE_*, GEMINI_*
// or GOOGLE_* variables, plus extra.
function userEnv(home, extra = {}) {
  const env = childEnv();
  for (const key of Object.keys(env)) if (/^(GEMINI_|GOOGLE_)/.test(key)) delete env[key];
  return { ...env, HOME: home, NO_COLOR: "1", ...extra };
}

// `meshwire init --harness gemini` in ws; with `save: true` the token goes
// through --token (saved to ~/.meshwire/credentials.json), else only through
// MESHWIRE_TOKEN. Returns init's stdout + stderr.
async function init(ws, home, meshId, { save }) {
  const args = ["init", "--harness", "gemini", "--mesh", meshId, "--url", fx.url, ...(save ? ["--token", fx.token] : [])];
  const env = userEnv(home, save ? {} : { MESHWIRE_TOKEN: fx.token });
  const out = await run(BINARY, args, { cwd: ws, env, timeoutMs: 20000 });
  assert.equal(out.code, 0, JSON.stringify(out));
  return out.stdout + out.stderr;
}

// Trusts folders the way init's next step says: "add "<ws>": "TRUST_FOLDER"
// to ~/.gemini/trustedFolders.json" (merged with what is there).
function trust(home, initOutput) {
  const note = /add "([^"]+)": "TRUST_FOLDER" to ~\/\.gemini\/trustedFolders\.json/.exec(initOutput);
  assert.ok(note, `init names the trust file and the folder: ${initOutput}`);
  const file = path.join(home, ".gemini/trustedFolders.json");
  const rules = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
  rules[note[1]] = "TRUST_FOLDER";
  fs.writeFileSync(file, JSON.stringify(rules, null, 2));
  return note[1];
}

// `gemini mcp list` in ws (it prints to stderr; the exit code is always 0).
async function mcpList(ws, home) {
  const out = await run(GEMINI, ["mcp", "list"], { cwd: ws, env: userEnv(home, { GEMINI_CLI_NO_RELAUNCH: "true" }) });
  assert.equal(out.code, 0, JSON.stringify(out));
  return out.stdout + out.stderr;
}

// A headless `gemini -p` in ws against a new stand-in model, meshwire's tools
// pre-approved on the command line (MCP tools are hidden in -p otherwise).
// Returns the stand-in's record: the tool names offered, the tool results.
async function ask(ws, home, extraEnv = {}) {
  const standin = await startGeminiStandin();
  try {
    const env = userEnv(home, {
      GEMINI_CLI_NO_RELAUNCH: "true",
      GOOGLE_GEMINI_BASE_URL: standin.url,
      GEMINI_API_KEY: "dummy",
      ...extraEnv,
    });
    const args = ["--allowed-mcp-server-names", "meshwire", "-p", "Check the meshwire status."];
    const out = await run(GEMINI, args, { cwd: ws, env, timeoutMs: 90000 });
    assert.equal(out.code, 0, JSON.stringify(out));
    assert.ok(standin.offered[0]?.includes("mcp_meshwire_meshwire_status"), `tools offered: ${JSON.stringify(standin.offered)}`);
    assert.equal(standin.results.length, 1, `one tool result: ${JSON.stringify(standin)} ${JSON.stringify(out)}`);
    return JSON.stringify(standin.results[0]);
  } finally {
    await standin.close();
  }
}

// The status tool's result says the relay is online and names meshId.
function assertOnline(result, meshId) {
  assert.doesNotMatch(result, /No meshwire credentials/, result);
  assert.ok(result.includes(`meshwire is online at ${fx.url}. Mesh ${meshId}`), `online, mesh ${meshId}: ${result}`);
}

// The mesh that mcpServers.meshwire in ~/.gemini/settings.json defaults to.
function entry(home) {
  return JSON.parse(fs.readFileSync(path.join(home, ".gemini/settings.json"), "utf8")).mcpServers.meshwire;
}

// ---------------------------------------------------------------------------
// Shared fixture: one relay, one token, two meshes

const fx = {};

before(async () => {
  if (NOT_INSTALLED) return;
  [fx.m1, fx.m2] = await startRelayFixture(fx, "mw-gemini-relay-", ["gemini-one", "gemini-two"]);
});

after(() => stopRelayFixture(fx));

// ---------------------------------------------------------------------------
// Tests

test("gemini mcp list: Disabled until the folder is trusted as init says, then Connected", { timeout: 60000 }, async (t) => {
  if (NOT_INSTALLED) return t.skip(NOT_INSTALLED);
  const home = newUser();
  const ws = fs.realpathSync(tempDir("mw-gemini-ws-"));
  const output = await init(ws, home, fx.m1, { save: true });
  const shown = `${BINARY} mcp --default-mesh ${fx.m1} --default-name gemini-agent (stdio)`;

  const untrusted = await mcpList(ws, home);
  assert.match(untrusted, /disabled because this folder is untrusted/, untrusted);
  assert.ok(untrusted.includes(`○ meshwire: ${shown} - Disabled`), untrusted);

  assert.equal(trust(home, output), ws, "init names this workspace");
  const trusted = await mcpList(ws, home);
  assert.ok(trusted.includes(`✓ meshwire: ${shown} - Connected`), trusted);
});

test("gemini -p calls meshwire_status with the token from each credential source", { timeout: 150000 }, async (t) => {
  if (NOT_INSTALLED) return t.skip(NOT_INSTALLED);

  await t.test("MESHWIRE_TOKEN in Gemini's environment only (no credentials.json)", async () => {
    const home = newUser();
    const ws = tempDir("mw-gemini-ws-");
    trust(home, await init(ws, home, fx.m1, { save: false }));
    assert.equal(fs.existsSync(path.join(home, ".meshwire/credentials.json")), false, "init saved no credentials");
    assert.equal(entry(home).env.MESHWIRE_TOKEN, "$MESHWIRE_TOKEN");
    assertOnline(await ask(ws, home, { MESHWIRE_TOKEN: fx.token }), fx.m1);
  });

  await t.test("~/.meshwire/credentials.json only (no MESHWIRE_TOKEN)", async () => {
    const home = newUser();
    const ws = tempDir("mw-gemini-ws-");
    trust(home, await init(ws, home, fx.m1, { save: true }));
    const saved = JSON.parse(fs.readFileSync(path.join(home, ".meshwire/credentials.json"), "utf8"));
    assert.equal(saved.token, fx.token);
    assertOnline(await ask(ws, home), fx.m1);
  });

  await t.test("control: without init's \"$MESHWIRE_TOKEN\" entry Gemini strips the exported token", async () => {
    const home = newUser();
    const ws = tempDir("mw-gemini-ws-");
    trust(home, await init(ws, home, fx.m1, { save: false }));
    const file = path.join(home, ".gemini/settings.json");
    const settings = JSON.parse(fs.readFileSync(file, "utf8"));
    delete settings.mcpServers.meshwire.env.MESHWIRE_TOKEN;
    fs.writeFileSync(file, JSON.stringify(settings, null, 2));
    const result = await ask(ws, home, { MESHWIRE_TOKEN: fx.token });
    assert.match(result, /No meshwire credentials reached this MCP server/, result);
  });
});

test("two workspaces on two meshes share the user-level entry; each keeps its own mesh", { timeout: 150000 }, async (t) => {
  if (NOT_INSTALLED) return t.skip(NOT_INSTALLED);
  const home = newUser();
  const a = tempDir("mw-gemini-ws-a-");
  const b = tempDir("mw-gemini-ws-b-");
  trust(home, await init(a, home, fx.m1, { save: true }));
  assert.equal(entry(home).args[2], fx.m1);

  const second = await init(b, home, fx.m2, { save: true });
  assert.match(second, new RegExp(`Warning: the meshwire entry in .* named mesh ${fx.m1}; it now names ${fx.m2}`), second);
  assert.equal(entry(home).args[2], fx.m2);
  trust(home, second);

  const inA = await ask(a, home);
  assertOnline(inA, fx.m1);
  assert.ok(!inA.includes(fx.m2), `workspace A is not on ${fx.m2}: ${inA}`);
  const inB = await ask(b, home);
  assertOnline(inB, fx.m2);
  assert.ok(!inB.includes(fx.m1), `workspace B is not on ${fx.m1}: ${inB}`);
});

test("--remote: gemini mcp list shows the relay's endpoint Connected with the token from the environment", { timeout: 60000 }, async (t) => {
  if (NOT_INSTALLED) return t.skip(NOT_INSTALLED);
  const home = newUser();
  const ws = fs.realpathSync(tempDir("mw-gemini-remote-ws-"));
  const args = ["init", "--harness", "gemini", "--remote", "--mesh", fx.m1, "--url", fx.url];
  const out = await run(BINARY, args, { cwd: ws, env: userEnv(home, { MESHWIRE_TOKEN: fx.token }), timeoutMs: 20000 });
  assert.equal(out.code, 0, JSON.stringify(out));
  const url = `${fx.url}/mesh/${fx.m1}/mcp?agent=gemini-agent`;
  assert.deepEqual(entry(home), { httpUrl: url, headers: { Authorization: "Bearer $MESHWIRE_TOKEN" } });
  assert.ok(!fs.readFileSync(path.join(home, ".gemini/settings.json"), "utf8").includes(fx.token), "no token written");
  trust(home, out.stdout + out.stderr);
  const list = async (env) => {
    const r = await run(GEMINI, ["mcp", "list"], { cwd: ws, env: userEnv(home, { GEMINI_CLI_NO_RELAUNCH: "true", ...env }) });
    return r.stdout + r.stderr;
  };
  const connected = await list({ MESHWIRE_TOKEN: fx.token });
  assert.ok(connected.includes(`✓ meshwire: ${url} (http) - Connected`), connected);
  const refused = await list({});
  assert.ok(refused.includes(`✗ meshwire: ${url} (http) - Disconnected`), refused);
});
