//! Checks of the `[server]` connection limits and operator endpoints: a limit of zero would
//! refuse every client, and operator endpoints on the public listener without a token would be
//! open to anyone who reaches it.

use std::time::Duration;

use super::{OperatorListen, ServerConfig};

/// Every problem of the limits, as messages.
pub fn limits(server: &ServerConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let positive = [
        ("header_read_timeout", server.header_read_timeout),
        ("idle_timeout", server.idle_timeout),
        ("body_read_timeout", server.body_read_timeout),
    ];
    for (name, value) in positive {
        if value < Duration::from_millis(10) {
            problems.push(format!(
                "server.{name} must be at least 10ms, not {value:?}"
            ));
        }
    }
    let counts = [
        ("max_sessions_per_user", server.max_sessions_per_user),
        ("max_streams_per_session", server.max_streams_per_session),
    ];
    for (name, value) in counts {
        if value == 0 {
            problems.push(format!("server.{name} must be at least 1"));
        }
    }
    let token = server
        .operator_token
        .as_ref()
        .map(|token| token.expose().trim());
    if server.operator_listen == OperatorListen::Main && token.is_none_or(str::is_empty) {
        problems.push(
            "server.operator_listen = \"main\" serves /metrics on the public listener and needs \
             server.operator_token (MANIFOLD_SERVER__OPERATOR_TOKEN)"
                .into(),
        );
    }
    if token.is_some_and(|token| token.len() < 16) {
        // The length only: the token itself is a secret.
        problems.push("server.operator_token must be at least 16 characters".into());
    }
    problems
}

#[cfg(test)]
mod tests {
    use manifold_adapters::Secret;

    use super::*;

    #[test]
    fn zero_limits_and_an_open_operator_endpoint_are_refused() {
        assert!(limits(&ServerConfig::default()).is_empty());
        let mut server = ServerConfig {
            header_read_timeout: Duration::ZERO,
            max_streams_per_session: 0,
            operator_listen: OperatorListen::Main,
            ..ServerConfig::default()
        };
        let problems = limits(&server).join("\n");
        for name in [
            "header_read_timeout",
            "max_streams_per_session",
            "operator_token",
        ] {
            assert!(problems.contains(name), "{problems}");
        }
        server.operator_token = Some(Secret::new("short"));
        let problems = limits(&server).join("\n");
        assert!(problems.contains("at least 16"), "{problems}");
        assert!(!problems.contains("short"), "the token is never shown");
        server.operator_token = Some(Secret::new("a-token-long-enough"));
        assert_eq!(limits(&server).len(), 2);
    }
}
