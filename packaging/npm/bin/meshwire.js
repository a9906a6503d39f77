#!/usr/bin/env node
// The `meshwire` command of the npm package: finds the native meshwire binary
// for this platform and runs it with the same arguments.
//
// Where the binary is looked for, first found wins:
//   1. the optional-dependency package @meshwire/cli-<platform>-<arch>
//      (its bin/meshwire), the layout of one package per platform;
//   2. native/<platform>-<arch>/meshwire inside this package.
// None: one sentence on stderr and exit 1.
//
// The child inherits stdin, stdout and stderr (so `npx meshwire mcp --mesh ID`
// is an MCP stdio server: nothing here reads or writes them), receives
// SIGINT, SIGTERM and SIGHUP sent to this process, and gets
// MESHWIRE_LAUNCHER="npx meshwire" unless it is set (so `meshwire init`
// writes MCP entries that start meshwire through npx). This process exits
// with the child's exit code, or dies of the signal the child died of.
//
// Plain Node (18+) built-ins, no dependencies.

import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TARGET = `${process.platform}-${process.arch}`;
const EXE = process.platform === "win32" ? "meshwire.exe" : "meshwire";
const PLATFORM_PACKAGE = `@meshwire/cli-${TARGET}`;
const BUNDLED = path.join(PACKAGE_DIR, "native", TARGET, EXE);
const FORWARDED_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"];

// The path of bin/<exe> in the platform package, or undefined when it is not installed.
function fromPlatformPackage() {
  const require = createRequire(import.meta.url);
  for (const [request, toBinary] of [
    [`${PLATFORM_PACKAGE}/bin/${EXE}`, (resolved) => resolved],
    // a package whose "exports" hides bin/: find it through its package.json
    [`${PLATFORM_PACKAGE}/package.json`, (resolved) => path.join(path.dirname(resolved), "bin", EXE)],
  ]) {
    try {
      const binary = toBinary(require.resolve(request));
      if (fs.statSync(binary).isFile()) return binary;
    } catch {
      // not installed, or not exported: try the next way
    }
  }
  return undefined;
}

function bundled() {
  try {
    return fs.statSync(BUNDLED).isFile() ? BUNDLED : undefined;
  } catch {
    return undefined;
  }
}

// Where the README with the build-from-source steps is: this package's
// repository or homepage when package.json names one.
function sourceReadme() {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, "package.json"), "utf8"));
    const repo = typeof pkg.repository === "string" ? pkg.repository : pkg.repository?.url;
    const url = (repo || pkg.homepage || "").replace(/^git\+/, "").replace(/\.git$/, "");
    if (/^https?:\/\//.test(url)) return url.includes("#") ? url : `${url}#readme`;
  } catch {
    // no package.json to read: the generic pointer below
  }
  return "the README of the meshwire source repository";
}

// npm pack and some unpackers drop the executable bit: restore it once.
function ensureExecutable(binary) {
  if (process.platform === "win32") return;
  try {
    fs.accessSync(binary, fs.constants.X_OK);
  } catch {
    try {
      fs.chmodSync(binary, 0o755);
    } catch {
      // read-only install: spawn will say so
    }
  }
}

const binary = fromPlatformPackage() ?? bundled();
if (!binary) {
  process.stderr.write(
    `meshwire: there is no prebuilt meshwire binary for ${process.platform} ${process.arch} ` +
      `(looked for the package ${PLATFORM_PACKAGE} and ${BUNDLED}); ` +
      `build meshwire from source as ${sourceReadme()} explains, and run that binary instead.\n`,
  );
  process.exit(1);
}
ensureExecutable(binary);

const env = { ...process.env };
if (!env.MESHWIRE_LAUNCHER) env.MESHWIRE_LAUNCHER = "npx meshwire";

const child = spawn(binary, process.argv.slice(2), { stdio: "inherit", env });

// Every signal is forwarded, also a SIGINT that the terminal's Ctrl+C sent
// to the child as well (the whole foreground group gets it): `meshwire
// server` takes a signal from its parent right after the terminal's same one
// as that one, not as a second Ctrl+C. (Not forwarding it would lose a SIGINT
// sent to this process alone.)
const forward = {};
for (const signal of FORWARDED_SIGNALS) {
  forward[signal] = () => {
    try {
      child.kill(signal);
    } catch {
      // the child is already gone
    }
  };
  process.on(signal, forward[signal]);
}

child.on("error", (err) => {
  process.stderr.write(`meshwire: cannot start ${binary} (${err.message}); reinstall meshwire or build it from source.\n`);
  process.exit(1);
});

child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal so that our parent sees what the child did.
    for (const s of FORWARDED_SIGNALS) process.removeListener(s, forward[s]);
    try {
      process.kill(process.pid, signal);
    } catch {
      // an unknown signal: fall through to the exit code below
    }
    // Signals Node ignores (SIGPIPE) or that need a moment to arrive.
    setTimeout(() => process.exit(128 + (os.constants.signals[signal] ?? 0)), 100);
    return;
  }
  process.exit(code ?? 1);
});
