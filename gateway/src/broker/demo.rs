//! Demo start: connects `[broker] demo_users` to every sandbox provider by running the real
//! authorization-code flow headlessly against the emulators (which auto-approve and take the
//! user from `login_hint`), so a demo script can call tools at once.

use super::UserBroker;

/// Why a headless connect failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoConnectError {
    #[error("{connection} for {user}: {reason}")]
    Failed {
        user: String,
        connection: String,
        reason: String,
    },
}

/// Connects each user to each sandbox connection, replacing what was stored (the emulators
/// start empty, so earlier tokens are dead anyway).
pub async fn connect_users(broker: &UserBroker, users: &[String]) -> Result<(), DemoConnectError> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| failed("-", "-", e.to_string()))?;
    let connections: Vec<(String, Vec<String>)> = broker
        .connections()
        .filter(|p| p.sandbox)
        .map(|p| (p.connection.clone(), broker.all_tool_scopes(&p.connection)))
        .collect();
    for user in users {
        for (connection, scopes) in &connections {
            let fail = |reason: String| failed(user, connection, reason);
            // Headless: this function is the browser, so it holds the binding nonce itself.
            let binding = crate::auth::binding::Binding::new();
            let authorize = broker
                .start_connect(user, connection, scopes, Some(user), &binding)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let answer = http
                .get(authorize)
                .send()
                .await
                .map_err(|_| fail("the emulator's authorize endpoint is unreachable".into()))?;
            let location = answer
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| url::Url::parse(v).ok())
                .ok_or_else(|| fail("authorize did not redirect back".into()))?;
            let query: std::collections::HashMap<String, String> =
                location.query_pairs().into_owned().collect();
            let (Some(code), Some(state)) = (query.get("code"), query.get("state")) else {
                return Err(fail("authorize returned no code".into()));
            };
            broker
                .finish_connect(user, state, code, Some(&binding.nonce))
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(())
}

fn failed(user: &str, connection: &str, reason: String) -> DemoConnectError {
    DemoConnectError::Failed {
        user: user.to_owned(),
        connection: connection.to_owned(),
        reason,
    }
}
