#!/usr/bin/env bash
# The test command (README, .ci/run): installs tmux for the terminal-UI test when it is missing
# and this machine allows it (without tmux that test is skipped, and fails where CI is set), the
# official MCP Python SDK (PyPI `mcp`, the client tests/mcp.rs drives the server with) into
# target/test-py once, onnx and numpy for ONNX Runtime's CoreML checker into target/check-py once,
# checks that the tree is rustfmt-formatted and clippy-quiet, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v tmux >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq tmux >/dev/null) || echo "note: could not install tmux; the TUI end-to-end test will be skipped (and fail where CI is set)"
  else
    echo "note: tmux is not installed; the TUI end-to-end test will be skipped (and fail where CI is set)"
  fi
fi
# Pinned: the client the MCP test was written against. Installed only when missing (or another
# version), so reruns cost nothing; tests/mcp.rs fails with a pointer here when it is absent.
MCP_SDK=mcp==2.3.0
SDK_DIR=target/test-py
if [ "$(cat "$SDK_DIR/.installed" 2>/dev/null)" != "$MCP_SDK" ]; then
  rm -rf "$SDK_DIR"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --target "$SDK_DIR" "$MCP_SDK"
  echo "$MCP_SDK" > "$SDK_DIR/.installed"
fi
# Pinned: what ONNX Runtime's CoreML partitioning checker needs (tests/coreml.rs runs the checker
# shipped in the onnxruntime wheel qsearch installs its runtime from).
CHECK_DEPS="onnx==1.23.2 numpy==2.4.6"
CHECK_DIR=target/check-py
if [ "$(cat "$CHECK_DIR/.installed" 2>/dev/null)" != "$CHECK_DEPS" ]; then
  rm -rf "$CHECK_DIR"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --target "$CHECK_DIR" $CHECK_DEPS
  echo "$CHECK_DEPS" > "$CHECK_DIR/.installed"
fi
cargo fmt --check
# The package (`cargo install`, crates.io) holds only what builds the binary (Cargo.toml's
# include): no tests, fixtures, benches, scripts or build output. The list alone, no build.
package_list=$(cargo package --list --allow-dirty --quiet)
grep -qx 'src/main.rs' <<<"$package_list" || { echo "cargo package --list has no src/main.rs:"; echo "$package_list"; exit 1; }
if outside=$(grep -E '^(tests|benches|scripts|target)/|(^|/)fixtures/' <<<"$package_list"); then
  echo "these would be in the package; leave them out of Cargo.toml's include:"
  echo "$outside"
  exit 1
fi
cargo clippy --all-targets --quiet -- -D warnings
# A build without the optional parts (README, Cargo.toml's [features]) compiles and is
# clippy-quiet: on the dependencies the line above checked, about 30 s of CPU.
cargo clippy --no-default-features --quiet -- -D warnings
cargo test
