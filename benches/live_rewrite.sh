#!/usr/bin/env bash
# Live rewrite and audit throughput against a local single-member etcd.
#
# Starts a throw-away etcd on loopback (testdata/lib/etcd.sh), loads COUNT
# Secrets of about SIZE bytes encrypted under key1 (examples/load_secrets.rs:
# protobuf v1.Secrets with kubectl-like metadata, as kube-apiserver stores them;
# transactions of BATCH puts, IN_FLIGHT at a time), then ROUNDS times, in turn:
#   1. raw write: the same load again over the same keys, all values replaced
#                 (under key1, so every Secret is stale for the new config):
#                 the rate at which etcd itself takes this job's writes;
#   2. raw read:  every key read in pages of 1000, 4 in flight, nothing decoded
#                 (load_secrets --read): etcd's read rate through atrest's client;
#   3. audit:     `atrest audit --endpoints` (all stale: each value decrypted);
#   4. rewrite:   `atrest rewrite` of every Secret under key2, same batch size
#                 (the time includes its verification audit);
#   5. audit:     again, now all current.
# and prints the median of each step (objects/s) and the ratios the goals are
# stated in. Every step's time includes process start and connection.
#
#   bash benches/live_rewrite.sh                  # 100000 Secrets of 2 KiB, 3 rounds
#   COUNT=30000 ROUNDS=5 bash benches/live_rewrite.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
COUNT="${COUNT:-100000}"
SIZE="${SIZE:-2048}"
BATCH="${BATCH:-100}"
IN_FLIGHT="${IN_FLIGHT:-8}"
ROUNDS="${ROUNDS:-3}"
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

# etcd's quota must hold every revision written (compacted between rounds).
ATREST_ETCD_ARGS="--quota-backend-bytes=$((8 * 1024 * 1024 * 1024))" start_etcd "$work"
ep="$ETCD_ENDPOINT"

now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }
write() { "$load" --endpoints "$ep" --count "$COUNT" --size "$SIZE" --batch "$BATCH" --in-flight "$IN_FLIGHT" --config "$work/old.yaml"; }
# Seconds out of a load_secrets line ("... in 1.23 s: ...").
secs_of() { sed -E 's/.* in ([0-9.]+) s:.*/\1/'; }
compact() {
    local rev
    rev="$(ctl endpoint status -w json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['Status']['header']['revision'])")"
    ctl compact "$rev" >/dev/null
}

echo "== etcd $(etcd --version | head -1 | awk '{print $3}'), $COUNT Secrets of ~$SIZE bytes, batch $BATCH, $IN_FLIGHT in flight, $(nproc) cores, $ROUNDS rounds"
first="$(write)"
echo "first load: $first"
results="$work/results"
: >"$results"
for round in $(seq "$ROUNDS"); do
    compact
    line="$(write)"
    echo "raw_write $(echo "$line" | secs_of)" >>"$results"
    line="$("$load" --endpoints "$ep" --read 1000)"
    echo "raw_read $(echo "$line" | secs_of)" >>"$results"

    t0="$(now)"
    "$atrest" audit --endpoints "$ep" --config "$work/new.yaml" -o json >"$work/audit1.json" || true
    echo "audit_stale $(since "$t0")" >>"$results"
    python3 - "$work/audit1.json" "$COUNT" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]["by_status"]
assert s == {"stale": int(sys.argv[2])}, s
PY

    t0="$(now)"
    "$atrest" rewrite --endpoints "$ep" --config "$work/new.yaml" --resource secrets --batch "$BATCH" --in-flight "$IN_FLIGHT" -o json >"$work/rewrite.json"
    echo "rewrite $(since "$t0")" >>"$results"
    python3 - "$work/rewrite.json" "$COUNT" "$results" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["counts"]["rewritten"] == int(sys.argv[2]), d["counts"]
assert d["verification"]["summary"]["by_status"] == {"current": int(sys.argv[2])}
with open(sys.argv[3], "a") as f:
    f.write("rewrite_writes %.3f\n" % d["seconds"])
    f.write("rewrite_verify %.3f\n" % d["verification"]["seconds"])
PY

    t0="$(now)"
    "$atrest" audit --endpoints "$ep" --config "$work/new.yaml" -o json >"$work/audit2.json"
    echo "audit_current $(since "$t0")" >>"$results"
    echo "round $round: $(awk -v r="$round" '{a[$1]=$2} END {for (k in a) printf "%s %s  ", k, a[k]}' "$results")"
done

echo
python3 - "$results" "$COUNT" "$BATCH" "$IN_FLIGHT" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    step, secs = line.split()
    runs[step].append(float(secs))
n, batch, in_flight = int(sys.argv[2]), sys.argv[3], sys.argv[4]
med = {k: statistics.median(v) for k, v in runs.items()}
rows = [
    ("raw_write", "raw etcd write over the same keys (txn of %s puts, %s in flight)" % (batch, in_flight)),
    ("rewrite", "atrest rewrite, whole command (incl. verification audit)"),
    ("rewrite_writes", "  of which scan and write phase"),
    ("rewrite_verify", "  of which verification audit"),
    ("raw_read", "raw etcd read (pages of 1000, 4 in flight, nothing decoded)"),
    ("audit_stale", "atrest audit --endpoints (stale, each value decrypted)"),
    ("audit_current", "atrest audit --endpoints (current)"),
]
print("| step (median of %d) | time | rate |" % len(runs["rewrite"]))
print("|---|---|---|")
for k, label in rows:
    print("| %s | %.2f s | %.0f objects/s |" % (label, med[k], n / med[k]))
print()
print("rewrite / raw write rate: %.2f (whole command), %.2f (write phase)"
      % (med["raw_write"] / med["rewrite"], med["raw_write"] / med["rewrite_writes"]))
print("audit / raw read rate: %.2f (stale), %.2f (current)"
      % (med["raw_read"] / med["audit_stale"], med["raw_read"] / med["audit_current"]))
PY
