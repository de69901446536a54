//! Checks a parsed config for bad values and references to things that do not exist.

use manifold_adapters::Registry;
use toml::Spanned;

use super::{Config, Problem};

/// Every problem found, in file order.
pub fn validate(config: &Config, source: &str, registry: &Registry) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut at =
        |offset: usize, message: String| problems.push(Problem::at(source, offset, message));
    let top = |key: &str| source.find(&format!("[{key}]")).unwrap_or(0);

    let server = &config.server;
    if server.tools_page_size == 0 || server.tools_page_size > 1000 {
        at(
            top("server"),
            format!(
                "server.tools_page_size must be 1..=1000, not {}",
                server.tools_page_size
            ),
        );
    }
    if server.max_body_bytes < 1024 {
        at(
            top("server"),
            format!(
                "server.max_body_bytes must be at least 1024, not {}",
                server.max_body_bytes
            ),
        );
    }
    for problem in super::validate_server::limits(server) {
        at(top("server"), problem);
    }
    for origin in &server.allowed_origins {
        if origin != "null" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
            at(
                top("server"),
                format!(
                    "server.allowed_origins entry `{origin}` needs a scheme (https://host[:port])"
                ),
            );
        }
    }
    if let Some(url) = &config.storage.url {
        let url = url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            // The URL may hold a password: name only its scheme.
            let scheme = url.split(':').next().unwrap_or_default();
            at(
                top("storage"),
                format!("storage.url must be sqlite:… or postgres://…, not a `{scheme}` URL"),
            );
        }
    }
    if config.upstream.retry.max_attempts == 0 {
        at(
            top("upstream.retry"),
            "upstream.retry.max_attempts must be at least 1".into(),
        );
    }

    super::validate_auth::validate_auth(config, &mut at, top("auth"));
    config
        .outbound
        .problems()
        .into_iter()
        .for_each(|p| at(top("outbound"), p));

    for (name, instance) in &config.adapters {
        let offset = name.span().start;
        if !is_name(name.get_ref()) {
            at(
                offset,
                format!(
                    "adapter instance name `{}` may only use A-Z a-z 0-9 _ -",
                    name.get_ref()
                ),
            );
        }
        if registry.get(instance.kind.get_ref()).is_none() {
            let known: Vec<_> = registry.ids().collect();
            at(
                instance.kind.span().start,
                format!(
                    "unknown adapter kind `{}` (known: {})",
                    instance.kind.get_ref(),
                    known.join(", ")
                ),
            );
        }
        if let Some(prefix) = &instance.prefix
            && (!is_name(prefix.get_ref()) || prefix.get_ref().len() > 40)
        {
            at(
                prefix.span().start,
                format!(
                    "prefix `{}` must be 1-40 characters of A-Z a-z 0-9 _ -",
                    prefix.get_ref()
                ),
            );
        }
        if let Some(url) = &instance.base_url {
            check_url(url, &mut at);
        }
        if instance.sandbox && !cfg!(feature = "sandbox") {
            at(
                offset,
                format!(
                    "adapter `{}` asks for its sandbox, but this build has no sandbox emulators",
                    name.get_ref()
                ),
            );
        }
        super::overrides::problems(&instance.overrides, &mut at);
        if instance.max_concurrency == 0 {
            at(
                offset,
                format!(
                    "adapter `{}`: max_concurrency must be at least 1",
                    name.get_ref()
                ),
            );
        }
    }
    problems
}

fn check_url(url: &Spanned<String>, at: &mut impl FnMut(usize, String)) {
    match url::Url::parse(url.get_ref()) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
        Ok(parsed) => at(
            url.span().start,
            format!("base_url must be http(s), not `{}`", parsed.scheme()),
        ),
        Err(error) => at(
            url.span().start,
            format!("base_url `{}` is not a URL: {error}", url.get_ref()),
        ),
    }
}

/// `[A-Za-z0-9_-]+`: the characters OpenAI allows in function names.
pub(crate) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
