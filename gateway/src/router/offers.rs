//! The resources and prompts in the catalog: what each instance's live lists hold, under names
//! that cannot collide across instances, and the way back from an exposed URI or name to the
//! instance and its own.
//!
//! A prefixed instance's URIs are exposed as `manifold://<prefix>/<its uri>` (templates too), so
//! the way back is one `strip_prefix` and two upstreams' `file:///a` never meet; its prompts as
//! `<prefix>_<name>`, found back by table. An unprefixed instance (prefix mode `never`) keeps
//! its own URIs and names; what collides with an earlier instance is left out with a warning.

use std::collections::HashMap;

use rmcp::model::{Prompt, Resource, ResourceTemplate};

use super::CatalogInstance;

/// The scheme of namespaced URIs.
pub const SCHEME: &str = "manifold://";

/// Longest URI the gateway routes; longer ones are refused before any policy or upstream.
const MAX_URI: usize = 8 * 1024;

/// One exposed resource, template or prompt and who serves it.
#[derive(Debug, Clone)]
pub struct Offered<T> {
    /// As clients see it (URI or name rewritten).
    pub item: T,
    /// The exposed URI, URI template or name: what policies and audit records name it by.
    pub exposed: String,
    /// Index of the instance in [`super::Catalog::instances`].
    pub instance: usize,
    /// The instance's own URI, URI template or name.
    pub original: String,
}

/// Every resource, template and prompt of the catalog's instances.
#[derive(Debug, Default)]
pub struct Offers {
    pub resources: Vec<Offered<Resource>>,
    pub templates: Vec<Offered<ResourceTemplate>>,
    pub prompts: Vec<Offered<Prompt>>,
    resource_by_uri: HashMap<String, usize>,
    template_by_uri: HashMap<String, usize>,
    prompt_by_name: HashMap<String, usize>,
    /// Instances offering resources, by prefix; `None` for unprefixed ones.
    resource_owners: Vec<(Option<String>, usize)>,
}

/// Why an exposed URI leads nowhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("no resource has this URI")]
    Unknown,
    /// Dot segments, encoded separators, control characters or excessive length: what an
    /// upstream might read as another URI than the one the policy decided on.
    #[error(
        "the URI is not in plain form (no dot segments, encoded `.` or `/`, backslashes, whitespace or control characters; at most 8 KiB)"
    )]
    NotPlain,
    /// Several unprefixed instances offer resources, so a URI not listed by one has no owner.
    #[error("more than one server behind the gateway keeps its own URIs ({0}); give each a prefix")]
    Ambiguous(String),
}

/// The URI clients see for an instance's `uri`.
pub fn exposed_uri(prefix: Option<&str>, uri: &str) -> String {
    match prefix {
        Some(prefix) => format!("{SCHEME}{prefix}/{uri}"),
        None => uri.to_owned(),
    }
}

/// The name clients see for an instance's prompt.
pub fn exposed_prompt(prefix: Option<&str>, name: &str) -> String {
    match prefix {
        Some(prefix) => format!("{prefix}_{name}"),
        None => name.to_owned(),
    }
}

/// A URI every upstream reads as the same string the policy saw: none of the forms that
/// servers commonly normalise into another path.
pub fn is_plain(uri: &str) -> bool {
    if uri.is_empty() || uri.len() > MAX_URI {
        return false;
    }
    if uri
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return false;
    }
    let lower = uri.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00"]
        .iter()
        .any(|encoded| lower.contains(encoded))
    {
        return false;
    }
    // Dot segments anywhere after the scheme (`a/./b`, `a/../b`, a trailing `/..`).
    let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    !path
        .split(['/', '?', '#'])
        .any(|segment| segment == "." || segment == "..")
}

// === impl Offers ===

impl Offers {
    /// Collects the live lists of `instances`; what collides is left out and logged.
    pub fn assemble(instances: &[CatalogInstance]) -> Self {
        let mut offers = Offers::default();
        for (index, instance) in instances.iter().enumerate() {
            let prefix = instance.prefix.as_deref();
            if let Some(resources) = instance.adapter.resources() {
                offers
                    .resource_owners
                    .push((instance.prefix.clone(), index));
                for resource in resources.resources().borrow().iter() {
                    let exposed = exposed_uri(prefix, &resource.uri);
                    if !offers.claim_uri(instance, &exposed, false) {
                        continue;
                    }
                    let mut item = resource.clone();
                    item.uri.clone_from(&exposed);
                    offers
                        .resource_by_uri
                        .insert(exposed.clone(), offers.resources.len());
                    offers.resources.push(Offered {
                        item,
                        exposed,
                        instance: index,
                        original: resource.uri.clone(),
                    });
                }
                for template in resources.templates().borrow().iter() {
                    let exposed = exposed_uri(prefix, &template.uri_template);
                    if !offers.claim_uri(instance, &exposed, true) {
                        continue;
                    }
                    let mut item = template.clone();
                    item.uri_template.clone_from(&exposed);
                    offers
                        .template_by_uri
                        .insert(exposed.clone(), offers.templates.len());
                    offers.templates.push(Offered {
                        item,
                        exposed,
                        instance: index,
                        original: template.uri_template.clone(),
                    });
                }
            }
            if let Some(prompts) = instance.adapter.prompts() {
                for prompt in prompts.prompts().borrow().iter() {
                    let exposed = exposed_prompt(prefix, &prompt.name);
                    if offers.prompt_by_name.contains_key(&exposed) {
                        tracing::warn!(instance = %instance.name, prompt = %exposed, "prompt left out: an earlier instance has this name");
                        continue;
                    }
                    let mut item = prompt.clone();
                    item.name.clone_from(&exposed);
                    offers
                        .prompt_by_name
                        .insert(exposed.clone(), offers.prompts.len());
                    offers.prompts.push(Offered {
                        item,
                        exposed,
                        instance: index,
                        original: prompt.name.clone(),
                    });
                }
            }
        }
        offers
    }

    /// Whether `exposed` may be added: unclaimed, and (for an unprefixed instance) outside the
    /// namespace of prefixed ones.
    fn claim_uri(&self, instance: &CatalogInstance, exposed: &str, template: bool) -> bool {
        let taken = if template {
            self.template_by_uri.contains_key(exposed)
        } else {
            self.resource_by_uri.contains_key(exposed)
        };
        let reason = if taken {
            "an earlier instance has this URI"
        } else if instance.prefix.is_none() && exposed.starts_with(SCHEME) {
            "an unprefixed server may not use the gateway's own `manifold://` URIs"
        } else {
            return true;
        };
        tracing::warn!(instance = %instance.name, uri = %exposed, reason, "resource left out");
        false
    }

    /// Who serves the resource at `exposed`, and under which URI of its own. A URI listed by an
    /// instance goes to it; any other must be plain ([`is_plain`]) and goes by its prefix, or to
    /// the one unprefixed instance offering resources.
    pub fn resolve_uri(&self, exposed: &str) -> Result<(usize, String), UriError> {
        if let Some(&index) = self.resource_by_uri.get(exposed) {
            let offered = &self.resources[index];
            return Ok((offered.instance, offered.original.clone()));
        }
        if !is_plain(exposed) {
            return Err(UriError::NotPlain);
        }
        if let Some(rest) = exposed.strip_prefix(SCHEME) {
            let (prefix, original) = rest.split_once('/').ok_or(UriError::Unknown)?;
            return self
                .resource_owners
                .iter()
                .find(|(owner, _)| owner.as_deref() == Some(prefix))
                .map(|(_, index)| (*index, original.to_owned()))
                .filter(|(_, original)| !original.is_empty())
                .ok_or(UriError::Unknown);
        }
        let unprefixed: Vec<usize> = self
            .resource_owners
            .iter()
            .filter(|(owner, _)| owner.is_none())
            .map(|(_, index)| *index)
            .collect();
        match unprefixed.as_slice() {
            [] => Err(UriError::Unknown),
            [index] => Ok((*index, exposed.to_owned())),
            many => Err(UriError::Ambiguous(format!("{} servers", many.len()))),
        }
    }

    pub fn prompt(&self, exposed: &str) -> Option<&Offered<Prompt>> {
        self.prompt_by_name
            .get(exposed)
            .map(|&index| &self.prompts[index])
    }

    pub fn template(&self, exposed: &str) -> Option<&Offered<ResourceTemplate>> {
        self.template_by_uri
            .get(exposed)
            .map(|&index| &self.templates[index])
    }

    /// Whether any instance offers resources (the gateway then advertises them).
    pub fn has_resources(&self) -> bool {
        !self.resource_owners.is_empty()
    }

    /// Which lists differ from `other`'s: (resources or templates, prompts).
    pub fn changed_from(&self, other: &Offers) -> (bool, bool) {
        let resources = self.resources.len() != other.resources.len()
            || self.templates.len() != other.templates.len()
            || self
                .resources
                .iter()
                .zip(&other.resources)
                .any(|(a, b)| a.item != b.item)
            || self
                .templates
                .iter()
                .zip(&other.templates)
                .any(|(a, b)| a.item != b.item);
        let prompts = self.prompts.len() != other.prompts.len()
            || self
                .prompts
                .iter()
                .zip(&other.prompts)
                .any(|(a, b)| a.item != b.item);
        (resources, prompts)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn plain_uris_pass_and_the_forms_upstreams_normalise_do_not() {
        for plain in [
            "file:///a/b.txt",
            "notes://note/1",
            "manifold://crm/file:///a",
            "test://static-text",
            "https://x.example/a?b=c#d",
        ] {
            assert!(is_plain(plain), "{plain}");
        }
        for odd in [
            "",
            "file:///a/../secret",
            "file:///a/./b",
            "file:///a/..",
            "manifold://crm/public/%2e%2e/secret",
            "manifold://crm/a%2Fb",
            "file:///a\\..\\b",
            "file:///a b",
            "file:///a\u{0}b",
            "file:///a\nb",
        ] {
            assert!(!is_plain(odd), "{odd:?}");
        }
        assert!(!is_plain(&format!("file:///{}", "a".repeat(MAX_URI))));
    }

    proptest! {
        /// Whatever follows a listed prefix, a URI with a dot segment is never plain.
        #[test]
        fn a_dot_segment_anywhere_is_refused(
            head in "[a-z0-9/]{0,12}",
            dots in prop::sample::select(vec!["..", "."]),
            tail in "[a-z0-9/]{0,12}",
            sep in prop::sample::select(vec!["/", "?", "#"]),
        ) {
            let uri = format!("manifold://crm/{head}/{dots}{sep}{tail}");
            prop_assert!(!is_plain(&uri), "{}", uri);
        }

        /// The exposed URI of a prefixed instance maps back to exactly the original.
        #[test]
        fn namespacing_is_reversible(prefix in "[a-z][a-z0-9_-]{0,10}", uri in "[a-z]{1,8}://[\\PC&&[^ ]]{0,30}") {
            let exposed = exposed_uri(Some(&prefix), &uri);
            let rest = exposed.strip_prefix(SCHEME).unwrap_or_default();
            let (p, original) = rest.split_once('/').unwrap_or_default();
            prop_assert_eq!(p, prefix.as_str());
            prop_assert_eq!(original, uri.as_str());
        }
    }
}
