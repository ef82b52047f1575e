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
const BUILTIN_PATHS: &[(&str, &str, &str)] = &[
    ("services/specs", "", "services"),
    ("services/endpoints", "", "endpoints"),
    ("minions", "", "nodes"),
    ("controllers", "", "replicationcontrollers"),
    ("ingress", "networking.k8s.io", "ingresses"),
    ("deployments", "apps", "deployments"),
    ("replicasets", "apps", "replicasets"),
    ("statefulsets", "apps", "statefulsets"),
    ("daemonsets", "apps", "daemonsets"),
    ("controllerrevisions", "apps", "controllerrevisions"),
    ("jobs", "batch", "jobs"),
    ("cronjobs", "batch", "cronjobs"),
    (
        "horizontalpodautoscalers",
        "autoscaling",
        "horizontalpodautoscalers",
    ),
    ("networkpolicies", "networking.k8s.io", "networkpolicies"),
    ("ingressclasses", "networking.k8s.io", "ingressclasses"),
    ("ipaddresses", "networking.k8s.io", "ipaddresses"),
    ("servicecidrs", "networking.k8s.io", "servicecidrs"),
    ("poddisruptionbudgets", "policy", "poddisruptionbudgets"),
    ("roles", "rbac.authorization.k8s.io", "roles"),
    ("rolebindings", "rbac.authorization.k8s.io", "rolebindings"),
    ("clusterroles", "rbac.authorization.k8s.io", "clusterroles"),
    (
        "clusterrolebindings",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
    ),
    ("storageclasses", "storage.k8s.io", "storageclasses"),
    ("volumeattachments", "storage.k8s.io", "volumeattachments"),
    ("csidrivers", "storage.k8s.io", "csidrivers"),
    ("csinodes", "storage.k8s.io", "csinodes"),
    (
        "csistoragecapacities",
        "storage.k8s.io",
        "csistoragecapacities",
    ),
    (
        "volumeattributesclasses",
        "storage.k8s.io",
        "volumeattributesclasses",
    ),
    (
        "mutatingwebhookconfigurations",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "validatingwebhookconfigurations",
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
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
    ("priorityclasses", "scheduling.k8s.io", "priorityclasses"),
    ("leases", "coordination.k8s.io", "leases"),
    (
        "certificatesigningrequests",
        "certificates.k8s.io",
        "certificatesigningrequests",
    ),
    ("endpointslices", "discovery.k8s.io", "endpointslices"),
    ("flowschemas", "flowcontrol.apiserver.k8s.io", "flowschemas"),
    (
        "prioritylevelconfigurations",
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
    ),
    ("runtimeclasses", "node.k8s.io", "runtimeclasses"),
];

/// A Kubernetes object's etcd key, split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectKey<'a> {
    /// The group/resource the key belongs to.
    pub resource: GroupResource,
    /// Namespace, for namespaced objects.
    pub namespace: Option<&'a str>,
    /// Object name.
    pub name: &'a str,
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
    for (path, group, res) in BUILTIN_PATHS {
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
        resource,
        namespace,
        name,
    })
}

/// The storage path (after the prefix) under which kube-apiserver keeps the
/// objects of a *core-group* resource, e.g. `secrets`, `services/specs`,
/// `minions`. `None` for other groups: several API groups serve resources that
/// are stored under other names, so their objects are found by scanning.
pub fn core_storage_path(gr: &GroupResource) -> Option<String> {
    if !gr.group.is_empty() || gr.resource.is_empty() || gr.resource.contains('/') {
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
