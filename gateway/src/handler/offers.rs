//! `resources/*`, `prompts/*` and `completion/complete` for the resources and prompts of MCP
//! servers behind the gateway: route (exposed URI or name → instance, `router/offers.rs`) →
//! policy (`list`, `read`, `get` on Cedar's `Resource` and `Prompt`) → adapter → redact → audit.
//!
//! Like a tool call, every read and get leaves one audit record, refusals included, written
//! before the answer leaves; an item the caller may not list is answered exactly as one that
//! does not exist. Completions are decided like the read or get they prepare, and not audited
//! (they return suggestions, not content).

use std::{sync::Arc, time::Instant};

use manifold_adapters::{CallContext, ClientLink, Completion, ToolError};
use manifold_policy::{Decision, ItemAction, ItemKind, ItemRef, Principal, audit::AuditEvent};
use rmcp::{
    ErrorData as McpError,
    model::{
        CompleteRequestParams, CompleteResult, GetPromptResponse, GetPromptResult,
        InputRequiredResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ReadResourceResponse, ReadResourceResult, Reference,
    },
};
use serde_json::{Map, Value, json};

use super::{
    CallScope, Gateway,
    credential::CredentialedError,
    cursor,
    input_state::{Masking, Retry, StateError, Target},
};
use crate::{
    audit::AuditUnavailable,
    router::offers::{Offered, Offers, UriError},
};

/// What a resource or prompt request resolved to: the instance that serves it and its own
/// URI or name there.
#[derive(Clone)]
pub struct Resolved {
    pub adapter: Arc<dyn manifold_adapters::Adapter>,
    pub instance: Arc<str>,
    pub kind: Arc<str>,
    /// The instance's prefix (`None` for prefix mode `never`), to expose what it answers.
    pub prefix: Option<String>,
    /// The exposed URI or name: what policies and records name it by.
    pub exposed: String,
    /// The instance's own URI or name.
    pub original: String,
}

impl Resolved {
    /// The catalog's instance at `index` serving `original` under `exposed`.
    fn of(catalog: &crate::router::Catalog, index: usize, exposed: &str, original: &str) -> Self {
        let instance = &catalog.instances()[index];
        Resolved {
            adapter: instance.adapter.clone(),
            instance: instance.name.clone(),
            kind: instance.kind.clone(),
            prefix: instance.prefix.clone(),
            exposed: exposed.to_owned(),
            original: original.to_owned(),
        }
    }

    fn item(&self, kind: ItemKind) -> ItemRef<'_> {
        ItemRef {
            kind,
            name: &self.exposed,
            instance: &self.instance,
            adapter_kind: &self.kind,
        }
    }
}

/// A refusal by a rule: its reason and the policies that made it.
#[derive(Debug)]
pub struct Denial {
    reason: String,
    policies: Vec<String>,
}

/// Why a resource or prompt request produced no answer; [`ItemError::rescue`] is the only
/// place one becomes an MCP error.
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error("no such {0}")]
    Unknown(&'static str),
    #[error(transparent)]
    BadUri(UriError),
    /// Not listable for the caller: answered as [`ItemError::Unknown`].
    #[error("hidden from the caller: {}", .0.reason)]
    Hidden(Denial, &'static str),
    #[error("denied by policy: {}", .0.reason)]
    Denied(Denial),
    #[error(transparent)]
    Tool(ToolError),
    /// The instance's upstream authenticates each user, and the caller has no credential for
    /// it (not connected, no sign-in token): the broker's answer says what to do.
    #[error(transparent)]
    NotConnected(crate::broker::BrokerError),
    #[error(transparent)]
    AuditUnavailable(#[from] AuditUnavailable),
    /// A retry's `requestState` that does not open for this caller and item.
    #[error(transparent)]
    BadState(#[from] StateError),
}

// === impl ItemError ===

impl ItemError {
    fn outcome(&self) -> &'static str {
        match self {
            ItemError::Unknown(_) | ItemError::BadUri(_) => "unknown_item",
            ItemError::Hidden(..) | ItemError::Denied(_) => "denied",
            ItemError::Tool(ToolError::Cancelled) => "cancelled",
            ItemError::Tool(ToolError::InputRequired(_)) => "input_required",
            ItemError::BadState(_) => "invalid_request_state",
            ItemError::Tool(_) => "error",
            ItemError::NotConnected(_) => "not_connected",
            ItemError::AuditUnavailable(_) => "audit_unavailable",
        }
    }

    /// The MCP error for the client. `requested` is the URI or name as the client sent it.
    pub fn rescue(self, requested: &str, redact: impl Fn(&str) -> String) -> McpError {
        let data = |key: &str| Some(json!({ key: requested }));
        match self {
            // SEP-2164: an unknown resource is -32602 with the URI in `data`.
            ItemError::Unknown("resource") | ItemError::Hidden(_, "resource") => {
                McpError::invalid_params("Resource not found", data("uri"))
            }
            ItemError::Unknown(what) | ItemError::Hidden(_, what) => {
                McpError::invalid_params(format!("Unknown {what}: {requested}"), data("name"))
            }
            ItemError::BadUri(UriError::Ambiguous(owners)) => McpError::internal_error(
                format!(
                    "The gateway cannot tell which server serves this URI: {owners} keep their own URIs; an administrator must give them prefixes."
                ),
                None,
            ),
            ItemError::BadUri(error) => McpError::invalid_params(error.to_string(), data("uri")),
            ItemError::Denied(denial) => McpError::invalid_request(
                format!("Denied by policy: {}", redact(&denial.reason)),
                None,
            ),
            ItemError::Tool(ToolError::NotFound(_)) => {
                McpError::invalid_params("Resource not found", data("uri"))
            }
            ItemError::Tool(ToolError::InvalidArguments(message)) => {
                McpError::invalid_params(redact(&message), None)
            }
            ItemError::Tool(ToolError::MissingClientCapability { capability }) => {
                super::call::missing_capability(&capability)
            }
            ItemError::BadState(error) => McpError::invalid_params(error.to_string(), None),
            ItemError::Tool(error) => McpError::internal_error(redact(&error.to_string()), None),
            ItemError::NotConnected(error) => McpError::invalid_request(error.to_string(), None),
            ItemError::AuditUnavailable(_) => McpError::internal_error(
                "The gateway cannot record this request in its audit log, so it was not served.",
                None,
            ),
        }
    }
}

/// The audit record of one read or get, written exactly once (on drop as `abandoned`).
struct ItemRecord<'g> {
    gateway: &'g Gateway,
    started: Instant,
    event: AuditEvent,
    written: bool,
}

// === impl ItemRecord ===

impl<'g> ItemRecord<'g> {
    /// `requested` is the client's text: redacted, and cut, before it is written.
    fn begin(
        gateway: &'g Gateway,
        action: ItemAction,
        requested: &str,
        principal: &Principal,
    ) -> Self {
        let shown: String = requested.chars().take(512).collect();
        Self {
            gateway,
            started: Instant::now(),
            event: AuditEvent {
                user: principal.user.clone(),
                client_id: principal.client_id.clone(),
                tool: gateway.stages.redact.redact_text(&shown),
                action: action.as_str().into(),
                decision: "deny".into(),
                ..AuditEvent::default()
            },
            written: false,
        }
    }

    fn resolved(&mut self, resolved: &Resolved) {
        self.event.tool.clone_from(&resolved.exposed);
        self.event.instance = resolved.instance.to_string();
    }

    fn allowed(&mut self, policies: Vec<String>) {
        self.event.decision = "allow".into();
        self.event.policies = policies;
    }

    fn finish<T>(
        &mut self,
        result: &Result<(T, usize), ItemError>,
    ) -> Result<(), AuditUnavailable> {
        match result {
            Ok((_, masked)) => {
                self.event.outcome = "ok".into();
                self.event.redactions = Some(*masked);
            }
            Err(error) => {
                if let ItemError::Hidden(denial, _) | ItemError::Denied(denial) = error {
                    self.event.policies.clone_from(&denial.policies);
                }
                self.event.outcome = error.outcome().into();
                self.event.reason =
                    Some(self.gateway.stages.redact.redact_text(&error.to_string()));
            }
        }
        self.write()
    }

    fn write(&mut self) -> Result<(), AuditUnavailable> {
        if std::mem::replace(&mut self.written, true) {
            return Ok(());
        }
        self.event.latency_ms = Some(self.started.elapsed().as_secs_f64() * 1000.0);
        self.gateway.stages.audit.record(&self.event)
    }
}

impl Drop for ItemRecord<'_> {
    fn drop(&mut self) {
        if !self.written {
            self.event.outcome = "abandoned".into();
            self.event.reason = Some("the request ended before it was served".into());
            let _ = self.write();
        }
    }
}

// === impl Gateway ===

impl Gateway {
    /// One page of what `pick` takes from the catalog's offers, filtered (inside the listing,
    /// so cursors stay valid for this caller) by the `list` decision on each item.
    fn visible_page<T: Clone>(
        &self,
        principal: &Principal,
        kind: ItemKind,
        pick: fn(&Offers) -> &[Offered<T>],
        cursor: Option<&str>,
    ) -> Result<(Vec<T>, Option<String>), McpError> {
        let catalog = self.catalog();
        let instances = catalog.instances();
        let engine = self.stages.policy.engine();
        let visible = pick(catalog.offers()).iter().filter(|offered| {
            let item = item_ref(kind, &offered.exposed, &instances[offered.instance]);
            engine
                .decide_item(principal, ItemAction::List, &item)
                .is_allowed()
        });
        cursor::page(
            visible.map(|offered| offered.item.clone()),
            cursor,
            self.settings.tools_page_size,
        )
    }

    /// `resources/list`: the resources the caller may list, paged.
    pub fn list_resources(
        &self,
        principal: &Principal,
        cursor: Option<&str>,
    ) -> Result<ListResourcesResult, McpError> {
        let pick: fn(&Offers) -> &[Offered<_>] = |offers| &offers.resources;
        let (items, next) = self.visible_page(principal, ItemKind::Resource, pick, cursor)?;
        let mut result = ListResourcesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    /// `resources/templates/list`: the templates the caller may list, paged.
    pub fn list_resource_templates(
        &self,
        principal: &Principal,
        cursor: Option<&str>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let pick: fn(&Offers) -> &[Offered<_>] = |offers| &offers.templates;
        let (items, next) = self.visible_page(principal, ItemKind::Resource, pick, cursor)?;
        let mut result = ListResourceTemplatesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    /// `prompts/list`: the prompts the caller may list, paged.
    pub fn list_prompts(
        &self,
        principal: &Principal,
        cursor: Option<&str>,
    ) -> Result<ListPromptsResult, McpError> {
        let pick: fn(&Offers) -> &[Offered<_>] = |offers| &offers.prompts;
        let (items, next) = self.visible_page(principal, ItemKind::Prompt, pick, cursor)?;
        let mut result = ListPromptsResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    /// The instance serving the resource at `uri`, and its own URI there.
    pub fn resolve_resource(&self, uri: &str) -> Result<Resolved, ItemError> {
        let catalog = self.catalog();
        let (index, original) = catalog
            .offers()
            .resolve_uri(uri)
            .map_err(|error| match error {
                UriError::Unknown => ItemError::Unknown("resource"),
                other => ItemError::BadUri(other),
            })?;
        Ok(Resolved::of(&catalog, index, uri, &original))
    }

    /// Whether the caller may read (or subscribe to) the resolved resource; the policies that
    /// allowed it.
    pub fn decide_read(
        &self,
        principal: &Principal,
        resolved: &Resolved,
    ) -> Result<Vec<String>, ItemError> {
        self.decide(principal, resolved, ItemKind::Resource, ItemAction::Read)
    }

    /// The `list` decision first (an item the caller may not see does not exist for them),
    /// then `action`; the policies that allowed it.
    fn decide(
        &self,
        principal: &Principal,
        resolved: &Resolved,
        kind: ItemKind,
        action: ItemAction,
    ) -> Result<Vec<String>, ItemError> {
        let engine = self.stages.policy.engine();
        let item = resolved.item(kind);
        let what = match kind {
            ItemKind::Resource => "resource",
            ItemKind::Prompt => "prompt",
        };
        if let Decision::Deny { reason, policies } =
            engine.decide_item(principal, ItemAction::List, &item)
        {
            return Err(ItemError::Hidden(Denial { reason, policies }, what));
        }
        match engine.decide_item(principal, action, &item) {
            Decision::Allow { policies } => Ok(policies),
            Decision::Deny { reason, policies } => {
                Err(ItemError::Denied(Denial { reason, policies }))
            }
        }
    }

    /// `resources/read`, audited.
    pub async fn read_resource(
        &self,
        uri: &str,
        retry: Retry,
        scope: &CallScope,
    ) -> Result<ReadResourceResponse, McpError> {
        let mut record = ItemRecord::begin(self, ItemAction::Read, uri, &scope.principal);
        let target = item_target(scope, "resource", uri);
        let mut result = self
            .try_read(uri, &retry, &target, scope, &mut record)
            .await;
        // The answer leaves only with its record in the log.
        if let Err(unwritten) = record.finish(&result) {
            result = Err(unwritten.into());
        }
        match result {
            Ok((contents, _)) => Ok(contents.into()),
            Err(ItemError::Tool(ToolError::InputRequired(asked))) => {
                let masking = self
                    .resolve_resource(uri)
                    .ok()
                    .map(|r| self.item_masking(&r));
                self.pass_on_input(*asked, &target, masking.as_ref())
                    .map(Into::into)
            }
            Err(error) => Err(error.rescue(uri, |text| self.stages.redact.redact_text(text))),
        }
    }

    /// An upstream's input requests for a client that answers between rounds, its state
    /// sealed to the caller and the item (`input_state.rs`).
    fn pass_on_input(
        &self,
        asked: InputRequiredResult,
        target: &Target<'_>,
        masking: Option<&Masking>,
    ) -> Result<InputRequiredResult, McpError> {
        let fail = |reason: &str| {
            McpError::internal_error(
                format!(
                    "the server needs the client's input, and the gateway could not carry the request on: {reason}"
                ),
                None,
            )
        };
        let masked = masking
            .and_then(|masking| masking.round(asked))
            .ok_or_else(|| fail("its questions could not be checked for redaction"))?;
        self.input_state
            .seal(masked, target)
            .map_err(|error| fail(&error.to_string()))
    }

    /// The redaction rules of a resource or prompt, for the questions its upstream asks.
    fn item_masking(&self, resolved: &Resolved) -> Masking {
        Masking {
            redact: self.stages.redact.clone(),
            instance: resolved.instance.clone(),
            kind: resolved.kind.clone(),
            name: resolved.exposed.clone(),
        }
    }

    async fn try_read(
        &self,
        uri: &str,
        retry: &Retry,
        target: &Target<'_>,
        scope: &CallScope,
        record: &mut ItemRecord<'_>,
    ) -> Result<(ReadResourceResult, usize), ItemError> {
        let resolved = self.resolve_resource(uri)?;
        record.resolved(&resolved);
        record.allowed(self.decide_read(&scope.principal, &resolved)?);
        let client = self.input_state.resumed(&scope.client, retry, target)?;
        let client = self.item_masking(&resolved).link(client);
        let resources = resolved
            .adapter
            .resources()
            .ok_or(ItemError::Unknown("resource"))?;
        let original = &resolved.original;
        let mut contents = self
            .credentialed(scope, &resolved, client, |ctx| async move {
                resources.read(original, &ctx).await
            })
            .await?;
        // Contents carry the instance's URIs: the client sees the exposed ones.
        for content in &mut contents.contents {
            rewrite_content_uri(content, resolved.prefix.as_deref());
        }
        let masked = self
            .stages
            .redact
            .apply_to_item(
                &resolved.instance,
                &resolved.kind,
                &resolved.exposed,
                &mut contents,
            )
            .ok_or_else(unwalkable)?;
        Ok((contents, masked))
    }

    /// `prompts/get`, audited.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        retry: Retry,
        scope: &CallScope,
    ) -> Result<GetPromptResponse, McpError> {
        let mut record = ItemRecord::begin(self, ItemAction::Get, name, &scope.principal);
        let target = item_target(scope, "prompt", name);
        let mut result = self
            .try_get(name, arguments, &retry, &target, scope, &mut record)
            .await;
        if let Err(unwritten) = record.finish(&result) {
            result = Err(unwritten.into());
        }
        match result {
            Ok((prompt, _)) => Ok(prompt.into()),
            Err(ItemError::Tool(ToolError::InputRequired(asked))) => {
                let masking = self
                    .resolve_prompt(name)
                    .ok()
                    .map(|r| self.item_masking(&r));
                self.pass_on_input(*asked, &target, masking.as_ref())
                    .map(Into::into)
            }
            Err(error) => Err(error.rescue(name, |text| self.stages.redact.redact_text(text))),
        }
    }

    async fn try_get(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        retry: &Retry,
        target: &Target<'_>,
        scope: &CallScope,
        record: &mut ItemRecord<'_>,
    ) -> Result<(GetPromptResult, usize), ItemError> {
        let resolved = self.resolve_prompt(name)?;
        record.resolved(&resolved);
        let policies = self.decide(
            &scope.principal,
            &resolved,
            ItemKind::Prompt,
            ItemAction::Get,
        )?;
        record.allowed(policies);
        record.event.args = arguments.clone().map(Value::Object);
        let client = self.input_state.resumed(&scope.client, retry, target)?;
        let client = self.item_masking(&resolved).link(client);
        let prompts = resolved
            .adapter
            .prompts()
            .ok_or(ItemError::Unknown("prompt"))?;
        let original = &resolved.original;
        let mut prompt = self
            .credentialed(scope, &resolved, client, |ctx| {
                let arguments = arguments.clone();
                async move { prompts.get(original, arguments, &ctx).await }
            })
            .await?;
        let masked = self
            .stages
            .redact
            .apply_to_item(
                &resolved.instance,
                &resolved.kind,
                &resolved.exposed,
                &mut prompt,
            )
            .ok_or_else(unwalkable)?;
        Ok((prompt, masked))
    }

    fn resolve_prompt(&self, name: &str) -> Result<Resolved, ItemError> {
        let catalog = self.catalog();
        let offered = catalog
            .offers()
            .prompt(name)
            .ok_or(ItemError::Unknown("prompt"))?;
        Ok(Resolved::of(
            &catalog,
            offered.instance,
            &offered.exposed,
            &offered.original,
        ))
    }

    /// `completion/complete`, routed to the owner of the prompt or resource template and
    /// decided like the get or read it prepares.
    pub async fn complete(
        &self,
        request: CompleteRequestParams,
        scope: &CallScope,
    ) -> Result<CompleteResult, McpError> {
        let completion = Completion::of(&request);
        let requested = match &request.r#ref {
            Reference::Prompt(prompt) => prompt.name.clone(),
            Reference::Resource(template) => template.uri.clone(),
            _ => {
                return Err(McpError::invalid_params(
                    "completion/complete takes a ref/prompt or a ref/resource",
                    None,
                ));
            }
        };
        let answer = async {
            match &request.r#ref {
                Reference::Prompt(prompt) => {
                    let resolved = self.resolve_prompt(&prompt.name)?;
                    self.decide(
                        &scope.principal,
                        &resolved,
                        ItemKind::Prompt,
                        ItemAction::Get,
                    )?;
                    let prompts = resolved
                        .adapter
                        .prompts()
                        .ok_or(ItemError::Unknown("prompt"))?;
                    let original = &resolved.original;
                    self.credentialed(scope, &resolved, ClientLink::default(), |ctx| {
                        let completion = completion.clone();
                        async move { prompts.complete(original, completion, &ctx).await }
                    })
                    .await
                }
                Reference::Resource(template) => {
                    let resolved = self.resolve_template(&template.uri)?;
                    self.decide(
                        &scope.principal,
                        &resolved,
                        ItemKind::Resource,
                        ItemAction::Read,
                    )?;
                    let resources = resolved
                        .adapter
                        .resources()
                        .ok_or(ItemError::Unknown("resource"))?;
                    let original = &resolved.original;
                    self.credentialed(scope, &resolved, ClientLink::default(), |ctx| {
                        let completion = completion.clone();
                        async move { resources.complete(original, completion, &ctx).await }
                    })
                    .await
                }
                _ => Err(ItemError::Unknown("reference")),
            }
        };
        match answer.await {
            Ok(completion) => Ok(CompleteResult::new(completion)),
            Err(error) => {
                Err(error.rescue(&requested, |text| self.stages.redact.redact_text(text)))
            }
        }
    }

    fn resolve_template(&self, uri: &str) -> Result<Resolved, ItemError> {
        let catalog = self.catalog();
        let offered = catalog
            .offers()
            .template(uri)
            .ok_or(ItemError::Unknown("resource"))?;
        Ok(Resolved::of(
            &catalog,
            offered.instance,
            &offered.exposed,
            &offered.original,
        ))
    }

    /// What an upstream request on the caller's behalf carries: the trace context, the
    /// cancellation of the request, and the client as far as the upstream may ask it anything
    /// (`client`: with the answers of a retry; the default for requests that ask nothing).
    /// Never the client's token.
    pub(super) fn item_context(&self, scope: &CallScope, client: ClientLink) -> CallContext {
        CallContext {
            cancel: scope.cancel.clone(),
            traceparent: scope.traceparent.clone(),
            client,
            ..CallContext::default()
        }
    }

    /// Runs `request` for `resolved` under the call timeout and the request's cancellation,
    /// with the context [`Self::item_context`] gives it — and with the caller's own credential
    /// when `resolved`'s upstream authenticates each user (an `mcp` instance with per-user
    /// auth): without one the item gets the broker's answer, with the link to connect, and a
    /// token the upstream refuses is renewed once and the request made once more, as for tool
    /// calls (`credential.rs`).
    pub(super) async fn credentialed<T, F, Fut>(
        &self,
        scope: &CallScope,
        resolved: &Resolved,
        client: ClientLink,
        request: F,
    ) -> Result<T, ItemError>
    where
        F: Fn(CallContext) -> Fut,
        Fut: Future<Output = Result<T, ToolError>>,
    {
        let ctx = self.item_context(scope, client);
        if !resolved.adapter.needs_credential() {
            return self.bounded(request(ctx), scope).await;
        }
        let attempt = |credential| {
            let ctx = CallContext {
                credential,
                user: scope.principal.user.clone(),
                ..ctx.clone()
            };
            self.bounded_tool(request(ctx), scope)
        };
        self.with_instance_credential(&resolved.instance, &[], &scope.principal, attempt)
            .await
            .map_err(|error| match error {
                CredentialedError::NotConnected(error) => ItemError::NotConnected(error),
                CredentialedError::Tool(error) => ItemError::Tool(error),
            })
    }

    /// Runs an upstream request under the call timeout and the request's cancellation.
    pub(super) async fn bounded<T>(
        &self,
        request: impl Future<Output = Result<T, ToolError>>,
        scope: &CallScope,
    ) -> Result<T, ItemError> {
        self.bounded_tool(request, scope)
            .await
            .map_err(ItemError::Tool)
    }

    /// [`Self::bounded`], failing as the adapter's own errors do.
    async fn bounded_tool<T>(
        &self,
        request: impl Future<Output = Result<T, ToolError>>,
        scope: &CallScope,
    ) -> Result<T, ToolError> {
        tokio::select! {
            answer = tokio::time::timeout(self.settings.call_timeout, request) => {
                answer.unwrap_or(Err(ToolError::Timeout))
            }
            () = scope.cancel.cancelled() => Err(ToolError::Cancelled),
        }
    }
}

/// What an item request's sealed `requestState` is bound to: the caller and the URI or name the
/// client asked for.
fn item_target<'a>(scope: &'a CallScope, kind: &'static str, name: &'a str) -> Target<'a> {
    Target {
        principal: &scope.principal,
        kind,
        name,
    }
}

/// An answer redaction could not walk: withheld, never passed on unmasked.
fn unwalkable() -> ItemError {
    ItemError::Tool(ToolError::BadResponse(
        "the server's answer could not be checked for redaction, so it was withheld".into(),
    ))
}

/// Names `offered` as the policy sees it.
fn item_ref<'a>(
    kind: ItemKind,
    exposed: &'a str,
    instance: &'a crate::router::CatalogInstance,
) -> ItemRef<'a> {
    ItemRef {
        kind,
        name: exposed,
        instance: &instance.name,
        adapter_kind: &instance.kind,
    }
}

/// A read's content under its exposed URI.
fn rewrite_content_uri(content: &mut rmcp::model::ResourceContents, prefix: Option<&str>) {
    let uri = match content {
        rmcp::model::ResourceContents::TextResourceContents { uri, .. }
        | rmcp::model::ResourceContents::BlobResourceContents { uri, .. } => uri,
        // A kind of content added later: it keeps the instance's URI (nothing leaks).
        _ => return,
    };
    *uri = crate::router::offers::exposed_uri(prefix, uri);
}
