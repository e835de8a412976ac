//! Forwarding to an `https` upstream: TLS with the system's roots and those of
//! `--upstream-ca-file`; an upstream whose certificate is not trusted gets nothing.

mod gateway_support;

use std::path::Path;
use std::sync::Arc;

use gateway_support::{client, data_dir, deliver, spawn, Behaviour, Upstream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A self-signed certificate for `127.0.0.1` and `localhost`, made with
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500
/// -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost"`.
const CERT: &str = "tests/data/gateway_tls/cert.pem";
const KEY: &str = "tests/data/gateway_tls/key.pem";

fn acceptor() -> tokio_rustls::TlsAcceptor {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(root.join(CERT))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(root.join(KEY)).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_get_the_delivery_over_tls_only_with_a_trusted_certificate() {
    let upstream = Upstream::start_tls(
        Behaviour::Answer(200, vec![], b"over tls".to_vec()),
        true,
        acceptor(),
    )
    .await;
    let url = format!("https://{}/hooks", upstream.addr);
    let client = client();
    let body = br#"{"type":"ping"}"#;

    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join(CERT);
    let data = data_dir("tls");
    let serve = spawn(
        &data,
        &[
            "--upstream-allow",
            "127.0.0.1",
            "--upstream-ca-file",
            ca.to_str().unwrap(),
        ],
    );
    serve
        .set_upstream(&client, &serve.project, &url, false)
        .await;
    let answer = deliver(
        &client,
        &serve,
        &serve.project,
        &serve.signing_secret,
        body,
        &[],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(&answer.body[..], b"over tls");
    assert_eq!(upstream.last().body, body);
    drop(serve);

    // Without the CA: the handshake fails, nothing is sent.
    let untrusted = data_dir("tls-untrusted");
    let serve = spawn(&untrusted, &["--upstream-allow", "127.0.0.1"]);
    serve
        .set_upstream(&client, &serve.project, &url, false)
        .await;
    let answer = deliver(
        &client,
        &serve,
        &serve.project,
        &serve.signing_secret,
        body,
        &[],
    )
    .await;
    assert_eq!(answer.status, 502);
    assert_eq!(
        answer.json()["type"],
        "tag:webhook-guard,2026:upstream-unavailable"
    );
    assert_eq!(upstream.count(), 1);
    for dir in [data, untrusted] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
