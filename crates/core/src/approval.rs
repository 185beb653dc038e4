//! Approvals by title: a person approves an update for some rings or
//! groups, or declines it; rules approve automatically ("Critical security
//! updates: the pilot ring at once, everyone five business days after the
//! pilot started"). [`eligibility`] says, for one update and one ring, whether
//! it may be deployed now, and if not, until when or why not.
//!
//! A title names what a decision covers ([`Title`]): one binary update
//! (`openssh-server=1:9.2p1-2+deb12u3`), every binary update built from a
//! source package (`source:openssh`, or `source:openssh=1:9.2p1-2+deb12u3`
//! for one version of it), or every update that fixes an advisory
//! (`DSA-5724-1`, one of its aliases such as a CVE, or a security suite's
//! update id). [`decide`] finds the decision in force on one update: the
//! most specific title that has one wins (the update itself, then its
//! source at that version, then its source, then the advisories it fixes);
//! among decisions of equal rank a decline wins, and approvals add up.

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::classify::Class;
use crate::schedule;

/// A person's decision on one title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Approved, for these rings (none listed: every ring) and groups (none
    /// listed: every group).
    Approve {
        /// Rings.
        rings: Vec<String>,
        /// Groups.
        groups: Vec<String>,
    },
    /// Declined: not to be deployed.
    Decline,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The update's title (an advisory id, or `package version`).
    pub title: String,
    /// The decision.
    pub verdict: Verdict,
    /// Who decided.
    pub by: String,
    /// Their comment.
    pub comment: Option<String>,
}

/// What a title names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Title {
    /// One binary package at one version (`name=version`).
    Package {
        /// The binary package.
        name: String,
        /// Its version.
        version: String,
    },
    /// Every binary package built from a source package, at one version of
    /// it or at any.
    Source {
        /// The source package.
        name: String,
        /// The version (`None`: any).
        version: Option<String>,
    },
    /// Every update that fixes an advisory (its id or an alias).
    Advisory(String),
}

/// The prefix of a source package's title.
pub const SOURCE_PREFIX: &str = "source:";

/// The characters a package name may have (Debian's, rpm's and apk's).
fn package_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-._~@".contains(c))
}

fn version_ok(version: &str) -> bool {
    !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-._~:^".contains(c))
}

impl Title {
    /// Reads a title: `name=version` (or `name version`), `source:name`,
    /// `source:name=version` (or `source:name version`), or an advisory id.
    /// The error names the title and what is wrong with it.
    pub fn parse(text: &str) -> Result<Title, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty title: give an advisory id, source:NAME or NAME=VERSION".into());
        }
        let split = |t: &str| -> Option<(String, String)> {
            t.split_once('=')
                .or_else(|| t.split_once(char::is_whitespace))
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        };
        let bad_version =
            |v: &str| format!("title {text:?}: version {v:?} is not a package version");
        if let Some(rest) = text.strip_prefix(SOURCE_PREFIX) {
            let (name, version) = match split(rest) {
                Some((n, v)) => (n, Some(v)),
                None => (rest.to_owned(), None),
            };
            if !package_name_ok(&name) {
                return Err(format!(
                    "title {text:?}: {name:?} is not a source package name"
                ));
            }
            if let Some(v) = &version {
                if !version_ok(v) {
                    return Err(bad_version(v));
                }
            }
            return Ok(Title::Source { name, version });
        }
        if let Some((name, version)) = split(text) {
            if !package_name_ok(&name) {
                return Err(format!("title {text:?}: {name:?} is not a package name"));
            }
            if !version_ok(&version) {
                return Err(bad_version(&version));
            }
            return Ok(Title::Package { name, version });
        }
        let fine = text.len() <= 128
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:+~".contains(c));
        if !fine {
            return Err(format!(
                "title {text:?}: not an advisory id, source:NAME or NAME=VERSION"
            ));
        }
        Ok(Title::Advisory(text.to_owned()))
    }

    /// The title as it is stored: `name=version`, `source:name`,
    /// `source:name=version` or the advisory id.
    pub fn canonical(&self) -> String {
        match self {
            Title::Package { name, version } => format!("{name}={version}"),
            Title::Source {
                name,
                version: None,
            } => format!("{SOURCE_PREFIX}{name}"),
            Title::Source {
                name,
                version: Some(v),
            } => format!("{SOURCE_PREFIX}{name}={v}"),
            Title::Advisory(id) => id.clone(),
        }
    }
}

/// One update, as decisions see it: what titles can reach it.
#[derive(Debug, Clone)]
pub struct Update<'a> {
    /// The binary package.
    pub name: &'a str,
    /// The version offered.
    pub version: &'a str,
    /// The source package it is built from, when known.
    pub source: Option<&'a str>,
    /// The advisories it fixes, by id and by alias.
    pub advisories: &'a [&'a str],
}

/// How specific the title that decided an update is, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// The update itself (`name=version`).
    Package,
    /// Its source package at the version offered.
    SourceVersion,
    /// Its source package at any version.
    Source,
    /// An advisory it fixes.
    Advisory,
}

impl Rank {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Rank::Package => "package",
            Rank::SourceVersion => "source-version",
            Rank::Source => "source",
            Rank::Advisory => "advisory",
        }
    }
}

/// The decision in force on one update: the decisions of the most
/// specific rank that has any.
#[derive(Debug, Clone)]
pub struct Decided<'a> {
    /// Their rank.
    pub rank: Rank,
    /// The decisions (several only for advisories or a binNMU's source).
    pub approvals: Vec<&'a Approval>,
}

impl<'a> Decided<'a> {
    /// A decline among them, which wins.
    pub fn decline(&self) -> Option<&'a Approval> {
        self.approvals
            .iter()
            .copied()
            .find(|a| a.verdict == Verdict::Decline)
    }

    /// Whether it is approved (for some ring or group) rather than declined.
    pub fn approved(&self) -> bool {
        self.decline().is_none()
    }

    /// The title whose decision is in force: the decline, else the first
    /// approval.
    pub fn decided_by(&self) -> &'a Approval {
        self.decline().unwrap_or(self.approvals[0])
    }

    /// The decision that holds for a ring and group: the decline, else an
    /// approval covering them, else the first approval (which does not).
    pub fn for_target(&self, ring: &str, group: Option<&str>) -> &'a Approval {
        if let Some(d) = self.decline() {
            return d;
        }
        self.approvals
            .iter()
            .copied()
            .find(|a| a.covers(ring, group))
            .unwrap_or(self.approvals[0])
    }

    /// Whether it is approved for a ring (of any group).
    pub fn approves_ring(&self, ring: &str) -> bool {
        self.approved()
            && self.approvals.iter().any(|a| match &a.verdict {
                Verdict::Approve { rings, .. } => {
                    rings.is_empty() || rings.iter().any(|r| r == ring)
                }
                Verdict::Decline => false,
            })
    }

    /// Whether it is approved for every ring and every group.
    pub fn approves_everywhere(&self) -> bool {
        self.approved()
            && self.approvals.iter().any(|a| {
                matches!(&a.verdict, Verdict::Approve { rings, groups } if rings.is_empty() && groups.is_empty())
            })
    }
}

impl Approval {
    /// Whether it approves an update for `ring`, on a host in `group`.
    pub fn covers(&self, ring: &str, group: Option<&str>) -> bool {
        match &self.verdict {
            Verdict::Decline => false,
            Verdict::Approve { rings, groups } => {
                (rings.is_empty() || rings.iter().any(|r| r == ring))
                    && (groups.is_empty() || group.is_some_and(|g| groups.iter().any(|x| x == g)))
            }
        }
    }
}

/// A version without a binary-only rebuild's suffix (`1.2-3+b1` is built
/// from source `1.2-3`).
fn without_bin_nmu(version: &str) -> Option<&str> {
    let (base, n) = version.rsplit_once("+b")?;
    (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit())).then_some(base)
}

/// The decision in force on `update`, looking decisions up by title with
/// `lookup`: the update's own, else its source's at the version offered,
/// else its source's, else those of the advisories it fixes. Among the
/// decisions of one rank a decline wins; `None` when no title has one.
pub fn decide<'a>(
    update: &Update<'_>,
    lookup: impl Fn(&str) -> Option<&'a Approval>,
) -> Option<Decided<'a>> {
    let found = |rank: Rank, titles: &mut dyn Iterator<Item = String>| {
        let mut approvals: Vec<&'a Approval> = Vec::new();
        for t in titles {
            if let Some(a) = lookup(&t) {
                if !approvals.iter().any(|b| std::ptr::eq(*b, a)) {
                    approvals.push(a);
                }
            }
        }
        (!approvals.is_empty()).then_some(Decided { rank, approvals })
    };
    let own = format!("{}={}", update.name, update.version);
    if let Some(d) = found(Rank::Package, &mut std::iter::once(own)) {
        return Some(d);
    }
    if let Some(source) = update.source {
        let mut versions = vec![format!("{SOURCE_PREFIX}{source}={}", update.version)];
        if let Some(base) = without_bin_nmu(update.version) {
            versions.push(format!("{SOURCE_PREFIX}{source}={base}"));
        }
        if let Some(d) = found(Rank::SourceVersion, &mut versions.into_iter()) {
            return Some(d);
        }
        let any = format!("{SOURCE_PREFIX}{source}");
        if let Some(d) = found(Rank::Source, &mut std::iter::once(any)) {
            return Some(d);
        }
    }
    found(
        Rank::Advisory,
        &mut update.advisories.iter().map(|a| (*a).to_owned()),
    )
}

/// When a rule's approval takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delay {
    /// At once.
    Immediately,
    /// This many days after the update's release.
    AfterRelease(SignedDuration),
    /// This many business days after another ring started deploying it.
    AfterRing {
        /// That ring.
        ring: String,
        /// Business days to wait.
        business_days: i64,
    },
}

/// An automatic approval rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its name.
    pub name: String,
    /// Classes it approves (none listed: every class).
    pub classes: Vec<Class>,
    /// Security updates only.
    pub security_only: bool,
    /// The ring it approves for (`None`: every ring).
    pub ring: Option<String>,
    /// When.
    pub delay: Delay,
}

/// An update waiting for a decision.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Its title.
    pub title: &'a str,
    /// Its class.
    pub class: Class,
    /// Whether it is a security update.
    pub security: bool,
    /// When it was released.
    pub released: Timestamp,
}

/// Whether an update may be deployed to a ring (and group) now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eligibility {
    /// Yes: approved by a person or a rule.
    Approved {
        /// `alice` or `rule critical-security`.
        by: String,
    },
    /// Not yet: a rule approves it at `until` (or once `reason` happens).
    Waiting {
        /// When, if known.
        until: Option<Timestamp>,
        /// Why it waits.
        reason: String,
    },
    /// No: a person declined it.
    Declined {
        /// Who.
        by: String,
        /// Their comment.
        comment: Option<String>,
    },
    /// No decision and no rule covers it.
    NotApproved,
}

/// The calendar business-day waits are counted in.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// The time zone the days are counted in.
    pub tz: TimeZone,
    /// Holidays.
    pub holidays: BTreeSet<Date>,
}

impl Calendar {
    /// The same time of day `n` business days after `start`, in the
    /// calendar's time zone; `None` past the end of the calendar.
    pub fn business_days_after(&self, start: Timestamp, n: i64) -> Option<Timestamp> {
        let day = start.to_zoned(self.tz.clone());
        schedule::add_business_days(day.date(), n, &self.holidays)
            .and_then(|d| d.to_datetime(day.time()).to_zoned(self.tz.clone()).ok())
            .map(|z| z.timestamp())
    }
}

/// What the decision on one title rests on.
#[allow(missing_debug_implementations)]
pub struct Decisions<'a> {
    /// A person's decision on the title, if there is one.
    pub manual: Option<&'a Approval>,
    /// The automatic rules in force.
    pub rules: &'a [Rule],
    /// When a ring started deploying the title, for waits counted from it.
    pub ring_started: &'a dyn Fn(&str) -> Option<Timestamp>,
    /// The calendar of business days.
    pub calendar: &'a Calendar,
}

/// Whether `candidate` may go to `ring` (of a host in `group`) at `now`. A
/// person's decision wins over rules; among rules, the earliest approval
/// wins.
pub fn eligibility(
    candidate: &Candidate<'_>,
    ring: &str,
    group: Option<&str>,
    decisions: &Decisions<'_>,
    now: Timestamp,
) -> Eligibility {
    let Decisions {
        manual,
        rules,
        ring_started,
        calendar,
    } = *decisions;
    if let Some(a) = manual {
        match &a.verdict {
            Verdict::Decline => {
                return Eligibility::Declined {
                    by: a.by.clone(),
                    comment: a.comment.clone(),
                }
            }
            Verdict::Approve { rings, groups } => {
                let ring_ok = rings.is_empty() || rings.iter().any(|r| r == ring);
                let group_ok =
                    groups.is_empty() || group.is_some_and(|g| groups.iter().any(|x| x == g));
                if ring_ok && group_ok {
                    return Eligibility::Approved { by: a.by.clone() };
                }
            }
        }
    }
    let mut best: Option<Eligibility> = None;
    for rule in rules {
        let covers = (rule.classes.is_empty() || rule.classes.contains(&candidate.class))
            && (!rule.security_only || candidate.security)
            && rule.ring.as_deref().is_none_or(|r| r == ring);
        if !covers {
            continue;
        }
        let from = match &rule.delay {
            Delay::Immediately => Some(candidate.released),
            Delay::AfterRelease(d) => Some(
                candidate
                    .released
                    .saturating_add(*d)
                    .unwrap_or(candidate.released),
            ),
            Delay::AfterRing {
                ring: first,
                business_days,
            } => match ring_started(first) {
                Some(started) => calendar.business_days_after(started, *business_days),
                None => {
                    if best.is_none() {
                        best = Some(Eligibility::Waiting {
                            until: None,
                            reason: format!(
                                "rule {}: waits {business_days} business days after ring {first} starts, which it has not",
                                rule.name
                            ),
                        });
                    }
                    continue;
                }
            },
        };
        let Some(from) = from else { continue };
        if from <= now {
            return Eligibility::Approved {
                by: format!("rule {}", rule.name),
            };
        }
        let sooner = match &best {
            Some(Eligibility::Waiting { until: Some(u), .. }) => from < *u,
            _ => true,
        };
        if sooner {
            best = Some(Eligibility::Waiting {
                until: Some(from),
                reason: format!("rule {} approves it at {from}", rule.name),
            });
        }
    }
    best.unwrap_or(Eligibility::NotApproved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn calendar() -> Calendar {
        Calendar {
            tz: TimeZone::UTC,
            holidays: ["2026-12-25".parse().unwrap()].into_iter().collect(),
        }
    }

    fn decisions<'a>(
        manual: Option<&'a Approval>,
        rules: &'a [Rule],
        started: &'a dyn Fn(&str) -> Option<Timestamp>,
    ) -> Decisions<'a> {
        static CALENDAR: std::sync::OnceLock<Calendar> = std::sync::OnceLock::new();
        Decisions {
            manual,
            rules,
            ring_started: started,
            calendar: CALENDAR.get_or_init(calendar),
        }
    }

    fn critical_rules() -> Vec<Rule> {
        vec![
            Rule {
                name: "critical-pilot".into(),
                classes: vec![Class::Critical],
                security_only: true,
                ring: Some("pilot".into()),
                delay: Delay::Immediately,
            },
            Rule {
                name: "critical-all".into(),
                classes: vec![Class::Critical],
                security_only: true,
                ring: Some("broad".into()),
                delay: Delay::AfterRing {
                    ring: "pilot".into(),
                    business_days: 2,
                },
            },
        ]
    }

    #[test]
    fn critical_security_updates_go_to_the_pilot_at_once_and_to_everyone_after_its_wait() {
        let c = Candidate {
            title: "DSA-5900-1",
            class: Class::Critical,
            security: true,
            released: t("2026-12-23T10:00:00Z"),
        };
        let rules = critical_rules();
        let not_started = |_: &str| None;
        let now = t("2026-12-23T11:00:00Z");
        let e = |ring, started: &dyn Fn(&str) -> Option<Timestamp>, now| {
            eligibility(&c, ring, None, &decisions(None, &rules, started), now)
        };
        assert_eq!(
            e("pilot", &not_started, now),
            Eligibility::Approved {
                by: "rule critical-pilot".into()
            }
        );
        assert!(matches!(
            e("broad", &not_started, now),
            Eligibility::Waiting { until: None, .. }
        ));
        // The pilot started on Wednesday 23 December; Thursday is a business
        // day, Friday 25 a holiday, the weekend skipped: Monday 28.
        let started = |_: &str| Some(t("2026-12-23T12:00:00Z"));
        assert_eq!(
            e("broad", &started, now),
            Eligibility::Waiting {
                until: Some(t("2026-12-28T12:00:00Z")),
                reason: "rule critical-all approves it at 2026-12-28T12:00:00Z".into()
            }
        );
        assert!(matches!(
            e("broad", &started, t("2026-12-28T12:00:00Z")),
            Eligibility::Approved { .. }
        ));
        // A high-class update is not covered.
        let high = Candidate {
            class: Class::High,
            ..c.clone()
        };
        assert_eq!(
            eligibility(
                &high,
                "pilot",
                None,
                &decisions(None, &rules, &not_started),
                now
            ),
            Eligibility::NotApproved
        );
    }

    #[test]
    fn a_person_decides_over_rules() {
        let c = Candidate {
            title: "DSA-5900-1",
            class: Class::Critical,
            security: true,
            released: t("2026-12-01T00:00:00Z"),
        };
        let decline = Approval {
            title: c.title.into(),
            verdict: Verdict::Decline,
            by: "alice".into(),
            comment: Some("breaks the ERP".into()),
        };
        let none = |_: &str| None;
        let now = t("2026-12-02T00:00:00Z");
        assert!(matches!(
            eligibility(
                &c,
                "pilot",
                None,
                &decisions(Some(&decline), &critical_rules(), &none),
                now
            ),
            Eligibility::Declined { .. }
        ));
        let approve = Approval {
            verdict: Verdict::Approve {
                rings: vec!["broad".into()],
                groups: vec!["servers".into()],
            },
            ..decline
        };
        let e =
            |ring, group| eligibility(&c, ring, group, &decisions(Some(&approve), &[], &none), now);
        assert_eq!(
            e("broad", Some("servers")),
            Eligibility::Approved { by: "alice".into() }
        );
        assert_eq!(e("broad", Some("laptops")), Eligibility::NotApproved);
        assert_eq!(e("pilot", Some("servers")), Eligibility::NotApproved);
    }

    fn person(title: &str, verdict: Verdict) -> Approval {
        Approval {
            title: title.into(),
            verdict,
            by: "alice".into(),
            comment: None,
        }
    }

    fn everywhere() -> Verdict {
        Verdict::Approve {
            rings: vec![],
            groups: vec![],
        }
    }

    #[test]
    fn titles_name_an_update_a_source_or_an_advisory() {
        let p = |t| Title::parse(t).map(|t| t.canonical());
        assert_eq!(
            p("openssh-server=1:9.2p1-2+deb12u3").unwrap(),
            "openssh-server=1:9.2p1-2+deb12u3"
        );
        assert_eq!(p(" dpkg 1.21.22 ").unwrap(), "dpkg=1.21.22");
        assert_eq!(p("source:openssh").unwrap(), "source:openssh");
        assert_eq!(p("source:dpkg 1.21.22").unwrap(), "source:dpkg=1.21.22");
        assert_eq!(p("DSA-5724-1").unwrap(), "DSA-5724-1");
        assert_eq!(
            p("bookworm-security:libssl3:3.0.17-1~deb12u2").unwrap(),
            "bookworm-security:libssl3:3.0.17-1~deb12u2"
        );
        for (bad, says) in [
            ("", "an empty title"),
            ("source:", "is not a source package name"),
            ("dpkg=", "version \"\" is not a package version"),
            ("dpkg=1 2", "is not a package version"),
            ("DSA 5724/1", "is not a package version"),
            ("<script>", "not an advisory id"),
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_most_specific_decision_wins_and_a_decline_wins_among_equals() {
        let decisions = [
            person("DSA-1", everywhere()),
            person("CVE-2", Verdict::Decline),
            person("source:dpkg", everywhere()),
            person("dpkg-dev=1.21.22", Verdict::Decline),
            person(
                "source:glibc=2.36-9+deb12u7",
                Verdict::Approve {
                    rings: vec!["pilot".into()],
                    groups: vec![],
                },
            ),
        ];
        let lookup = |t: &str| decisions.iter().find(|a| a.title == t);
        let update = |name, version, source, advisories| Update {
            name,
            version,
            source,
            advisories,
        };
        // The source's decision reaches each binary; the binary's own wins.
        let d = decide(
            &update("libdpkg-perl", "1.21.22", Some("dpkg"), &["DSA-1", "CVE-2"]),
            lookup,
        )
        .unwrap();
        assert_eq!(
            (d.rank, d.approved(), d.decided_by().title.as_str()),
            (Rank::Source, true, "source:dpkg")
        );
        let d = decide(&update("dpkg-dev", "1.21.22", Some("dpkg"), &[]), lookup).unwrap();
        assert_eq!((d.rank, d.approved()), (Rank::Package, false));
        // Two advisories, one approved and one declined: declined.
        let d = decide(
            &update("libssl3", "3.0.17", Some("openssl"), &["DSA-1", "CVE-2"]),
            lookup,
        )
        .unwrap();
        assert_eq!(
            (d.rank, d.approved(), d.decided_by().title.as_str()),
            (Rank::Advisory, false, "CVE-2")
        );
        let d = decide(
            &update("libssl3", "3.0.17", Some("openssl"), &["DSA-1"]),
            lookup,
        )
        .unwrap();
        assert!(d.approved() && d.approves_everywhere() && d.approves_ring("broad"));
        // A binary-only rebuild is reached by its source's version.
        let d = decide(
            &update("libc6", "2.36-9+deb12u7+b1", Some("glibc"), &[]),
            lookup,
        )
        .unwrap();
        assert_eq!(d.rank, Rank::SourceVersion);
        assert!(d.approves_ring("pilot") && !d.approves_ring("broad") && !d.approves_everywhere());
        assert_eq!(
            d.for_target("pilot", None).title,
            "source:glibc=2.36-9+deb12u7"
        );
        // Nothing reaches it.
        assert!(decide(&update("bash", "5.2", Some("bash"), &["DSA-9"]), lookup).is_none());
    }

    #[test]
    fn a_rule_can_wait_days_after_release() {
        let c = Candidate {
            title: "curl 7.88.1-10+deb12u9",
            class: Class::Medium,
            security: false,
            released: t("2026-12-01T00:00:00Z"),
        };
        let rules = [Rule {
            name: "a-week-later".into(),
            classes: vec![],
            security_only: false,
            ring: None,
            delay: Delay::AfterRelease(SignedDuration::from_hours(24 * 7)),
        }];
        let none = |_: &str| None;
        let e = |now| eligibility(&c, "broad", None, &decisions(None, &rules, &none), now);
        assert!(matches!(
            e(t("2026-12-07T23:59:59Z")),
            Eligibility::Waiting { .. }
        ));
        assert!(matches!(
            e(t("2026-12-08T00:00:00Z")),
            Eligibility::Approved { .. }
        ));
    }
}
