//! Secrets: generated from the operating system's random source, shown once,
//! stored only as SHA-256 hashes. They carry 256 bits of entropy, so a fast
//! hash is enough; there is nothing to guess.

use sha2::{Digest, Sha256};

/// A new random secret as lower-case hex, `bytes` long before encoding.
pub(crate) fn generate(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    Ok(hex(&buf))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash that is stored and looked up.
pub(crate) fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
