//! Forwarding while the project's secret is regenerated with grace every 50 ms: no delivery
//! signed with a live secret is refused, none is lost, none arrives twice.

mod gateway_support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use gateway_support::{client, data_dir, deliver, spawn, Behaviour, Upstream};
use http::Method;

/// Deliveries sent; lower it if CI time needs it, but keep it well above the rotations' count.
const DELIVERIES: usize = 10_000;
/// Deliveries in flight at once.
const CONCURRENCY: usize = 16;
/// Time between regenerations.
const ROTATE_EVERY: Duration = Duration::from_millis(50);

/// The secret senders sign with, and which generation it is.
struct Current {
    generation: usize,
    secret: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerating_with_grace_every_50_ms_refuses_and_loses_no_delivery() {
    let upstream = Upstream::start(Behaviour::Answer(204, vec![], Vec::new()), true).await;
    let data = data_dir("rotation");
    let serve = Arc::new(spawn(
        &data,
        &[
            "--upstream-allow",
            "127.0.0.1",
            "--admin-writes-per-second",
            "1000",
            "--admin-write-burst",
            "1000",
        ],
    ));
    let client = client();
    serve
        .set_upstream(&client, &serve.project, &upstream.url(), false)
        .await;
    let current = Arc::new(RwLock::new(Current {
        generation: 0,
        secret: serve.signing_secret.clone(),
    }));
    // Deliveries in flight per generation of the secret they were signed with.
    let in_flight = Arc::new(Mutex::new(vec![0usize]));
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));

    let rotator = {
        let (serve, client, current, in_flight, done) = (
            Arc::clone(&serve),
            client.clone(),
            Arc::clone(&current),
            Arc::clone(&in_flight),
            Arc::clone(&done),
        );
        tokio::spawn(async move {
            let mut rotations = 0usize;
            while done.load(Ordering::SeqCst) < CONCURRENCY {
                tokio::time::sleep(ROTATE_EVERY).await;
                // The previous secret ends only once nothing signed with it is in flight: a
                // sender told of a new secret has stopped using the old one by then.
                let generation = current.read().unwrap().generation;
                while in_flight.lock().unwrap()[..generation]
                    .iter()
                    .any(|&n| n > 0)
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let ended = serve
                    .admin(
                        &client,
                        Method::DELETE,
                        &format!("/v1/external-support/{}/secret/previous", serve.project),
                        serde_json::Value::Null,
                    )
                    .await;
                assert_eq!(ended.status, 200, "{:?}", ended.json());
                let regenerated = serve
                    .admin(
                        &client,
                        Method::POST,
                        &format!("/v1/external-support/{}/secret/regenerate", serve.project),
                        serde_json::json!({"oldSecretValidForSeconds": 60}),
                    )
                    .await;
                assert_eq!(regenerated.status, 200, "{:?}", regenerated.json());
                let secret = regenerated.json()["signingSecret"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let mut now = current.write().unwrap();
                in_flight.lock().unwrap().push(0);
                *now = Current {
                    generation: now.generation + 1,
                    secret,
                };
                rotations += 1;
            }
            rotations
        })
    };

    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..CONCURRENCY {
        let (serve, client, current, in_flight, next, refused, done) = (
            Arc::clone(&serve),
            client.clone(),
            Arc::clone(&current),
            Arc::clone(&in_flight),
            Arc::clone(&next),
            Arc::clone(&refused),
            Arc::clone(&done),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= DELIVERIES {
                    break;
                }
                let (generation, secret) = {
                    let now = current.read().unwrap();
                    in_flight.lock().unwrap()[now.generation] += 1;
                    (now.generation, now.secret.clone())
                };
                let body = format!(r#"{{"n":{n}}}"#);
                let answer = deliver(
                    &client,
                    &serve,
                    &serve.project,
                    &secret,
                    body.as_bytes(),
                    &[],
                )
                .await;
                in_flight.lock().unwrap()[generation] -= 1;
                if answer.status != 204 {
                    refused
                        .lock()
                        .unwrap()
                        .push((n, answer.status, generation, answer.json()));
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    for sender in senders {
        tokio::time::timeout(Duration::from_secs(300), sender)
            .await
            .expect("the deliveries finish in bounded time")
            .unwrap();
    }
    let elapsed = started.elapsed();
    let rotations = rotator.await.unwrap();

    let refused = refused.lock().unwrap();
    assert!(
        refused.is_empty(),
        "{} refused: {:?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    let received = upstream.received.lock().unwrap();
    let unique: HashSet<&[u8]> = received.iter().map(|r| r.body.as_slice()).collect();
    assert_eq!(received.len(), DELIVERIES, "each delivery arrived once");
    assert_eq!(unique.len(), DELIVERIES, "none lost, none twice");
    // The secret really changed under the load, many times.
    let expected = (elapsed.as_millis() / ROTATE_EVERY.as_millis() / 4).max(5) as usize;
    assert!(
        rotations >= expected,
        "{rotations} rotations in {elapsed:?}"
    );
    eprintln!("{DELIVERIES} deliveries, {rotations} regenerations in {elapsed:?}");
    drop(received);
    let _ = std::fs::remove_dir_all(data);
}
