// The relay's dashboard (/dashboard) in a real browser: Debian's Chromium,
// headless, driven by playwright-core. A user opens the relay's URL, signs in
// (local sign-in, or a pasted token on an --auth token relay), creates a
// mesh, watches agents register and messages arrive live, shares the mesh,
// makes a token, revokes it, and signs out; each step is checked against the
// REST API too, and the browser must complain of nothing (a CSP violation or
// a script error is a console error).
//
// Skipped with a message when Debian's chromium or playwright-core is missing.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { githubArgs, launchChromium, newPage, skipBrowser as skip, startStandInGithub } from "./support/browser.mjs";
import { createToken, exitOnSignals, rest, startRelay, tempDir } from "./support/relay.mjs";

exitOnSignals();

/// GET path with token: the status only.
async function statusOf(url, token, path = "/me") {
  const r = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
  await r.arrayBuffer();
  return r.status;
}

/// The texts of a table's body cells, row by row.
async function rows(page, table) {
  return page.locator(`#${table} tbody tr`).evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.innerText)));
}

describe("the dashboard in Chromium", { skip }, () => {
  let browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  test("sign in by name, a mesh, live agents and messages, members, tokens, sign out", async () => {
    const storage = tempDir("mw-dash-");
    const relay = await startRelay(storage);
    const { page, complaints } = await newPage(browser);
    try {
      // The relay's own URL, opened in a browser, is the dashboard.
      await page.goto(relay.url + "/");
      assert.equal(new URL(page.url()).pathname, "/dashboard");
      await page.locator("#signin-note", { hasText: "local sign-in" }).waitFor();

      // Sign in: the relay's name form, then back with a one-time code in the fragment.
      await page.locator("#signin-link").click();
      await page.locator("#user").fill("alice");
      await page.locator("button[type=submit]").click();
      await page.locator("#app").waitFor();
      assert.equal(await page.locator("#who-user").innerText(), "alice");
      assert.equal(new URL(page.url()).hash, "", "the code stays in the address bar");
      const pageToken = await page.evaluate(() => JSON.parse(sessionStorage.getItem("meshwire.dashboard")).token);
      assert.equal(await statusOf(relay.url, pageToken), 200);
      await page.locator("#meshes-empty").waitFor();

      // A mesh made here is the user's mesh over the API, and opens.
      await page.locator("#mesh-name").fill("demo");
      await page.locator("#mesh-create button").click();
      await page.locator("#mesh").waitFor();
      const cli = createToken(storage, "alice");
      const listed = (await rest(relay.url, cli, "GET", "/mesh")).meshes;
      assert.deepEqual(listed.map((m) => m.name), ["demo"]);
      const mesh = listed[0].mesh_id;
      assert.equal(await page.locator("#mesh-id").innerText(), mesh);
      assert.deepEqual((await rows(page, "meshes")).map((r) => r.slice(0, 3)), [["demo", mesh, "alice"]]);
      await page.locator("#agents-empty").waitFor();
      await page.locator("#live").getByText("(live)").waitFor();

      // Agents registering and a message sent elsewhere appear without a reload.
      const a = await rest(relay.url, cli, "POST", `/mesh/${mesh}/agents`, { name: "agent-a", harness: "claude-code" });
      await rest(relay.url, cli, "POST", `/mesh/${mesh}/agents`, { name: "agent-b", harness: "cursor" });
      await page.locator("#agents tbody tr", { hasText: "agent-b" }).waitFor();
      const agents = await rows(page, "agents");
      assert.deepEqual(agents.map((r) => r.slice(0, 4)).sort(), [
        ["agent-a", a.agent_id, "claude-code", "alice"],
        ["agent-b", (await rest(relay.url, cli, "GET", `/mesh/${mesh}/agents`)).agents.find((x) => x.name === "agent-b").agent_id, "cursor", "alice"],
      ]);
      const hostile = `<img src=x onerror="document.title='owned'"> hello **b**`;
      await rest(relay.url, cli, "POST", `/mesh/${mesh}/messages`, { from: "agent-a", to: "agent-b", content: hostile, priority: "high" });
      await page.locator("#messages tbody tr").first().waitFor();
      const [message] = await rows(page, "messages");
      assert.equal(message[0], "1");
      assert.deepEqual(message.slice(2), ["agent-a", "agent-b", "high", hostile]); // text, never HTML
      assert.notEqual(await page.title(), "owned");
      assert.equal(await page.locator("#messages img").count(), 0);

      // The integration guide of the mesh, as GET /mesh/{mesh}/integrate has it.
      await page.locator("#guide-button").click();
      await page.locator("#guide").waitFor();
      assert.match(await page.locator("#guide").innerText(), new RegExp(mesh));

      // A reload keeps the session and the open mesh.
      await page.reload();
      await page.locator("#mesh-id", { hasText: mesh }).waitFor();
      await page.locator("#live").getByText("(live)").waitFor();

      // Remove an agent (confirm() accepted): gone from the API's list too.
      await page.locator("#agents tbody tr", { hasText: "agent-b" }).getByRole("button", { name: "Remove" }).click();
      await page.locator("#agents tbody tr", { hasText: "agent-b" }).waitFor({ state: "detached" });
      const left = (await rest(relay.url, cli, "GET", `/mesh/${mesh}/agents`)).agents.map((x) => x.name);
      assert.deepEqual(left, ["agent-a"]);

      // Share the mesh with bob; bob's token then sees it.
      await page.locator("#member-name").fill("bob");
      await page.locator("#member-add button").click();
      await page.locator("#members li", { hasText: "bob (member)" }).waitFor();
      const bob = createToken(storage, "bob");
      assert.equal(await statusOf(relay.url, bob, `/mesh/${mesh}`), 200);

      // Tokens: this page's own is marked; a new one is shown once, works, and is revoked here.
      await page.locator("#tab-button-tokens").click();
      await page.locator("#tokens tbody tr", { hasText: "dashboard (this page)" }).waitFor();
      assert.equal(await page.locator("#tab-meshes").isVisible(), false);
      await page.locator("#new-token-name").fill("ci");
      await page.locator("#new-token-mesh").selectOption(mesh);
      await page.locator("#token-create button").click();
      await page.locator("#new-token").waitFor();
      const made = await page.locator("#new-token-value").innerText();
      assert.match(made, /^mw_[0-9A-Za-z]{32,}$/);
      assert.equal(await statusOf(relay.url, made, `/mesh/${mesh}`), 200);
      const ciRow = page.locator("#tokens tbody tr", { hasText: "ci" }).filter({ hasText: "demo" });
      await ciRow.waitFor();
      await ciRow.getByRole("button", { name: "Revoke" }).click(); // confirm() accepted
      await page.locator("#status", { hasText: 'The token "ci" was revoked.' }).waitFor();
      assert.equal(await statusOf(relay.url, made), 401);
      await ciRow.waitFor({ state: "detached" }); // the list, read again, has it no more

      // A request the relay refuses shows its sentence, and changes nothing.
      await page.locator("#tab-button-meshes").click();
      await page.locator("#member-name").fill("not a user!");
      await page.locator("#member-add button").click();
      await page.locator("#status.error").waitFor();
      assert.match(await page.locator("#status").innerText(), /The user name must be 1-64 characters/);
      assert.equal((await rest(relay.url, cli, "GET", `/mesh/${mesh}/members`)).members.length, 2);

      // Sign out: the page's token is revoked and the sign-in shows again.
      await page.locator("#sign-out").click();
      await page.locator("#signin").waitFor();
      assert.equal(await statusOf(relay.url, pageToken), 401);
      assert.equal(await page.evaluate(() => sessionStorage.getItem("meshwire.dashboard")), null);
      assert.equal(await statusOf(relay.url, cli), 200, "the user's other tokens stay");

      // Another user in the same tab sees nothing of alice's.
      await page.locator("#token-input").fill(bob);
      await page.locator("#token-form button").click();
      await page.locator("#who-user", { hasText: "bob" }).waitFor();
      await page.locator("#meshes tbody tr", { hasText: "demo" }).waitFor(); // shared with him
      await page.locator("#mesh-id", { hasText: mesh }).waitFor(); // his only mesh opens, as his
      assert.equal(await page.locator("#member-add").isVisible(), false, "alice's owner form is gone");
      await page.locator("#tab-button-tokens").click();
      await page.locator("#tokens tbody tr").first().waitFor();
      assert.equal((await rows(page, "tokens")).some((r) => r[0].startsWith("ci") || r[0].startsWith("dashboard")), false);
      // Bob, a member, may leave (no Delete for him); then demo is not his any more.
      await page.locator("#tab-button-meshes").click();
      assert.equal(await page.locator("#mesh-delete").isVisible(), false);
      await page.locator("#mesh-leave").click();
      await page.locator("#status", { hasText: "You left the mesh demo." }).waitFor();
      assert.equal(await page.locator("#mesh").isVisible(), false);
      const members = (await rest(relay.url, cli, "GET", `/mesh/${mesh}/members`)).members.map((m) => m.user);
      assert.deepEqual(members, ["alice"]);
      assert.equal(await page.locator("#new-token").isVisible(), false);
      assert.equal(await page.locator("#new-token-value").innerText(), "");
      // Nothing but the one refusal provoked above.
      const provoked = /status of 400 .*\/members\)$/;
      assert.deepEqual(complaints.filter((c) => !provoked.test(c)), [], "the browser complained");
    } finally {
      await page.context().close();
      await relay.stop();
    }
  });

  test("an --auth token relay: no sign-in, a pasted token; a token revoked elsewhere signs the page out", async () => {
    const storage = tempDir("mw-dash-");
    const relay = await startRelay(storage, { args: ["--auth", "token"] });
    const { page, complaints } = await newPage(browser);
    try {
      const token = createToken(storage, "carol");
      const made = await rest(relay.url, token, "POST", "/mesh", { name: "ops" });
      await rest(relay.url, token, "POST", `/mesh/${made.mesh_id}/agents`, { name: "ops-agent" });
      await rest(relay.url, token, "POST", `/mesh/${made.mesh_id}/messages`, { from: "ops-agent", content: "sent before" });
      await page.goto(relay.url + "/dashboard");
      await page.locator("#signin-note", { hasText: "signs nobody in from the browser" }).waitFor();
      assert.equal(await page.locator("#signin-link").isVisible(), false);
      const web = await fetch(relay.url + "/auth/web");
      assert.equal(web.status, 404);
      assert.match(await web.text(), /use a token its administrator made/);

      // A wrong token is refused with the relay's sentence, and nothing is kept.
      await page.locator("#token-input").fill("mw_" + "x".repeat(40));
      await page.locator("#token-form button").click();
      await page.locator("#status.error").waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem("meshwire.dashboard")), null);

      await page.locator("#token-input").fill(token);
      await page.locator("#token-form button").click();
      await page.locator("#app").waitFor();
      assert.equal(await page.locator("#who-user").innerText(), "carol");
      // The only mesh opens by itself, and its stream is live.
      await page.locator("#mesh-id", { hasText: made.mesh_id }).waitFor();
      await page.locator("#live").getByText("(live)").waitFor();
      // What was sent before the page opened is there (the last 50 messages).
      await page.locator("#messages tbody tr", { hasText: "sent before" }).waitFor();

      // Revoked from elsewhere (the CLI): the stream's error ends the session here.
      const me = await rest(relay.url, token, "GET", "/me");
      await rest(relay.url, createToken(storage, "carol"), "DELETE", `/tokens/${me.token_id}`);
      await page.locator("#signin").waitFor({ timeout: 10000 });
      assert.match(await page.locator("#status").innerText(), /Signed out/);
      // A pasted token is the user's to revoke: signing out of one does not (it is gone already here).
      assert.deepEqual(complaints.filter((c) => !/status of 401/.test(c)), [], "the browser complained");
    } finally {
      await page.context().close();
      await relay.stop();
    }
  });

  test("a mesh deleted elsewhere closes on the page, which lists what is left", async () => {
    const storage = tempDir("mw-dash-");
    const relay = await startRelay(storage, { args: ["--auth", "token"] });
    const { page } = await newPage(browser);
    try {
      const token = createToken(storage, "dan");
      await rest(relay.url, token, "POST", "/mesh", { name: "keep" });
      const gone = await rest(relay.url, token, "POST", "/mesh", { name: "gone" });
      await page.goto(relay.url + "/dashboard");
      await page.locator("#token-input").fill(token);
      await page.locator("#token-form button").click();
      await page.locator("button.link", { hasText: "gone" }).click();
      await page.locator("#live").getByText("(live)").waitFor();
      await rest(relay.url, token, "DELETE", `/mesh/${gone.mesh_id}`);
      await page.locator("#mesh").waitFor({ state: "hidden" });
      await page.locator("#status.error").waitFor();
      await page.locator("#meshes tbody tr", { hasText: "gone" }).waitFor({ state: "detached" });
      assert.deepEqual((await rows(page, "meshes")).map((r) => r[0]), ["keep"]);
      // Its owner deletes the other one here.
      await page.locator("button.link", { hasText: "keep" }).click();
      await page.locator("#mesh-delete").click();
      await page.locator("#status", { hasText: "The mesh keep was deleted." }).waitFor();
      assert.deepEqual((await rest(relay.url, token, "GET", "/mesh")).meshes, []);
      await page.locator("#meshes-empty").waitFor();
    } finally {
      await page.context().close();
      await relay.stop();
    }
  });

  test("a sign-in code made in another browser signs nobody in here (login CSRF)", async () => {
    const relay = await startRelay(tempDir("mw-dash-"));
    const { page } = await newPage(browser);
    try {
      // The attacker's own sign-in, from their own "browser": a code bound to their cookie.
      const form = await fetch(relay.url + "/auth/web");
      const cookie = form.headers.get("set-cookie").split(";")[0];
      const post = (headers) =>
        fetch(relay.url + "/auth/web", {
          method: "POST",
          redirect: "manual",
          headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
          body: "user=mallory",
        });
      assert.equal((await post({})).status, 400, "no sign-in cookie, no code");
      const approved = await post({ cookie });
      assert.equal(approved.status, 302);
      const planted = approved.headers.get("location"); // /dashboard#code=...
      // The victim opens the planted link: refused, nothing kept; the code is spent.
      await page.goto(relay.url + planted);
      await page.locator("#status", { hasText: "begun in another browser" }).waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem("meshwire.dashboard")), null);
      assert.equal(await page.locator("#app").isVisible(), false);
    } finally {
      await page.context().close();
      await relay.stop();
    }
  });

  test("sign out every dashboard: both browsers' sign-ins are revoked, this one last; other tokens stay", async () => {
    const storage = tempDir("mw-dash-");
    const relay = await startRelay(storage);
    const cli = createToken(storage, "alice");
    const mesh = (await rest(relay.url, cli, "POST", "/mesh", { name: "demo" })).mesh_id;
    const signIn = async () => {
      const opened = await newPage(browser);
      await opened.page.goto(relay.url + "/dashboard");
      await opened.page.locator("#signin-link").click();
      await opened.page.locator("#user").fill("alice");
      await opened.page.locator("button[type=submit]").click();
      await opened.page.locator("#live").getByText("(live)").waitFor(); // demo, the only mesh, opens
      opened.token = await opened.page.evaluate(() => JSON.parse(sessionStorage.getItem("meshwire.dashboard")).token);
      return opened;
    };
    const here = await signIn();
    let there;
    try {
      await here.page.locator("#tab-button-tokens").click();
      await here.page.locator("#tokens tbody tr").nth(1).waitFor(); // the CLI's and this page's
      // Another browser (a context of its own) signs in after the list was drawn: it goes too.
      there = await signIn();
      assert.equal(await statusOf(relay.url, here.token), 200);
      assert.equal(await statusOf(relay.url, there.token), 200);
      await here.page.getByRole("button", { name: "Sign out every dashboard" }).click(); // confirm() accepted
      await here.page.locator("#signin").waitFor();
      // (the page's own stream may say "Signed out" first: the action's sentence comes last)
      await here.page.locator("#status", { hasText: "all 2 dashboard sign-ins were revoked" }).waitFor();
      assert.equal(await statusOf(relay.url, here.token), 401);
      assert.equal(await statusOf(relay.url, there.token), 401);
      assert.equal(await statusOf(relay.url, cli), 200, "a token not named dashboard stays");
      const left = (await rest(relay.url, cli, "GET", "/tokens")).tokens.map((t) => t.name);
      assert.deepEqual(left.filter((n) => n === "dashboard"), []);
      // The other browser's open stream ends with the revocation: signed out there too.
      await there.page.locator("#signin").waitFor({ timeout: 10000 });
      assert.equal(await there.page.evaluate(() => sessionStorage.getItem("meshwire.dashboard")), null);
      for (const { complaints } of [here, there]) {
        assert.deepEqual(complaints.filter((c) => !/status of 401/.test(c)), [], "the browser complained");
      }
    } finally {
      await here.page.context().close();
      await there?.page.context().close();
      await relay.stop();
    }
  });

  test("--auth github: the dashboard's sign-in goes to GitHub (a stand-in) and back, signed in", async () => {
    const { github, url: gh } = await startStandInGithub();
    const relay = await startRelay(tempDir("mw-dash-"), { args: githubArgs(gh) });
    const { page, complaints } = await newPage(browser);
    try {
      await page.goto(relay.url + "/dashboard");
      await page.locator("#signin-note", { hasText: "GitHub" }).waitFor();
      await page.locator("#signin-link").click(); // relay -> GitHub -> relay -> /dashboard#code=...
      await page.locator("#app").waitFor();
      assert.equal(await page.locator("#who-user").innerText(), "octocat");
      assert.equal(new URL(page.url()).hash, "");
      // The code was spent: opening the same address again does not sign in twice.
      const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem("meshwire.dashboard")).token);
      assert.equal((await rest(relay.url, token, "GET", "/tokens")).tokens.length, 1);
      assert.deepEqual(complaints, [], "the browser complained");
    } finally {
      await page.context().close();
      await relay.stop();
      github.close();
    }
  });
});
