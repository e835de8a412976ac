//! Does the time to reject a signature depend on where it first differs from the right one?
//! A dudect (Reparaz, Balasch, Verbauwhede 2016) test of the full `Verifier::verify` path:
//! Left = signatures that differ from the expected MAC in their first byte, Right = only in their
//! last byte.
//! |t| < 5 after millions of samples means no detectable leak; `naive_eq` is a plain `==` on
//! 1 KiB slices, the same test's positive control (it leaks, t in the hundreds).
//!
//! ```sh
//! cargo run --release --example constant_time                                  # one pass of each
//! cargo run --release --example constant_time -- --continuous verify_compare  # until stopped
//! ```

use dudect_bencher::rand::RngExt;
use dudect_bencher::{ctbench_main, BenchRng, Class, CtRunner};
use http::{HeaderMap, HeaderValue};
use webhook_guard::scheme::GitHub;
use webhook_guard::{Keyring, Secret, Signer, Verifier};

const SAMPLES: usize = 200_000;

fn verify_compare(runner: &mut CtRunner, rng: &mut BenchRng) {
    let secret = Secret::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
    let signer = Signer::new(GitHub, secret.clone());
    let verifier = Verifier::new(GitHub, Keyring::new(secret));

    // Each sample has its own random body, so the expected MAC is a fresh pseudo-random value and
    // changing one of its bytes yields a uniformly random signature in both classes: the inputs
    // an attacker controls are distributed alike, and only where they differ from the secret MAC
    // depends on the class.
    let mut inputs: Vec<(Class, HeaderMap, Vec<u8>)> = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let mut body = vec![0u8; 64];
        rng.fill(body.as_mut_slice());
        let good = signer.sign(&body).unwrap();
        let good_hex = &good["x-hub-signature-256"].to_str().unwrap()["sha256=".len()..];
        let mut sig = hex::decode(good_hex).unwrap();
        let delta = rng.random_range(1..=255u8);
        let class = if rng.random::<bool>() {
            sig[0] ^= delta;
            Class::Left
        } else {
            sig[31] ^= delta;
            Class::Right
        };
        let mut headers = HeaderMap::new();
        let value = format!("sha256={}", hex::encode(&sig));
        headers.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(&value).unwrap(),
        );
        inputs.push((class, headers, body));
    }
    for (class, headers, body) in inputs {
        runner.run_one(class, || verifier.verify(&headers, &body).is_err());
    }
}

fn naive_eq(runner: &mut CtRunner, rng: &mut BenchRng) {
    let mut a = vec![0u8; 1024];
    rng.fill(a.as_mut_slice());
    let mut inputs = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let mut b = a.clone();
        let class = if rng.random::<bool>() {
            b[0] ^= 1;
            Class::Left
        } else {
            b[1023] ^= 1;
            Class::Right
        };
        inputs.push((class, b));
    }
    for (class, b) in inputs {
        runner.run_one(class, || a == b);
    }
}

ctbench_main!(verify_compare, naive_eq);
