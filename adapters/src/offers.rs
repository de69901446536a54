//! What an instance offers besides tools — resources and prompts, an upstream MCP server's —
//! as capabilities of the adapter contract ([`crate::Adapter::resources`],
//! [`crate::Adapter::prompts`]). Their lists are live like tools: the gateway rebuilds its
//! catalog when one changes, namespaces what is in it, decides on each item with the policy,
//! and calls these with the instance's own URIs and names.

use std::sync::Arc;

use rmcp::model::{
    ArgumentInfo, CompleteRequestParams, CompletionInfo, GetPromptResult, Prompt,
    ReadResourceResult, Resource, ResourceTemplate,
};
use serde_json::{Map, Value};
use tokio::sync::{broadcast, watch};

use crate::{CallContext, ToolError};

/// A list that changes when the upstream says so.
pub type LiveList<T> = watch::Receiver<Arc<[T]>>;

/// Resources and resource templates (`resources/*`).
#[async_trait::async_trait]
pub trait Resources: Send + Sync {
    /// The resources offered now, with the instance's own URIs.
    fn resources(&self) -> LiveList<Resource>;

    /// The resource templates offered now, with the instance's own URI templates.
    fn templates(&self) -> LiveList<ResourceTemplate>;

    /// Reads one resource by its instance-local URI.
    async fn read(&self, uri: &str, ctx: &CallContext) -> Result<ReadResourceResult, ToolError>;

    /// Starts hearing of changes to `uri` (on [`Resources::updates`]). Counted: as many
    /// [`Resources::unsubscribe`] calls end it.
    async fn subscribe(&self, uri: &str, ctx: &CallContext) -> Result<(), ToolError>;

    async fn unsubscribe(&self, uri: &str, ctx: &CallContext) -> Result<(), ToolError>;

    /// The changes `user` may hear of: instance-local URIs the upstream announced, each with
    /// whom it is for ([`ResourceUpdate::user`]). An instance whose upstream authenticates each
    /// user gives each user a stream of their own (one user's flood never crowds out another's)
    /// and nothing to a caller without a user.
    fn updates(&self, user: Option<&str>) -> broadcast::Receiver<ResourceUpdate>;

    /// Completes an argument of the resource template `template` (instance-local).
    async fn complete(
        &self,
        template: &str,
        request: Completion,
        ctx: &CallContext,
    ) -> Result<CompletionInfo, ToolError>;
}

/// Prompts (`prompts/*`).
#[async_trait::async_trait]
pub trait Prompts: Send + Sync {
    /// The prompts offered now, with the instance's own names.
    fn prompts(&self) -> LiveList<Prompt>;

    /// Gets one prompt by its instance-local name.
    async fn get(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        ctx: &CallContext,
    ) -> Result<GetPromptResult, ToolError>;

    /// Completes an argument of the prompt `name` (instance-local).
    async fn complete(
        &self,
        name: &str,
        request: Completion,
        ctx: &CallContext,
    ) -> Result<CompletionInfo, ToolError>;
}

/// One upstream `notifications/resources/updated`, with whom it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUpdate {
    /// The instance-local URI that changed.
    pub uri: String,
    /// `None`: every subscriber of the URI (the instance's own connection, shared by all);
    /// `Some(user)`: that user's subscribers only (it came on that user's own connection).
    pub user: Option<String>,
}

impl ResourceUpdate {
    /// Whether a session of `user` may hear it: an update for one user reaches no one else,
    /// and no session without a user.
    pub fn reaches(&self, user: Option<&str>) -> bool {
        match &self.user {
            None => true,
            Some(for_user) => user == Some(for_user.as_str()),
        }
    }
}

/// What `completion/complete` asks besides the reference it names.
#[derive(Debug, Clone)]
pub struct Completion {
    pub argument: ArgumentInfo,
    /// The values of the other arguments already chosen, if the client sent them.
    pub context: Option<rmcp::model::CompletionContext>,
}

impl Completion {
    /// The request's argument and context.
    pub fn of(request: &CompleteRequestParams) -> Self {
        Completion {
            argument: request.argument.clone(),
            context: request.context.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_for_one_user_reaches_that_user_alone_and_one_for_all_reaches_everyone() {
        let update = |user: Option<&str>| ResourceUpdate {
            uri: "crm://me".into(),
            user: user.map(str::to_owned),
        };
        assert!(update(Some("alice")).reaches(Some("alice")));
        assert!(!update(Some("alice")).reaches(Some("bob")));
        assert!(!update(Some("alice")).reaches(None));
        assert!(!update(Some("")).reaches(None));
        assert!(update(None).reaches(Some("bob")));
        assert!(update(None).reaches(None));
    }
}
