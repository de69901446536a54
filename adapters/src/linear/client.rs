//! A small GraphQL client for Linear: one POST per operation, Linear's two credential forms, and
//! Linear's error answers mapped to [`ToolError`].

use std::time::Duration;

use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Map, Value};
use url::Url;

use crate::{
    BuildError, CallContext, ToolError,
    upstream::{InstanceClient, UpstreamRequest, UpstreamResponse},
};

/// The body of a GraphQL POST.
#[derive(serde::Serialize)]
struct GraphqlRequest<'a> {
    query: &'a str,
    variables: &'a Value,
    #[serde(rename = "operationName")]
    operation_name: &'a str,
}

/// Sends GraphQL operations to `{base_url}/graphql`.
#[derive(Debug, Clone)]
pub(crate) struct GraphqlClient {
    http: InstanceClient,
    endpoint: Url,
}

impl GraphqlClient {
    pub(crate) fn new(http: InstanceClient, base_url: &Url) -> Result<Self, BuildError> {
        let mut endpoint = base_url.clone();
        // Appending keeps any prefix of the base URL (the sandbox serves Linear under `/linear`).
        endpoint
            .path_segments_mut()
            .map_err(|()| BuildError::BaseUrl {
                url: base_url.to_string(),
                reason: "cannot be a base URL".into(),
            })?
            .pop_if_empty()
            .push("graphql");
        Ok(Self { http, endpoint })
    }

    /// Runs `document` and returns its `data`, or the first GraphQL error as a [`ToolError`].
    pub(crate) async fn execute(
        &self,
        operation: &str,
        document: &str,
        variables: Value,
        ctx: &CallContext,
    ) -> Result<Map<String, Value>, ToolError> {
        let body = GraphqlRequest {
            query: document,
            variables: &variables,
            operation_name: operation,
        };
        let mut request = UpstreamRequest::new(Method::POST, self.endpoint.clone())
            .json(&body)
            // A mutation that reached Linear may have taken effect: never resend it after a
            // 5xx or a broken connection. Queries are safe to repeat.
            .idempotent(!document.trim_start().starts_with("mutation"));
        request
            .headers
            .insert(header::AUTHORIZATION, authorization(ctx)?);
        let response = self.http.send(request, ctx).await?;
        decode(&response)
    }
}

/// Linear takes personal API keys bare (`Authorization: lin_api_…`) and OAuth access tokens as
/// `Bearer`; a key sent as `Bearer` is rejected, so the form is chosen from the key's prefix.
fn authorization(ctx: &CallContext) -> Result<HeaderValue, ToolError> {
    let secret = ctx
        .credential
        .as_ref()
        .filter(|secret| !secret.expose().trim().is_empty())
        .ok_or_else(|| {
            ToolError::Unauthorized(
                "no Linear credential is connected for this user; connect Linear (OAuth) or \
                 configure a personal API key"
                    .into(),
            )
        })?;
    let raw = secret.expose().trim();
    let value = if raw.starts_with("lin_api_") || raw.starts_with("Bearer ") {
        raw.to_owned()
    } else {
        format!("Bearer {raw}")
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        ToolError::Unauthorized("the stored Linear credential is not a valid header value".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn decode(response: &UpstreamResponse) -> Result<Map<String, Value>, ToolError> {
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    let first_error = parsed
        .as_ref()
        .and_then(|body| body.get("errors"))
        .and_then(Value::as_array)
        .and_then(|errors| errors.first());
    if let Some(error) = first_error {
        return Err(map_error(error, response.status, response.retry_after()));
    }
    if response.status == StatusCode::UNAUTHORIZED {
        return Err(ToolError::Unauthorized(
            "Linear rejected the credential (HTTP 401)".into(),
        ));
    }
    if !response.status.is_success() {
        let snippet: String = String::from_utf8_lossy(&response.body)
            .chars()
            .take(200)
            .collect();
        return Err(ToolError::Upstream {
            status: response.status.as_u16(),
            message: snippet,
        });
    }
    match parsed.and_then(|mut body| body.get_mut("data").map(Value::take)) {
        Some(Value::Object(data)) => Ok(data),
        _ => Err(ToolError::BadResponse(
            "Linear answered without `data` or `errors`".into(),
        )),
    }
}

/// Maps one Linear GraphQL error. Linear classifies errors in `extensions.type` (and
/// `extensions.code`); `userPresentableMessage` is worded for people, so it is preferred.
fn map_error(error: &Value, status: StatusCode, retry_after: Option<Duration>) -> ToolError {
    let text = |key: &str| {
        error
            .pointer(&format!("/extensions/{key}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let (kind, code) = (text("type"), text("code"));
    let message = error
        .pointer("/extensions/userPresentableMessage")
        .or_else(|| error.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("Linear reported an error")
        .to_owned();
    let raw_message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if kind == "authentication error" || code == "authentication_error" || status == 401 {
        ToolError::Unauthorized(message)
    } else if kind == "forbidden" || code == "forbidden" {
        ToolError::Forbidden(message)
    } else if kind == "ratelimited" || code == "ratelimited" || status == 429 {
        ToolError::RateLimited { retry_after }
    } else if raw_message.starts_with("entity not found") || code == "entity_not_found" {
        ToolError::NotFound(message)
    } else if kind == "invalid input" || code == "input_error" || code == "bad_user_input" {
        ToolError::InvalidArguments(message)
    } else {
        ToolError::Upstream {
            status: status.as_u16(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(kind: &str, message: &str) -> Value {
        json!({ "message": message, "extensions": { "type": kind } })
    }

    #[test]
    fn maps_linear_error_types() {
        let ok = StatusCode::OK;
        assert!(matches!(
            map_error(
                &error("authentication error", "x"),
                StatusCode::BAD_REQUEST,
                None
            ),
            ToolError::Unauthorized(_)
        ));
        assert!(matches!(
            map_error(&error("forbidden", "x"), ok, None),
            ToolError::Forbidden(_)
        ));
        assert!(matches!(
            map_error(&error("ratelimited", "x"), StatusCode::BAD_REQUEST, Some(Duration::from_secs(3))),
            ToolError::RateLimited { retry_after: Some(d) } if d.as_secs() == 3
        ));
        assert!(matches!(
            map_error(&error("invalid input", "Entity not found: Issue"), ok, None),
            ToolError::NotFound(_)
        ));
        assert!(matches!(
            map_error(&error("invalid input", "title too long"), ok, None),
            ToolError::InvalidArguments(_)
        ));
        assert!(matches!(
            map_error(&error("internal error", "boom"), ok, None),
            ToolError::Upstream { status: 200, .. }
        ));
    }

    #[test]
    fn endpoint_keeps_the_base_path() {
        let client = crate::UpstreamClient::new(crate::UpstreamConfig::default())
            .expect("client builds")
            .for_instance("t", 1);
        let base = Url::parse("http://127.0.0.1:9/linear").expect("static url");
        let gql = GraphqlClient::new(client, &base).expect("endpoint");
        assert_eq!(gql.endpoint.as_str(), "http://127.0.0.1:9/linear/graphql");
    }
}
