// `meshwire login` through a real browser: Debian's Chromium, headless,
// driven by playwright-core (tests/package.json), on the relay's sign-in
// pages and the CLI's loopback callback. What an HTTP client playing the
// browser (cli_e2e) cannot show: that the browser runs the pages under their
// Content-Security-Policy (the form's redirect to the loopback callback is
// checked against form-action), validates the form as written, follows the
// redirects, and shows the page the terminal agrees with.
//
// login opens the browser with the first of xdg-open, open and start on its
// PATH: here an xdg-open that writes down the URL it was given, which the
// test then opens in Chromium, as a desktop's opener would.
//
// Skipped with a message when Debian's chromium is not installed
// (scripts/deps.sh --test installs it) or playwright-core is missing (npm ci).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { githubArgs, launchChromium, newPage, skipBrowser as skip, startStandInGithub } from "./support/browser.mjs";
import { BINARY, childEnv, exitOnSignals, startRelay, tempDir, track, until } from "./support/relay.mjs";

exitOnSignals();

/// A user's machine: a HOME, and a PATH whose xdg-open writes the URL it is
/// given to `opened`.
function userMachine() {
  const home = tempDir("mw-browser-home-");
  const bin = path.join(home, "bin");
  fs.mkdirSync(bin);
  const opened = path.join(home, "opened-url");
  fs.writeFileSync(path.join(bin, "xdg-open"), `#!/bin/sh\nprintf '%s\\n' "$1" > '${opened}'\n`, { mode: 0o755 });
  const env = childEnv({ HOME: home, PATH: `${bin}:${process.env.PATH}` });
  return { home, opened, env };
}

/// `meshwire login --url relayUrl` on `machine`: the child, its stdout and
/// stderr so far, and a promise of its exit code.
function startLogin(machine, relayUrl) {
  const child = track(
    spawn(BINARY, ["login", "--url", relayUrl, "--timeout", "60"], { env: machine.env, cwd: machine.home }),
  );
  const io = { out: "", err: "" };
  child.stdout.on("data", (d) => (io.out += d));
  child.stderr.on("data", (d) => (io.err += d));
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, io, exited };
}

/// The URL login handed to the opener.
async function openedUrl(machine, login) {
  return until(
    `login to open the browser (stdout: ${login.io.out} stderr: ${login.io.err})`,
    () => fs.existsSync(machine.opened) && fs.readFileSync(machine.opened, "utf8").trim(),
    10000,
  );
}

describe("meshwire login in Chromium", { skip }, () => {
  let browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });

  test("--auth local: the sign-in form, its redirect to the terminal, and the saved credentials", async () => {
    const relay = await startRelay(tempDir("mw-browser-relay-"));
    try {
      const machine = userMachine();
      const login = startLogin(machine, relay.url);
      const url = await openedUrl(machine, login);
      assert.match(url, new RegExp(`^${relay.url}/auth/cli\\?port=\\d+&state=[0-9A-Za-z]+$`));
      // The line is flushed before the opener runs, but its pipe may be read after the opener's file.
      const line = /Opening browser to sign in; if it does not open, visit:/;
      await until("login's line before the URL", () => line.test(login.io.out), 5000);
      const port = new URL(url).searchParams.get("port");

      const { page, complaints } = await newPage(browser);
      const shown = await page.goto(url);
      assert.equal(shown.status(), 200);
      assert.equal(await page.title(), "Sign in · meshwire");
      assert.match(await page.locator("h1").innerText(), /Sign in to meshwire/);
      // The field is focused and the browser checks it: an empty name or one
      // with a space is not sent (the relay refuses both as well).
      assert.equal(await page.evaluate(() => document.activeElement?.id), "user");
      const user = page.locator("#user");
      assert.equal(await user.evaluate((el) => el.checkValidity()), false); // required, empty
      await user.fill("alice smith");
      assert.equal(await user.evaluate((el) => el.checkValidity()), false); // the pattern
      await user.fill("alice");
      assert.equal(await user.evaluate((el) => el.checkValidity()), true);

      // Sign in: the relay's 302 goes to the CLI's loopback callback, which
      // the page's form-action allows; the callback's page is the last one.
      await Promise.all([
        page.waitForURL(new RegExp(`^http://127\\.0\\.0\\.1:${port}/callback\\?code=`), { timeout: 15000 }),
        page.locator("button[type=submit]").click(),
      ]);
      assert.equal(await page.title(), "✓ Signed in · meshwire");
      assert.match(await page.locator("body").innerText(), /return to your terminal/);
      assert.deepEqual(complaints, [], "the browser complained");

      assert.equal(await login.exited, 0, login.io.err);
      assert.match(login.io.out, /OK Signed in as alice!/);
      assert.match(login.io.out, /Credentials saved to ~\/\.meshwire\/credentials\.json/);
      const creds = path.join(machine.home, ".meshwire/credentials.json");
      assert.equal(fs.statSync(creds).mode & 0o777, 0o600);
      const saved = JSON.parse(fs.readFileSync(creds, "utf8"));
      assert.equal(saved.user, "alice");
      assert.equal(saved.url, relay.url);
      // The token works: the relay knows who holds it.
      const me = await fetch(`${relay.url}/me`, { headers: { authorization: `Bearer ${saved.token}` } });
      assert.equal(me.status, 200);
      assert.equal((await me.json()).user, "alice");

      await page.context().close();
    } finally {
      await relay.stop();
    }
  });

  test("--auth local: a name the relay refuses shows its error page, and login goes on waiting", async () => {
    const relay = await startRelay(tempDir("mw-browser-relay-"));
    try {
      const machine = userMachine();
      const login = startLogin(machine, relay.url);
      const url = await openedUrl(machine, login);
      const { page } = await newPage(browser);
      await page.goto(url);
      // Past the browser's own check (a user could edit the page): the relay says why.
      await page.locator("#user").evaluate((el) => el.removeAttribute("pattern"));
      await page.locator("#user").fill("not/a name");
      const [answer] = await Promise.all([
        page.waitForResponse((r) => r.url() === `${relay.url}/auth/cli` && r.request().method() === "POST"),
        page.locator("button[type=submit]").click(),
      ]);
      assert.equal(answer.status(), 400);
      await page.waitForLoadState();
      assert.equal(await page.title(), "Sign-in failed · meshwire");
      assert.match(await page.locator(".error").innerText(), /A user name is 1-64 of/);
      assert.equal(login.child.exitCode, null, "login stopped on a refused form");
      // The page says to run login again; a second try in the same tab works.
      await page.goto(url);
      await page.locator("#user").fill("bob");
      await Promise.all([page.waitForURL(/\/callback\?code=/), page.locator("button[type=submit]").click()]);
      assert.equal(await login.exited, 0, login.io.err);
      assert.match(login.io.out, /OK Signed in as bob!/);
      await page.context().close();
    } finally {
      await relay.stop();
    }
  });

  test("--auth github: the browser goes to GitHub (a stand-in here) and back through the relay to the terminal", async () => {
    const { github, url: gh } = await startStandInGithub();
    const relay = await startRelay(tempDir("mw-browser-relay-"), { args: githubArgs(gh) });
    try {
      const machine = userMachine();
      const login = startLogin(machine, relay.url);
      const url = await openedUrl(machine, login);
      const { page, complaints } = await newPage(browser);
      await page.goto(url); // relay -> GitHub -> relay's callback -> the CLI's loopback
      assert.match(page.url(), /^http:\/\/127\.0\.0\.1:\d+\/callback\?code=/);
      assert.match(await page.locator("body").innerText(), /Signed in/);
      assert.deepEqual(complaints, [], "the browser complained");
      assert.equal(await login.exited, 0, login.io.err);
      assert.match(login.io.out, /OK Signed in as octocat!/);
      await page.context().close();
    } finally {
      await relay.stop();
      github.close();
    }
  });
});
