//! Rotations racing with verifications and with each other, on real threads and the system
//! clock. Every loop is bounded in iterations and in wall time.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use webhook_guard::scheme::StandardWebhooks;
use webhook_guard::{KeyId, KeyRole, Keyring, Secret, Signer, Verifier};

const VERIFIERS: usize = 4;
const ROTATIONS: u64 = 200;
/// Wall-time budget for one test's worker loops.
const BUDGET: Duration = Duration::from_secs(6);
const BODY: &[u8] = br#"{"type":"ping"}"#;

fn generation_secret(generation: u64) -> Secret {
    Secret::from_bytes(format!("generation-{generation:04}-secret-padding-bytes")).unwrap()
}

fn generation_id(generation: u64) -> KeyId {
    KeyId::new(format!("gen-{generation}"))
}

/// After each rotation, gives the verifiers a chance to run against the new key set: waits
/// until they have completed `per_round` more verifications, or the deadline.
fn let_verifiers_run(done: &AtomicUsize, per_round: usize, deadline: Instant) {
    let target = done.load(Ordering::SeqCst) + per_round;
    while done.load(Ordering::SeqCst) < target && Instant::now() < deadline {
        thread::yield_now();
    }
}

#[test]
fn rotation_with_grace_never_rejects_a_delivery_signed_with_a_key_seen_as_valid() {
    let keyring = Keyring::builder()
        .max_keys(ROTATIONS as usize + 1)
        .key_id(generation_id(0))
        .build(generation_secret(0));
    let verifier = Verifier::new(StandardWebhooks, keyring.clone());
    // The secret senders were last told about, published only after `rotate` returned.
    let published = Mutex::new((0u64, generation_secret(0)));
    let stop = AtomicBool::new(false);
    let verified = AtomicUsize::new(0);
    let deadline = Instant::now() + BUDGET;

    let results: Vec<(usize, usize, Vec<String>)> = thread::scope(|s| {
        let workers: Vec<_> = (0..VERIFIERS)
            .map(|_| {
                s.spawn(|| {
                    let (mut current, mut grace, mut failures) = (0, 0, Vec::new());
                    let mut signer = (u64::MAX, None::<Signer>);
                    loop {
                        // Read the flag first, so one full round runs after the last rotation.
                        let last_round = stop.load(Ordering::SeqCst) || Instant::now() > deadline;
                        let (generation, secret) = published.lock().unwrap().clone();
                        if signer.0 != generation {
                            signer = (generation, Some(Signer::new(StandardWebhooks, secret)));
                        }
                        let headers = signer.1.as_ref().unwrap().sign(BODY).unwrap();
                        match verifier.verify(&headers, BODY) {
                            Ok(v) => {
                                assert_eq!(v.key_id(), &generation_id(generation));
                                match v.role() {
                                    KeyRole::Current => current += 1,
                                    KeyRole::Grace => grace += 1,
                                }
                            }
                            Err(e) => failures.push(format!("generation {generation}: {e}")),
                        }
                        verified.fetch_add(1, Ordering::SeqCst);
                        if last_round {
                            break;
                        }
                    }
                    (current, grace, failures)
                })
            })
            .collect();

        s.spawn(|| {
            for generation in 1..=ROTATIONS {
                let rotation = keyring
                    .rotate_with_id(
                        generation_id(generation),
                        generation_secret(generation),
                        Duration::from_secs(60),
                    )
                    .unwrap();
                assert_eq!(rotation.old_key, generation_id(generation - 1));
                *published.lock().unwrap() = (generation, generation_secret(generation));
                let_verifiers_run(&verified, VERIFIERS, deadline);
            }
            stop.store(true, Ordering::SeqCst);
        })
        .join()
        .unwrap();

        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    let failures: Vec<_> = results.iter().flat_map(|r| r.2.iter()).collect();
    assert!(failures.is_empty(), "false rejections: {failures:?}");
    let total: usize = results.iter().map(|r| r.0 + r.1).sum();
    assert!(total >= VERIFIERS, "verifiers did not run");
    assert_eq!(keyring.current_id(), generation_id(ROTATIONS));
    assert_eq!(keyring.keys().len(), ROTATIONS as usize + 1);
}

#[test]
fn rotation_with_grace_zero_never_accepts_a_retired_secret_after_rotate_returns() {
    let keyring = Keyring::builder()
        .key_id(generation_id(1))
        .build(generation_secret(1));
    let verifier = Verifier::new(StandardWebhooks, keyring.clone());
    // Generations are numbered from 1; the keyring starts at generation 1.
    let signers: Vec<Signer> = (0..=ROTATIONS + 1)
        .map(|g| Signer::new(StandardWebhooks, generation_secret(g)))
        .collect();
    // Every generation <= `retired` was rotated away by a `rotate` call that had returned.
    let retired = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let verified = AtomicUsize::new(0);
    let deadline = Instant::now() + BUDGET;

    #[derive(Default)]
    struct Tally {
        accepted: usize,
        rejected: usize,
        violations: Vec<String>,
    }

    let tallies: Vec<Tally> = thread::scope(|s| {
        let workers: Vec<_> = (0..VERIFIERS)
            .map(|worker| {
                let (retired, stop, verified, verifier, signers) =
                    (&retired, &stop, &verified, &verifier, &signers);
                s.spawn(move || {
                    let mut tally = Tally::default();
                    let mut step = worker as u64;
                    loop {
                        let last_round = stop.load(Ordering::SeqCst) || Instant::now() > deadline;
                        // Read BEFORE verifying: any generation <= this was retired before the
                        // verification started, so accepting it is a violation.
                        let retired_before = retired.load(Ordering::SeqCst);
                        // Sign with the last retired, the current, or the next generation.
                        let generation = (retired_before + step % 3).clamp(1, ROTATIONS + 1);
                        step += 1;
                        let headers = signers[generation as usize].sign(BODY).unwrap();
                        match verifier.verify(&headers, BODY) {
                            Ok(v) => {
                                tally.accepted += 1;
                                if v.key_id() != &generation_id(generation) {
                                    tally.violations.push(format!(
                                        "generation {generation} verified as {}",
                                        v.key_id()
                                    ));
                                }
                                if generation <= retired_before {
                                    tally.violations.push(format!(
                                        "generation {generation} accepted after it was retired \
                                         (retired up to {retired_before})"
                                    ));
                                }
                            }
                            Err(_) => tally.rejected += 1,
                        }
                        verified.fetch_add(1, Ordering::SeqCst);
                        if last_round {
                            break;
                        }
                    }
                    tally
                })
            })
            .collect();

        s.spawn(|| {
            for generation in 2..=ROTATIONS + 1 {
                let rotation = keyring
                    .rotate_with_id(
                        generation_id(generation),
                        generation_secret(generation),
                        Duration::ZERO,
                    )
                    .unwrap();
                assert_eq!(rotation.old_key, generation_id(generation - 1));
                assert_eq!(rotation.old_expires_at, None);
                // Only now has `rotate` returned: the previous generation is retired.
                retired.store(generation - 1, Ordering::SeqCst);
                let_verifiers_run(&verified, VERIFIERS, deadline);
            }
            stop.store(true, Ordering::SeqCst);
        })
        .join()
        .unwrap();

        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    let violations: Vec<_> = tallies.iter().flat_map(|t| t.violations.iter()).collect();
    assert!(violations.is_empty(), "violations: {violations:?}");
    let accepted: usize = tallies.iter().map(|t| t.accepted).sum();
    let rejected: usize = tallies.iter().map(|t| t.rejected).sum();
    assert!(accepted > 0, "no delivery was ever accepted");
    assert!(rejected > 0, "no retired secret was ever tried");
    assert_eq!(keyring.current_id(), generation_id(ROTATIONS + 1));
    assert_eq!(keyring.keys().len(), 1);
}

#[test]
fn concurrent_rotations_from_many_threads_never_lose_one() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 50;
    const TOTAL: usize = THREADS * PER_THREAD;

    let first = KeyId::new("initial");
    let keyring = Keyring::builder()
        .max_grace(Duration::from_secs(24 * 3600))
        .max_keys(TOTAL + 1)
        .key_id(first.clone())
        .build(generation_secret(0));
    let deadline = Instant::now() + BUDGET;

    let per_thread: Vec<Vec<(KeyId, KeyId)>> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let keyring = &keyring;
                s.spawn(move || {
                    let mut mine = Vec::with_capacity(PER_THREAD);
                    for i in 0..PER_THREAD {
                        assert!(Instant::now() < deadline, "rotations too slow");
                        let n = (t * PER_THREAD + i + 1) as u64;
                        let secret = generation_secret(n);
                        let rotation = keyring.rotate(secret, Duration::from_secs(3600)).unwrap();
                        assert!(rotation.old_expires_at.is_some());
                        mine.push((rotation.old_key, rotation.new_key));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let keys = keyring.keys();
    assert_eq!(keys.len(), TOTAL + 1, "a rotation was lost");
    let listed: Vec<KeyId> = keys.iter().map(|k| k.id.clone()).collect();
    assert_eq!(keys[0].role, KeyRole::Current);
    assert!(keys[1..].iter().all(|k| k.role == KeyRole::Grace));
    assert!(keys[1..].iter().all(|k| k.expires_at.is_some()));
    assert_eq!(listed.iter().collect::<HashSet<_>>().len(), TOTAL + 1);

    // Each rotation replaced exactly the key that was current when it was published: the
    // old→new links form one chain from the initial key through every new key.
    let mut next: HashMap<KeyId, KeyId> = HashMap::new();
    for (old, new) in per_thread.iter().flatten() {
        assert!(
            next.insert(old.clone(), new.clone()).is_none(),
            "{old} was rotated away twice"
        );
    }
    let mut chain = vec![first.clone()];
    while let Some(n) = next.get(chain.last().unwrap()) {
        chain.push(n.clone());
        assert!(chain.len() <= TOTAL + 1, "cycle in rotation chain");
    }
    assert_eq!(chain.len(), TOTAL + 1, "rotation chain is broken");
    assert_eq!(keyring.current_id(), *chain.last().unwrap());
    // The listing is that chain, newest first.
    chain.reverse();
    assert_eq!(listed, chain);

    // Each thread's own rotations appear in the order it made them.
    for mine in &per_thread {
        let positions: Vec<usize> = mine
            .iter()
            .map(|(_, new)| listed.iter().position(|id| id == new).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] > w[1]), "{positions:?}");
    }
}
