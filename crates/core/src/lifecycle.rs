//! Release lifecycles (endoflife.date's data): is a host's OS release still
//! supported, only in extended support, or past its end of life?

use std::fmt;

use jiff::civil::Date;

/// A support phase's end: a date, or just yes/no when the vendor gives none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupportEnd {
    /// Ends (or ended) on this date.
    On(Date),
    /// Already ended, date not given.
    Ended,
    /// Not ended, no date given.
    Ongoing,
}

impl SupportEnd {
    /// Whether it has ended by `today`.
    pub fn ended_by(self, today: Date) -> bool {
        match self {
            SupportEnd::On(date) => date <= today,
            SupportEnd::Ended => true,
            SupportEnd::Ongoing => false,
        }
    }
}

/// One release cycle of a product (`12` of Debian, `22.04` of Ubuntu).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseCycle {
    /// The cycle's name as endoflife.date writes it.
    pub cycle: String,
    /// Its code name, when it has one.
    pub codename: Option<String>,
    /// When it was released.
    pub release_date: Option<Date>,
    /// The end of (security) support.
    pub eol: SupportEnd,
    /// The end of extended support (Debian LTS, Ubuntu ESM), when there is one.
    pub extended: Option<SupportEnd>,
    /// The latest point release.
    pub latest: Option<String>,
}

/// A product's lifecycle: its release cycles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// endoflife.date's identifier (`debian`, `ubuntu`, `alpine-linux`).
    pub product: String,
    /// Its display name.
    pub title: String,
    /// The release cycles, as listed.
    pub releases: Vec<ReleaseCycle>,
}

/// Where a release stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Supported; security support ends on the date, when known.
    Supported {
        /// The end of security support.
        until: Option<Date>,
    },
    /// Security support ended; extended support (LTS, ESM) goes on.
    ExtendedOnly {
        /// When security support ended, when known.
        eol: Option<Date>,
        /// When extended support ends, when known.
        until: Option<Date>,
    },
    /// Past its end of life: no more updates.
    EndOfLife {
        /// Since when, when known.
        since: Option<Date>,
    },
}

impl Support {
    /// Whether this is a finding: anything but full support is.
    pub fn is_finding(&self) -> bool {
        !matches!(self, Support::Supported { .. })
    }

    /// A short name: `supported`, `extended-support`, `end-of-life`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Support::Supported { .. } => "supported",
            Support::ExtendedOnly { .. } => "extended-support",
            Support::EndOfLife { .. } => "end-of-life",
        }
    }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date =
            |d: &Option<Date>| d.map_or_else(|| "an unknown date".to_owned(), |d| d.to_string());
        match self {
            Support::Supported { until: Some(d) } => write!(f, "supported until {d}"),
            Support::Supported { until: None } => write!(f, "supported"),
            Support::ExtendedOnly { eol, until } => write!(
                f,
                "security support ended {}; extended support only, until {}",
                date(eol),
                date(until)
            ),
            Support::EndOfLife { since } => write!(f, "end of life since {}", date(since)),
        }
    }
}

fn date_of(end: SupportEnd) -> Option<Date> {
    match end {
        SupportEnd::On(d) => Some(d),
        SupportEnd::Ended | SupportEnd::Ongoing => None,
    }
}

impl ReleaseCycle {
    /// Where this release stands on `today`.
    pub fn support_on(&self, today: Date) -> Support {
        if !self.eol.ended_by(today) {
            return Support::Supported {
                until: date_of(self.eol),
            };
        }
        match self.extended {
            Some(extended) if !extended.ended_by(today) => Support::ExtendedOnly {
                eol: date_of(self.eol),
                until: date_of(extended),
            },
            Some(extended) => Support::EndOfLife {
                since: date_of(extended).or(date_of(self.eol)),
            },
            None => Support::EndOfLife {
                since: date_of(self.eol),
            },
        }
    }
}

/// The endoflife.date product of an os-release `ID`.
pub fn product_of_os(os_id: &str) -> Option<&'static str> {
    Some(match os_id {
        "debian" => "debian",
        "ubuntu" => "ubuntu",
        "alpine" => "alpine-linux",
        "rhel" => "rhel",
        "rocky" => "rocky-linux",
        "almalinux" => "almalinux",
        "centos" => "centos",
        "fedora" => "fedora",
        "opensuse-leap" => "opensuse",
        "sles" => "sles",
        "amzn" => "amazon-linux",
        "ol" => "oracle-linux",
        _ => return None,
    })
}

impl Lifecycle {
    /// The release cycle an os-release `VERSION_ID` belongs to: the longest
    /// cycle name equal to it or a dotted prefix of it (`3.20.3` is in
    /// `3.20`; `12` is `12`; `22.04` is `22.04`).
    pub fn cycle_of(&self, version_id: &str) -> Option<&ReleaseCycle> {
        let version_id = version_id.trim();
        self.releases
            .iter()
            .filter(|r| {
                version_id == r.cycle
                    || version_id
                        .strip_prefix(r.cycle.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .max_by_key(|r| r.cycle.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn debian() -> Lifecycle {
        Lifecycle {
            product: "debian".into(),
            title: "Debian".into(),
            releases: vec![
                ReleaseCycle {
                    cycle: "12".into(),
                    codename: Some("Bookworm".into()),
                    release_date: Some(date(2023, 6, 10)),
                    eol: SupportEnd::On(date(2026, 7, 11)),
                    extended: Some(SupportEnd::On(date(2028, 6, 30))),
                    latest: Some("12.15".into()),
                },
                ReleaseCycle {
                    cycle: "1".into(),
                    codename: None,
                    release_date: None,
                    eol: SupportEnd::Ended,
                    extended: None,
                    latest: None,
                },
            ],
        }
    }

    #[test]
    fn a_release_moves_from_supported_to_extended_to_end_of_life() {
        let lc = debian();
        let r = lc.cycle_of("12").unwrap();
        assert_eq!(
            r.support_on(date(2025, 1, 1)),
            Support::Supported {
                until: Some(date(2026, 7, 11))
            }
        );
        let lts = r.support_on(date(2026, 11, 22));
        assert!(lts.is_finding());
        assert_eq!(
            lts.to_string(),
            "security support ended 2026-07-11; extended support only, until 2028-06-30"
        );
        assert_eq!(
            r.support_on(date(2028, 6, 30)),
            Support::EndOfLife {
                since: Some(date(2028, 6, 30))
            }
        );
    }

    #[test]
    fn a_version_id_finds_its_cycle_by_dotted_prefix_only() {
        let lc = debian();
        assert_eq!(lc.cycle_of("12.4").unwrap().cycle, "12");
        // "1" is not a prefix of "12" in the dotted sense.
        assert_eq!(lc.cycle_of("12").unwrap().cycle, "12");
        assert!(lc.cycle_of("13").is_none());
        assert_eq!(lc.cycle_of("1.2").unwrap().cycle, "1");
    }
}
