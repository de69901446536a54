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
        let mut live: Vec<_> = instances
            .iter()
            .filter_map(|instance| match instance.adapter.tools() {
                Tools::Live(receiver) => Some(receiver),
                Tools::Static(_) => None,
            })
            .collect();
        // A list published before this task subscribed is picked up by the first rebuild.
        let mut pending = !live.is_empty();
        while !live.is_empty() || pending {
            if !pending {
                let changed = {
                    let changes = live.iter_mut().map(|receiver| Box::pin(receiver.changed()));
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
        current.len() == catalog.len()
            && current
                .routes()
                .iter()
                .zip(catalog.routes())
                .all(|(a, b)| a.tool == b.tool && a.instance == b.instance)
    };
    if unchanged {
        return;
    }
    match accept(&catalog) {
        Ok(()) => {
            tracing::info!(tools = catalog.len(), "tool catalog changed");
            sender.send_replace(Arc::new(catalog));
        }
        Err(reason) => {
            tracing::error!(%reason, "tool catalog change refused; the catalog in force stays");
        }
    }
}
