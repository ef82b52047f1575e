#!/usr/bin/env bash
# Live rewrite and audit throughput against a local single-member etcd.
#
# Starts a throw-away etcd on loopback (testdata/lib/etcd.sh), then in one run:
#   1. raw:     writes COUNT Secrets of about SIZE bytes, encrypted under an old
#               key, in transactions of BATCH puts, IN_FLIGHT at a time
#               (examples/load_secrets.rs): the write rate etcd itself sustains;
#   2. audit:   `atrest audit --endpoints` of that keyspace (all stale);
#   3. rewrite: `atrest rewrite` of every Secret under the new key, same batch
#               size (the time includes its verification audit);
#   4. audit:   again, now all current.
# and prints a table of objects/s.
#
#   bash benches/live_rewrite.sh                  # 100000 Secrets of 2 KiB
#   COUNT=20000 SIZE=4096 bash benches/live_rewrite.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
COUNT="${COUNT:-100000}"
SIZE="${SIZE:-2048}"
BATCH="${BATCH:-100}"
IN_FLIGHT="${IN_FLIGHT:-8}"
# shellcheck source=../testdata/lib/etcd.sh
. "$root/testdata/lib/etcd.sh"
ensure_etcd

work="$(mktemp -d)"
trap 'stop_etcd; rm -rf "$work"' EXIT

(cd "$root" && cargo build --quiet --release --bin atrest --example load_secrets)
target="${CARGO_TARGET_DIR:-$root/target}/release"
atrest="$target/atrest"
load="$target/examples/load_secrets"

key() { head -c 32 /dev/urandom | base64; }
k1="$(key)"
k2="$(key)"
config() {
    cat <<YAML
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
$(for n in "$@"; do printf '            - {name: %s, secret: %s}\n' "${n%%=*}" "${n#*=}"; done)
      - identity: {}
YAML
}
config "key1=$k1" >"$work/old.yaml"
config "key2=$k2" "key1=$k1" >"$work/new.yaml"
chmod 600 "$work"/*.yaml

# etcd's quota must hold two revisions of every value.
ATREST_ETCD_ARGS="--quota-backend-bytes=$((8 * 1024 * 1024 * 1024))" start_etcd "$work"
ep="$ETCD_ENDPOINT"

now() { date +%s.%N; }
rate() { python3 -c "import sys; n,t=float(sys.argv[1]),float(sys.argv[2]); print('%.2f s | %.0f objects/s' % (t, n/t))" "$@"; }

echo "== etcd $(etcd --version | head -1 | awk '{print $3}'), $COUNT Secrets of ~$SIZE bytes, batch $BATCH, $IN_FLIGHT in flight, $(nproc) cores"
echo "-- raw write (load_secrets)"
raw_line="$("$load" --endpoints "$ep" --count "$COUNT" --size "$SIZE" --batch "$BATCH" --in-flight "$IN_FLIGHT" --config "$work/old.yaml")"
echo "$raw_line"
raw_rate="$(echo "$raw_line" | sed -E 's/.*: ([0-9]+) objects\/s.*/\1/')"
raw_secs="$(echo "$raw_line" | sed -E 's/.* in ([0-9.]+) s:.*/\1/')"

echo "-- audit (all stale)"
t0="$(now)"; "$atrest" audit --endpoints "$ep" --config "$work/new.yaml" -o json >"$work/audit1.json" || true; t1="$(now)"
audit1="$(python3 -c "import sys; print(float(sys.argv[2])-float(sys.argv[1]))" "$t0" "$t1")"
python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['summary']['by_status'])" "$work/audit1.json"

echo "-- rewrite"
t0="$(now)"; /usr/bin/time -f "atrest rewrite: %e s wall, %U s user, %S s sys, %M KiB max RSS" "$atrest" rewrite --endpoints "$ep" --config "$work/new.yaml" --resource secrets --batch "$BATCH" --in-flight "$IN_FLIGHT" -o json >"$work/rewrite.json"; t1="$(now)"
rewrite_secs="$(python3 -c "import sys; print(float(sys.argv[2])-float(sys.argv[1]))" "$t0" "$t1")"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['counts'], 'write phase %.2f s, verification %.2f s' % (d['seconds'], d['verification']['seconds']))" "$work/rewrite.json"
write_secs="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds'])" "$work/rewrite.json")"

echo "-- audit (all current)"
t0="$(now)"; /usr/bin/time -f "atrest audit: %e s wall, %U s user, %S s sys, %M KiB max RSS" "$atrest" audit --endpoints "$ep" --config "$work/new.yaml" -o json >"$work/audit2.json"; t1="$(now)"
audit2="$(python3 -c "import sys; print(float(sys.argv[2])-float(sys.argv[1]))" "$t0" "$t1")"

echo
echo "| step | time | rate |"
echo "|---|---|---|"
echo "| raw etcd write (txn of $BATCH puts, $IN_FLIGHT in flight) | $(rate "$COUNT" "$raw_secs") |"
echo "| atrest rewrite, whole command (incl. verification audit) | $(rate "$COUNT" "$rewrite_secs") |"
echo "| atrest rewrite, scan and write phase | $(rate "$COUNT" "$write_secs") |"
echo "| atrest audit --endpoints (stale, decrypt each) | $(rate "$COUNT" "$audit1") |"
echo "| atrest audit --endpoints (current) | $(rate "$COUNT" "$audit2") |"
python3 -c "import sys; r=float(sys.argv[1]); n=float(sys.argv[2]); print('rewrite / raw write rate: %.2f (whole command), %.2f (write phase)' % (n/float(sys.argv[3])/r, n/float(sys.argv[4])/r))" "$raw_rate" "$COUNT" "$rewrite_secs" "$write_secs"
