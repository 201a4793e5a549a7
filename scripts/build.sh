#!/bin/sh
# Builds p11mail outside the source tree: runs autogen.sh when there is no
# configure script, configure when the build directory is new or its flags
# changed, then make.  Used by scripts/check and scripts/demo.
#
#   scripts/build.sh [--sanitizers] [--builddir DIR]
#
# The default build directory is _build (_build-san with --sanitizers).
# Compiler output goes to DIR/configure.out and DIR/make.out; on failure the
# relevant lines are shown and the exit status is 1.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=""
sanitizers=no

while [ $# -gt 0 ]; do
  case "$1" in
    --sanitizers) sanitizers=yes ;;
    --builddir) builddir=$2; shift ;;
    -h|--help)
      sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "build: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$builddir" ]; then
  builddir="$top/_build"
  [ "$sanitizers" = no ] || builddir="$top/_build-san"
fi

cd "$top"
[ -x configure ] || ./autogen.sh >/dev/null
mkdir -p "$builddir"
cd "$builddir"
if [ "$sanitizers" = yes ]; then
  flags="--enable-werror --enable-sanitizers"
else
  flags="--enable-werror"
fi
if [ ! -f Makefile ] || [ "$(cat .p11mail-flags 2>/dev/null)" != "$flags" ]; then
  # shellcheck disable=SC2086
  "$top/configure" $flags >configure.out 2>&1 || {
    tail -n 20 configure.out; echo "build: configure failed" >&2; exit 1; }
  echo "$flags" > .p11mail-flags
fi
make -j"$(nproc)" >make.out 2>&1 || {
  grep -E 'error|Error' make.out | head -n 40; tail -n 20 make.out
  echo "build: build failed (see $builddir/make.out)" >&2; exit 1; }
