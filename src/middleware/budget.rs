use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// Bodies at least this long are large: each is read and verified only in its turn
/// ([`WebhookLayer::max_large_bodies`](super::WebhookLayer::max_large_bodies)). With 8 live
/// keys, 64 KiB is about 0.3 ms of HMAC.
pub const LARGE_BODY: usize = 64 * 1024;

/// How many large bodies (past [`LARGE_BODY`] bytes) are read and verified at once, shared by
/// every request through one layer. The others wait, their bytes unread (so TCP pauses their
/// senders), first come first served: a flood of large forged bodies then takes at most this
/// many workers' worth of MAC time, and small deliveries keep the rest.
#[derive(Debug)]
pub(crate) struct LargeBodies {
    max: usize,
    permits: Arc<Semaphore>,
}

impl LargeBodies {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Self {
            max,
            permits: Arc::new(Semaphore::new(max)),
        })
    }

    /// One permit per CPU the process may use.
    pub(crate) fn per_cpu() -> Arc<Self> {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from))
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }
}

type Acquiring = Pin<Box<dyn Future<Output = Option<OwnedSemaphorePermit>> + Send + Sync>>;

/// A request's turn among [`LargeBodies`]: none until it asks, then held until dropped.
#[derive(Default)]
pub(crate) enum LargeTurn {
    /// Not asked for (a small body so far).
    #[default]
    Idle,
    /// Waiting in the queue.
    Waiting(Acquiring),
    /// Holding a permit.
    Held(#[allow(dead_code)] OwnedSemaphorePermit),
}

impl LargeTurn {
    /// Ready once this request holds a permit of `large` (at once if it already does).
    pub(crate) fn poll_hold(&mut self, large: &LargeBodies, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match self {
                Self::Held(_) => return Poll::Ready(()),
                Self::Idle => match Arc::clone(&large.permits).try_acquire_owned() {
                    Ok(permit) => *self = Self::Held(permit),
                    Err(_) => {
                        let permits = Arc::clone(&large.permits);
                        *self =
                            Self::Waiting(Box::pin(
                                async move { permits.acquire_owned().await.ok() },
                            ));
                    }
                },
                Self::Waiting(acquiring) => match acquiring.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(permit)) => *self = Self::Held(permit),
                    // The semaphore is never closed; should it be, nothing is held back.
                    Poll::Ready(None) => return Poll::Ready(()),
                },
            }
        }
    }

    /// Gives the permit (or the place in the queue) back.
    pub(crate) fn release(&mut self) {
        *self = Self::Idle;
    }

    #[cfg(test)]
    fn holds(&self) -> bool {
        matches!(self, Self::Held(_))
    }
}

impl std::fmt::Debug for LargeTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Idle => "Idle",
            Self::Waiting(_) => "Waiting",
            Self::Held(_) => "Held",
        })
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
    fn large_bodies_wait_their_turn_first_come_first_served() {
        use std::task::{Context, Poll, Waker};
        let mut cx = Context::from_waker(Waker::noop());
        let large = LargeBodies::new(2);
        let mut turns: Vec<LargeTurn> = (0..5).map(|_| LargeTurn::default()).collect();
        let ready: Vec<bool> = turns
            .iter_mut()
            .map(|t| t.poll_hold(&large, &mut cx).is_ready())
            .collect();
        assert_eq!(ready, [true, true, false, false, false]);
        let [a, b, c, d, e] = &mut turns[..] else {
            unreachable!()
        };
        assert!(a.holds() && b.holds() && !c.holds());
        // Polled again, a holder stays ready and a waiter stays in the queue.
        assert_eq!(a.poll_hold(&large, &mut cx), Poll::Ready(()));
        assert_eq!(e.poll_hold(&large, &mut cx), Poll::Pending);
        // The first in the queue gets the freed permit, not a later one.
        a.release();
        assert_eq!(e.poll_hold(&large, &mut cx), Poll::Pending);
        assert_eq!(d.poll_hold(&large, &mut cx), Poll::Pending);
        assert_eq!(c.poll_hold(&large, &mut cx), Poll::Ready(()));
        // A waiter that leaves the queue passes its place on.
        d.release();
        b.release();
        assert_eq!(e.poll_hold(&large, &mut cx), Poll::Ready(()));
        assert!(c.holds() && e.holds() && !a.holds() && !b.holds() && !d.holds());
        assert_eq!(large.max(), 2);
        assert_eq!(
            LargeBodies::new(0).max(),
            1,
            "at least one large body at a time"
        );
    }

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
