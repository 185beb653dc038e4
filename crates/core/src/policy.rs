//! Policies: which hosts (a group query), which updates (classes, packages,
//! security only or all), how they are approved, when they are deployed
//! (a schedule and maintenance windows, in a time zone) and how hosts
//! reboot. The deploy phase carries policies out; here they are parsed,
//! checked and asked the questions a plan needs ("may this update go?",
//! "is this host's window open, and if not, when does it open?").

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::classify::Class;
use crate::query::Query;
use crate::schedule::Rule;

/// Which updates a policy deploys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// Classes (none listed: every class).
    pub classes: Vec<Class>,
    /// Packages (none listed: every package).
    pub packages: Vec<String>,
    /// Security updates only.
    pub security_only: bool,
}

impl Selection {
    /// Whether an update is selected.
    pub fn admits(&self, class: Class, packages: &[&str], security: bool) -> bool {
        (self.classes.is_empty() || self.classes.contains(&class))
            && (self.packages.is_empty()
                || packages
                    .iter()
                    .any(|p| self.packages.iter().any(|s| s == p)))
            && (security || !self.security_only)
    }
}

/// How the updates a policy selects are approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalMode {
    /// A person approves each.
    Manual,
    /// The named automatic rules approve them (a person may still decide).
    Rules(Vec<String>),
}

/// When a host may be disturbed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// When it opens.
    pub opens: Rule,
    /// How long it stays open.
    pub length: SignedDuration,
}

/// How hosts reboot after updates that need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reboot {
    /// Never: the host stays "reboot required" until someone reboots it.
    Never,
    /// When required, inside the window; the user may defer up to
    /// `max_deferral`, after which the reboot happens.
    IfRequired {
        /// How long a user may put it off.
        max_deferral: SignedDuration,
    },
    /// After every deployment.
    Always,
}

/// A policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its name.
    pub name: String,
    /// The hosts, as written.
    pub hosts_text: String,
    /// The hosts, parsed.
    pub hosts: Query,
    /// The updates.
    pub updates: Selection,
    /// Approval.
    pub approval: ApprovalMode,
    /// When deployments start, as written and parsed.
    pub schedule: Option<(String, Rule)>,
    /// Maintenance windows (none: any time).
    pub windows: Vec<Window>,
    /// The time zone of the schedule and windows.
    pub tz: TimeZone,
    /// Reboot behaviour.
    pub reboot: Reboot,
}

/// Whether a host's window is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowState {
    /// Open until then (`None`: the policy has no windows, so always).
    Open {
        /// When it closes.
        until: Option<Timestamp>,
    },
    /// Closed; opens then.
    Closed {
        /// The next opening.
        opens: Option<Timestamp>,
    },
}

impl Policy {
    /// The window state at `now`.
    pub fn window_at(&self, now: Timestamp) -> WindowState {
        if self.windows.is_empty() {
            return WindowState::Open { until: None };
        }
        let zoned = now.to_zoned(self.tz.clone());
        let mut next_open: Option<Timestamp> = None;
        let mut open_until: Option<Timestamp> = None;
        for w in &self.windows {
            // The latest opening at or before now: the first after
            // (now - length - 1s), if it is not after now.
            let back = zoned
                .timestamp()
                .checked_sub(w.length)
                .ok()
                .map(|t| t.to_zoned(self.tz.clone()));
            if let Some(start) = back.and_then(|b| w.opens.next_after(&b, &self.tz)) {
                let start = start.timestamp();
                if start <= now {
                    let end = start.saturating_add(w.length).unwrap_or(start);
                    if end > now {
                        open_until = Some(open_until.map_or(end, |u| u.max(end)));
                        continue;
                    }
                }
            }
            if let Some(next) = w.opens.next_after(&zoned, &self.tz) {
                let next = next.timestamp();
                next_open = Some(next_open.map_or(next, |n| n.min(next)));
            }
        }
        match open_until {
            Some(until) => WindowState::Open { until: Some(until) },
            None => WindowState::Closed { opens: next_open },
        }
    }

    /// Every opening of the policy's windows that overlaps `[from, until)`,
    /// as (opens, closes), in time order; overlapping openings are merged.
    /// Empty when the policy has no windows (any time will do).
    pub fn windows_between(
        &self,
        from: Timestamp,
        until: Timestamp,
    ) -> Vec<(Timestamp, Timestamp)> {
        let mut spans: Vec<(Timestamp, Timestamp)> = Vec::new();
        for w in &self.windows {
            // Start far enough back to catch an opening still open at `from`.
            let Ok(back) = from.checked_sub(w.length) else {
                continue;
            };
            let mut cursor = back.to_zoned(self.tz.clone());
            while let Some(next) = w.opens.next_after(&cursor, &self.tz) {
                let start = next.timestamp();
                if start >= until {
                    break;
                }
                let end = start.saturating_add(w.length).unwrap_or(start);
                if end > from {
                    spans.push((start, end));
                }
                cursor = next;
                if spans.len() > 10_000 {
                    break;
                }
            }
        }
        spans.sort();
        let mut merged: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(spans.len());
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }

    /// The next scheduled start after `after`, if the policy has a schedule.
    pub fn next_run(&self, after: Timestamp) -> Option<Timestamp> {
        let (_, rule) = self.schedule.as_ref()?;
        rule.next_after(&after.to_zoned(self.tz.clone()), &self.tz)
            .map(|z| z.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(windows: Vec<Window>) -> Policy {
        Policy {
            name: "servers".into(),
            hosts_text: "tag = server".into(),
            hosts: Query::parse("tag = server").unwrap(),
            updates: Selection::default(),
            approval: ApprovalMode::Manual,
            schedule: Some((
                "second tuesday of every month at 22:00".into(),
                Rule::parse("second tuesday of every month at 22:00").unwrap(),
            )),
            windows,
            tz: TimeZone::get("Europe/Berlin").unwrap(),
            reboot: Reboot::IfRequired {
                max_deferral: SignedDuration::from_hours(24),
            },
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_openings_of_a_window_are_listed_for_a_stretch_of_time() {
        let p = policy(vec![Window {
            opens: Rule::parse("every sat at 01:00").unwrap(),
            length: SignedDuration::from_hours(4),
        }]);
        // From inside the first opening, for two weeks.
        let spans = p.windows_between(t("2026-12-05T02:00:00Z"), t("2026-12-19T02:00:00Z"));
        assert_eq!(
            spans,
            [
                (t("2026-12-05T00:00:00Z"), t("2026-12-05T04:00:00Z")),
                (t("2026-12-12T00:00:00Z"), t("2026-12-12T04:00:00Z")),
                (t("2026-12-19T00:00:00Z"), t("2026-12-19T04:00:00Z")),
            ]
        );
        assert!(policy(Vec::new())
            .windows_between(t("2026-12-05T02:00:00Z"), t("2026-12-19T02:00:00Z"))
            .is_empty());
    }

    #[test]
    fn windows_open_and_close_in_the_policy_time_zone() {
        let p = policy(vec![Window {
            opens: Rule::parse("every sat at 01:00").unwrap(),
            length: SignedDuration::from_hours(4),
        }]);
        // Saturday 5 December 2026, 01:00 in Berlin is 00:00 UTC.
        assert_eq!(
            p.window_at(t("2026-12-05T02:00:00Z")),
            WindowState::Open {
                until: Some(t("2026-12-05T04:00:00Z"))
            }
        );
        assert_eq!(
            p.window_at(t("2026-12-05T04:00:00Z")),
            WindowState::Closed {
                opens: Some(t("2026-12-12T00:00:00Z"))
            }
        );
        assert_eq!(
            policy(vec![]).window_at(t("2026-12-05T04:00:00Z")),
            WindowState::Open { until: None }
        );
    }

    #[test]
    fn the_schedule_gives_patch_tuesday() {
        // The second Tuesday of December 2026 is the 8th; 22:00 in Berlin.
        assert_eq!(
            policy(vec![]).next_run(t("2026-12-01T00:00:00Z")),
            Some(t("2026-12-08T21:00:00Z"))
        );
    }

    #[test]
    fn a_selection_admits_by_class_package_and_security() {
        let s = Selection {
            classes: vec![Class::Critical, Class::High],
            packages: vec![],
            security_only: true,
        };
        assert!(s.admits(Class::High, &["openssl"], true));
        assert!(!s.admits(Class::Medium, &["openssl"], true));
        assert!(!s.admits(Class::High, &["openssl"], false));
        let only = Selection {
            packages: vec!["openssl".into()],
            ..Selection::default()
        };
        assert!(only.admits(Class::Low, &["libssl3", "openssl"], false));
        assert!(!only.admits(Class::Low, &["curl"], false));
    }
}
