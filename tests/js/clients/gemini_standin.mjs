// A stand-in for the Gemini API (generativelanguage v1beta) on 127.0.0.1, so
// the real Gemini CLI can run headless with no network and no account:
//   GOOGLE_GEMINI_BASE_URL=<url> GEMINI_API_KEY=dummy gemini -p "..."
// (plus security.auth.selectedType "gemini-api-key" in its settings).
//
// It plays a model that always does the same thing:
//   turn 1 (streamGenerateContent): call the offered tool whose name ends in
//     `toolSuffix` (default "meshwire_status"), with no arguments;
//   turn 2 (the request carries the functionResponse): record it, say "done".
// Side requests that want JSON (the routing classifier, the next-speaker
// check, ...) get an object built from the requested schema; without that
// the CLI retries them for about 90 s.
//
// Runs in the test's own process (the CLI is a child process), so the test
// reads what it recorded directly: `offered` (tool names of each model turn)
// and `results` (each functionResponse.response the CLI sent back).

import http from "node:http";

export async function startGeminiStandin({ toolSuffix = "meshwire_status" } = {}) {
  const standin = { offered: [], results: [], requests: [] };

  function answer(url, body) {
    const contents = body.contents ?? [];
    const last = contents.at(-1) ?? { parts: [] };
    const response = (last.parts ?? []).find((part) => part.functionResponse);
    const names = (body.tools ?? []).flatMap((tool) => tool.functionDeclarations ?? []).map((decl) => decl.name);
    if (response) {
      standin.results.push(response.functionResponse.response);
      return { role: "model", parts: [{ text: "done" }] };
    }
    const schema = body.generationConfig?.responseJsonSchema ?? body.generationConfig?.responseSchema;
    if (/:streamGenerateContent/.test(url)) {
      standin.offered.push(names);
      const tool = names.find((name) => name.endsWith(toolSuffix));
      if (tool) return { role: "model", parts: [{ functionCall: { name: tool, args: {} } }] };
      return { role: "model", parts: [{ text: `no tool ending in ${toolSuffix} was offered` }] };
    }
    if (schema) return { role: "model", parts: [{ text: JSON.stringify(fromSchema(schema)) }] };
    return { role: "model", parts: [{ text: "ok" }] };
  }

  const server = http.createServer((req, res) => {
    let data = "";
    req.on("data", (chunk) => (data += chunk));
    req.on("end", () => {
      standin.requests.push(`${req.method} ${req.url}`);
      let body = {};
      try {
        body = data ? JSON.parse(data) : {};
      } catch {
        // not JSON: answer as if empty
      }
      const json = (status, value) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      if (/:countTokens/.test(req.url)) return json(200, { totalTokens: 42 });
      if (/:(batchE|e)mbedContents?/.test(req.url)) {
        return json(200, { embedding: { values: [0.1, 0.2] }, embeddings: [{ values: [0.1, 0.2] }] });
      }
      if (/:streamGenerateContent/.test(req.url)) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        return res.end(`data: ${JSON.stringify(envelope(answer(req.url, body)))}\r\n\r\n`);
      }
      if (/:generateContent/.test(req.url)) return json(200, envelope(answer(req.url, body)));
      if (req.method === "GET" && /\/models/.test(req.url)) return json(200, { models: [] });
      json(404, { error: { code: 404, message: `stand-in: unknown ${req.url}`, status: "NOT_FOUND" } });
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  standin.url = `http://127.0.0.1:${server.address().port}`;
  standin.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    });
  // Forget what was recorded (one stand-in serves several runs).
  standin.reset = () => {
    standin.offered.length = 0;
    standin.results.length = 0;
    standin.requests.length = 0;
  };
  return standin;
}

function envelope(content) {
  return {
    candidates: [{ content, finishReason: "STOP", index: 0 }],
    usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 5, totalTokenCount: 15 },
    modelVersion: "gemini-2.5-flash",
  };
}

// A value that satisfies a (simple) JSON schema; enums prefer "user".
function fromSchema(schema) {
  if (schema.enum) return schema.enum.includes("user") ? "user" : schema.enum[0];
  const type = String(schema.type ?? "object").toLowerCase();
  if (type === "object") {
    return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([key, value]) => [key, fromSchema(value)]));
  }
  if (type === "array") return [];
  if (type === "integer" || type === "number") return 10;
  if (type === "boolean") return false;
  return "standin";
}
