//! A small GraphQL client for Linear: one POST per operation, Linear's two credential forms, and
//! Linear's error answers mapped to [`ToolError`].

use std::time::Duration;

use http::{HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::model::Root;
use crate::{
    BuildError, CallContext, ToolError,
    upstream::{InstanceClient, UpstreamRequest, UpstreamResponse, path},
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
        // Appending keeps any prefix of the base URL (the sandbox serves Linear under `/linear`).
        // GraphQL puts every id in the body, so this fixed path is the only one Linear gets.
        let endpoint = path::append(base_url, &["graphql".into()])?;
        Ok(Self { http, endpoint })
    }

    /// Runs `document` and returns Linear's answer, to be read with [`decode`].
    pub(crate) async fn execute(
        &self,
        operation: &str,
        document: &str,
        variables: Value,
        ctx: &CallContext,
    ) -> Result<UpstreamResponse, ToolError> {
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
        self.http.send(request, ctx).await
    }
}

/// Linear takes personal API keys bare (`Authorization: lin_api_…`) and OAuth access tokens as
/// `Bearer`; a key sent as `Bearer` is rejected, so the form is chosen from the key's prefix.
fn authorization(ctx: &CallContext) -> Result<HeaderValue, ToolError> {
    let raw = ctx.bearer("Linear")?;
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

/// The whole of a GraphQL answer, with `data` read straight into the root field's type.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Answer<'a, T> {
    #[serde(default, borrow)]
    data: Option<Root<'a, T>>,
    #[serde(default)]
    errors: Option<Vec<Value>>,
}

/// Just the errors of an answer whose `data` did not have the expected shape.
#[derive(Deserialize)]
struct ErrorsOnly {
    #[serde(default)]
    errors: Option<Vec<Value>>,
}

/// Reads the query's root field `root` from Linear's answer (`None` when Linear sent `null`),
/// or the first GraphQL error as a [`ToolError`]. GraphQL errors win over the HTTP status, which
/// wins over the shape of `data`.
pub(crate) fn decode<'a, T: Deserialize<'a>>(
    response: &'a UpstreamResponse,
    root: &str,
) -> Result<Option<T>, ToolError> {
    // One UTF-8 check of the whole body, so the parser need not check each string again
    // (about a third of the decoding's instructions).
    let answer = std::str::from_utf8(&response.body)
        .map_err(|error| format!("not UTF-8: {error}"))
        .and_then(|text| {
            serde_json::from_str::<Answer<'a, T>>(text).map_err(|error| error.to_string())
        });
    let errors = match &answer {
        Ok(answer) => answer.errors.as_deref(),
        Err(_) => None,
    };
    let fallback = match (&answer, errors) {
        (Err(_), _) => serde_json::from_slice::<ErrorsOnly>(&response.body)
            .ok()
            .and_then(|e| e.errors),
        _ => None,
    };
    if let Some(error) = errors.or(fallback.as_deref()).and_then(<[Value]>::first) {
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
    match answer {
        Ok(Answer {
            data: Some(data), ..
        }) if data.name.is_empty() || data.name.as_str() == root => Ok(data.value),
        Ok(Answer {
            data: Some(data), ..
        }) => Err(ToolError::BadResponse(format!(
            "Linear answered `{}` where `{root}` was asked for",
            data.name.as_str()
        ))),
        Ok(Answer { data: None, .. }) => Err(ToolError::BadResponse(
            "Linear answered without `data` or `errors`".into(),
        )),
        Err(error) => Err(ToolError::BadResponse(format!(
            "Linear's `{root}` answer is not what the query asked for: {error}"
        ))),
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
    use std::borrow::Cow;

    use super::*;
    use crate::linear::model::{Connection, Issue, Team, Text};
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

    fn answer(status: u16, body: &str) -> UpstreamResponse {
        UpstreamResponse {
            status: StatusCode::from_u16(status).expect("status"),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    type Teams<'a> = Connection<'a, Team<'a>>;

    #[test]
    fn decodes_the_root_borrowing_plain_strings_and_owning_escaped_ones() {
        let body = r#"{"data":{"teams":{"nodes":[{"id":"t1","key":"ENG","name":"Eng \"core\" \u00e9",
            "description":null,"labels":{"nodes":[]},"members":null}],
            "pageInfo":{"hasNextPage":true,"endCursor":"c1"}}}}"#;
        let response = answer(200, body);
        let teams: Teams = decode(&response, "teams").expect("decodes").expect("root");
        let team = &teams.nodes[0];
        assert!(matches!(team.id, Text(Cow::Borrowed("t1"))));
        assert_eq!(team.name.as_str(), "Eng \"core\" é");
        assert!(matches!(team.name, Text(Cow::Owned(_))));
        assert_eq!(team.description, None);
        assert!(team.members.is_none());
        assert_eq!(teams.next(), Some("c1"));
    }

    #[test]
    fn null_root_is_none_and_missing_data_is_a_bad_response() {
        let response = answer(200, r#"{"data":{"issue":null}}"#);
        assert!(matches!(decode::<Issue>(&response, "issue"), Ok(None)));
        let response = answer(200, r#"{"data":null}"#);
        assert!(matches!(
            decode::<Issue>(&response, "issue"),
            Err(ToolError::BadResponse(m)) if m.contains("without `data`")
        ));
        let response = answer(200, r#"{"data":{"project":{"id":"p"}}}"#);
        assert!(matches!(
            decode::<Issue>(&response, "issue"),
            Err(ToolError::BadResponse(m)) if m.contains("`project` where `issue`")
        ));
    }

    #[test]
    fn a_wrong_shape_is_a_bad_response_unless_linear_sent_errors() {
        let response = answer(200, r#"{"data":{"teams":{"nodes":[{"id":7}]}}}"#);
        assert!(matches!(
            decode::<Teams>(&response, "teams"),
            Err(ToolError::BadResponse(m)) if m.contains("`teams` answer is not what the query asked for")
        ));
        // Partial data that does not fit, next to an error: the error is the answer.
        let response = answer(
            200,
            r#"{"data":{"teams":{"nodes":[{"id":7}]}},
                "errors":[{"message":"no","extensions":{"type":"forbidden"}}]}"#,
        );
        assert!(matches!(
            decode::<Teams>(&response, "teams"),
            Err(ToolError::Forbidden(_))
        ));
        let response = answer(502, "<html>bad gateway</html>");
        assert!(matches!(
            decode::<Teams>(&response, "teams"),
            Err(ToolError::Upstream { status: 502, message }) if message.contains("bad gateway")
        ));
        let response = answer(401, "");
        assert!(matches!(
            decode::<Teams>(&response, "teams"),
            Err(ToolError::Unauthorized(_))
        ));
        // A body that is not UTF-8 is a bad answer, and an error status still wins over it.
        let mut response = answer(200, "");
        response.body = bytes::Bytes::from_static(b"{\"data\":{\"teams\":\"\xff\"}}");
        assert!(matches!(
            decode::<Teams>(&response, "teams"),
            Err(ToolError::BadResponse(m)) if m.contains("not UTF-8")
        ));
        response.status = StatusCode::BAD_GATEWAY;
        assert!(matches!(
            decode::<Teams>(&response, "teams"),
            Err(ToolError::Upstream { status: 502, .. })
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
