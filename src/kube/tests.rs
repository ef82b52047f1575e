//! Scenario tests: hand-built stored objects, decoded as a user would see them.

use super::*;
use crate::wire::WireError;
use proptest::prelude::*;
use serde_json::json;

/// A tiny protobuf encoder for fixtures, writing fields in the order Go's generated
/// `Marshal` does.
#[derive(Default, Clone)]
struct Enc(Vec<u8>);

impl Enc {
    fn varint(&mut self, mut v: u64) -> &mut Self {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return self;
            }
            self.0.push(b | 0x80);
        }
    }
    fn tag(&mut self, field: u32, wire: u8) -> &mut Self {
        self.varint(u64::from(field) << 3 | u64::from(wire))
    }
    fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.tag(field, 0).varint(v as u64)
    }
    fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.tag(field, 2).varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(&mut self, field: u32, m: &Enc) -> &mut Self {
        self.bytes(field, &m.0)
    }
    fn entry(&mut self, field: u32, k: &str, v: &[u8]) -> &mut Self {
        let mut e = Enc::default();
        e.str(1, k).bytes(2, v);
        self.msg(field, &e)
    }
}

fn time(seconds: i64) -> Enc {
    let mut t = Enc::default();
    t.int(1, seconds).int(2, 0);
    t
}

/// `k8s\x00` + runtime.Unknown, as `Unknown.NestedMarshalTo` writes it.
fn stored(api_version: &str, kind: &str, raw: &Enc) -> Vec<u8> {
    let mut tm = Enc::default();
    tm.str(1, api_version).str(2, kind);
    let mut u = Enc::default();
    u.msg(1, &tm).msg(2, raw).str(3, "").str(4, "");
    let mut out = PROTOBUF_MAGIC.to_vec();
    out.extend(u.0);
    out
}

/// ObjectMeta with every field we decode, as the API server writes it.
fn full_meta(name: &str, namespace: &str) -> Enc {
    let mut owner = Enc::default();
    owner
        .str(1, "ReplicaSet")
        .str(3, "web-5d4f")
        .str(4, "11111111-2222-3333-4444-555555555555")
        .str(5, "apps/v1")
        .int(6, 1)
        .int(7, 1);
    let mut fields_v1 = Enc::default();
    fields_v1.str(1, r#"{"f:data":{".":{},"f:password":{}},"f:type":{}}"#);
    let mut managed = Enc::default();
    managed
        .str(1, "kubectl-create")
        .str(2, "Update")
        .str(3, "v1")
        .msg(4, &time(1_704_164_645))
        .str(6, "FieldsV1")
        .msg(7, &fields_v1);
    let mut m = Enc::default();
    m.str(1, name)
        .str(2, "")
        .str(3, namespace)
        .str(4, "")
        .str(5, "0a1b2c3d-0000-4000-8000-000000000001")
        .str(6, "")
        .int(7, 3)
        .msg(8, &time(1_704_164_645))
        .entry(11, "app", b"db")
        .entry(11, "tier", b"backend")
        .entry(12, "note", b"true")
        .msg(13, &owner)
        .str(14, "example.com/protect")
        .msg(17, &managed);
    m
}

fn full_secret() -> Vec<u8> {
    let mut s = Enc::default();
    s.msg(1, &full_meta("db", "prod"))
        .entry(2, "password", b"s3cr3t")
        .entry(2, "user", b"admin")
        .entry(2, "binary", &[0, 159, 255])
        .str(3, "Opaque")
        .int(5, 1);
    stored("v1", "Secret", &s)
}

fn expected_meta() -> Value {
    json!({
        "annotations": {"note": "true"},
        "creationTimestamp": "2024-01-02T03:04:05Z",
        "finalizers": ["example.com/protect"],
        "generation": 3,
        "labels": {"app": "db", "tier": "backend"},
        "managedFields": [{
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:password": {}}, "f:type": {}},
            "manager": "kubectl-create",
            "operation": "Update",
            "time": "2024-01-02T03:04:05Z"
        }],
        "name": "db",
        "namespace": "prod",
        "ownerReferences": [{
            "apiVersion": "apps/v1",
            "blockOwnerDeletion": true,
            "controller": true,
            "kind": "ReplicaSet",
            "name": "web-5d4f",
            "uid": "11111111-2222-3333-4444-555555555555"
        }],
        "resourceVersion": "4242",
        "uid": "0a1b2c3d-0000-4000-8000-000000000001"
    })
}

const RV: ManifestOptions = ManifestOptions {
    resource_version: Some(4242),
    clean: false,
};

#[test]
fn secret_decodes_like_kubectl_get_o_json() {
    let got = decode_manifest(&full_secret(), &RV).unwrap();
    let want = json!({
        "apiVersion": "v1",
        "data": {"binary": "AJ//", "password": "czNjcjN0", "user": "YWRtaW4="},
        "immutable": true,
        "kind": "Secret",
        "metadata": expected_meta(),
        "type": "Opaque"
    });
    assert_eq!(got, want);
    // Keys are sorted at every level, as kubectl prints them.
    let text = serde_json::to_string(&got).unwrap();
    assert!(text.starts_with(r#"{"apiVersion":"v1","data":{"binary":"AJ//","password""#));
    assert_eq!(text, serde_json::to_string(&want).unwrap());
}

#[test]
fn secret_info() {
    let info = object_info(&full_secret()).unwrap();
    assert_eq!(
        info,
        ObjectInfo {
            api_version: "v1".into(),
            kind: "Secret".into(),
            name: "db".into(),
            namespace: Some("prod".into()),
            encoding: Encoding::Protobuf,
        }
    );
    assert!(fully_decoded(&info));
}

#[test]
fn clean_secret_is_ready_to_apply() {
    let opts = ManifestOptions {
        resource_version: Some(4242),
        clean: true,
    };
    let got = decode_manifest(&full_secret(), &opts).unwrap();
    let meta = got["metadata"].as_object().unwrap();
    let keys: Vec<&str> = meta.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "annotations",
            "finalizers",
            "labels",
            "name",
            "namespace",
            "ownerReferences"
        ]
    );
    assert_eq!(got["data"]["password"], "czNjcjN0");
}

#[test]
fn secret_yaml_parses_back_to_the_same_manifest() {
    let got = decode_manifest(&full_secret(), &RV).unwrap();
    let yaml = to_yaml(&got).unwrap();
    let back: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(back, got);
    assert!(yaml.contains("\n  password: czNjcjN0\n"), "{yaml}");
    assert!(yaml.contains("\n    note: \"true\"\n"), "{yaml}");
    assert!(yaml.contains("\n  resourceVersion: \"4242\"\n"), "{yaml}");
    assert!(yaml.contains("\nimmutable: true\n"), "{yaml}");
}

#[test]
fn minimal_secret_prints_null_creation_timestamp_and_omits_empties() {
    // What Go writes for an object with nothing set: every non-pointer field, empty.
    let mut m = Enc::default();
    m.str(1, "s")
        .str(2, "")
        .str(3, "ns")
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .int(7, 0);
    m.bytes(8, b""); // zero Time
    let mut s = Enc::default();
    s.msg(1, &m).str(3, "");
    let got = decode_manifest(&stored("v1", "Secret", &s), &ManifestOptions::default()).unwrap();
    // An empty type reads as Opaque: kube-apiserver's storage codec defaults
    // what it reads (`SetDefaults_Secret`, kubernetes `pkg/apis/core/v1/defaults.go`).
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"creationTimestamp": null, "name": "s", "namespace": "ns"},
            "type": "Opaque"
        })
    );
}

/// kube-apiserver converts a Secret it reads to the internal type, and
/// `Convert_v1_Secret_To_core_Secret` (kubernetes `pkg/apis/core/v1/conversion.go`)
/// writes every `stringData` value over `data` as `[]byte(v)`, the stored bytes,
/// whatever the order on the wire; the internal type has no `stringData`. So
/// kubectl prints such a Secret with the values in `data` and no `stringData`.
#[test]
fn stored_string_data_is_folded_into_data() {
    let mut m = Enc::default();
    m.str(1, "s").str(3, "ns");
    let mut bad = Enc::default();
    bad.str(1, "c").bytes(2, b"th\xffree");
    let mut s = Enc::default();
    s.msg(1, &m)
        .entry(4, "b", b"two")
        .msg(4, &bad)
        .entry(2, "a", b"1")
        .entry(2, "b", b"2")
        .str(3, "Opaque");
    let bytes = stored("v1", "Secret", &s);
    let got = decode_manifest(&bytes, &RV).unwrap();
    assert_eq!(
        got["data"],
        json!({"a": "MQ==", "b": "dHdv", "c": "dGj/cmVl"})
    );
    assert!(got.get("stringData").is_none(), "{got}");
    let mut y = emit::YamlEmitter::new();
    assert_eq!(
        emit_manifest_noting(&bytes, &RV, &mut y).unwrap(),
        Omissions::default()
    );
}

#[test]
fn config_map_decodes_in_full() {
    let mut m = Enc::default();
    m.str(1, "settings").str(3, "default").msg(8, &time(1));
    let mut c = Enc::default();
    c.msg(1, &m)
        .entry(2, "app.properties", b"a=1\nb=2\n")
        .entry(2, "mode", b"fast")
        .entry(3, "logo.png", &[0x89, b'P', b'N', b'G'])
        .int(4, 0);
    let plaintext = stored("v1", "ConfigMap", &c);
    let got = decode_manifest(&plaintext, &RV).unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "binaryData": {"logo.png": "iVBORw=="},
            "data": {"app.properties": "a=1\nb=2\n", "mode": "fast"},
            "immutable": false,
            "kind": "ConfigMap",
            "metadata": {
                "creationTimestamp": "1970-01-01T00:00:01Z",
                "name": "settings",
                "namespace": "default",
                "resourceVersion": "4242"
            }
        })
    );
    let yaml = to_yaml(&got).unwrap();
    assert!(
        yaml.contains("  app.properties: |\n    a=1\n    b=2\n"),
        "{yaml}"
    );
    assert_eq!(serde_saphyr::from_str::<Value>(&yaml).unwrap(), got);
}

#[test]
fn other_types_print_type_and_metadata_only() {
    // A Deployment: metadata = 1, spec = 2, status = 3 (spec/status left opaque).
    let mut spec = Enc::default();
    spec.int(1, 3).bytes(2, b"\x0a\x00");
    let mut d = Enc::default();
    d.msg(1, &full_meta("web", "prod"))
        .msg(2, &spec)
        .bytes(3, b"");
    let plaintext = stored("apps/v1", "Deployment", &d);
    let got = decode_manifest(&plaintext, &RV).unwrap();
    let mut meta = expected_meta();
    meta["name"] = json!("web");
    assert_eq!(
        got,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta})
    );
    let info = object_info(&plaintext).unwrap();
    assert_eq!(
        (info.kind.as_str(), info.name.as_str()),
        ("Deployment", "web")
    );
    assert!(!fully_decoded(&info));
}

#[test]
fn cluster_scoped_object_has_no_namespace() {
    let mut m = Enc::default();
    m.str(1, "kube-system").str(3, "");
    let mut ns = Enc::default();
    ns.msg(1, &m);
    let info = object_info(&stored("v1", "Namespace", &ns)).unwrap();
    assert_eq!(info.namespace, None);
    assert_eq!(info.name, "kube-system");
}

#[test]
fn repeated_metadata_merges_like_go() {
    let mut a = Enc::default();
    a.str(1, "first").entry(11, "a", b"1");
    let mut b = Enc::default();
    b.str(1, "second").entry(11, "b", b"2");
    let mut s = Enc::default();
    s.msg(1, &a).msg(1, &b);
    let got = decode_manifest(&stored("v1", "Secret", &s), &ManifestOptions::default()).unwrap();
    assert_eq!(got["metadata"]["name"], "second");
    assert_eq!(got["metadata"]["labels"], json!({"a": "1", "b": "2"}));
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let mut m = Enc::default();
    m.str(1, "x").int(99, 5);
    m.tag(100, 1);
    m.0.extend([0; 8]);
    m.tag(101, 5);
    m.0.extend([0; 4]);
    m.bytes(102, b"opaque");
    let mut s = Enc::default();
    s.msg(1, &m).int(50, 1).str(3, "Opaque");
    let bytes = stored("v1", "Secret", &s);
    let got = decode_manifest(&bytes, &ManifestOptions::default()).unwrap();
    assert_eq!(got["metadata"]["name"], "x");
    assert_eq!(got["type"], "Opaque");
    // Skipped when printing, but never silently: every one is reported.
    let mut y = emit::YamlEmitter::new();
    assert_eq!(
        emit_manifest_noting(&bytes, &ManifestOptions::default(), &mut y)
            .unwrap()
            .undecoded,
        [
            "Secret field 50",
            "metadata field 99",
            "metadata field 100",
            "metadata field 101",
            "metadata field 102",
        ]
    );
}

/// A field the decoder does not know (one a newer Kubernetes added to
/// `core/v1/generated.proto` or `meta/v1/generated.proto`) is kept by
/// kube-apiserver of that version and printed by kubectl; `dump` cannot print
/// it, and must say the manifest lacks it rather than drop it silently.
#[test]
fn unknown_fields_are_reported_not_dropped_silently() {
    let mut owner = Enc::default();
    owner.str(1, "ReplicaSet").str(3, "web").int(8, 1);
    let mut managed = Enc::default();
    managed.str(1, "kubectl").str(9, "new");
    let mut m = Enc::default();
    m.str(1, "db")
        .str(3, "prod")
        .msg(13, &owner)
        .msg(17, &managed)
        .str(18, "x")
        .str(18, "y");
    let mut s = Enc::default();
    s.msg(1, &m)
        .entry(2, "k", b"v")
        .str(3, "Opaque")
        .int(6, 1)
        .bytes(7, b"more");
    let bytes = stored("v1", "Secret", &s);
    let mut out = Vec::new();
    let undecoded = emit_manifest_noting(
        &bytes,
        &ManifestOptions::default(),
        &mut emit::JsonEmitter::new(&mut out, b"\n"),
    )
    .unwrap()
    .undecoded;
    assert_eq!(
        undecoded,
        [
            "Secret field 6",
            "Secret field 7",
            "metadata.ownerReferences[0] field 8",
            "metadata.managedFields[0] field 9",
            "metadata field 18",
        ]
    );

    let mut cm = Enc::default();
    cm.msg(1, &m).entry(2, "a", b"b").int(5, 1);
    let mut y = emit::YamlEmitter::new();
    let undecoded = emit_manifest_noting(&stored("v1", "ConfigMap", &cm), &RV, &mut y)
        .unwrap()
        .undecoded;
    assert!(undecoded.contains(&"ConfigMap field 5".to_string()));
    assert!(undecoded.contains(&"metadata field 18".to_string()));

    // Other protobuf types: their metadata is printed in full, so it is checked.
    let mut d = Enc::default();
    d.msg(1, &m).bytes(2, b"spec");
    let mut y = emit::YamlEmitter::new();
    let omitted = emit_manifest_noting(&stored("apps/v1", "Deployment", &d), &RV, &mut y).unwrap();
    assert!(omitted.metadata_only);
    assert!(omitted.undecoded.contains(&"metadata field 18".to_string()));

    // What the API server writes today has nothing left out.
    let mut y = emit::YamlEmitter::new();
    assert_eq!(
        emit_manifest_noting(&full_secret(), &RV, &mut y).unwrap(),
        Omissions::default()
    );
}

/// `kubectl get -o yaml` prints map keys in go-yaml v2's order, not byte order:
/// sigs.k8s.io/yaml `JSONToYAML` (yaml.go) reads the JSON into Go maps, and
/// go-yaml v2 `encode.go` sorts a map's keys with `keyList.Less` (`sorter.go`):
/// digit runs compare as numbers, a non-letter sorts before a letter. The keys
/// below in the order kubectl printed them. `-o json` keeps byte order (Go's
/// `encoding/json` sorts map keys by bytes).
#[test]
fn yaml_keys_are_in_kubectl_order() {
    let kubectl_order = [
        "0", "1", "9", "09", "10", "B1", "a-b", "a.b", "a_b", "a~", "a1", "a01", "a001", "a9",
        "a9a", "a09b", "a10", "aB", "key1", "key2", "key10", "v1.2.9", "v1.2.10", "x_y", "x0",
        "xY",
    ];
    let mut m = Enc::default();
    m.str(1, "cm").str(3, "default");
    for k in kubectl_order.iter().rev() {
        m.entry(11, k, b"v");
    }
    let mut cm = Enc::default();
    cm.msg(1, &m);
    for k in kubectl_order.iter().rev() {
        cm.entry(2, k, b"v").entry(3, k, b"v");
    }
    let bytes = stored("v1", "ConfigMap", &cm);
    let mut y = emit::YamlEmitter::new();
    emit_manifest(&bytes, &RV, &mut y).unwrap();
    let yaml = y.finish().unwrap();
    // Each of binaryData, data and labels lists the keys in kubectl's order.
    let keys: Vec<String> = yaml
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| {
            l.trim_start()
                .split_once(": ")
                .map(|(k, _)| k.trim_matches('"').to_string())
        })
        .filter(|k| kubectl_order.contains(&k.as_str()))
        .collect();
    let want: Vec<String> = kubectl_order
        .iter()
        .chain(&kubectl_order)
        .chain(&kubectl_order)
        .map(|k| k.to_string())
        .collect();
    assert_eq!(keys, want, "{yaml}");

    // A JSON-stored object's maps too.
    let body: Vec<String> = kubectl_order.iter().map(|k| format!("\"{k}\":1")).collect();
    let stored_json = format!(
        r#"{{"apiVersion":"example.com/v1","kind":"W","metadata":{{"name":"w"}},"spec":{{{}}}}}"#,
        body.join(",")
    );
    let mut y = emit::YamlEmitter::new();
    emit_manifest(stored_json.as_bytes(), &RV, &mut y).unwrap();
    let yaml = y.finish().unwrap();
    let spec = yaml.split_once("spec:\n").unwrap().1;
    let keys: Vec<&str> = spec
        .lines()
        .filter_map(|l| {
            l.trim_start()
                .split_once(": ")
                .map(|(k, _)| k.trim_matches('"'))
        })
        .collect();
    assert_eq!(keys, kubectl_order, "{yaml}");

    // JSON stays in byte order.
    let mut out = Vec::new();
    emit_manifest(&bytes, &RV, &mut emit::JsonEmitter::new(&mut out, b"\n")).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let mut sorted: Vec<&str> = kubectl_order.to_vec();
    sorted.sort_unstable();
    let data: Vec<&str> = v["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(data, sorted);
}

/// `FieldsV1.Raw` may hold CBOR when CBOR serving is on; kube-apiserver prints
/// it as JSON (apimachinery `pkg/apis/meta/v1/helpers.go`, `FieldsV1.MarshalJSON`
/// transcodes a CBOR `Raw`). atrest cannot: it must say so.
#[test]
fn cbor_fields_v1_is_reported() {
    let mut fields = Enc::default();
    // {"f:data": {}} in CBOR, keys as byte strings as Kubernetes writes them.
    fields.bytes(1, &[0xa1, 0x46, b'f', b':', b'd', b'a', b't', b'a', 0xa0]);
    let mut managed = Enc::default();
    managed.str(1, "kubectl").msg(7, &fields);
    let mut json_fields = Enc::default();
    json_fields.str(1, r#"{"f:data":{}}"#);
    let mut managed_json = Enc::default();
    managed_json.str(1, "kubectl").msg(7, &json_fields);
    let mut m = Enc::default();
    m.str(1, "db").msg(17, &managed_json).msg(17, &managed);
    let mut s = Enc::default();
    s.msg(1, &m);
    let mut y = emit::YamlEmitter::new();
    let omitted = emit_manifest_noting(&stored("v1", "Secret", &s), &RV, &mut y).unwrap();
    assert_eq!(
        omitted.undecoded,
        ["metadata.managedFields[1].fieldsV1 (CBOR, printed as text)"]
    );
}

/// A string field that is not UTF-8 (Go's protobuf accepts any bytes) is printed
/// by kube-apiserver with U+FFFD for each byte that is not part of valid UTF-8
/// (Go `encoding/json` `encode.go`: `utf8.DecodeRuneInString` gives `RuneError`
/// of size 1 per such byte), so kubectl shows three for a cut-off 4-byte
/// sequence. The stored bytes are then not in the manifest: dump must say so.
#[test]
fn strings_that_are_not_utf8_print_like_go_and_are_reported() {
    let mut m = Enc::default();
    m.str(1, "cm").entry(11, "app", b"we\xf0\x9f\x98b");
    let mut cm = Enc::default();
    let mut bad_key = Enc::default();
    bad_key.bytes(1, b"k\xed\xa0\x80").bytes(2, b"v");
    cm.msg(1, &m)
        .msg(2, &bad_key)
        .entry(2, "ok", b"caf\xc3\xa9 \xc3");
    let bytes = stored("v1", "ConfigMap", &cm);
    let got = decode_manifest(&bytes, &RV).unwrap();
    let r = '\u{fffd}';
    assert_eq!(got["metadata"]["labels"]["app"], format!("we{r}{r}{r}b"));
    assert_eq!(got["data"]["ok"], format!("café {r}"));
    assert!(got["data"][format!("k{r}{r}{r}")].is_string(), "{got}");
    let mut y = emit::YamlEmitter::new();
    let omitted = emit_manifest_noting(&bytes, &RV, &mut y).unwrap();
    let why = "(not UTF-8: printed with U+FFFD for each invalid byte, as kubectl prints it)";
    assert_eq!(
        omitted.undecoded,
        [
            format!("ConfigMap data key \"k{r}{r}{r}\" {why}"),
            format!("ConfigMap data[\"ok\"] {why}"),
            format!("metadata.labels[\"app\"] {why}"),
        ]
    );
}

#[test]
fn deletion_fields_and_invalid_utf8() {
    let mut m = Enc::default();
    m.bytes(1, b"bad\xffname")
        .msg(9, &time(1_704_164_645))
        .int(10, 30)
        .int(7, -1);
    let mut s = Enc::default();
    s.msg(1, &m);
    let got = decode_manifest(&stored("v1", "Secret", &s), &ManifestOptions::default()).unwrap();
    assert_eq!(got["metadata"]["name"], "bad\u{fffd}name");
    assert_eq!(got["metadata"]["deletionTimestamp"], "2024-01-02T03:04:05Z");
    assert_eq!(got["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(got["metadata"]["generation"], -1);
}

#[test]
fn json_secret_passes_through_with_resource_version() {
    let stored = br#"  {"kind":"Secret","apiVersion":"v1","metadata":{"name":"db","namespace":"prod","uid":"u1","creationTimestamp":"2024-01-02T03:04:05Z"},"type":"Opaque","data":{"password":"czNjcjN0"}}"#;
    assert_eq!(detect(stored), Some(Encoding::Json));
    let info = object_info(stored).unwrap();
    assert_eq!(info.name, "db");
    assert_eq!(info.namespace.as_deref(), Some("prod"));
    assert_eq!(info.encoding, Encoding::Json);
    let got = decode_manifest(stored, &RV).unwrap();
    assert_eq!(
        serde_json::to_string(&got).unwrap(),
        r#"{"apiVersion":"v1","data":{"password":"czNjcjN0"},"kind":"Secret","metadata":{"creationTimestamp":"2024-01-02T03:04:05Z","name":"db","namespace":"prod","resourceVersion":"4242","uid":"u1"},"type":"Opaque"}"#
    );
    let cleaned = decode_manifest(
        stored,
        &ManifestOptions {
            resource_version: Some(1),
            clean: true,
        },
    )
    .unwrap();
    assert_eq!(
        cleaned["metadata"],
        json!({"name": "db", "namespace": "prod"})
    );
}

/// A custom resource's floats come back exactly. kube-apiserver stores what Go's
/// `encoding/json` writes for a float64 (the shortest text that reads back as the
/// same float, `strconv.FormatFloat(f, 'g', -1, 64)`-style, in `encode.go`
/// `floatEncoder`), and reads it with `strconv.ParseFloat`, which rounds
/// correctly (apimachinery `pkg/util/json` -> sigs.k8s.io/json
/// `UnmarshalCaseSensitivePreserveInts`). So kubectl prints the stored number
/// unchanged; a parser that is off by one unit in the last place prints another
/// number, and `kubectl apply` stores it.
#[test]
fn json_floats_are_kept_exactly() {
    // Each as Go's encoding/json writes the float64 (so the shortest form).
    let floats = [
        "1298840.8475174343",
        "989710.4202085317",
        "9.405090880450124e-14",
        "-4.7767314211467635e-211",
        "1.516252361526977e+267",
    ];
    for text in floats {
        let stored = format!(
            r#"{{"apiVersion":"example.com/v1","kind":"Widget","metadata":{{"name":"w"}},"spec":{{"ratio":{text}}}}}"#
        );
        let got = decode_manifest(stored.as_bytes(), &ManifestOptions::default()).unwrap();
        let want: f64 = text.parse().unwrap();
        let ratio = got["spec"]["ratio"].as_f64().unwrap();
        assert_eq!(ratio.to_bits(), want.to_bits(), "{text} read as {ratio}");
        // And printed with the same digits.
        let mut out = Vec::new();
        emit_manifest(
            stored.as_bytes(),
            &ManifestOptions::default(),
            &mut emit::JsonEmitter::new(&mut out, b"\n"),
        )
        .unwrap();
        let digits = text.split('e').next().unwrap_or(text);
        assert!(
            String::from_utf8_lossy(&out).contains(digits),
            "{text}: {}",
            String::from_utf8_lossy(&out)
        );
    }
}

#[test]
fn json_errors() {
    assert!(matches!(
        decode_manifest(b"{", &RV),
        Err(KubeError::Json(_))
    ));
    assert!(matches!(
        object_info(b"{\"kind\": 5}"),
        Err(KubeError::Json(_))
    ));
    // Deeply nested JSON hits serde_json's recursion limit: an error, not a crash.
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        decode_manifest(deep.as_bytes(), &RV),
        Err(KubeError::Json(_))
    ));
}

#[test]
fn detection() {
    assert_eq!(detect(b"k8s\x00rest"), Some(Encoding::Protobuf));
    assert_eq!(detect(b" \n\t{}"), Some(Encoding::Json));
    assert_eq!(detect(b"\xd9\xd9\xf7\xa1"), Some(Encoding::Cbor));
    assert_eq!(detect(b"k8s"), None);
    assert_eq!(detect(b""), None);
    assert_eq!(detect(b"   "), None);
    assert_eq!(detect(b"[1]"), None);
    assert_eq!(detect(b"k8s:enc:aescbc:v1:key1:..."), None);
    assert!(looks_like_object(b"k8s\x00"));
    assert!(!looks_like_object(b"\x8a\x01garbage"));
    assert!(matches!(
        object_info(b"\xd9\xd9\xf7\xa1"),
        Err(KubeError::Unsupported("CBOR"))
    ));
    assert_eq!(decode_manifest(b"", &RV), Err(KubeError::Empty));
    let err = decode_manifest(b"\x8a\x01garbage", &RV).unwrap_err();
    assert_eq!(
        err,
        KubeError::NotAnObject {
            prefix: "bytes 8a 01 67 61".into()
        }
    );
    assert!(err
        .to_string()
        .contains("key or provider is probably wrong"));
}

#[test]
fn malformed_protobuf_is_an_error_with_a_location() {
    let good = full_secret();
    // Truncation at every length is an error (or, at a field boundary, a shorter object).
    for len in 0..good.len() {
        let _ = decode_manifest(&good[..len], &RV);
        let _ = object_info(&good[..len]);
    }
    // Truncated varint in the Unknown tag.
    assert!(matches!(
        decode_manifest(b"k8s\x00\x0a\x80", &RV),
        Err(KubeError::Wire(WireError::Truncated { offset: 5, .. }))
    ));
    // Length past the end.
    let err = decode_manifest(b"k8s\x00\x0a\x10ab", &RV).unwrap_err();
    assert!(matches!(
        err,
        KubeError::Wire(WireError::LengthPastEnd {
            field: 1,
            length: 16,
            remaining: 2,
            offset: 5,
            ..
        })
    ));
    assert!(err.to_string().contains("runtime.Unknown: field 1"));
    // typeMeta as a varint.
    assert!(matches!(
        decode_manifest(b"k8s\x00\x08\x01", &RV),
        Err(KubeError::Wire(WireError::WrongWireType { field: 1, .. }))
    ));
    // No typeMeta at all.
    assert_eq!(
        decode_manifest(b"k8s\x00", &RV),
        Err(KubeError::MissingTypeMeta)
    );
    // A group inside ObjectMeta: the offset points into the nested message.
    let mut m = Enc::default();
    m.str(1, "x").tag(5, 3);
    let mut s = Enc::default();
    s.msg(1, &m);
    let plaintext = stored("v1", "Secret", &s);
    match decode_manifest(&plaintext, &RV) {
        Err(KubeError::Wire(WireError::GroupField {
            message: "ObjectMeta",
            field: 5,
            offset,
        })) => assert_eq!(plaintext[offset], (5 << 3) | 3),
        other => panic!("{other:?}"),
    }
    // Wrong wire type for a label entry.
    let mut m = Enc::default();
    m.int(11, 1);
    let mut s = Enc::default();
    s.msg(1, &m);
    assert!(matches!(
        decode_manifest(&stored("v1", "Secret", &s), &RV),
        Err(KubeError::Wire(WireError::WrongWireType {
            message: "ObjectMeta",
            field: 11,
            ..
        }))
    ));
    // Content encoding we cannot undo.
    let mut tm = Enc::default();
    tm.str(1, "v1").str(2, "Secret");
    let mut u = Enc::default();
    u.msg(1, &tm).bytes(2, b"").str(3, "gzip");
    let mut plaintext = PROTOBUF_MAGIC.to_vec();
    plaintext.extend(u.0);
    assert_eq!(
        decode_manifest(&plaintext, &RV),
        Err(KubeError::UnsupportedContentEncoding("gzip".into()))
    );
}

#[test]
fn deep_nesting_of_length_delimited_fields_is_harmless() {
    // Nested messages the schema does not know are skipped, not descended into.
    let mut inner = Enc::default();
    inner.str(1, "x");
    for _ in 0..10_000 {
        let mut outer = Enc::default();
        outer.msg(2, &inner);
        inner = outer;
    }
    let mut s = Enc::default();
    s.msg(99, &inner).msg(1, &{
        let mut m = Enc::default();
        m.str(1, "deep");
        m
    });
    let got = decode_manifest(&stored("v1", "Secret", &s), &RV).unwrap();
    assert_eq!(got["metadata"]["name"], "deep");
}

#[test]
fn list_of_decoded_objects() {
    let a = decode_manifest(&full_secret(), &RV).unwrap();
    let list = list_manifest(vec![a.clone()]);
    assert_eq!(list["items"][0], a);
    let yaml = to_yaml(&list).unwrap();
    assert!(
        yaml.starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n"),
        "{yaml}"
    );
    assert!(
        yaml.ends_with("kind: List\nmetadata:\n  resourceVersion: \"\"\n"),
        "{yaml}"
    );
    assert_eq!(serde_saphyr::from_str::<Value>(&yaml).unwrap(), list);
}

/// The independent Python encoder in `testdata/` agrees with our decoder.
#[test]
fn python_fixture_encoder_round_trips() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/kube_proto.py");
    let run = |args: &[&str]| -> Option<Vec<u8>> {
        let out = std::process::Command::new("python3")
            .arg(script)
            .args(args)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(out.stdout)
    };
    let Some(secret) = run(&[
        "secret",
        "--name",
        "db",
        "--namespace",
        "prod",
        "--uid",
        "u-1",
        "--created",
        "1704164645",
        "--label",
        "app=db",
        "--annotation",
        "note=true",
        "--data",
        "password=s3cr3t",
        "--data",
        "user=admin",
        "--type",
        "kubernetes.io/basic-auth",
        "--immutable",
    ]) else {
        eprintln!("python3 not available; skipping");
        return;
    };
    assert_eq!(
        decode_manifest(&secret, &RV).unwrap(),
        json!({
            "apiVersion": "v1",
            "data": {"password": "czNjcjN0", "user": "YWRtaW4="},
            "immutable": true,
            "kind": "Secret",
            "metadata": {
                "annotations": {"note": "true"},
                "creationTimestamp": "2024-01-02T03:04:05Z",
                "labels": {"app": "db"},
                "name": "db",
                "namespace": "prod",
                "resourceVersion": "4242",
                "uid": "u-1"
            },
            "type": "kubernetes.io/basic-auth"
        })
    );
    // Our Rust fixture encoder and the Python one write the same bytes.
    let mut m = Enc::default();
    m.str(1, "db")
        .str(2, "")
        .str(3, "prod")
        .str(4, "")
        .str(5, "u-1")
        .str(6, "")
        .int(7, 0);
    m.msg(8, &time(1_704_164_645))
        .entry(11, "app", b"db")
        .entry(12, "note", b"true");
    let mut s = Enc::default();
    s.msg(1, &m)
        .entry(2, "password", b"s3cr3t")
        .entry(2, "user", b"admin")
        .str(3, "kubernetes.io/basic-auth")
        .int(5, 1);
    assert_eq!(secret, stored("v1", "Secret", &s));

    let cm = run(&[
        "configmap",
        "--name",
        "cfg",
        "--namespace",
        "default",
        "--data",
        "k=v",
        "--binary-data",
        "b=AAEC",
    ])
    .unwrap();
    let got = decode_manifest(&cm, &ManifestOptions::default()).unwrap();
    assert_eq!(got["data"], json!({"k": "v"}));
    assert_eq!(got["binaryData"], json!({"b": "AAEC"}));
    assert_eq!(got["metadata"]["creationTimestamp"], Value::Null);

    let other = run(&[
        "generic",
        "--api-version",
        "apps/v1",
        "--kind",
        "Deployment",
        "--name",
        "web",
        "--namespace",
        "prod",
    ])
    .unwrap();
    let info = object_info(&other).unwrap();
    assert_eq!(
        (
            info.api_version.as_str(),
            info.kind.as_str(),
            info.name.as_str()
        ),
        ("apps/v1", "Deployment", "web")
    );
}

/// [`emit_manifest`] writes, in JSON and YAML, exactly what printing
/// [`decode_manifest`]'s value gives, and fails where it fails.
fn check_emitted_equals_decoded(bytes: &[u8]) {
    for clean in [false, true] {
        for resource_version in [None, Some(7)] {
            let opts = ManifestOptions {
                resource_version,
                clean,
            };
            let mut json_out = Vec::new();
            let emitted = emit_manifest(
                bytes,
                &opts,
                &mut emit::JsonEmitter::new(&mut json_out, b"\n"),
            );
            let mut yaml = emit::YamlEmitter::new();
            let emitted_yaml = emit_manifest(bytes, &opts, &mut yaml);
            match decode_manifest(bytes, &opts) {
                Ok(v) => {
                    assert!(emitted.is_ok() && emitted_yaml.is_ok());
                    let mut want = Vec::new();
                    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
                    let mut ser = serde_json::Serializer::with_formatter(&mut want, fmt);
                    serde::Serialize::serialize(&v, &mut ser).unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&json_out),
                        String::from_utf8_lossy(&want)
                    );
                    let mut yaml_order = v.clone();
                    super::manifest::sort_keys_yaml(&mut yaml_order);
                    assert_eq!(yaml.finish(), to_yaml(&yaml_order));
                }
                Err(e) => {
                    assert_eq!(emitted, Err(e.clone()));
                    assert_eq!(emitted_yaml, Err(e));
                }
            }
        }
    }
}

#[test]
fn emitted_manifests_equal_decoded_ones() {
    let mut cm = Enc::default();
    let mut m = Enc::default();
    m.str(1, "settings").str(3, "default").msg(8, &time(1));
    cm.msg(1, &m)
        .entry(2, "app.properties", b"a=1\nb=2\n")
        .entry(3, "logo.png", &[0x89, b'P', b'N', b'G'])
        .int(4, 0);
    let mut d = Enc::default();
    d.msg(1, &full_meta("web", "prod")).bytes(3, b"");
    let mut empty_meta = Enc::default();
    empty_meta.msg(1, &Enc::default());
    let mut deleted = Enc::default();
    let mut dm = Enc::default();
    dm.str(1, "x")
        .msg(9, &time(5))
        .int(10, 30)
        .msg(8, &Enc::default());
    deleted
        .msg(1, &dm)
        .entry(4, "s", b"string data")
        .str(3, "kubernetes.io/tls");
    for bytes in [
        full_secret(),
        stored("v1", "ConfigMap", &cm),
        stored("apps/v1", "Deployment", &d),
        stored("", "Secret", &empty_meta),
        stored("v1", "Secret", &deleted),
        br#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db","uid":"u"},"data":{"p":"czNjcjN0"}}"#.to_vec(),
        b"k8s\x00garbage".to_vec(),
        b"".to_vec(),
    ] {
        check_emitted_equals_decoded(&bytes);
    }
}

fn check_never_panics(bytes: &[u8]) {
    check_emitted_equals_decoded(bytes);
    let _ = detect(bytes);
    let info = object_info(bytes);
    // Where both succeed, the cheap identity agrees with the full decode.
    if let (Ok(info), Ok(full)) = (&info, decode_manifest(bytes, &ManifestOptions::default())) {
        let meta = &full["metadata"];
        assert_eq!(info.name, meta["name"].as_str().unwrap_or(""));
        assert_eq!(info.namespace.as_deref(), meta["namespace"].as_str());
        assert_eq!(info.kind, full["kind"].as_str().unwrap_or(""));
    }
    // The whole-object check (verify) accepts exactly what the full metadata
    // decode accepts, with the same name and namespace, or fails the same way.
    if detect(bytes) == Some(Encoding::Protobuf) {
        if let Ok(u) = super::meta::parse_unknown(bytes) {
            let full =
                super::meta::parse_object_meta(u.raw, u.raw_offset).map(|m| (m.name, m.namespace));
            let checked = super::meta::check_object_meta(u.raw, u.raw_offset)
                .map(|id| (id.name.into_owned(), id.namespace.into_owned()));
            assert_eq!(checked, full);
        }
    }
    for clean in [false, true] {
        let opts = ManifestOptions {
            resource_version: Some(7),
            clean,
        };
        if let Ok(v) = decode_manifest(bytes, &opts) {
            let yaml = to_yaml(&v).unwrap();
            let back: Value = serde_saphyr::from_str(&yaml).unwrap();
            assert_eq!(back, v);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_never_panics(&bytes);
        let mut prefixed = PROTOBUF_MAGIC.to_vec();
        prefixed.extend(&bytes);
        check_never_panics(&prefixed);
    }

    #[test]
    fn decode_never_panics_on_mutated_secret(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut bytes = full_secret();
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.insert(i, byte); }
                _ => { bytes.remove(i); }
            }
        }
        check_never_panics(&bytes);
    }

    #[test]
    fn any_string_survives_yaml(s in "\\PC*|[\\x00-\\x7f]{0,12}|[ \\n:#\\-0-9a-z]{0,12}") {
        let v = json!({ "k": &s, "l": [&s], &s: {"n": &s} });
        let yaml = to_yaml(&v).unwrap();
        let back: Value = serde_saphyr::from_str(&yaml).unwrap();
        prop_assert_eq!(back, v);
    }
}
