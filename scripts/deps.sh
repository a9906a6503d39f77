#!/usr/bin/env bash
# Installs what meshwire needs from Debian 12's packages: the build toolchain
# and libraries, and with --test what the tests and benchmarks use too, and
# the Node test clients from npm (npm ci in tests/). Runs apt-get as root, or
# through sudo.
set -euo pipefail

build_pkgs=(
  cmake ninja-build g++ pkg-config
  nlohmann-json3-dev libcpp-httplib-dev libssl-dev libspdlog-dev libsqlite3-dev libcli11-dev
  libboost1.81-dev
  libyaml-cpp-dev libtomlplusplus-dev
  libpq-dev
  libjemalloc-dev  # the meshwire executable's allocator (CMake option MESHWIRE_JEMALLOC)
  patchelf  # the npm package's copy of the binary loads the libraries bundled with it
)
test_pkgs=(doctest-dev redis-server redis-tools wrk dpkg-dev file systemd curl openssl postgresql
  chromium)  # the pages in a real browser: sign-in, dashboard (tests/js/*browser*, dashboard)

pkgs=("${build_pkgs[@]}")
case "${1:-}" in
  --test) pkgs+=("${test_pkgs[@]}") ;;
  "") ;;
  *) echo "usage: scripts/deps.sh [--test]" >&2; exit 2 ;;
esac
# doctest is needed to configure with tests on (the default).
pkgs+=(doctest-dev)

missing=()
for p in "${pkgs[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"ok installed"* ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "deps: all ${#pkgs[@]} packages already installed" >&2
else
  sudo=""
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || { echo "deps: run as root or install sudo" >&2; exit 1; }
    sudo=sudo
  fi
  echo "deps: installing ${missing[*]}" >&2
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The Node tests' clients (the MCP SDK, the Inspector, ...), pinned in
# tests/package-lock.json.
if [[ ${1:-} == --test ]]; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  if ! command -v npm >/dev/null; then
    echo "deps: npm not found: the Node tests (js_*) need Node.js 20 and npm" >&2
  elif [[ ! -d $root/tests/node_modules || $root/tests/package-lock.json -nt $root/tests/node_modules ]]; then
    echo "deps: npm ci in tests/" >&2
    (cd "$root/tests" && npm ci --no-audit --no-fund)
  else
    echo "deps: tests/node_modules is current" >&2
  fi
fi
