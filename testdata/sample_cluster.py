#!/usr/bin/env python3
"""Write a realistic Kubernetes cluster state into a running etcd, as kube-apiserver
would have stored it over time, and record what was written (expected.json).

Used by make-sample.sh (sample fixture) and by benches (large snapshots). Objects
are encoded by kube_proto.py; values are encrypted by `atrest encrypt` with
one-key configs, so each value's provider and key are known exactly.
"""
import argparse
import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kube_proto as kp  # noqa: E402

CREATED = 1764400000  # 2025-11-29T07:06:40Z
# The etcdctl to use (tests/run.sh points it at etcd 3.5's for the second pass).
ETCDCTL = os.environ.get("ATREST_ETCDCTL_BIN") or "etcdctl"


def b64(b):
    return base64.b64encode(b).decode()


class Cluster:
    def __init__(self, atrest, endpoint, work):
        self.atrest = atrest
        self.endpoint = endpoint
        self.work = work
        self.live = {}       # key -> expected audit entry
        self.secrets = {}    # key -> expected decoded Secret
        self.history = []    # superseded plaintext Secret revisions (key, mod_revision)
        self.plain_revs = {}  # key -> mod_revision of its live plaintext Secret value
        self.compacted = 0
        self.configs = {}

    def ctl(self, *args, stdin=None):
        r = subprocess.run([ETCDCTL, "--endpoints=" + self.endpoint, *args],
                           input=stdin, capture_output=True, check=False)
        if r.returncode != 0:
            raise SystemExit("etcdctl %s failed: %s" % (" ".join(args), r.stderr.decode()))
        return r.stdout

    def revision(self):
        st = json.loads(self.ctl("endpoint", "status", "-w", "json"))
        return int(st[0]["Status"]["header"]["revision"])

    def key_config(self, name, provider, key_name, secret, resource="secrets"):
        path = os.path.join(self.work, name + ".yaml")
        with open(path, "w") as f:
            f.write("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                    "resources:\n  - resources: [%s]\n    providers:\n"
                    "      - %s:\n          keys:\n            - name: %s\n              secret: %s\n"
                    % (resource, provider, key_name, b64(secret)))
        self.configs[name] = (path, provider, key_name)

    def encrypt(self, cfg, key, plaintext):
        path = self.configs[cfg][0]
        r = subprocess.run([self.atrest, "encrypt", "--config", path, "--etcd-key", key],
                           input=plaintext, capture_output=True, check=False)
        if r.returncode != 0:
            raise SystemExit("atrest encrypt failed: " + r.stderr.decode())
        return r.stdout

    def put(self, key, plaintext, cfg=None, status=None, mangle=None, secret=None):
        """Store `plaintext` at `key`, encrypted with one-key config `cfg` (None: plaintext)."""
        value = plaintext if cfg is None else self.encrypt(cfg, key, plaintext)
        if mangle:
            value = mangle(value)
        old_plain = self.plain_revs.pop(key, None)
        self.ctl("put", key, stdin=value)
        rev = self.revision()
        if old_plain is not None:
            self.history.append((key, old_plain))
        if cfg is None:
            provider, key_name = "identity", None
            if key.startswith("/registry/secrets/") and plaintext[:4] in (b"k8s\x00", b'{"ki'):
                self.plain_revs[key] = rev
        else:
            _, provider, key_name = self.configs[cfg]
        if status is not None:
            self.live[key] = {"provider": provider, "key_name": key_name, "status": status}
        if secret is not None and status in ("current", "stale", "plaintext"):
            self.secrets[key] = secret
        else:
            self.secrets.pop(key, None)
        return rev

    def delete(self, key):
        self.ctl("del", key)
        self.live.pop(key, None)
        self.secrets.pop(key, None)
        old = self.plain_revs.pop(key, None)
        if old is not None:
            self.history.append((key, old))

    def compact(self):
        rev = self.revision()
        self.ctl("compact", str(rev), "--physical")
        self.compacted = rev
        # History below the compaction revision is gone.
        self.history = [(k, r) for (k, r) in self.history if r >= rev]


def secret_obj(name, ns, data, type_="Opaque", labels=None, json_form=False):
    expected = {"name": name, "namespace": ns, "type": type_,
                "data": {k: b64(v) for k, v in sorted(data.items())}}
    if json_form:
        obj = {"kind": "Secret", "apiVersion": "v1",
               "metadata": {"name": name, "namespace": ns, "uid": "uid-" + name,
                            "creationTimestamp": "2025-11-29T07:06:40Z"},
               "data": {k: b64(v) for k, v in data.items()}, "type": type_}
        return json.dumps(obj, separators=(",", ":")).encode() + b"\n", expected
    meta = kp.object_meta(name=name, namespace=ns, uid="uid-" + name, created=CREATED, labels=labels)
    return kp.secret(meta, data, type_), expected


def configmap_obj(name, ns, data):
    meta = kp.object_meta(name=name, namespace=ns, uid="uid-cm-" + name, created=CREATED)
    return kp.config_map(meta, {k: v.encode() for k, v in data.items()})


def generic_obj(api_version, kind, name, ns=""):
    meta = kp.object_meta(name=name, namespace=ns, uid="uid-%s-%s" % (kind.lower(), name), created=CREATED)
    return kp.generic(api_version, kind, meta)


def build_sample(c, out, bulk=0, value_size=0):
    keys = {n: os.urandom(32) for n in ("key0", "key1", "key2", "gcm1", "gcm1-other", "box1", "cmkey")}
    c.key_config("key0", "aescbc", "key0", keys["key0"])
    c.key_config("key1", "aescbc", "key1", keys["key1"])
    c.key_config("key2", "aescbc", "key2", keys["key2"])
    c.key_config("gcm1", "aesgcm", "gcm1", keys["gcm1"])
    c.key_config("gcm1-other", "aesgcm", "gcm1", keys["gcm1-other"])
    c.key_config("box1", "secretbox", "box1", keys["box1"])
    c.key_config("cmkey", "aesgcm", "cmkey", keys["cmkey"], resource="configmaps")

    # The config of today's control plane: aescbc key2 writes; key1, gcm1 and box1
    # still read older data; identity reads what was never encrypted.
    config = (
        "apiVersion: apiserver.config.k8s.io/v1\n"
        "kind: EncryptionConfiguration\n"
        "resources:\n"
        "  - resources:\n      - secrets\n"
        "    providers:\n"
        "      - aescbc:\n          keys:\n"
        "            - name: key2\n              secret: %s\n"
        "            - name: key1\n              secret: %s\n"
        "      - aesgcm:\n          keys:\n"
        "            - name: gcm1\n              secret: %s\n"
        "      - secretbox:\n          keys:\n"
        "            - name: box1\n              secret: %s\n"
        "      - identity: {}\n"
        "  - resources:\n      - configmaps\n"
        "    providers:\n"
        "      - identity: {}\n"
        "      - aesgcm:\n          keys:\n"
        "            - name: cmkey\n              secret: %s\n"
    ) % (b64(keys["key2"]), b64(keys["key1"]), b64(keys["gcm1"]), b64(keys["box1"]), b64(keys["cmkey"]))
    cfg_path = os.path.join(out, "encryption-config.yaml")
    with open(cfg_path + ".tmp", "w") as f:
        f.write(config)
    os.chmod(cfg_path + ".tmp", 0o600)
    os.replace(cfg_path + ".tmp", cfg_path)

    # --- The cluster is born without encryption: everything is plaintext.
    for ns in ("default", "kube-system", "kube-public", "prod", "team-a"):
        c.put("/registry/namespaces/" + ns, generic_obj("v1", "Namespace", ns), status="current")
        c.put("/registry/configmaps/%s/kube-root-ca.crt" % ns,
              configmap_obj("kube-root-ca.crt", ns, {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"}),
              status="current")
    c.put("/registry/services/specs/default/kubernetes", generic_obj("v1", "Service", "kubernetes", "default"), status="current")
    c.put("/registry/services/endpoints/default/kubernetes", generic_obj("v1", "Endpoints", "kubernetes", "default"), status="current")
    c.put("/registry/minions/cp-1", generic_obj("v1", "Node", "cp-1"), status="current")
    c.put("/registry/pods/kube-system/etcd-cp-1", generic_obj("v1", "Pod", "etcd-cp-1", "kube-system"), status="current")
    c.put("/registry/deployments/kube-system/coredns", generic_obj("apps/v1", "Deployment", "coredns", "kube-system"), status="current")
    c.put("/registry/leases/kube-node-lease/cp-1", generic_obj("coordination.k8s.io/v1", "Lease", "cp-1", "kube-node-lease"), status="current")
    c.put("/registry/clusterroles/admin", generic_obj("rbac.authorization.k8s.io/v1", "ClusterRole", "admin"), status="current")
    c.put("/registry/example.com/widgets/default/w1",
          json.dumps({"apiVersion": "example.com/v1", "kind": "Widget",
                      "metadata": {"name": "w1", "namespace": "default"}, "spec": {"size": 3}}).encode(),
          status="current")
    c.ctl("put", "compact_rev_key", stdin=b"1")  # written by kube-apiserver's compactor, outside the prefix

    def secret(key_ns_name, data, cfg, status, mangle=None, **kw):
        ns, name = key_ns_name.split("/")
        body, exp = secret_obj(name, ns, data, **kw)
        return c.put("/registry/secrets/%s/%s" % (ns, name), body, cfg=cfg, status=status,
                     secret=exp, mangle=mangle)

    secret("kube-system/bootstrap-token-abcdef", {"token-id": b"abcdef", "token-secret": b"0123456789abcdef"},
           None, "plaintext", type_="bootstrap.kubernetes.io/token")
    secret("default/early", {"password": b"first-version"}, None, "plaintext")
    secret("default/json-plain", {"user": b"admin"}, None, "plaintext", json_form=True)
    c.put("/registry/secrets/default/deleted-later", secret_obj("deleted-later", "default", {"k": b"v"})[0], status="plaintext")

    # --- Encryption is enabled with aesgcm gcm1 (an early choice), and a compaction runs.
    secret("default/early", {"password": b"second-version"}, "gcm1", "stale")
    secret("prod/gcm-secret", {"cert": b"gcm data"}, "gcm1", "stale")
    c.compact()

    # --- Later: switch to secretbox, then to aescbc key1, then rotate to key2.
    secret("prod/box-secret", {"api": b"box data \x00 with NUL"}, "box1", "stale")
    secret("default/api-token", {"token": b"tok-key1"}, "key1", "stale",
           type_="kubernetes.io/service-account-token", labels={"app": "api"})
    secret("default/db-password", {"password": b"s3cr3t", "username": b"app"}, "key2", "current")
    secret("prod/tls-cert", {"tls.crt": b"CERT" * 50, "tls.key": b"KEY" * 40}, "key2", "current",
           type_="kubernetes.io/tls")
    secret("default/json-secret", {"config.json": b'{"a":1}'}, "key2", "current", json_form=True)
    # A Secret that was plaintext, then rewritten under key2: its old revision stays
    # in the history until the next compaction.
    secret("team-a/rotated", {"password": b"plain-then-encrypted"}, None, "plaintext")
    secret("team-a/rotated", {"password": b"plain-then-encrypted"}, "key2", "current")
    c.delete("/registry/secrets/default/deleted-later")
    for i in range(bulk or 12):
        pad = os.urandom(value_size // 2).hex().encode() if value_size else b"value-%d" % i
        secret("team-a/app-%04d" % i, {"password": pad, "user": b"u%d" % i}, "key2", "current")

    # --- Problems an audit must find.
    secret("legacy/old-key-secret", {"k": b"under a key nobody has"}, "key0", "unknown-key")
    secret("prod/wrong-gcm-key", {"k": b"same key name, other key"}, "gcm1-other", "undecryptable")
    secret("prod/corrupted", {"k": b"corrupted on disk"}, "key2", "undecryptable",
           mangle=lambda v: v[:-5])
    c.put("/registry/secrets/kube-system/malformed", b"\x00\x01not an object", status="malformed")

    # --- ConfigMaps: this config writes identity first, so an encrypted one is stale.
    c.put("/registry/configmaps/prod/app-config", configmap_obj("app-config", "prod", {"mode": "fast"}),
          cfg="cmkey", status="stale")

    expected = {
        "revision": c.revision(),
        "compacted_revision": c.compacted,
        "objects": dict(sorted(c.live.items())),
        "secrets": dict(sorted(c.secrets.items())),
        "history_plaintext": sorted([{"key": k, "mod_revision": r} for k, r in c.history],
                                    key=lambda x: (x["key"], x["mod_revision"])),
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--atrest", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--bulk", type=int, default=0, help="number of extra current Secrets")
    p.add_argument("--value-size", type=int, default=0, help="bytes of random data per bulk Secret")
    a = p.parse_args()
    build_sample(Cluster(a.atrest, a.endpoint, a.work), a.out, a.bulk, a.value_size)


if __name__ == "__main__":
    main()
