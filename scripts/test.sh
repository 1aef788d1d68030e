#!/usr/bin/env bash
# The test command (README, .ci/run): installs tmux for the terminal-UI test when it is missing
# and this machine allows it, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v tmux >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq tmux >/dev/null) || echo "note: could not install tmux; the TUI end-to-end test will be skipped"
  else
    echo "note: tmux is not installed; the TUI end-to-end test will be skipped"
  fi
fi
cargo test
