#!/usr/bin/env bash
# Make a snapshot that leaks: 30 Secrets written in plaintext, then rewritten
# under aescbc, then compacted. The live data and the history are clean, but the
# plaintext survives in the db file's free pages, where `audit --deep` finds it.
#
#   ATREST=target/debug/atrest bash testdata/make-leaky.sh OUTDIR
# writes OUTDIR/snapshot.db and OUTDIR/encryption-config.yaml.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"
atrest="${ATREST:?set ATREST to the atrest binary}"
mkdir -p "$out"
# shellcheck source=lib/etcd.sh
. "$here/lib/etcd.sh"
ensure_etcd
work="$(mktemp -d)"
trap 'stop_etcd; rm -rf "$work"' EXIT
start_etcd "$work"
"$atrest" generate --output "$out/encryption-config.yaml" --force 2>/dev/null
for i in $(seq 1 30); do
    python3 "$here/kube_proto.py" secret --name "s$i" --namespace default \
        --data "password=plaintext-$i-$(head -c 300 /dev/urandom | base64 -w0)" >"$work/p.bin"
    ctl put "/registry/secrets/default/s$i" <"$work/p.bin" >/dev/null
done
for i in $(seq 1 30); do
    python3 "$here/kube_proto.py" secret --name "s$i" --namespace default --data "password=rewritten-$i" >"$work/p.bin"
    "$atrest" encrypt --config "$out/encryption-config.yaml" --etcd-key "/registry/secrets/default/s$i" <"$work/p.bin" \
        | ctl put "/registry/secrets/default/s$i" >/dev/null
done
rev=$(ctl endpoint status -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])')
ctl compact "$rev" --physical >/dev/null
rm -f "$out/snapshot.db"
ctl snapshot save "$out/snapshot.db" >/dev/null 2>&1
