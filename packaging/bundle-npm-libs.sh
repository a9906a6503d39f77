#!/usr/bin/env bash
# packaging/bundle-npm-libs.sh BINARY LIBDIR: makes the npm package's copy of the
# meshwire executable run on a Linux x64 machine that has glibc and nothing else.
#
# Copies every shared library BINARY loads (as `ldd` resolves them here), except glibc's
# own, into LIBDIR under its soname, and sets BINARY's RPATH to $ORIGIN/lib (DT_RPATH, not
# RUNPATH: it also applies to the libraries' own dependencies), so those copies are the ones
# loaded; strips its debug information (110 MB of the build's executable, not needed to run).
# The Debian package's executable is not touched: it uses the system's libraries.
# Each copied library's license goes with it: its Debian package's copyright file, as
# LIBDIR/licenses/PACKAGE (found with `dpkg -S`; a library no package owns is named in
# LIBDIR/licenses/README instead).
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
mkdir -p "$libdir/licenses"
printf '%s\n' "The licenses of the shared libraries in this folder, one file per Debian package" \
  "they came from (its /usr/share/doc/PACKAGE/copyright)." >"$libdir/licenses/README"
count=0
while read -r name arrow path _; do
  [[ $arrow == "=>" && -n $path && $path != "not" ]] || continue
  is_glibc "$name" && continue
  cp -L "$path" "$libdir/$name"
  chmod 0644 "$libdir/$name"
  count=$((count + 1))
  # The package that owns the library (under its path, or the path its symlink resolves to).
  owner=$( (dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true) | head -n1 | cut -d: -f1)
  if [[ -n $owner && -f /usr/share/doc/$owner/copyright ]]; then
    cp "/usr/share/doc/$owner/copyright" "$libdir/licenses/$owner"
    chmod 0644 "$libdir/licenses/$owner"
  else
    echo "$name: no Debian package's copyright file found on the machine that built this" >>"$libdir/licenses/README"
  fi
done < <(ldd "$binary")
[[ $count -gt 0 ]] || die "ldd listed no library to bundle for $binary"
strip --strip-debug "$binary"
patchelf --force-rpath --set-rpath '$ORIGIN/lib' "$binary"
echo "bundle-npm-libs.sh: $count libraries in $libdir; $binary loads them first" >&2
