#!/usr/bin/env bash
# packaging/bundle-npm-libs.sh BINARY LIBDIR: makes the npm package's copy of the
# meshwire executable run on a Linux x64 machine that has glibc and nothing else.
#
# Copies every shared library BINARY loads (as `ldd` resolves them here), except glibc's
# own, into LIBDIR under its soname, and sets BINARY's RPATH to $ORIGIN/lib (DT_RPATH, not
# RUNPATH: it also applies to the libraries' own dependencies), so those copies are the ones
# loaded; strips its debug information (110 MB of the build's executable, not needed to run).
# The Debian package's executable is not touched: it uses the system's libraries.
set -euo pipefail

die() {
  echo "bundle-npm-libs.sh: $*" >&2
  exit 2
}
[[ $# -eq 2 ]] || die "usage: bundle-npm-libs.sh BINARY LIBDIR"
binary=$1 libdir=$2
[[ -x $binary ]] || die "no executable at $binary"
command -v ldd >/dev/null || die "ldd not found"
command -v patchelf >/dev/null || die "patchelf not found (apt-get install patchelf)"
command -v strip >/dev/null || die "strip not found (apt-get install binutils)"

# glibc's libraries come with the system and must match its loader: never bundled.
is_glibc() {
  case $1 in
    linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | \
      librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnss_*.so.*) return 0 ;;
  esac
  return 1
}

rm -rf "$libdir"
mkdir -p "$libdir"
count=0
while read -r name arrow path _; do
  [[ $arrow == "=>" && -n $path && $path != "not" ]] || continue
  is_glibc "$name" && continue
  cp -L "$path" "$libdir/$name"
  chmod 0644 "$libdir/$name"
  count=$((count + 1))
done < <(ldd "$binary")
[[ $count -gt 0 ]] || die "ldd listed no library to bundle for $binary"
strip --strip-debug "$binary"
patchelf --force-rpath --set-rpath '$ORIGIN/lib' "$binary"
echo "bundle-npm-libs.sh: $count libraries in $libdir; $binary loads them first" >&2
