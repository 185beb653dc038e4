//! Schedules as people say them, and waits in business days.
//!
//! Rules:
//! - monthly: `second tuesday of every month at 22:00` (Patch Tuesday),
//!   optionally shifted: `... plus 3 days`, `... minus 1 day`. Ordinals:
//!   first, second, third, fourth, last (or 1st, 2nd, 3rd, 4th).
//! - weekly: `every mon,wed,fri at 22:00`, `every monday at 02:30`,
//!   `every day at 03:00`, `every weekday at 21:00`.
//!
//! Times are wall-clock times in the time zone given with the rule. On a
//! day when the clock jumps, a time that does not exist is taken as the
//! same time after the jump, and a time that occurs twice as its first
//! occurrence (jiff's "compatible" rule, which is RFC 5545's).
//!
//! This module is pure: the time zone and the holidays come in as values.

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{ToSpan, Zoned};

/// Which weekday of a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nth {
    /// The first to the fourth.
    Number(i8),
    /// The last.
    Last,
}

/// A recurring time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The nth weekday of every month, at a time, shifted by some days.
    Monthly {
        /// Which one.
        nth: Nth,
        /// Which weekday.
        weekday: Weekday,
        /// At what time.
        time: Time,
        /// Days after (or, negative, before) it.
        offset_days: i32,
    },
    /// Some days of every week, at a time.
    Weekly {
        /// The days, Monday first.
        days: Vec<Weekday>,
        /// At what time.
        time: Time,
    },
}

/// A rule that cannot be read: what was expected, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule {text:?}: {message} (at word {word})")]
pub struct RuleError {
    /// The rule as given.
    pub text: String,
    /// The word (counted from 1) where reading failed.
    pub word: usize,
    /// What was wrong.
    pub message: String,
}

fn weekday(word: &str) -> Option<Weekday> {
    let w = word.to_ascii_lowercase();
    let all = [
        ("monday", Weekday::Monday),
        ("tuesday", Weekday::Tuesday),
        ("wednesday", Weekday::Wednesday),
        ("thursday", Weekday::Thursday),
        ("friday", Weekday::Friday),
        ("saturday", Weekday::Saturday),
        ("sunday", Weekday::Sunday),
    ];
    all.iter()
        .find(|(name, _)| w == *name || (w.len() >= 3 && name.starts_with(w.as_str())))
        .map(|&(_, d)| d)
}

fn clock(word: &str) -> Option<Time> {
    let (h, m) = word.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    Time::new(h, m, 0, 0).ok()
}

impl Rule {
    /// Reads a rule.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let fail = |word: usize, message: &str| RuleError {
            text: text.to_owned(),
            word: word + 1,
            message: message.to_owned(),
        };
        let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
        let at = |i: usize| lower.get(i).map_or("", String::as_str);
        if words.is_empty() {
            return Err(fail(0, "empty; expected for example `second tuesday of every month at 22:00` or `every mon,wed,fri at 22:00`"));
        }
        let time_at = |i: usize| -> Result<Time, RuleError> {
            if at(i) != "at" {
                return Err(fail(i, "expected `at HH:MM`"));
            }
            clock(at(i + 1))
                .ok_or_else(|| fail(i + 1, "expected a time of day HH:MM (00:00 to 23:59)"))
        };
        if at(0) == "every" {
            let days = match at(1) {
                "day" => vec![
                    Weekday::Monday,
                    Weekday::Tuesday,
                    Weekday::Wednesday,
                    Weekday::Thursday,
                    Weekday::Friday,
                    Weekday::Saturday,
                    Weekday::Sunday,
                ],
                "weekday" => vec![
                    Weekday::Monday,
                    Weekday::Tuesday,
                    Weekday::Wednesday,
                    Weekday::Thursday,
                    Weekday::Friday,
                ],
                list => {
                    let mut days = Vec::new();
                    for name in list.split(',').filter(|n| !n.is_empty()) {
                        days.push(weekday(name).ok_or_else(|| {
                            fail(1, &format!("{name:?} is not a day of the week (mon, tue, ... or monday, ...)"))
                        })?);
                    }
                    if days.is_empty() {
                        return Err(fail(
                            1,
                            "expected days: `day`, `weekday` or a list such as mon,wed,fri",
                        ));
                    }
                    days.sort_by_key(|d| d.to_monday_one_offset());
                    days.dedup();
                    days
                }
            };
            let time = time_at(2)?;
            if words.len() > 4 {
                return Err(fail(4, "unexpected words after the time"));
            }
            return Ok(Rule::Weekly { days, time });
        }
        let nth = match at(0) {
            "first" | "1st" => Nth::Number(1),
            "second" | "2nd" => Nth::Number(2),
            "third" | "3rd" => Nth::Number(3),
            "fourth" | "4th" => Nth::Number(4),
            "last" => Nth::Last,
            _ => {
                return Err(fail(
                    0,
                    "expected `every` or an ordinal: first, second, third, fourth, last",
                ))
            }
        };
        let weekday = weekday(at(1)).ok_or_else(|| fail(1, "expected a day of the week"))?;
        if at(2) != "of" || at(3) != "every" || at(4) != "month" {
            return Err(fail(2, "expected `of every month`"));
        }
        let time = time_at(5)?;
        let offset_days = match (at(7), at(8), at(9)) {
            ("", _, _) => 0,
            (sign @ ("plus" | "minus"), n, "day" | "days") if words.len() == 10 => {
                let n: i32 = n
                    .parse()
                    .ok()
                    .filter(|n| (0..=27).contains(n))
                    .ok_or_else(|| fail(8, "expected a number of days from 0 to 27"))?;
                if sign == "minus" {
                    -n
                } else {
                    n
                }
            }
            _ => {
                return Err(fail(
                    7,
                    "expected `plus N days` or `minus N days` after the time, or nothing",
                ))
            }
        };
        Ok(Rule::Monthly {
            nth,
            weekday,
            time,
            offset_days,
        })
    }

    /// The first occurrence strictly after `after`, in `tz`.
    pub fn next_after(&self, after: &Zoned, tz: &TimeZone) -> Option<Zoned> {
        let after = after.with_time_zone(tz.clone());
        let at = |date: Date, time: Time| date.to_datetime(time).to_zoned(tz.clone()).ok();
        match self {
            Rule::Weekly { days, time } => (0..=7)
                .filter_map(|d| after.date().checked_add(d.days()).ok())
                .filter(|date| days.contains(&date.weekday()))
                .filter_map(|date| at(date, *time))
                .find(|z| *z > after),
            Rule::Monthly {
                nth,
                weekday,
                time,
                offset_days,
            } => {
                // Months around `after`: an offset may carry an occurrence
                // into the next month or back into the previous one.
                let first = after.date().first_of_month().checked_sub(2.months()).ok()?;
                (0..16)
                    .filter_map(|m| first.checked_add(m.months()).ok())
                    .filter_map(|month| {
                        let day = match nth {
                            Nth::Number(n) => month.nth_weekday_of_month(*n, *weekday).ok()?,
                            Nth::Last => month.nth_weekday_of_month(-1, *weekday).ok()?,
                        };
                        at(day.checked_add(i64::from(*offset_days).days()).ok()?, *time)
                    })
                    .find(|z| *z > after)
            }
        }
    }

    /// The next `count` occurrences after `after`, in order.
    pub fn occurrences(&self, after: &Zoned, tz: &TimeZone, count: usize) -> Vec<Zoned> {
        let mut out = Vec::with_capacity(count);
        let mut cursor = after.clone();
        while out.len() < count {
            match self.next_after(&cursor, tz) {
                Some(next) => {
                    cursor = next.clone();
                    out.push(next);
                }
                None => break,
            }
        }
        out
    }
}

impl fmt::Display for Nth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Nth::Number(1) => "first",
            Nth::Number(2) => "second",
            Nth::Number(3) => "third",
            Nth::Number(_) => "fourth",
            Nth::Last => "last",
        })
    }
}

/// Whether a day is a business day: not Saturday, not Sunday, not a holiday.
pub fn is_business_day(date: Date, holidays: &BTreeSet<Date>) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) && !holidays.contains(&date)
}

/// The date `n` business days after `date` (before it, for a negative `n`).
/// Zero gives `date` itself. None past the end of the calendar.
pub fn add_business_days(date: Date, n: i64, holidays: &BTreeSet<Date>) -> Option<Date> {
    let step = if n < 0 { -1 } else { 1 };
    let mut left = n.unsigned_abs();
    let mut day = date;
    while left > 0 {
        day = day.checked_add(step.days()).ok()?;
        if is_business_day(day, holidays) {
            left -= 1;
        }
    }
    Some(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn next(rule: &str, after: &str, tz: &str, count: usize) -> Vec<String> {
        let tz = TimeZone::get(tz).unwrap();
        let after: Zoned = after
            .parse::<jiff::Timestamp>()
            .unwrap()
            .to_zoned(tz.clone());
        Rule::parse(rule)
            .unwrap()
            .occurrences(&after, &tz, count)
            .iter()
            .map(|z| z.timestamp().display_with_offset(z.offset()).to_string())
            .collect()
    }

    #[test]
    fn patch_tuesday_is_the_second_tuesday_and_shifts_by_days() {
        assert_eq!(
            next(
                "second tuesday of every month at 22:00",
                "2026-11-01T00:00:00Z",
                "UTC",
                3
            ),
            [
                "2026-11-10T22:00:00+00:00",
                "2026-12-08T22:00:00+00:00",
                "2027-01-12T22:00:00+00:00"
            ]
        );
        // Three days later: the Friday after; across a month's end too.
        assert_eq!(
            next(
                "second tuesday of every month at 22:00 plus 3 days",
                "2026-11-11T00:00:00Z",
                "UTC",
                2
            ),
            ["2026-11-13T22:00:00+00:00", "2026-12-11T22:00:00+00:00"]
        );
        assert_eq!(
            next(
                "last friday of every month at 18:00 plus 4 days",
                "2026-01-28T00:00:00Z",
                "UTC",
                1
            ),
            ["2026-02-03T18:00:00+00:00"]
        );
        // Strictly after: an occurrence at the very instant is not next.
        assert_eq!(
            next(
                "second tuesday of every month at 22:00",
                "2026-11-10T22:00:00Z",
                "UTC",
                1
            ),
            ["2026-12-08T22:00:00+00:00"]
        );
    }

    #[test]
    fn weekly_rules_in_a_time_zone_follow_its_clock_changes() {
        // Berlin leaves summer time on 2026-10-25.
        assert_eq!(
            next(
                "every mon,wed,fri at 22:00",
                "2026-10-21T12:00:00Z",
                "Europe/Berlin",
                4
            ),
            [
                "2026-10-21T22:00:00+02:00",
                "2026-10-23T22:00:00+02:00",
                "2026-10-26T22:00:00+01:00",
                "2026-10-28T22:00:00+01:00",
            ]
        );
        // 02:30 does not exist in Berlin on 2026-03-29: it becomes 03:30.
        assert_eq!(
            next(
                "every day at 02:30",
                "2026-03-28T12:00:00Z",
                "Europe/Berlin",
                2
            ),
            ["2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"]
        );
        assert_eq!(
            next("every weekday at 21:00", "2026-11-20T22:00:00Z", "UTC", 2),
            ["2026-11-23T21:00:00+00:00", "2026-11-24T21:00:00+00:00"]
        );
    }

    #[test]
    fn bad_rules_say_which_word_and_why() {
        let error = |rule: &str| Rule::parse(rule).unwrap_err().to_string();
        assert_eq!(
            error("second tuesday of every month at 25:00"),
            "schedule \"second tuesday of every month at 25:00\": expected a time of day HH:MM (00:00 to 23:59) (at word 7)"
        );
        assert!(error("fifth monday of every month at 10:00")
            .contains("expected `every` or an ordinal"));
        assert!(error("every mon,funday at 10:00").contains("\"funday\" is not a day of the week"));
        assert!(
            error("second tuesday of every month at 22:00 plus 40 days").contains("from 0 to 27")
        );
        assert!(error("every day").contains("expected `at HH:MM`"));
        assert!(error("").contains("empty"));
    }

    #[test]
    fn business_days_skip_weekends_and_holidays() {
        let none = BTreeSet::new();
        // Friday plus one business day is Monday.
        assert_eq!(
            add_business_days(date(2026, 11, 20), 1, &none),
            Some(date(2026, 11, 23))
        );
        assert_eq!(
            add_business_days(date(2026, 11, 20), 5, &none),
            Some(date(2026, 11, 27))
        );
        assert_eq!(
            add_business_days(date(2026, 11, 21), 0, &none),
            Some(date(2026, 11, 21))
        );
        assert_eq!(
            add_business_days(date(2026, 11, 23), -1, &none),
            Some(date(2026, 11, 20))
        );
        let holidays: BTreeSet<Date> = [
            date(2026, 12, 24),
            date(2026, 12, 25),
            date(2026, 12, 31),
            date(2027, 1, 1),
        ]
        .into_iter()
        .collect();
        // From Wednesday 23 December, three business days: 28, 29, 30.
        assert_eq!(
            add_business_days(date(2026, 12, 23), 3, &holidays),
            Some(date(2026, 12, 30))
        );
        assert_eq!(
            add_business_days(date(2026, 12, 23), 4, &holidays),
            Some(date(2027, 1, 4))
        );
    }
}
