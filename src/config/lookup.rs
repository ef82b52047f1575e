//! Which rule applies to a resource, the way kube-apiserver picks a transformer.
//!
//! Upstream (`transformerFromOverrides` in
//! `staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go`) builds a map
//! from each listed group/resource to the providers of every item naming it (appended in
//! file order), then looks up the exact group/resource, then `*.<group>`, then `*.*`; a
//! resource matching none of them is stored with identity.

use super::model::{EncryptionConfiguration, GroupResource, ProviderConfig, ResourceConfig};

impl EncryptionConfiguration {
    /// The rule for `resource` in API group `group` ("" for the core group): the first item
    /// listing the exact name (`secrets`, `deployments.apps`), else the first listing
    /// `*.<group>` (`*.` for core), else the first listing `*.*`. `None` means the
    /// resource is not configured and kube-apiserver stores it as plaintext.
    pub fn rule_for(&self, resource: &str, group: &str) -> Option<&ResourceConfig> {
        let i = self.matching_items(resource, group).next()?;
        self.resources.get(i)
    }

    /// The providers kube-apiserver uses for `resource` in `group`, in the order it tries
    /// them on read (the first one writes). When a name is listed in several items, upstream
    /// appends their providers in file order, and so does this. Empty when not configured.
    pub fn providers_for(&self, resource: &str, group: &str) -> Vec<&ProviderConfig> {
        self.matching_items(resource, group)
            .filter_map(|i| self.resources.get(i))
            .flat_map(|item| item.providers.iter())
            .collect()
    }

    /// Every resource name in the file, in order (duplicates included).
    pub fn resource_names(&self) -> impl Iterator<Item = &str> {
        self.resources
            .iter()
            .flat_map(|item| item.resources.iter().map(String::as_str))
    }

    /// The resources the file names (`secrets`, `deployments.apps`), sorted and
    /// deduplicated, or `None` (every resource) when it uses a wildcard such as `*.*`
    /// or `*.apps`.
    pub fn configured_resources(&self) -> Option<Vec<crate::etcd_key::GroupResource>> {
        let names: Vec<&str> = self.resource_names().collect();
        if names.iter().any(|n| n.starts_with('*')) {
            return None;
        }
        let mut out: Vec<crate::etcd_key::GroupResource> = names
            .into_iter()
            .map(crate::etcd_key::GroupResource::parse)
            .collect();
        out.sort();
        out.dedup();
        Some(out)
    }

    /// Indices of the items holding the most specific matching rule, in file order
    /// (several when the same name is listed in several items).
    pub fn matching_items<'a>(
        &'a self,
        resource: &'a str,
        group: &'a str,
    ) -> impl Iterator<Item = usize> + 'a {
        let candidates = [
            GroupResource { group, resource },
            GroupResource {
                group,
                resource: "*",
            },
            GroupResource {
                group: "*",
                resource: "*",
            },
        ];
        let lists = |want: GroupResource<'_>, item: &ResourceConfig| {
            item.resources
                .iter()
                .any(|r| GroupResource::parse(r) == want)
        };
        let step = candidates
            .into_iter()
            .find(|want| self.resources.iter().any(|item| lists(*want, item)));
        self.resources
            .iter()
            .enumerate()
            .filter(move |(_, item)| step.is_some_and(|want| lists(want, item)))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd_key::GroupResource as Gr;

    fn config(resources: &[&[&str]]) -> EncryptionConfiguration {
        let mut yaml = String::from(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n",
        );
        for item in resources {
            yaml.push_str(&format!(
                "- resources: [{}]\n  providers: [{{identity: {{}}}}]\n",
                item.iter()
                    .map(|r| format!("'{r}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        EncryptionConfiguration::from_yaml_str(&yaml).unwrap()
    }

    #[test]
    fn configured_resources_are_sorted_by_group_unique_or_open_ended() {
        let c = config(&[&["secrets", "deployments.apps"], &["configmaps", "secrets"]]);
        assert_eq!(
            c.configured_resources(),
            Some(vec![
                Gr::parse("configmaps"),
                Gr::parse("secrets"),
                Gr::parse("deployments.apps"),
            ])
        );
        assert_eq!(
            config(&[&["secrets"], &["*.apps"]]).configured_resources(),
            None
        );
        assert_eq!(config(&[&["*.*"]]).configured_resources(), None);
    }
}
