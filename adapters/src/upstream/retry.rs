//! When to send a request again, and how long to wait first.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

use super::{Attempt, UpstreamRequest};

/// Retry limits (`[upstream.retry]` in the config).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// No retry starts when waiting for it would pass this much time since the first attempt.
    pub budget: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            budget: Duration::from_secs(20),
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Return,
    RetryAfter(Duration),
}

impl RetryPolicy {
    pub(crate) fn decide(
        &self,
        request: &UpstreamRequest,
        outcome: &Attempt,
        attempt: u32,
        elapsed: Duration,
    ) -> Decision {
        if attempt >= self.max_attempts {
            return Decision::Return;
        }
        let (retryable, asked_wait) = match outcome {
            Attempt::Answered(response) => match response.status {
                // The provider refused before doing anything: safe even for writes.
                StatusCode::TOO_MANY_REQUESTS => (true, parse_retry_after(&response.headers)),
                StatusCode::SERVICE_UNAVAILABLE => {
                    (request.idempotent, parse_retry_after(&response.headers))
                }
                StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => (request.idempotent, None),
                _ => (false, None),
            },
            Attempt::NotConnected(_) => (true, None),
            Attempt::TimedOut | Attempt::Broken(_) => (request.idempotent, None),
        };
        if !retryable {
            return Decision::Return;
        }
        let wait = asked_wait.unwrap_or_else(|| self.backoff(attempt));
        if elapsed + wait > self.budget {
            return Decision::Return;
        }
        Decision::RetryAfter(wait)
    }

    /// Exponential backoff with full jitter in its upper half, so retries from many calls spread.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// `Retry-After` in delay-seconds form, capped at one hour so a hostile value cannot park a call.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::UpstreamResponse;
    use bytes::Bytes;
    use http::{HeaderValue, Method};

    fn request(idempotent: bool) -> UpstreamRequest {
        UpstreamRequest::new(
            Method::POST,
            "http://127.0.0.1:1/graphql".parse().expect("url"),
        )
        .idempotent(idempotent)
    }

    fn answered(status: u16, retry_after: Option<&'static str>) -> Attempt {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static(value));
        }
        Attempt::Answered(UpstreamResponse {
            status: StatusCode::from_u16(status).expect("status"),
            headers,
            body: Bytes::new(),
        })
    }

    #[test]
    fn honours_retry_after_on_429_even_for_writes() {
        let policy = RetryPolicy::default();
        let decision = policy.decide(
            &request(false),
            &answered(429, Some("2")),
            1,
            Duration::ZERO,
        );
        assert_eq!(decision, Decision::RetryAfter(Duration::from_secs(2)));
    }

    #[test]
    fn does_not_repeat_a_write_that_may_have_landed() {
        let policy = RetryPolicy::default();
        for outcome in [answered(502, None), answered(503, None), Attempt::TimedOut] {
            assert_eq!(
                policy.decide(&request(false), &outcome, 1, Duration::ZERO),
                Decision::Return
            );
            assert!(matches!(
                policy.decide(&request(true), &outcome, 1, Duration::ZERO),
                Decision::RetryAfter(_)
            ));
        }
    }

    #[test]
    fn stops_at_the_budget_and_the_attempt_limit() {
        let policy = RetryPolicy::default();
        let long_wait = answered(429, Some("30"));
        assert_eq!(
            policy.decide(&request(true), &long_wait, 1, Duration::ZERO),
            Decision::Return
        );
        assert_eq!(
            policy.decide(&request(true), &answered(429, Some("1")), 4, Duration::ZERO),
            Decision::Return
        );
        assert_eq!(
            policy.decide(&request(true), &answered(400, None), 1, Duration::ZERO),
            Decision::Return
        );
    }

    #[test]
    fn parses_only_sane_retry_after_values() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("3", Some(Duration::from_secs(3))),
            ("0.5", Some(Duration::from_millis(500))),
            ("-1", None),
            ("NaN", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
            ("99999999", Some(Duration::from_secs(3600))),
        ] {
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from_str(value).expect("header"),
            );
            assert_eq!(parse_retry_after(&headers), expected, "{value}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        for attempt in 1..20 {
            let wait = policy.backoff(attempt);
            assert!(wait <= policy.max_backoff, "attempt {attempt}: {wait:?}");
        }
        assert!(policy.backoff(5) >= Duration::from_millis(1600));
    }
}
