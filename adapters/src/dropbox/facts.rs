//! Whom the link `create_share_link` hands out works for (`context.link_audience`). Dropbox
//! answers a request for a path that already has a link with that existing link, whatever
//! audience was asked for (ask `no_one`, get the `public` link made last week), so the path's
//! own links are listed first (`sharing/list_shared_links` with `direct_only`: links to folders
//! above it are not what the call returns) and the fact is the widest of their audiences and the
//! requested one. The requested one counts too, because a link revoked between this read and the
//! call leaves Dropbox to make the one asked for.
//!
//! An audience word Dropbox did not document here, a link without one, or a listing that cannot
//! be read to its end is an error, and so a denial.

use serde_json::{Map, Value, json};

use super::{DropboxAdapter, ops::Ops};
use crate::{CallContext, LinkAudience, ResolveFacts, StoredFacts, ToolError};

/// More pages of one path's own links than any real path has; beyond it the listing is refused.
const MAX_PAGES: usize = 10;

/// The audience a request asks for.
fn requested(audience: &str) -> Result<LinkAudience, ToolError> {
    match audience {
        "public" => Ok(LinkAudience::Anyone),
        "team" => Ok(LinkAudience::Organization),
        "no_one" => Ok(LinkAudience::Invited),
        other => Err(ToolError::InvalidArguments(format!(
            "`audience` must be public, team or no_one, not {other}"
        ))),
    }
}

/// Whom an existing link works for, from its `link_permissions`: `effective_audience` (the
/// `LinkAudience` union) when Dropbox gives it, else `resolved_visibility` (older links).
/// Password links work for anyone who has the password: anyone.
fn existing(link: &Value) -> Result<LinkAudience, ToolError> {
    let tag = |key: &str| {
        link.pointer(&format!("/link_permissions/{key}/.tag"))
            .and_then(Value::as_str)
    };
    let unknown = |word: &str| {
        ToolError::BadResponse(format!(
            "Dropbox named a link audience this gateway does not know: `{word}`"
        ))
    };
    if let Some(word) = tag("effective_audience") {
        return match word {
            "public" | "password" => Ok(LinkAudience::Anyone),
            "team" => Ok(LinkAudience::Organization),
            "no_one" | "members" => Ok(LinkAudience::Invited),
            other => Err(unknown(other)),
        };
    }
    match tag("resolved_visibility") {
        Some("public" | "password") => Ok(LinkAudience::Anyone),
        Some("team_only" | "team_and_password") => Ok(LinkAudience::Organization),
        Some("shared_folder_only" | "no_one") => Ok(LinkAudience::Invited),
        Some(other) => Err(unknown(other)),
        None => Err(ToolError::BadResponse(
            "Dropbox answered a shared link without its audience".into(),
        )),
    }
}

// === impl DropboxAdapter ===

#[async_trait::async_trait]
impl ResolveFacts for DropboxAdapter {
    async fn resolve(
        &self,
        tool: &str,
        arguments: &Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<StoredFacts, ToolError> {
        if tool != "create_share_link" {
            return Err(ToolError::UnknownTool(tool.to_owned()));
        }
        let ops = Ops {
            client: &self.client,
            args: arguments,
            ctx,
        };
        let mut widest = requested(ops.requested_audience()?)?;
        let mut arg = json!({ "path": ops.share_path()?, "direct_only": true });
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .rpc("sharing/list_shared_links", &arg, true, ctx)
                .await?;
            let links = page.get("links").and_then(Value::as_array).ok_or_else(|| {
                ToolError::BadResponse("Dropbox listed shared links without `links`".into())
            })?;
            for link in links {
                widest = widest.max(existing(link)?);
            }
            if page.get("has_more").and_then(Value::as_bool) != Some(true) {
                return Ok(StoredFacts {
                    link_audience: Some(widest),
                    ..StoredFacts::default()
                });
            }
            let cursor = page.get("cursor").and_then(Value::as_str).ok_or_else(|| {
                ToolError::BadResponse("Dropbox has more shared links but gave no cursor".into())
            })?;
            arg = json!({ "cursor": cursor });
        }
        Err(ToolError::BadResponse(
            "the path has more shared links than the gateway reads".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_documented_audience_and_refuses_others() {
        let link = |key: &str, word: &str| json!({ "link_permissions": { key: { ".tag": word } } });
        for (key, word, want) in [
            ("effective_audience", "public", LinkAudience::Anyone),
            ("effective_audience", "password", LinkAudience::Anyone),
            ("effective_audience", "team", LinkAudience::Organization),
            ("effective_audience", "no_one", LinkAudience::Invited),
            ("effective_audience", "members", LinkAudience::Invited),
            ("resolved_visibility", "public", LinkAudience::Anyone),
            ("resolved_visibility", "password", LinkAudience::Anyone),
            (
                "resolved_visibility",
                "team_only",
                LinkAudience::Organization,
            ),
            (
                "resolved_visibility",
                "team_and_password",
                LinkAudience::Organization,
            ),
            (
                "resolved_visibility",
                "shared_folder_only",
                LinkAudience::Invited,
            ),
            ("resolved_visibility", "no_one", LinkAudience::Invited),
        ] {
            assert_eq!(existing(&link(key, word)).ok(), Some(want), "{key} {word}");
        }
        for key in ["effective_audience", "resolved_visibility"] {
            assert!(existing(&link(key, "other")).is_err(), "{key}");
            assert!(existing(&link(key, "PUBLIC")).is_err(), "{key}");
        }
        assert!(existing(&json!({ "link_permissions": {} })).is_err());
        // The newer field wins over the older.
        let both = json!({ "link_permissions": {
            "effective_audience": { ".tag": "public" }, "resolved_visibility": { ".tag": "team_only" } } });
        assert_eq!(existing(&both).ok(), Some(LinkAudience::Anyone));
    }
}
