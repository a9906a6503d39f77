// The Copilot extension (meshwire/extension) against a relay serving HTTPS
// with a certificate from a CA made here: it trusts the relay through
// MESHWIRE_CA_FILE, and refuses it without. Node built-ins and the openssl
// command only.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
import { BINARY, ROOT, createToken, killAll, removeDirs, startRelay, tempDir } from "./support/relay.mjs";

const EXTENSION = path.join(ROOT, "packaging/npm/extension.mjs");
const T = { timeout: 30000 };
const fx = {};

function openssl(...args) {
  execFileSync("openssl", args, { stdio: "ignore" });
}

// A stand-in for joinSession from @github/copilot-sdk/extension.
function fakeCopilot() {
  const fake = { config: null };
  fake.session = { send: async () => "msg", log: async () => {} };
  fake.joinSession = async (config) => {
    fake.config = config;
    return fake.session;
  };
  fake.call = (name, args = {}) =>
    fake.config.tools.find((tool) => tool.name === name).handler(args, { sessionId: "s1", toolCallId: "c1", toolName: name });
  return fake;
}

async function joinWith(env) {
  const copilot = fakeCopilot();
  const { createCopilotExtension } = await import(pathToFileURL(EXTENSION).href);
  await createCopilotExtension({
    joinSession: copilot.joinSession,
    pollInterval: 60000,
    heartbeatInterval: 60000,
    env,
    homedir: tempDir("mw-tls-nohome-"),
    cwd: tempDir("mw-tls-ws-"),
  });
  return copilot;
}

before(async () => {
  fx.dir = tempDir("mw-tls-");
  const p = (name) => path.join(fx.dir, name);
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=meshwire-test-ca",
    "-keyout", p("ca-key.pem"), "-out", p("ca.pem"));
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", p("key.pem"), "-out", p("csr.pem"));
  execFileSync("sh", ["-c", `printf 'subjectAltName=IP:127.0.0.1\\n' > ${p("ext.cnf")}`]);
  openssl("x509", "-req", "-in", p("csr.pem"), "-CA", p("ca.pem"), "-CAkey", p("ca-key.pem"), "-CAcreateserial",
    "-days", "2", "-extfile", p("ext.cnf"), "-out", p("cert.pem"));
  fx.ca = p("ca.pem");
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=another-ca",
    "-keyout", p("other-ca-key.pem"), "-out", p("other-ca.pem"));
  fx.otherCa = p("other-ca.pem");
  fx.relay = await startRelay(fx.dir, { args: ["--tls-cert", p("cert.pem"), "--tls-key", p("key.pem")] });
  assert.match(fx.relay.url, /^https:/);
  fx.token = createToken(fx.dir, "alice");
  const cliEnv = { ...process.env, MESHWIRE_HOME: p("cli"), MESHWIRE_TOKEN: fx.token, MESHWIRE_URL: fx.relay.url,
    MESHWIRE_CA_FILE: fx.ca, NO_COLOR: "1" };
  fx.mesh = JSON.parse(execFileSync(BINARY, ["mesh", "create", "tls-fleet", "--json"], { env: cliEnv }).toString());
  fx.env = { MESHWIRE_HOME: p("ext"), MESHWIRE_TOKEN: fx.token, MESHWIRE_URL: fx.relay.url,
    MESHWIRE_MESH_ID: fx.mesh.mesh_id, MESHWIRE_AGENT_NAME: "tls-agent" };
});

after(async () => {
  await fx.relay?.stop();
  killAll();
  removeDirs();
});

test("with MESHWIRE_CA_FILE the extension's tools work over HTTPS", T, async () => {
  const copilot = await joinWith({ ...fx.env, MESHWIRE_CA_FILE: fx.ca });
  const status = await copilot.call("mesh_status");
  assert.equal(status.resultType, "success", status.textResultForLlm);
  assert.ok(status.textResultForLlm.includes(fx.relay.url), status.textResultForLlm);
  const sent = await copilot.call("mesh_send_message", { content: "over TLS" });
  assert.equal(sent.resultType, "success", sent.textResultForLlm);
  await copilot.config.hooks.onSessionEnd({ reason: "complete" });
});

test("without it the relay's certificate is refused, as a tool failure with a sentence", T, async () => {
  const copilot = await joinWith(fx.env);
  const status = await copilot.call("mesh_send_message", { content: "should not go" });
  assert.equal(status.resultType, "failure");
  // The sentence names the setting to change, not a relay to start.
  assert.match(status.textResultForLlm, /presented a certificate this machine does not trust .*set MESHWIRE_CA_FILE/);
  await copilot.config.hooks.onSessionEnd({ reason: "complete" });
});

test("a MESHWIRE_CA_FILE that cannot be read yet: a failure naming it, then the tools work once it is there", T, async () => {
  const later = path.join(tempDir("mw-tls-later-"), "ca.pem");
  const copilot = await joinWith({ ...fx.env, MESHWIRE_CA_FILE: later });
  const before = await copilot.call("mesh_status");
  assert.equal(before.resultType, "failure");
  assert.ok(before.textResultForLlm.includes(`MESHWIRE_CA_FILE=${later} cannot be read`), before.textResultForLlm);
  fs.copyFileSync(fx.ca, later);
  const after = await copilot.call("mesh_status");
  assert.equal(after.resultType, "success", after.textResultForLlm);
  await copilot.config.hooks.onSessionEnd({ reason: "complete" });
});

test("with MESHWIRE_CA_FILE naming another CA: the certificate is said untrusted, not the relay unreachable", T, async () => {
  const copilot = await joinWith({ ...fx.env, MESHWIRE_CA_FILE: fx.otherCa });
  const status = await copilot.call("mesh_send_message", { content: "should not go" });
  assert.equal(status.resultType, "failure");
  assert.match(status.textResultForLlm, /presented a certificate this machine does not trust/);
  assert.doesNotMatch(status.textResultForLlm, /Cannot reach/);
  await copilot.config.hooks.onSessionEnd({ reason: "complete" });
});
