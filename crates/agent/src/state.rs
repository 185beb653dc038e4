//! What an enrolled agent remembers: its server, identity and credential,
//! in one file readable by its owner only.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file in the state directory.
pub const STATE_FILE: &str = "agent.json";

/// An enrolled agent's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// The server's URL.
    pub server: String,
    /// The host's identity.
    pub host_id: String,
    /// The credential, `<host id>.<secret>`.
    pub credential: String,
    /// A CA certificate (PEM) to trust for the server, if not the system's.
    pub ca_cert: Option<String>,
    /// The server's public job key (`ed25519:<base64>`), given at
    /// enrollment: only jobs signed with it run. Agents enrolled before the
    /// server signed jobs have none, and must enroll again to run jobs.
    #[serde(default)]
    pub job_key: Option<String>,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Nothing enrolled yet.
    #[error("{0} does not exist: enroll first with `patchwell-agent enroll`")]
    NotEnrolled(PathBuf),
    /// Already enrolled; enrolling again would orphan the first identity.
    #[error(
        "already enrolled as host {host} with {server} ({file}); remove the file to enroll again"
    )]
    AlreadyEnrolled {
        /// The host id.
        host: String,
        /// The server.
        server: String,
        /// The state file.
        file: PathBuf,
    },
    /// The file is unreadable or damaged.
    #[error("{file}: {why}")]
    Damaged {
        /// The state file.
        file: PathBuf,
        /// Why.
        why: String,
    },
}

/// The file holding the last inventory the server acknowledged.
pub const ACKNOWLEDGED_FILE: &str = "acknowledged-inventory.json";

/// The last inventory the server acknowledged, if the agent kept one that
/// it can still read (a damaged one is as good as none: the server will ask
/// for the full inventory).
pub fn load_acknowledged(dir: &Path) -> Option<protocol::Inventory> {
    let text = std::fs::read_to_string(dir.join(ACKNOWLEDGED_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Keeps `inventory` as the one the server acknowledged, replacing atomically.
pub fn save_acknowledged(dir: &Path, inventory: &protocol::Inventory) -> std::io::Result<()> {
    let tmp = dir.join(format!("{ACKNOWLEDGED_FILE}.tmp"));
    std::fs::write(
        &tmp,
        serde_json::to_vec(inventory).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, dir.join(ACKNOWLEDGED_FILE))
}

/// Reads the enrollment from `dir`.
pub fn load(dir: &Path) -> Result<Enrollment, StateError> {
    let file = dir.join(STATE_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError::NotEnrolled(file))
        }
        Err(e) => {
            return Err(StateError::Damaged {
                file,
                why: e.to_string(),
            })
        }
    };
    serde_json::from_str(&text).map_err(|e| StateError::Damaged {
        file,
        why: e.to_string(),
    })
}

/// Refuses when `dir` already holds an enrollment.
pub fn ensure_not_enrolled(dir: &Path) -> Result<(), StateError> {
    match load(dir) {
        Err(StateError::NotEnrolled(_)) => Ok(()),
        Ok(e) => Err(StateError::AlreadyEnrolled {
            host: e.host_id,
            server: e.server,
            file: dir.join(STATE_FILE),
        }),
        Err(other) => Err(other),
    }
}

/// Writes the enrollment to `dir` (created 0700), the file with mode 0600,
/// replacing atomically.
pub fn save(dir: &Path, enrollment: &Enrollment) -> Result<(), StateError> {
    let file = dir.join(STATE_FILE);
    let damaged = |why: std::io::Error| StateError::Damaged {
        file: file.clone(),
        why: why.to_string(),
    };
    let json =
        serde_json::to_string_pretty(enrollment).map_err(|e| damaged(std::io::Error::other(e)))?;
    create_private_dir(dir).map_err(damaged)?;
    write_private(dir, STATE_FILE, json.as_bytes()).map_err(damaged)
}

/// Creates `dir` readable by its owner only, if it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `dir/name` with mode 0600: to a temporary file, synced, renamed
/// over the old one, and the directory synced, so that a crash leaves the
/// old file or the new one.
pub(crate) fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    out.write_all(bytes)?;
    out.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enrollment_from_before_job_keys_still_loads_without_one() {
        let old =
            r#"{"server":"https://p.example","host_id":"h1","credential":"h1.s","ca_cert":null}"#;
        let e: Enrollment = serde_json::from_str(old).unwrap();
        assert_eq!(e.job_key, None);
        let new = r#"{"server":"https://p.example","host_id":"h1","credential":"h1.s","ca_cert":null,"job_key":"ed25519:AAAA"}"#;
        let e: Enrollment = serde_json::from_str(new).unwrap();
        assert_eq!(e.job_key.as_deref(), Some("ed25519:AAAA"));
    }
}
