//! Hot reload: explicit reloads swap in valid changes, refuse broken ones with positions and a
//! counter, keep the last good policies in force, and the file watcher triggers the same path.

use std::time::{Duration, Instant};

use manifold_policy::{Action, PolicyEngine, PolicyStore, Principal, ToolDescriptor, ToolRef};

fn tool() -> ToolDescriptor {
    ToolDescriptor {
        name: "linear_list_issues".into(),
        instance: "linear".into(),
        kind: "linear".into(),
        read_only: true,
        ..ToolDescriptor::default()
    }
}

fn staff() -> Principal {
    Principal {
        user: Some("alice".into()),
        groups: vec!["staff".into()],
        ..Principal::default()
    }
}

const ALLOW: &str = "@id(\"staff\")\n@reason(\"staff may\")\npermit(principal in Group::\"staff\", action, resource);\n";
const DENY_ALL: &str =
    "@id(\"nobody\")\n@reason(\"closed\")\nforbid(principal, action, resource);\n";

fn allowed(store: &PolicyStore, t: &ToolDescriptor) -> bool {
    store
        .decide(&staff(), Action::Call, &ToolRef::from_descriptor(t), None)
        .is_allowed()
}

#[test]
fn broken_change_is_refused_and_previous_policy_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.cedar"), ALLOW).expect("write");
    let t = tool();
    let store = PolicyStore::open(dir.path(), std::slice::from_ref(&t)).expect("open");
    assert!(allowed(&store, &t));

    // Valid change: swapped in.
    std::fs::write(dir.path().join("b.cedar"), DENY_ALL).expect("write");
    store.reload().expect("valid reload");
    assert!(!allowed(&store, &t));
    assert_eq!(store.reloads(), 1);

    // Broken change: refused with file:line:column, counted, last good set still in force.
    std::fs::write(
        dir.path().join("b.cedar"),
        "@id(\"x\")\nforbid(principal, action resource);\n",
    )
    .expect("write");
    let err = store.reload().expect_err("broken must be refused");
    let d = &err.diagnostics()[0];
    assert!(
        d.file.ends_with("b.cedar") && d.line == 2 && d.column > 0,
        "{d}"
    );
    assert!(err.to_string().contains("b.cedar:2:"), "{err}");
    assert_eq!(store.rejected_reloads(), 1);
    assert!(store.last_error().is_some());
    assert!(
        !allowed(&store, &t),
        "previous (deny-all) policy must stay in force"
    );

    // A type error against the schema is refused the same way.
    std::fs::write(
        dir.path().join("b.cedar"),
        "@id(\"x\")\npermit(principal, action, resource) when { principal.shoe_size > 3 };\n",
    )
    .expect("write");
    assert!(store.reload().is_err());
    assert_eq!(store.rejected_reloads(), 2);
    assert!(!allowed(&store, &t));

    std::fs::remove_file(dir.path().join("b.cedar")).expect("rm");
    store.reload().expect("fixed");
    assert!(allowed(&store, &t));
    assert!(store.last_error().is_none());
}

#[test]
fn a_broken_initial_load_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.cedar"), "permit(").expect("write");
    assert!(PolicyStore::open(dir.path(), &[tool()]).is_err());
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

#[test]
fn watcher_reloads_valid_changes_and_refuses_broken_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.cedar"), ALLOW).expect("write");
    let t = tool();
    let store = PolicyStore::open(dir.path(), std::slice::from_ref(&t)).expect("open");
    let _watch = store.watch().expect("watch");
    std::fs::write(dir.path().join("b.cedar"), DENY_ALL).expect("write");
    assert!(
        wait_until(|| !allowed(&store, &t)),
        "watcher did not apply the change"
    );
    std::fs::write(dir.path().join("b.cedar"), "forbid(").expect("write");
    assert!(
        wait_until(|| store.rejected_reloads() >= 1),
        "broken change not counted"
    );
    assert!(!allowed(&store, &t));
}

#[test]
fn a_reload_drops_cached_list_decisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.cedar"), ALLOW).expect("write");
    let t = tool();
    let store = PolicyStore::open(dir.path(), std::slice::from_ref(&t)).expect("open");
    let r = ToolRef::from_descriptor(&t);
    let list = |s: &PolicyStore| s.decide(&staff(), Action::List, &r, None);

    // Fill the snapshot's cache through both entry points.
    let before = store.current();
    assert!(list(&store).is_allowed());
    assert_eq!(before.filter_list(&staff(), &[r]), vec![true]);

    std::fs::write(dir.path().join("b.cedar"), DENY_ALL).expect("write");
    store.reload().expect("valid reload");
    let denied = list(&store);
    assert!(
        matches!(&denied, manifold_policy::Decision::Deny { reason, .. } if reason == "closed"),
        "{denied:?}"
    );
    assert_eq!(store.current().filter_list(&staff(), &[r]), vec![false]);
    // The old snapshot keeps its own (still correct for it) answers.
    assert_eq!(before.filter_list(&staff(), &[r]), vec![true]);
}
