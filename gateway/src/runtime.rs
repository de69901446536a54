//! The async runtime the binary runs on: how many workers, and one adjustment for a proxy's
//! request path.

use std::{num::NonZeroUsize, time::Duration};

/// The environment variable that sets the number of runtime worker threads.
pub const WORKERS_ENV: &str = "MANIFOLD_WORKER_THREADS";

/// How often the timer anchor fires; far shorter than any per-call deadline (upstream timeouts
/// are seconds), far longer than a call.
const ANCHOR_PERIOD: Duration = Duration::from_millis(500);

/// The multi-threaded runtime with [`worker_threads`] workers and the timer anchor running.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = worker_threads(
        std::env::var(WORKERS_ENV).ok().as_deref(),
        std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
    )
    .map_err(|message| std::io::Error::new(std::io::ErrorKind::InvalidInput, message))?;
    build_with(workers)
}

fn build_with(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    runtime.spawn(timer_anchor());
    Ok(runtime)
}

/// `MANIFOLD_WORKER_THREADS` when set, else half the cores (at least one). Each call spends
/// about half its CPU in the kernel's network stack, which runs on the same cores; and at low
/// load every extra worker is one more thread to hand the I/O driver to and wake (on the 2-core
/// benchmark machine one worker cut CPU per call by a fifth at concurrency 1 and lost no
/// throughput at 64 — tests/bench/README.md).
fn worker_threads(setting: Option<&str>, cores: usize) -> Result<usize, String> {
    match setting.map(str::trim) {
        None | Some("") => Ok((cores / 2).max(1)),
        Some(text) => match text.parse::<usize>() {
            Ok(workers) if workers >= 1 => Ok(workers),
            _ => Err(format!(
                "{WORKERS_ENV} must be a whole number of at least 1, not `{text}`"
            )),
        },
    }
}

/// Keeps a timer pending at all times. Tokio wakes its I/O driver whenever a timer is set to
/// fire before the driver's promised wake-up — and with no timer pending that promise is
/// "never", so every call's deadlines (upstream timeout, call timeout) would cost an eventfd
/// write and, on an idle worker, a cross-thread wake-up. With this anchor due within half a
/// second, those later deadlines register silently.
async fn timer_anchor() {
    let mut ticks = tokio::time::interval(ANCHOR_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_has_its_workers_and_a_pending_timer() {
        let runtime = build_with(2).expect("runtime");
        let metrics = runtime.metrics();
        assert_eq!(metrics.num_workers(), 2);
        // The anchor is the one task alive before anything else is spawned.
        assert_eq!(metrics.num_alive_tasks(), 1);
        // It outlives its ticks: after more than one period it is still there.
        runtime.block_on(async { tokio::time::sleep(ANCHOR_PERIOD + ANCHOR_PERIOD / 2).await });
        assert_eq!(runtime.metrics().num_alive_tasks(), 1);
    }

    #[test]
    fn workers_default_to_half_the_cores_and_refuse_nonsense() {
        assert_eq!(worker_threads(None, 1), Ok(1));
        assert_eq!(worker_threads(None, 2), Ok(1));
        assert_eq!(worker_threads(None, 16), Ok(8));
        assert_eq!(worker_threads(Some(" 3 "), 2), Ok(3));
        for bad in ["0", "-1", "two", "1.5"] {
            let error = worker_threads(Some(bad), 2).expect_err("refused");
            assert!(
                error.contains(WORKERS_ENV) && error.contains(bad),
                "{error}"
            );
        }
    }
}
