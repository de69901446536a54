//! Hot-reloaded policies. A [`PolicyStore`] holds the engine in force behind an `ArcSwap`, so a
//! decision never waits for a reload and never sees half a policy set; a reload builds and
//! validates a whole new engine first and swaps only on success. A refused change is counted and
//! its diagnostics kept, and the last good policies stay in force.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use serde_json::Value;

use crate::engine::Summary;
use crate::schema::{PolicySchema, SchemaError, ToolDescriptor};
use crate::{Action, CedarEngine, Decision, Diagnostic, PolicyEngine, Principal, ToolRef};

/// Editors write a file in several steps (truncate, write, rename); wait this long for quiet.
const DEBOUNCE: Duration = Duration::from_millis(150);

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("policy change refused:\n{}", join(.0))]
    Invalid(Vec<Diagnostic>),
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

impl ReloadError {
    /// The positioned problems, when the policies themselves were at fault.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ReloadError::Invalid(d) => d,
            ReloadError::Schema(_) => &[],
        }
    }
}

fn join(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The first load failed: there is no last good policy set to fall back to.
    #[error("initial policy load failed: {0}")]
    Initial(#[from] ReloadError),
    #[error("cannot watch {}: {source}", dir.display())]
    Watch { dir: PathBuf, source: notify::Error },
}

/// The policies in force for one directory, reloadable.
pub struct PolicyStore {
    dir: PathBuf,
    schema: ArcSwap<PolicySchema>,
    current: ArcSwap<CedarEngine>,
    reloads: AtomicU64,
    rejected: AtomicU64,
    last_error: Mutex<Option<Vec<Diagnostic>>>,
    /// Serialises reloads so two watchers' events cannot swap in an older build last.
    reload_lock: Mutex<()>,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("dir", &self.dir)
            .field("rejected", &self.rejected_reloads())
            .finish_non_exhaustive()
    }
}

impl PolicyStore {
    /// Loads `dir` against the schema generated from `tools`. Fails if the first load fails: a
    /// gateway must not start without its policies (default deny would lock everyone out
    /// silently, allow-all would be worse).
    pub fn open(
        dir: impl Into<PathBuf>,
        tools: &[ToolDescriptor],
    ) -> Result<Arc<Self>, StoreError> {
        let dir = dir.into();
        let schema = PolicySchema::from_tools(tools).map_err(ReloadError::from)?;
        let engine = CedarEngine::load_dir(&dir, &schema).map_err(ReloadError::Invalid)?;
        Ok(Arc::new(PolicyStore {
            dir,
            schema: ArcSwap::from_pointee(schema),
            current: ArcSwap::from_pointee(engine),
            reloads: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            last_error: Mutex::new(None),
            reload_lock: Mutex::new(()),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The engine in force (a snapshot: later reloads do not change it).
    pub fn current(&self) -> Arc<CedarEngine> {
        self.current.load_full()
    }

    /// Re-reads the directory; swaps only if everything parses and validates.
    pub fn reload(&self) -> Result<Summary, ReloadError> {
        let schema = self.schema.load_full();
        self.rebuild(&schema, None)
    }

    /// The tool catalog changed (gateway config reload): regenerate the schema and revalidate.
    /// Refused like a bad policy if the policies do not validate against the new tools.
    pub fn set_tools(&self, tools: &[ToolDescriptor]) -> Result<Summary, ReloadError> {
        let schema = match PolicySchema::from_tools(tools) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(e.into());
            }
        };
        self.rebuild(&schema, Some(Arc::clone(&schema)))
    }

    fn rebuild(
        &self,
        schema: &PolicySchema,
        new_schema: Option<Arc<PolicySchema>>,
    ) -> Result<Summary, ReloadError> {
        let _guard = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        match CedarEngine::load_dir(&self.dir, schema) {
            Ok(engine) => {
                let summary = engine.summary().clone();
                if let Some(s) = new_schema {
                    self.schema.store(s);
                }
                self.current.store(Arc::new(engine));
                self.reloads.fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::info!(policies = summary.policies, dir = %self.dir.display(), "policies reloaded");
                Ok(summary)
            }
            Err(diags) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                for d in &diags {
                    tracing::warn!(diagnostic = %d, "policy change refused; previous policies stay in force");
                }
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(diags.clone());
                Err(ReloadError::Invalid(diags))
            }
        }
    }

    /// Successful reloads since open.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Refused reloads since open (a metric: `manifold_policy_reload_rejected_total`).
    pub fn rejected_reloads(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The diagnostics of the last refused reload, cleared by the next good one.
    pub fn last_error(&self) -> Option<Vec<Diagnostic>> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Explains a decision against the policies in force.
    pub fn explain(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        args: Option<&Value>,
    ) -> crate::Explanation {
        self.current.load().explain(principal, action, tool, args)
    }

    /// Watches the directory and reloads on change (debounced) on a background thread. Dropping
    /// the handle stops watching; the thread holds only a weak reference to the store.
    pub fn watch(self: &Arc<Self>) -> Result<WatchHandle, StoreError> {
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if ev.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        })
        .map_err(|source| StoreError::Watch {
            dir: self.dir.clone(),
            source,
        })?;
        watcher
            .watch(&self.dir, RecursiveMode::NonRecursive)
            .map_err(|source| StoreError::Watch {
                dir: self.dir.clone(),
                source,
            })?;
        let store: Weak<PolicyStore> = Arc::downgrade(self);
        let thread = std::thread::Builder::new()
            .name("policy-watch".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    while rx.recv_timeout(DEBOUNCE).is_ok() {}
                    let Some(store) = store.upgrade() else { break };
                    // Errors are counted and logged inside; nothing else to do here.
                    let _ = store.reload();
                }
            })
            .ok();
        Ok(WatchHandle {
            _watcher: watcher,
            _thread: thread,
        })
    }
}

/// Keeps a directory watch alive.
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
    _thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchHandle")
    }
}

impl PolicyEngine for PolicyStore {
    fn decide(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        arguments: Option<&Value>,
    ) -> Decision {
        self.current
            .load()
            .decide(principal, action, tool, arguments)
    }

    fn decide_with_facts(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolRef<'_>,
        arguments: Option<&Value>,
        facts: &crate::Facts,
    ) -> Decision {
        self.current
            .load()
            .decide_with_facts(principal, action, tool, arguments, facts)
    }

    fn decide_item(
        &self,
        principal: &Principal,
        action: crate::ItemAction,
        item: &crate::ItemRef<'_>,
    ) -> Decision {
        self.current.load().decide_item(principal, action, item)
    }
}
