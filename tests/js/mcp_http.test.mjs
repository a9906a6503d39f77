// The relay's own MCP endpoint (POST/GET/DELETE /mesh/{mesh}/mcp, Streamable
// HTTP) through the official TypeScript SDK client and the MCP Inspector's
// CLI, against a real relay on loopback: the five tools, a REST agent on the
// other side, sessions, cancellation, and every refusal (token, mesh,
// Origin, Host) with nothing sent. Needs `npm ci` in tests/. Run from the
// repository root:
//   MESHWIRE_BINARY=$PWD/build/cli/meshwire node --test tests/js/mcp_http.test.mjs
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import {
  childEnv,
  createToken,
  exitOnSignals,
  importSdk,
  killAll,
  removeDirs,
  rest,
  sleep,
  ROOT,
  startRelay,
  tempDir,
  until,
} from "./support/relay.mjs";
import { MESHWIRE_TOOLS } from "./clients/client_support.mjs";

const INSPECTOR = path.join(ROOT, "tests/node_modules/.bin/mcp-inspector");
const T = { timeout: 20000 };
const NAMES = [...MESHWIRE_TOOLS].sort();

const sdk = await importSdk("client/index.js", "client/streamableHttp.js");

exitOnSignals();
const fx = {};
const relayEnv = (storageDir) => childEnv({ MESHWIRE_HOME: path.join(storageDir, "home") });

// An SDK client connected to the relay's endpoint as agent `name`. Every
// notification it gets is in `notifications`; `streamOpen` resolves once the
// SDK's GET stream has its first bytes (from then on, pushes reach it).
async function connect({ name = "remote-agent", token = fx.token, mesh = fx.meshId, headers = {}, capabilities = {} } = {}) {
  const url = new URL(`${fx.url}/mesh/${mesh}/mcp?agent=${encodeURIComponent(name)}`);
  let opened;
  const streamOpen = new Promise((resolve) => (opened = resolve));
  // fetch, watching the GET stream: its first chunk is the relay's comment.
  const watching = async (input, init) => {
    const response = await fetch(input, init);
    if ((init?.method ?? "GET") !== "GET" || !response.ok || !response.body) return response;
    const [mine, theirs] = response.body.tee();
    mine.getReader().read().then(() => opened());
    return new Response(theirs, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
  const transport = new sdk.StreamableHTTPClientTransport(url, {
    requestInit: { headers: { Authorization: `Bearer ${token}`, ...headers } },
    fetch: watching,
  });
  const client = new sdk.Client({ name: "meshwire-http-test", version: "1.0.0" }, { capabilities });
  const errors = [];
  const notifications = [];
  client.onerror = (err) => errors.push(err);
  client.fallbackNotificationHandler = async (n) => {
    notifications.push(n);
  };
  await client.connect(transport, { timeout: 10000 });
  await client.listTools(); // caches each tool's outputSchema validator: callTool checks outputs
  return {
    client,
    transport,
    errors,
    notifications,
    streamOpen,
    call: (tool, args = {}, options) => client.callTool({ name: tool, arguments: args }, undefined, options),
  };
}

const textOf = (result) => result.content.filter((b) => b.type === "text").map((b) => b.text).join("\n");
const m = () => `/mesh/${fx.meshId}`;
const agentsByName = async () =>
  Object.fromEntries((await rest(fx.url, fx.token, "GET", `${m()}/agents`)).agents.map((a) => [a.name, a]));
const historyCount = async () => (await rest(fx.url, fx.token, "GET", `${m()}/messages?limit=1000`)).messages.length;

// A raw POST to the endpoint: { status, headers, body }.
async function post(body, headers = {}, mesh = fx.meshId, query = "") {
  const response = await fetch(`${fx.url}/mesh/${mesh}/mcp${query}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

// As post, through node:http, which sends a Host header as given (fetch does not).
function postWithHost(body, host, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${fx.url}/mesh/${fx.meshId}/mcp`,
      {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", host, ...headers },
        timeout: 10000,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode }));
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

const initialize = (id = 1) => ({
  jsonrpc: "2.0",
  id,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
});

before(async () => {
  fx.storage = tempDir("mw-http-relay-");
  fx.relay = await startRelay(fx.storage, { env: relayEnv(fx.storage) });
  fx.url = fx.relay.url;
  fx.token = createToken(fx.storage, "alice", { env: relayEnv(fx.storage) });
  fx.meshId = (await rest(fx.url, fx.token, "POST", "/mesh", { name: "http-mesh" })).mesh_id;
  fx.rest = await rest(fx.url, fx.token, "POST", `${m()}/agents`, { name: "rest-agent", harness: "rest" });
  fx.mcp = await connect();
});

after(async () => {
  await fx.mcp?.client.close().catch(() => {});
  await fx.relay?.stop();
  killAll();
  removeDirs();
});

test("tools/list over HTTP: the five tools of `meshwire mcp`, a session id, the initialize instructions", T, async () => {
  const { tools } = await fx.mcp.client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), NAMES);
  assert.match(fx.mcp.transport.sessionId, /^[0-9A-Za-z]{32}$/);
  assert.match(fx.mcp.client.getInstructions(), /You are the agent "remote-agent"/);
  assert.equal(fx.mcp.client.getServerVersion().name, "meshwire");
});

test("meshwire_status and meshwire_list_agents: this agent, registered by ?agent=NAME", T, async () => {
  const status = await fx.mcp.call("meshwire_status");
  assert.equal(status.isError, false, textOf(status));
  assert.equal(status.structuredContent.mesh.mesh_id, fx.meshId);
  assert.equal(status.structuredContent.agent.name, "remote-agent");
  assert.equal(status.structuredContent.service.url, fx.url);
  const list = await fx.mcp.call("meshwire_list_agents");
  assert.equal(list.isError, false);
  const names = list.structuredContent.agents.map((a) => a.name).sort();
  assert.deepEqual(names, ["remote-agent", "rest-agent"]);
  assert.match(textOf(list), /remote-agent .*\(you\)/);
});

test("send and reply reach the REST agent; a REST send is returned by get_messages, framed", T, async () => {
  const sent = await fx.mcp.call("meshwire_send_message", { to: "rest-agent", content: "hello over http" });
  assert.equal(sent.isError, false, textOf(sent));
  const rid = fx.rest.agent_id;
  const inbox = await rest(fx.url, fx.token, "GET", `${m()}/messages?agent_id=${rid}`);
  const got = inbox.messages.find((x) => x.id === sent.structuredContent.id);
  assert.equal(got.content, "hello over http");
  assert.equal(got.from_name, "remote-agent");

  const incoming = await rest(fx.url, fx.token, "POST", `${m()}/messages`, {
    from: rid,
    to: "remote-agent",
    content: "from rest",
  });
  const result = await fx.mcp.call("meshwire_get_messages", { wait_seconds: 5 });
  assert.equal(result.isError, false, textOf(result));
  assert.deepEqual(result.structuredContent.messages.map((x) => x.id), [incoming.id]);
  assert.match(textOf(result), /written by another agent, not by the user/);
  assert.match(textOf(result), /harness rest/);

  const reply = await fx.mcp.call("meshwire_reply_to_message", { message_id: incoming.id, content: "got it" });
  assert.equal(reply.isError, false, textOf(reply));
  assert.equal(reply.structuredContent.metadata.reply_to, incoming.id);
  assert.equal(reply.structuredContent.to, rid);

  const again = await fx.mcp.call("meshwire_get_messages", {});
  assert.deepEqual(again.structuredContent.messages, [], "the previous batch was acknowledged");
});

test("a waiting get_messages holds no request up and is woken by a REST send", T, async () => {
  const waiting = fx.mcp.call("meshwire_get_messages", { wait_seconds: 20 });
  await until("remote-agent listening", async () => (await agentsByName())["remote-agent"].listening);
  let t = Date.now();
  await fx.mcp.client.ping();
  const list = await fx.mcp.call("meshwire_list_agents");
  assert.equal(list.isError, false);
  assert.ok(Date.now() - t < 1000, "ping and list_agents answered while the wait is parked");
  const sent = await rest(fx.url, fx.token, "POST", `${m()}/messages`, {
    from: fx.rest.agent_id,
    to: "remote-agent",
    content: "wake up",
  });
  t = Date.now();
  const result = await waiting;
  assert.ok(Date.now() - t < 3000, "woken by the send");
  assert.deepEqual(result.structuredContent.messages.map((x) => x.id), [sent.id]);
});

test("an aborted get_messages ends its parked poll on the relay; the session goes on", T, async () => {
  const controller = new AbortController();
  const waiting = fx.mcp.call("meshwire_get_messages", { wait_seconds: 20 }, { signal: controller.signal });
  await until("remote-agent listening", async () => (await agentsByName())["remote-agent"].listening);
  controller.abort();
  await assert.rejects(waiting, (err) => /AbortError|aborted/i.test(`${err.name} ${err.message}`));
  await until("the relay to stop counting remote-agent as listening", async () =>
    !(await agentsByName())["remote-agent"].listening);
  // A message sent now is still there for the next call: the cancelled poll read nothing.
  const sent = await rest(fx.url, fx.token, "POST", `${m()}/messages`, {
    from: fx.rest.agent_id,
    to: "remote-agent",
    content: "after the abort",
  });
  const result = await fx.mcp.call("meshwire_get_messages", {});
  assert.deepEqual(result.structuredContent.messages.map((x) => x.id), [sent.id]);
  assert.deepEqual(fx.mcp.errors.map(String), [], "the SDK saw no stray message");
});

test("bad arguments are isError results; an unknown tool is a protocol error", T, async () => {
  const big = await fx.mcp.call("meshwire_send_message", { content: "x".repeat(10241) });
  assert.equal(big.isError, true);
  assert.match(textOf(big), /10241 bytes; the limit is 10240/);
  const unknown = await fx.mcp.call("meshwire_send_message", { content: "x", to: "nobody-here" });
  assert.equal(unknown.isError, true);
  assert.match(textOf(unknown), /No agent "nobody-here".*call meshwire_list_agents/);
  const wrong = await fx.mcp.call("meshwire_get_messages", { wait_seconds: "soon" });
  assert.equal(wrong.isError, true);
  await assert.rejects(fx.mcp.call("meshwire_nope"), /-32602|Unknown tool/);
});

test("a wait past the agent's cap of parked polls is an isError result (429's sentence), not a failure", T, async () => {
  const mcp = await connect({ name: "crowded-agent" });
  const { agent_id: id } = await rest(fx.url, fx.token, "POST", `${m()}/agents`, { name: "crowded-agent" });
  // 70 polls of 20 s, each on a connection of its own (node:http, no pool):
  // once one is refused (429), 64 others are parked, and stay so.
  let refused = 0;
  const requests = Array.from({ length: 70 }, () => {
    const req = http.get(`${fx.url}${m()}/messages?agent_id=${id}&wait=20`, {
      agent: false,
      headers: { authorization: `Bearer ${fx.token}` },
    });
    req.on("error", () => {});
    req.on("response", (res) => {
      if (res.statusCode === 429) refused++;
      res.resume();
    });
    return req;
  });
  await until("the cap of 64 parked polls to be reached", () => refused > 0, 10000);
  const result = await mcp.call("meshwire_get_messages", { wait_seconds: 5 });
  assert.equal(result.isError, true, textOf(result));
  assert.match(textOf(result), /retry|too many/i);
  for (const req of requests) req.destroy();
  await mcp.client.close();
});

test("no token, a wrong one: 401 with WWW-Authenticate naming the resource metadata, which is served", T, async () => {
  for (const headers of [{}, { authorization: "Bearer mw_wrongwrongwrong" }]) {
    const r = await post(initialize(), headers);
    assert.equal(r.status, 401);
    const challenge = r.headers.get("www-authenticate");
    const expected = `${fx.url}/.well-known/oauth-protected-resource/mesh/${fx.meshId}/mcp`;
    assert.equal(challenge, `Bearer resource_metadata="${expected}"`);
    assert.equal(r.body.error.code, -32000);
    const doc = await (await fetch(expected)).json();
    assert.equal(doc.resource, `${fx.url}/mesh/${fx.meshId}/mcp`);
    assert.deepEqual(doc.bearer_methods_supported, ["header"]);
  }
  // The SDK client without a token: connect fails with the 401.
  const transport = new sdk.StreamableHTTPClientTransport(new URL(`${fx.url}${m()}/mcp`));
  const client = new sdk.Client({ name: "no-token", version: "1.0.0" });
  await assert.rejects(client.connect(transport, { timeout: 5000 }), /401|Unauthorized/i);
});

test("refusals change nothing: forged Origin, foreign Host, another mesh's token, a revoked token, a stranger", T, async () => {
  const before = await historyCount();
  const auth = { authorization: `Bearer ${fx.token}` };
  const send = {
    jsonrpc: "2.0",
    id: 9,
    method: "tools/call",
    params: { name: "meshwire_send_message", arguments: { content: "should not land" } },
  };
  const session = { ...auth, "mcp-session-id": fx.mcp.transport.sessionId, "mcp-protocol-version": "2025-11-25" };

  assert.equal((await post(send, { ...session, origin: "http://evil.example.com" })).status, 403);
  assert.equal((await postWithHost(send, "evil.example.com", session)).status, 403);
  assert.equal((await postWithHost(send, "evil.example.com:80", session)).status, 403);
  assert.equal((await post(initialize(), { ...auth, origin: "https://evil.example.com" })).status, 403);
  // The relay's own origin and loopback names pass.
  assert.equal((await post({ jsonrpc: "2.0", id: 3, method: "ping" }, { ...session, origin: fx.url })).status, 200);
  const port = new URL(fx.url).port;
  assert.equal(
    (await post({ jsonrpc: "2.0", id: 4, method: "ping" }, { ...session, origin: `http://localhost:${port}` })).status,
    200,
  );

  // A token scoped to another mesh, a revoked token, another user's token.
  const other = await rest(fx.url, fx.token, "POST", "/mesh", { name: "other-mesh" });
  const scoped = await rest(fx.url, fx.token, "POST", "/tokens", { name: "scoped", mesh_id: other.mesh_id });
  assert.equal((await post(initialize(), { authorization: `Bearer ${scoped.token}` })).status, 403);
  const revoked = await rest(fx.url, fx.token, "POST", "/tokens", { name: "soon-revoked" });
  const victim = await connect({ name: "victim", token: revoked.token });
  await rest(fx.url, fx.token, "DELETE", `/tokens/${revoked.id}`);
  const afterRevoke = await post(send, {
    authorization: `Bearer ${revoked.token}`,
    "mcp-session-id": victim.transport.sessionId,
  });
  assert.equal(afterRevoke.status, 401);
  const bob = createToken(fx.storage, "bob", { env: relayEnv(fx.storage) });
  assert.equal((await post(initialize(), { authorization: `Bearer ${bob}` })).status, 403, "not a member");
  // Another token (same user) cannot use this session.
  const second = await rest(fx.url, fx.token, "POST", "/tokens", { name: "second" });
  assert.equal((await post(send, { ...session, authorization: `Bearer ${second.token}` })).status, 404);

  assert.equal(await historyCount(), before, "nothing was sent");
});

test("hostile paths and headers: a mesh id that is no id is 404 (never echoed into a header), loopback look-alikes 403", T, async () => {
  const before = await historyCount();
  const auth = { authorization: `Bearer ${fx.token}` };
  // A CR LF in the mesh id once became a header of the 401 (no token needed).
  for (const mesh of ["x%0d%0aSet-Cookie:%20pwned=1", "x%22y", "%FF", "%C0%AF", "a%00b"]) {
    for (const headers of [{}, auth]) {
      const r = await post(initialize(), headers, mesh);
      assert.equal(r.status, 404, mesh);
      assert.equal(r.body.error.data.code, "mesh_not_found");
      assert.equal(r.headers.get("set-cookie"), null);
      assert.equal(r.headers.get("www-authenticate"), null);
    }
    const doc = await fetch(`${fx.url}/.well-known/oauth-protected-resource/mesh/${mesh}/mcp`);
    assert.equal(doc.status, 404, mesh);
    assert.equal((await doc.json()).error.code, "mesh_not_found");
  }
  // Names that only start like loopback, user information, two Origins.
  const port = new URL(fx.url).port;
  for (const origin of ["https://127.0.0.1.attacker.example", "http://127.evil", `http://127.0.0.1:${port}@evil.com`]) {
    assert.equal((await post(initialize(), { ...auth, origin })).status, 403, origin);
  }
  assert.equal((await postWithHost(initialize(), "127.0.0.1.attacker.example", auth)).status, 403);
  assert.equal((await postWithHost(initialize(), `127.0.0.2:${port}`, auth)).status, 200, "127.0.0.0/8 is loopback");
  const twoOrigins = { ...auth, origin: [`http://localhost:${port}`, "http://evil.example.com"] };
  assert.equal((await postWithHost(initialize(), `127.0.0.1:${port}`, twoOrigins)).status, 403);
  // In a session: a jsonrpc that is not a string, a body cut by a NUL.
  const session = { ...auth, "mcp-session-id": fx.mcp.transport.sessionId, "mcp-protocol-version": "2025-11-25" };
  for (const jsonrpc of [2.0, null, ["2.0"]]) {
    const r = await post({ jsonrpc, id: 7, method: "ping" }, session);
    assert.equal(r.status, 400, JSON.stringify(jsonrpc));
    assert.equal(r.body.error.code, -32600);
  }
  const send = { jsonrpc: "2.0", id: 8, method: "tools/call", params: { name: "meshwire_send_message", arguments: { content: "cut" } } };
  const cut = await post(JSON.stringify(send) + "\u0000{{", session);
  assert.equal(cut.status, 400);
  assert.equal(cut.body.error.code, -32700);
  // Ending a session needs the mesh's access first (a stranger learns nothing of its sessions).
  const bob = createToken(fx.storage, "bob-del", { env: relayEnv(fx.storage) });
  const del = await fetch(`${fx.url}${m()}/mcp`, { method: "DELETE", headers: { authorization: `Bearer ${bob}` } });
  assert.equal(del.status, 403);
  assert.equal(await historyCount(), before, "nothing was sent");
});

test("transport rules: no session 400, unknown 404, bad version 400, bad JSON 400, a batch 400, notifications 202", T, async () => {
  const auth = { authorization: `Bearer ${fx.token}` };
  const ping = { jsonrpc: "2.0", id: 5, method: "ping" };
  const sid = fx.mcp.transport.sessionId;
  assert.equal((await post(ping, auth)).status, 400);
  assert.equal((await post(ping, { ...auth, "mcp-session-id": "nope" })).status, 404);
  const badVersion = await post(ping, { ...auth, "mcp-session-id": sid, "mcp-protocol-version": "1999-01-01" });
  assert.equal(badVersion.status, 400);
  assert.equal(badVersion.body.error.data.code, "unsupported_protocol_version");
  assert.match(badVersion.body.error.message, /speaks 2024-11-05, .*2025-06-18/);
  const notJson = await post("{not json", { ...auth, "mcp-session-id": sid });
  assert.equal(notJson.status, 400);
  assert.equal(notJson.body.error.code, -32700);
  assert.equal(notJson.body.error.data.code, "parse_error");
  // A lone surrogate escape is read as U+FFFD and answered; nesting past 64 levels is a parse error.
  const lone = await post('{"jsonrpc":"2.0","id":8,"method":"ping","params":{"x":"\\ud800"}}', { ...auth, "mcp-session-id": sid });
  assert.equal(lone.status, 200);
  assert.equal(lone.body.id, 8);
  const deep = await post(`{"jsonrpc":"2.0","id":9,"method":"ping","params":{"x":${"[".repeat(100000)}${"]".repeat(100000)}}}`, {
    ...auth,
    "mcp-session-id": sid,
  });
  assert.equal(deep.status, 400);
  assert.equal(deep.body.error.code, -32700);
  const batch = await post([ping], { ...auth, "mcp-session-id": sid });
  assert.equal(batch.status, 400);
  assert.equal(batch.body.error.data.code, "invalid_request");
  assert.equal(batch.body.error.code, -32600, "JSON-RPC's Invalid Request, as meshwire mcp answers a batch");
  // A NUL in a tool's name is kept in the error, not where the text ends.
  const nul = await post(
    { jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "meshwire_status\u0000x", arguments: {} } },
    { ...auth, "mcp-session-id": sid },
  );
  assert.equal(nul.body.error.message, "Unknown tool: meshwire_status\u0000x");
  assert.match((await post(5, { ...auth, "mcp-session-id": sid })).body.error.message, /one JSON-RPC message, a JSON object/);
  // A method that is not a string: -32600, never a 500 (it was one).
  for (const method of [5, null, ["x"]]) {
    for (const id of [6, undefined]) {
      const odd = await post({ jsonrpc: "2.0", id, method }, { ...auth, "mcp-session-id": sid });
      assert.equal(odd.status, 400, JSON.stringify({ method, id }));
      assert.equal(odd.body.error.code, -32600);
    }
  }
  // An id that is neither a string nor a 64-bit integer: 400 and -32600 with its code, as every refusal.
  for (const id of [null, 1.5, true, {}, [1]]) {
    const odd = await post({ jsonrpc: "2.0", id, method: "ping" }, { ...auth, "mcp-session-id": sid });
    assert.equal(odd.status, 400, JSON.stringify({ id }));
    assert.equal(odd.body.error.code, -32600);
    assert.equal(odd.body.error.data.code, "invalid_request");
  }
  const bigId = await post('{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}', { ...auth, "mcp-session-id": sid });
  assert.equal(bigId.status, 400, "an id past 64 bits");
  const oddMeta = await post(
    { jsonrpc: "2.0", id: 7, method: "ping", params: { _meta: { "io.modelcontextprotocol/protocolVersion": 5 } } },
    { ...auth, "mcp-session-id": sid },
  );
  assert.notEqual(oddMeta.status, 500);
  const note = await post({ jsonrpc: "2.0", method: "notifications/initialized" }, { ...auth, "mcp-session-id": sid });
  assert.equal(note.status, 202);
  const wrongType = await post(ping, { ...auth, "mcp-session-id": sid, "content-type": "text/plain" });
  assert.equal(wrongType.status, 415);
  assert.equal(wrongType.body.error.data.code, "unsupported_media_type");
  const notAccepted = await post(ping, { ...auth, "mcp-session-id": sid, accept: "text/html" });
  assert.equal(notAccepted.status, 406);
  assert.equal(notAccepted.body.error.data.code, "not_acceptable");
  // Media types are compared as media types (case-insensitive, parameters
  // aside, ranges and q=0 understood), not as substrings.
  for (const [header, value, status] of [
    ["content-type", "Application/JSON", 200],
    ["content-type", "application/json; charset=utf-8", 200],
    ["content-type", "text/plain; note=application/json", 415],
    ["content-type", "application/jsonx", 415],
    ["accept", "application/*", 200],
    ["accept", "Application/JSON, text/event-stream", 200],
    ["accept", "*/*;q=0.1", 200],
    ["accept", "application/json;q=0, text/html", 406],
    ["accept", "application/json;q=0, */*", 406], // the most specific range decides
    ["accept", "application/*;q=0, application/json", 200],
  ]) {
    const r = await post(ping, { ...auth, "mcp-session-id": sid, [header]: value });
    assert.equal(r.status, status, `${header}: ${value}`);
  }
});

test("GET opens the session's event stream; DELETE ends the session (then 404)", T, async () => {
  const mine = await connect({ name: "short-lived" });
  const sid = mine.transport.sessionId;
  const auth = { authorization: `Bearer ${fx.token}`, "mcp-session-id": sid };
  const stream = await new Promise((resolve, reject) => {
    const req = http.get(`${fx.url}${m()}/mcp`, { headers: { ...auth, accept: "text/event-stream" } }, resolve);
    req.on("error", reject);
  });
  assert.equal(stream.statusCode, 200);
  assert.match(stream.headers["content-type"], /text\/event-stream/);
  // The relay closes the connection when a stream ends, and says so: else
  // fetch pools it when the stream ends, and its next POST there fails.
  assert.equal(stream.headers.connection, "close");
  const first = await new Promise((resolve) => stream.once("data", (chunk) => resolve(String(chunk))));
  assert.match(first, /^: meshwire session/);
  const ended = new Promise((resolve) => stream.once("end", resolve));
  await mine.transport.terminateSession();
  await ended; // DELETE closes the session's stream
  const r = await post({ jsonrpc: "2.0", id: 1, method: "ping" }, auth);
  assert.equal(r.status, 404);
});

test("a refused initialize opens no session and registers no agent: 40 of them leave the token's working session alone", T, async () => {
  const auth = { authorization: `Bearer ${fx.token}` };
  const working = await post(initialize(), auth);
  const sid = working.headers.get("mcp-session-id");
  assert.ok(sid);
  for (let i = 0; i < 40; i++) {
    const bad = i % 2 ? { ...initialize(i + 10), id: null } : { ...initialize(i + 10), params: { protocolVersion: 5 } };
    const r = await post(bad, auth, fx.meshId, "?agent=refused-agent");
    assert.ok(r.body.error, `refused: ${JSON.stringify(r.body)}`);
    assert.equal(r.headers.get("mcp-session-id"), null, "no session for a refused initialize");
  }
  assert.equal((await agentsByName())["refused-agent"], undefined, "a refused initialize registers no agent");
  const ping = await post({ jsonrpc: "2.0", id: 2, method: "ping" }, { ...auth, "mcp-session-id": sid });
  assert.equal(ping.status, 200, "the token's 32-session cap was not filled by refused ones");
});

// The session's GET stream as raw chunks: { text(), ended }.
async function rawStream(token, sid, mesh = fx.meshId) {
  const stream = await new Promise((resolve, reject) => {
    const req = http.get(
      `${fx.url}/mesh/${mesh}/mcp`,
      { headers: { authorization: `Bearer ${token}`, "mcp-session-id": sid, accept: "text/event-stream" } },
      resolve,
    );
    req.on("error", reject);
  });
  assert.equal(stream.statusCode, 200);
  let text = "";
  stream.on("data", (chunk) => (text += chunk));
  const ended = new Promise((resolve) => stream.once("end", resolve));
  await until("the stream's first comment", () => text.length > 0);
  return { text: () => text, ended };
}

test("a revoked token's or a removed member's session ends at once: its stream closes, nothing more is pushed", T, async () => {
  // A revoked token (before: POSTs got 401, but the open stream went on
  // carrying every message sent to the agent for 30 minutes).
  const doomed = await rest(fx.url, fx.token, "POST", "/tokens", { name: "doomed" });
  const victim = await connect({ name: "revoked-agent", token: doomed.token });
  const stream = await rawStream(doomed.token, victim.transport.sessionId);
  await rest(fx.url, fx.token, "DELETE", `/tokens/${doomed.id}`);
  await stream.ended;
  await rest(fx.url, fx.token, "POST", `${m()}/messages`, { from: fx.rest.agent_id, to: "revoked-agent", content: "SECRET-1" });
  await sleep(300);
  assert.doesNotMatch(stream.text(), /SECRET/);
  const ended = await post({ jsonrpc: "2.0", id: 9, method: "ping" }, { "mcp-session-id": victim.transport.sessionId, authorization: `Bearer ${fx.token}` });
  assert.equal(ended.status, 404, "the session ended");

  // A member removed from the mesh, with a token still valid elsewhere.
  const carol = createToken(fx.storage, "carol", { env: relayEnv(fx.storage) });
  await rest(fx.url, fx.token, "POST", `${m()}/members`, { user: "carol" });
  const member = await connect({ name: "carol-agent", token: carol });
  const carolStream = await rawStream(carol, member.transport.sessionId);
  await rest(fx.url, fx.token, "DELETE", `${m()}/members/carol`);
  await carolStream.ended;
  await rest(fx.url, fx.token, "POST", `${m()}/messages`, { from: fx.rest.agent_id, content: "SECRET-2 to all" });
  await sleep(300);
  assert.doesNotMatch(carolStream.text(), /SECRET/);
  const refused = await post(initialize(), { authorization: `Bearer ${carol}` });
  assert.equal(refused.status, 403, "initializing again: not a member");
  // A session whose agent was deleted ends too: initializing again registers it again.
  const orphan = await connect({ name: "deleted-agent" });
  const orphanStream = await rawStream(fx.token, orphan.transport.sessionId);
  // Its answer (or the session's end) is taken at once: a rejection left
  // unhandled until the await below would fail the test.
  const waiting = orphan
    .call("meshwire_get_messages", { wait_seconds: 20 })
    .then((r) => `${r.isError} ${textOf(r)}`, (e) => String(e));
  await until("deleted-agent listening", async () => (await agentsByName())["deleted-agent"].listening);
  const gone = (await agentsByName())["deleted-agent"];
  await rest(fx.url, fx.token, "DELETE", `${m()}/agents/${gone.agent_id}`);
  await orphanStream.ended;
  // Its waiting call says so, whichever comes first, its wake (a tool error)
  // or the session's end (a JSON-RPC error): the same sentence either way (it
  // said to list the agents, as for a recipient mistyped).
  const answered = await waiting;
  assert.match(answered, /^(true |McpError: MCP error -?\d+: )This session's agent deleted-agent \(\w+\) was deleted from mesh \w+, so this session has ended: start a new MCP session to register it again\.$/);
  assert.doesNotMatch(answered, /meshwire_list_agents/);
  const reborn = await connect({ name: "deleted-agent" });
  assert.equal((await reborn.call("meshwire_get_messages", {})).isError, false);
  assert.notEqual((await agentsByName())["deleted-agent"].agent_id, gone.agent_id);
  await reborn.client.close();
  // A deleted mesh's sessions end too (the change names no agent: storage says).
  const doomedMesh = (await rest(fx.url, fx.token, "POST", "/mesh", { name: "doomed-mesh" })).mesh_id;
  const inDoomed = await connect({ name: "doomed-mesh-agent", mesh: doomedMesh });
  const doomedStream = await rawStream(fx.token, inDoomed.transport.sessionId, doomedMesh);
  await rest(fx.url, fx.token, "DELETE", `/mesh/${doomedMesh}`);
  await doomedStream.ended;
  // Sessions whose access did not change go on.
  const alive = await connect({ name: "unaffected-agent" });
  await rest(fx.url, fx.token, "POST", "/tokens", { name: "unrelated" }).then((t) => rest(fx.url, fx.token, "DELETE", `/tokens/${t.id}`));
  await sleep(300);
  assert.deepEqual(await alive.client.ping(), {});
  await alive.client.close();
});

const restSendTo = (to, content) =>
  rest(fx.url, fx.token, "POST", `${m()}/messages`, { from: fx.rest.agent_id, to, content });
const channel = (mcp) => mcp.notifications.filter((n) => n.method === "notifications/claude/channel");

test("push: a message is sent as notifications/claude/channel on the GET stream; get_messages still returns it, marked", T, async () => {
  const mcp = await connect({ name: "push-agent" });
  assert.deepEqual(mcp.client.getServerCapabilities().experimental, { "claude/channel": {} });
  await mcp.streamOpen;
  const sent = await restSendTo("push-agent", "pushed to you");
  await until("the push", () => channel(mcp).length === 1);
  const { params } = channel(mcp)[0];
  assert.match(params.content, /from agent "rest-agent"/);
  assert.match(params.content, /written by another agent, not by the user/);
  assert.match(params.content, /<<<message (\w{12})\npushed to you\nmessage \1>>>/);
  assert.deepEqual(params.meta, { message_id: sent.id, from: fx.rest.agent_id, from_name: "rest-agent", seq: String(sent.seq) });
  // This client did not say it shows pushes: get_messages returns the message, saying it was pushed.
  const got = await mcp.call("meshwire_get_messages", {});
  assert.deepEqual(got.structuredContent.messages.map((x) => x.id), [sent.id]);
  assert.match(textOf(got), /also pushed to this session/);
  // Never twice: once returned, it is neither pushed nor returned again.
  const next = await restSendTo("push-agent", "second");
  await until("the second push", () => channel(mcp).length === 2);
  assert.equal(channel(mcp)[1].params.meta.message_id, next.id);
  await mcp.call("meshwire_get_messages", {});
  assert.deepEqual((await mcp.call("meshwire_get_messages", {})).structuredContent.messages, []);
  assert.deepEqual(mcp.errors.map(String), []);
  await mcp.client.close();
});

test("push to a client that declares experimental claude/channel: not shown again by get_messages", T, async () => {
  const mcp = await connect({ name: "channel-agent", capabilities: { experimental: { "claude/channel": {} } } });
  await mcp.streamOpen;
  const pushed = await restSendTo("channel-agent", "shown once");
  await until("the push", () => channel(mcp).length === 1);
  // The call looks past it (acknowledging it) and waits out its wait_seconds
  // for something not pushed: it answered "No new messages." at once.
  const started = Date.now();
  const got = await mcp.call("meshwire_get_messages", { wait_seconds: 2 });
  assert.deepEqual(got.structuredContent.messages, [], "the client has it already");
  assert.ok(Date.now() - started >= 1500, `answered after ${Date.now() - started} ms`);
  const { delivery } = await rest(fx.url, fx.token, "GET", `${m()}/messages/${pushed.id}`);
  assert.equal(delivery[0].state, "acked");
  await mcp.client.close();
});

test("meshwire://inbox: listed, read without acknowledging, updated notifications once subscribed", T, async () => {
  const mcp = await connect({ name: "inbox-agent" });
  const { resources } = await mcp.client.listResources();
  assert.deepEqual(resources.map((r) => r.uri), ["meshwire://inbox"]);
  assert.equal((await mcp.client.readResource({ uri: "meshwire://inbox" })).contents[0].text, "No messages waiting.");
  await mcp.client.subscribeResource({ uri: "meshwire://inbox" });
  await mcp.streamOpen;
  const sent = await restSendTo("inbox-agent", "in the inbox");
  await until("resources/updated", () => mcp.notifications.some((n) => n.method === "notifications/resources/updated"));
  const updated = mcp.notifications.find((n) => n.method === "notifications/resources/updated");
  assert.deepEqual(updated.params, { uri: "meshwire://inbox" });
  const read = await mcp.client.readResource({ uri: "meshwire://inbox" });
  assert.match(read.contents[0].text, /<<<message (\w{12})\nin the inbox\nmessage \1>>>/);
  // Reading moved nothing: get_messages still returns it.
  const got = await mcp.call("meshwire_get_messages", {});
  assert.deepEqual(got.structuredContent.messages.map((x) => x.id), [sent.id]);
  await assert.rejects(mcp.client.readResource({ uri: "meshwire://nope" }), /-32002|not found/i);
  await mcp.client.close();
});

test("loop guard: past 10 pushes a minute from one agent, pushes pause; both are told; nothing is lost", T, async () => {
  const a = await connect({ name: "loop-a" });
  const b = await connect({ name: "loop-b" });
  await b.streamOpen;
  const ids = [];
  let last;
  for (let i = 0; i < 13; i++) {
    last = await a.call("meshwire_send_message", { to: "loop-b", content: `ping ${i}` });
    assert.equal(last.isError, false, textOf(last));
    ids.push(last.structuredContent.id);
  }
  await until("b's pushes and the pause notice", () => channel(b).length >= 11);
  const pushes = channel(b).filter((n) => n.params.meta?.message_id);
  assert.equal(pushes.length, 10, "ten pushed");
  const notice = channel(b).find((n) => n.params.meta?.paused_for_s);
  assert.match(notice.params.content, /looks like two agents answering each other automatically/);
  assert.equal(channel(b).length, 11, "nothing more pushed while paused");
  assert.match(textOf(last), /stop replying automatically/, "the sender is told");
  const got = await b.call("meshwire_get_messages", { limit: 100 });
  assert.deepEqual(got.structuredContent.messages.map((x) => x.id), ids, "every message arrives");
  await a.client.close();
  await b.client.close();
});

test("MCP Inspector --cli --transport http: tools/list and tools/call meshwire_status", { timeout: 45000 }, async () => {
  assert.ok(fs.existsSync(INSPECTOR), "run `npm ci` in tests/ (the inspector is a devDependency)");
  const run = (args) =>
    new Promise((resolve) => {
      execFile(
        INSPECTOR,
        [
          "--cli",
          `${fx.url}${m()}/mcp?agent=inspector-agent`,
          "--transport",
          "http",
          "--header",
          `Authorization: Bearer ${fx.token}`,
          ...args,
        ],
        { env: childEnv({ HOME: tempDir("mw-http-inspector-") }), timeout: 20000, killSignal: "SIGKILL" },
        (error, stdout, stderr) => resolve({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr }),
      );
    });
  const list = await run(["--method", "tools/list"]);
  assert.equal(list.code, 0, `inspector tools/list failed: ${list.stderr}`);
  assert.deepEqual(JSON.parse(list.stdout).tools.map((t) => t.name).sort(), NAMES);
  const call = await run(["--method", "tools/call", "--tool-name", "meshwire_status"]);
  assert.equal(call.code, 0, `inspector tools/call failed: ${call.stderr}`);
  const result = JSON.parse(call.stdout);
  assert.equal(result.isError, false, JSON.stringify(result));
  assert.equal(result.structuredContent.agent.name, "inspector-agent");
});

// ---------------------------------------------------------------------------
// Protocol 2026-07-28: stateless requests (no session), the standard headers,
// server/discover, subscriptions/listen

const MODERN = "2026-07-28";
const modernMeta = { "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {} };
let modernId = 100;
// A 2026-07-28 request as a conforming client sends it: { status, body }.
function modern(method, params = {}, { agent = "modern-agent", headers = {}, name } = {}) {
  const h = {
    authorization: `Bearer ${fx.token}`,
    "mcp-protocol-version": MODERN,
    "mcp-method": method,
    ...(name !== undefined ? { "mcp-name": name } : {}),
    ...headers,
  };
  const body = { jsonrpc: "2.0", id: ++modernId, method, params: { ...params, _meta: { ...modernMeta, ...(params._meta ?? {}) } } };
  return fetch(`${fx.url}${m()}/mcp?agent=${agent}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...h },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30000),
  }).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.json() }));
}

test("2026-07-28: server/discover, then tools without a session; get_messages acknowledges across requests", T, async () => {
  const discover = await modern("server/discover");
  assert.equal(discover.status, 200);
  const d = discover.body.result;
  assert.ok(d.supportedVersions.includes(MODERN) && d.supportedVersions.includes("2025-11-25"));
  assert.equal(d._meta["io.modelcontextprotocol/serverInfo"].name, "meshwire");
  assert.ok(d.capabilities.tools);
  assert.match(d.instructions, /You are the agent "modern-agent"/);
  assert.equal(discover.headers.get("mcp-session-id"), null, "no session");

  const list = await modern("tools/list");
  assert.deepEqual(list.body.result.tools.map((t) => t.name).sort(), NAMES);
  assert.equal(list.body.result.cacheScope, "public");
  assert.equal(typeof list.body.result.ttlMs, "number");

  const sent = await restSendTo("modern-agent", "stateless hello");
  const got = await modern("tools/call", { name: "meshwire_get_messages", arguments: {} }, { name: "meshwire_get_messages" });
  assert.equal(got.body.result.resultType, "complete");
  assert.deepEqual(got.body.result.structuredContent.messages.map((x) => x.id), [sent.id]);
  const again = await modern("tools/call", { name: "meshwire_get_messages", arguments: {} }, { name: "meshwire_get_messages" });
  assert.deepEqual(again.body.result.structuredContent.messages, [], "the previous call's batch was acknowledged");
});

test("2026-07-28: the standard headers are checked (missing, or not matching the body): 400, nothing run", T, async () => {
  const before = await historyCount();
  const call = { name: "meshwire_send_message", arguments: { content: "must not land", to: "rest-agent" } };
  const cases = [
    { headers: { "mcp-method": "tools/list" }, name: "meshwire_send_message" }, // Mcp-Method differs from the body
    { name: "meshwire_status" }, // Mcp-Name differs from params.name
    {}, // Mcp-Name missing
    { headers: { "mcp-protocol-version": "2025-11-25" }, name: "meshwire_send_message" }, // _meta says 2026-07-28
  ];
  for (const c of cases) {
    const r = await modern("tools/call", call, c);
    assert.equal(r.status, 400, JSON.stringify(c));
    assert.equal(r.body.error.code, -32600, JSON.stringify(r.body));
    assert.equal(r.body.error.data.code, "invalid_request", JSON.stringify(r.body));
  }
  const noCaps = await modern("tools/list", { _meta: { "io.modelcontextprotocol/clientCapabilities": undefined } });
  assert.equal(noCaps.status, 400, "clientCapabilities is required in _meta");
  assert.equal(noCaps.body.error.data.code, "invalid_params");
  assert.equal(await historyCount(), before, "nothing was sent");
});

test("2026-07-28: subscriptions/listen acknowledges, then sends resources/updated for the inbox with the subscription id", T, async () => {
  const events = [];
  const controller = new AbortController();
  const id = ++modernId;
  const response = await fetch(`${fx.url}${m()}/mcp?agent=listen-agent`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${fx.token}`,
      "mcp-protocol-version": MODERN,
      "mcp-method": "subscriptions/listen",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id,
      method: "subscriptions/listen",
      params: { notifications: { resourceSubscriptions: ["meshwire://inbox"], toolsListChanged: true }, _meta: modernMeta },
    }),
    signal: controller.signal,
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type"), /text\/event-stream/);
  const reader = response.body.getReader();
  let buffer = "";
  (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ done: true }));
      if (done) return;
      buffer += Buffer.from(value).toString();
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const data = /^data: (.*)$/m.exec(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (data) events.push(JSON.parse(data[1]));
      }
    }
  })();
  await until("the acknowledgement", () => events.length > 0);
  assert.equal(events[0].method, "notifications/subscriptions/acknowledged");
  assert.deepEqual(events[0].params.notifications, { resourceSubscriptions: ["meshwire://inbox"] }, "only what it honors");
  assert.equal(events[0].params._meta["io.modelcontextprotocol/subscriptionId"], id);
  await restSendTo("listen-agent", "for the inbox");
  await until("resources/updated", () => events.length > 1);
  assert.deepEqual(events[1], {
    jsonrpc: "2.0",
    method: "notifications/resources/updated",
    params: { uri: "meshwire://inbox", _meta: { "io.modelcontextprotocol/subscriptionId": id } },
  });
  assert.ok(!events.some((e) => e.method === "notifications/claude/channel"), "nothing it did not ask for");
  controller.abort();
});

test("2026-07-28: the MCP Inspector (official v2 client) with --protocol-era modern lists and calls the tools", { timeout: 45000 }, async () => {
  const run = (args) =>
    new Promise((resolve) => {
      execFile(
        INSPECTOR,
        ["--cli", `${fx.url}${m()}/mcp?agent=inspector-modern`, "--transport", "http", "--header", `Authorization: Bearer ${fx.token}`,
          "--protocol-era", "modern", ...args],
        { env: childEnv({ HOME: tempDir("mw-http-inspector-modern-") }), timeout: 20000, killSignal: "SIGKILL" },
        (error, stdout, stderr) => resolve({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr }),
      );
    });
  const list = await run(["--method", "tools/list"]);
  assert.equal(list.code, 0, `inspector tools/list failed: ${list.stdout} ${list.stderr}`);
  assert.deepEqual(JSON.parse(list.stdout).tools.map((t) => t.name).sort(), NAMES);
  const call = await run(["--method", "tools/call", "--tool-name", "meshwire_status"]);
  assert.equal(call.code, 0, `inspector tools/call failed: ${call.stdout} ${call.stderr}`);
  assert.equal(JSON.parse(call.stdout).structuredContent.agent.name, "inspector-modern");
  const read = await run(["--method", "resources/read", "--uri", "meshwire://inbox"]);
  assert.equal(read.code, 0, `inspector resources/read failed: ${read.stdout} ${read.stderr}`);
  assert.equal(JSON.parse(read.stdout).contents[0].uri, "meshwire://inbox");
});
