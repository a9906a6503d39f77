// The real Claude Code CLI (@anthropic-ai/claude-code in tests/node_modules)
// against a real relay, configured only by `meshwire init --harness
// claude-code` (the workspace's .mcp.json). It proves:
//  1. `claude mcp list` shows the project server "meshwire" Pending until it
//     is approved (as init's next step says), then Connected, in both
//     credential modes; `claude mcp get` shows the command init wrote;
//  2. the MCP server as Claude Code starts it really works: a headless
//     `claude -p` run calls mcp__meshwire__meshwire_status and the result it
//     sends back to the model says online and names the mesh, with the token
//     either in Claude Code's environment only (no credentials.json) or in
//     ~/.meshwire/credentials.json only; a control run with neither carries
//     meshwire's "No meshwire credentials" sentence instead.
// How: no Anthropic account and no network. The model is a stand-in
// Messages API on loopback (below) that streams a tool call (first loading
// the tool through ToolSearch, since Claude Code defers MCP tools) and
// records the tool_result. Every run has its own temp HOME (the user's
// ~/.claude, ~/.claude.json and ~/.meshwire are never touched), the project
// server is approved in that HOME's ~/.claude/settings.json
// (enabledMcpjsonServers), and CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
// stops Claude Code's other traffic (telemetry, update checks).
//
// Needs `npm ci` in tests/. Run from the repository root:
//   node --test tests/js/clients/claude_code.test.mjs
// (MESHWIRE_BINARY overrides the meshwire binary.)

import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import { BINARY, childEnv, createToken, exitOnSignals, rest, tempDir } from "../support/relay.mjs";
import { clientBin, missingUnless, run, startRelayFixture, stopRelayFixture } from "./client_support.mjs";

const CLAUDE = clientBin("claude");
const NOT_INSTALLED = missingUnless(CLAUDE, `Claude Code is not installed at ${CLAUDE}: run \`npm ci\` in tests/`);
const STATUS_TOOL = "mcp__meshwire__meshwire_status";

exitOnSignals();

// ---------------------------------------------------------------------------
// Helpers (the relay, REST calls and cleanup: ../support/relay.mjs; running a
// client, the fixture: ./client_support.mjs)

// The environment of a user's shell with a temp HOME: this one without
// MESHWIRE_*, ANTHROPIC_* or Claude Code's own variables (in case the tests
// run inside Claude Code), plus extra.
function userEnv(home, extra = {}) {
  const env = childEnv();
  for (const key of Object.keys(env)) if (/^(ANTHROPIC_|CLAUDE|AI_AGENT)/.test(key)) delete env[key];
  return { ...env, HOME: home, NO_COLOR: "1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", ...extra };
}

// A fresh user (temp HOME) and workspace after `meshwire init --harness
// claude-code`; with `save: true` the token goes through --token (saved to
// ~/.meshwire/credentials.json), else only through MESHWIRE_TOKEN.
async function setUp({ save }) {
  const home = tempDir("mw-cc-home-");
  const ws = tempDir("mw-cc-ws-");
  const args = ["init", "--harness", "claude-code", "--mesh", fx.mesh, "--url", fx.url, ...(save ? ["--token", fx.token] : [])];
  const out = await run(BINARY, args, { cwd: ws, env: userEnv(home, save ? {} : { MESHWIRE_TOKEN: fx.token }), timeoutMs: 20000 });
  assert.equal(out.code, 0, JSON.stringify(out));
  assert.match(out.stdout + out.stderr, /approve the project MCP server "meshwire"/);
  assert.match(out.stdout + out.stderr, /claude --dangerously-load-development-channels server:meshwire/, "the flag that turns channels on");
  assert.equal(fs.existsSync(path.join(home, ".meshwire/credentials.json")), save, "credentials.json saved only with --token");
  return { home, ws, initOutput: out.stdout + out.stderr };
}

// Approves the project server for this user, non-interactively.
function approve(home) {
  fs.mkdirSync(path.join(home, ".claude"), { recursive: true });
  fs.writeFileSync(path.join(home, ".claude/settings.json"), JSON.stringify({ enabledMcpjsonServers: ["meshwire"] }));
}

async function claude(args, ws, env, timeoutMs = 60000) {
  const out = await run(CLAUDE, args, { cwd: ws, env, timeoutMs });
  assert.equal(out.code, 0, JSON.stringify(out));
  return out.stdout + out.stderr;
}

// A stand-in for the Anthropic Messages API on loopback. Per request (only
// the main loop offers tools): if a tool_result for the status tool is in the
// conversation, record it and say "done"; else if the status tool is loaded,
// call it; else if it is deferred, load it with ToolSearch "select:...".
// Streams SSE when asked to, as the real API does.
async function startAnthropicStandin() {
  const standin = { offered: [], results: [] };
  const server = http.createServer((req, res) => {
    let data = "";
    req.on("data", (chunk) => (data += chunk));
    req.on("end", () => {
      if (!/^\/v1\/messages(\?|$)/.test(req.url)) {
        res.writeHead(404, { "content-type": "application/json" });
        return res.end(JSON.stringify({ type: "error", error: { type: "not_found_error", message: req.url } }));
      }
      const body = JSON.parse(data || "{}");
      const content = answer(standin, body);
      const stop = content[0].type === "tool_use" ? "tool_use" : "end_turn";
      const message = { id: `msg_${Date.now()}`, type: "message", role: "assistant", model: body.model, content: [],
        stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 1 } };
      if (!body.stream) {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ ...message, content, stop_reason: stop }));
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      const event = (type, fields) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`);
      event("message_start", { message });
      content.forEach((block, index) => {
        if (block.type === "text") {
          event("content_block_start", { index, content_block: { type: "text", text: "" } });
          event("content_block_delta", { index, delta: { type: "text_delta", text: block.text } });
        } else {
          event("content_block_start", { index, content_block: { ...block, input: {} } });
          event("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: JSON.stringify(block.input) } });
        }
        event("content_block_stop", { index });
      });
      event("message_delta", { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: 5 } });
      event("message_stop", {});
      res.end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  standin.url = `http://127.0.0.1:${server.address().port}`;
  standin.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    });
  return standin;
}

function answer(standin, body) {
  const tools = (body.tools ?? []).map((tool) => tool.name);
  if (tools.length === 0) return [{ type: "text", text: "ok" }]; // a side request (titles, summaries)
  const blocks = (body.messages ?? []).flatMap((m) => (Array.isArray(m.content) ? m.content : []));
  const statusCalls = new Set(blocks.filter((b) => b.type === "tool_use" && b.name === STATUS_TOOL).map((b) => b.id));
  const result = blocks.find((b) => b.type === "tool_result" && statusCalls.has(b.tool_use_id));
  if (result) {
    standin.results.push(result);
    return [{ type: "text", text: "done" }];
  }
  standin.offered.push({ tools, prompt: JSON.stringify(body.system ?? "") + JSON.stringify(body.messages ?? []) });
  const id = `toolu_${standin.offered.length}`;
  if (tools.includes(STATUS_TOOL)) return [{ type: "tool_use", id, name: STATUS_TOOL, input: {} }];
  if (tools.includes("ToolSearch")) {
    return [{ type: "tool_use", id, name: "ToolSearch", input: { query: `select:${STATUS_TOOL}`, max_results: 1 } }];
  }
  return [{ type: "text", text: `neither ${STATUS_TOOL} nor ToolSearch was offered` }];
}

// A headless `claude -p` in ws against a new stand-in model, the status tool
// allowed: the status tool_result it sent back, { text, isError }.
async function ask(ws, home, extraEnv = {}) {
  const standin = await startAnthropicStandin();
  try {
    const env = userEnv(home, { ANTHROPIC_BASE_URL: standin.url, ANTHROPIC_API_KEY: "dummy", ...extraEnv });
    const args = ["-p", "Check the meshwire status.", "--allowedTools", STATUS_TOOL, "--max-turns", "6"];
    const out = await run(CLAUDE, args, { cwd: ws, env, timeoutMs: 90000 });
    assert.equal(out.code, 0, JSON.stringify(out));
    assert.ok(standin.offered[0]?.prompt.includes(STATUS_TOOL), "Claude Code announced the meshwire status tool");
    assert.equal(standin.results.length, 1, `one status result: ${JSON.stringify(standin.offered.map((o) => o.tools))} ${JSON.stringify(out)}`);
    const { content, is_error: isError = false } = standin.results[0];
    return { text: typeof content === "string" ? content : JSON.stringify(content), isError };
  } finally {
    await standin.close();
  }
}

// ---------------------------------------------------------------------------
// Shared fixture: one relay, one token, one mesh

const fx = {};

before(async () => {
  if (NOT_INSTALLED) return;
  [fx.mesh] = await startRelayFixture(fx, "mw-cc-relay-", ["claude-fleet"]);
});

after(() => stopRelayFixture(fx));

// ---------------------------------------------------------------------------
// Tests

test("claude mcp list: the project server is Pending until approved, then Connected", { timeout: 60000 }, async (t) => {
  if (NOT_INSTALLED) return t.skip(NOT_INSTALLED);
  const shown = `meshwire: ${BINARY} mcp --mesh ${fx.mesh}`;
  for (const save of [false, true]) {
    const { home, ws } = await setUp({ save });
    const env = userEnv(home, save ? {} : { MESHWIRE_TOKEN: fx.token });

    const pending = await claude(["mcp", "list"], ws, env);
    assert.ok(pending.includes(`${shown} - ⏸ Pending approval`), pending);

    approve(home);
    const connected = await claude(["mcp", "list"], ws, env);
    assert.ok(connected.includes(`${shown} - ✔ Connected`), connected);

    const details = await claude(["mcp", "get", "meshwire"], ws, env);
    for (const line of ["Scope: Project config", "Type: stdio", `Command: ${BINARY}`, `Args: mcp --mesh ${fx.mesh}`, `MESHWIRE_URL=${fx.url}`]) {
      assert.ok(details.includes(line), `${line}: ${details}`);
    }
  }
});

test("claude -p calls meshwire_status with the token from each credential source", { timeout: 150000 }, async (t) => {
  if (NOT_INSTALLED) return t.skip(NOT_INSTALLED);
  // (Claude Code passes the structuredContent JSON on to the model.)
  const online = ({ text, isError }) => {
    assert.equal(isError, false, text);
    assert.match(text, /"status":"online"/, text);
    assert.ok(text.includes(`"mesh_id":"${fx.mesh}"`), `names mesh ${fx.mesh}: ${text}`);
  };

  await t.test("MESHWIRE_TOKEN in Claude Code's environment only (no credentials.json)", async () => {
    const { home, ws } = await setUp({ save: false });
    approve(home);
    online(await ask(ws, home, { MESHWIRE_TOKEN: fx.token }));
  });

  await t.test("~/.meshwire/credentials.json only (no MESHWIRE_TOKEN)", async () => {
    const { home, ws } = await setUp({ save: true });
    approve(home);
    online(await ask(ws, home));
  });

  await t.test("control: neither source, so the tool result says what to do", async () => {
    const { home, ws } = await setUp({ save: false });
    approve(home);
    const { text, isError } = await ask(ws, home);
    assert.equal(isError, true, text);
    assert.match(text, /No meshwire credentials reached this MCP server/, text);
    assert.match(text, /meshwire login/, text);
  });
});

// A teammate clones alice's repository: .mesh.json and .mcp.json name her
// claude-code-agent. bob runs init as the product page says; the shared
// files stay as they are, and the server Claude Code starts from them speaks
// as bob's own agent (his ~/.meshwire/config.json maps the name).
test("a teammate's clone: Claude Code started from alice's committed files speaks as bob's own agent", { timeout: 120000 }, async (t) => {
  if (NOT_INSTALLED) return t.skip(NOT_INSTALLED);
  const alice = await setUp({ save: true });
  await rest(fx.url, fx.token, "POST", `/mesh/${fx.mesh}/members`, { user: "bob" });
  const bobToken = createToken(fx.storage, "bob");
  const home = tempDir("mw-cc-bob-");
  const ws = tempDir("mw-cc-bob-ws-");
  for (const file of [".mesh.json", ".mcp.json"]) fs.copyFileSync(path.join(alice.ws, file), path.join(ws, file));
  const out = await run(BINARY, ["init", "--harness", "claude-code", "--url", fx.url, "--token", bobToken], {
    cwd: ws, env: userEnv(home), timeoutMs: 20000,
  });
  assert.equal(out.code, 0, JSON.stringify(out));
  assert.match(out.stdout, /Registered as claude-code-agent-bob /);
  for (const file of [".mesh.json", ".mcp.json"]) {
    assert.equal(fs.readFileSync(path.join(ws, file), "utf8"), fs.readFileSync(path.join(alice.ws, file), "utf8"), file);
  }
  approve(home);
  const { text, isError } = await ask(ws, home);
  assert.equal(isError, false, text);
  assert.ok(text.includes('"name":"claude-code-agent-bob"'), text);
});

// `init --harness claude-code --remote`: .mcp.json names the relay's MCP
// endpoint with `Authorization: Bearer ${MESHWIRE_TOKEN}`, which Claude Code
// fills from its own environment; the file holds no token.
test("--remote: claude mcp list shows the relay's endpoint Connected with the token from the environment", { timeout: 90000 }, async (t) => {
  if (NOT_INSTALLED) return t.skip(NOT_INSTALLED);
  const home = tempDir("mw-cc-remote-home-");
  const ws = tempDir("mw-cc-remote-ws-");
  const init = await run(BINARY, ["init", "--harness", "claude-code", "--remote", "--mesh", fx.mesh, "--url", fx.url], {
    cwd: ws,
    env: userEnv(home, { MESHWIRE_TOKEN: fx.token }),
    timeoutMs: 20000,
  });
  assert.equal(init.code, 0, JSON.stringify(init));
  assert.match(init.stdout, /MESHWIRE_TOKEN/);
  const written = fs.readFileSync(path.join(ws, ".mcp.json"), "utf8");
  assert.ok(!written.includes(fx.token), "no token in .mcp.json");
  const url = `${fx.url}/mesh/${fx.mesh}/mcp?agent=claude-code-agent`;
  assert.deepEqual(JSON.parse(written).mcpServers.meshwire, {
    type: "http",
    url,
    headers: { Authorization: "Bearer ${MESHWIRE_TOKEN}" },
  });
  approve(home);
  const connected = await claude(["mcp", "list"], ws, userEnv(home, { MESHWIRE_TOKEN: fx.token }));
  assert.ok(connected.includes(`meshwire: ${url} (HTTP) - ✔ Connected`), connected);
  // Control: without the variable the relay refuses it (401), and Claude Code says so.
  const refused = await claude(["mcp", "list"], ws, userEnv(home));
  assert.ok(!refused.includes("✔ Connected"), refused);
  // The session Claude Code opened registered the agent by the URL's name.
  const { agents } = await (await fetch(`${fx.url}/mesh/${fx.mesh}/agents`, { headers: { authorization: `Bearer ${fx.token}` } })).json();
  assert.ok(agents.some((a) => a.name === "claude-code-agent"));
});
