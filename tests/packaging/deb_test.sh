#!/usr/bin/env bash
# The Debian package, as an administrator uses it: build it with CPack,
# `dpkg -i`, `meshwire --version`, `systemd-analyze verify` on the unit, the
# relay started the way the unit starts it answers /health, `dpkg -r` and
# `dpkg -P` remove it cleanly. It changes the system, so it runs only with
# MESHWIRE_TEST_DEB=1 (CI) and as root; otherwise it is skipped (77).
# Usage: deb_test.sh BUILD_DIR VERSION
set -euo pipefail
build=$1 version=$2
if [[ ${MESHWIRE_TEST_DEB:-} != 1 ]]; then
  echo "skipped: set MESHWIRE_TEST_DEB=1 to install and remove the package on this machine"
  exit 77
fi
[[ $(id -u) == 0 ]] || { echo "skipped: needs root (dpkg -i)"; exit 77; }

work=$(mktemp -d)
relay_pid=
cleanup() {
  [[ -n $relay_pid ]] && kill "$relay_pid" 2>/dev/null || true
  dpkg -P meshwire >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== cpack"
cpack --config "$build/CPackConfig.cmake" -B "$work" >/dev/null
deb=$(ls "$work"/meshwire_"$version"_*.deb)
# Read the field whole before matching: `dpkg-deb | grep -q` under pipefail
# fails whenever grep exits first and dpkg-deb gets SIGPIPE.
depends=$(dpkg-deb -f "$deb" Depends)
[[ $depends == *libsqlite3* && $depends == *libcpp-httplib* ]] ||
  { dpkg-deb -f "$deb"; fail "no Depends from the shared libraries"; }

echo "== dpkg -i"
dpkg -i "$deb" >/dev/null
[[ $(/usr/bin/meshwire --version) == "$version" ]] || fail "meshwire --version is not $version"
unit=/usr/lib/systemd/system/meshwire.service
[[ -f $unit ]] || fail "no unit at $unit"
[[ -f /etc/default/meshwire ]] || fail "no /etc/default/meshwire"
grep -q "MIT License" /usr/share/doc/meshwire/copyright || fail "no license in /usr/share/doc/meshwire/copyright"

echo "== postinst: an upgrade restarts a running service, a first install starts nothing"
# Where systemd runs (/run/systemd/system), with a stand-in systemctl that
# records its calls: in a mount namespace of its own, so this machine's
# /run is not touched.
postinst=/var/lib/dpkg/info/meshwire.postinst
mkdir -p "$work/bin"
printf '#!/bin/sh\necho "$*" >> %s/calls\n' "$work" >"$work/bin/systemctl"
chmod +x "$work/bin/systemctl"
if unshare -m true 2>/dev/null; then
  unshare -m sh -c "mount -t tmpfs none /run && mkdir -p /run/systemd/system &&
    PATH=$work/bin:\$PATH sh $postinst configure &&
    echo --- >> $work/calls && PATH=$work/bin:\$PATH sh $postinst configure 0.0.1"
  [[ $(cat "$work/calls") == $'daemon-reload\n---\ndaemon-reload\ntry-restart meshwire.service' ]] ||
    { cat "$work/calls"; fail "postinst's systemctl calls"; }
else
  echo "not checked: this machine cannot make a mount namespace (unshare -m)"
fi

echo "== systemd-analyze verify"
if ! out=$(systemd-analyze verify "$unit" 2>&1); then
  echo "$out"
  fail "systemd-analyze verify"
fi
[[ -z $out ]] || { echo "$out"; fail "systemd-analyze verify printed warnings"; }
# The unit's address-family sandbox: IP and Unix sockets only. (No systemd runs the unit here.)
grep -Eq '^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$' "$unit" ||
  fail "RestrictAddressFamilies must be AF_INET AF_INET6 AF_UNIX"

echo "== the relay, started as the unit starts it"
# The unit's Environment= lines, then its EnvironmentFile, then ExecStart as
# an unprivileged user in the state directory (DynamicUser + StateDirectory).
if curl -sf -o /dev/null http://127.0.0.1:7420/health 2>/dev/null; then
  fail "port 7420 already answers: stop the relay running there first"
fi
state=/var/lib/meshwire
mkdir -p "$state"
chown nobody:nogroup "$state"
chmod 0700 "$state"
env_lines=$(sed -n 's/^Environment="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$unit")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
(
  set -a
  while IFS= read -r kv; do export "${kv?}"; done <<<"$env_lines"
  # shellcheck disable=SC1091
  . /etc/default/meshwire
  set +a
  # ExecStart expands $MESHWIRE_ARGS into words, as systemd does.
  # shellcheck disable=SC2086
  exec setpriv --reuid=nobody --regid=nogroup --clear-groups ${exec_start/\$MESHWIRE_ARGS/$MESHWIRE_ARGS}
) 2>"$work/relay.log" &
relay_pid=$!
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:7420/health >"$work/health.json" 2>/dev/null && break
  sleep 0.1
done
grep -q '"status":"ok"' "$work/health.json" || { cat "$work/relay.log"; fail "/health did not answer"; }
# The answer must come from this relay, not from another one on the port.
kill -0 "$relay_pid" 2>/dev/null || { cat "$work/relay.log"; fail "the relay exited (is port 7420 taken?)"; }
grep -q '"storage":"sqlite"' "$work/health.json" || fail "/health storage"
# A service shared by every account: tokens only, no sign-in page anyone could use as anyone.
grep -q '"auth":"token"' "$work/health.json" || fail "/health auth: the packaged service must run --auth token"
[[ -f $state/relay.db ]] || fail "no database in $state"
kill -TERM "$relay_pid"
wait "$relay_pid" || { rc=$?; cat "$work/relay.log"; fail "the relay did not exit 0 on SIGTERM (exit $rc)"; }
relay_pid=

echo "== dpkg -r, dpkg -P"
dpkg -r meshwire >/dev/null
[[ ! -e /usr/bin/meshwire ]] || fail "/usr/bin/meshwire left after dpkg -r"
[[ ! -e $unit ]] || fail "unit left after dpkg -r"
[[ -f /etc/default/meshwire ]] || fail "dpkg -r must keep the conffile"
dpkg -P meshwire >/dev/null
[[ ! -e /etc/default/meshwire ]] || fail "/etc/default/meshwire left after purge"
[[ ! -e $state ]] || fail "$state left after purge"
echo "1 passed, 0 failed"
