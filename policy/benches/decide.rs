//! Decision cost with 1,000 policies in force over a 500-tool catalog: a single `call` decision
//! and `tools/list` filtering of all 500 tools. Also prints the p99 of single decisions measured
//! one by one (criterion reports means), and list filtering for principals seen for the first
//! time (nothing cached for them yet).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use manifold_policy::{
    Action, CedarEngine, PolicyEngine, PolicySchema, Principal, ToolDescriptor, ToolRef,
};
use serde_json::json;

const TOOLS: usize = 500;
const POLICIES: usize = 1000;

fn catalog() -> Vec<ToolDescriptor> {
    (0..TOOLS)
        .map(|i| ToolDescriptor {
            name: format!("tool{i}"),
            instance: format!("adapter{}", i % 20),
            kind: if i % 20 == 0 { "outlook".into() } else { "linear".into() },
            read_only: i % 3 == 0,
            destructive: i % 17 == 0,
            tags: vec!["bench".into()],
            input_schema: json!({"type": "object", "properties": {
                "team_id": {"type": "string"}, "to": {"type": "array", "items": {"type": "string"}}}}),
        })
        .collect()
}

fn policies() -> String {
    let mut s = String::from(
        r#"@id("staff-list") @reason("staff see all")
permit (principal in Group::"staff", action == Action::"list", resource);
@id("no-destructive") @reason("admins only")
forbid (principal, action == Action::"call", resource) when { resource.destructive } unless { principal in Group::"admins" };
@id("mail-internal") @reason("internal only")
forbid (principal, action == Action::"call", resource) when { resource.kind == "outlook" && !(["example.com"].containsAll(context.recipient_domains)) };
"#,
    );
    for i in 0..POLICIES - 3 {
        s.push_str(&format!(
            "@id(\"p{i}\") @reason(\"team rule {i}\")\npermit (principal in Group::\"g{}\", action == Action::\"call\", resource == Tool::\"tool{}\") when {{ context.args has team_id && context.args.team_id == \"T{}\" }};\n",
            i % 50,
            i % TOOLS,
            i % 7
        ));
    }
    s
}

fn engine(tools: &[ToolDescriptor]) -> CedarEngine {
    let schema = PolicySchema::from_tools(tools).expect("schema");
    match CedarEngine::from_sources(&[(PathBuf::from("bench.cedar"), policies())], &schema) {
        Ok(e) => e,
        Err(d) => panic!("{d:#?}"),
    }
}

fn principal() -> Principal {
    Principal {
        user: Some("alice".into()),
        email: Some("alice@example.com".into()),
        groups: vec!["staff".into(), "g7".into(), "g13".into()],
        client_id: Some("cli".into()),
    }
}

fn bench(c: &mut Criterion) {
    let tools = catalog();
    let engine = engine(&tools);
    assert_eq!(engine.summary().policies, POLICIES);
    let refs: Vec<ToolRef<'_>> = tools.iter().map(ToolRef::from_descriptor).collect();
    let p = principal();
    let args = json!({"team_id": "T0", "to": ["bob@example.com"], "title": "x"});
    c.bench_function("decide_call_1000_policies", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % TOOLS;
            black_box(engine.decide(&p, Action::Call, &refs[i], Some(&args)))
        })
    });
    c.bench_function("filter_list_500_tools_1000_policies", |b| {
        b.iter(|| black_box(engine.filter_list(&p, &refs)))
    });
}

/// p99 of single decisions, after a warm-up pass that fills the scope cache.
fn p99() {
    let tools = catalog();
    let engine = engine(&tools);
    let refs: Vec<ToolRef<'_>> = tools.iter().map(ToolRef::from_descriptor).collect();
    let p = principal();
    let args = json!({"team_id": "T0", "to": ["bob@example.com"]});
    for r in &refs {
        black_box(engine.decide(&p, Action::Call, r, Some(&args)));
    }
    let mut samples: Vec<u128> = (0..50_000)
        .map(|i| {
            let t = Instant::now();
            black_box(engine.decide(&p, Action::Call, &refs[i % TOOLS], Some(&args)));
            t.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    let q = |f: f64| samples[((samples.len() as f64 * f) as usize).min(samples.len() - 1)];
    println!(
        "decide (1000 policies) p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        q(0.5) as f64 / 1000.0,
        q(0.99) as f64 / 1000.0,
        q(1.0) as f64 / 1000.0
    );
    let mut lists: Vec<u128> = (0..200)
        .map(|_| {
            let t = Instant::now();
            black_box(engine.filter_list(&p, &refs));
            t.elapsed().as_nanos()
        })
        .collect();
    lists.sort_unstable();
    println!(
        "filter_list (500 tools) p50 {:.2} ms, p99 {:.2} ms",
        lists[100] as f64 / 1e6,
        lists[197] as f64 / 1e6
    );
    // A principal the snapshot has not seen: no cached user entity or list decisions.
    let mut cold: Vec<u128> = (0..200)
        .map(|n| {
            let mut q = p.clone();
            q.user = Some(format!("user{n}"));
            let t = Instant::now();
            black_box(engine.filter_list(&q, &refs));
            t.elapsed().as_nanos()
        })
        .collect();
    cold.sort_unstable();
    println!(
        "filter_list (500 tools, new principal) p50 {:.2} ms, p99 {:.2} ms",
        cold[100] as f64 / 1e6,
        cold[197] as f64 / 1e6
    );
}

criterion_group!(benches, bench);

fn main() {
    p99();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
