//! The places a Drive call acts within, for policies on folders (`context.containers`): the item
//! the arguments name, resolved by the very code the call resolves it with (`ops/resolve.rs`,
//! which also says which argument names it), then its parents walked up to the top of its drive
//! (My Drive's root, or a shared drive, whose root folder has the drive's id). The ids are
//! Drive's own (`root` becomes the real root id), so a policy's folder list means what it says
//! however the arguments spelt the item: id, link, or path in any spelling the walk accepts.
//!
//! A parent that cannot be read, an item with several parents, a cycle or a chain deeper than
//! Drive allows is an error, and so a denial. A file shared with the user directly has no parent
//! they can see (Drive leaves it out): it lies in no folder of theirs, which an allow-list of
//! folders reads as outside. A search without a folder has no container: the whole Drive.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{
    DriveAdapter,
    ops::resolve::{DESTINATION_ARGUMENT, destination, target, target_argument},
    render,
};
use crate::{CallContext, ResolveFacts, StoredFacts, ToolError};

/// Drive nests folders at most 100 deep; a longer chain is not Drive's answer.
const MAX_DEPTH: usize = 100;
/// What the walk reads of each item.
const FIELDS: &str = "id,mimeType,parents,driveId";

/// One string field of a Drive answer, or the bad answer it is without it.
fn text<'a>(item: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    item.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ToolError::BadResponse(format!("Drive answered an item without `{key}`")))
}

// === impl DriveAdapter ===

#[async_trait::async_trait]
impl ResolveFacts for DriveAdapter {
    async fn resolve(
        &self,
        tool: &str,
        arguments: &Map<String, Value>,
        ctx: &CallContext,
    ) -> Result<StoredFacts, ToolError> {
        let mut containers = Vec::new();
        // The call acts on the ids resolved here (pinned), so a path renamed or moved after this
        // read cannot make it act on an item outside the folders the policy saw.
        let mut pinned = Map::new();
        if let Some(reference) = target(tool, arguments)? {
            let id = self.containers(reference, &mut containers, ctx).await?;
            if let Some(argument) = target_argument(tool) {
                pinned.insert(argument.to_owned(), Value::String(id));
            }
        }
        // A move acts in both places: where the item is and where it goes.
        if tool == "move_file"
            && let Some(folder) = destination(arguments)
        {
            let id = self.containers(folder, &mut containers, ctx).await?;
            pinned.insert(DESTINATION_ARGUMENT.to_owned(), Value::String(id));
        }
        Ok(StoredFacts {
            containers,
            pinned,
            ..StoredFacts::default()
        })
    }
}

impl DriveAdapter {
    /// Adds every folder `reference` lies in to `out`, and the item itself when it is a folder;
    /// returns the item's id.
    async fn containers(
        &self,
        reference: &str,
        out: &mut Vec<String>,
        ctx: &CallContext,
    ) -> Result<String, ToolError> {
        let resolved = self.resolve(reference, ctx).await?;
        let resolved_id = resolved.id.clone();
        let mut item = match resolved.metadata {
            Some(metadata) => metadata,
            None => self.drive.get(&resolved.id, FIELDS, ctx).await?,
        };
        let mut seen = HashSet::new();
        loop {
            let id = text(&item, "id")?.to_owned();
            if !seen.insert(id.clone()) || seen.len() > MAX_DEPTH {
                return Err(ToolError::BadResponse(format!(
                    "the folders above `{reference}` loop or nest deeper than Drive allows"
                )));
            }
            if seen.len() > 1
                || item.get("mimeType").and_then(Value::as_str) == Some(render::FOLDER)
            {
                out.push(id);
            }
            let parents: Vec<&str> = match item.get("parents") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                Some(_) => {
                    return Err(ToolError::BadResponse(
                        "Drive answered `parents` that are not a list of ids".into(),
                    ));
                }
            };
            let parent = match parents.as_slice() {
                [] => return Ok(resolved_id),
                [one] => (*one).to_owned(),
                _ => {
                    return Err(ToolError::BadResponse(format!(
                        "`{reference}` lies in several folders; Drive items have one"
                    )));
                }
            };
            // A shared drive's root folder has the drive's id and no parent of its own.
            if item.get("driveId").and_then(Value::as_str) == Some(parent.as_str()) {
                out.push(parent);
                return Ok(resolved_id);
            }
            item = self.drive.get(&parent, FIELDS, ctx).await?;
        }
    }
}
