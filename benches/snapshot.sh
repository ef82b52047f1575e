#!/usr/bin/env bash
# Snapshot audit and dump: throughput and peak memory, optionally against a Go
# baseline, on a snapshot made by a real etcd.
#
#   bash benches/snapshot.sh [COUNT] [SIZE]      (default: 100000 Secrets of 900 bytes)
#   PEER=DIR bash benches/snapshot.sh            (also run the Go baseline in DIR)
#
# The default input is the one the speed goals were set on: 100,000 Secrets of
# about 1 KiB stored each, a 131 MiB snapshot (three values to a 4 KiB bolt
# page). With SIZE 2048 each value takes a page of its own (392 MiB for the same
# objects), and the sha256 of the file, which atrest checks and the baseline does
# not, weighs three times as much.
#
# Starts a throw-away etcd on loopback, loads COUNT aescbc-encrypted Secrets (the
# protobuf envelope around about SIZE bytes of data each) with
# examples/bulk_load.rs and saves a snapshot (`etcdctl snapshot save`, so it has
# the sha256 trailer, which atrest verifies on every run below). Then it runs,
# RUNS times (default 11), alternating so that background load hits both sides alike:
#   atrest audit --snapshot S --config C -o json > /dev/null
#   atrest dump  --snapshot S --config C -o json > /dev/null
# and, with PEER, the baseline's `audit`/`dump ... -workers 2`. It prints the
# median wall time, objects/s, the largest peak RSS (which includes the mapped
# snapshot's resident pages), the ratio baseline/atrest, and whether peak RSS
# stays within the snapshot size + 256 MiB.
#
# Environment:
#   PEER        directory of the Go baseline: `$PEER/build.sh` builds `$PEER/bin/snappeer`
#               (or PEER_BIN: an already built baseline binary). Without either,
#               only atrest is measured.
#   RUNS        runs per command (default 11).
#   SNAPSHOT    reuse this snapshot (with CONFIG, its EncryptionConfiguration)
#               instead of loading an etcd.
#   KEEP=1      keep the work directory (snapshot and config) and print its path.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
count="${1:-100000}"
size="${2:-900}"
runs="${RUNS:-11}"

work="$(mktemp -d "${TMPDIR:-/tmp}/atrest-bench.XXXXXX")"
cleanup() {
    if [ -n "${ETCD_PID:-}" ]; then stop_etcd; fi
    if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cd "$root"
cargo build --quiet --release --bin atrest --example bulk_load
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
atrest="$target_dir/release/atrest"
loader="$target_dir/release/examples/bulk_load"

peer=""
if [ -n "${PEER_BIN:-}" ]; then
    peer="$PEER_BIN"
elif [ -n "${PEER:-}" ]; then
    bash "$PEER/build.sh" --no-vet >&2
    peer="$PEER/bin/snappeer"
fi
[ -z "$peer" ] || [ -x "$peer" ] || { echo "snapshot.sh: baseline $peer is not executable" >&2; exit 2; }

if [ -n "${SNAPSHOT:-}" ]; then
    [ -n "${CONFIG:-}" ] || { echo "snapshot.sh: SNAPSHOT needs CONFIG" >&2; exit 2; }
    snap="$SNAPSHOT"
    cfg="$CONFIG"
else
    # shellcheck source=../testdata/lib/etcd.sh
    . "$root/testdata/lib/etcd.sh"
    ensure_etcd
    start_etcd "$work"
    "$atrest" generate --output "$work/enc.yaml" >/dev/null 2>&1
    "$loader" --endpoint "$ETCD_ENDPOINT" --config "$work/enc.yaml" --count "$count" --size "$size"
    ctl snapshot save "$work/snap.db" >/dev/null 2>&1
    stop_etcd
    snap="$work/snap.db"
    cfg="$work/enc.yaml"
fi
snap_bytes=$(stat -c %s "$snap")
echo "snapshot: $snap_bytes bytes ($((snap_bytes / 1048576)) MiB), $count Secrets loaded"
# Objects the audit covers (keys under /registry at the latest revision), for objects/s.
objects=$("$atrest" audit --snapshot "$snap" --config "$cfg" -o json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["objects"])')
echo "objects audited: $objects"
cat "$snap" >/dev/null # warm the page cache

# run NAME CMD...: one timed run appended to $work/NAME ("seconds max_rss_kib").
run() {
    local name="$1" rc=0
    shift
    /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "snapshot.sh: $* exited $rc:" >&2
        head -5 "$work/err" >&2
        exit 1
    fi
    cat "$work/t" >>"$work/$name"
}

for _ in $(seq 1 "$runs"); do
    for cmd in audit dump; do
        run "atrest-$cmd" "$atrest" "$cmd" --snapshot "$snap" --config "$cfg" -o json
        if [ -n "$peer" ]; then
            run "peer-$cmd" "$peer" "$cmd" --snapshot "$snap" --config "$cfg" -workers 2
        fi
    done
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
limit_kib=$(( snap_bytes / 1024 + 256 * 1024 ))
printf '\n%-22s %9s %12s %13s %9s %10s\n' "command ($runs runs)" "median s" "objects/s" "max peak RSS" "RSS ok" "vs Go"
for cmd in audit dump; do
    a=$(cut -d' ' -f1 "$work/atrest-$cmd" | median)
    rss=$(cut -d' ' -f2 "$work/atrest-$cmd" | sort -n | tail -1)
    ok=$([ "$rss" -le "$limit_kib" ] && echo yes || echo NO)
    ratio="-"
    if [ -n "$peer" ]; then
        g=$(cut -d' ' -f1 "$work/peer-$cmd" | median)
        ratio=$(awk -v g="$g" -v a="$a" 'BEGIN { printf "%.2fx", g / (a > 0 ? a : 0.001) }')
    fi
    printf '%-22s %9s %12s %9s MiB %9s %10s\n' "atrest $cmd -o json" "$a" \
        "$(awk -v n="$objects" -v s="$a" 'BEGIN { printf "%d", n / (s > 0 ? s : 0.001) }')" \
        "$((rss / 1024))" "$ok" "$ratio"
    if [ -n "$peer" ]; then
        g=$(cut -d' ' -f1 "$work/peer-$cmd" | median)
        grss=$(cut -d' ' -f2 "$work/peer-$cmd" | sort -n | tail -1)
        printf '%-22s %9s %12s %9s MiB\n' "baseline $cmd" "$g" \
            "$(awk -v n="$objects" -v s="$g" 'BEGIN { printf "%d", n / (s > 0 ? s : 0.001) }')" "$((grss / 1024))"
    fi
done
echo
echo "goals: audit >= 2.5x and dump >= 3x the baseline; peak RSS <= snapshot + 256 MiB ($((limit_kib / 1024)) MiB)"
