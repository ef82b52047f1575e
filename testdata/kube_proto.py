#!/usr/bin/env python3
"""Encode Kubernetes objects exactly as kube-apiserver stores them in etcd (protobuf).

An independent encoder for test fixtures (Python 3, standard library only).

Layout (upstream sources):
  * b"k8s\\x00" + runtime.Unknown
    (apimachinery pkg/runtime/serializer/protobuf/protobuf.go, pkg/runtime/generated.proto).
    Unknown.NestedMarshalTo (pkg/runtime/types_proto.go) always writes all four
    fields: typeMeta=1 {apiVersion=1, kind=2}, raw=2, contentEncoding=3 (""),
    contentType=4 ("").
  * ObjectMeta (apimachinery pkg/apis/meta/v1/generated.proto), in the order Go's
    generated Marshal writes it: the non-pointer fields name=1, generateName=2,
    namespace=3, selfLink=4, uid=5, resourceVersion=6, generation=7 and
    creationTimestamp=8 always (empty when unset); then labels=11 and annotations=12
    as map entries {key=1, value=2} sorted by key.
  * Time: Timestamp {seconds=1, nanos=2}, both written, nanos always 0
    (time_proto.go); a zero time is an empty message.
  * v1.Secret (api core/v1/generated.proto): metadata=1, data=2 (sorted), type=3
    (always), immutable=5 (only when set).
  * v1.ConfigMap: metadata=1, data=2, binaryData=3 (both sorted), immutable=4 (when set).

Usage:
  kube_proto.py secret --name N --namespace NS [--data k=v ...] [--type T] [--immutable] > out.bin
  kube_proto.py configmap --name N [--data k=v ...] [--binary-data k=BASE64 ...] > out.bin
  kube_proto.py generic --api-version apps/v1 --kind Deployment --name N > out.bin
Common options: --uid U, --created UNIX_SECONDS, --label k=v, --annotation k=v.
The generic command writes only metadata (a valid object of any built-in type,
with every other field unset).
"""

import argparse
import base64
import sys

MAGIC = b"k8s\x00"


def varint(n):
    """Unsigned LEB128; negative int64 values use their 64-bit two's complement."""
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire_type):
    return varint(field << 3 | wire_type)


def f_varint(field, n):
    return key(field, 0) + varint(n)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return key(field, 2) + varint(len(data)) + data


def f_map(field, mapping):
    out = b""
    for k in sorted(mapping, key=lambda s: s.encode("utf-8")):
        out += f_bytes(field, f_bytes(1, k) + f_bytes(2, mapping[k]))
    return out


def time_msg(seconds):
    if seconds is None:
        return b""
    return f_varint(1, seconds) + f_varint(2, 0)


def object_meta(name="", namespace="", uid="", created=None, labels=None,
                annotations=None, generate_name="", generation=0):
    return (
        f_bytes(1, name)
        + f_bytes(2, generate_name)
        + f_bytes(3, namespace)
        + f_bytes(4, "")  # selfLink
        + f_bytes(5, uid)
        + f_bytes(6, "")  # resourceVersion: stored empty, etcd's revision is used
        + f_varint(7, generation)
        + f_bytes(8, time_msg(created))
        + f_map(11, labels or {})
        + f_map(12, annotations or {})
    )


def unknown(api_version, kind, raw):
    type_meta = f_bytes(1, api_version) + f_bytes(2, kind)
    return MAGIC + f_bytes(1, type_meta) + f_bytes(2, raw) + f_bytes(3, "") + f_bytes(4, "")


def secret(meta, data=None, type_="", immutable=None):
    """data maps key -> bytes."""
    raw = f_bytes(1, meta) + f_map(2, data or {}) + f_bytes(3, type_)
    if immutable is not None:
        raw += f_varint(5, 1 if immutable else 0)
    return unknown("v1", "Secret", raw)


def config_map(meta, data=None, binary_data=None, immutable=None):
    raw = f_bytes(1, meta) + f_map(2, data or {}) + f_map(3, binary_data or {})
    if immutable is not None:
        raw += f_varint(4, 1 if immutable else 0)
    return unknown("v1", "ConfigMap", raw)


def generic(api_version, kind, meta):
    return unknown(api_version, kind, f_bytes(1, meta))


def pairs(items):
    out = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise SystemExit("expected key=value, got %r" % item)
        out[k] = v
    return out


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", required=True)
    common.add_argument("--namespace", default="")
    common.add_argument("--uid", default="")
    common.add_argument("--created", type=int, default=None, help="creationTimestamp, Unix seconds")
    common.add_argument("--label", action="append")
    common.add_argument("--annotation", action="append")

    s = sub.add_parser("secret", parents=[common])
    s.add_argument("--data", action="append", help="key=value (value taken as UTF-8 bytes)")
    s.add_argument("--type", default="Opaque")
    s.add_argument("--immutable", action="store_true")

    c = sub.add_parser("configmap", parents=[common])
    c.add_argument("--data", action="append", help="key=value")
    c.add_argument("--binary-data", action="append", help="key=BASE64")
    c.add_argument("--immutable", action="store_true")

    g = sub.add_parser("generic", parents=[common])
    g.add_argument("--api-version", required=True)
    g.add_argument("--kind", required=True)

    a = p.parse_args(argv)
    meta = object_meta(a.name, a.namespace, a.uid, a.created, pairs(a.label), pairs(a.annotation))
    if a.cmd == "secret":
        data = {k: v.encode("utf-8") for k, v in pairs(a.data).items()}
        out = secret(meta, data, a.type, True if a.immutable else None)
    elif a.cmd == "configmap":
        binary = {k: base64.b64decode(v, validate=True) for k, v in pairs(a.binary_data).items()}
        out = config_map(meta, pairs(a.data), binary, True if a.immutable else None)
    else:
        out = generic(a.api_version, a.kind, meta)
    sys.stdout.buffer.write(out)


if __name__ == "__main__":
    main(sys.argv[1:])
