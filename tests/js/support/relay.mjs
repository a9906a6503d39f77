// Shared by the Node tests (tests/js/*.test.mjs) and bench/mcp_startup.mjs: a
// real `meshwire server` on loopback over a temp SQLite store, tokens, REST
// calls, waiting, child environments, and cleanup of every process and temp
// dir started through here. Node built-ins only.
//
// State is per process (node --test runs each test file in its own process).

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

// The repository root.
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
// The meshwire binary: MESHWIRE_BINARY, else build/cli/meshwire under ROOT.
export const BINARY = process.env.MESHWIRE_BINARY || path.join(ROOT, "build/cli/meshwire");

// ---------------------------------------------------------------------------
// Cleanup: every tracked process is SIGKILLed and every temp dir removed when
// the process exits (and earlier through killAll / removeDirs).

const dirs = [];
const pids = new Set();

// Registers a pid for killAll (and the exit hook); untrackPid forgets it.
export function trackPid(pid) {
  if (pid) pids.add(pid);
}

// Forgets a pid registered with trackPid (or track).
export function untrackPid(pid) {
  pids.delete(pid);
}

// Tracks a child process until it exits (see trackPid); returns the child.
export function track(child) {
  trackPid(child.pid);
  child.once("exit", () => untrackPid(child.pid));
  return child;
}

// SIGKILLs every tracked process still running and forgets them all.
export function killAll() {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  pids.clear();
}

// Removes every dir made by tempDir so far, newest first.
export function removeDirs() {
  while (dirs.length) fs.rmSync(dirs.pop(), { recursive: true, force: true });
}

process.on("exit", () => {
  killAll();
  removeDirs();
});

// On SIGINT/SIGTERM: killAll, removeDirs, then exit with exitCode.
export function exitOnSignals(exitCode = 1) {
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => {
      killAll();
      removeDirs();
      process.exit(exitCode);
    });
  }
}

// A new dir under the OS temp dir named prefix + random, removed by removeDirs.
export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

// ---------------------------------------------------------------------------
// The relay

// A tracked `meshwire server` on 127.0.0.1:port (0: any) over storageDir (env: default inherited; args: more flags, e.g. --tls-cert): { url, child, stop(signal) } once listening, else rejects (10 s at most).
export async function startRelay(storageDir, { port = 0, env, args = [] } = {}) {
  const child = track(
    spawn(BINARY, ["server", "--listen", `127.0.0.1:${port}`, "--storage", `sqlite:${storageDir}/relay.db`, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
      ...(env ? { env } : {}),
    }),
  );
  let seen = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start within 10 s: ${seen}`)), 10000);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${BINARY} (${err.message}); build it or set MESHWIRE_BINARY`));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code} before listening: ${seen}`));
    });
    child.stderr.on("data", (chunk) => {
      seen += chunk;
      const match = /listening on (https?:\/\/127\.0\.0\.1:\d+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  child.stderr.resume();
  return {
    url,
    child,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// A new API token for user from `meshwire admin token create` over storageDir (env: default inherited; 10 s at most).
export function createToken(storageDir, user, { env } = {}) {
  return execFileSync(BINARY, ["admin", "token", "create", "--user", user, "--storage", `sqlite:${storageDir}/relay.db`], {
    stdio: ["ignore", "pipe", "ignore"],
    ...(env ? { env } : {}),
    timeout: 10000,
  })
    .toString()
    .trim();
}

// ---------------------------------------------------------------------------
// Calls and waiting

// The JSON answer (null if empty) to method url+pathname with a Bearer token and optional JSON body; throws on non-2xx or after 10 s.
export async function rest(url, token, method, pathname, body) {
  const response = await fetch(url + pathname, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10000),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(`${method} ${pathname}: HTTP ${response.status} ${text}`);
  return data;
}

// A fetch whose sends and replies (POST .../messages, .../reply) reach the
// relay, which stores them, and whose answers are then lost: the next `lose`
// ones as a broken connection (undici's "fetch failed"), the next `unsure`
// ones replaced by a 503 (the relay's answer when the database lost a
// COMMIT's outcome). Set lossy.lose and lossy.unsure; pass lossy.fetch.
export function lossyWrites() {
  const lossy = { lose: 0, unsure: 0 };
  lossy.fetch = async (url, init = {}) => {
    const response = await fetch(url, init);
    const write = init.method === "POST" && /\/messages(\/[^/]+\/reply)?$/.test(new URL(String(url)).pathname);
    if (!write || (lossy.lose === 0 && lossy.unsure === 0)) return response;
    await response.text();
    if (lossy.unsure > 0) {
      lossy.unsure -= 1;
      const error = { code: "unavailable", message: "The database did not say whether the write committed; retry with the same idempotency_key." };
      return new Response(JSON.stringify({ error }), { status: 503, headers: { "content-type": "application/json", "retry-after": "1" } });
    }
    lossy.lose -= 1;
    throw new TypeError("fetch failed");
  };
  return lossy;
}

// The messages of a mesh's history with `content`, sent from now on: call
// storedSince() once, then the function it returns with each content.
export async function storedSince(url, token, meshPath) {
  const since = (await rest(url, token, "GET", meshPath)).newest_seq;
  return async (content) =>
    (await rest(url, token, "GET", `${meshPath}/messages?after=${since}&limit=1000`)).messages.filter((m) => m.content === content);
}

// The first truthy value of check(), polled every 50 ms; throws after timeoutMs.
export async function until(what, check, timeoutMs = 8000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The official MCP SDK's modules at these subpaths of @modelcontextprotocol/sdk
// (e.g. "client/index.js"), merged into one object; an error saying to run
// `npm ci` in tests/ when the SDK is not installed.
export async function importSdk(...subpaths) {
  try {
    const modules = await Promise.all(subpaths.map((p) => import(`@modelcontextprotocol/sdk/${p}`)));
    return Object.assign({}, ...modules);
  } catch (err) {
    throw new Error(`@modelcontextprotocol/sdk is not installed: run \`npm ci\` in tests/ first (${err.message})`);
  }
}

// Resolves after ms milliseconds.
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// This process's environment without MESHWIRE_* or NODE_TEST* variables, plus extra.
export function childEnv(extra = {}) {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("MESHWIRE_") || key.startsWith("NODE_TEST")) delete env[key];
  return { ...env, ...extra };
}

// bob as a teammate on fx's relay: made a member of fx.mesh, with a
// ~/.meshwire (returned) holding his credentials and the config.json that
// `meshwire init` leaves in a clone whose .mesh.json names alice's `shared`
// agent: his own name `own` for it.
export async function teammateHome(fx, prefix, shared, own) {
  await rest(fx.url, fx.token, "POST", `/mesh/${fx.mesh.mesh_id}/members`, { user: "bob" });
  const home = tempDir(prefix);
  const token = createToken(fx.storage, "bob");
  fs.writeFileSync(path.join(home, "credentials.json"), JSON.stringify({ token, url: fx.url, user: "bob" }));
  fs.writeFileSync(path.join(home, "config.json"), JSON.stringify({ agent_names: { [fx.mesh.mesh_id]: { [shared]: own } } }));
  return home;
}
