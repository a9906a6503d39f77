// Shared by the real-client tests (tests/js/clients/*.test.mjs): where an
// installed client lives and whether it is there, the names of meshwire's
// five MCP tools, the fixture every file starts in before() and stops in
// after() (one relay, a token for "alice", its meshes), temp subdirectories,
// `meshwire init --harness ...` with the token in the environment or saved,
// and running a client in its own process group, so that the MCP servers and
// extensions it starts are killed with it. Node built-ins and
// ../support/relay.mjs only (the relay, REST calls and cleanup live there).

import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import {
  BINARY,
  ROOT,
  childEnv,
  createToken,
  killAll,
  removeDirs,
  rest,
  startRelay,
  tempDir,
  trackPid,
  untrackPid,
} from "../support/relay.mjs";

// ---------------------------------------------------------------------------
// Clients and tools

// Where `npm ci` in tests/ installs the command name: tests/node_modules/.bin/name.
export function clientBin(name) {
  return path.join(ROOT, "tests/node_modules/.bin", name);
}

// null when file exists, else reason (the message a test skips with).
export function missingUnless(file, reason) {
  return fs.existsSync(file) ? null : reason;
}

// The reason the client tests skip when npm package pkg (tests/package.json)
// is not installed: file is not there.
export function notInstalled(pkg, file, client) {
  return `${pkg} is not installed (no ${file}): run \`npm ci\` in tests/ to run the ${client} client tests`;
}

// The five tools `meshwire mcp` offers, by their MCP names.
export const MESHWIRE_TOOLS = Object.freeze([
  "meshwire_send_message",
  "meshwire_get_messages",
  "meshwire_list_agents",
  "meshwire_status",
  "meshwire_reply_to_message",
]);

// ---------------------------------------------------------------------------
// The fixture: one relay, one token, some meshes

// Starts a relay over a new temp dir (storagePrefix), creates a token for
// "alice" and one mesh per name; sets fx.storage, fx.relay, fx.url and
// fx.token as it goes (so stopRelayFixture cleans up after a failure too) and
// returns the mesh ids in the order of meshNames.
export async function startRelayFixture(fx, storagePrefix, meshNames) {
  fx.storage = tempDir(storagePrefix);
  fx.relay = await startRelay(fx.storage);
  fx.url = fx.relay.url;
  fx.token = createToken(fx.storage, "alice");
  const meshIds = [];
  for (const name of meshNames) meshIds.push((await rest(fx.url, fx.token, "POST", "/mesh", { name })).mesh_id);
  return meshIds;
}

// Stops the relay of startRelayFixture (if it started), then kills every
// tracked process and removes every temp dir.
export async function stopRelayFixture(fx) {
  await fx.relay?.stop();
  killAll();
  removeDirs();
}

// ---------------------------------------------------------------------------
// Dirs and `meshwire init`

// root/name, made (with its parents) if missing.
export function mkdirIn(root, name) {
  const full = path.join(root, name);
  fs.mkdirSync(full, { recursive: true });
  return full;
}

// `meshwire init --harness HARNESS --mesh MESH` in cwd against fx's relay
// (20 s at most), in childEnv(env): the token goes in as MESHWIRE_TOKEN and
// MESHWIRE_URL (tokenVia "env": nothing saved) or as --token/--url with
// flagEnv added (tokenVia "flag": saved in credentials.json). Its stdout.
export async function initHarness(harness, fx, { cwd, mesh, tokenVia, env = {}, flagEnv = {} }) {
  const viaFlag = tokenVia === "flag";
  const { stdout } = await promisify(execFile)(
    BINARY,
    ["init", "--harness", harness, "--mesh", mesh, ...(viaFlag ? ["--token", fx.token, "--url", fx.url] : [])],
    {
      cwd,
      timeout: 20000,
      env: childEnv({ ...env, ...(viaFlag ? flagEnv : { MESHWIRE_TOKEN: fx.token, MESHWIRE_URL: fx.url }) }),
    },
  );
  return stdout;
}

// ---------------------------------------------------------------------------
// Processes

// SIGKILLs a process group (-pid); nothing if it is gone.
export function killGroup(group) {
  try {
    process.kill(group, "SIGKILL");
  } catch {
    // all gone
  }
}

// Spawns command detached (a process group of its own, -child.pid, tracked
// for killAll until untrackPid(group)), stdin as given ("ignore" or "pipe"),
// and collects what it writes: { child, group, output: { stdout, stderr } }.
export function spawnGroup(command, args, { cwd, env, stdin = "ignore" }) {
  const child = spawn(command, args, { cwd, env, stdio: [stdin, "pipe", "pipe"], detached: true });
  const group = -child.pid;
  trackPid(group);
  const output = { stdout: "", stderr: "" };
  child.stdout.on("data", (chunk) => (output.stdout += chunk));
  child.stderr.on("data", (chunk) => (output.stderr += chunk));
  return { child, group, output };
}

// Runs a command to its end (killed, with its process group, after
// timeoutMs): { code, signal, stdout, stderr }; rejects if a signal ended it.
// Detached, so the MCP servers a client starts are killed with it.
export function run(command, args, { cwd, env, timeoutMs = 60000 }) {
  return new Promise((resolve, reject) => {
    const { child, group, output } = spawnGroup(command, args, { cwd, env });
    const timer = setTimeout(() => killGroup(group), timeoutMs);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      killGroup(group);
      untrackPid(group);
      const out = { code, signal, stdout: output.stdout, stderr: output.stderr };
      if (signal) reject(new Error(`${path.basename(command)} ${args.join(" ")} ended by ${signal}: ${JSON.stringify(out)}`));
      else resolve(out);
    });
  });
}
