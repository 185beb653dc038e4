//! `patchwell schedule`: try schedule rules and business-day waits from the
//! command line, with no server.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use patchwell_core::schedule::{add_business_days, Rule};

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Print the next occurrences of a rule, one RFC 3339 time a line.
    Next {
        /// The rule: `second tuesday of every month at 22:00`, the same
        /// `plus 3 days`, `every mon,wed,fri at 22:00`.
        rule: String,
        /// After this time: RFC 3339 (`2026-11-01T09:00:00Z`) or a date
        /// (`2026-11-01`, its start in the time zone).
        #[arg(long, value_name = "TIME")]
        after: String,
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// The time zone the rule's clock times are in (`Europe/Berlin`).
        #[arg(long, value_name = "TZ", default_value = "UTC")]
        tz: String,
    },
    /// Print the date N business days after DATE (weekends and holidays skipped).
    AddBusinessDays {
        /// The start date (`2026-12-23`).
        date: String,
        /// How many business days (negative: before).
        #[arg(allow_hyphen_values = true)]
        n: i64,
        /// Holidays: a file of ISO dates, one a line (`#` starts a comment).
        #[arg(long, value_name = "FILE")]
        holidays: Option<PathBuf>,
    },
}

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn parse_date(text: &str, what: &str) -> Result<Date, String> {
    text.trim()
        .parse::<Date>()
        .map_err(|e| format!("{what} {text:?} is not a date (YYYY-MM-DD): {e}"))
}

pub(crate) fn run(command: ScheduleCommand) -> ExitCode {
    match command {
        ScheduleCommand::Next {
            rule,
            after,
            count,
            tz,
        } => {
            let zone = match TimeZone::get(&tz) {
                Ok(zone) => zone,
                Err(e) => return fail(format!("--tz {tz:?} is not a known time zone: {e}")),
            };
            let rule = match Rule::parse(&rule) {
                Ok(rule) => rule,
                Err(e) => return fail(e.to_string()),
            };
            let start: Zoned = if let Ok(t) = after.trim().parse::<Timestamp>() {
                t.to_zoned(zone.clone())
            } else if let Ok(d) = after.trim().parse::<Date>() {
                match d.to_zoned(zone.clone()) {
                    Ok(z) => z,
                    Err(e) => return fail(format!("--after {after:?}: {e}")),
                }
            } else {
                return fail(format!(
                    "--after {after:?} is neither an RFC 3339 time (2026-11-01T09:00:00Z) nor a date (2026-11-01)"
                ));
            };
            for z in rule.occurrences(&start, &zone, count) {
                println!("{}", z.timestamp().display_with_offset(z.offset()));
            }
            ExitCode::SUCCESS
        }
        ScheduleCommand::AddBusinessDays { date, n, holidays } => {
            let date = match parse_date(&date, "DATE") {
                Ok(d) => d,
                Err(e) => return fail(e),
            };
            let mut days = BTreeSet::new();
            if let Some(file) = holidays {
                let text = match std::fs::read_to_string(&file) {
                    Ok(t) => t,
                    Err(e) => return fail(format!("--holidays {}: {e}", file.display())),
                };
                for (i, line) in text.lines().enumerate() {
                    let line = line.split('#').next().unwrap_or("").trim();
                    if line.is_empty() {
                        continue;
                    }
                    match parse_date(line, &format!("{} line {}:", file.display(), i + 1)) {
                        Ok(d) => {
                            days.insert(d);
                        }
                        Err(e) => return fail(e),
                    }
                }
            }
            match add_business_days(date, n, &days) {
                Some(d) => {
                    println!("{d}");
                    ExitCode::SUCCESS
                }
                None => fail(format!(
                    "{date} plus {n} business days is past the end of the calendar"
                )),
            }
        }
    }
}
