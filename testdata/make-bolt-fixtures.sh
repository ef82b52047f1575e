#!/usr/bin/env bash
# Regenerate the etcd bolt fixtures in testdata/bolt/ from a real etcd (the
# committed ones come from Debian's etcd 3.4.23).
#
#   bash testdata/make-bolt-fixtures.sh [OUTDIR]     (default: testdata/bolt)
#
# Starts a throw-away single-member etcd on loopback, writes a known history
# (binary values with NUL bytes, a value larger than a page, 2,000 keys so the
# key bucket has branch pages, updates, deletes, a lease-attached key, a
# physical compaction), then saves:
#   snapshot.db          `etcdctl snapshot save` output (bolt ‖ sha256 trailer)
#   small.db             a snapshot of the first few revisions (a few pages), for
#                        tests that damage every byte
#   member.db            the raw member/snap/db file (no trailer), copied after
#                        etcd has stopped
#   expected-live.json   etcd's own view of every live key at the latest revision
#   expected-hist.json   etcd's own view at an older revision (above compaction)
# The expected files come from `etcdctl get --prefix -w json`: one object
#   {"revision": N, "compact_revision": C, "kvs": [{"key_b64", "create_revision",
#    "mod_revision", "version", "lease", "value_len", "value_sha256"}, ...]}
# with kvs sorted by key.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/bolt}"
mkdir -p "$out"

# shellcheck source=lib/etcd.sh
. "$here/lib/etcd.sh"
ensure_etcd

work="$(mktemp -d)"
trap 'stop_etcd; rm -rf "$work"' EXIT
start_etcd "$work"

rev() { ctl endpoint status -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])'; }

# Phase A: history that the compaction will remove.
ctl put /registry/secrets/default/plain 'v1-before-compaction' >/dev/null
ctl put /registry/secrets/default/plain 'v2-before-compaction' >/dev/null
ctl put /registry/secrets/default/gone-early 'deleted before compaction' >/dev/null
ctl del /registry/secrets/default/gone-early >/dev/null
compact_rev="$(rev)"
ctl compact --physical "$compact_rev" >/dev/null
# A small snapshot (a few pages) for tests that damage every byte.
ctl put /registry/secrets/default/small 'a small value' >/dev/null
printf 'nul\x00inside' | ctl put /registry/secrets/default/small-binary >/dev/null
rm -f "$out/small.db"
ctl snapshot save "$out/small.db" >"$work/snapshot.log" 2>&1 || { cat "$work/snapshot.log" >&2; exit 1; }

# Phase B: the bulk of the data.
printf 'k8s:enc:aescbc:v1:key1:\x00\x01\x02\x00\xff\xfe trailing NUL\x00' >"$work/binary"
ctl put /registry/secrets/default/binary <"$work/binary" >/dev/null
head -c 20480 /dev/urandom >"$work/big"
ctl put /registry/secrets/kube-system/big <"$work/big" >/dev/null
ctl put /registry/secrets/default/plain 'v3-after-compaction' >/dev/null
lease="$(ctl lease grant 3600 | awk '{print $2}')"
ctl put --lease="$lease" /registry/leases/kube-node-lease/node-1 'held by a lease' >/dev/null
ctl put /registry/secrets/default/to-delete 'will be deleted' >/dev/null
ctl put /registry/secrets/default/recreated 'first life' >/dev/null
# 2,000 configmaps in transactions of 100 puts: several sub-revisions per revision.
for batch in $(seq 0 19); do
    {
        echo
        for i in $(seq 0 99); do
            n=$((batch * 100 + i))
            printf 'put /registry/configmaps/ns-%02d/cm-%04d data-%04d-%s\n' \
                $((n % 17)) "$n" "$n" "$(printf '%040d' "$n")"
        done
        echo
        echo
    } | ctl txn >/dev/null
done
hist_rev="$(rev)"

# Phase C: changes after the historical revision.
ctl put /registry/secrets/default/plain 'v4-latest' >/dev/null
ctl del /registry/secrets/default/to-delete >/dev/null
ctl del /registry/secrets/default/recreated >/dev/null
ctl put /registry/secrets/default/recreated 'second life' >/dev/null
ctl del --prefix /registry/configmaps/ns-16/ >/dev/null
for i in $(seq 0 9); do
    ctl put "/registry/configmaps/ns-00/cm-$(printf '%04d' $((i * 17)))" "updated-$i" >/dev/null
done
latest_rev="$(rev)"

expected() { # $1 = output file, $2.. = extra etcdctl get flags
    local file="$1"
    shift
    ctl get "" --prefix -w json "$@" | python3 -c '
import base64, hashlib, json, sys
compact = int(sys.argv[1])
doc = json.load(sys.stdin)
kvs = []
for kv in doc.get("kvs", []):
    value = base64.b64decode(kv.get("value", ""))
    kvs.append({
        "key_b64": kv["key"],
        "create_revision": int(kv.get("create_revision", 0)),
        "mod_revision": int(kv.get("mod_revision", 0)),
        "version": int(kv.get("version", 0)),
        "lease": int(kv.get("lease", 0)),
        "value_len": len(value),
        "value_sha256": hashlib.sha256(value).hexdigest(),
    })
kvs.sort(key=lambda kv: base64.b64decode(kv["key_b64"]))
rev = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else int(doc["header"]["revision"])
sys.stdout.write("{\"revision\": %d, \"compact_revision\": %d, \"kvs\": [\n" % (rev, compact))
sys.stdout.write(",\n".join(json.dumps(kv, separators=(",", ":")) for kv in kvs))
sys.stdout.write("\n]}\n")
' "$compact_rev" "${REV_OVERRIDE:-}" >"$file"
}
expected "$out/expected-live.json"
REV_OVERRIDE="$hist_rev" expected "$out/expected-hist.json" --rev="$hist_rev"

rm -f "$out/snapshot.db"
ctl snapshot save "$out/snapshot.db" >"$work/snapshot.log" 2>&1 || { cat "$work/snapshot.log" >&2; exit 1; }

stop_etcd
cp "$work/data/member/snap/db" "$out/member.db"

echo "compact=$compact_rev historical=$hist_rev latest=$latest_rev lease=$lease"
ls -l "$out"
