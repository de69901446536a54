//! Resources: two static ones (text and binary), one that can be watched, and the
//! `test://template/{id}/data` template. Unknown URIs answer -32602 with the URI in `data`
//! (SEP-2164) rather than an empty `contents`.

use rmcp::{
    ErrorData as McpError,
    model::{CacheScope, ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
};
use serde_json::json;

use crate::{server::TTL_MS, tools::TEST_IMAGE_BASE64};

const TEMPLATE_PREFIX: &str = "test://template/";
const TEMPLATE_SUFFIX: &str = "/data";

pub fn all() -> Vec<Resource> {
    serde_json::from_value(json!([
        {
            "uri": "test://static-text",
            "name": "static-text",
            "title": "Static Text Resource",
            "description": "A static text resource for testing",
            "mimeType": "text/plain"
        },
        {
            "uri": "test://static-binary",
            "name": "static-binary",
            "title": "Static Binary Resource",
            "description": "A static binary resource (image) for testing",
            "mimeType": "image/png"
        },
        {
            "uri": "test://watched-resource",
            "name": "watched-resource",
            "title": "Watched Resource",
            "description": "A resource clients can subscribe to",
            "mimeType": "text/plain"
        }
    ]))
    .expect("static resource definitions are valid")
}

pub fn templates() -> Vec<ResourceTemplate> {
    serde_json::from_value(json!([
        {
            "uriTemplate": "test://template/{id}/data",
            "name": "template",
            "title": "Resource Template",
            "description": "A resource template with parameter substitution",
            "mimeType": "application/json"
        }
    ]))
    .expect("static template definitions are valid")
}

pub fn read(uri: &str) -> Result<ReadResourceResult, McpError> {
    let contents = match uri {
        "test://static-text" => {
            ResourceContents::text("This is the content of the static text resource.", uri)
                .with_mime_type("text/plain")
        }
        "test://static-binary" => {
            ResourceContents::blob(TEST_IMAGE_BASE64, uri).with_mime_type("image/png")
        }
        "test://watched-resource" => {
            ResourceContents::text("Watched resource content", uri).with_mime_type("text/plain")
        }
        _ => match template_id(uri) {
            Some(id) => ResourceContents::text(
                json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") })
                    .to_string(),
                uri,
            )
            .with_mime_type("application/json"),
            None => {
                return Err(McpError::invalid_params(
                    "Resource not found",
                    Some(json!({ "uri": uri })),
                ));
            }
        },
    };
    Ok(ReadResourceResult::new(vec![contents])
        .with_ttl_ms(TTL_MS)
        .with_cache_scope(CacheScope::Public))
}

/// The `{id}` of `test://template/{id}/data`, if `uri` matches the template.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix(TEMPLATE_PREFIX)?
        .strip_suffix(TEMPLATE_SUFFIX)?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}
