//! The advisory catalog's model: what an advisory says, in one shape for
//! every feed (OSV, Debian's DSA/DLA lists, Alpine secdb, Patchwell vendor
//! feeds), plus the facts that enrich it by CVE (CISA KEV, EPSS).
//!
//! The model follows OSV closely, because OSV is the richest of the formats
//! and the others map into it without loss: an advisory affects packages of an
//! [`Ecosystem`] (a distribution release such as `Debian:12`), through ranges
//! of events (`introduced`, `fixed`, `last_affected`, `limit`).

use std::fmt;

use jiff::civil::Date;
use jiff::Timestamp;

/// A distribution release, or a third-party vendor's packages, as OSV names
/// them: `Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.20`, `Rocky Linux:9`.
///
/// Two ecosystems match only when their names are equal: `Debian:12` never
/// matches `Debian:11`, `Ubuntu:22.04:LTS` or `Alpine:v3.20`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ecosystem {
    name: String,
    scheme: versions::Ecosystem,
}

/// Distributions whose OSV ecosystem names Patchwell understands, with the
/// version rules of their package manager.
const DISTRIBUTIONS: &[(&str, versions::Ecosystem)] = &[
    ("Debian", versions::Ecosystem::Deb),
    ("Ubuntu", versions::Ecosystem::Deb),
    ("Alpine", versions::Ecosystem::Apk),
    ("Wolfi", versions::Ecosystem::Apk),
    ("Chainguard", versions::Ecosystem::Apk),
    ("Rocky Linux", versions::Ecosystem::Rpm),
    ("AlmaLinux", versions::Ecosystem::Rpm),
    ("Red Hat", versions::Ecosystem::Rpm),
    ("SUSE", versions::Ecosystem::Rpm),
    ("openSUSE", versions::Ecosystem::Rpm),
    ("Mageia", versions::Ecosystem::Rpm),
    ("openEuler", versions::Ecosystem::Rpm),
];

/// The prefix of the ecosystems of Patchwell vendor feeds: `Vendor:dpkg`
/// matches every host whose dpkg database has the package.
pub const VENDOR_PREFIX: &str = "Vendor:";

/// An ecosystem name that Patchwell does not know the version rules of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ecosystem {0:?}: expected a distribution release such as \"Debian:12\", \"Ubuntu:22.04:LTS\" or \"Alpine:v3.20\"")]
pub struct UnknownEcosystem(pub String);

impl Ecosystem {
    /// Reads an OSV ecosystem name. Language ecosystems (npm, PyPI, ...) are
    /// not host package managers and are refused.
    pub fn parse(name: &str) -> Result<Ecosystem, UnknownEcosystem> {
        let name = name.trim();
        if let Some(manager) = name.strip_prefix(VENDOR_PREFIX) {
            let scheme = match manager {
                "dpkg" => versions::Ecosystem::Deb,
                "rpm" => versions::Ecosystem::Rpm,
                "apk" => versions::Ecosystem::Apk,
                _ => return Err(UnknownEcosystem(name.to_owned())),
            };
            return Ok(Ecosystem {
                name: name.to_owned(),
                scheme,
            });
        }
        let distro = name.split(':').next().unwrap_or(name);
        DISTRIBUTIONS
            .iter()
            .find(|(d, _)| *d == distro)
            .map(|&(_, scheme)| Ecosystem {
                name: name.to_owned(),
                scheme,
            })
            .ok_or_else(|| UnknownEcosystem(name.to_owned()))
    }

    /// The ecosystem of a host, from its os-release `ID` and `VERSION_ID`:
    /// `debian` `12` is `Debian:12`, `ubuntu` `22.04` is `Ubuntu:22.04:LTS`,
    /// `alpine` `3.20.3` is `Alpine:v3.20`. None for a release OSV has no
    /// name for (Debian testing has no `VERSION_ID`).
    pub fn of_host(os_id: &str, version_id: Option<&str>) -> Option<Ecosystem> {
        let version = version_id?.trim();
        if version.is_empty() {
            return None;
        }
        let major = version.split('.').next().unwrap_or(version);
        let major_minor = {
            let mut parts = version.split('.');
            match (parts.next(), parts.next()) {
                (Some(a), Some(b)) => format!("{a}.{b}"),
                _ => version.to_owned(),
            }
        };
        let name = match os_id {
            "debian" => format!("Debian:{major}"),
            "ubuntu" => {
                // LTS releases are the April releases of even years.
                let lts =
                    major.parse::<u32>().is_ok_and(|y| y % 2 == 0) && major_minor.ends_with(".04");
                if lts {
                    format!("Ubuntu:{major_minor}:LTS")
                } else {
                    format!("Ubuntu:{major_minor}")
                }
            }
            "alpine" => format!("Alpine:v{major_minor}"),
            "rocky" => format!("Rocky Linux:{major}"),
            "almalinux" => format!("AlmaLinux:{major}"),
            "opensuse-leap" => format!("openSUSE:Leap {major_minor}"),
            _ => return None,
        };
        Ecosystem::parse(&name).ok()
    }

    /// The vendor ecosystem of a package manager's packages.
    pub fn vendor(scheme: versions::Ecosystem) -> Ecosystem {
        let manager = match scheme {
            versions::Ecosystem::Deb => "dpkg",
            versions::Ecosystem::Rpm => "rpm",
            versions::Ecosystem::Apk => "apk",
        };
        Ecosystem {
            name: format!("{VENDOR_PREFIX}{manager}"),
            scheme,
        }
    }

    /// The name, as OSV writes it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whose version rules apply.
    pub fn scheme(&self) -> versions::Ecosystem {
        self.scheme
    }

    /// Whether this is a vendor feed's ecosystem rather than a distribution's.
    pub fn is_vendor(&self) -> bool {
        self.name.starts_with(VENDOR_PREFIX)
    }

    /// Whether the name carries a release (`Debian:12`, not `Debian`). An
    /// advisory for a release-less ecosystem matches no host: Patchwell
    /// never guesses the release.
    pub fn has_release(&self) -> bool {
        self.is_vendor() || self.name.contains(':')
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// One event of an OSV range. Versions are as the feed wrote them; the index
/// checks them against the ecosystem's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Affected from this version on (`0`: from the beginning).
    Introduced(String),
    /// Fixed in this version.
    Fixed(String),
    /// The last affected version, when no fix is known.
    LastAffected(String),
    /// Versions from here on are out of this range's concern.
    Limit(String),
}

impl Event {
    /// The version the event names.
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// Whether an affected entry names a source package or a binary package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PackageKind {
    /// A source package (Debian, Ubuntu, Alpine origin): every binary built
    /// from it is affected, compared by its source version.
    Source,
    /// A binary package (rpm distributions, vendor feeds).
    Binary,
}

/// The packages of one ecosystem that an advisory affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    /// Where.
    pub ecosystem: Ecosystem,
    /// The package name.
    pub package: String,
    /// Whether `package` is a source or a binary package.
    pub kind: PackageKind,
    /// Ranges; a version is affected when any range says so.
    pub ranges: Vec<Vec<Event>>,
    /// Versions listed one by one as affected (OSV `versions`).
    pub versions: Vec<String>,
    /// The binary packages the fix ships in, when the feed lists them
    /// (Ubuntu); empty means every binary of the source.
    pub binaries: Vec<String>,
}

/// A vendor's own severity rating, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Negligible or unimportant.
    Negligible,
    /// Low.
    Low,
    /// Medium (also "moderate").
    Medium,
    /// High (also "important").
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Negligible,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Reads the words vendors use (case does not matter).
    pub fn parse(word: &str) -> Option<Severity> {
        match word.trim().to_ascii_lowercase().as_str() {
            "negligible" | "unimportant" | "none" | "informational" => Some(Severity::Negligible),
            "low" => Some(Severity::Low),
            "medium" | "moderate" => Some(Severity::Medium),
            "high" | "important" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Negligible => "negligible",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The qualitative rating of a CVSS score (FIRST's table).
    pub fn of_cvss(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Negligible
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of update an advisory ships, in the terms Windows-era tools made
/// common and auditors still ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpdateType {
    /// Fixes a security vulnerability.
    SecurityUpdate,
    /// Fixes a critical, non-security bug.
    CriticalUpdate,
    /// Fixes a non-critical bug.
    Update,
    /// A fix for one problem, shipped outside the normal cycle.
    Hotfix,
    /// A tested bundle of earlier updates.
    UpdateRollup,
    /// A cumulative set of all updates, possibly with new features.
    ServicePack,
    /// New features.
    FeaturePack,
}

impl UpdateType {
    /// Every type, in a stable order.
    pub const ALL: [UpdateType; 7] = [
        UpdateType::SecurityUpdate,
        UpdateType::CriticalUpdate,
        UpdateType::Update,
        UpdateType::Hotfix,
        UpdateType::UpdateRollup,
        UpdateType::ServicePack,
        UpdateType::FeaturePack,
    ];

    /// The kebab-case name used in feeds and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateType::SecurityUpdate => "security-update",
            UpdateType::CriticalUpdate => "critical-update",
            UpdateType::Update => "update",
            UpdateType::Hotfix => "hotfix",
            UpdateType::UpdateRollup => "update-rollup",
            UpdateType::ServicePack => "service-pack",
            UpdateType::FeaturePack => "feature-pack",
        }
    }

    /// Reads a name written by [`UpdateType::as_str`], or its words with spaces.
    pub fn parse(name: &str) -> Option<UpdateType> {
        let wanted = name.trim().to_ascii_lowercase().replace(' ', "-");
        UpdateType::ALL.into_iter().find(|t| t.as_str() == wanted)
    }
}

impl fmt::Display for UpdateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CVSS vector and, for version 3, its base score.
#[derive(Debug, Clone, PartialEq)]
pub struct Cvss {
    /// The vector as given (`CVSS:3.1/AV:N/AC:L/...`).
    pub vector: String,
    /// The base score, computed from the vector (CVSS 3.x) or as given.
    pub score: Option<f64>,
}

/// Where an advisory came from: every advisory records its source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The configured feed's name.
    pub feed: String,
    /// The file, or URL, it was read from.
    pub location: String,
    /// When the feed was fetched and verified.
    pub fetched_at: Option<Timestamp>,
    /// The SHA-256 of what was verified, in hex.
    pub sha256: String,
}

/// How a vendor feed's update is downloaded and installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorPackage {
    /// The vendor (`Google`).
    pub vendor: String,
    /// The product (`Chrome`).
    pub product: String,
    /// Where the installer is.
    pub download_url: String,
    /// Its SHA-256, in hex, checked before it runs.
    pub download_sha256: String,
    /// The silent install command.
    pub install: String,
    /// The silent uninstall command.
    pub uninstall: String,
}

/// One advisory: a vendor's statement that some versions of some packages
/// are affected by something, and which versions fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    /// Its identifier (`DSA-5380-1`, `USN-2341-1`, `CVE-2024-3094`).
    pub id: String,
    /// Other identifiers of the same problem (CVEs).
    pub aliases: Vec<String>,
    /// A one-line title.
    pub title: String,
    /// A longer description, possibly empty.
    pub summary: String,
    /// The vendor's severity, when it gives one.
    pub severity: Option<Severity>,
    /// CVSS, when given.
    pub cvss: Option<Cvss>,
    /// When it was published.
    pub published: Option<Timestamp>,
    /// When it last changed.
    pub modified: Option<Timestamp>,
    /// When it was withdrawn; a withdrawn advisory never applies.
    pub withdrawn: Option<Timestamp>,
    /// What it affects.
    pub affected: Vec<Affected>,
    /// What kind of update fixes it.
    pub update_type: UpdateType,
    /// Links to read more.
    pub references: Vec<String>,
    /// For a vendor feed: how to get and install the fix.
    pub vendor_package: Option<VendorPackage>,
    /// Where it came from.
    pub origin: Origin,
}

impl Advisory {
    /// Whether it is a security advisory: what it applies to is a finding.
    /// Any other update type (an ordinary suite's newer version) is an
    /// available update.
    pub fn is_security(&self) -> bool {
        self.update_type == UpdateType::SecurityUpdate
    }

    /// The CVE identifiers among its id and aliases.
    pub fn cves(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .filter(|id| id.starts_with("CVE-"))
    }

    /// A minimal advisory with one id and nothing else, for feeds to fill in.
    pub fn new(id: impl Into<String>, update_type: UpdateType) -> Advisory {
        Advisory {
            id: id.into(),
            aliases: Vec::new(),
            title: String::new(),
            summary: String::new(),
            severity: None,
            cvss: None,
            published: None,
            modified: None,
            withdrawn: None,
            affected: Vec::new(),
            update_type,
            references: Vec::new(),
            vendor_package: None,
            origin: Origin::default(),
        }
    }
}

/// A CVE in CISA's Known Exploited Vulnerabilities catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KevEntry {
    /// The CVE.
    pub cve: String,
    /// Vendor and product, as CISA names them.
    pub vendor_project: String,
    /// The product.
    pub product: String,
    /// CISA's name for the vulnerability.
    pub name: String,
    /// When CISA added it.
    pub date_added: Date,
    /// The remediation deadline CISA set for federal agencies.
    pub due_date: Option<Date>,
    /// Whether it is known to be used in ransomware campaigns.
    pub ransomware: bool,
}

/// A CVE's EPSS score: the probability of exploitation in the next 30 days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epss {
    /// The probability, 0 to 1.
    pub score: f64,
    /// Its percentile among all scored CVEs, 0 to 1.
    pub percentile: f64,
}

/// A malformed record a feed contained: reported, skipped, and the rest
/// imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The file (or feed location) it was in.
    pub file: String,
    /// The record's identifier, or its position when it has none.
    pub record: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: record {}: {}", self.file, self.record, self.reason)
    }
}
