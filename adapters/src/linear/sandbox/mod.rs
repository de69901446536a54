//! The Linear emulator: `POST /graphql` executed against a subset of Linear's schema and an
//! in-memory workspace, plus the shared OAuth server and test switches.

use std::sync::{Arc, Mutex};

use apollo_compiler::{
    ExecutableDocument, Schema,
    resolvers::Execution,
    response::{GraphQLError, JsonMap},
    validation::Valid,
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

use crate::sandbox::{
    oauth::{OAuthConfig, OAuthServer, TokenStatus},
    throttle::{Throttle, too_many_requests},
};

mod mutate;
mod resolve;
pub(crate) mod store;

/// The subset of Linear's schema the emulator serves (see the file's header).
pub const SCHEMA: &str = include_str!("schema.graphql");

/// Personal API keys the emulator accepts, with the user each stands for.
pub const DEMO_KEYS: [(&str, &str); 2] = [
    ("lin_api_sandbox_alice", "alice"),
    ("lin_api_sandbox_bob", "bob"),
];

/// One emulated Linear workspace. Cheap to clone.
#[derive(Clone)]
pub struct LinearSandbox {
    schema: Arc<Valid<Schema>>,
    store: Arc<Mutex<store::Store>>,
    pub throttle: Throttle,
    pub oauth: OAuthServer,
}

impl std::fmt::Debug for LinearSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearSandbox").finish_non_exhaustive()
    }
}

impl Default for LinearSandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl LinearSandbox {
    /// # Panics
    /// When the embedded schema does not validate: a build-time asset, covered by the tests.
    pub fn new() -> Self {
        #[allow(clippy::expect_used)]
        let schema = Schema::parse_and_validate(SCHEMA, "linear-sandbox.graphql")
            .expect("the embedded Linear schema subset is valid");
        Self {
            schema: Arc::new(schema),
            store: Arc::new(Mutex::new(store::Store::seeded())),
            throttle: Throttle::new(),
            // Linear's OAuth access tokens last 24 hours and refresh tokens rotate.
            oauth: OAuthServer::new(OAuthConfig {
                access_token_ttl: std::time::Duration::from_secs(24 * 3600),
                rotate_refresh_tokens: true,
                token_prefix: "lin_oauth_sandbox_",
                default_user: "alice".into(),
            }),
        }
    }

    pub fn router(self) -> Router {
        let controls = self.throttle.routes().merge(self.oauth.routes());
        Router::new()
            .route("/graphql", post(graphql))
            .with_state(self)
            .merge(controls)
    }

    /// The user id behind an `Authorization` header, or Linear's error for it.
    fn authenticate(&self, headers: &HeaderMap) -> Result<String, Box<Response>> {
        let raw = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim();
        let login = if let Some(token) = raw.strip_prefix("Bearer ") {
            match self.oauth.check(token.trim()) {
                TokenStatus::Valid { user, .. } => Ok(user),
                TokenStatus::Expired => {
                    Err("Authentication required, the access token has expired")
                }
                TokenStatus::Unknown => Err("Authentication required, not authenticated"),
            }
        } else {
            DEMO_KEYS
                .iter()
                .find(|(key, _)| *key == raw)
                .map(|(_, user)| (*user).to_owned())
                .ok_or("Authentication required, not authenticated")
        };
        let login = login.map_err(|message| Box::new(auth_error(message)))?;
        let store = self
            .store
            .lock()
            .map_err(|_| Box::new(StatusCode::INTERNAL_SERVER_ERROR.into_response()))?;
        store
            .all("User")
            .iter()
            .find(|u| u.get("displayName").and_then(Value::as_str) == Some(login.as_str()))
            .and_then(|u| u.get("id").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| Box::new(auth_error("Authentication required, unknown user")))
    }
}

fn auth_error(message: &str) -> Response {
    // Linear reports authentication failures as HTTP 400 with a GraphQL error whose
    // `extensions.type` is "authentication error" (not 401); the adapter keys on the type.
    error_response(
        StatusCode::BAD_REQUEST,
        message,
        "authentication error",
        "AUTHENTICATION_ERROR",
        "You need to authenticate to access this operation.",
    )
}

fn linear_error(message: &str, kind: &str, code: &str, user_message: &str) -> Value {
    json!({ "message": message, "extensions": { "type": kind, "code": code, "userPresentableMessage": user_message } })
}

fn error_response(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: &str,
    user_message: &str,
) -> Response {
    (
        status,
        Json(json!({ "data": null, "errors": [linear_error(message, kind, code, user_message)] })),
    )
        .into_response()
}

/// Linear's classification of an execution error, from the message the resolvers chose.
fn classify(error: &GraphQLError) -> Value {
    // apollo-compiler prefixes resolver messages; Linear's messages carry no such prefix.
    let message = error.message.trim_start_matches("resolver error: ");
    let (kind, code, user) = if message.starts_with("Entity not found") {
        (
            "invalid input",
            "INPUT_ERROR",
            "Could not find referenced entity.",
        )
    } else if message.starts_with("Argument Validation Error") {
        (
            "invalid input",
            "INPUT_ERROR",
            message.trim_start_matches("Argument Validation Error - "),
        )
    } else {
        ("graphql error", "GRAPHQL_ERROR", message)
    };
    let mut value = serde_json::to_value(error).unwrap_or_else(|_| json!({ "message": message }));
    value["message"] = json!(message);
    value["extensions"] = json!({ "type": kind, "code": code, "userPresentableMessage": user });
    value
}

async fn graphql(
    State(sandbox): State<LinearSandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    sandbox.throttle.record(json!({
        "operationName": request.get("operationName"), "query": request.get("query"), "variables": request.get("variables"),
    }));
    if let Some(retry_after) = sandbox.throttle.take_failure() {
        return too_many_requests(
            retry_after,
            json!({ "errors": [linear_error(
            "Rate limit exceeded", "ratelimited", "RATELIMITED", "You have exceeded the API rate limit. Please try again later.")] }),
        );
    }
    sandbox.throttle.delay().await;
    let viewer = match sandbox.authenticate(&headers) {
        Ok(viewer) => viewer,
        Err(response) => return *response,
    };
    let Some(query) = request.get("query").and_then(Value::as_str) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "Must provide query string.",
            "graphql error",
            "BAD_REQUEST",
            "Bad request",
        );
    };
    let document = match ExecutableDocument::parse_and_validate(
        &sandbox.schema,
        query,
        "request.graphql",
    ) {
        Ok(document) => document,
        Err(with_errors) => {
            let errors: Vec<Value> = with_errors.errors.iter().map(|d| {
                let mut e = serde_json::to_value(d.to_json()).unwrap_or(Value::Null);
                e["extensions"] = json!({ "type": "graphql error", "code": "GRAPHQL_VALIDATION_FAILED",
                                          "userPresentableMessage": d.error.to_string() });
                e
            }).collect();
            return (StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response();
        }
    };
    let variables: JsonMap = request
        .get("variables")
        .filter(|v| v.is_object())
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let operation = request.get("operationName").and_then(Value::as_str);
    let Ok(mut store) = sandbox.store.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let ctx = resolve::Ctx {
        store: std::cell::RefCell::new(&mut store),
        schema: &sandbox.schema,
        viewer,
    };
    let execution = match Execution::new(&sandbox.schema, &document).operation_name(operation) {
        Ok(execution) => execution.raw_variable_values(&variables),
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &error.message().to_string(),
                "graphql error",
                "BAD_USER_INPUT",
                "Bad request",
            );
        }
    };
    let is_mutation = document
        .operations
        .get(operation)
        .is_ok_and(|op| op.is_mutation());
    let root = if is_mutation {
        resolve::Obj::Mutation(&ctx)
    } else {
        resolve::Obj::Query(&ctx)
    };
    match execution.execute_sync(&root) {
        Ok(response) => {
            let errors: Vec<Value> = response.errors.iter().map(classify).collect();
            let mut body = json!({ "data": response.data });
            if !errors.is_empty() {
                body["errors"] = Value::Array(errors);
            }
            Json(body).into_response()
        }
        Err(error) => error_response(
            StatusCode::BAD_REQUEST,
            &error.message().to_string(),
            "graphql error",
            "BAD_USER_INPUT",
            "Variable values are invalid.",
        ),
    }
}
