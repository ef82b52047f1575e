#!/usr/bin/env bash
# atrest against OpenSSL and against Go's crypto/cipher (the code kube-apiserver
# runs), on this machine:
#   1. cipher throughput (MB/s, 10^6 bytes, per CPU second like `openssl speed`):
#      aes-256-cbc at 64 KiB and 1 MiB next to `openssl speed` at 64 KiB, and
#      aes-256-gcm (aesgcm values and the KMS data path) at 16 KiB next to
#      `openssl speed -evp aes-256-gcm` at 16 KiB;
#   2. whole-process `atrest encrypt|decrypt` against tests/goref (Go's crypto/aes + crypto/cipher, as kube-apiserver uses them) on one
#      256 MiB value (best of 3, stdin from a file, stdout to /dev/null), after
#      checking that each decrypts the other's output byte for byte.
#
#   bash benches/compare.sh            # SIZE_MIB=256 OPENSSL_SECONDS=2 by default
#   SIZE_MIB=64 OPENSSL_SECONDS=1 bash benches/compare.sh
#
# Needs: cargo, openssl, go (Debian's golang-go; built offline, no modules).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-256}
SECONDS_PER=${OPENSSL_SECONDS:-2}

die() { echo "compare.sh: $*" >&2; exit 1; }
for tool in cargo openssl go; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atrest-compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "==> building (release)"
cargo build --release --quiet --bin atrest --example throughput
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
atrest="$target_dir/release/atrest"
throughput="$target_dir/release/examples/throughput"
GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOCACHE="$tmp/gocache" \
  go build -o "$tmp/goref" tests/goref/main.go

echo "==> cipher throughput (MB/s)"
"$throughput" "$(awk "BEGIN{print $SECONDS_PER/4}")" >"$tmp/atrest.txt"
# openssl speed -mr prints "+F:<n>:<cipher>:<bytes/s for each size>"; it
# divides by the process's CPU time, as the throughput example does.
ossl() { local bytes=$1; shift
  openssl speed -mr -seconds "$SECONDS_PER" -bytes "$bytes" "$@" 2>/dev/null \
  | awk -F: '/^\+F:/ {printf "%.0f\n", $4/1e6}'; }
o_enc=$(ossl 65536 -evp aes-256-cbc)
o_dec=$(ossl 65536 -decrypt -evp aes-256-cbc)
o_gcm_enc=$(ossl 16384 -evp aes-256-gcm)
o_gcm_dec=$(ossl 16384 -decrypt -evp aes-256-gcm)
[ -n "$o_enc" ] && [ -n "$o_dec" ] && [ -n "$o_gcm_enc" ] && [ -n "$o_gcm_dec" ] \
  || die "could not parse openssl speed output"
ours() { awk -v n="$1" -v b="$2" '$1==n && $2==b {print $3}' "$tmp/atrest.txt"; }
grep '^#' "$tmp/atrest.txt" || true
printf '%-30s %12s %12s %14s %8s\n' "operation" "atrest 64K" "atrest 1M" "openssl 64K" "64K ratio"
row() { # label atrest-name openssl-value
  local a64 a1m
  a64=$(ours "$2" 65536); a1m=$(ours "$2" 1048576)
  if [ -n "$3" ]; then
    printf '%-30s %12s %12s %14s %7.2fx\n' "$1" "$a64" "$a1m" "$3" "$(awk "BEGIN{print $a64/$3}")"
  else
    printf '%-30s %12s %12s %14s %8s\n' "$1" "$a64" "$a1m" "-" "-"
  fi
}
row "aes-256-cbc encrypt" aes-256-cbc-encrypt "$o_enc"
row "aes-256-cbc encrypt (portable)" aes-256-cbc-encrypt-portable "$o_enc"
row "aes-256-cbc decrypt" aes-256-cbc-decrypt "$o_dec"
row "aes-256-cbc decrypt (portable)" aes-256-cbc-decrypt-portable "$o_dec"
echo "(atrest at 1 MiB decrypts on all cores; openssl speed is one core)"
echo
printf '%-30s %12s %12s %14s %8s\n' "operation" "atrest 16K" "atrest 64K" "openssl 16K" "16K ratio"
row16() { # label atrest-name openssl-value
  local a16 a64
  a16=$(ours "$2" 16384); a64=$(ours "$2" 65536)
  printf '%-30s %12s %12s %14s %7.2fx\n' "$1" "$a16" "$a64" "$3" "$(awk "BEGIN{print $a16/$3}")"
}
row16 "aes-256-gcm encrypt" aes-256-gcm-encrypt "$o_gcm_enc"
row16 "aes-256-gcm encrypt (portable)" aes-256-gcm-encrypt-portable "$o_gcm_enc"
row16 "aes-256-gcm decrypt (aesgcm)" aes-256-gcm-decrypt "$o_gcm_dec"
row16 "aes-256-gcm decrypt (portable)" aes-256-gcm-decrypt-portable "$o_gcm_dec"
row16 "kms v2 read (AES_GCM_KEY)" kms-v2-read "$o_gcm_dec"
row16 "kms v2 read (HKDF seed)" kms-v2-seed-read "$o_gcm_dec"
row16 "kms v1 read" kms-v1-read "$o_gcm_dec"
echo "(reads and kms rows against openssl speed -decrypt -evp aes-256-gcm; kms rows"
echo " are the data step once the plugin's DEK or seed is cached: parse + GCM open)"

echo "==> whole process: atrest vs Go crypto/cipher, ${SIZE_MIB} MiB value"
key_b64=$(head -c 32 /dev/urandom | base64)
printf '%s\n' "$key_b64" >"$tmp/key.b64"
cat >"$tmp/enc.yaml" <<YAML
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: k1
              secret: $key_b64
      - identity: {}
YAML
chmod 600 "$tmp/enc.yaml" "$tmp/key.b64"
ek=/registry/secrets/default/big
# Starts with the protobuf magic so atrest sees a Kubernetes object.
{ printf 'k8s\0'; head -c $((SIZE_MIB * 1048576 - 4)) /dev/urandom; } >"$tmp/plain"
A=("$atrest")
enc_a() { "${A[@]}" encrypt --config "$tmp/enc.yaml" --etcd-key "$ek" <"$1" >"$2"; }
dec_a() { "${A[@]}" decrypt --config "$tmp/enc.yaml" --etcd-key "$ek" <"$1" >"$2"; }
enc_g() { "$tmp/goref" -provider aescbc -name k1 -key "$(cat "$tmp/key.b64")" seal <"$1" >"$2"; }
dec_g() { "$tmp/goref" -provider aescbc -name k1 -key "$(cat "$tmp/key.b64")" open <"$1" >"$2"; }

echo "--> interop"
enc_a "$tmp/plain" "$tmp/by-atrest"
enc_g "$tmp/plain" "$tmp/by-go"
head -c 21 "$tmp/by-atrest" | grep -q '^k8s:enc:aescbc:v1:k1:' || die "atrest output lacks the aescbc prefix"
cmp -n 21 "$tmp/by-atrest" "$tmp/by-go" >/dev/null || die "prefixes differ"
[ "$(stat -c %s "$tmp/by-atrest")" = "$(stat -c %s "$tmp/by-go")" ] || die "sealed sizes differ"
dec_g "$tmp/by-atrest" "$tmp/out" || die "Go cannot decrypt atrest's output"
cmp "$tmp/out" "$tmp/plain" || die "Go's decryption of atrest's output differs from the plaintext"
dec_a "$tmp/by-go" "$tmp/out" || die "atrest cannot decrypt Go's output"
cmp "$tmp/out" "$tmp/plain" || die "atrest's decryption of Go's output differs from the plaintext"
rm -f "$tmp/out"
echo "    ok: Go reads atrest's value and atrest reads Go's, byte for byte"

best() { # best wall seconds of 3 runs of "$@" (stdout to /dev/null)
  local b="" t
  for _ in 1 2 3; do
    t=$( { TIMEFORMAT=%R; time "$@" /dev/null; } 2>&1 )
    b=$(awk -v a="$b" -v t="$t" 'BEGIN{ if (a=="" || t<a) print t; else print a }')
  done
  echo "$b"
}
ad=$(best dec_a "$tmp/by-go")
gd=$(best dec_g "$tmp/by-go")
ae=$(best enc_a "$tmp/plain")
ge=$(best enc_g "$tmp/plain")
mbs() { awk -v s="$1" -v n="$SIZE_MIB" 'BEGIN{printf "%.0f", n*1048576/1e6/s}'; }
printf '%-10s %12s %12s %12s %12s %10s\n' "" "atrest s" "atrest MB/s" "Go s" "Go MB/s" "speed-up"
printf '%-10s %12s %12s %12s %12s %9.2fx\n' decrypt "$ad" "$(mbs "$ad")" "$gd" "$(mbs "$gd")" "$(awk "BEGIN{print $gd/$ad}")"
printf '%-10s %12s %12s %12s %12s %9.2fx\n' encrypt "$ae" "$(mbs "$ae")" "$ge" "$(mbs "$ge")" "$(awk "BEGIN{print $ge/$ae}")"
