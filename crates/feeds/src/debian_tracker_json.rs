//! The Debian security tracker's JSON: every CVE (and `TEMP-` issue) by
//! source package, with its status, fixed version and urgency per release.
//!
//! ```json
//! { "openssh": { "CVE-2024-6387": { "description": "...", "scope": "remote",
//!     "releases": { "bookworm": { "status": "resolved",
//!       "repositories": { "bookworm": "1:9.2p1-2+deb12u3" },
//!       "fixed_version": "1:9.2p1-2+deb12u3", "urgency": "high*" } } } } }
//! ```
//!
//! Each (issue, release) with a fix becomes one advisory,
//! `DEBIAN-CVE-2024-6387-bookworm`, with the CVE as its alias (so CISA KEV
//! and EPSS reach it), the release's urgency as its severity (`unimportant`
//! is negligible; a trailing `*`, the tracker's mark of an urgency not yet
//! reviewed, is dropped; `not yet assigned` and `end-of-life` give none),
//! and one affected source package per package the issue names, fixed in
//! `fixed_version`. A fixed version `0` means the release was never
//! affected. An issue still `open` or `undetermined` in a release has no
//! fix to install there and gives no advisory: Patchwell's findings are
//! what a host can fix. `sid` is skipped; another release code name
//! Patchwell does not know is rejected once per name.
//!
//! The file is tens of megabytes: it is read in one pass, one source
//! package at a time, without copying the descriptions of issues that are
//! not used, and refused whole above [`MAX_BYTES`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use patchwell_core::advisory::{
    Advisory, Affected, Ecosystem, Event, PackageKind, Severity, UpdateType,
};
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::Deserialize;

use crate::{rejected, FeedError, ParsedAdvisories};

/// The largest file read: the real one is a few tens of megabytes.
pub const MAX_BYTES: usize = 512 << 20;

const FORMAT: &str = "Debian security tracker JSON";

/// Releases of the tracker's that are not a release a host runs.
const SKIPPED: &[&str] = &["sid", "experimental"];

#[derive(Deserialize)]
struct Issue<'a> {
    #[serde(default, borrow)]
    description: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    releases: BTreeMap<String, Release<'a>>,
}

#[derive(Deserialize)]
struct Release<'a> {
    #[serde(default, borrow)]
    status: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    fixed_version: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    urgency: Option<std::borrow::Cow<'a, str>>,
}

/// An urgency's severity: Ok(None) for an urgency that gives none, Err for
/// a word the tracker does not use.
fn severity_of(urgency: &str) -> Result<Option<Severity>, String> {
    let word = urgency.trim().trim_end_matches('*').trim();
    match word {
        "unimportant" => Ok(Some(Severity::Negligible)),
        "low" => Ok(Some(Severity::Low)),
        "medium" => Ok(Some(Severity::Medium)),
        "high" => Ok(Some(Severity::High)),
        "not yet assigned" | "end-of-life" | "" => Ok(None),
        other => Err(format!(
            "urgency {other:?}: expected unimportant, low, medium, high, not yet assigned or end-of-life"
        )),
    }
}

/// What the pass builds.
struct Builder<'f> {
    file: &'f str,
    out: ParsedAdvisories,
    /// Per advisory id, its position in `out.items`.
    at: HashMap<String, usize>,
    /// Release names rejected already.
    unknown: HashSet<String>,
    /// Ecosystems by code name.
    ecosystems: HashMap<String, Option<Ecosystem>>,
}

impl Builder<'_> {
    fn ecosystem(&mut self, codename: &str) -> Option<Ecosystem> {
        if let Some(e) = self.ecosystems.get(codename) {
            return e.clone();
        }
        let e = crate::debian_tracker::ecosystem_of_codename(codename)
            .and_then(|name| Ecosystem::parse(&name).ok());
        self.ecosystems.insert(codename.to_owned(), e.clone());
        e
    }

    fn package(&mut self, source: &str, issues: BTreeMap<String, Issue<'_>>) {
        for (issue, record) in issues {
            for (codename, release) in &record.releases {
                let codename = codename.as_str();
                if SKIPPED.contains(&codename) {
                    continue;
                }
                let Some(ecosystem) = self.ecosystem(codename) else {
                    if self.unknown.insert((*codename).to_owned()) {
                        self.out.rejected.push(rejected(
                            self.file,
                            format!("{issue} ({source})"),
                            format!(
                                "unknown Debian release code name {codename:?}; \
                                 its entries are skipped (said once)"
                            ),
                        ));
                    }
                    continue;
                };
                if let Err(reason) =
                    self.release(source, &issue, &record, codename, ecosystem, release)
                {
                    self.out.rejected.push(rejected(
                        self.file,
                        format!("{issue} ({source}, {codename})"),
                        reason,
                    ));
                }
            }
        }
    }

    fn release(
        &mut self,
        source: &str,
        issue: &str,
        record: &Issue<'_>,
        codename: &str,
        ecosystem: Ecosystem,
        release: &Release<'_>,
    ) -> Result<(), String> {
        let status = release.status.as_deref().unwrap_or("");
        match status {
            "resolved" => {}
            // No fix in this release to install.
            "open" | "undetermined" => return Ok(()),
            other => {
                return Err(format!(
                    "status {other:?}: expected resolved, open or undetermined"
                ))
            }
        }
        let fixed = release
            .fixed_version
            .as_deref()
            .map(str::trim)
            .ok_or("resolved, but no fixed_version")?;
        if fixed == "0" {
            // Never affected.
            return Ok(());
        }
        versions::deb::validate(fixed).map_err(|e| format!("fixed_version {fixed:?}: {e}"))?;
        let severity = severity_of(release.urgency.as_deref().unwrap_or(""))?;
        let id = format!("DEBIAN-{issue}-{codename}");
        let affected = Affected {
            ecosystem,
            package: source.to_owned(),
            kind: PackageKind::Source,
            ranges: vec![vec![
                Event::Introduced("0".into()),
                Event::Fixed(fixed.to_owned()),
            ]],
            versions: Vec::new(),
            binaries: Vec::new(),
        };
        if let Some(&at) = self.at.get(&id) {
            // The same issue in another source package.
            let a = &mut self.out.items[at];
            a.severity = a.severity.max(severity);
            a.affected.push(affected);
            return Ok(());
        }
        let mut a = Advisory::new(id.clone(), UpdateType::SecurityUpdate);
        if issue.starts_with("CVE-") {
            a.aliases.push(issue.to_owned());
        }
        a.title = format!("{issue} in {source} ({codename})");
        a.summary = record
            .description
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_owned();
        a.severity = severity;
        a.references.push(format!(
            "https://security-tracker.debian.org/tracker/{issue}"
        ));
        a.affected.push(affected);
        self.at.insert(id, self.out.items.len());
        self.out.items.push(a);
        Ok(())
    }
}

/// The top level: source package to its issues, each package handed to
/// the builder as soon as it is read.
struct Packages<'b, 'f>(&'b mut Builder<'f>);

impl<'de> Visitor<'de> for Packages<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of source packages, each an object of issues")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut packages = 0;
        while let Some(source) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let issues: BTreeMap<String, Issue<'de>> = map.next_value()?;
            self.0.package(&source, issues);
            packages += 1;
        }
        Ok(packages)
    }
}

impl<'de> DeserializeSeed<'de> for Packages<'_, '_> {
    type Value = usize;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(self)
    }
}

/// Parses the tracker's JSON. A file that is not JSON of this shape (a
/// package that is not an object of issues, a release that is not an
/// object) is [`FeedError::Format`]; a release entry with an unknown
/// status or urgency, or a fixed version dpkg refuses, is rejected and the
/// rest read.
pub fn parse(file: &str, bytes: &[u8]) -> Result<ParsedAdvisories, FeedError> {
    let format_error = |reason: String| FeedError::Format {
        file: file.to_owned(),
        format: FORMAT,
        reason,
    };
    if bytes.len() > MAX_BYTES {
        return Err(format_error(format!(
            "{} bytes, more than the {MAX_BYTES} read",
            bytes.len()
        )));
    }
    let mut builder = Builder {
        file,
        out: ParsedAdvisories::default(),
        at: HashMap::new(),
        unknown: HashSet::new(),
        ecosystems: HashMap::new(),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let packages = Packages(&mut builder)
        .deserialize(&mut de)
        .and_then(|n| de.end().map(|()| n))
        .map_err(|e| format_error(e.to_string()))?;
    if packages == 0 {
        return Err(format_error("no source package in the file".into()));
    }
    Ok(builder.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"{
      "openssh": {
        "CVE-2024-6387": {
          "description": "regreSSHion: a signal handler race in sshd",
          "scope": "remote",
          "debianbug": 1074433,
          "releases": {
            "bookworm": {"status": "resolved",
              "repositories": {"bookworm": "1:9.2p1-2+deb12u3", "bookworm-security": "1:9.2p1-2+deb12u3"},
              "fixed_version": "1:9.2p1-2+deb12u3", "urgency": "high"},
            "bullseye": {"status": "resolved", "repositories": {"bullseye": "1:8.4p1-5+deb11u3"},
              "fixed_version": "0", "urgency": "not yet assigned"},
            "sid": {"status": "resolved", "repositories": {"sid": "1:9.7p1-7"},
              "fixed_version": "1:9.7p1-7", "urgency": "high"}
          }
        },
        "CVE-2023-51767": {
          "description": "row hammer",
          "releases": {
            "bookworm": {"status": "open", "repositories": {"bookworm": "1:9.2p1-2+deb12u3"},
              "urgency": "unimportant", "nodsa": "Minor issue", "nodsa_reason": "ignored"}
          }
        },
        "TEMP-0000000-A1B2": {
          "releases": {
            "bookworm": {"status": "resolved", "repositories": {}, "fixed_version": "1:9.2p1-2+deb12u1",
              "urgency": "low*"}
          }
        }
      },
      "openssl": {
        "CVE-2024-6387": {
          "releases": {
            "bookworm": {"status": "resolved", "repositories": {}, "fixed_version": "3.0.13-1~deb12u1",
              "urgency": "medium"}
          }
        },
        "CVE-2024-0001": {
          "releases": {
            "bookworm": {"status": "resolved", "repositories": {}, "fixed_version": "not a version!",
              "urgency": "medium"},
            "bookwurm": {"status": "resolved", "repositories": {}, "fixed_version": "1.0-1", "urgency": "low"},
            "lts": {"status": "resolved", "repositories": {}, "fixed_version": "1.0-1", "urgency": "low"},
            "bullseye": {"status": "resolved", "repositories": {}, "fixed_version": "1.1-1", "urgency": "severe"}
          }
        },
        "CVE-2024-0002": {
          "releases": {
            "lts": {"status": "resolved", "repositories": {}, "fixed_version": "1.0-1", "urgency": "low"},
            "trixie": {"status": "undetermined", "repositories": {}, "urgency": "not yet assigned"}
          }
        }
      }
    }"#;

    #[test]
    fn fixed_issues_become_advisories_per_release() {
        let parsed = parse("data.json", FIXTURE.as_bytes()).unwrap();
        let ids: Vec<&str> = parsed.items.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "DEBIAN-CVE-2024-6387-bookworm",
                "DEBIAN-TEMP-0000000-A1B2-bookworm",
            ]
        );
        let ssh = &parsed.items[0];
        assert_eq!(ssh.aliases, ["CVE-2024-6387"]);
        assert_eq!(ssh.cves().collect::<Vec<_>>(), ["CVE-2024-6387"]);
        // high for openssh, medium for openssl: the highest.
        assert_eq!(ssh.severity, Some(Severity::High));
        assert!(ssh.is_security());
        assert_eq!(ssh.summary, "regreSSHion: a signal handler race in sshd");
        let packages: Vec<(&str, &str, &[Event])> = ssh
            .affected
            .iter()
            .map(|af| {
                (
                    af.ecosystem.name(),
                    af.package.as_str(),
                    af.ranges[0].as_slice(),
                )
            })
            .collect();
        assert_eq!(
            packages,
            [
                (
                    "Debian:12",
                    "openssh",
                    &[
                        Event::Introduced("0".into()),
                        Event::Fixed("1:9.2p1-2+deb12u3".into())
                    ][..]
                ),
                (
                    "Debian:12",
                    "openssl",
                    &[
                        Event::Introduced("0".into()),
                        Event::Fixed("3.0.13-1~deb12u1".into())
                    ][..]
                ),
            ]
        );
        let temp = &parsed.items[1];
        assert!(temp.aliases.is_empty());
        assert_eq!(temp.severity, Some(Severity::Low), "the * is dropped");
    }

    #[test]
    fn bad_entries_are_rejected_once_and_the_rest_read() {
        let parsed = parse("data.json", FIXTURE.as_bytes()).unwrap();
        let reasons: Vec<String> = parsed.rejected.iter().map(|r| r.to_string()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:#?}");
        assert!(reasons[0].starts_with("data.json: record CVE-2024-0001 (openssl, bookworm): fixed_version \"not a version!\""), "{reasons:#?}");
        assert!(
            reasons[1].contains("unknown Debian release code name \"bookwurm\""),
            "{reasons:#?}"
        );
        assert!(reasons[2].contains("severe"), "{reasons:#?}");
        assert!(reasons[3].contains("\"lts\""), "{reasons:#?}");
        assert_eq!(
            reasons.iter().filter(|r| r.contains("\"lts\"")).count(),
            1,
            "an unknown name is said once"
        );
    }

    #[test]
    fn urgencies() {
        assert_eq!(severity_of("unimportant"), Ok(Some(Severity::Negligible)));
        assert_eq!(severity_of("medium*"), Ok(Some(Severity::Medium)));
        assert_eq!(severity_of("not yet assigned"), Ok(None));
        assert_eq!(severity_of("end-of-life"), Ok(None));
        assert!(severity_of("urgent").is_err());
    }

    #[test]
    fn other_files_are_refused_whole() {
        for bad in [
            &b"not json"[..],
            b"[1, 2]",
            b"{}",
            b"{\"openssh\": [1]}",
            b"{\"openssh\": {\"CVE-1\": {\"releases\": {\"bookworm\": 3}}}}",
            b"{\"openssh\": {}} trailing",
            b"{\"openssh\": {\"CVE-1\": {\"releases\": {\"bookworm\": {\"status\": \"resolved\"",
        ] {
            let e = parse("x.json", bad).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("x.json: not a valid Debian security tracker JSON feed"),
                "{e}"
            );
        }
    }
}
