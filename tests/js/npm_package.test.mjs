// The npm package as a user gets it: `npm pack` of the staged package
// (build/npm), `npm install -g` of the tarball into a temp prefix, then the
// `meshwire` command through the bin launcher (packaging/npm/bin/meshwire.js)
// and through `npx`: the version, exit codes, signals (no orphan native
// process), `npx meshwire mcp` under the official MCP SDK client, the
// MCP entries `init` writes (npx), `import "meshwire/extension"` from a
// project that installed the tarball, the executable bit restored, and the
// one-sentence error where there is no binary for the platform.
//
// Offline and loopback only: npm runs with --offline, a temp cache and an
// empty npmrc; the relay listens on 127.0.0.1. Every process it starts is
// killed and every temp dir removed, even on failure.
//
// Run from the repository root (after the build staged build/npm):
//   MESHWIRE_BINARY=$PWD/build/cli/meshwire node --test tests/js/npm_package.test.mjs
// The staged package is MESHWIRE_NPM_STAGE, else <dir of MESHWIRE_BINARY>/../npm.

import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
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
  startRelay,
  tempDir,
  track,
  trackPid,
  until,
  untrackPid,
} from "./support/relay.mjs";

const STAGE = process.env.MESHWIRE_NPM_STAGE || path.resolve(path.dirname(BINARY), "../npm");
const T = { timeout: 30000 };
const MCP_TOOLS = ["meshwire_send_message", "meshwire_get_messages", "meshwire_list_agents", "meshwire_status", "meshwire_reply_to_message"];
const EXTENSION_TOOLS = ["mesh_send_message", "mesh_get_messages", "mesh_list_agents", "mesh_status", "mesh_reply_to_message"];

const sdk = await importSdk("client/index.js", "client/stdio.js");

exitOnSignals(1);

// ---------------------------------------------------------------------------
// Helpers (the relay, tokens, REST, temp dirs and cleanup: ./support/relay.mjs)

const fx = {};

// The environment of npm and of the installed command: nothing of the user's
// MESHWIRE_* or npm settings; npm offline with a temp cache and empty npmrc.
function npmEnv(extra = {}) {
  const env = childEnv();
  for (const key of Object.keys(env)) if (key.toLowerCase().startsWith("npm_config_")) delete env[key];
  return {
    ...env,
    HOME: fx.home,
    npm_config_userconfig: fx.npmrc,
    npm_config_globalconfig: fx.globalNpmrc,
    npm_config_cache: fx.npmCache,
    npm_config_offline: "true",
    npm_config_audit: "false",
    npm_config_fund: "false",
    npm_config_update_notifier: "false",
    npm_config_loglevel: "warn",
    ...extra,
  };
}

// The environment under which the installed `meshwire` reaches the test relay.
function relayUserEnv(extra = {}) {
  return npmEnv({
    PATH: `${path.join(fx.prefix, "bin")}${path.delimiter}${process.env.PATH}`,
    npm_config_prefix: fx.prefix,
    MESHWIRE_HOME: fx.meshwireHome,
    ...extra,
  });
}

// Runs command to completion (killed after timeoutMs): { code, signal, stdout, stderr }.
function run(command, args, { cwd = fx.work, env = npmEnv(), input, timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(command, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] }));
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(input ?? "");
  });
}

// Like run, but throws with npm's output unless it exits 0; resolves to stdout.
async function npm(args, options) {
  const result = await run("npm", args, { timeoutMs: 120000, ...options });
  if (result.code !== 0) throw new Error(`npm ${args.join(" ")} exited ${result.code ?? result.signal}: ${result.stderr}`);
  return result.stdout;
}

// The pids whose parent is pid (from /proc/*/stat).
function childrenOf(pid) {
  const found = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces and parentheses
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

// The executable behind a live pid, or null once it is gone.
function exeOf(pid) {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

// `meshwire listen` started through the installed launcher, once it listens:
// { launcher (the node process), nativePid, exited (promise of {code, signal}) }.
async function startListen(name) {
  const launcher = track(
    spawn(path.join(fx.prefix, "bin/meshwire"), ["listen", "--name", name], {
      cwd: fx.work,
      env: relayUserEnv({ MESHWIRE_TOKEN: fx.token, MESHWIRE_URL: fx.url, MESHWIRE_MESH_ID: fx.meshId }),
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  const exited = new Promise((resolve) => launcher.once("exit", (code, signal) => resolve({ code, signal })));
  let output = "";
  launcher.stdout.on("data", (chunk) => (output += chunk));
  launcher.stderr.on("data", (chunk) => (output += chunk));
  await until(`meshwire listen to start listening (${output})`, () => /listening on mesh/.test(output), 10000);
  const nativePid = await until("the launcher's native child", () =>
    childrenOf(launcher.pid).find((pid) => exeOf(pid)?.endsWith("native/linux-x64/meshwire")),
  );
  trackPid(nativePid);
  return { launcher, nativePid, exited, output: () => output };
}

// A stand-in for npm-installed files copied elsewhere: the installed package
// folder copied into a new temp dir (filter(path) picks what is copied).
function copyInstalledPackage(prefix, filter = () => true) {
  const dir = path.join(tempDir(prefix), "meshwire");
  fs.cpSync(fx.installed, dir, { recursive: true, filter: (source) => filter(path.relative(fx.installed, source)) });
  return dir;
}

// ---------------------------------------------------------------------------
// Fixture: the tarball, the global install, a relay with a mesh

before(async () => {
  if (!fs.existsSync(path.join(STAGE, "native/linux-x64/meshwire"))) {
    throw new Error(`no staged npm package at ${STAGE}: build first (target npm_stage) or set MESHWIRE_NPM_STAGE`);
  }
  fx.pkg = JSON.parse(fs.readFileSync(path.join(STAGE, "package.json"), "utf8"));
  const root = tempDir("mw-npm-");
  for (const dir of ["packed", "prefix", "cache", "home", "work", "project"]) fs.mkdirSync(path.join(root, dir));
  fx.prefix = path.join(root, "prefix");
  fx.npmCache = path.join(root, "cache");
  fx.home = path.join(root, "home");
  fx.meshwireHome = path.join(fx.home, ".meshwire");
  fx.work = path.join(root, "work");
  fx.project = path.join(root, "project");
  fx.npmrc = path.join(root, "npmrc");
  fx.globalNpmrc = path.join(root, "global-npmrc");
  fs.writeFileSync(fx.npmrc, "");
  fs.writeFileSync(fx.globalNpmrc, "");

  // npm pack of the staged folder, then npm install -g of the tarball.
  fx.packed = JSON.parse(await npm(["pack", "--json", "--pack-destination", path.join(root, "packed")], { cwd: STAGE }))[0];
  fx.tarball = path.join(root, "packed", fx.packed.filename);
  await npm(["install", "-g", fx.tarball, "--prefix", fx.prefix, "--no-audit", "--no-fund"]);
  fx.installed = path.join(fx.prefix, "lib/node_modules/meshwire");

  // The relay, a token in ~/.meshwire/credentials.json, a mesh.
  fx.storage = tempDir("mw-npm-relay-");
  const relayEnv = childEnv({ MESHWIRE_HOME: path.join(fx.storage, "home") });
  fx.relay = await startRelay(fx.storage, { env: relayEnv });
  fx.url = fx.relay.url;
  fx.token = createToken(fx.storage, "alice", { env: relayEnv });
  fs.mkdirSync(fx.meshwireHome, { recursive: true });
  fs.writeFileSync(path.join(fx.meshwireHome, "credentials.json"), JSON.stringify({ token: fx.token, url: fx.url, user: "alice" }), {
    mode: 0o600,
  });
  fx.meshId = (await rest(fx.url, fx.token, "POST", "/mesh", { name: "npm-fleet" })).mesh_id;
  fx.m = `/mesh/${fx.meshId}`;
}, { timeout: 240000 });

after(async () => {
  await fx.relay?.stop();
  killAll();
  removeDirs();
});

// ---------------------------------------------------------------------------
// The tarball and the installed command

test("npm pack: the tarball holds the launcher, the native binary (executable), the extension, package.json, README and LICENSE", () => {
  const files = new Map(fx.packed.files.map((file) => [file.path, file]));
  for (const file of ["bin/meshwire.js", "native/linux-x64/meshwire", "extension.mjs", "extension.d.ts", "package.json", "README.md", "LICENSE"]) {
    assert.ok(files.has(file), `${file} in ${[...files.keys()].join(", ")}`);
  }
  assert.equal(files.get("native/linux-x64/meshwire").mode & 0o111, 0o111, "the native binary is packed executable");
  const listing = execFileSync("tar", ["-tzf", fx.tarball], { timeout: 30000 }).toString();
  assert.match(listing, /^package\/native\/linux-x64\/meshwire$/m);
  assert.equal(fx.packed.name, "meshwire");
  // The bundled libraries' licenses: one per Debian package they came from.
  const licenses = [...files.keys()].filter((f) => f.startsWith("native/linux-x64/lib/licenses/"));
  for (const owner of ["libssl3", "libpq5", "libsqlite3-0", "libstdc++6"]) {
    assert.ok(licenses.includes(`native/linux-x64/lib/licenses/${owner}`), `${owner}'s license in ${licenses.join(", ")}`);
  }
  assert.match(fs.readFileSync(path.join(fx.installed, "LICENSE"), "utf8"), /MIT License/);
});

test("installed: the native binary loads its libraries from the package, only glibc's from the system", () => {
  // So a machine with Node and glibc needs nothing else (no libpq5, libspdlog, ... from apt).
  const native = path.join(fx.installed, "native/linux-x64");
  const glibc = /^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil|libanl|libnss_)[.-]/;
  const lines = execFileSync("ldd", [path.join(native, "meshwire")], { timeout: 30000 }).toString().split("\n");
  const resolved = lines.map((line) => line.trim().match(/^(\S+) => (\S+)/)).filter(Boolean);
  assert.ok(resolved.length > 10, lines.join("\n"));
  for (const [, name, where] of resolved) {
    assert.notEqual(where, "not", `${name} is not found`);
    if (glibc.test(name)) {
      assert.ok(!where.startsWith(native), `${name} (glibc's) comes from the system`);
    } else {
      assert.equal(where, path.join(native, "lib", name), `${name} is loaded from the package`);
    }
  }
});

test("installed: the native binary runs where the system has glibc and no other library", (t) => {
  // A mount namespace where the library folder holds glibc alone (needs root and unshare).
  if (process.getuid?.() !== 0) return t.skip("needs root (a mount namespace)");
  try {
    execFileSync("unshare", ["--version"], { timeout: 10000, stdio: "ignore" });
  } catch {
    return t.skip("needs unshare (util-linux)");
  }
  const libs = "/usr/lib/x86_64-linux-gnu";
  const only = tempDir("mw-glibc-only-");
  for (const lib of ["libc.so.6", "libm.so.6", "libresolv.so.2", "ld-linux-x86-64.so.2"]) {
    fs.copyFileSync(fs.realpathSync(path.join(libs, lib)), path.join(only, lib));
  }
  const run = (binary) =>
    spawnSync("unshare", ["-m", "sh", "-c", `mount --bind "${only}" ${libs} && exec "${binary}" --version`], {
      timeout: 30000,
      encoding: "utf8",
    });
  const packaged = run(path.join(fx.installed, "native/linux-x64/meshwire"));
  assert.equal(packaged.status, 0, packaged.stderr);
  assert.equal(packaged.stdout.trim(), fx.pkg.version);
  // The check can fail: the build's own binary, without the bundle, cannot start there.
  const plain = run(BINARY);
  assert.equal(plain.status, 127, plain.stdout + plain.stderr);
  assert.match(plain.stderr, /error while loading shared libraries/);
});

test("installed globally: meshwire --version is the package version and the binary's", T, async () => {
  const expected = execFileSync(BINARY, ["--version"], { timeout: 10000 }).toString().trim();
  assert.equal(fx.pkg.version, expected, "package.json version = meshwire --version");
  const result = await run(path.join(fx.prefix, "bin/meshwire"), ["--version"]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim(), expected);
  assert.equal(result.stderr, "");
});

test("npx meshwire --version runs the installed package, without the network", T, async () => {
  const result = await run("npx", ["--no-install", "meshwire", "--version"], { env: relayUserEnv() });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim(), fx.pkg.version);
});

test("exit codes pass through: usage error 2, wait timeout 4", T, async () => {
  const bin = path.join(fx.prefix, "bin/meshwire");
  const usage = await run(bin, ["send"], { env: relayUserEnv() });
  assert.equal(usage.code, 2, usage.stderr);
  assert.equal(usage.stdout, "");

  const env = relayUserEnv({ MESHWIRE_TOKEN: fx.token, MESHWIRE_URL: fx.url, MESHWIRE_MESH_ID: fx.meshId });
  const started = Date.now();
  const timedOut = await run(bin, ["wait", "--timeout", "1", "--name", "npm-waiter"], { env });
  assert.equal(timedOut.code, 4, timedOut.stderr);
  assert.equal(timedOut.signal, null);
  assert.ok(Date.now() - started < 10000);
});

test("SIGTERM to the launcher stops meshwire listen cleanly: exit 0, no native process left", T, async () => {
  const listen = await startListen("npm-listener");
  listen.launcher.kill("SIGTERM");
  const { code, signal } = await listen.exited;
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, listen.output());
  await until("the native meshwire to be gone", () => exeOf(listen.nativePid) === null, 3000);
  untrackPid(listen.nativePid);
});

test("Ctrl+C in a terminal stops the relay once, gracefully, though the launcher forwards it too", T, async () => {
  // `script` runs the launcher on a new terminal; ETX on that terminal is
  // Ctrl+C: SIGINT to its foreground group, the launcher and the relay. The
  // launcher forwards it: the relay must not count it as a second Ctrl+C.
  const bin = path.join(fx.prefix, "bin/meshwire");
  const term = track(
    spawn("script", ["-qfec", `exec ${bin} server --listen 127.0.0.1:0`, "/dev/null"], {
      env: relayUserEnv({ MESHWIRE_HOME: tempDir("mw-npm-ctrl-c-"), SHELL: "/bin/sh" }),
      stdio: ["pipe", "pipe", "pipe"],
    }),
  );
  let output = "";
  term.stdout.on("data", (chunk) => (output += chunk));
  term.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => term.once("exit", (code, signal) => resolve({ code, signal })));
  await until(`the relay to listen (${output})`, () => /listening on http/.test(output), 15000);
  term.stdin.write("\x03");
  assert.deepEqual(await exited, { code: 0, signal: null }, output);
  assert.match(output, /stopped cleanly/);
  assert.doesNotMatch(output, /received again/, output);
});

test("a child killed by a signal: the launcher dies of the same signal (SIGHUP forwarded, SIGKILL re-raised)", T, async () => {
  // SIGHUP is forwarded; listen does not handle it, so the binary dies of it, and so does the launcher.
  const hup = await startListen("npm-hup");
  hup.launcher.kill("SIGHUP");
  assert.deepEqual(await hup.exited, { code: null, signal: "SIGHUP" });
  await until("the native meshwire to be gone", () => exeOf(hup.nativePid) === null, 3000);
  untrackPid(hup.nativePid);

  // The binary alone is killed: the launcher re-raises SIGKILL on itself.
  const kill = await startListen("npm-kill");
  process.kill(kill.nativePid, "SIGKILL");
  assert.deepEqual(await kill.exited, { code: null, signal: "SIGKILL" });
  untrackPid(kill.nativePid);
});

// ---------------------------------------------------------------------------
// What MCP clients and Copilot extensions use

test("npx meshwire mcp --mesh ID under the official MCP SDK client: five tools, meshwire_status", T, async () => {
  const transport = new sdk.StdioClientTransport({
    command: "npx",
    args: ["--no-install", "meshwire", "mcp", "--mesh", fx.meshId, "--name", "npm-mcp"],
    env: relayUserEnv(),
    cwd: fx.work,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr.on("data", (chunk) => (stderr += chunk));
  const client = new sdk.Client({ name: "meshwire-npm-test", version: "1.0.0" });
  const errors = [];
  client.onerror = (err) => errors.push(err);
  await client.connect(transport, { timeout: 15000 });
  trackPid(transport.pid);
  try {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((tool) => tool.name).sort(), [...MCP_TOOLS].sort());
    const status = await client.callTool({ name: "meshwire_status", arguments: {} });
    assert.equal(status.isError, false, JSON.stringify(status));
    assert.equal(status.structuredContent.mesh.mesh_id, fx.meshId);
    assert.equal(status.structuredContent.agent.name, "npm-mcp");
    assert.equal(status.structuredContent.service.status, "online");
    assert.deepEqual(errors.map(String), [], `nothing but JSON-RPC on stdout (stderr: ${stderr})`);
  } finally {
    await client.close();
    untrackPid(transport.pid);
  }
});

test("init through the launcher writes MCP entries that start meshwire with npx", T, async () => {
  const workspace = tempDir("mw-npm-ws-");
  const result = await run(path.join(fx.prefix, "bin/meshwire"), ["init", "--harness", "claude-code", "--mesh", fx.meshId, "--name", "npm-init"], {
    cwd: workspace,
    env: relayUserEnv(),
  });
  assert.equal(result.code, 0, result.stderr);
  const entry = JSON.parse(fs.readFileSync(path.join(workspace, ".mcp.json"), "utf8")).mcpServers.meshwire;
  assert.equal(entry.command, "npx");
  assert.deepEqual(entry.args, ["meshwire", "mcp", "--mesh", fx.meshId]);
});

test('import { createCopilotExtension } from "meshwire/extension" in a project: five tools work, heartbeats reach the relay', T, async () => {
  fs.writeFileSync(path.join(fx.project, "package.json"), JSON.stringify({ name: "npm-project", private: true, type: "module" }));
  await npm(["install", fx.tarball, "--no-audit", "--no-fund"], { cwd: fx.project });
  fs.writeFileSync(
    path.join(fx.project, ".mesh.json"),
    JSON.stringify({ mesh_id: fx.meshId, workspace_name: "npm-project", agent_name: "npm-copilot", harness: "copilot" }),
  );
  // A message to reply to, from another agent to this one (same user: same agent id).
  const me = await rest(fx.url, fx.token, "POST", `${fx.m}/agents`, { name: "npm-copilot", harness: "copilot" });
  const peer = await rest(fx.url, fx.token, "POST", `${fx.m}/agents`, { name: "npm-peer" });
  const original = await rest(fx.url, fx.token, "POST", `${fx.m}/messages`, { from: peer.agent_id, to: me.agent_id, content: "ping" });

  // Prints one JSON line with every tool's result, then stays joined (heartbeats every 100 ms) until stdin closes.
  fs.writeFileSync(
    path.join(fx.project, "extension-check.mjs"),
    `import { createCopilotExtension } from "meshwire/extension";
let config;
const session = { send: async () => "ok", log: async () => {} };
await createCopilotExtension({ joinSession: async (c) => ((config = c), session), heartbeatInterval: 100, pollInterval: 50 });
const call = (name, args = {}) => config.tools.find((tool) => tool.name === name).handler(args, {});
const results = {
  names: config.tools.map((tool) => tool.name),
  mesh_send_message: await call("mesh_send_message", { content: "hello from npm", to: "npm-peer" }),
  mesh_get_messages: await call("mesh_get_messages", { wait_seconds: 0 }),
  mesh_list_agents: await call("mesh_list_agents"),
  mesh_status: await call("mesh_status"),
  mesh_reply_to_message: await call("mesh_reply_to_message", { message_id: process.env.REPLY_TO, content: "pong" }),
};
console.error(JSON.stringify(results));
process.stdin.resume();
process.stdin.on("end", async () => {
  await config.hooks.onSessionEnd({ reason: "complete" });
});
`,
  );
  const child = track(
    spawn(process.execPath, ["extension-check.mjs"], {
      cwd: fx.project,
      env: relayUserEnv({ REPLY_TO: original.id }),
      stdio: ["pipe", "pipe", "pipe"],
    }),
  );
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  try {
    const results = JSON.parse(await until(`the extension's tool results (${stderr})`, () => (stderr.includes("\n") ? stderr.split("\n")[0] : null), 15000));
    assert.deepEqual(results.names, EXTENSION_TOOLS);
    for (const name of EXTENSION_TOOLS) {
      assert.equal(results[name].resultType, "success", `${name}: ${results[name].textResultForLlm}`);
    }
    assert.match(results.mesh_status.textResultForLlm, new RegExp(fx.meshId));

    // Heartbeats: the agent is active, and its last_seen keeps moving.
    const seen = async () => (await rest(fx.url, fx.token, "GET", `${fx.m}/agents`)).agents.find((agent) => agent.name === "npm-copilot");
    const first = await seen();
    assert.equal(first.status, "active");
    await until("a later heartbeat", async () => (await seen()).last_seen > first.last_seen, 5000);
    const delivered = await rest(fx.url, fx.token, "GET", `${fx.m}/messages?agent_id=${peer.agent_id}&after=0`);
    assert.ok(delivered.messages.some((message) => message.content === "pong" && message.metadata?.reply_to === original.id));
  } finally {
    child.stdin.end();
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    const { code } = await exited;
    clearTimeout(timer);
    assert.equal(code, 0, `the extension lets its process exit after onSessionEnd (${stderr})`);
    assert.equal(stdout, "", "nothing on stdout");
  }
});

// ---------------------------------------------------------------------------
// The launcher's edges

test("a native binary that lost its executable bit is made executable once and runs", T, async () => {
  const dir = copyInstalledPackage("mw-npm-mode-");
  const native = path.join(dir, "native/linux-x64/meshwire");
  fs.chmodSync(native, 0o644);
  const result = await run(process.execPath, [path.join(dir, "bin/meshwire.js"), "--version"]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim(), fx.pkg.version);
  assert.equal(fs.statSync(native).mode & 0o111, 0o111);
});

test("no binary for the platform: exit 1 and one sentence naming the platform, what was looked for, and building from source", T, async () => {
  const dir = copyInstalledPackage("mw-npm-nobin-", (relative) => !relative.startsWith("native"));
  assert.equal(fs.existsSync(path.join(dir, "native")), false);
  const result = await run(process.execPath, [path.join(dir, "bin/meshwire.js"), "--version"]);
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
  const message = result.stderr.trimEnd();
  assert.equal(message.split("\n").length, 1, `one line: ${message}`);
  assert.match(message, /^meshwire: .+\.$/);
  for (const needle of [
    `${process.platform} ${process.arch}`,
    `@meshwire/cli-${process.platform}-${process.arch}`,
    path.join(dir, "native", `${process.platform}-${process.arch}`, "meshwire"),
    "build meshwire from source",
    "README",
  ]) {
    assert.ok(message.includes(needle), `${needle} in: ${message}`);
  }
});
