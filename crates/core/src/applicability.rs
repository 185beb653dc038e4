//! Applicability: which advisories apply to a host, and why.
//!
//! A *finding* is a host affected by a security advisory (a DSA, DLA, USN,
//! OSV record, signed vendor advisory, a Debian tracker CVE, or a newer
//! version from a security suite). An advisory of any other update type (a
//! newer version from an ordinary suite, a vendor's feature release) that
//! applies is an *available update*: reported apart, never a finding.
//!
//! The [`Index`] holds the catalog with every affected entry indexed by
//! ecosystem and package name, and its range events parsed into sort keys
//! once, so checking a version is a few `memcmp`s. [`Index::evaluate`]
//! checks one host; [`crate::fleet::Fleet`] checks a fleet incrementally.
//!
//! A host's packages are matched three ways:
//! - by **source** package and source version, within the host's own
//!   distribution release (Debian, Ubuntu and Alpine advisories name source
//!   packages; a binNMU `1.0.9-2+b6` is compared as its source `1.0.9-2`);
//! - by **binary** package and version, within the release (rpm
//!   distributions);
//! - by binary package and version against **vendor** feeds
//!   (`Vendor:dpkg`), whatever the release.
//!
//! Removed-but-configured packages are not installed and never match. For
//! kernels, only the running kernel's image counts: a vulnerable running
//! kernel with a fixed image installed beside it is still exposed, until the
//! host reboots ([`Exposure::FixedAwaitingReboot`]).

use std::collections::HashMap;
use std::fmt;

use crate::advisory::{
    Advisory, Ecosystem, Epss, Event, KevEntry, PackageKind, Rejected, Severity,
};
use crate::lifecycle::{product_of_os, Lifecycle, ReleaseCycle, Support};

/// A package on a host, as applicability sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// The binary package name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its architecture.
    pub arch: String,
    /// Its source package (the name itself when it has no other).
    pub source: String,
    /// Its source version (the version itself when it has no other).
    pub source_version: String,
    /// False for a removed package whose configuration files remain.
    pub installed: bool,
}

/// A newer version the host's own package manager offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedUpdate {
    /// The binary package name.
    pub name: String,
    /// The version installed.
    pub installed: String,
    /// The version offered.
    pub candidate: String,
    /// The suite that offers it (`bookworm-security`).
    pub suite: Option<String>,
    /// Whether the suite is a security suite.
    pub security: bool,
}

/// Everything about a host that applicability needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    /// os-release `ID` (`debian`).
    pub os_id: String,
    /// os-release `VERSION_ID` (`12`).
    pub os_version: Option<String>,
    /// The package manager's version rules.
    pub scheme: versions::Ecosystem,
    /// The running kernel (`uname -r`).
    pub kernel_release: String,
    /// The packages in the package manager's database.
    pub packages: Vec<InstalledPackage>,
    /// The updates the host's package manager offers.
    pub updates: Vec<OfferedUpdate>,
}

impl HostView {
    /// The host's ecosystem (`Debian:12`), when OSV has a name for it.
    pub fn ecosystem(&self) -> Option<Ecosystem> {
        Ecosystem::of_host(&self.os_id, self.os_version.as_deref())
    }
}

/// How a package matched an advisory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// Through its source package and source version.
    Source,
    /// Through its own name and version.
    Binary,
    /// Through a vendor feed's detection rule.
    Vendor,
}

/// Whether the host's package manager already offers the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// It offers a version at or above the fix.
    Offered {
        /// The version offered.
        candidate: String,
        /// From which suite.
        suite: Option<String>,
    },
    /// It offers a newer version, but one still below the fix.
    TooOld {
        /// The version offered.
        candidate: String,
    },
    /// It offers nothing newer: the fix is not in its repositories (or no
    /// fixed version is known).
    NotOffered,
}

/// Whether the host is exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
    /// The affected version is what runs.
    Exposed,
    /// The running kernel is affected; a fixed kernel is installed and takes
    /// effect at the next boot.
    FixedAwaitingReboot {
        /// The running kernel's image package.
        running: String,
        /// The installed fixed image package.
        fixed_package: String,
        /// Its version.
        fixed_version: String,
    },
}

/// One advisory applying to one installed package of a host, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding<'a> {
    /// The advisory.
    pub advisory: &'a Advisory,
    /// The installed binary package.
    pub package: String,
    /// Its version.
    pub installed: String,
    /// Its source package.
    pub source: String,
    /// Its source version.
    pub source_version: String,
    /// The ecosystem the advisory entry is for (the host's release, or a vendor's).
    pub ecosystem: &'a Ecosystem,
    /// How it matched.
    pub matched_by: MatchedBy,
    /// The first version that fixes it; none when only the last affected
    /// version is known.
    pub fixed: Option<&'a str>,
    /// The last affected version, when the advisory gives that instead of a fix.
    pub last_affected: Option<&'a str>,
    /// Whether the host's package manager offers the fix.
    pub offer: Offer,
    /// Whether the host is exposed now.
    pub exposure: Exposure,
    /// A later advisory for the same package whose fix covers this one.
    pub superseded_by: Option<&'a str>,
}

impl Finding<'_> {
    /// The reason, in one sentence a person can check.
    pub fn reason(&self) -> String {
        let mut text = format!("{} {}", self.package, self.installed);
        if self.matched_by == MatchedBy::Source
            && (self.source != self.package || self.source_version != self.installed)
        {
            text += &format!(" (from source {} {})", self.source, self.source_version);
        }
        match (self.fixed, self.last_affected) {
            (Some(fixed), _) => text += &format!(" is below {fixed}, which fixes"),
            (None, Some(last)) => {
                text += &format!(" is at or below {last}, the last affected version of")
            }
            (None, None) => text += " is an affected version of",
        }
        text += &format!(" {} for {}", self.advisory.id, self.ecosystem);
        match &self.offer {
            Offer::Offered { candidate, suite } => {
                text += &format!("; the package manager offers {candidate}");
                if let Some(suite) = suite {
                    text += &format!(" from {suite}");
                }
            }
            Offer::TooOld { candidate } => {
                text += &format!("; the package manager offers only {candidate}, still affected")
            }
            Offer::NotOffered => text += "; the package manager does not offer the fix yet",
        }
        if let Exposure::FixedAwaitingReboot {
            running,
            fixed_package,
            fixed_version,
        } = &self.exposure
        {
            text += &format!(
                "; {fixed_package} {fixed_version} is installed but {running} still runs: exposed until reboot"
            );
        }
        if let Some(by) = self.superseded_by {
            text += &format!("; superseded by {by}");
        }
        text
    }
}

/// A security update the host's package manager offers from a security
/// suite: a security update even when no advisory names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSecurityUpdate<'a> {
    /// The binary package.
    pub package: String,
    /// The installed version.
    pub installed: String,
    /// The version offered.
    pub candidate: String,
    /// The suite offering it.
    pub suite: Option<String>,
    /// The advisories among the findings whose fix it brings.
    pub advisories: Vec<&'a str>,
}

/// A host's OS release past full support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleFinding<'a> {
    /// The product (`debian`).
    pub product: &'a str,
    /// The release cycle (`12`).
    pub release: &'a ReleaseCycle,
    /// Where it stands.
    pub support: Support,
}

/// Everything that applies to one host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostReport<'a> {
    /// The host's ecosystem, when known.
    pub ecosystem: Option<Ecosystem>,
    /// Security advisories that apply, one per (advisory, binary
    /// package): the findings.
    pub findings: Vec<Finding<'a>>,
    /// Advisories that are not security advisories (an ordinary suite's
    /// newer version) that apply: available updates, not findings.
    pub available_updates: Vec<Finding<'a>>,
    /// Security updates the package manager offers.
    pub security_updates: Vec<PendingSecurityUpdate<'a>>,
    /// The OS release's support status, when it is a finding.
    pub lifecycle: Option<LifecycleFinding<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Introduced,
    LastAffected,
    Fixed,
    Limit,
}

#[derive(Debug, Clone)]
struct CompiledEvent {
    key: Box<[u8]>,
    step: Step,
    /// The index of the event in the advisory's range, for its text.
    at: u32,
}

/// One affected entry of one advisory, ready to check versions against.
#[derive(Debug, Clone)]
struct Entry {
    advisory: u32,
    affected: u32,
    /// Whether the advisory is a security one: its hits are findings;
    /// the others' are available updates.
    security: bool,
    /// Per range, its events sorted by version.
    ranges: Vec<(u32, Vec<CompiledEvent>)>,
    /// Sorted sort keys of the explicitly listed versions.
    versions: Vec<Box<[u8]>>,
}

/// What checking a version against an entry found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The advisory's position in the index.
    pub advisory: u32,
    /// The affected entry's position in the advisory.
    pub affected: u32,
    /// The range and event that fixes it, if any.
    pub fixed: Option<(u32, u32)>,
    /// The range and event that is the last affected version, if any.
    pub last_affected: Option<(u32, u32)>,
}

type ByName = HashMap<String, Vec<Entry>>;

/// The catalog, indexed for applicability.
#[derive(Debug, Default, Clone)]
pub struct Index {
    advisories: Vec<Advisory>,
    by_id: HashMap<String, u32>,
    /// Per ecosystem name: source-package entries and binary-package entries.
    source: HashMap<String, ByName>,
    binary: HashMap<String, ByName>,
    kev: HashMap<String, KevEntry>,
    epss: HashMap<String, Epss>,
    lifecycles: HashMap<String, Lifecycle>,
    problems: Vec<Rejected>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// Adds an advisory, or replaces the one with the same id. Returns its
    /// position. Versions its ranges name that the ecosystem's rules refuse
    /// are left out of the check and listed in [`Index::problems`].
    pub fn insert(&mut self, advisory: Advisory) -> u32 {
        if let Some(&at) = self.by_id.get(&advisory.id) {
            self.unindex(at);
            self.advisories[at as usize] = advisory;
            self.index(at);
            return at;
        }
        let at = self.advisories.len() as u32;
        self.by_id.insert(advisory.id.clone(), at);
        self.advisories.push(advisory);
        self.index(at);
        at
    }

    /// Takes an advisory's entries out of the index (only the packages it
    /// names are looked at), and forgets the problems found in it.
    fn unindex(&mut self, at: u32) {
        let Some(advisory) = self.advisories.get(at as usize) else {
            return;
        };
        for affected in &advisory.affected {
            let table = match affected.kind {
                PackageKind::Source => &mut self.source,
                PackageKind::Binary => &mut self.binary,
            };
            if let Some(entries) = table
                .get_mut(affected.ecosystem.name())
                .and_then(|by_name| by_name.get_mut(&affected.package))
            {
                entries.retain(|e| e.advisory != at);
            }
        }
        let id = &advisory.id;
        self.problems.retain(|p| &p.record != id);
    }

    fn index(&mut self, at: u32) {
        let advisory = &self.advisories[at as usize];
        if advisory.withdrawn.is_some() {
            return;
        }
        for (affected_at, affected) in advisory.affected.iter().enumerate() {
            if !affected.ecosystem.has_release() {
                continue;
            }
            let scheme = affected.ecosystem.scheme();
            let mut entry = Entry {
                advisory: at,
                affected: affected_at as u32,
                security: advisory.is_security(),
                ranges: Vec::new(),
                versions: Vec::new(),
            };
            for (range_at, range) in affected.ranges.iter().enumerate() {
                let mut events = Vec::with_capacity(range.len());
                for (event_at, event) in range.iter().enumerate() {
                    let step = match event {
                        Event::Introduced(_) => Step::Introduced,
                        Event::Fixed(_) => Step::Fixed,
                        Event::LastAffected(_) => Step::LastAffected,
                        Event::Limit(_) => Step::Limit,
                    };
                    match versions::sort_key(scheme, event.version()) {
                        Ok(key) => events.push(CompiledEvent {
                            key: key.into_boxed_slice(),
                            step,
                            at: event_at as u32,
                        }),
                        Err(error) => self.problems.push(Rejected {
                            file: advisory.origin.location.clone(),
                            record: advisory.id.clone(),
                            reason: format!("{}: {error}; event ignored", affected.package),
                        }),
                    }
                }
                events.sort_by(|a, b| a.key.cmp(&b.key).then(a.step.cmp(&b.step)));
                entry.ranges.push((range_at as u32, events));
            }
            for version in &affected.versions {
                if let Ok(key) = versions::sort_key(scheme, version) {
                    entry.versions.push(key.into_boxed_slice());
                }
            }
            entry.versions.sort();
            let table = match affected.kind {
                PackageKind::Source => &mut self.source,
                PackageKind::Binary => &mut self.binary,
            };
            table
                .entry(affected.ecosystem.name().to_owned())
                .or_default()
                .entry(affected.package.clone())
                .or_default()
                .push(entry);
        }
    }

    /// Adds CISA KEV entries (replacing earlier ones for the same CVE).
    pub fn set_kev(&mut self, entries: impl IntoIterator<Item = KevEntry>) {
        self.kev = entries.into_iter().map(|e| (e.cve.clone(), e)).collect();
    }

    /// Sets EPSS scores by CVE.
    pub fn set_epss(&mut self, scores: impl IntoIterator<Item = (String, Epss)>) {
        self.epss = scores.into_iter().collect();
    }

    /// Adds a product's lifecycle.
    pub fn add_lifecycle(&mut self, lifecycle: Lifecycle) {
        self.lifecycles.insert(lifecycle.product.clone(), lifecycle);
    }

    /// The advisories, in insertion order.
    pub fn advisories(&self) -> &[Advisory] {
        &self.advisories
    }

    /// The advisory at a position.
    pub fn advisory(&self, at: u32) -> Option<&Advisory> {
        self.advisories.get(at as usize)
    }

    /// The advisory with an id.
    pub fn get(&self, id: &str) -> Option<&Advisory> {
        self.by_id.get(id).and_then(|&at| self.advisory(at))
    }

    /// The position of the advisory with an id.
    pub fn position(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Versions in ranges that their ecosystem's rules refuse.
    pub fn problems(&self) -> &[Rejected] {
        &self.problems
    }

    /// The KEV entry of the earliest-added CVE of an advisory.
    pub fn kev(&self, advisory: &Advisory) -> Option<&KevEntry> {
        advisory
            .cves()
            .filter_map(|cve| self.kev.get(cve))
            .min_by_key(|e| e.date_added)
    }

    /// The highest EPSS score among an advisory's CVEs.
    pub fn epss(&self, advisory: &Advisory) -> Option<Epss> {
        advisory
            .cves()
            .filter_map(|cve| self.epss.get(cve).copied())
            .max_by(|a, b| a.score.total_cmp(&b.score))
    }

    /// A product's lifecycle.
    pub fn lifecycle(&self, product: &str) -> Option<&Lifecycle> {
        self.lifecycles.get(product)
    }

    /// The severity to show: the vendor's, else CVSS's rating.
    pub fn severity(advisory: &Advisory) -> Option<Severity> {
        advisory.severity.or_else(|| {
            advisory
                .cvss
                .as_ref()
                .and_then(|c| c.score)
                .map(Severity::of_cvss)
        })
    }

    /// Checks one version (as a sort key) of one package against every
    /// security advisory's entry of an ecosystem, and calls `hit` for each
    /// affecting one: the findings.
    pub fn check(
        &self,
        ecosystem: &str,
        kind: PackageKind,
        package: &str,
        version_key: &[u8],
        hit: impl FnMut(Hit),
    ) {
        self.check_where(true, ecosystem, kind, package, version_key, hit);
    }

    /// As [`Index::check`], against the advisories that are not security
    /// advisories (an ordinary suite's newer versions): available updates.
    pub fn check_updates(
        &self,
        ecosystem: &str,
        kind: PackageKind,
        package: &str,
        version_key: &[u8],
        hit: impl FnMut(Hit),
    ) {
        self.check_where(false, ecosystem, kind, package, version_key, hit);
    }

    fn check_where(
        &self,
        security: bool,
        ecosystem: &str,
        kind: PackageKind,
        package: &str,
        version_key: &[u8],
        mut hit: impl FnMut(Hit),
    ) {
        let table = match kind {
            PackageKind::Source => &self.source,
            PackageKind::Binary => &self.binary,
        };
        let Some(entries) = table.get(ecosystem).and_then(|t| t.get(package)) else {
            return;
        };
        for entry in entries.iter().filter(|e| e.security == security) {
            if let Some(found) = check_entry(entry, version_key) {
                hit(found);
            }
        }
    }

    /// The text of an event a [`Hit`] points at.
    pub fn event_text(&self, hit: &Hit, at: (u32, u32)) -> Option<&str> {
        let affected = self
            .advisory(hit.advisory)?
            .affected
            .get(hit.affected as usize)?;
        Some(
            affected
                .ranges
                .get(at.0 as usize)?
                .get(at.1 as usize)?
                .version(),
        )
    }

    /// Everything that applies to one host.
    pub fn evaluate(&self, host: &HostView, today: jiff::civil::Date) -> HostReport<'_> {
        let ecosystem = host.ecosystem();
        let findings = self.matches(host, ecosystem.as_ref(), true);
        let available_updates = self.matches(host, ecosystem.as_ref(), false);
        let security_updates = host
            .updates
            .iter()
            .filter(|u| u.security)
            .map(|u| PendingSecurityUpdate {
                package: u.name.clone(),
                installed: u.installed.clone(),
                candidate: u.candidate.clone(),
                suite: u.suite.clone(),
                advisories: findings
                    .iter()
                    .filter(|f| f.package == u.name && matches!(f.offer, Offer::Offered { .. }))
                    .map(|f| f.advisory.id.as_str())
                    .collect(),
            })
            .collect();
        HostReport {
            lifecycle: self.lifecycle_of(&host.os_id, host.os_version.as_deref(), today),
            ecosystem,
            findings,
            available_updates,
            security_updates,
        }
    }

    /// The security advisories (`security`) or the other advisories that
    /// apply to a host's packages.
    fn matches(
        &self,
        host: &HostView,
        ecosystem: Option<&Ecosystem>,
        security: bool,
    ) -> Vec<Finding<'_>> {
        let vendor = Ecosystem::vendor(host.scheme);
        let mut findings = Vec::new();
        let offers: HashMap<&str, &OfferedUpdate> =
            host.updates.iter().map(|u| (u.name.as_str(), u)).collect();
        for package in host.packages.iter().filter(|p| p.installed) {
            let mut hits: Vec<(Hit, MatchedBy)> = Vec::new();
            if let Some(eco) = ecosystem {
                if let Ok(key) = versions::sort_key(host.scheme, &package.source_version) {
                    self.check_where(
                        security,
                        eco.name(),
                        PackageKind::Source,
                        &package.source,
                        &key,
                        |h| hits.push((h, MatchedBy::Source)),
                    );
                }
            }
            if let Ok(key) = versions::sort_key(host.scheme, &package.version) {
                if let Some(eco) = ecosystem {
                    self.check_where(
                        security,
                        eco.name(),
                        PackageKind::Binary,
                        &package.name,
                        &key,
                        |h| hits.push((h, MatchedBy::Binary)),
                    );
                }
                self.check_where(
                    security,
                    vendor.name(),
                    PackageKind::Binary,
                    &package.name,
                    &key,
                    |h| hits.push((h, MatchedBy::Vendor)),
                );
            }
            for (hit, matched_by) in hits {
                let Some(advisory) = self.advisory(hit.advisory) else {
                    continue;
                };
                let Some(affected) = advisory.affected.get(hit.affected as usize) else {
                    continue;
                };
                let fixed = hit.fixed.and_then(|at| self.event_text(&hit, at));
                let offer = offer_for(host.scheme, offers.get(package.name.as_str()), fixed);
                findings.push(Finding {
                    advisory,
                    package: package.name.clone(),
                    installed: package.version.clone(),
                    source: package.source.clone(),
                    source_version: package.source_version.clone(),
                    ecosystem: &affected.ecosystem,
                    matched_by,
                    fixed,
                    last_affected: hit.last_affected.and_then(|at| self.event_text(&hit, at)),
                    offer,
                    exposure: Exposure::Exposed,
                    superseded_by: None,
                });
            }
        }
        let findings = apply_kernels(host, findings);
        mark_superseded(host.scheme, findings)
    }

    /// Where a host's OS release stands, when that is a finding.
    pub fn lifecycle_of(
        &self,
        os_id: &str,
        os_version: Option<&str>,
        today: jiff::civil::Date,
    ) -> Option<LifecycleFinding<'_>> {
        let product = product_of_os(os_id)?;
        let lifecycle = self.lifecycles.get(product)?;
        let release = lifecycle.cycle_of(os_version?)?;
        let support = release.support_on(today);
        support.is_finding().then_some(LifecycleFinding {
            product: &lifecycle.product,
            release,
            support,
        })
    }

    /// The advisories (by position) that an update of `package` to
    /// `candidate` fixes on a host of `ecosystem` (its OSV name, if it has
    /// one) whose versions follow `scheme`: those that affect the installed
    /// version, by the source package, the binary package or the vendor's
    /// entries, and have a fix at or below the candidate. The candidate is
    /// compared as the source's version too, as [`Offer`]s are.
    pub fn fixed_by(
        &self,
        ecosystem: Option<&str>,
        scheme: versions::Ecosystem,
        package: &InstalledPackage,
        candidate: &str,
    ) -> Vec<u32> {
        let Ok(candidate_key) = versions::sort_key(scheme, candidate) else {
            return Vec::new();
        };
        let mut hits: Vec<Hit> = Vec::new();
        if let Some(eco) = ecosystem {
            if let Ok(key) = versions::sort_key(scheme, &package.source_version) {
                self.check(eco, PackageKind::Source, &package.source, &key, |h| {
                    hits.push(h)
                });
            }
        }
        if let Ok(key) = versions::sort_key(scheme, &package.version) {
            if let Some(eco) = ecosystem {
                self.check(eco, PackageKind::Binary, &package.name, &key, |h| {
                    hits.push(h)
                });
            }
            let vendor = Ecosystem::vendor(scheme);
            self.check(
                vendor.name(),
                PackageKind::Binary,
                &package.name,
                &key,
                |h| hits.push(h),
            );
        }
        let mut out: Vec<u32> = hits
            .iter()
            .filter(|h| {
                h.fixed
                    .and_then(|at| self.event_text(h, at))
                    .and_then(|fixed| versions::sort_key(scheme, fixed).ok())
                    .is_some_and(|fixed| fixed <= candidate_key)
            })
            .map(|h| h.advisory)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The advisories whose fix for a package covers this advisory's: for
    /// every package it affects, a later advisory fixes the same package in
    /// the same ecosystem at the same or a higher version.
    pub fn superseded_by(&self, id: &str) -> Vec<&Advisory> {
        let Some(advisory) = self.get(id) else {
            return Vec::new();
        };
        let fixes = |a: &Advisory| -> Vec<(String, String, Vec<u8>)> {
            a.affected
                .iter()
                .filter_map(|af| {
                    let fixed = af.ranges.iter().flatten().find_map(|e| match e {
                        Event::Fixed(v) => Some(v),
                        _ => None,
                    })?;
                    let key = versions::sort_key(af.ecosystem.scheme(), fixed).ok()?;
                    Some((af.ecosystem.name().to_owned(), af.package.clone(), key))
                })
                .collect()
        };
        let mine = fixes(advisory);
        if mine.is_empty() {
            return Vec::new();
        }
        let mut candidates: Vec<u32> = Vec::new();
        for (eco, package, _) in &mine {
            for table in [&self.source, &self.binary] {
                if let Some(entries) = table.get(eco).and_then(|t| t.get(package)) {
                    candidates.extend(entries.iter().map(|e| e.advisory));
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|at| self.advisory(at))
            .filter(|other| other.id != advisory.id && other.withdrawn.is_none())
            .filter(|other| {
                let theirs = fixes(other);
                mine.iter().all(|(eco, package, key)| {
                    theirs
                        .iter()
                        .any(|(e, p, k)| e == eco && p == package && k >= key)
                }) && later(other, advisory)
            })
            .collect()
    }
}

/// Whether `a` came out after `b` (by publication, then by id).
fn later(a: &Advisory, b: &Advisory) -> bool {
    match (a.published, b.published) {
        (Some(x), Some(y)) if x != y => x > y,
        _ => a.id > b.id,
    }
}

/// OSV's evaluation of one version against one entry.
fn check_entry(entry: &Entry, version: &[u8]) -> Option<Hit> {
    let mut listed = entry
        .versions
        .binary_search_by(|v| v.as_ref().cmp(version))
        .is_ok();
    let mut fixed = None;
    let mut last_affected = None;
    for (range_at, events) in &entry.ranges {
        let mut affected = false;
        let mut last = None;
        for event in events {
            let key = event.key.as_ref();
            match event.step {
                Step::Introduced if version >= key => affected = true,
                Step::Fixed | Step::Limit if version >= key => affected = false,
                Step::LastAffected if version > key => affected = false,
                // The first last-affected event at or above the version.
                Step::LastAffected if last.is_none() => last = Some((*range_at, event.at)),
                _ => {}
            }
        }
        if affected {
            listed = true;
            // The fix is the first fixed event above the version.
            let next_fix = events
                .iter()
                .find(|e| e.step == Step::Fixed && e.key.as_ref() > version)
                .map(|e| (*range_at, e.at));
            if fixed.is_none() {
                fixed = next_fix;
            }
            if next_fix.is_none() && last_affected.is_none() {
                last_affected = last;
            }
        }
    }
    listed.then_some(Hit {
        advisory: entry.advisory,
        affected: entry.affected,
        fixed,
        last_affected: if fixed.is_some() { None } else { last_affected },
    })
}

fn offer_for(
    scheme: versions::Ecosystem,
    update: Option<&&OfferedUpdate>,
    fixed: Option<&str>,
) -> Offer {
    let Some(update) = update else {
        return Offer::NotOffered;
    };
    let Some(fixed) = fixed else {
        return Offer::NotOffered;
    };
    match versions::compare(scheme, &update.candidate, fixed) {
        Ok(std::cmp::Ordering::Less) => Offer::TooOld {
            candidate: update.candidate.clone(),
        },
        Ok(_) => Offer::Offered {
            candidate: update.candidate.clone(),
            suite: update.suite.clone(),
        },
        Err(_) => Offer::NotOffered,
    }
}

/// Beginnings of the names of every package [`kernel_image_release`] takes
/// for a kernel image (and of a few others). A view of part of a host's
/// inventory, kept to the packages one advisory names, must keep these
/// too: which kernel image runs decides its kernel findings.
pub const KERNEL_IMAGE_PREFIXES: &[&str] = &["linux-image-", "kernel"];

/// The kernel release a package is the image of, if it is one: Debian's
/// `linux-image-6.1.0-17-amd64`, rpm's `kernel-core` `5.14.0-362.el9` on
/// `x86_64`.
pub fn kernel_image_release(
    scheme: versions::Ecosystem,
    name: &str,
    version: &str,
    arch: &str,
) -> Option<String> {
    match scheme {
        versions::Ecosystem::Deb => {
            let release = name.strip_prefix("linux-image-")?;
            let release = release.strip_suffix("-unsigned").unwrap_or(release);
            release
                .starts_with(|c: char| c.is_ascii_digit())
                .then(|| release.to_owned())
        }
        versions::Ecosystem::Rpm => matches!(name, "kernel" | "kernel-core" | "kernel-default")
            .then(|| {
                format!(
                    "{}.{arch}",
                    version.split_once(':').map_or(version, |(_, v)| v)
                )
            }),
        versions::Ecosystem::Apk => None,
    }
}

/// Only the running kernel counts. A finding on another installed kernel
/// image is dropped (it does not run); a finding on the running one whose
/// fix is installed as another image waits for a reboot.
fn apply_kernels<'a>(host: &HostView, findings: Vec<Finding<'a>>) -> Vec<Finding<'a>> {
    let images: Vec<(&InstalledPackage, String)> = host
        .packages
        .iter()
        .filter(|p| p.installed)
        .filter_map(|p| {
            kernel_image_release(host.scheme, &p.name, &p.version, &p.arch).map(|r| (p, r))
        })
        .collect();
    if images.is_empty() {
        return findings;
    }
    let running = host.kernel_release.trim();
    if running.is_empty() {
        // Which kernel runs is unknown (an offline scan of a database file):
        // every image counts as it is.
        return findings;
    }
    findings
        .into_iter()
        .filter_map(|mut f| {
            let Some((_, release)) = images
                .iter()
                .find(|(p, _)| p.name == f.package && p.version == f.installed)
            else {
                return Some(f);
            };
            if release != running {
                return None;
            }
            if let Some(fixed) = f.fixed {
                let newer = images.iter().find(|(p, r)| {
                    r != running
                        && p.source == f.source
                        && versions::compare(host.scheme, &p.source_version, fixed)
                            .is_ok_and(|o| o != std::cmp::Ordering::Less)
                });
                if let Some((p, _)) = newer {
                    f.exposure = Exposure::FixedAwaitingReboot {
                        running: f.package.clone(),
                        fixed_package: p.name.clone(),
                        fixed_version: p.version.clone(),
                    };
                }
            }
            Some(f)
        })
        .collect()
}

/// Among the findings on one package, the one with the highest fix covers
/// the others.
fn mark_superseded(
    scheme: versions::Ecosystem,
    mut findings: Vec<Finding<'_>>,
) -> Vec<Finding<'_>> {
    let mut best: HashMap<&str, (usize, Vec<u8>)> = HashMap::new();
    for (at, f) in findings.iter().enumerate() {
        let Some(key) = f.fixed.and_then(|v| versions::sort_key(scheme, v).ok()) else {
            continue;
        };
        match best.get(f.package.as_str()) {
            Some((_, k)) if *k >= key => {}
            _ => {
                best.insert(f.package.as_str(), (at, key));
            }
        }
    }
    let tops: HashMap<String, (usize, &str)> = best
        .into_iter()
        .map(|(p, (at, _))| (p.to_owned(), (at, findings[at].advisory.id.as_str())))
        .collect();
    for (at, f) in findings.iter_mut().enumerate() {
        if f.fixed.is_none() {
            continue;
        }
        if let Some(&(top, id)) = tops.get(&f.package) {
            if top != at && id != f.advisory.id {
                f.superseded_by = Some(id);
            }
        }
    }
    findings
}

impl fmt::Display for MatchedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchedBy::Source => "source",
            MatchedBy::Binary => "binary",
            MatchedBy::Vendor => "vendor",
        })
    }
}
