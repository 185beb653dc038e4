//! SLA clocks: by when a finding must be fixed, and where it stands now.
//!
//! The deadline is the start plus the class's period (defaults: Critical
//! 24 hours, High 7 days, Medium 30 days, Low 90 days). The start is the
//! advisory's publication or the first time the host was seen with it,
//! whichever the policy says: a laptop that checks in weekly should not be
//! in breach the moment it arrives. Time under an exemption does not count:
//! each exempt period that falls after the start moves the deadline by its
//! length, and while one is in force the clock is paused.

use jiff::{SignedDuration, Timestamp};

use crate::classify::Class;

/// Where the clock starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// When the advisory was published (the first detection when unknown).
    Publication,
    /// When the host was first seen affected.
    #[default]
    FirstDetection,
}

/// Deadlines per class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Critical, High, Medium, Low.
    pub periods: [SignedDuration; 4],
    /// Where the clock starts.
    pub start: Start,
    /// "Due soon" once less than this share of the period is left (in
    /// percent).
    pub due_soon_percent: u8,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            periods: [
                SignedDuration::from_hours(24),
                SignedDuration::from_hours(24 * 7),
                SignedDuration::from_hours(24 * 30),
                SignedDuration::from_hours(24 * 90),
            ],
            start: Start::FirstDetection,
            due_soon_percent: 25,
        }
    }
}

impl Policy {
    /// The period of a class.
    pub fn period(&self, class: Class) -> SignedDuration {
        self.periods[match class {
            Class::Critical => 0,
            Class::High => 1,
            Class::Medium => 2,
            Class::Low => 3,
        }]
    }
}

/// A period of exemption, from its start to its expiry (or open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paused {
    /// From.
    pub from: Timestamp,
    /// Until; None while it has no end.
    pub until: Option<Timestamp>,
}

/// Where a clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// More than the due-soon share of the period left.
    Within,
    /// Less than that left.
    DueSoon,
    /// Past the deadline.
    Breached,
    /// An exemption is in force: the clock is paused.
    Exempt,
}

impl State {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Within => "within",
            State::DueSoon => "due-soon",
            State::Breached => "breached",
            State::Exempt => "exempt",
        }
    }
}

/// A clock read at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Where it started.
    pub started: Timestamp,
    /// The deadline, exempt time added.
    pub deadline: Timestamp,
    /// Where it stands.
    pub state: State,
}

/// Reads the clock of one finding at `now`.
pub fn clock(
    policy: &Policy,
    class: Class,
    published: Option<Timestamp>,
    first_detected: Timestamp,
    paused: &[Paused],
    now: Timestamp,
) -> Clock {
    let started = match (policy.start, published) {
        (Start::Publication, Some(p)) => p,
        _ => first_detected,
    };
    let period = policy.period(class);
    // Exempt time after the start, up to now, moves the deadline; periods
    // that overlap count once.
    let mut spans: Vec<(Timestamp, Timestamp)> = paused
        .iter()
        .map(|p| (p.from.max(started), p.until.map_or(now, |u| u.min(now))))
        .filter(|(from, until)| until > from)
        .collect();
    spans.sort();
    let mut exempt = SignedDuration::ZERO;
    let mut reached = started;
    for (from, until) in spans {
        let from = from.max(reached);
        if until > from {
            exempt = exempt.saturating_add(until.duration_since(from));
            reached = until;
        }
    }
    let deadline = started
        .checked_add(period.saturating_add(exempt))
        .unwrap_or(Timestamp::MAX);
    let exempt_now = paused
        .iter()
        .any(|p| p.from <= now && p.until.is_none_or(|u| u > now));
    let state = if exempt_now {
        State::Exempt
    } else if now >= deadline {
        State::Breached
    } else {
        let left = deadline.duration_since(now);
        let soon = period / 100 * i32::from(policy.due_soon_percent);
        if left <= soon {
            State::DueSoon
        } else {
            State::Within
        }
    };
    Clock {
        started,
        deadline,
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_critical_clock_runs_a_day_from_first_detection() {
        let policy = Policy::default();
        let seen = t("2026-11-20T10:00:00Z");
        let read = |now: &str| {
            clock(
                &policy,
                Class::Critical,
                Some(t("2026-11-01T00:00:00Z")),
                seen,
                &[],
                t(now),
            )
        };
        assert_eq!(read("2026-11-20T12:00:00Z").state, State::Within);
        assert_eq!(
            read("2026-11-20T12:00:00Z").deadline,
            t("2026-11-21T10:00:00Z")
        );
        // The last quarter of the day is "due soon".
        assert_eq!(read("2026-11-21T05:00:00Z").state, State::DueSoon);
        assert_eq!(read("2026-11-21T10:00:00Z").state, State::Breached);
        // Counted from publication instead, the laptop arrives in breach.
        let from_publication = Policy {
            start: Start::Publication,
            ..Policy::default()
        };
        let c = clock(
            &from_publication,
            Class::Critical,
            Some(t("2026-11-01T00:00:00Z")),
            seen,
            &[],
            t("2026-11-20T12:00:00Z"),
        );
        assert_eq!(c.state, State::Breached);
    }

    #[test]
    fn an_exemption_pauses_the_clock_and_its_time_moves_the_deadline() {
        let policy = Policy::default();
        let seen = t("2026-11-01T00:00:00Z");
        let paused = [Paused {
            from: t("2026-11-03T00:00:00Z"),
            until: Some(t("2026-11-05T00:00:00Z")),
        }];
        // High: 7 days, plus the 2 exempt days.
        let during = clock(
            &policy,
            Class::High,
            None,
            seen,
            &paused,
            t("2026-11-04T00:00:00Z"),
        );
        assert_eq!(during.state, State::Exempt);
        let after = clock(
            &policy,
            Class::High,
            None,
            seen,
            &paused,
            t("2026-11-07T12:00:00Z"),
        );
        assert_eq!(after.deadline, t("2026-11-10T00:00:00Z"));
        assert_eq!(after.state, State::Within);
        assert_eq!(
            clock(
                &policy,
                Class::High,
                None,
                seen,
                &paused,
                t("2026-11-10T00:00:01Z")
            )
            .state,
            State::Breached
        );
        // Two exemptions over the same days count those days once.
        let overlapping = [
            paused[0],
            Paused {
                from: t("2026-11-04T00:00:00Z"),
                until: Some(t("2026-11-06T00:00:00Z")),
            },
        ];
        let c = clock(
            &policy,
            Class::High,
            None,
            seen,
            &overlapping,
            t("2026-11-07T00:00:00Z"),
        );
        assert_eq!(c.deadline, t("2026-11-11T00:00:00Z"));
        // An open exemption pauses it for as long as it lasts.
        let open = [Paused {
            from: t("2026-11-02T00:00:00Z"),
            until: None,
        }];
        let c = clock(
            &policy,
            Class::High,
            None,
            seen,
            &open,
            t("2026-12-01T00:00:00Z"),
        );
        assert_eq!(c.state, State::Exempt);
    }
}
