#!/usr/bin/env bash
# The full test suite, from a fresh Debian machine with only Rust: installs what is missing
# (nats-server, openssl and promtool, Debian's prometheus package, from the OS packages;
# rustfmt and clippy from rustup), then runs
# the format check, clippy with -D warnings, and every test of the workspace.
# README.md gives this command; .ci/run runs exactly it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# `promtool check metrics` checks the daemons' /metrics (tests/tests/operate.rs).
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]} from the OS packages"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}"
fi
# Debian installs nats-server in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin"

for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" \
    || rustup component add "$component"
done

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> the protocol logic and the node cores build without any I/O crate (--no-default-features)"
cargo clippy -p shared -p broker -p merchant --no-default-features --lib --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked
echo "==> shared's tests on the pure-Rust RSA backend (without aws-lc, docs/adr/0014)"
cargo test -p shared --no-default-features --features io --locked
