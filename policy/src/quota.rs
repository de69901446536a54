//! Call quotas per user, per tool and per adapter, configured in `quotas.toml` next to the
//! policies. Local by default (GCRA per key in memory: smooth, burst up to the limit); with a
//! Redis URL, fixed windows in Redis checked and consumed by one Lua script, so every replica
//! enforces the same limit and a call either consumes from all matching rules or from none.
//! If Redis is unreachable the check falls back to the local limiter (logged) rather than failing
//! every call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::{Principal, ToolRef};

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("quota `{rule}` exceeded; retry after {retry_after:?}")]
    QuotaExceeded { rule: String, retry_after: Duration },
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaConfigError {
    #[error("quotas config: {0}")]
    Parse(String),
    #[error("quota `{0}`: set per_minute and/or per_hour")]
    NoLimit(String),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// What a rule counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// Each user has their own budget (across the matching tools).
    User,
    /// Each tool has one budget shared by all users.
    Tool,
    /// Each adapter instance has one budget shared by all users and its tools.
    Adapter,
    /// Each (user, tool) pair.
    UserTool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaRule {
    pub id: String,
    pub per: Per,
    /// Only calls of this tool count (exact name).
    pub tool: Option<String>,
    /// Only calls through this adapter instance count.
    pub adapter: Option<String>,
    /// Only calls of tools carrying this tag count (`tool_tags` in the config), e.g. `sends`
    /// for every tool that sends mail or messages, however many there are.
    pub tag: Option<String>,
    pub per_minute: Option<u64>,
    pub per_hour: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

// === impl RedisConfig ===

impl RedisConfig {
    /// Redis at `url` under the default key prefix.
    pub fn at(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            prefix: default_prefix(),
        }
    }
}

fn default_prefix() -> String {
    "manifold:quota".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    pub redis: Option<RedisConfig>,
    #[serde(default, rename = "quota")]
    pub rules: Vec<QuotaRule>,
}

impl QuotaConfig {
    pub fn from_toml(text: &str) -> Result<Self, QuotaConfigError> {
        let cfg: QuotaConfig =
            toml::from_str(text).map_err(|e| QuotaConfigError::Parse(e.to_string()))?;
        for r in &cfg.rules {
            if r.per_minute.is_none() && r.per_hour.is_none() {
                return Err(QuotaConfigError::NoLimit(r.id.clone()));
            }
        }
        Ok(cfg)
    }
}

/// One counter to check: key, limit, window.
#[derive(Debug, Clone)]
struct Bucket {
    rule: String,
    key: String,
    limit: u64,
    window: Duration,
}

/// Checks and consumes quota. Share one per gateway (`Arc<Quotas>`).
pub struct Quotas {
    rules: Vec<QuotaRule>,
    redis: Option<(redis::aio::ConnectionManager, String)>,
    /// GCRA: theoretical arrival time per bucket key.
    local: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("rules", &self.rules.len())
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

/// Checks every key's count first and increments only if all fit, atomically in Redis.
/// KEYS: bucket keys; ARGV: limit1, window_ms1, limit2, window_ms2, …
/// Returns {0, 0} when admitted, {index (1-based), pttl} of the first exhausted bucket otherwise.
const SCRIPT: &str = r#"
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2*i-1])
  local used = tonumber(redis.call('GET', key) or '0')
  if used >= limit then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then ttl = tonumber(ARGV[2*i]) end
    return {i, ttl}
  end
end
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[2*i]) end
end
return {0, 0}
"#;

impl Quotas {
    /// Local-only limiter (ignores any `[redis]` section).
    pub fn local(cfg: &QuotaConfig) -> Self {
        Quotas {
            rules: cfg.rules.clone(),
            redis: None,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Connects to Redis when configured, else local.
    pub async fn new(cfg: &QuotaConfig) -> Result<Self, QuotaConfigError> {
        let mut q = Quotas::local(cfg);
        if let Some(r) = &cfg.redis {
            let client = redis::Client::open(r.url.as_str())?;
            let conn = redis::aio::ConnectionManager::new(client).await?;
            q.redis = Some((conn, r.prefix.clone()));
        }
        Ok(q)
    }

    fn buckets(&self, principal: &Principal, tool: &ToolRef<'_>) -> Vec<Bucket> {
        let user = principal.user.as_deref().unwrap_or("anonymous");
        let mut out = Vec::new();
        for r in &self.rules {
            if r.tool.as_deref().is_some_and(|t| t != tool.name)
                || r.adapter.as_deref().is_some_and(|a| a != tool.instance)
                || r.tag
                    .as_deref()
                    .is_some_and(|t| !tool.tags.iter().any(|own| own == t))
            {
                continue;
            }
            let subject = match r.per {
                Per::User => format!("u:{user}"),
                Per::Tool => format!("t:{}", tool.name),
                Per::Adapter => format!("a:{}", tool.instance),
                Per::UserTool => format!("ut:{user}:{}", tool.name),
            };
            for (limit, window, tag) in [
                (r.per_minute, Duration::from_secs(60), "m"),
                (r.per_hour, Duration::from_secs(3600), "h"),
            ] {
                if let Some(limit) = limit {
                    out.push(Bucket {
                        rule: r.id.clone(),
                        key: format!("{}:{tag}:{subject}", r.id),
                        limit,
                        window,
                    });
                }
            }
        }
        out
    }

    /// Admits and counts one call, or says how long to wait.
    pub async fn check(&self, principal: &Principal, tool: &ToolRef<'_>) -> Result<(), QuotaError> {
        let buckets = self.buckets(principal, tool);
        if buckets.is_empty() {
            return Ok(());
        }
        if let Some((conn, prefix)) = &self.redis {
            match redis_check(conn.clone(), prefix, &buckets).await {
                Ok(r) => return r,
                Err(e) => tracing::warn!(error = %e, "quota redis unavailable; using local limits"),
            }
        }
        self.check_local_at(&buckets, Instant::now())
    }

    fn check_local_at(&self, buckets: &[Bucket], now: Instant) -> Result<(), QuotaError> {
        let mut tats = self.local.lock().unwrap_or_else(|p| p.into_inner());
        // GCRA: emission interval T = window/limit, burst tolerance = window - T. First check
        // all, then commit, so a denied call consumes nothing.
        let mut updates = Vec::with_capacity(buckets.len());
        for b in buckets {
            if b.limit == 0 {
                return Err(QuotaError::QuotaExceeded {
                    rule: b.rule.clone(),
                    retry_after: b.window,
                });
            }
            let t = b.window / u32::try_from(b.limit).unwrap_or(u32::MAX);
            let tau = b.window.saturating_sub(t);
            let tat = tats.get(&b.key).copied().unwrap_or(now).max(now);
            let allow_at = tat.checked_sub(tau).unwrap_or(now);
            if allow_at > now {
                return Err(QuotaError::QuotaExceeded {
                    rule: b.rule.clone(),
                    retry_after: allow_at - now,
                });
            }
            updates.push((b.key.clone(), tat + t));
        }
        for (k, v) in updates {
            tats.insert(k, v);
        }
        // Forget buckets that are back to full, so the map does not grow with every user ever.
        if tats.len() > 100_000 {
            tats.retain(|_, tat| *tat > now);
        }
        Ok(())
    }
}

async fn redis_check(
    mut conn: redis::aio::ConnectionManager,
    prefix: &str,
    buckets: &[Bucket],
) -> Result<Result<(), QuotaError>, redis::RedisError> {
    // Fixed windows aligned to the clock, so all replicas share the same key per window.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let script = redis::Script::new(SCRIPT);
    let mut inv = script.prepare_invoke();
    for b in buckets {
        let w = b.window.as_millis().max(1);
        inv.key(format!("{prefix}:{}:{}", b.key, now_ms / w));
        inv.arg(b.limit).arg(w as u64);
    }
    let (idx, ttl): (usize, i64) = inv.invoke_async(&mut conn).await?;
    if idx == 0 {
        return Ok(Ok(()));
    }
    let b = &buckets[(idx - 1).min(buckets.len() - 1)];
    Ok(Err(QuotaError::QuotaExceeded {
        rule: b.rule.clone(),
        retry_after: Duration::from_millis(ttl.max(0) as u64),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
        [[quota]]
        id = "user"
        per = "user"
        per_minute = 3
        [[quota]]
        id = "send"
        per = "tool"
        tool = "send"
        per_hour = 2
    "#;

    fn tool(name: &str) -> ToolRef<'_> {
        ToolRef {
            name,
            instance: "mail",
            kind: "outlook",
            read_only: false,
            destructive: false,
            tags: &[],
        }
    }

    fn user(u: &str) -> Principal {
        Principal {
            user: Some(u.into()),
            ..Principal::default()
        }
    }

    #[test]
    fn a_tag_rule_counts_every_tagged_tool_against_one_budget_and_no_other() {
        let cfg = QuotaConfig::from_toml(
            "[[quota]]\nid = \"sends\"\nper = \"user\"\ntag = \"sends\"\nper_minute = 3\n",
        )
        .expect("cfg");
        let q = Quotas::local(&cfg);
        let sends = vec!["write".to_owned(), "sends".to_owned()];
        let tagged = |name| ToolRef {
            tags: &sends,
            ..tool(name)
        };
        let t0 = Instant::now();
        // Generated sequences of tagged tools: the fourth tagged call is refused whichever
        // tools came before, and untagged tools never count.
        let names = [
            "send_message",
            "reply_message",
            "forward_message",
            "post_channel_message",
        ];
        for start in 0..names.len() {
            let u = user(&format!("u{start}"));
            for step in 0..3 {
                let name = names[(start + step) % names.len()];
                q.check_local_at(&q.buckets(&u, &tagged(name)), t0)
                    .expect("within the budget");
                assert!(q.buckets(&u, &tool("list_messages")).is_empty());
            }
            let last = names[(start + 3) % names.len()];
            assert!(q.check_local_at(&q.buckets(&u, &tagged(last)), t0).is_err());
        }
    }

    #[test]
    fn local_gcra_limits_per_user_and_per_tool_and_recovers() {
        let q = Quotas::local(&QuotaConfig::from_toml(CFG).expect("cfg"));
        let t0 = Instant::now();
        let b = |u: &str, t: &str| q.buckets(&user(u), &tool(t));
        for _ in 0..3 {
            q.check_local_at(&b("a", "read"), t0).expect("within burst");
        }
        let Err(QuotaError::QuotaExceeded { rule, retry_after }) =
            q.check_local_at(&b("a", "read"), t0)
        else {
            panic!("4th call in a minute must be refused");
        };
        assert_eq!(rule, "user");
        assert_eq!(retry_after, Duration::from_secs(20));
        q.check_local_at(&b("b", "read"), t0)
            .expect("other user unaffected");
        q.check_local_at(&b("a", "read"), t0 + Duration::from_secs(20))
            .expect("one token back");

        // Tool budget is shared across users; a refused call consumes nothing.
        q.check_local_at(&b("c", "send"), t0).expect("1");
        q.check_local_at(&b("d", "send"), t0).expect("2");
        let e = q
            .check_local_at(&b("e", "send"), t0)
            .expect_err("tool exhausted");
        assert!(matches!(e, QuotaError::QuotaExceeded { ref rule, .. } if rule == "send"));
    }

    #[test]
    fn rules_without_limits_are_refused() {
        assert!(QuotaConfig::from_toml("[[quota]]\nid='x'\nper='user'\n").is_err());
    }
}
