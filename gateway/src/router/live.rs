//! The live catalog: when an instance's tools change (an upstream MCP server connected, or
//! said its list changed), a whole new catalog is built from the same instances and swapped in
//! on the `watch` channel every reader borrows from, so a request sees one catalog from start
//! to end. The swap is refused, and the catalog in force kept, when the policy cannot take the
//! new tools (validate, then swap).

use std::{sync::Arc, time::Duration};

use futures::future::select_all;
use manifold_adapters::Tools;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Catalog;

/// Changes arriving within this window make one rebuild: an upstream that reconnects publishes
/// its list once, but several upstreams may start together.
const SETTLE: Duration = Duration::from_millis(50);

/// Decides whether a new catalog may go into force (the policy stage validates its policies
/// against the new tools); `Err` keeps the catalog in force and says why.
pub type Accept = Box<dyn Fn(&Catalog) -> Result<(), String> + Send + Sync>;

/// Keeps the catalog current while any instance's tools are live.
pub fn spawn(
    sender: watch::Sender<Arc<Catalog>>,
    accept: Accept,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let instances = sender.borrow().instances().clone();
        let mut live: Vec<LiveList> = instances
            .iter()
            .flat_map(|instance| {
                let adapter = &instance.adapter;
                let tools = match adapter.tools() {
                    Tools::Live(receiver) => Some(LiveList::Tools(receiver)),
                    Tools::Static(_) => None,
                };
                let resources = adapter.resources().map(|offered| {
                    [
                        LiveList::Resources(offered.resources()),
                        LiveList::Templates(offered.templates()),
                    ]
                });
                let prompts = adapter
                    .prompts()
                    .map(|offered| LiveList::Prompts(offered.prompts()));
                tools
                    .into_iter()
                    .chain(resources.into_iter().flatten())
                    .chain(prompts)
            })
            .collect();
        // A list published before this task subscribed is picked up by the first rebuild.
        let mut pending = !live.is_empty();
        while !live.is_empty() || pending {
            if !pending {
                let changed = {
                    let changes = live.iter_mut().map(LiveList::changed);
                    tokio::select! {
                        (changed, index, _) = select_all(changes) => changed.err().map(|_| index),
                        () = shutdown.cancelled() => return,
                    }
                };
                if let Some(gone) = changed {
                    // The instance is gone; its last list stays.
                    live.swap_remove(gone);
                    continue;
                }
            }
            pending = false;
            tokio::select! {
                () = tokio::time::sleep(SETTLE) => {}
                () = shutdown.cancelled() => return,
            }
            for receiver in &mut live {
                receiver.mark_unchanged();
            }
            rebuild(&sender, &accept, instances.clone());
        }
    })
}

/// One live list of an instance: any change rebuilds the catalog.
enum LiveList {
    Tools(watch::Receiver<Arc<[manifold_adapters::ToolSpec]>>),
    Resources(manifold_adapters::LiveList<rmcp::model::Resource>),
    Templates(manifold_adapters::LiveList<rmcp::model::ResourceTemplate>),
    Prompts(manifold_adapters::LiveList<rmcp::model::Prompt>),
}

impl LiveList {
    fn changed(
        &mut self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), watch::error::RecvError>> + Send + '_>>
    {
        match self {
            LiveList::Tools(receiver) => Box::pin(receiver.changed()),
            LiveList::Resources(receiver) => Box::pin(receiver.changed()),
            LiveList::Templates(receiver) => Box::pin(receiver.changed()),
            LiveList::Prompts(receiver) => Box::pin(receiver.changed()),
        }
    }

    fn mark_unchanged(&mut self) {
        match self {
            LiveList::Tools(receiver) => receiver.mark_unchanged(),
            LiveList::Resources(receiver) => receiver.mark_unchanged(),
            LiveList::Templates(receiver) => receiver.mark_unchanged(),
            LiveList::Prompts(receiver) => receiver.mark_unchanged(),
        }
    }
}

/// Builds the catalog anew and swaps it in if the policy accepts it.
fn rebuild(
    sender: &watch::Sender<Arc<Catalog>>,
    accept: &Accept,
    instances: Arc<[super::CatalogInstance]>,
) {
    let (catalog, refused) = Catalog::assemble(instances);
    for (error, _) in &refused {
        tracing::warn!(%error, "tool left out of the catalog");
    }
    let unchanged = {
        let current = sender.borrow();
        !current.tools_differ(&catalog)
            && current.offers().changed_from(catalog.offers()) == (false, false)
    };
    if unchanged {
        return;
    }
    match accept(&catalog) {
        Ok(()) => {
            tracing::info!(
                tools = catalog.len(),
                resources = catalog.offers().resources.len(),
                prompts = catalog.offers().prompts.len(),
                "tool catalog changed"
            );
            sender.send_replace(Arc::new(catalog));
        }
        Err(reason) => {
            tracing::error!(%reason, "tool catalog change refused; the catalog in force stays");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use manifold_adapters::{Adapter, CallContext, ToolError, ToolOutput, ToolSpec};
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::router::{
        CatalogInstance,
        catalog::tests::{instance, tool},
    };

    /// An adapter whose tools arrive on a channel, as an upstream's do.
    struct Upstream(watch::Receiver<Arc<[ToolSpec]>>);

    #[async_trait::async_trait]
    impl Adapter for Upstream {
        fn tools(&self) -> Tools {
            Tools::Live(self.0.clone())
        }
        async fn call(
            &self,
            tool: &str,
            _arguments: Map<String, Value>,
            _ctx: &CallContext,
        ) -> Result<ToolOutput, ToolError> {
            Err(ToolError::UnknownTool(tool.to_owned()))
        }
    }

    fn spec(name: &str) -> ToolSpec {
        tool(name, json!({"type": "object"}))
    }

    fn names(catalog: &Catalog) -> Vec<String> {
        catalog.routes().iter().map(|r| r.exposed.clone()).collect()
    }

    #[tokio::test]
    async fn a_live_change_is_swapped_in_whole_only_when_the_policy_accepts_it() {
        let (publish, tools) = watch::channel(Arc::<[ToolSpec]>::from(Vec::new()));
        let native = instance(vec![spec("send")]);
        let upstream = CatalogInstance {
            name: "up".into(),
            prefix: Some("up".into()),
            adapter: Arc::new(Upstream(tools)),
            ..native.clone()
        };
        let catalog = Catalog::build(vec![native, upstream]).unwrap();
        assert_eq!(names(&catalog), ["mail_send"]);
        let (sender, mut catalogs) = watch::channel(Arc::new(catalog));
        // The policy refuses any catalog with a tool named `*_refused`.
        let offered = Arc::new(Mutex::new(Vec::new()));
        let seen = offered.clone();
        let accept: Accept = Box::new(move |catalog| {
            let names = names(catalog);
            seen.lock().unwrap().push(names.clone());
            if names.iter().any(|n| n.ends_with("_refused")) {
                Err("the policies do not validate".into())
            } else {
                Ok(())
            }
        });
        let stop = CancellationToken::new();
        let task = spawn(sender, accept, stop.clone());

        publish.send_replace(vec![spec("search"), spec("send")].into());
        catalogs.changed().await.unwrap();
        // The upstream's `send` would be `up_send`: no clash; a native name stays native.
        assert_eq!(
            names(&catalogs.borrow_and_update()),
            ["mail_send", "up_search", "up_send"]
        );

        publish.send_replace(vec![spec("refused")].into());
        tokio::time::sleep(SETTLE * 4).await;
        assert!(
            !catalogs.has_changed().unwrap(),
            "a refused catalog went into force"
        );
        assert_eq!(
            names(&catalogs.borrow()),
            ["mail_send", "up_search", "up_send"]
        );
        assert!(
            offered
                .lock()
                .unwrap()
                .iter()
                .any(|n| n.contains(&"up_refused".to_owned()))
        );

        publish.send_replace(vec![spec("search")].into());
        catalogs.changed().await.unwrap();
        assert_eq!(
            names(&catalogs.borrow_and_update()),
            ["mail_send", "up_search"]
        );

        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn an_upstream_cannot_take_a_native_tools_name() {
        let (publish, tools) = watch::channel(Arc::<[ToolSpec]>::from(Vec::new()));
        let native = instance(vec![spec("send")]);
        // Same prefix as the native instance: its `send` would be `mail_send` too.
        let upstream = CatalogInstance {
            name: "up".into(),
            adapter: Arc::new(Upstream(tools)),
            ..native.clone()
        };
        publish.send_replace(vec![spec("send"), spec("other")].into());
        let (catalog, refused) = Catalog::assemble(vec![upstream, native].into());
        let send = catalog.get("mail_send").unwrap();
        assert_eq!(&*send.instance, "mail", "the native tool keeps its name");
        assert!(
            catalog.get("mail_other").is_some(),
            "the rest of the upstream stays"
        );
        assert_eq!(refused.len(), 1);
        assert!(refused[0].1, "refused as a live tool, not a config error");
    }
}
