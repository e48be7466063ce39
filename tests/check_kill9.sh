#!/usr/bin/env bash
# check_kill9.sh - the small form of tests/stress/kill9.sh for CI: 3 rounds of 300 jobs from 4
# clients, rxjobd killed with SIGKILL at a random moment of each round and started again; fails
# if an acknowledged job was lost or duplicated, a half-written job appeared, a task ran twice,
# or a task running at the crash came back without its exit status. About 30 s.
#
# Usage: bash tests/check_kill9.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: check_kill9.sh BUILD_DIR}
exec bash "$(dirname "$0")/stress/kill9.sh" "$build" --rounds 3 --jobs 300 --clients 4
