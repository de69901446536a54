//! `Host` and `Origin` validation for every HTTP route: the defence against DNS rebinding the
//! MCP specification requires. Invalid values get 403 before any other processing.
//!
//! The authority a request names is wherever its protocol puts it: the `Host` header on
//! HTTP/1.1, the `:authority` pseudo-header on HTTP/2 (hyper puts it in the URI; a `Host` header
//! may come too), the request target of an HTTP/1.1 request in absolute form. Every one present
//! is checked, they must agree, and a request that names none is refused when there is an
//! allow-list: what the guard cannot see, it does not let through.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, Uri, header},
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
    /// Also accept any IP literal as host (the operator listener: a name is needed for DNS
    /// rebinding, an address is not one).
    ip_literals: bool,
}

impl HostGuard {
    pub fn new(hosts: &[String], origins: &[String]) -> Self {
        let lower = |list: &[String]| list.iter().map(|s| s.to_ascii_lowercase()).collect();
        Self {
            hosts: lower(hosts),
            origins: lower(origins),
            ip_literals: false,
        }
    }

    /// The same lists, also accepting any IP literal as host: for the operator listener, which a
    /// scraper reaches by address.
    pub fn with_ip_literals(&self) -> Self {
        Self {
            ip_literals: true,
            ..self.clone()
        }
    }

    fn host_allowed(&self, authority: &str) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let authority = authority.to_ascii_lowercase();
        let host = split_host(&authority);
        if self.ip_literals && host.parse::<std::net::IpAddr>().is_ok() {
            return true;
        }
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

    /// Checks the authority (`uri`'s, the `Host` header, or both) and the `Origin`.
    pub(crate) fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), &'static str> {
        const FORBIDDEN_HOST: &str = "Forbidden: Host not allowed";
        let mut hosts = headers.get_all(header::HOST).iter();
        let host = match (hosts.next(), hosts.next()) {
            (None, _) => None,
            (Some(host), None) => Some(host.to_str().map_err(|_| FORBIDDEN_HOST)?),
            (Some(_), Some(_)) => return Err("Forbidden: more than one Host header"),
        };
        let target = uri.authority().map(|authority| authority.as_str());
        if let (Some(host), Some(target)) = (host, target)
            && !host.eq_ignore_ascii_case(target)
        {
            return Err("Forbidden: the Host header and the request's authority disagree");
        }
        match host.or(target) {
            Some(authority) if !self.host_allowed(authority) => return Err(FORBIDDEN_HOST),
            None if !self.hosts.is_empty() => return Err("Forbidden: the request names no host"),
            _ => {}
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
    match guard.check(request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(reason) => (StatusCode::FORBIDDEN, reason).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

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
        assert!(
            guard
                .check(&Uri::from_static("/mcp"), &headers("localhost:8080", None))
                .is_ok()
        );
        assert!(
            guard
                .check(
                    &Uri::from_static("/mcp"),
                    &headers("gw.example.com:443", None)
                )
                .is_ok()
        );
        assert!(
            guard
                .check(
                    &Uri::from_static("/mcp"),
                    &headers("gw.example.com:8443", None)
                )
                .is_err()
        );
        assert!(
            guard
                .check(&Uri::from_static("/mcp"), &headers("evil.example", None))
                .is_err()
        );
        assert!(
            HostGuard::new(&[], &[])
                .check(&Uri::from_static("/mcp"), &headers("anything", None))
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
                .check(
                    &Uri::from_static("/mcp"),
                    &headers("localhost", Some("https://chatgpt.com"))
                )
                .is_ok()
        );
        assert!(
            guard
                .check(
                    &Uri::from_static("/mcp"),
                    &headers("localhost", Some("https://chatgpt.com:443"))
                )
                .is_ok()
        );
        assert!(
            guard
                .check(
                    &Uri::from_static("/mcp"),
                    &headers("localhost", Some("http://localhost:6274"))
                )
                .is_ok()
        );
        assert!(
            guard
                .check(
                    &Uri::from_static("/mcp"),
                    &headers("localhost", Some("http://localhost.evil:1"))
                )
                .is_err()
        );
        assert!(
            guard
                .check(
                    &Uri::from_static("/mcp"),
                    &headers("localhost", Some("https://evil.example"))
                )
                .is_err()
        );
    }

    #[test]
    fn without_origin_list_only_same_host_origins_pass() {
        let guard = HostGuard::new(&["127.0.0.1".into()], &[]);
        assert!(
            guard
                .check(
                    &Uri::from_static("/mcp"),
                    &headers("127.0.0.1:8080", Some("http://127.0.0.1:8080"))
                )
                .is_ok()
        );
        assert!(
            guard
                .check(
                    &Uri::from_static("/mcp"),
                    &headers("127.0.0.1:8080", Some("http://attacker.example"))
                )
                .is_err()
        );
        assert!(
            guard
                .check(
                    &Uri::from_static("/mcp"),
                    &headers("127.0.0.1:8080", Some("null"))
                )
                .is_err()
        );
    }

    fn bare(host: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(host) = host {
            map.append(header::HOST, HeaderValue::from_str(host).expect("host"));
        }
        map
    }

    #[test]
    fn the_authority_of_the_uri_counts_like_the_host_header() {
        let guard = HostGuard::new(&["localhost".into()], &[]);
        let h2 = |authority: &str| Uri::try_from(format!("http://{authority}/mcp")).expect("uri");
        assert!(guard.check(&h2("localhost:8080"), &bare(None)).is_ok());
        assert!(
            guard
                .check(&h2("LOCALHOST:8080"), &bare(Some("localhost:8080")))
                .is_ok()
        );
        assert!(guard.check(&h2("evil.example"), &bare(None)).is_err());
        assert!(
            guard
                .check(&h2("evil.example"), &bare(Some("localhost")))
                .is_err()
        );
        assert!(
            guard
                .check(&h2("localhost"), &bare(Some("evil.example")))
                .is_err()
        );
        assert!(
            guard
                .check(&h2("localhost"), &bare(Some("localhost:1")))
                .is_err()
        );
        let mut two = bare(Some("localhost"));
        two.append(header::HOST, HeaderValue::from_static("localhost"));
        assert!(guard.check(&Uri::from_static("/mcp"), &two).is_err());
        assert!(
            guard.check(&Uri::from_static("/mcp"), &bare(None)).is_err(),
            "no host at all"
        );
        let any = HostGuard::new(&[], &[]);
        assert!(any.check(&Uri::from_static("/mcp"), &bare(None)).is_ok());
    }

    #[test]
    fn the_operator_guard_also_accepts_ip_literals_and_nothing_else() {
        let guard = HostGuard::new(&["localhost".into()], &[]).with_ip_literals();
        let path = Uri::from_static("/metrics");
        for host in [
            "10.1.2.3:9464",
            "[fd00::1]:9464",
            "192.168.0.1",
            "localhost:9",
        ] {
            assert!(guard.check(&path, &bare(Some(host))).is_ok(), "{host}");
        }
        for host in ["10.1.2.3.evil.example", "evil.example:9464", "1.2.3.4@evil"] {
            assert!(guard.check(&path, &bare(Some(host))).is_err(), "{host}");
        }
    }
}
