//! Outlook mail through Microsoft Graph (`/me/messages`, `/me/mailFolders`, `/me/sendMail` …).

mod facts;
mod ops;
mod tools;

pub(crate) use facts::resolve as resolve_facts;

pub(crate) use ops::{extracted_window, window};

use serde_json::{Map, Value};

use super::client::GraphClient;
use crate::{CallContext, ToolError, ToolOutput, ToolSpec};

pub(crate) fn tools() -> Vec<ToolSpec> {
    tools::all()
}

pub(crate) async fn call(
    graph: &GraphClient,
    tool: &str,
    args: &Map<String, Value>,
    ctx: &CallContext,
) -> Result<ToolOutput, ToolError> {
    match tool {
        "search_messages" | "list_messages" => ops::list(graph, tool, args, ctx).await,
        "get_message" => ops::get(graph, args, ctx).await,
        "read_attachment" => ops::attachment(graph, args, ctx).await,
        "list_folders" => ops::folders(graph, args, ctx).await,
        "send_message" => ops::send(graph, args, ctx).await,
        "reply_message" | "forward_message" => ops::respond(graph, tool, args, ctx).await,
        "create_draft" => ops::draft(graph, args, ctx).await,
        "send_draft" => ops::send_draft(graph, args, ctx).await,
        "move_message" => ops::move_to(graph, args, ctx).await,
        other => Err(ToolError::UnknownTool(other.to_owned())),
    }
}
