//! etcd keys of Kubernetes objects: `<prefix>/<resource>/[<namespace>/]<name>`.
//!
//! kube-apiserver stores built-in resources under their resource name without the
//! API group (`/registry/deployments/ns/n` for `deployments.apps`), a few under
//! historical names (`services/specs`, `services/endpoints`, `minions`,
//! `controllers`, `ingress`: kubernetes `pkg/kubeapiserver/default_storage_factory_builder.go`
//! and each registry's `rest/storage` setup), and custom resources and
//! aggregated APIs as `<group>/<resource>`. This module maps a key back to the
//! group/resource that EncryptionConfiguration rules name.

use std::fmt;

/// Default etcd key prefix of kube-apiserver (`--etcd-prefix`).
pub const DEFAULT_PREFIX: &str = "/registry";

/// A Kubernetes group and resource, as EncryptionConfiguration names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group; empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// Build from parts.
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }

    /// Parse the config form: `secrets`, `deployments.apps`, `widgets.example.com`.
    pub fn parse(s: &str) -> Self {
        match s.split_once('.') {
            Some((r, g)) => GroupResource::new(g, r),
            None => GroupResource::new("", s),
        }
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// Storage path (after the prefix) → (group, resource), where the path is not
/// simply the resource name in the core group.
///
/// kube-apiserver's storage factory stores every built-in resource under
/// `strings.ToLower(resource)`, without its group, unless
/// `SpecialDefaultResourcePrefixes` names another path (kubernetes
/// `staging/src/k8s.io/apiserver/pkg/server/storage/storage_factory.go`,
/// `ResourcePrefix`; `pkg/kubeapiserver/default_storage_factory_builder.go`). Each
/// registry below builds a `genericregistry.Store` with that prefix
/// (`pkg/registry/<group>/rest/storage_<group>.go` and `<resource>/storage/storage.go`).
/// `events.k8s.io` events cohabit with the core ones at `events`.
/// CustomResourceDefinitions and APIServices are stored with their group
/// (`apiextensions.k8s.io/...`, `apiregistration.k8s.io/...`) and need no entry.
const BUILTIN_PATHS: &[(&str, &str, &str)] = &[
    // SpecialDefaultResourcePrefixes (two-segment paths first).
    ("services/specs", "", "services"),
    ("services/endpoints", "", "endpoints"),
    ("minions", "", "nodes"),
    ("controllers", "", "replicationcontrollers"),
    ("ingress", "networking.k8s.io", "ingresses"),
    // admissionregistration.k8s.io: pkg/registry/admissionregistration/rest
    (
        "mutatingadmissionpolicies",
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicies",
    ),
    (
        "mutatingadmissionpolicybindings",
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings",
    ),
    (
        "mutatingwebhookconfigurations",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "validatingadmissionpolicies",
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
    ),
    (
        "validatingadmissionpolicybindings",
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
    ),
    (
        "validatingwebhookconfigurations",
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ),
    // apps: pkg/registry/apps/rest
    ("controllerrevisions", "apps", "controllerrevisions"),
    ("daemonsets", "apps", "daemonsets"),
    ("deployments", "apps", "deployments"),
    ("replicasets", "apps", "replicasets"),
    ("statefulsets", "apps", "statefulsets"),
    // autoscaling: pkg/registry/autoscaling/rest
    (
        "horizontalpodautoscalers",
        "autoscaling",
        "horizontalpodautoscalers",
    ),
    // batch: pkg/registry/batch/rest
    ("cronjobs", "batch", "cronjobs"),
    ("jobs", "batch", "jobs"),
    // certificates.k8s.io: pkg/registry/certificates/rest
    (
        "certificatesigningrequests",
        "certificates.k8s.io",
        "certificatesigningrequests",
    ),
    (
        "clustertrustbundles",
        "certificates.k8s.io",
        "clustertrustbundles",
    ),
    (
        "podcertificaterequests",
        "certificates.k8s.io",
        "podcertificaterequests",
    ),
    // coordination.k8s.io: pkg/registry/coordination/rest
    ("leasecandidates", "coordination.k8s.io", "leasecandidates"),
    ("leases", "coordination.k8s.io", "leases"),
    // discovery.k8s.io: pkg/registry/discovery/rest
    ("endpointslices", "discovery.k8s.io", "endpointslices"),
    // flowcontrol.apiserver.k8s.io: pkg/registry/flowcontrol/rest
    ("flowschemas", "flowcontrol.apiserver.k8s.io", "flowschemas"),
    (
        "prioritylevelconfigurations",
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
    ),
    // internal.apiserver.k8s.io: pkg/registry/apiserverinternal/rest
    (
        "storageversions",
        "internal.apiserver.k8s.io",
        "storageversions",
    ),
    // networking.k8s.io: pkg/registry/networking/rest
    ("ingressclasses", "networking.k8s.io", "ingressclasses"),
    ("ipaddresses", "networking.k8s.io", "ipaddresses"),
    ("networkpolicies", "networking.k8s.io", "networkpolicies"),
    ("servicecidrs", "networking.k8s.io", "servicecidrs"),
    // node.k8s.io: pkg/registry/node/rest
    ("runtimeclasses", "node.k8s.io", "runtimeclasses"),
    // policy: pkg/registry/policy/rest
    ("poddisruptionbudgets", "policy", "poddisruptionbudgets"),
    // rbac.authorization.k8s.io: pkg/registry/rbac/rest
    (
        "clusterrolebindings",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
    ),
    ("clusterroles", "rbac.authorization.k8s.io", "clusterroles"),
    ("rolebindings", "rbac.authorization.k8s.io", "rolebindings"),
    ("roles", "rbac.authorization.k8s.io", "roles"),
    // resource.k8s.io: pkg/registry/resource/rest
    ("deviceclasses", "resource.k8s.io", "deviceclasses"),
    ("devicetaintrules", "resource.k8s.io", "devicetaintrules"),
    ("resourceclaims", "resource.k8s.io", "resourceclaims"),
    (
        "resourceclaimtemplates",
        "resource.k8s.io",
        "resourceclaimtemplates",
    ),
    (
        "resourcepoolstatusrequests",
        "resource.k8s.io",
        "resourcepoolstatusrequests",
    ),
    ("resourceslices", "resource.k8s.io", "resourceslices"),
    // scheduling.k8s.io: pkg/registry/scheduling/rest
    ("podgroups", "scheduling.k8s.io", "podgroups"),
    ("priorityclasses", "scheduling.k8s.io", "priorityclasses"),
    ("workloads", "scheduling.k8s.io", "workloads"),
    // storage.k8s.io: pkg/registry/storage/rest
    ("csidrivers", "storage.k8s.io", "csidrivers"),
    ("csinodes", "storage.k8s.io", "csinodes"),
    (
        "csistoragecapacities",
        "storage.k8s.io",
        "csistoragecapacities",
    ),
    ("storageclasses", "storage.k8s.io", "storageclasses"),
    ("volumeattachments", "storage.k8s.io", "volumeattachments"),
    (
        "volumeattributesclasses",
        "storage.k8s.io",
        "volumeattributesclasses",
    ),
    // storagemigration.k8s.io: pkg/registry/storagemigration/rest
    (
        "storageversionmigrations",
        "storagemigration.k8s.io",
        "storageversionmigrations",
    ),
];

/// The core-group (`""`) resources kube-apiserver stores in etcd
/// (`pkg/registry/core/rest/storage_core.go`).
pub const CORE_RESOURCES: &[&str] = &[
    "configmaps",
    "endpoints",
    "events",
    "limitranges",
    "namespaces",
    "nodes",
    "persistentvolumeclaims",
    "persistentvolumes",
    "pods",
    "podtemplates",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "serviceaccounts",
    "services",
];

/// Why a resource name given on the command line names nothing kube-apiserver
/// stores.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResourceNameError {
    /// A groupless name of a resource that lives in another API group.
    #[error("`{given}` names the core API group, which has no such resource; kube-apiserver's resource is `{suggest}` (give it with its group, as EncryptionConfiguration does)")]
    MissingGroup {
        /// The name as given.
        given: String,
        /// `<resource>.<group>`.
        suggest: String,
    },
    /// A name with capitals: resource and group names are lowercase, and
    /// kube-apiserver matches them as written.
    #[error("`{given}` names nothing kube-apiserver stores: resource and group names are lowercase (`{suggest}`)")]
    NotLowercase {
        /// The name as given.
        given: String,
        /// The name in lowercase.
        suggest: String,
    },
    /// A groupless name that is no core resource (a typo such as `secret`, or a
    /// custom resource without its group).
    #[error("`{given}` names the core API group, which has no such resource{}; a resource of another group needs its group (`widgets.example.com`)", .near.as_ref().map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default())]
    NotCore {
        /// The name as given.
        given: String,
        /// A core resource it resembles.
        near: Option<String>,
    },
}

/// Check a resource name as an EncryptionConfiguration or `--resource` gives
/// it: a groupless name must be a core resource (or the core wildcard `*.`),
/// not one of another group's built-ins (`resourceclaims` is
/// `resourceclaims.resource.k8s.io`) nor anything else (`secret`). Names of
/// other groups (CRDs included) are accepted as they are.
pub fn check_resource_name(gr: &GroupResource) -> Result<(), ResourceNameError> {
    let lower = GroupResource::new(
        &gr.group.to_ascii_lowercase(),
        &gr.resource.to_ascii_lowercase(),
    );
    if &lower != gr {
        return Err(ResourceNameError::NotLowercase {
            given: gr.to_string(),
            suggest: lower.to_string(),
        });
    }
    if !gr.group.is_empty() || gr.resource == "*" || CORE_RESOURCES.contains(&gr.resource.as_str())
    {
        return Ok(());
    }
    match BUILTIN_PATHS
        .iter()
        .find(|(_, group, res)| !group.is_empty() && *res == gr.resource)
    {
        Some((_, group, res)) => Err(ResourceNameError::MissingGroup {
            given: gr.resource.clone(),
            suggest: format!("{res}.{group}"),
        }),
        None => {
            let lower = gr.resource.to_ascii_lowercase();
            let near = CORE_RESOURCES
                .iter()
                .find(|c| {
                    **c == lower
                        || c.strip_suffix('s') == Some(lower.as_str())
                        || lower.strip_suffix('s') == Some(*c)
                })
                .map(|c| (*c).to_string());
            Err(ResourceNameError::NotCore {
                given: gr.resource.clone(),
                near,
            })
        }
    }
}

/// The prefix kube-apiserver really keys objects under for an `--etcd-prefix`
/// value: `path.Join("/", prefix)` (apiserver `pkg/storage/etcd3/store.go`), so
/// `registry`, `/registry/` and `//registry` are all `/registry`, and an empty
/// prefix is `/`.
pub fn clean_prefix(prefix: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in prefix.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A Kubernetes object's etcd key, split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectKey<'a> {
    /// The whole etcd key (it is valid UTF-8).
    pub key: &'a str,
    /// The group/resource the key belongs to.
    pub resource: GroupResource,
    /// Namespace, for namespaced objects.
    pub namespace: Option<&'a str>,
    /// Object name.
    pub name: &'a str,
}

/// The first path segments of [`BUILTIN_PATHS`] (`services`, `minions`, ...).
fn builtin_first_segments() -> &'static std::collections::HashSet<&'static str> {
    static SEGMENTS: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SEGMENTS.get_or_init(|| {
        BUILTIN_PATHS
            .iter()
            .map(|(path, _, _)| path.split('/').next().unwrap_or(path))
            .collect()
    })
}

/// Split an etcd key under `prefix` (e.g. `/registry`) into resource, namespace
/// and name. Returns `None` for keys outside the prefix, non-UTF-8 keys, and keys
/// with no object name (e.g. `/registry/ranges/serviceips` has one, so it parses
/// as resource `ranges`, name `serviceips`).
pub fn parse_object_key<'a>(key: &'a [u8], prefix: &str) -> Option<ObjectKey<'a>> {
    let key = std::str::from_utf8(key).ok()?;
    let prefix = prefix.trim_end_matches('/');
    let rest = key.strip_prefix(prefix)?.strip_prefix('/')?;
    // Two-segment storage paths first (services/specs, services/endpoints).
    let mut resource = None;
    let mut tail = rest;
    // Most keys (secrets, configmaps, ...) match none of the table's paths: one
    // lookup of the first segment says so without walking the table.
    let first_segment = rest.split('/').next().unwrap_or(rest);
    let candidates = if builtin_first_segments().contains(first_segment) {
        BUILTIN_PATHS
    } else {
        &[]
    };
    for (path, group, res) in candidates {
        if rest.as_bytes().get(path.len()) != Some(&b'/') {
            continue;
        }
        if let Some(t) = rest.strip_prefix(path).and_then(|t| t.strip_prefix('/')) {
            resource = Some(GroupResource::new(group, res));
            tail = t;
            break;
        }
    }
    let resource = match resource {
        Some(r) => r,
        None => {
            let (first, t) = rest.split_once('/')?;
            if first.contains('.') {
                // `<group>/<resource>/...`: custom resources and aggregated APIs.
                let (res, t2) = t.split_once('/')?;
                tail = t2;
                GroupResource::new(first, res)
            } else {
                tail = t;
                GroupResource::new("", first)
            }
        }
    };
    let (namespace, name) = match tail.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, tail),
    };
    if name.is_empty() || resource.resource.is_empty() {
        return None;
    }
    Some(ObjectKey {
        key,
        resource,
        namespace,
        name,
    })
}

/// The storage path (after the prefix) under which kube-apiserver keeps the
/// objects of a *core-group* resource, e.g. `secrets`, `services/specs`,
/// `minions`. `None` for other groups (several API groups serve resources that
/// are stored under other names, so their objects are found by scanning) and for
/// a wildcard (`*.`).
pub fn core_storage_path(gr: &GroupResource) -> Option<String> {
    if !gr.group.is_empty()
        || gr.resource.is_empty()
        || gr.resource.contains('/')
        || gr.resource.contains('*')
    {
        return None;
    }
    for (path, group, res) in BUILTIN_PATHS {
        if group.is_empty() && *res == gr.resource {
            return Some((*path).to_string());
        }
    }
    Some(gr.resource.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_clean_like_go_path_join() {
        for (given, want) in [
            ("/registry", "/registry"),
            ("registry", "/registry"),
            ("/registry/", "/registry"),
            ("//registry//", "/registry"),
            ("/a/./b/../c", "/a/c"),
            ("/..", "/"),
            ("", "/"),
            ("/", "/"),
        ] {
            assert_eq!(clean_prefix(given), want, "{given:?}");
        }
    }

    fn p(k: &str) -> Option<(String, Option<String>, String)> {
        parse_object_key(k.as_bytes(), "/registry").map(|o| {
            (
                o.resource.to_string(),
                o.namespace.map(String::from),
                o.name.to_string(),
            )
        })
    }

    #[test]
    fn groupless_names_of_other_groups_are_refused() {
        assert!(check_resource_name(&GroupResource::parse("secrets")).is_ok());
        assert!(check_resource_name(&GroupResource::parse("widgets.example.com")).is_ok());
        assert!(
            check_resource_name(&GroupResource::parse("resourceclaims.resource.k8s.io")).is_ok()
        );
        let e = check_resource_name(&GroupResource::parse("resourceclaims")).unwrap_err();
        assert!(
            e.to_string().contains("`resourceclaims.resource.k8s.io`"),
            "{e}"
        );
        let e = check_resource_name(&GroupResource::parse("deployments")).unwrap_err();
        assert!(e.to_string().contains("`deployments.apps`"), "{e}");
        assert!(check_resource_name(&GroupResource::parse("*.")).is_ok());
        let e = check_resource_name(&GroupResource::parse("secret")).unwrap_err();
        assert!(e.to_string().contains("did you mean `secrets`"), "{e}");
        let e = check_resource_name(&GroupResource::parse("Deployments.apps")).unwrap_err();
        assert!(e.to_string().contains("(`deployments.apps`)"), "{e}");
        let e = check_resource_name(&GroupResource::parse("widgets")).unwrap_err();
        assert!(!e.to_string().contains("did you mean"), "{e}");
    }

    #[test]
    fn maps_keys_to_resources() {
        let s = |x: &str| x.to_string();
        assert_eq!(
            p("/registry/secrets/default/db"),
            Some((s("secrets"), Some(s("default")), s("db")))
        );
        assert_eq!(
            p("/registry/namespaces/kube-system"),
            Some((s("namespaces"), None, s("kube-system")))
        );
        assert_eq!(
            p("/registry/services/specs/default/kubernetes"),
            Some((s("services"), Some(s("default")), s("kubernetes")))
        );
        assert_eq!(
            p("/registry/services/endpoints/default/kubernetes"),
            Some((s("endpoints"), Some(s("default")), s("kubernetes")))
        );
        assert_eq!(
            p("/registry/minions/node-1"),
            Some((s("nodes"), None, s("node-1")))
        );
        assert_eq!(
            p("/registry/deployments/ns/web"),
            Some((s("deployments.apps"), Some(s("ns")), s("web")))
        );
        assert_eq!(
            p("/registry/ingress/ns/web"),
            Some((s("ingresses.networking.k8s.io"), Some(s("ns")), s("web")))
        );
        assert_eq!(
            p("/registry/example.com/widgets/ns/w1"),
            Some((s("widgets.example.com"), Some(s("ns")), s("w1")))
        );
        assert_eq!(
            p("/registry/apiregistration.k8s.io/apiservices/v1.apps"),
            Some((s("apiservices.apiregistration.k8s.io"), None, s("v1.apps")))
        );
        assert_eq!(p("/other/secrets/a/b"), None);
        assert_eq!(p("/registry/secrets"), None);
        assert_eq!(p("compact_rev_key"), None);
    }

    /// Every built-in resource kube-apiserver stores (Kubernetes 1.35 with its alpha
    /// APIs; `kubectl api-resources` minus the virtual ones such as tokenreviews),
    /// written independently of `BUILTIN_PATHS`: group, resource, namespaced.
    const BUILTIN: &[(&str, &str, bool)] = &[
        ("", "configmaps", true),
        ("", "endpoints", true),
        ("", "events", true),
        ("", "limitranges", true),
        ("", "namespaces", false),
        ("", "nodes", false),
        ("", "persistentvolumeclaims", true),
        ("", "persistentvolumes", false),
        ("", "pods", true),
        ("", "podtemplates", true),
        ("", "replicationcontrollers", true),
        ("", "resourcequotas", true),
        ("", "secrets", true),
        ("", "serviceaccounts", true),
        ("", "services", true),
        (
            "admissionregistration.k8s.io",
            "mutatingadmissionpolicies",
            false,
        ),
        (
            "admissionregistration.k8s.io",
            "mutatingadmissionpolicybindings",
            false,
        ),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            false,
        ),
        (
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies",
            false,
        ),
        (
            "admissionregistration.k8s.io",
            "validatingadmissionpolicybindings",
            false,
        ),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            false,
        ),
        ("apiextensions.k8s.io", "customresourcedefinitions", false),
        ("apiregistration.k8s.io", "apiservices", false),
        ("apps", "controllerrevisions", true),
        ("apps", "daemonsets", true),
        ("apps", "deployments", true),
        ("apps", "replicasets", true),
        ("apps", "statefulsets", true),
        ("autoscaling", "horizontalpodautoscalers", true),
        ("batch", "cronjobs", true),
        ("batch", "jobs", true),
        ("certificates.k8s.io", "certificatesigningrequests", false),
        ("certificates.k8s.io", "clustertrustbundles", false),
        ("certificates.k8s.io", "podcertificaterequests", true),
        ("coordination.k8s.io", "leasecandidates", true),
        ("coordination.k8s.io", "leases", true),
        ("discovery.k8s.io", "endpointslices", true),
        ("flowcontrol.apiserver.k8s.io", "flowschemas", false),
        (
            "flowcontrol.apiserver.k8s.io",
            "prioritylevelconfigurations",
            false,
        ),
        ("internal.apiserver.k8s.io", "storageversions", false),
        ("networking.k8s.io", "ingressclasses", false),
        ("networking.k8s.io", "ingresses", true),
        ("networking.k8s.io", "ipaddresses", false),
        ("networking.k8s.io", "networkpolicies", true),
        ("networking.k8s.io", "servicecidrs", false),
        ("node.k8s.io", "runtimeclasses", false),
        ("policy", "poddisruptionbudgets", true),
        ("rbac.authorization.k8s.io", "clusterrolebindings", false),
        ("rbac.authorization.k8s.io", "clusterroles", false),
        ("rbac.authorization.k8s.io", "rolebindings", true),
        ("rbac.authorization.k8s.io", "roles", true),
        ("resource.k8s.io", "deviceclasses", false),
        ("resource.k8s.io", "devicetaintrules", false),
        ("resource.k8s.io", "resourceclaims", true),
        ("resource.k8s.io", "resourceclaimtemplates", true),
        ("resource.k8s.io", "resourcepoolstatusrequests", false),
        ("resource.k8s.io", "resourceslices", false),
        ("scheduling.k8s.io", "podgroups", true),
        ("scheduling.k8s.io", "priorityclasses", false),
        ("scheduling.k8s.io", "workloads", true),
        ("storage.k8s.io", "csidrivers", false),
        ("storage.k8s.io", "csinodes", false),
        ("storage.k8s.io", "csistoragecapacities", true),
        ("storage.k8s.io", "storageclasses", false),
        ("storage.k8s.io", "volumeattachments", false),
        ("storage.k8s.io", "volumeattributesclasses", false),
        ("storagemigration.k8s.io", "storageversionmigrations", false),
    ];

    /// Where kube-apiserver stores `gr` (after the prefix), from upstream's rules:
    /// `SpecialDefaultResourcePrefixes`, the group path of the two aggregated
    /// servers, and otherwise the bare resource name.
    fn upstream_path(group: &str, resource: &str) -> String {
        match (group, resource) {
            ("", "replicationcontrollers") => "controllers".into(),
            ("", "endpoints") => "services/endpoints".into(),
            ("", "nodes") => "minions".into(),
            ("", "services") => "services/specs".into(),
            ("networking.k8s.io", "ingresses") => "ingress".into(),
            ("apiextensions.k8s.io" | "apiregistration.k8s.io", r) => format!("{group}/{r}"),
            (_, r) => r.to_string(),
        }
    }

    #[test]
    fn every_builtin_resource_maps_to_its_group() {
        for (group, resource, namespaced) in BUILTIN {
            let path = upstream_path(group, resource);
            let key = if *namespaced {
                format!("/registry/{path}/ns1/obj")
            } else {
                format!("/registry/{path}/obj")
            };
            let o = parse_object_key(key.as_bytes(), "/registry")
                .unwrap_or_else(|| panic!("{key} does not parse"));
            assert_eq!(o.resource, GroupResource::new(group, resource), "{key}");
            assert_eq!(o.name, "obj", "{key}");
            assert_eq!(o.namespace, namespaced.then_some("ns1"), "{key}");
            let core = core_storage_path(&o.resource);
            if group.is_empty() {
                assert_eq!(core.as_deref(), Some(path.as_str()), "{key}");
            } else {
                assert_eq!(core, None, "{key}");
            }
        }
        // The table names nothing the list does not: a typo there is caught here.
        for (path, group, resource) in BUILTIN_PATHS {
            assert!(
                BUILTIN.iter().any(|(g, r, _)| g == group && r == resource),
                "{path} → {group}/{resource} is not a built-in resource"
            );
            assert_eq!(upstream_path(group, resource), *path);
        }
    }

    #[test]
    fn core_paths() {
        let p = |s: &str| core_storage_path(&GroupResource::parse(s));
        assert_eq!(p("secrets").as_deref(), Some("secrets"));
        assert_eq!(p("services").as_deref(), Some("services/specs"));
        assert_eq!(p("endpoints").as_deref(), Some("services/endpoints"));
        assert_eq!(p("nodes").as_deref(), Some("minions"));
        assert_eq!(p("deployments.apps"), None);
        assert_eq!(p("widgets.example.com"), None);
    }

    #[test]
    fn custom_prefix() {
        let o = parse_object_key(b"/k3s/secrets/a/b", "/k3s/").unwrap();
        assert_eq!(o.resource, GroupResource::new("", "secrets"));
    }

    #[test]
    fn group_resource_forms() {
        assert_eq!(
            GroupResource::parse("secrets"),
            GroupResource::new("", "secrets")
        );
        assert_eq!(
            GroupResource::parse("widgets.example.com"),
            GroupResource::new("example.com", "widgets")
        );
        assert_eq!(
            GroupResource::new("apps", "deployments").to_string(),
            "deployments.apps"
        );
    }
}
