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
