// Shared by the browser tests (login_browser, dashboard): Debian's Chromium,
// headless, driven by playwright-core (tests/package.json).

import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";

export const CHROMIUM = process.env.MESHWIRE_CHROMIUM || "/usr/bin/chromium";

// Why the browser tests cannot run here (false when they can): no Chromium
// (scripts/deps.sh --test installs it) or no playwright-core (npm ci).
export let skipBrowser = false;
let playwright = null;
if (!fs.existsSync(CHROMIUM)) {
  skipBrowser = `no Chromium at ${CHROMIUM}: install Debian's chromium (scripts/deps.sh --test) or set MESHWIRE_CHROMIUM`;
} else {
  try {
    playwright = await import("playwright-core");
  } catch (err) {
    skipBrowser = `playwright-core is not installed: run \`npm ci\` in tests/ (${err.message})`;
  }
}
if (skipBrowser) console.log(`# skipped: ${skipBrowser}`);

// A headless Chromium (as root, as in CI, it runs only without its sandbox).
export function launchChromium() {
  return playwright.chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
}

// A page in a context of its own, recording what the browser complained of:
// console errors and warnings (CSP violations among them), script errors,
// failed loads. `accept` answers confirm() dialogs.
export async function newPage(browser, { accept = true } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const complaints = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") complaints.push(`${m.type()}: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => complaints.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => {
    // A stream the page itself ends (leaving a mesh's events) is no failure.
    if (r.failure()?.errorText !== "net::ERR_ABORTED") complaints.push(`failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on("dialog", (d) => (accept ? d.accept() : d.dismiss()));
  return { page, complaints };
}

// A stand-in for GitHub's three endpoints that the relay's --auth github uses
// (authorize, which approves at once; the token exchange for client "cid"
// with secret "secret"; /user, which says "octocat"): {github, url}.
export async function startStandInGithub() {
  const github = http.createServer((req, res) => {
    const u = new URL(req.url, "http://github.invalid");
    if (req.method === "GET" && u.pathname === "/login/oauth/authorize") {
      assert.equal(u.searchParams.get("client_id"), "cid");
      res.writeHead(302, {
        location: `${u.searchParams.get("redirect_uri")}?code=gh-code&state=${u.searchParams.get("state")}`,
      });
      res.end();
    } else if (req.method === "POST" && u.pathname === "/login/oauth/access_token") {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        const form = new URLSearchParams(body);
        const ok = form.get("code") === "gh-code" && form.get("client_secret") === "secret";
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(ok ? { access_token: "gho_test", token_type: "bearer" } : { error: "bad_code" }));
      });
    } else if (req.method === "GET" && u.pathname === "/user" && req.headers.authorization === "Bearer gho_test") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ login: "octocat", id: 1 }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => github.listen(0, "127.0.0.1", resolve));
  return { github, url: `http://127.0.0.1:${github.address().port}` };
}

// The relay's arguments for --auth github against the stand-in at `url`.
export const githubArgs = (url) => [
  "--auth", "github", "--github-client-id", "cid", "--github-client-secret", "secret", "--github-url", url,
  "--github-api-url", url,
];
