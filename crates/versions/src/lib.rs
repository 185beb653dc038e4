//! Parse and order package versions exactly as the package managers do: deb as
//! dpkg, rpm as rpm, apk as apk-tools.
//!
//! A key design decision made in this crate is that a parsed version carries a
//! *sort key*: a byte string whose plain lexicographic order is the package
//! manager's order. Parsing does the work once; after that `Ord`, `Eq` and
//! `Hash` are a `memcmp` or a hash of those bytes. Two spellings that the package
//! manager holds equal (`1.0-1` and `1.0000-1` for dpkg) get the same key, so
//! equality is the package manager's while [`std::fmt::Display`] still shows the
//! text as it was written.
//!
//! Each ecosystem also has a direct comparison of two strings
//! ([`deb::compare_str`], [`rpm::compare_str`], [`apk::compare_str`]) that follows
//! the package manager's own algorithm step by step without allocating. The
//! tests hold the two paths to the same answers, and hold both to the package
//! managers themselves.
//!
//! This crate is pure: no clock, no environment, no I/O.
//!
//! ```
//! use std::cmp::Ordering;
//! use versions::{deb, Ecosystem};
//!
//! // Is the installed openssl older than the fixed one?
//! let installed = deb::Version::parse("3.0.11-1~deb12u1")?;
//! let fixed = deb::Version::parse("3.0.11-1~deb12u2")?;
//! assert!(installed < fixed);
//!
//! // Equality is dpkg's, display is the text as given.
//! let a = deb::Version::parse("1.0-1")?;
//! let b = deb::Version::parse("1.0000-1")?;
//! assert_eq!(a, b);
//! assert_eq!(b.to_string(), "1.0000-1");
//!
//! // Strings can be compared directly, for any ecosystem.
//! assert_eq!(versions::compare(Ecosystem::Rpm, "1.0^git1", "1.0")?, Ordering::Greater);
//! assert_eq!(versions::compare(Ecosystem::Apk, "1.0_rc1", "1.0")?, Ordering::Less);
//!
//! // An invalid version says which rule it breaks.
//! let error = versions::validate(Ecosystem::Deb, "1:").unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "invalid deb version \"1:\": nothing after colon in version number"
//! );
//! # Ok::<(), versions::ParseError>(())
//! ```

pub mod apk;
pub mod deb;
mod key;
pub mod rpm;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A packaging ecosystem whose version rules Patchwell knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    /// Debian and derivatives: dpkg's rules.
    Deb,
    /// Red Hat, SUSE and derivatives: rpm's rules.
    Rpm,
    /// Alpine: apk-tools' rules.
    Apk,
}

impl Ecosystem {
    /// Every ecosystem, in a stable order.
    pub const ALL: [Ecosystem; 3] = [Ecosystem::Deb, Ecosystem::Rpm, Ecosystem::Apk];

    /// The short lower-case name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Apk => "apk",
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name given is not one of `deb`, `rpm`, `apk`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ecosystem {0:?}: expected one of deb, rpm, apk")]
pub struct UnknownEcosystem(pub String);

impl FromStr for Ecosystem {
    type Err = UnknownEcosystem;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "deb" => Ok(Ecosystem::Deb),
            "rpm" => Ok(Ecosystem::Rpm),
            "apk" => Ok(Ecosystem::Apk),
            other => Err(UnknownEcosystem(other.to_owned())),
        }
    }
}

/// A version string that its package manager would refuse, with the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {ecosystem} version {version:?}: {rule}")]
pub struct ParseError {
    /// Whose rules were applied.
    pub ecosystem: Ecosystem,
    /// The text as given.
    pub version: String,
    /// The rule it breaks.
    pub rule: Rule,
}

/// The rule an invalid version breaks, per ecosystem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// A dpkg rule.
    #[error(transparent)]
    Deb(#[from] deb::Rule),
    /// An rpm rule.
    #[error(transparent)]
    Rpm(#[from] rpm::Rule),
    /// An apk-tools rule.
    #[error(transparent)]
    Apk(#[from] apk::Rule),
}

impl ParseError {
    fn new(ecosystem: Ecosystem, version: &str, rule: impl Into<Rule>) -> Self {
        ParseError {
            ecosystem,
            version: version.to_owned(),
            rule: rule.into(),
        }
    }
}

/// Compares two version strings of one ecosystem as its package manager does.
///
/// Both must be valid; the error names the first invalid one and its rule.
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Result<Ordering, ParseError> {
    match ecosystem {
        Ecosystem::Deb => deb::compare_str(a, b),
        Ecosystem::Rpm => rpm::compare_str(a, b),
        Ecosystem::Apk => apk::compare_str(a, b),
    }
}

/// Checks that `version` is valid for `ecosystem`, as its package manager decides.
pub fn validate(ecosystem: Ecosystem, version: &str) -> Result<(), ParseError> {
    match ecosystem {
        Ecosystem::Deb => deb::validate(version),
        Ecosystem::Rpm => rpm::validate(version),
        Ecosystem::Apk => apk::validate(version),
    }
}

/// The sort key of `version` under `ecosystem`'s rules: the bytes whose plain
/// order is the package manager's order (see the crate documentation).
pub fn sort_key(ecosystem: Ecosystem, version: &str) -> Result<Vec<u8>, ParseError> {
    Ok(match ecosystem {
        Ecosystem::Deb => deb::Version::parse(version)?.sort_key().to_vec(),
        Ecosystem::Rpm => rpm::Version::parse(version)?.sort_key().to_vec(),
        Ecosystem::Apk => apk::Version::parse(version)?.sort_key().to_vec(),
    })
}

/// A set of bytes as a lookup table: validation runs once per byte of every
/// version Patchwell reads, so it is a table load rather than a search of a
/// list of allowed characters.
pub(crate) struct ByteSet([bool; 256]);

impl ByteSet {
    /// ASCII letters and digits, plus `extra`.
    pub(crate) const fn alphanumeric_and(extra: &[u8]) -> ByteSet {
        let mut set = [false; 256];
        let mut b = 0;
        while b < 256 {
            set[b] = (b as u8).is_ascii_alphanumeric();
            b += 1;
        }
        let mut i = 0;
        while i < extra.len() {
            set[extra[i] as usize] = true;
            i += 1;
        }
        ByteSet(set)
    }

    pub(crate) fn contains(&self, b: u8) -> bool {
        self.0[b as usize]
    }

    /// The first character of `text` outside the set, if any.
    pub(crate) fn first_outside(&self, text: &str) -> Option<char> {
        let at = text.bytes().position(|b| !self.contains(b))?;
        // Every byte of a multi-byte character is outside the (ASCII) set, so
        // `at` is the start of a character.
        text[at..].chars().next()
    }
}

/// Implements the traits that every parsed version type shares: order, equality
/// and hash by sort key, display by original text, parsing by `FromStr`.
macro_rules! keyed_version {
    ($ty:ident) => {
        impl $ty {
            /// The text as it was given.
            pub fn as_str(&self) -> &str {
                &self.text
            }

            /// The sort key: its byte order is the package manager's order.
            pub fn sort_key(&self) -> &[u8] {
                &self.key
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.key == other.key
            }
        }

        impl Eq for $ty {}

        impl PartialOrd for $ty {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $ty {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.key.cmp(&other.key)
            }
        }

        impl std::hash::Hash for $ty {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.key.hash(state)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.text)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::ParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}
pub(crate) use keyed_version;
