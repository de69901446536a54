//! The emulator's in-memory workspace: entities as JSON objects by GraphQL type name, seeded with
//! deterministic fixtures, and the relations between them.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

pub(crate) type Entity = Map<String, Value>;

/// Entities by the GraphQL type name that holds them (`Issue`, `Team`, …).
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) tables: HashMap<&'static str, Vec<Entity>>,
    pub(crate) sync_id: u64,
    clock: u64,
}

/// A UUID-shaped id, so the adapter's id-or-name detection sees what Linear would send.
pub(crate) fn uuid(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// `2026-01-01T00:00:00.000Z` plus `hours`.
pub(crate) fn timestamp(hours: u64) -> String {
    let days = hours / 24;
    // Fixtures and the emulator's clock stay within 2026, so month arithmetic is enough.
    let months = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let (mut month, mut day) = (0usize, days);
    while month < 11 && day >= months[month] {
        day -= months[month];
        month += 1;
    }
    format!(
        "2026-{:02}-{:02}T{:02}:00:00.000Z",
        month + 1,
        day + 1,
        hours % 24
    )
}

fn obj(value: Value) -> Entity {
    match value {
        Value::Object(map) => map,
        _ => Entity::new(),
    }
}

const TEAMS: [(&str, &str); 3] = [
    ("ENG", "Engineering"),
    ("DES", "Design"),
    ("OPS", "Operations"),
];
const USERS: [(&str, &str); 4] = [
    ("alice", "Alice Anderson"),
    ("bob", "Bob Brown"),
    ("carol", "Carol Chen"),
    ("dave", "Dave Diaz"),
];
const STATES: [(&str, &str, &str); 6] = [
    ("Backlog", "backlog", "#bec2c8"),
    ("Todo", "unstarted", "#e2e2e2"),
    ("In Progress", "started", "#f2c94c"),
    ("In Review", "started", "#5e6ad2"),
    ("Done", "completed", "#5e6ad2"),
    ("Canceled", "canceled", "#95a2b3"),
];
const LABELS: [(&str, &str); 3] = [
    ("Bug", "#eb5757"),
    ("Feature", "#bb87fc"),
    ("Improvement", "#4ea7fc"),
];
const VERBS: [&str; 6] = ["Fix", "Add", "Refactor", "Document", "Speed up", "Remove"];
const SUBJECTS: [&str; 13] = [
    "login redirect",
    "billing export",
    "search index",
    "onboarding flow",
    "dark mode",
    "webhook retries",
    "CSV import",
    "audit log",
    "rate limiter",
    "mobile navigation",
    "deploy pipeline",
    "icon set",
    "alerting rules",
];
pub(crate) const ISSUE_COUNT: usize = 75;

impl Store {
    /// The seeded workspace: 3 teams, 4 users, 6 states and 3 labels per team, 3 projects,
    /// 75 issues (45 in ENG, so one team alone spans more than one default page) with comments.
    pub(crate) fn seeded() -> Self {
        let mut store = Self {
            clock: 24 * 30,
            ..Self::default()
        };
        let users: Vec<Entity> = USERS
            .iter()
            .enumerate()
            .map(|(n, (login, name))| obj(json!({ "id": uuid(1, n), "name": name, "displayName": login,
                                                  "email": format!("{login}@example.com"), "active": true })))
            .collect();
        let mut teams = Vec::new();
        let (mut states, mut labels) = (Vec::new(), Vec::new());
        for (t, (key, name)) in TEAMS.iter().enumerate() {
            let members: Vec<String> = (0..USERS.len())
                .filter(|u| (u + t) % 4 != 3)
                .map(|u| uuid(1, u))
                .collect();
            teams.push(obj(json!({ "id": uuid(2, t), "key": key, "name": name, "description": format!("The {name} team"),
                                   "memberIds": members, "createdAt": timestamp(t as u64) })));
            for (s, (sname, stype, color)) in STATES.iter().enumerate() {
                states.push(obj(json!({ "id": uuid(3, t * 10 + s), "name": sname, "type": stype, "color": color,
                                        "position": s as f64, "teamId": uuid(2, t), "createdAt": timestamp((t * 10 + s) as u64) })));
            }
            for (l, (lname, color)) in LABELS.iter().enumerate() {
                labels.push(obj(json!({ "id": uuid(4, t * 10 + l), "name": lname, "color": color, "teamId": uuid(2, t) })));
            }
        }
        let projects: Vec<Entity> = [("Mobile App", vec![0, 1], "In Progress", "started", 0.4),
                                     ("Infra Migration", vec![0, 2], "Planned", "planned", 0.0),
                                     ("Brand Refresh", vec![1], "Completed", "completed", 1.0)]
            .iter()
            .enumerate()
            .map(|(p, (name, teams, status, stype, progress))| obj(json!({
                "id": uuid(5, p), "name": name, "description": format!("{name} project"),
                "url": format!("https://linear.app/sandbox/project/{}", uuid(5, p)), "progress": progress,
                "targetDate": if p == 1 { Value::Null } else { json!(format!("2026-0{}-30", p + 4)) },
                "status": { "id": uuid(6, p), "name": status, "type": stype, "color": "#5e6ad2" },
                "teamIds": teams.iter().map(|t| uuid(2, *t)).collect::<Vec<_>>(), "createdAt": timestamp(p as u64),
            })))
            .collect();
        let mut issues = Vec::new();
        let mut comments = Vec::new();
        let mut numbers = [0usize; 3];
        for i in 0..ISSUE_COUNT {
            let t = match i % 5 {
                0..=2 => 0,
                3 => 1,
                _ => 2,
            };
            numbers[t] += 1;
            let created = (i as u64) * 5;
            let title = format!(
                "{} {}",
                VERBS[i % VERBS.len()],
                SUBJECTS[i % SUBJECTS.len()]
            );
            let label_ids: Vec<String> = (0..3)
                .filter(|l| (i + l) % 4 == 0)
                .map(|l| uuid(4, t * 10 + l))
                .collect();
            let project = match (t, i % 3) {
                (0, 0) => json!(uuid(5, 0)),
                (0, 1) | (2, _) => json!(uuid(5, 1)),
                (1, _) if i % 2 == 0 => json!(uuid(5, 2)),
                _ => Value::Null,
            };
            issues.push(obj(json!({
                "id": uuid(7, i), "number": numbers[t] as f64, "identifier": format!("{}-{}", TEAMS[t].0, numbers[t]),
                "title": title, "description": format!("{title}.\n\nSeen by customers since release {}.", i % 7),
                "priority": (i % 5) as f64, "url": format!("https://linear.app/sandbox/issue/{}-{}", TEAMS[t].0, numbers[t]),
                "createdAt": timestamp(created), "updatedAt": timestamp(created + ((i * 37) % 200) as u64),
                "teamId": uuid(2, t), "stateId": uuid(3, t * 10 + i % 6),
                "assigneeId": if i % 5 == 4 { Value::Null } else { json!(uuid(1, i % 4)) },
                "projectId": project, "labelIds": label_ids,
            })));
            for c in 0..(i % 3) {
                let n = comments.len();
                comments.push(obj(json!({
                    "id": uuid(8, n), "body": format!("Comment {} on {}: reproduced on staging.", c + 1, TEAMS[t].0),
                    "issueId": uuid(7, i), "userId": uuid(1, (i + c) % 4), "createdAt": timestamp(created + c as u64 + 1),
                    "updatedAt": timestamp(created + c as u64 + 1), "url": format!("https://linear.app/sandbox/comment/{}", uuid(8, n)),
                })));
            }
        }
        store.tables.insert("User", users);
        store.tables.insert("Team", teams);
        store.tables.insert("WorkflowState", states);
        store.tables.insert("IssueLabel", labels);
        store.tables.insert("Project", projects);
        store.tables.insert("Issue", issues);
        store.tables.insert("Comment", comments);
        store
    }

    /// The table behind a GraphQL type (search results are issues).
    pub(crate) fn table_of(type_name: &str) -> &str {
        match type_name {
            "IssueSearchResult" => "Issue",
            other => other,
        }
    }

    pub(crate) fn all(&self, type_name: &str) -> &[Entity] {
        self.tables
            .get(Self::table_of(type_name))
            .map_or(&[], Vec::as_slice)
    }

    /// By id, or for issues also by identifier (`ENG-12`), as Linear's `issue(id:)` accepts.
    pub(crate) fn get(&self, type_name: &str, id: &str) -> Option<&Entity> {
        self.all(type_name).iter().find(|e| {
            e.get("id").and_then(Value::as_str) == Some(id)
                || e.get("identifier")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.eq_ignore_ascii_case(id))
        })
    }

    /// The entities a connection field of an entity lists, e.g. `Team.states`.
    pub(crate) fn related(&self, owner_type: &str, field: &str, owner: &Entity) -> Vec<Entity> {
        let id = owner.get("id").cloned().unwrap_or(Value::Null);
        let by_foreign_key = |table: &str, key: &str| -> Vec<Entity> {
            self.all(table)
                .iter()
                .filter(|e| e.get(key) == Some(&id))
                .cloned()
                .collect()
        };
        let by_id_list = |table: &str, key: &str| -> Vec<Entity> {
            let ids = owner
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            self.all(table)
                .iter()
                .filter(|e| e.get("id").is_some_and(|i| ids.contains(i)))
                .cloned()
                .collect()
        };
        match (Self::table_of(owner_type), field) {
            ("Team", "issues") => by_foreign_key("Issue", "teamId"),
            ("Team", "states") => by_foreign_key("WorkflowState", "teamId"),
            ("Team", "labels") => by_foreign_key("IssueLabel", "teamId"),
            ("Team", "members") => by_id_list("User", "memberIds"),
            ("Issue", "comments") => by_foreign_key("Comment", "issueId"),
            ("Issue", "labels") => by_id_list("IssueLabel", "labelIds"),
            ("Project", "teams") => by_id_list("Team", "teamIds"),
            _ => Vec::new(),
        }
    }

    /// A fresh timestamp later than every fixture, one hour per write.
    pub(crate) fn tick(&mut self) -> String {
        self.clock += 1;
        self.sync_id += 1;
        timestamp(self.clock)
    }

    pub(crate) fn insert(&mut self, type_name: &'static str, entity: Entity) {
        self.tables.entry(type_name).or_default().push(entity);
    }

    pub(crate) fn get_mut(&mut self, type_name: &str, id: &str) -> Option<&mut Entity> {
        self.tables
            .get_mut(Self::table_of(type_name))?
            .iter_mut()
            .find(|e| {
                e.get("id").and_then(Value::as_str) == Some(id)
                    || e.get("identifier")
                        .and_then(Value::as_str)
                        .is_some_and(|k| k.eq_ignore_ascii_case(id))
            })
    }
}
