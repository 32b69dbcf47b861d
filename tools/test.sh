#!/usr/bin/env bash
# The test command: what the tests need (tools/setup.sh), then every test.
# Arguments go to cargo test: tools/test.sh --test e2e -- node::
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# The operator's static release binary, which the node tests put in an
# image: built here, before the tests run in parallel, rather than by the
# first test that needs it.
cargo build --release --locked --target x86_64-unknown-linux-musl \
  -p govcloud-operator --bin govcloud-operator
exec cargo test "$@"
