#!/usr/bin/env bash
# Regenerate the sample cluster snapshot in testdata/sample/ with a real etcd.
#
# Starts a throw-away etcd on loopback, writes a realistic cluster through etcd's
# API (Secrets as protobuf and JSON, plaintext and under aescbc/aesgcm/secretbox
# with several keys, a key the config lacks, corrupted values, ConfigMaps, pods,
# deployments, a custom resource, updates, deletions, a compaction), then saves:
#   snapshot.db               `etcdctl snapshot save` output
#   encryption-config.yaml    the config of the "current" control plane
#   expected.json             what the writer knows it stored: per live key the
#                             provider, key name and audit status; the Secrets'
#                             decoded contents; superseded plaintext revisions
# The writer encodes objects with testdata/kube_proto.py and encrypts them with
# `atrest encrypt` (whose byte format is checked against upstream vectors and the
# openssl CLI in the test suite).
#
#   bash testdata/make-sample.sh [OUTDIR]      (default: testdata/sample)
#   ATREST=target/release/atrest bash testdata/make-sample.sh OUTDIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${1:-$here/sample}"
mkdir -p "$out"
# shellcheck source=lib/etcd.sh
. "$here/lib/etcd.sh"
ensure_etcd

work="$(mktemp -d)"
trap 'stop_etcd; rm -rf "$work"' EXIT

# ATREST=/path/to/atrest skips the build (the test suite passes its own binary).
atrest="${ATREST:-}"
if [ -z "$atrest" ]; then
    (cd "$root" && cargo build --quiet --bin atrest)
    atrest="${CARGO_TARGET_DIR:-$root/target}/debug/atrest"
fi

start_etcd "$work"
python3 "$here/sample_cluster.py" --atrest "$atrest" --endpoint "$ETCD_ENDPOINT" --out "$out" --work "$work"
rm -f "$out/snapshot.db"
ctl snapshot save "$out/snapshot.db" >/dev/null 2>&1
ls -l "$out"
