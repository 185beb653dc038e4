//! Baselines: what every host of a group must have (minimum versions, or an
//! advisory fixed) and, optionally, the highest versions anyone approved.
//!
//! Compliance of a host is one of four: below (what is missing, each item
//! named), above (a version above the highest approved: a change nobody
//! approved), exempt (everything missing is under an exemption in force),
//! or at. Versions compare by the host's package manager's rules; a package
//! the host does not have is not missing (a minimum says "at least this
//! version where installed"), and an advisory is missing while it applies.

use std::cmp::Ordering;

use crate::exemption::{self, Exemption};

/// One thing a baseline requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// The package, where installed, at this version or later.
    AtLeast {
        /// Binary package name.
        package: String,
        /// The least version.
        version: String,
    },
    /// The advisory no longer applies.
    Fixed {
        /// Its id.
        advisory: String,
    },
}

/// A baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// Its name.
    pub name: String,
    /// The group whose hosts it applies to.
    pub group: String,
    /// What they must have.
    pub requirements: Vec<Requirement>,
    /// The highest approved version of some packages.
    pub ceilings: Vec<(String, String)>,
}

/// One host package, as a baseline sees it.
#[derive(Debug, Clone, Copy)]
pub struct Installed<'a> {
    /// Binary name.
    pub name: &'a str,
    /// Source package name.
    pub source: &'a str,
    /// Installed version.
    pub version: &'a str,
}

/// A requirement the host does not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What is required.
    pub requirement: Requirement,
    /// What the host has (a version, or the advisory's finding).
    pub has: String,
    /// The exemption that excuses it, if one is in force.
    pub exempt_by: Option<String>,
}

/// A version above the highest approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unapproved {
    /// The package.
    pub package: String,
    /// The version installed.
    pub installed: String,
    /// The highest approved.
    pub approved: String,
}

/// A host's standing against a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Something is missing.
    Below,
    /// Something is newer than approved.
    Above,
    /// Everything missing is exempt.
    Exempt,
    /// As required.
    At,
}

impl Status {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Below => "below",
            Status::Above => "above",
            Status::Exempt => "exempt",
            Status::At => "at",
        }
    }
}

/// A host's compliance, with every item behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compliance {
    /// The verdict.
    pub status: Status,
    /// Requirements not met (exempt ones included, marked).
    pub missing: Vec<Missing>,
    /// Versions above the approved ceilings.
    pub unapproved: Vec<Unapproved>,
}

/// What a host is, for one evaluation.
#[derive(Debug)]
pub struct HostState<'a> {
    /// Its id.
    pub id: &'a str,
    /// The groups it is in.
    pub groups: &'a [&'a str],
    /// How its package manager orders versions.
    pub scheme: versions::Ecosystem,
    /// What it has installed.
    pub packages: &'a [Installed<'a>],
    /// The advisories that apply to it now.
    pub open_advisories: &'a [&'a str],
}

impl Baseline {
    /// Checks that every version is valid for `scheme` and names something.
    pub fn check(&self, scheme: versions::Ecosystem) -> Result<(), String> {
        if self.requirements.is_empty() && self.ceilings.is_empty() {
            return Err(format!(
                "baseline {}: it requires nothing: give minimum versions, advisories or ceilings",
                self.name
            ));
        }
        let versions = self
            .requirements
            .iter()
            .filter_map(|r| match r {
                Requirement::AtLeast { package, version } => Some((package, version)),
                Requirement::Fixed { .. } => None,
            })
            .chain(self.ceilings.iter().map(|(p, v)| (p, v)));
        for (package, version) in versions {
            versions::validate(scheme, version)
                .map_err(|e| format!("baseline {}: package {package}: {e}", self.name))?;
        }
        Ok(())
    }

    /// A host's compliance at `now`, exemptions in force counted.
    pub fn evaluate(
        &self,
        host: &HostState<'_>,
        exemptions: &[Exemption],
        now: jiff::Timestamp,
    ) -> Compliance {
        let cmp = |a: &str, b: &str| versions::compare(host.scheme, a, b).ok();
        let mut missing = Vec::new();
        for requirement in &self.requirements {
            let (has, advisory, packages): (String, Option<&str>, Vec<&str>) = match requirement {
                Requirement::AtLeast { package, version } => {
                    // Every installed architecture of it must be at least there.
                    let low = host.packages.iter().find(|p| {
                        p.name == package && cmp(p.version, version) == Some(Ordering::Less)
                    });
                    match low {
                        Some(p) => (p.version.to_owned(), None, vec![p.name, p.source]),
                        None => continue,
                    }
                }
                Requirement::Fixed { advisory } => {
                    if !host.open_advisories.contains(&advisory.as_str()) {
                        continue;
                    }
                    (
                        "the advisory applies".to_owned(),
                        Some(advisory.as_str()),
                        vec![],
                    )
                }
            };
            let exempt_by =
                exemption::in_force(exemptions, host.id, host.groups, advisory, &packages, now)
                    .map(|e| e.name.clone());
            missing.push(Missing {
                requirement: requirement.clone(),
                has,
                exempt_by,
            });
        }
        let mut unapproved = Vec::new();
        for (package, approved) in &self.ceilings {
            for p in host.packages.iter().filter(|p| p.name == package) {
                if cmp(p.version, approved) == Some(Ordering::Greater) {
                    unapproved.push(Unapproved {
                        package: package.clone(),
                        installed: p.version.to_owned(),
                        approved: approved.clone(),
                    });
                }
            }
        }
        let status = if missing.iter().any(|m| m.exempt_by.is_none()) {
            Status::Below
        } else if !unapproved.is_empty() {
            Status::Above
        } else if !missing.is_empty() {
            Status::Exempt
        } else {
            Status::At
        };
        Compliance {
            status,
            missing,
            unapproved,
        }
    }

    /// The baseline raised to what a reference host has: every minimum
    /// version below the host's version of that package is lifted to it,
    /// and so is every ceiling. Returns the raised baseline and what changed.
    pub fn raised_to(
        &self,
        scheme: versions::Ecosystem,
        reference: &[Installed<'_>],
    ) -> (Baseline, Vec<String>) {
        let mut raised = self.clone();
        let mut changes = Vec::new();
        let newest = |package: &str| {
            reference
                .iter()
                .filter(|p| p.name == package)
                .map(|p| p.version)
                .max_by(|a, b| versions::compare(scheme, a, b).unwrap_or(Ordering::Equal))
        };
        let mut lift = |package: &str, version: &mut String| {
            if let Some(have) = newest(package) {
                if versions::compare(scheme, have, version) == Ok(Ordering::Greater) {
                    changes.push(format!("{package}: {version} -> {have}"));
                    *version = have.to_owned();
                }
            }
        };
        for r in &mut raised.requirements {
            if let Requirement::AtLeast { package, version } = r {
                lift(package, version);
            }
        }
        for (package, version) in &mut raised.ceilings {
            lift(package, version);
        }
        (raised, changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exemption::{Scope, Target};

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn baseline() -> Baseline {
        Baseline {
            name: "servers".into(),
            group: "servers".into(),
            requirements: vec![
                Requirement::AtLeast {
                    package: "libssl3".into(),
                    version: "3.0.15-1~deb12u1".into(),
                },
                Requirement::Fixed {
                    advisory: "DSA-5000-1".into(),
                },
            ],
            ceilings: vec![("nginx".into(), "1.22.1-9".into())],
        }
    }

    fn host<'a>(packages: &'a [Installed<'a>], open: &'a [&'a str]) -> HostState<'a> {
        HostState {
            id: "web-1",
            groups: &["servers"],
            scheme: versions::Ecosystem::Deb,
            packages,
            open_advisories: open,
        }
    }

    fn pkg<'a>(name: &'a str, version: &'a str) -> Installed<'a> {
        Installed {
            name,
            source: name,
            version,
        }
    }

    #[test]
    fn a_host_is_below_above_exempt_or_at() {
        let b = baseline();
        let old = [pkg("libssl3", "3.0.11-1~deb12u2"), pkg("nginx", "1.22.1-9")];
        let c = b.evaluate(&host(&old, &["DSA-5000-1"]), &[], t(0));
        assert_eq!(c.status, Status::Below);
        assert_eq!(c.missing.len(), 2);
        assert_eq!(c.missing[0].has, "3.0.11-1~deb12u2");

        // At, by the package manager's order (~ sorts before anything).
        let at = [pkg("libssl3", "3.0.15-1~deb12u1"), pkg("nginx", "1.22.1-9")];
        assert_eq!(b.evaluate(&host(&at, &[]), &[], t(0)).status, Status::At);

        // A version above the ceiling: nobody approved it.
        let above = [
            pkg("libssl3", "3.0.16-1~deb12u1"),
            pkg("nginx", "1.22.1-9+deb12u1"),
        ];
        let c = b.evaluate(&host(&above, &[]), &[], t(0));
        assert_eq!(c.status, Status::Above);
        assert_eq!(c.unapproved[0].installed, "1.22.1-9+deb12u1");

        // Not installed is not missing.
        assert_eq!(b.evaluate(&host(&[], &[]), &[], t(0)).status, Status::At);

        // Everything missing exempt, until the exemption lapses.
        let exemptions = [
            Exemption {
                name: "legacy-tls".into(),
                scope: Scope::Group("servers".into()),
                target: Target::Package("libssl3".into()),
                reason: "vendor certification".into(),
                control: None,
                approver: "alice".into(),
                from: t(0),
                expires: t(50),
            },
            Exemption {
                name: "dsa".into(),
                scope: Scope::Host("web-1".into()),
                target: Target::Advisory("DSA-5000-1".into()),
                reason: "not reachable".into(),
                control: None,
                approver: "alice".into(),
                from: t(0),
                expires: t(500),
            },
        ];
        let c = b.evaluate(&host(&old, &["DSA-5000-1"]), &exemptions, t(10));
        assert_eq!(c.status, Status::Exempt);
        assert_eq!(c.missing[0].exempt_by.as_deref(), Some("legacy-tls"));
        let c = b.evaluate(&host(&old, &["DSA-5000-1"]), &exemptions, t(50));
        assert_eq!(c.status, Status::Below);
    }

    #[test]
    fn a_baseline_is_raised_to_a_reference_host() {
        let b = baseline();
        let pilot = [pkg("libssl3", "3.0.17-1~deb12u2"), pkg("nginx", "1.22.1-9")];
        let (raised, changes) = b.raised_to(versions::Ecosystem::Deb, &pilot);
        assert_eq!(
            changes,
            vec!["libssl3: 3.0.15-1~deb12u1 -> 3.0.17-1~deb12u2"]
        );
        assert_eq!(
            raised.requirements[0],
            Requirement::AtLeast {
                package: "libssl3".into(),
                version: "3.0.17-1~deb12u2".into()
            }
        );
        // An older reference lowers nothing.
        let (same, changes) = b.raised_to(versions::Ecosystem::Deb, &[pkg("libssl3", "1.0")]);
        assert!(changes.is_empty());
        assert_eq!(same, b);
    }

    #[test]
    fn invalid_versions_are_refused() {
        let mut b = baseline();
        b.ceilings.push(("curl".into(), "not a version!".into()));
        assert!(b
            .check(versions::Ecosystem::Deb)
            .unwrap_err()
            .contains("curl"));
    }
}
