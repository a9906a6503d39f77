// The relay's dashboard: the REST API of docs/API.md, called from the
// browser with the signed-in user's token.
//
// Signing in: /auth/web (the relay's name form, or GitHub) comes back to
// /dashboard#code=C; C is redeemed once at POST /auth/cli/token for a token
// named "dashboard", kept in this tab's sessionStorage (gone when the tab
// closes). "Sign out" revokes it. A token can also be pasted.
//
// Everything shown goes through textContent: nothing from the relay is ever
// parsed as HTML (the page's Content-Security-Policy allows no inline script).

const KEY = "meshwire.dashboard";

const $ = (id) => document.getElementById(id);

/// An element: el("td", {className: "x"}, "text", otherElement).
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child ?? "");
  return node;
}

function when(iso) {
  if (!iso) return "never";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

// --- the signed-in session -------------------------------------------------

let session = null; // {token, user, token_id}

function loadSession() {
  try {
    session = JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    session = null;
  }
}

function saveSession(s) {
  session = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

// --- talking to the relay --------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/// The JSON answer (null for 204) of method path with the session's token;
/// throws ApiError with the relay's sentence. A 401 ends the session.
async function api(method, path, body) {
  const headers = {};
  if (session) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, "unreachable", `The relay did not answer (${err.message}); is it running?`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : { code: "http_" + response.status, message: String(text) };
    if (response.status === 401 && session) {
      saveSession(null);
      showSignIn(`Signed out: ${error.message}`);
    }
    throw new ApiError(response.status, error.code, error.message);
  }
  return data;
}

function say(message, kind = "info") {
  const status = $("status");
  status.textContent = message;
  status.className = kind;
  status.hidden = !message;
}

/// Runs an action, showing its error (the relay's sentence) instead of throwing.
async function attempt(action) {
  try {
    return await action();
  } catch (err) {
    if (openMesh && err.code === "mesh_not_found" && session) return meshGone(err);
    say(err.message, "error");
    return undefined;
  }
}

/// A click handler that asks `question` (a string, or a function giving
/// it), then runs `action` as attempt does.
function confirmed(question, action) {
  return () =>
    attempt(async () => {
      if (!confirm(typeof question === "function" ? question() : question)) return;
      await action();
    });
}

/// A button labelled `label` whose click runs confirmed(question, action).
function confirmButton(label, className, question, action) {
  const button = el("button", { type: "button", className, textContent: label });
  button.addEventListener("click", confirmed(question, action));
  return button;
}

const revokeToken = (id) => api("DELETE", `/tokens/${encodeURIComponent(id)}`);

// --- sign in ---------------------------------------------------------------

/// Forgets everything shown of the last user (a sign-out, a sign-in after it).
function resetView() {
  closeMesh();
  meshes = [];
  for (const table of ["meshes", "tokens"]) $(table).tBodies[0].replaceChildren();
  $("dashboard-sign-ins").hidden = true;
  hideNewToken();
  selectTab("meshes", false);
}

async function showSignIn(note = "") {
  resetView();
  $("app").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  say(note, note.startsWith("Signed out") ? "info" : "error");
  const health = await fetch("/health").then((r) => r.json()).catch(() => ({}));
  const web = health.auth === "local" || health.auth === "github";
  $("signin-web").hidden = !web;
  $("signin-note").textContent =
    health.auth === "github"
      ? "This relay signs you in with your GitHub account."
      : health.auth === "local"
        ? "This relay signs in by name (local sign-in): it approves the name you give."
        : "This relay signs nobody in from the browser: use a token from its administrator.";
}

/// Redeems the one-time code the sign-in left in the URL's fragment.
async function redeemCode(code) {
  history.replaceState(null, "", location.pathname); // the code works once: out of the address bar
  const previous = session;
  let answer;
  try {
    answer = await api("POST", "/auth/cli/token", { code });
  } catch (err) {
    if (err.code === "invalid_code") {
      throw new ApiError(err.status, err.code, "the sign-in link was used, expired, or begun in another browser; sign in again.");
    }
    throw err;
  }
  // A sign-in over one made here replaces it: its token goes.
  if (previous && previous.signed_in_here && previous.token_id !== answer.token_id) {
    await revokeToken(previous.token_id).catch(() => {});
  }
  saveSession({ token: answer.token, user: answer.user, token_id: answer.token_id, signed_in_here: true });
}

async function useToken(token) {
  saveSession({ token, user: "", token_id: "" });
  try {
    const me = await api("GET", "/me");
    saveSession({ token, user: me.user, token_id: me.token_id });
  } catch (err) {
    saveSession(null);
    throw err;
  }
}

async function signOut() {
  // A pasted token is the user's own to keep; the dashboard's own sign-in is revoked.
  if (session && session.signed_in_here) {
    try {
      await revokeToken(session.token_id);
    } catch (err) {
      if (err.status !== 401 && err.status !== 404) {
        // Still valid: say so, and stay signed in to try again.
        throw new ApiError(err.status, err.code, `Not signed out: ${err.message} This page's token is still valid; try again.`);
      }
    }
  }
  saveSession(null);
  showSignIn("Signed out.");
}

// --- meshes ------------------------------------------------------------------

let meshes = [];
let openMesh = null;

async function showMeshes() {
  const answer = await api("GET", "/mesh");
  meshes = answer.meshes;
  const body = $("meshes").tBodies[0];
  body.replaceChildren(
    ...meshes.map((m) => {
      const open = el("button", { type: "button", className: "link", textContent: m.name });
      open.addEventListener("click", () => attempt(() => showMesh(m)));
      return el(
        "tr",
        { className: openMesh && openMesh.mesh_id === m.mesh_id ? "selected" : "" },
        el("td", {}, open),
        el("td", {}, el("code", { textContent: m.mesh_id })),
        el("td", { textContent: m.owner }),
        el("td", { textContent: when(m.created_at) }),
      );
    }),
  );
  $("meshes-empty").hidden = meshes.length > 0;
  const select = $("new-token-mesh");
  select.replaceChildren(
    el("option", { value: "", textContent: "every mesh" }),
    ...meshes.map((m) => el("option", { value: m.mesh_id, textContent: `${m.name} only` })),
  );
}

/// Closes the open mesh's view (and its stream).
function closeMesh() {
  stopEvents();
  if (openMesh && location.hash.startsWith("#mesh=")) history.replaceState(null, "", location.pathname);
  openMesh = null;
  $("mesh").hidden = true;
  for (const table of ["agents", "messages"]) $(table).tBodies[0].replaceChildren();
  $("members").replaceChildren();
  $("guide").textContent = "";
  $("guide").hidden = true;
  $("guide-button").textContent = "Show the integration guide";
}

/// The open mesh is gone for this user (deleted, or they were removed): its
/// view closes and the list is read again, with the relay's sentence.
async function meshGone(err) {
  closeMesh();
  say(err.message, "error");
  await showMeshes().catch(() => {});
}

function hideNewToken() {
  $("new-token-value").textContent = "";
  $("new-token").hidden = true;
}

async function showMesh(mesh) {
  openMesh = mesh;
  stopEvents();
  $("mesh").hidden = false;
  $("mesh-title").textContent = mesh.name;
  $("mesh-id").textContent = mesh.mesh_id;
  for (const slot of document.querySelectorAll(".mesh-id-slot")) slot.textContent = mesh.mesh_id;
  $("guide").hidden = true;
  $("messages").tBodies[0].replaceChildren();
  $("member-add").hidden = mesh.owner !== session.user;
  $("mesh-delete").hidden = mesh.owner !== session.user;
  $("mesh-leave").hidden = mesh.owner === session.user;
  history.replaceState(null, "", `#mesh=${encodeURIComponent(mesh.mesh_id)}`); // a reload opens it again
  for (const row of $("meshes").tBodies[0].rows) row.classList.toggle("selected", row.cells[1].textContent === mesh.mesh_id);
  const [details] = await Promise.all([api("GET", `/mesh/${mesh.mesh_id}`), showAgents(), showMembers()]);
  startEvents(mesh, Math.max(0, (details.newest_seq || 0) - RECENT));
}

const agentNames = new Map(); // agent id -> name, for the messages' columns

async function showAgents() {
  const answer = await api("GET", `/mesh/${openMesh.mesh_id}/agents`);
  agentNames.clear();
  for (const a of answer.agents) agentNames.set(a.agent_id, a.name);
  $("agents").tBodies[0].replaceChildren(
    ...answer.agents.map((a) =>
      el(
        "tr",
        {},
        el("td", { textContent: a.name }),
        el("td", {}, el("code", { textContent: a.agent_id })),
        el("td", { textContent: a.harness || "" }),
        el("td", { textContent: a.owner }),
        el("td", {}, el("span", { className: `state ${a.status}`, textContent: a.status + (a.listening ? ", listening" : "") })),
        el("td", { textContent: when(a.last_seen) }),
        el("td", {}, removeAgentButton(a)),
      ),
    ),
  );
  $("agents-empty").hidden = answer.agents.length > 0;
}

/// "Remove" for an agent the user may remove (their own, or any in a mesh they own).
function removeAgentButton(agent) {
  if (agent.owner !== session.user && openMesh.owner !== session.user) return "";
  return confirmButton(
    "Remove",
    "quiet",
    `Remove the agent ${agent.name}? Its waiting polls end; it registers again when next used.`,
    async () => {
      await api("DELETE", `/mesh/${openMesh.mesh_id}/agents/${encodeURIComponent(agent.agent_id)}`);
      say(`The agent ${agent.name} was removed.`);
      await showAgents();
    },
  );
}

async function showMembers() {
  const answer = await api("GET", `/mesh/${openMesh.mesh_id}/members`);
  const owner = openMesh.owner === session.user;
  $("members").replaceChildren(
    ...answer.members.map((m) => {
      const item = el("li", {}, el("span", { textContent: `${m.user} (${m.role})` }));
      if (owner && m.role !== "owner") {
        const question = `Remove ${m.user} from ${openMesh.name}? Their tokens scoped to it are revoked.`;
        const remove = confirmButton("Remove", "quiet", question, async () => {
          await api("DELETE", `/mesh/${openMesh.mesh_id}/members/${encodeURIComponent(m.user)}`);
          say(`${m.user} was removed from ${openMesh.name}.`);
          await showMembers();
        });
        item.append(" ", remove);
      }
      return item;
    }),
  );
}

function addMessage(message) {
  const name = (id, shown) => shown || agentNames.get(id) || id;
  const to = message.to === "all" ? "everyone" : name(message.to, message.to_name);
  const row = el(
    "tr",
    {},
    el("td", { textContent: String(message.seq) }),
    el("td", { textContent: when(message.created_at) }),
    el("td", { textContent: name(message.from, message.from_name) }),
    el("td", { textContent: to }),
    el("td", { textContent: message.priority }),
    el("td", {}, el("div", { className: "content", textContent: message.content })),
  );
  const body = $("messages").tBodies[0];
  body.prepend(row);
  while (body.rows.length > 200) body.deleteRow(-1);
}

// The mesh's event stream (GET /mesh/{mesh}/events), read with fetch so the
// token goes in a header (EventSource cannot send one); reconnects with
// Last-Event-ID, as the stream's retry says.
let events = null; // an AbortController

function stopEvents() {
  if (events) events.abort();
  events = null;
}

const RECENT = 50; // messages shown from before the page opened

/// One Server-Sent Event's block: {type, data: [lines], id} (comments skipped).
function parseEvent(block) {
  const event = { type: "message", data: [], id: null };
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event.type = text;
    else if (field === "data") event.data.push(text);
    else if (field === "id") event.id = text;
  }
  return event;
}

/// Streams `mesh`'s events from after seq `from` (its recent messages, then live).
function startEvents(mesh, from) {
  const controller = new AbortController();
  events = controller;
  let last = String(from);
  const live = $("live");
  const run = async () => {
    while (!controller.signal.aborted) {
      try {
        const headers = { authorization: `Bearer ${session.token}`, accept: "text/event-stream", "last-event-id": last };
        const response = await fetch(`/mesh/${mesh.mesh_id}/events`, { headers, signal: controller.signal });
        if (!response.ok) {
          const error = await response.json().catch(() => ({ error: { message: `HTTP ${response.status}` } }));
          throw new ApiError(response.status, error.error.code, error.error.message);
        }
        live.textContent = "(live)";
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const event = parseEvent(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (event.id !== null) last = event.id;
            if (!event.data.length) continue;
            const data = JSON.parse(event.data.join("\n"));
            if (event.type === "message") addMessage(data);
            else if (event.type === "presence") showAgents().catch(() => {});
            else if (event.type === "error") {
              // Access lost (a revoked token 401, a removed member 403, a deleted mesh 404).
              const code = data.error?.code || "error";
              throw new ApiError(code === "unauthorized" ? 401 : 403, code, data.error?.message || code);
            }
          }
        }
      } catch (err) {
        if (controller.signal.aborted) return;
        live.textContent = "(reconnecting)";
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          live.textContent = "";
          if (err.status === 401) {
            saveSession(null);
            showSignIn(`Signed out: ${err.message}`);
          } else {
            meshGone(err); // deleted, or this user removed from it
          }
          return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  };
  run();
}

// --- tokens ------------------------------------------------------------------

async function showTokens() {
  const answer = await api("GET", "/tokens");
  const meshName = (id) => meshes.find((m) => m.mesh_id === id)?.name || id;
  $("tokens").tBodies[0].replaceChildren(
    ...answer.tokens.map((t) => {
      const here = t.id === session.token_id;
      const question = `Revoke the token "${t.name}"? Whatever uses it stops working at once.`;
      const revoke = confirmButton(here ? "Revoke (signs out)" : "Revoke", "danger", question, async () => {
        await revokeToken(t.id);
        if (here) {
          saveSession(null);
          showSignIn("Signed out: this page's token was revoked.");
          return;
        }
        hideNewToken(); // whichever it was, a secret on screen no longer needs to be
        say(`The token "${t.name}" was revoked.`);
        await showTokens();
      });
      return el(
        "tr",
        {},
        el("td", { textContent: t.name + (here ? " (this page)" : "") }),
        el("td", {}, el("code", { textContent: t.id })),
        el("td", { textContent: t.mesh_id ? meshName(t.mesh_id) : "every mesh" }),
        el("td", { textContent: when(t.created_at) }),
        el("td", { textContent: when(t.last_used_at) }),
        el("td", {}, revoke),
      );
    }),
  );
  // Every browser's dashboard sign-in at once (each is a token named "dashboard").
  const isSignIn = (t) => t.name === "dashboard";
  $("dashboard-sign-ins").hidden = !answer.tokens.some(isSignIn);
  const question =
    'Revoke every dashboard sign-in (the tokens named "dashboard")? Every browser signed in to this ' +
    "dashboard is signed out" +
    (answer.tokens.some((t) => isSignIn(t) && t.id === session.token_id) ? ", this one included." : ".");
  $("dashboard-sign-ins-action").replaceChildren(
    confirmButton("Sign out every dashboard", "danger", question, async () => {
      // The list as it is now: a browser may have signed in since it was drawn.
      const own = session.token_id;
      const signIns = (await api("GET", "/tokens")).tokens.filter(isSignIn);
      const failed = [];
      for (const t of signIns.filter((t) => t.id !== own)) {
        try {
          await revokeToken(t.id);
        } catch (err) {
          if (err.status === 401) throw err; // this page's own token is gone: api() signed it out
          if (err.status !== 404) failed.push(err); // 404: revoked elsewhere meanwhile, as good
        }
      }
      if (failed.length) {
        // This page keeps its own sign-in, to try again.
        await showTokens();
        throw new ApiError(
          failed[0].status,
          failed[0].code,
          `${failed.length} of ${signIns.length} dashboard sign-ins were not revoked (${failed[0].message}); ` +
            "this page is still signed in: try again.",
        );
      }
      if (signIns.some((t) => t.id === own)) {
        // Last, as its revocation may sign the page out meanwhile (through its stream).
        await revokeToken(own).catch((err) => {
          if (err.status !== 401 && err.status !== 404) throw err;
        });
        saveSession(null);
        showSignIn(`Signed out: all ${signIns.length} dashboard sign-ins were revoked.`);
        return;
      }
      hideNewToken();
      say(`All ${signIns.length} dashboard sign-ins were revoked.`);
      await showTokens();
    }),
  );
}

// --- the page ------------------------------------------------------------------

function selectTab(name, load = true) {
  for (const tab of ["meshes", "tokens"]) {
    $(`tab-${tab}`).hidden = tab !== name;
    $(`tab-button-${tab}`).setAttribute("aria-selected", String(tab === name));
  }
  say("");
  if (name !== "tokens") hideNewToken();
  else if (load) attempt(showTokens);
}

async function showApp() {
  resetView();
  $("signin").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("who-user").textContent = session.user;
  const wanted = new URLSearchParams(location.hash.slice(1)).get("mesh"); // the mesh open before a reload
  await showMeshes();
  const mesh = meshes.find((m) => m.mesh_id === wanted) || (meshes.length === 1 ? meshes[0] : null);
  if (mesh) await showMesh(mesh);
}

function wire() {
  $("sign-out").addEventListener("click", () => attempt(signOut));
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      await useToken($("token-input").value.trim());
      $("token-input").value = "";
      say("");
      await showApp();
    });
  });
  $("tab-button-meshes").addEventListener("click", () => selectTab("meshes"));
  $("tab-button-tokens").addEventListener("click", () => selectTab("tokens"));
  $("mesh-create").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const mesh = await api("POST", "/mesh", { name: $("mesh-name").value.trim() });
      $("mesh-name").value = "";
      say(`Created the mesh ${mesh.name} (${mesh.mesh_id}).`);
      await showMeshes();
      await showMesh(mesh);
    });
  });
  $("member-add").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const user = $("member-name").value.trim();
      await api("POST", `/mesh/${openMesh.mesh_id}/members`, { user });
      $("member-name").value = "";
      say(`${openMesh.name} is shared with ${user}.`);
      await showMembers();
    });
  });
  // Deleting or leaving the open mesh: `path` deleted, then the list without it, and `done` said.
  const dropMesh = (path, done) => async () => {
    const mesh = openMesh;
    await api("DELETE", path(mesh));
    closeMesh();
    await showMeshes();
    say(done(mesh));
  };
  $("mesh-delete").addEventListener(
    "click",
    confirmed(
      () => `Delete the mesh ${openMesh.name} (${openMesh.mesh_id}) with its agents and messages? This cannot be undone.`,
      dropMesh((m) => `/mesh/${m.mesh_id}`, (m) => `The mesh ${m.name} was deleted.`),
    ),
  );
  $("mesh-leave").addEventListener(
    "click",
    confirmed(
      () => `Leave the mesh ${openMesh.name}? Your agents in it are removed.`,
      dropMesh((m) => `/mesh/${m.mesh_id}/members/${encodeURIComponent(session.user)}`, (m) => `You left the mesh ${m.name}.`),
    ),
  );
  $("guide-button").addEventListener("click", () =>
    attempt(async () => {
      if (!$("guide").hidden) {
        $("guide").hidden = true;
        $("guide-button").textContent = "Show the integration guide";
        return;
      }
      const response = await fetch(`/mesh/${openMesh.mesh_id}/integrate`, {
        headers: { authorization: `Bearer ${session.token}` },
      });
      if (!response.ok) throw new Error((await response.json()).error.message);
      $("guide").textContent = await response.text();
      $("guide").hidden = false;
      $("guide-button").textContent = "Hide the integration guide";
    }),
  );
  $("token-create").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const body = { name: $("new-token-name").value.trim() };
      if ($("new-token-mesh").value) body.mesh_id = $("new-token-mesh").value;
      const created = await api("POST", "/tokens", body);
      $("new-token-name").value = "";
      $("new-token-value").textContent = created.token;
      $("new-token").hidden = false;
      say("");
      await showTokens();
    });
  });
  $("copy-token").addEventListener("click", () =>
    attempt(async () => {
      try {
        await navigator.clipboard.writeText($("new-token-value").textContent);
        say("Copied.");
      } catch {
        // No clipboard here (plain HTTP off this machine): the text is selected instead.
        getSelection().selectAllChildren($("new-token-value"));
        say("Selected: copy it with Ctrl+C (or Cmd+C).");
      }
    }),
  );
}

/// Signs in with the code in the address's fragment, if there is one.
async function takeCode() {
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  if (!code) return true;
  try {
    await redeemCode(code);
    return true;
  } catch (err) {
    showSignIn(`The sign-in did not finish: ${err.message}`);
    return false;
  }
}

async function start() {
  wire();
  loadSession();
  if (!(await takeCode())) return;
  if (!session) return showSignIn();
  try {
    await showApp();
  } catch (err) {
    if (session) say(err.message, "error");
  }
}

// A sign-in that comes back to a tab already open here.
window.addEventListener("hashchange", async () => {
  if (!location.hash.includes("code=")) return;
  if ((await takeCode()) && session) await attempt(showApp);
});

start();
