use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use super::rejection::{slot, KINDS};

/// Default for [`WebhookLayer::rejection_summary_every`](super::WebhookLayer::rejection_summary_every).
pub const DEFAULT_REJECTION_SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Counts rejections by kind and writes them as one `warn` line at most once per interval, so
/// forged traffic cannot flood the logs: each rejection itself is logged at `debug`.
#[derive(Debug)]
pub(crate) struct RejectionReport {
    every: i64,
    /// Unix second from which the next summary may be written.
    next: AtomicI64,
    counts: [AtomicU64; KINDS.len()],
}

impl RejectionReport {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every: i64::try_from(every.as_secs()).unwrap_or(i64::MAX),
            next: AtomicI64::new(i64::MIN),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub(crate) fn every(&self) -> Duration {
        Duration::from_secs(self.every.unsigned_abs())
    }

    /// Counts a rejection of `kind` at `now` (Unix seconds); the first rejection of an interval
    /// writes the summary of the one before, with its own count in it.
    pub(crate) fn record(&self, kind: &str, now: i64, scheme: &'static str) {
        let Some(slot) = slot(kind) else {
            return;
        };
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        let next = self.next.load(Ordering::Relaxed);
        if now < next {
            return;
        }
        // One writer per interval: whoever moves `next` on writes the summary.
        let after = now.saturating_add(self.every);
        if self
            .next
            .compare_exchange(next, after, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let (mut total, mut by_kind) = (0u64, String::new());
        for (kind, count) in KINDS.iter().zip(&self.counts) {
            let count = count.swap(0, Ordering::Relaxed);
            if count > 0 {
                total += count;
                let _ = write!(
                    by_kind,
                    "{}{kind}={count}",
                    if by_kind.is_empty() { "" } else { " " }
                );
            }
        }
        tracing::warn!(
            scheme,
            total,
            by_kind = %by_kind,
            next_summary_in_secs = self.every,
            "webhooks rejected since the last summary"
        );
    }
}
