//! The async runtime the binary runs on, and one adjustment for a proxy's request path.

use std::time::Duration;

/// How often the timer anchor fires; far shorter than any per-call deadline (upstream timeouts
/// are seconds), far longer than a call.
const ANCHOR_PERIOD: Duration = Duration::from_millis(500);

/// The multi-threaded runtime, one worker per core, with the timer anchor running.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.spawn(timer_anchor());
    Ok(runtime)
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
