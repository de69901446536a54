//! Whom the link `create_share_link` leaves on a Box file works for (`context.link_audience`).
//! A Box file has one shared link and the call sets its `access` (`PUT /files/{id}` with
//! `shared_link.access`): a wider link the file had before is narrowed, never kept. Box may make
//! the link narrower than asked (`effective_access`, when enterprise settings restrict it) but
//! never wider, so the access asked for is the widest the link will work for, and no read of the
//! file is needed to know it.

use serde_json::{Map, Value};

use super::{BoxAdapter, ops::Ops};
use crate::{CallContext, LinkAudience, ResolveFacts, StoredFacts, ToolError};

// === impl BoxAdapter ===

#[async_trait::async_trait]
impl ResolveFacts for BoxAdapter {
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
        let audience = match ops.requested_access()? {
            "open" => LinkAudience::Anyone,
            "company" => LinkAudience::Organization,
            "collaborators" => LinkAudience::Invited,
            other => {
                return Err(ToolError::InvalidArguments(format!(
                    "`access` must be open, company or collaborators, not {other}"
                )));
            }
        };
        Ok(StoredFacts {
            link_audience: Some(audience),
            ..StoredFacts::default()
        })
    }
}
