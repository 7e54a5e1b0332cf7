//! The certificates an https webhook trusts: the system's bundle (`SSL_CERT_FILE`, or the
//! first of the usual places), read by the delivery thread on its first https attempt, and
//! its `ca_file`, read with the configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where distributions keep their bundle of trusted CAs: Debian and Alpine, Fedora and RHEL,
/// openSUSE, and what the others (and Homebrew-like setups) use.
const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The certificates of a PEM file, each one webpki can use as a trust anchor; an error names
/// the file and says what is wrong with it.
pub fn read_certificates(path: &Path) -> Result<Vec<rustls::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("unable to read {}: {e}", path.display()))?;
    let ders = rustls_pemfile::certs(&mut &pem[..])
        .map_err(|e| format!("{}: not PEM: {e}", path.display()))?;
    if ders.is_empty() {
        return Err(format!(
            "{}: no certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        ));
    }
    let mut store = rustls::RootCertStore::empty();
    let mut certs = Vec::new();
    for der in ders {
        let cert = rustls::Certificate(der);
        store
            .add(&cert)
            .map_err(|e| format!("{}: a certificate Kahi cannot use: {e:?}", path.display()))?;
        certs.push(cert);
    }
    Ok(certs)
}

/// The client configuration, made again only when `ca_file`'s certificates change.
#[derive(Default)]
pub(crate) struct Cache {
    made: Option<(Vec<rustls::Certificate>, Arc<rustls::ClientConfig>)>,
}

impl Cache {
    pub(crate) fn config(
        &mut self,
        ca_certs: &[rustls::Certificate],
    ) -> Result<Arc<rustls::ClientConfig>, String> {
        if let Some((certs, config)) = &self.made
            && certs == ca_certs
        {
            return Ok(Arc::clone(config));
        }
        let config = Arc::new(client_config(ca_certs)?);
        self.made = Some((ca_certs.to_vec(), Arc::clone(&config)));
        Ok(config)
    }
}

fn client_config(ca_certs: &[rustls::Certificate]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .or_else(|| SYSTEM_BUNDLES.iter().map(PathBuf::from).find(|p| p.exists()));
    if let Some(bundle) = &system
        && let Ok(pem) = std::fs::read(bundle)
    {
        // A bundle holds certificates webpki cannot parse now and then: those are skipped.
        roots.add_parsable_certificates(&rustls_pemfile::certs(&mut &pem[..]).unwrap_or_default());
    }
    for cert in ca_certs {
        // Each was added to a store once already, when the configuration was loaded.
        roots.add(cert).map_err(|e| format!("ca_file: {e:?}"))?;
    }
    if roots.is_empty() {
        return Err(
            "no trusted certificate: no system bundle (SSL_CERT_FILE, /etc/ssl/certs/ca-certificates.crt, ...) and no ca_file".into(),
        );
    }
    Ok(rustls::ClientConfig::builder()
        .with_safe_defaults()
        .with_root_certificates(roots)
        .with_no_client_auth())
}
