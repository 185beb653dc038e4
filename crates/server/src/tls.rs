//! HTTPS: a certificate given on the command line, or one the server makes at
//! first start from a CA of its own, kept in `DATA_DIR/tls`. Agents trust that
//! CA with `patchwell-agent enroll --ca-cert DATA_DIR/tls/ca.pem`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::{create_private_dir, write_private};

/// The files of the server's own CA and certificate.
#[derive(Debug, Clone)]
pub struct GeneratedFiles {
    /// The CA certificate, for agents to trust.
    pub ca_cert: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// Makes the CA and the server certificate in `DATA_DIR/tls` unless they
/// exist. The certificate names `localhost`, the loopback addresses, this
/// machine's host name, the listen address, and `extra_names`.
pub fn ensure_generated(
    data_dir: &Path,
    listen: IpAddr,
    extra_names: &[String],
) -> anyhow::Result<GeneratedFiles> {
    let dir = data_dir.join("tls");
    let files = GeneratedFiles {
        ca_cert: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    if files.ca_cert.exists() && files.cert.exists() && files.key.exists() {
        // Made at an earlier start: it must still name what this start
        // asks for, or agents would refuse it.
        let (missing, listen_missing) = not_named(&files.cert, listen, extra_names)?;
        if listen_missing {
            // Agents may reach it by a name it holds: told, not refused.
            tracing::warn!(
                "{} does not name the listen address {listen}; agents that reach the server by \
                 that address will refuse it (give --tls-name, or move {} away to make a new one)",
                files.cert.display(),
                dir.display()
            );
        }
        if !missing.is_empty() {
            anyhow::bail!(
                "{} was made at an earlier start and does not name {}. Its CA's key was not \
                 kept, so it cannot be signed again: move {} away to make a new CA and \
                 certificate at this start (agents then enroll again with the new ca.pem), \
                 or give a certificate with --tls-cert and --tls-key",
                files.cert.display(),
                missing.join(", "),
                dir.display()
            );
        }
        return Ok(files);
    }
    create_private_dir(data_dir)?;
    create_private_dir(&dir)?;

    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "Patchwell server CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = rcgen::date_time_ymd(2024, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2044, 1, 1);
    let ca_cert = ca
        .self_signed(&ca_key)
        .context("signing the CA certificate")?;

    let mut names = vec!["localhost".to_owned()];
    let hostname = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    if !hostname.is_empty() {
        names.push(hostname);
    }
    names.extend(extra_names.iter().cloned());
    let mut leaf =
        CertificateParams::new(names).context("a host name for the certificate is not valid")?;
    for ip in ["127.0.0.1".parse::<IpAddr>()?, "::1".parse()?, listen] {
        if !ip.is_unspecified() {
            leaf.subject_alt_names.push(SanType::IpAddress(ip));
        }
    }
    leaf.distinguished_name
        .push(DnType::CommonName, "Patchwell server");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = rcgen::date_time_ymd(2024, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let leaf_key = KeyPair::generate().context("generating the server key")?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .context("signing the server certificate")?;

    write_private(&files.key, &leaf_key.serialize_pem())?;
    write_private(&files.cert, &leaf_cert.pem())?;
    // The CA's own key is not kept: nothing signs with it again, so nothing
    // can be made to look like this server if the data directory leaks.
    write_private(&files.ca_cert, &ca_cert.pem())?;
    Ok(files)
}

/// Which of `names` the certificate in `cert` does not name, and whether it
/// does not name `listen` (an unspecified address is never missing).
fn not_named(cert: &Path, listen: IpAddr, names: &[String]) -> anyhow::Result<(Vec<String>, bool)> {
    use x509_parser::extensions::GeneralName;
    let bytes = std::fs::read(cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a PEM certificate: {e}", cert.display()))?;
    let parsed = pem
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("{} is not a certificate: {e}", cert.display()))?;
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        ips.push(IpAddr::from(a));
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        ips.push(IpAddr::from(a));
                    }
                }
                _ => {}
            }
        }
    }
    let missing: Vec<String> = names
        .iter()
        .filter(|n| match n.parse::<IpAddr>() {
            Ok(ip) => !ips.contains(&ip),
            Err(_) => !dns.contains(&n.to_ascii_lowercase()),
        })
        .cloned()
        .collect();
    Ok((missing, !listen.is_unspecified() && !ips.contains(&listen)))
}

/// A rustls server configuration from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and the key do not belong together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_made_earlier_must_name_what_a_later_start_asks_for() {
        let dir = std::env::temp_dir().join(format!("patchwell-tls-names-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let names = vec!["patch.example.org".to_owned(), "10.9.8.7".to_owned()];
        let first = ensure_generated(&dir, loopback, &names).unwrap();
        let made = std::fs::read(&first.cert).unwrap();
        // The same names again, or fewer: the same files. A listen address
        // it does not hold is only warned of (agents may use a name).
        ensure_generated(&dir, loopback, &names).unwrap();
        ensure_generated(&dir, "10.9.8.7".parse().unwrap(), &names[..1]).unwrap();
        ensure_generated(&dir, "0.0.0.0".parse().unwrap(), &[]).unwrap();
        ensure_generated(&dir, "192.0.2.4".parse().unwrap(), &[]).unwrap();
        // A name asked for that it does not hold: refused, saying which and
        // what to do, and nothing is replaced.
        let e = ensure_generated(
            &dir,
            loopback,
            &[
                "PATCH.example.org".into(),
                "other.example.org".into(),
                "192.0.2.9".into(),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("does not name other.example.org, 192.0.2.9."),
            "{e}"
        );
        assert!(e.contains("--tls-cert"), "{e}");
        assert_eq!(std::fs::read(&first.cert).unwrap(), made);
        std::fs::remove_dir_all(&dir).ok();
    }
}
