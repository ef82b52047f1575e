#!/usr/bin/env bash
# The whole atrest test suite, as CI runs it: installs what the tests need when it
# is missing (Debian's etcd-server/etcd-client for the real-etcd tests, protoc for
# the etcd client, Go and x/crypto for the independent reference in tests/goref,
# openssl), then checks formatting and lints and runs every test.
#
#   bash tests/run.sh            # everything
#   bash tests/run.sh --quick    # skip fmt/clippy
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/golang.org/x/crypto/nacl ] || need+=(golang-golang-x-crypto-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "${1:-}" != "--quick" ]; then
  echo "==> cargo fmt --check"
  cargo fmt --all -- --check
  echo "==> cargo clippy"
  cargo clippy --locked --all-targets -- -D warnings
fi
echo "==> cargo test"
# etcd and Go were installed above: tests that need them must not skip.
export ATREST_REQUIRE_ETCD=1 ATREST_REQUIRE_GO=1
cargo test --locked --all-targets
cargo test --locked --doc
