//! TLS client settings shared by the gateway's `https` upstreams and the PostgreSQL
//! connections (store, change feed, replay guard): rustls with aws-lc-rs, the system's roots
//! and the operator's own.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;

/// A rustls client configuration trusting the system's roots (those that can be read) and
/// `extra`, with the safe default protocol versions and no client certificate.
pub(crate) fn client_config(
    extra: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a system root certificate could not be read");
    }
    roots.add_parsable_certificates(native.certs);
    for cert in extra {
        roots.add(cert.clone())?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// How PostgreSQL connections made from `config` use TLS: with `sslmode=require` the server's
/// certificate is verified against the system's roots and `extra`, and its name against the
/// host connected to (what libpq calls `verify-full`); otherwise (`disable`, or `prefer`,
/// the default) no TLS is used, since TLS whose certificate goes unchecked stops no one who
/// can intercept the connection. `config`'s `prefer` is made `disable` to say so.
#[cfg(feature = "postgres")]
pub(crate) fn postgres(
    config: &mut tokio_postgres::Config,
    extra: &[CertificateDer<'static>],
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, rustls::Error> {
    use tokio_postgres::config::SslMode;
    if config.get_ssl_mode() != SslMode::Require {
        config.ssl_mode(SslMode::Disable);
    }
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
        client_config(extra)?,
    ))
}
