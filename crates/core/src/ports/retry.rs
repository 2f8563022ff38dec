//! The retry policy for contention: when another invocation changed the same item first
//! (an optimistic-lock conflict, a cancelled transaction), re-read and try again after a pause
//! with full jitter, so that writers racing for one incident spread out instead of colliding
//! again in lockstep.
//!
//! Inside a Lambda invocation ([`until`] its deadline) contention is retried for as long as the
//! deadline allows another try and the time to answer; elsewhere (tests, the CLI) up to
//! [`CONFLICT_ATTEMPTS`] tries.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How many times a contended read-modify-write is tried, outside an invocation with a
/// deadline, before the conflict is returned (as a retryable error). A storm of N writers on
/// one item needs about N rounds: each round one wins.
pub const CONFLICT_ATTEMPTS: usize = 64;

/// Kept before the deadline to record what happened and answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(1500);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `f` with `deadline` (the invocation's): its contended retries go on while another try
/// fits before it.
pub async fn until<F: Future>(deadline: Instant, f: F) -> F::Output {
    DEADLINE.scope(deadline, f).await
}

/// The invocation's deadline, when [`until`] set one.
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Whether another try may follow try `attempt` (0-based): its pause and the margin fit before
/// the deadline, or, with none, fewer than [`CONFLICT_ATTEMPTS`] tries were made.
pub fn may_retry(attempt: usize) -> bool {
    match deadline() {
        Some(d) => Instant::now() + ceiling(attempt) + DEADLINE_MARGIN < d,
        None => attempt + 1 < CONFLICT_ATTEMPTS,
    }
}

/// Pauses before the try after `attempt` when [`may_retry`]; false (no pause) when not.
pub async fn next(attempt: usize) -> bool {
    if !may_retry(attempt) {
        return false;
    }
    pause(attempt).await;
    true
}

fn ceiling(attempt: usize) -> Duration {
    BASE.saturating_mul(1u32 << attempt.min(16)).min(CAP)
}

/// The longest pause between two tries.
const CAP: Duration = Duration::from_millis(250);
/// The first pause's upper bound; it doubles each try up to [`CAP`].
const BASE: Duration = Duration::from_millis(4);

/// The pause before try `attempt + 1` (0-based): uniform in `[0, min(CAP, BASE * 2^attempt)]`.
pub fn pause_for(attempt: usize) -> Duration {
    let nanos = u64::try_from(ceiling(attempt).as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(jitter() % nanos.saturating_add(1))
}

/// Sleeps for [`pause_for`]`(attempt)`.
pub async fn pause(attempt: usize) {
    tokio::time::sleep(pause_for(attempt)).await;
}

/// A cheap, non-cryptographic random number: splitmix64 over the time and a process counter,
/// enough to keep concurrent writers apart.
fn jitter() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(now);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_the_cap_and_are_jittered() {
        for attempt in 0..40 {
            let ceiling = BASE.saturating_mul(1u32 << attempt.min(16)).min(CAP);
            let pauses: Vec<Duration> = (0..200).map(|_| pause_for(attempt)).collect();
            assert!(pauses.iter().all(|p| *p <= ceiling), "attempt {attempt}");
            let distinct: std::collections::HashSet<_> = pauses.iter().collect();
            assert!(
                distinct.len() > 100,
                "attempt {attempt}: pauses are not spread out"
            );
        }
        assert!(pause_for(30) <= CAP);
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_deadline_contention_is_retried_until_it_no_longer_fits() {
        assert!(!may_retry(CONFLICT_ATTEMPTS - 1), "no deadline: the attempt cap");
        let tries = until(Instant::now() + Duration::from_secs(30), async {
            let mut attempt = 0;
            while next(attempt).await {
                attempt += 1;
            }
            attempt + 1
        })
        .await;
        // pauses of at most 250 ms fill 30 s less the margin: far more than the cap alone
        assert!(tries > CONFLICT_ATTEMPTS, "{tries} tries");
        let left = until(Instant::now() + Duration::from_millis(1000), async {
            may_retry(0)
        })
        .await;
        assert!(!left, "no try starts inside the margin");
    }
}
