//! Approvals by title: a person approves an update for some rings or
//! groups, or declines it; rules approve automatically ("Critical security
//! updates: the pilot ring at once, everyone five business days after the
//! pilot started"). [`eligibility`] says, for one update and one ring, whether
//! it may be deployed now, and if not, until when or why not.

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
