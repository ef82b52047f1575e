#!/usr/bin/env bash
# KMS v2 snapshot audit against the same audit under aesgcm, on snapshots made by
# a real etcd.
#
#   bash benches/kms_audit.sh [COUNT] [SIZE]     (default: 100000 Secrets of 2048 bytes)
#
# Starts the test KMS plugin (examples/kms_plugin.rs) on a unix socket and a
# throw-away etcd on loopback; loads COUNT Secrets written as kube-apiserver
# writes them (examples/bulk_load.rs) once with an aesgcm config and once with a
# KMS v2 config (one seed per run, wrapped by the plugin), saving a snapshot of
# each; then times, alternating, best of 3:
#   atrest audit --snapshot S --config C -o json > /dev/null
# and prints objects/s, the ratio kms/aesgcm (goal: at least 0.8), and how many
# Decrypt calls the plugin answered for one whole audit (goal: one per distinct DEK
# source, here 1).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
count="${1:-100000}"
size="${2:-2048}"
# shellcheck source=../testdata/lib/etcd.sh
. "$root/testdata/lib/etcd.sh"
ensure_etcd

work="$(mktemp -d)"
plugin_pid=""
cleanup() {
    stop_etcd
    [ -z "$plugin_pid" ] || kill "$plugin_pid" 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
cd "$root"
cargo build --quiet --release --bin atrest --example bulk_load --example kms_plugin
atrest="$root/target/release/atrest"
loader="$root/target/release/examples/bulk_load"
plugin="$root/target/release/examples/kms_plugin"

mkdir -p "$work/kms"
"$plugin" --socket "unix://$work/kms.sock" --state-dir "$work/kms" --kek-seed 00112233 \
    >"$work/kms.log" 2>&1 &
plugin_pid=$!
for _ in $(seq 1 100); do [ -S "$work/kms.sock" ] && break; sleep 0.05; done
[ -S "$work/kms.sock" ] || { cat "$work/kms.log" >&2; echo "the KMS plugin did not start" >&2; exit 1; }

"$atrest" generate --provider aesgcm --output "$work/aesgcm.yaml" >/dev/null 2>&1
cat >"$work/kms.yaml" <<YAML
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: kp
          endpoint: unix://$work/kms.sock
          timeout: 3s
      - identity: {}
YAML

for mode in aesgcm kms; do
    mkdir -p "$work/$mode"
    start_etcd "$work/$mode"
    "$loader" --endpoint "$ETCD_ENDPOINT" --config "$work/$mode.yaml" --count "$count" --size "$size" >/dev/null
    ctl snapshot save "$work/$mode.db" >/dev/null 2>&1
    stop_etcd
done
echo "snapshots: $count Secrets each, aesgcm $(( $(stat -c %s "$work/aesgcm.db") / 1048576 )) MiB, kms v2 $(( $(stat -c %s "$work/kms.db") / 1048576 )) MiB"

run() { # $1 = mode; prints seconds
    /usr/bin/time -f "%e" -o "$work/time" "$atrest" audit --snapshot "$work/$1.db" \
        --config "$work/$1.yaml" -o json >"$work/$1.json" 2>/dev/null || true
    cat "$work/time"
}
best_gcm=999999
best_kms=999999
for _ in 1 2 3; do
    t=$(run aesgcm); best_gcm=$(python3 -c "print(min($best_gcm, $t))")
    : >"$work/kms/calls.log"
    t=$(run kms); best_kms=$(python3 -c "print(min($best_kms, $t))")
done
decrypts=$(grep -c '^Decrypt' "$work/kms/calls.log" || true)
current=$(python3 -c "import json,sys; print(json.load(open('$work/kms.json'))['summary']['by_status'].get('current', 0))")
printf '\n%-36s %10s %14s\n' "command" "seconds" "objects/s"
printf '%-36s %10s %14s\n' "atrest audit (aesgcm) -o json" "$best_gcm" "$(python3 -c "print(int($count / max($best_gcm, 0.001)))")"
printf '%-36s %10s %14s\n' "atrest audit (kms v2) -o json" "$best_kms" "$(python3 -c "print(int($count / max($best_kms, 0.001)))")"
echo
echo "kms v2 / aesgcm speed: $(python3 -c "print(round($best_gcm / max($best_kms, 0.001), 2))")x (goal >= 0.8)"
echo "plugin Decrypt calls in one kms audit: $decrypts (goal: one per distinct DEK source, 1 here); objects current: $current of $count"
