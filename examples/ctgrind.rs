//! Run under valgrind's memcheck by `scripts/ctgrind.sh`: the secret (and so every MAC derived
//! from it) is marked as undefined memory, so memcheck reports every branch or memory index that
//! depends on it ("ctgrind", Langley 2010). The verifier may branch on one secret-derived bit
//! only: whether the signature matched. Everything before that, keying, MACing, comparing,
//! must report nothing.

use http::{HeaderMap, HeaderValue};
use webhook_guard::scheme::{GitHub, StandardWebhooks, Stripe};
use webhook_guard::{Keyring, Secret, Signer, Verifier};

const MEMCHECK_BASE: usize = ((b'M' as usize) << 24) | ((b'C' as usize) << 16);
const MAKE_MEM_UNDEFINED: usize = MEMCHECK_BASE + 1;

/// Tells memcheck that `bytes` hold undefined (here: secret) data. A no-op outside valgrind.
#[cfg(target_arch = "x86_64")]
fn mark_secret(bytes: &[u8]) {
    let args: [usize; 6] = [
        MAKE_MEM_UNDEFINED,
        bytes.as_ptr() as usize,
        bytes.len(),
        0,
        0,
        0,
    ];
    let mut result: usize = 0;
    // SAFETY: valgrind's client-request preamble for amd64 (valgrind.h,
    // VALGRIND_DO_CLIENT_REQUEST_EXPR): four rotations of rdi by 128 bits in all leave it
    // unchanged, and `xchg rbx, rbx` is a no-op, so outside valgrind nothing happens; under
    // valgrind it reads the six words at rax and writes its answer to rdx.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            inout("rdi") 0usize => _,
            options(nostack),
        );
    }
    let _ = result;
}

#[cfg(not(target_arch = "x86_64"))]
fn mark_secret(_: &[u8]) {
    eprintln!("ctgrind: client requests are only wired for x86_64; nothing is marked");
}

fn main() {
    let body = br#"{"event":"ctgrind"}"#;
    let mut matched = 0;
    let mut refused = 0;
    for (round, key) in [[7u8; 32], [0x5a; 32]].into_iter().enumerate() {
        // Sign with a defined copy, then hand the verifier an undefined one.
        let good = Signer::new(GitHub, Secret::from_bytes(key).unwrap())
            .sign(body)
            .unwrap();
        let standard = Signer::new(StandardWebhooks, Secret::from_bytes(key).unwrap())
            .sign(body)
            .unwrap();
        let stripe = Signer::new(Stripe, Secret::from_bytes(key).unwrap())
            .sign(body)
            .unwrap();
        let secret_copy = std::hint::black_box(key);
        mark_secret(&secret_copy);
        if std::env::var_os("CTGRIND_SELF_TEST").is_some()
            && std::hint::black_box(secret_copy[0]) == 7
        {
            // A deliberate branch on the secret: memcheck must report it.
            println!("self-test branch taken");
        }
        let keyring = Keyring::new(Secret::from_bytes(secret_copy).unwrap());
        let mut forged = HeaderMap::new();
        let wrong = format!("sha256={}", "ab".repeat(32));
        forged.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(&wrong).unwrap(),
        );
        for headers in [&good, &forged] {
            match Verifier::new(GitHub, keyring.clone()).verify(headers, body) {
                Ok(_) => matched += 1,
                Err(_) => refused += 1,
            }
        }
        match Verifier::new(StandardWebhooks, keyring.clone()).verify(&standard, body) {
            Ok(_) => matched += 1,
            Err(_) => refused += 1,
        }
        match Verifier::new(Stripe, keyring).verify(&stripe, body) {
            Ok(_) => matched += 1,
            Err(_) => refused += 1,
        }
        println!("round {round}: {matched} matched, {refused} refused");
    }
    assert_eq!((matched, refused), (6, 2));
}
