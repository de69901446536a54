//! `Host` and `Origin` validation for every HTTP route: the defence against DNS rebinding the
//! MCP specification requires. Invalid values get 403 before any other processing.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// The allow-lists from `[server]`.
#[derive(Debug, Clone)]
pub struct HostGuard {
    /// Lower-cased `host` or `host:port` entries; empty accepts any host.
    hosts: Arc<[String]>,
    /// Lower-cased `scheme://host[:port|:*]` entries (or `null`).
    origins: Arc<[String]>,
}

impl HostGuard {
    pub fn new(hosts: &[String], origins: &[String]) -> Self {
        let lower = |list: &[String]| list.iter().map(|s| s.to_ascii_lowercase()).collect();
        Self {
            hosts: lower(hosts),
            origins: lower(origins),
        }
    }

    fn host_allowed(&self, authority: &str) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let authority = authority.to_ascii_lowercase();
        let host = split_host(&authority);
        self.hosts.iter().any(|allowed| {
            // An entry without a port allows that host on any port.
            allowed == &authority || (!has_port(allowed) && allowed == host)
        })
    }

    /// An `Origin` is allowed when listed, or, with no list, when its host is an allowed host
    /// (the gateway's own pages).
    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        if self.origins.is_empty() {
            let Some((_, authority)) = origin.split_once("://") else {
                return false;
            };
            return !self.hosts.is_empty() && self.host_allowed(authority);
        }
        self.origins.iter().any(|allowed| {
            if let Some(stem) = allowed.strip_suffix(":*") {
                origin == stem
                    || origin.strip_prefix(stem).is_some_and(|rest| {
                        rest.starts_with(':') && rest[1..].bytes().all(|b| b.is_ascii_digit())
                    })
            } else {
                default_port_form(&origin) == default_port_form(allowed)
            }
        })
    }

    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if let Some(host) = host
            && !self.host_allowed(host)
        {
            return Err("Forbidden: Host not allowed");
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|origin| self.origin_allowed(origin));
            if !allowed {
                return Err("Forbidden: Origin not allowed");
            }
        }
        Ok(())
    }
}

fn split_host(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .split_once(']')
            .map_or(authority, |(host, _)| &host[1..]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

fn has_port(entry: &str) -> bool {
    if entry.starts_with('[') {
        return entry.contains("]:");
    }
    entry.matches(':').count() == 1
}

/// `https://a.com:443` and `https://a.com` name the same origin.
fn default_port_form(entry: &str) -> String {
    entry
        .strip_suffix(":443")
        .filter(|_| entry.starts_with("https://"))
        .or_else(|| {
            entry
                .strip_suffix(":80")
                .filter(|_| entry.starts_with("http://"))
        })
        .unwrap_or(entry)
        .to_owned()
}

/// axum middleware applying the guard.
pub async fn enforce(State(guard): State<HostGuard>, request: Request, next: Next) -> Response {
    match guard.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(reason) => (StatusCode::FORBIDDEN, reason).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(origin) = origin {
            map.insert(
                header::ORIGIN,
                HeaderValue::from_str(origin).expect("origin"),
            );
        }
        map
    }

    #[test]
    fn host_allow_list() {
        let guard = HostGuard::new(&["localhost".into(), "gw.example.com:443".into()], &[]);
        assert!(guard.check(&headers("localhost:8080", None)).is_ok());
        assert!(guard.check(&headers("gw.example.com:443", None)).is_ok());
        assert!(guard.check(&headers("gw.example.com:8443", None)).is_err());
        assert!(guard.check(&headers("evil.example", None)).is_err());
        assert!(
            HostGuard::new(&[], &[])
                .check(&headers("anything", None))
                .is_ok()
        );
    }

    #[test]
    fn origin_allow_list() {
        let guard = HostGuard::new(
            &["localhost".into()],
            &["https://chatgpt.com".into(), "http://localhost:*".into()],
        );
        assert!(
            guard
                .check(&headers("localhost", Some("https://chatgpt.com")))
                .is_ok()
        );
        assert!(
            guard
                .check(&headers("localhost", Some("https://chatgpt.com:443")))
                .is_ok()
        );
        assert!(
            guard
                .check(&headers("localhost", Some("http://localhost:6274")))
                .is_ok()
        );
        assert!(
            guard
                .check(&headers("localhost", Some("http://localhost.evil:1")))
                .is_err()
        );
        assert!(
            guard
                .check(&headers("localhost", Some("https://evil.example")))
                .is_err()
        );
    }

    #[test]
    fn without_origin_list_only_same_host_origins_pass() {
        let guard = HostGuard::new(&["127.0.0.1".into()], &[]);
        assert!(
            guard
                .check(&headers("127.0.0.1:8080", Some("http://127.0.0.1:8080")))
                .is_ok()
        );
        assert!(
            guard
                .check(&headers("127.0.0.1:8080", Some("http://attacker.example")))
                .is_err()
        );
        assert!(
            guard
                .check(&headers("127.0.0.1:8080", Some("null")))
                .is_err()
        );
    }
}
