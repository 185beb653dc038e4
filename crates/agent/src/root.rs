//! The file system the collectors read: `/`, or a chroot given with `--root`.

use std::io;
use std::path::{Path, PathBuf};

/// The root directory every collector reads below. Files of the system being
/// inventoried (its dpkg database, os-release, apt lists) are read under it;
/// the kernel's view (`/proc`) is always the running machine's,
/// because a chroot shares the kernel of the machine it runs on.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    /// A root at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root(dir.into())
    }

    /// The root directory itself.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// Whether this is the running system's own root.
    pub fn is_host(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// The path of `absolute` (a path as seen inside the root) from outside.
    pub fn path(&self, absolute: &str) -> PathBuf {
        self.0.join(absolute.trim_start_matches('/'))
    }

    /// Reads a file inside the root; `Ok(None)` when it does not exist.
    pub fn read_optional(&self, absolute: &str) -> io::Result<Option<String>> {
        match std::fs::read_to_string(self.path(absolute)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
