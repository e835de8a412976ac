//! `Verifier::verify` allocates nothing for MAC schemes: headers are read in place, signatures
//! decoded into the stack, the MAC fed the signed parts in sequence, and key and webhook ids
//! copied inline into `Verified`. Counted with a global allocator that tallies the allocations
//! of the calling thread only, so tests running in parallel do not disturb each other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use webhook_guard::scheme::{
    Custom, Dropbox, GitHub, Linear, Paddle, Scheme, Shopify, Slack, Square, StandardWebhooks,
    Stripe, Template, TimestampUnit, Twitch, Zoom,
};
use webhook_guard::{KeyId, KeyRole, Keyring, ManualClock, Secret, Signer, Verifier};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards its arguments unchanged to the system allocator, so the
// caller's guarantees are exactly the ones `System` needs. (The crate itself forbids unsafe
// code; this test binary needs it only because `GlobalAlloc` is an unsafe trait.)
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://hooks.example.com/webhooks?source=test";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).unwrap()
}

fn secret() -> Secret {
    Secret::from_bytes("0123456789abcdef0123456789abcdef").unwrap()
}

/// Every MAC scheme but Twilio, whose signed content (the URL followed by the form parameters
/// sorted by name) has to be assembled: that sort is the one allocation the design allows.
fn schemes() -> Vec<Box<dyn Scheme>> {
    let custom = Custom::new("x-signature")
        .unwrap()
        .timestamp_header("x-timestamp", TimestampUnit::Seconds)
        .unwrap()
        .id_header("x-id")
        .unwrap()
        .template(Template::parse("{id}.{timestamp}.{body}").unwrap())
        .unwrap();
    vec![
        Box::new(StandardWebhooks),
        Box::new(Stripe),
        Box::new(GitHub),
        Box::new(Slack),
        Box::new(Shopify),
        Box::new(custom),
        Box::new(Square),
        Box::new(Zoom),
        Box::new(Linear),
        Box::new(Dropbox),
        Box::new(Paddle),
        Box::new(Twitch),
    ]
}

/// A body every scheme accepts: Linear reads its timestamp from the JSON.
fn body(scheme: &dyn Scheme) -> Vec<u8> {
    match scheme.name() {
        "linear" => format!(r#"{{"action":"create","webhookTimestamp":{}}}"#, NOW * 1000).into(),
        _ => br#"{"id":"evt_1","type":"invoice.paid","data":{"amount":1200}}"#.to_vec(),
    }
}

fn signed(scheme: Box<dyn Scheme>, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("host", "hooks.example.com".parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.extend(
        Signer::new(scheme, secret())
            .url(URL)
            .sign_at(body, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now())
            .unwrap(),
    );
    headers
}

/// `keys` live keys; the one that signed is the current key, or else the oldest grace key.
fn keyring(keys: usize, current_matches: bool) -> Keyring {
    let mut secrets: Vec<Secret> = (1..keys)
        .map(|i| Secret::from_bytes(format!("other-{i}")).unwrap())
        .collect();
    if current_matches {
        secrets.push(secret());
    } else {
        secrets.insert(0, secret());
    }
    let mut secrets = secrets.into_iter();
    let keyring = Keyring::builder()
        .clock(ManualClock::new(now()))
        .build(secrets.next().unwrap());
    for (i, next) in secrets.enumerate() {
        let grace = std::time::Duration::from_secs(3600);
        keyring
            .rotate_with_id(KeyId::new(format!("key-{i}")), next, grace)
            .unwrap();
    }
    keyring
}

#[test]
fn verifying_with_a_mac_scheme_allocates_nothing() {
    for scheme in schemes() {
        let name = scheme.name();
        let body = body(&*scheme);
        let headers = signed(scheme, &body);
        for (keys, current_matches) in [(1, true), (3, true), (3, false)] {
            let scheme = schemes().into_iter().find(|s| s.name() == name).unwrap();
            let verifier = Verifier::new(scheme, keyring(keys, current_matches));
            let url = verifier.scheme().uses_url().then_some(URL);
            let verify = || match url {
                Some(url) => verifier.verify_url_at(url, &headers, &body, now()),
                None => verifier.verify_at(&headers, &body, now()),
            };
            // The first call may set up per-thread state (arc-swap's debt list);
            // what matters is every call after it.
            verify().unwrap_or_else(|e| panic!("{name}: {e}"));
            let count = allocations_during(|| {
                for _ in 0..100 {
                    let verified = verify().unwrap();
                    let role = if current_matches {
                        KeyRole::Current
                    } else {
                        KeyRole::Grace
                    };
                    assert_eq!(verified.role(), role);
                }
            });
            assert_eq!(
                count, 0,
                "{name} with {keys} key(s), current key matches: {current_matches}"
            );
        }
    }
}

#[test]
fn the_counter_sees_allocations() {
    // The check above could pass vacuously if the allocator were not installed.
    let count = allocations_during(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert_eq!(count, 1);
}

#[test]
fn a_long_webhook_id_costs_one_allocation() {
    // Ids longer than the inline buffer (38 bytes) are shared: one allocation per delivery.
    let id = "msg_".to_owned() + &"x".repeat(60);
    let body = b"{}";
    let headers = Signer::new(StandardWebhooks, secret())
        .sign_at(body, &id, now())
        .unwrap();
    let verifier = Verifier::new(StandardWebhooks, keyring(1, true));
    verifier.verify_at(&headers, body, now()).unwrap();
    let count = allocations_during(|| {
        let verified = verifier.verify_at(&headers, body, now()).unwrap();
        assert_eq!(verified.webhook_id(), Some(id.as_str()));
    });
    assert_eq!(count, 1);
}
