use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Default for [`WebhookLayer::max_buffered_bytes`](super::WebhookLayer::max_buffered_bytes):
/// 64 MiB of request bodies held at once by all requests through one layer, 64 bodies at the
/// default 1 MiB limit.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;

/// Body bytes buffered in flight, shared by every request through one layer: each request
/// reserves what it holds before holding it, and gives it back when it is done.
#[derive(Debug)]
pub(crate) struct Budget {
    max: usize,
    used: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            used: AtomicUsize::new(0),
        })
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Bytes reserved now, by all requests.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One request's share of the [`Budget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<Budget>,
    held: usize,
}

impl Reservation {
    /// An empty reservation on `budget`.
    pub(crate) fn new(budget: &Arc<Budget>) -> Self {
        Self {
            budget: Arc::clone(budget),
            held: 0,
        }
    }

    /// Holds at least `bytes` in all; false, holding what it held, when the budget has no room.
    pub(crate) fn grow_to(&mut self, bytes: usize) -> bool {
        if bytes <= self.held {
            return true;
        }
        if !self.budget.take(bytes - self.held) {
            return false;
        }
        self.held = bytes;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_back_on_drop() {
        let budget = Budget::new(100);
        let mut a = Reservation::new(&budget);
        let mut b = Reservation::new(&budget);
        assert!(a.grow_to(60));
        assert!(a.grow_to(40), "already held");
        assert!(!b.grow_to(41));
        assert_eq!(budget.used(), 60);
        assert!(b.grow_to(40));
        assert_eq!(budget.used(), 100);
        assert!(!a.grow_to(61));
        drop(a);
        assert_eq!(budget.used(), 40);
        assert!(b.grow_to(100));
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_reservation_past_usize_fails_without_wrapping() {
        let budget = Budget::new(usize::MAX);
        let mut a = Reservation::new(&budget);
        assert!(a.grow_to(usize::MAX - 1));
        let mut b = Reservation::new(&budget);
        assert!(!b.grow_to(2));
        assert!(b.grow_to(1));
    }
}
