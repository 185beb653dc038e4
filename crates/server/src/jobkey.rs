//! The server's job key: the ed25519 key every job is signed with. Agents
//! receive its public half at enrollment and run nothing it did not sign.

use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use protocol::job::{Job, SignedJob};

/// The file in the data directory that holds the secret seed.
pub const JOB_KEY_FILE: &str = "job-signing.key";

const SECRET_PREFIX: &str = "ed25519-secret:";

/// The key jobs are signed with.
pub struct JobKey {
    key: SigningKey,
}

impl std::fmt::Debug for JobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobKey")
            .field("public", &self.public_text())
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    Ok(seed)
}

/// The secret seed of an ed25519 key kept in `path`
/// (`ed25519-secret:<base64>`), or none when there is no such file; `what`
/// names the key in messages.
pub(crate) fn read_seed(path: &Path, what: &str) -> anyhow::Result<Option<[u8; 32]>> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .and_then(|b| BASE64.decode(b).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(Some)
            .with_context(|| {
                format!(
                    "{}: not a {what} ({SECRET_PREFIX}<base64 of 32 bytes>)",
                    path.display()
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The seed in `path`, made at first use (mode 0600) and logged as
/// `created` ("Job signing key").
pub(crate) fn load_or_create_seed(
    path: &Path,
    what: &str,
    created: &str,
) -> anyhow::Result<[u8; 32]> {
    if let Some(seed) = read_seed(path, what)? {
        return Ok(seed);
    }
    let seed = random_seed()?;
    crate::write_private(path, &format!("{SECRET_PREFIX}{}\n", BASE64.encode(seed)))?;
    tracing::info!(file = %path.display(), "{created} created.");
    Ok(seed)
}

impl JobKey {
    /// A key that lives as long as the process (tests).
    pub fn ephemeral() -> anyhow::Result<Self> {
        Ok(JobKey {
            key: SigningKey::from_bytes(&random_seed()?),
        })
    }

    /// The key in `dir`, made at first start (mode 0600). Several servers
    /// sharing one PostgreSQL must be given the same file.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let seed = load_or_create_seed(&dir.join(JOB_KEY_FILE), "job key", "Job signing key")?;
        Ok(JobKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The public half, as agents keep it.
    pub fn public_text(&self) -> String {
        protocol::job::key_text(&self.key.verifying_key())
    }

    /// Signs a job.
    pub fn sign(&self, job: &Job) -> SignedJob {
        job.sign(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_kept_and_read_back() {
        let dir = std::env::temp_dir().join(format!("pw-jobkey-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = JobKey::load_or_create(&dir).unwrap();
        let again = JobKey::load_or_create(&dir).unwrap();
        assert_eq!(first.public_text(), again.public_text());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(JOB_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.join(JOB_KEY_FILE), "garbage").unwrap();
        let err = JobKey::load_or_create(&dir).unwrap_err().to_string();
        assert!(err.contains("not a job key"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
