// A stand-in model for the client tests (codex.test.mjs, pi.test.mjs): an
// OpenAI-compatible HTTP server on 127.0.0.1, in the test's own process, that
// speaks just enough of two APIs to drive one tool call:
//
//   POST .../responses         the Responses API (Codex, wire_api = "responses")
//   POST .../chat/completions  chat completions, streamed as SSE (Pi, api "openai-completions")
//   GET  .../models            an empty model list
//
// A request that does not yet carry the tool's result is answered with one
// call to the tool named `tool` (if the client offered it); a request that
// carries the result is answered with the text "done". Every request is kept
// in `requests`: { api, body, tools (the names offered, namespaces flattened),
// toolOutput (the tool result the client sent back, as text) }.
// Node built-ins only.

import http from "node:http";
import zlib from "node:zlib";

const CALL_ID = "call_standin_1";
const RESPONSES_USAGE = {
  input_tokens: 10,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 5,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 15,
};
const CHAT_USAGE = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };

// The tools of a Responses or chat request as [{ name, namespace? }].
function offeredTools(tools = []) {
  const out = [];
  for (const tool of tools) {
    if (tool.type === "namespace") {
      for (const inner of tool.tools || []) out.push({ name: inner.name, namespace: tool.name });
    } else {
      out.push({ name: tool.function?.name ?? tool.name ?? tool.type });
    }
  }
  return out;
}

function decodeBody(req, raw) {
  const encoding = (req.headers["content-encoding"] || "").toLowerCase();
  if (encoding === "gzip") return zlib.gunzipSync(raw);
  if (encoding === "br") return zlib.brotliDecompressSync(raw);
  if (encoding === "deflate") return zlib.inflateSync(raw);
  if (encoding === "zstd" && zlib.zstdDecompressSync) return zlib.zstdDecompressSync(raw);
  return raw;
}

const asText = (value) => (typeof value === "string" ? value : JSON.stringify(value));

function sse(res, events, { named }) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (const event of events) {
    if (event === "[DONE]") res.write("data: [DONE]\n\n");
    else res.write(`${named ? `event: ${event.type}\n` : ""}data: ${JSON.stringify(event)}\n\n`);
  }
  res.end();
}

// Responses API (Codex): a function_call item, or a "done" message once the
// input carries the function_call_output.
function answerResponses(res, entry, n, { tool, args }) {
  const input = Array.isArray(entry.body?.input) ? entry.body.input : [];
  const output = input.find((item) => /_call_output$/.test(item.type || "") && item.call_id === CALL_ID);
  const id = `resp_${n}`;
  let item;
  if (output) {
    entry.toolOutput = asText(output.output);
    item = { type: "message", role: "assistant", id: `msg_${n}`, content: [{ type: "output_text", text: "done" }] };
  } else {
    const target = entry.tools.find((t) => t.name === tool);
    item = target
      ? {
          type: "function_call",
          id: `fc_${n}`,
          call_id: CALL_ID,
          name: target.name,
          ...(target.namespace ? { namespace: target.namespace } : {}),
          arguments: args,
          status: "completed",
        }
      : { type: "message", role: "assistant", id: `msg_${n}`, content: [{ type: "output_text", text: `no ${tool} offered` }] };
  }
  sse(
    res,
    [
      { type: "response.created", response: { id } },
      { type: "response.output_item.done", item },
      { type: "response.completed", response: { id, usage: RESPONSES_USAGE } },
    ],
    { named: true },
  );
}

// Chat completions (Pi), streamed: a tool call, or "done" after a tool message.
function answerChat(res, entry, n, { tool, args }) {
  const messages = Array.isArray(entry.body?.messages) ? entry.body.messages : [];
  const result = messages.findLast((m) => m.role === "tool");
  if (result) {
    entry.toolOutput = Array.isArray(result.content)
      ? result.content.map((part) => part.text ?? "").join("")
      : asText(result.content);
  }
  const id = `chatcmpl-${n}`;
  const chunk = (delta, finish = null) => ({
    id,
    object: "chat.completion.chunk",
    created: Math.floor(Date.now() / 1000),
    model: entry.body?.model ?? "standin",
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  const callTool = !result && entry.tools.some((t) => t.name === tool);
  const text = result ? "done" : `no ${tool} offered`;
  const events = callTool
    ? [
        chunk({ role: "assistant", content: null, tool_calls: [{ index: 0, id: CALL_ID, type: "function", function: { name: tool, arguments: "" } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: args } }] }),
        chunk({}, "tool_calls"),
      ]
    : [chunk({ role: "assistant", content: text }), chunk({}, "stop")];
  if (entry.body?.stream === false) {
    const message = callTool
      ? { role: "assistant", content: null, tool_calls: [{ id: CALL_ID, type: "function", function: { name: tool, arguments: args } }] }
      : { role: "assistant", content: text };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ id, object: "chat.completion", created: 0, model: "standin", choices: [{ index: 0, message, finish_reason: callTool ? "tool_calls" : "stop" }], usage: CHAT_USAGE }));
    return;
  }
  events.push({ id, object: "chat.completion.chunk", created: 0, model: "standin", choices: [], usage: CHAT_USAGE }, "[DONE]");
  sse(res, events, { named: false });
}

// Starts the stand-in on 127.0.0.1 (any free port): { baseUrl (ends in /v1), requests, close() }.
// tool: the function it calls; args: that call's JSON arguments (a string).
export async function startStandin({ tool = "meshwire_status", args = "{}" } = {}) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let body = null;
      try {
        const text = decodeBody(req, Buffer.concat(chunks)).toString("utf8");
        body = text ? JSON.parse(text) : null;
      } catch (err) {
        body = { unparsed: String(err) };
      }
      const route = req.url.split("?")[0];
      const entry = { method: req.method, url: req.url, api: null, body, tools: offeredTools(body?.tools) };
      requests.push(entry);
      if (req.method === "GET" && route.endsWith("/models")) {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ object: "list", data: [] }));
      }
      if (req.method === "POST" && route.endsWith("/responses")) {
        entry.api = "responses";
        return answerResponses(res, entry, requests.length, { tool, args });
      }
      if (req.method === "POST" && route.endsWith("/chat/completions")) {
        entry.api = "chat";
        return answerChat(res, entry, requests.length, { tool, args });
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `stand-in: no route ${req.method} ${req.url}` } }));
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return {
    baseUrl: `http://127.0.0.1:${server.address().port}/v1`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
