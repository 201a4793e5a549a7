#!/bin/sh
# Runs tests/bench-token under a fresh fixture and prints its JSON.
# Usage: bench-token.sh PATH-TO-bench-token
set -u
. "$top_srcdir/tests/fixture/fixture.sh"
fixture_setup
"$1"
