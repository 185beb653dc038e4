//! Feed formats, parsed into the catalog's types of `patchwell-core`, and
//! the verification of where they came from.
//!
//! A key design decision made in this crate is that a feed is parsed whole
//! before anything of it is used: a file that is not the format it claims to
//! be is an error ([`FeedError`]) and nothing of it enters the catalog, while
//! a single malformed record inside an otherwise good file is reported
//! ([`Rejected`], with file, record and reason) and skipped.
//!
//! Every parser is a pure function of bytes: reading files, directories,
//! zips and URLs happens in [`osv::read_path`] and in the server, verification in [`vendor`] (ed25519)
//! and [`apt`] (OpenPGP `InRelease`).

pub mod alpine_secdb;
pub mod apt;
pub mod debian_tracker;
pub mod debian_tracker_json;
pub mod endoflife;
pub mod epss;
pub mod kev;
pub mod osv;
pub mod vendor;

use patchwell_core::advisory::{Advisory, Rejected};

/// What one feed file gave: its advisories, and the records it skipped.
#[derive(Debug)]
pub struct Parsed<T> {
    /// The good records.
    pub items: Vec<T>,
    /// The malformed records, each with its reason.
    pub rejected: Vec<Rejected>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            items: Vec::new(),
            rejected: Vec::new(),
        }
    }
}

/// Advisories from a feed file.
pub type ParsedAdvisories = Parsed<Advisory>;

/// A feed that cannot be used at all. Nothing of it enters the catalog.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The file is not in the format it claims to be.
    #[error("{file}: not a valid {format} feed: {reason}")]
    Format {
        /// The file or location.
        file: String,
        /// The format expected.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The feed failed verification (digest or signature).
    #[error("{location}: verification failed: {reason}")]
    Verification {
        /// The file or location.
        location: String,
        /// What did not match.
        reason: String,
    },
    /// The feed could not be read.
    #[error("{location}: {reason}")]
    Read {
        /// The file or location.
        location: String,
        /// Why.
        reason: String,
    },
}

/// A [`Rejected`] record.
pub(crate) fn rejected(
    file: &str,
    record: impl Into<String>,
    reason: impl Into<String>,
) -> Rejected {
    Rejected {
        file: file.to_owned(),
        record: record.into(),
        reason: reason.into(),
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
