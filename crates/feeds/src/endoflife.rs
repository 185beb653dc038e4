//! endoflife.date product files (`products/debian.md`): Markdown whose YAML
//! front matter lists a product's release cycles and their support dates.
//!
//! ```yaml
//! ---
//! title: Debian
//! releases:
//!   - releaseCycle: "12"
//!     codename: "Bookworm"
//!     releaseDate: 2023-06-10
//!     eol: 2026-07-11
//!     eoes: 2028-06-30
//!     latest: "12.15"
//! ---
//! ```
//!
//! A key design decision made in this module is that every scalar is read as
//! the text written, never through YAML's type inference: a cycle written
//! `3.10` without quotes is the cycle `3.10`, which a YAML float would turn
//! into `3.1`, a different release. Dates and the booleans of `eol` and
//! `eoes` (`true`: ended on a date not given; `false`: not ended) are then
//! interpreted from that text.
//!
//! A lifecycle file is one record: a release with an unreadable date is an
//! error for the whole file ([`FeedError::Format`], naming the cycle and the
//! field), because dropping one release would make a host on it look like a
//! release endoflife.date does not know, rather than one that is past its
//! end of life.
//!
//! Only `eoes` (end of extended support: Debian LTS, Ubuntu ESM) is read as
//! extended support. `eoas`, the end of *active* support, comes before `eol`
//! and says nothing about security fixes, so it is ignored.

use std::path::Path;

use jiff::civil::Date;
use patchwell_core::lifecycle::{Lifecycle, ReleaseCycle, SupportEnd};
use serde::Deserialize;

use crate::FeedError;

/// The format's name in errors.
const FORMAT: &str = "endoflife.date product";

/// The front matter fields Patchwell reads; the others (`auto`,
/// `identifiers`, `releaseLabel`, ...) are skipped.
#[derive(Deserialize)]
struct FrontMatter {
    title: Option<String>,
    releases: Option<Vec<RawRelease>>,
}

/// One release, every field as the text written.
#[derive(Deserialize)]
struct RawRelease {
    #[serde(rename = "releaseCycle")]
    release_cycle: Option<String>,
    codename: Option<String>,
    #[serde(rename = "releaseDate")]
    release_date: Option<String>,
    eol: Option<String>,
    eoes: Option<String>,
    latest: Option<String>,
}

/// Parses one product file. The product's identifier is the file name's
/// stem (`debian` for `products/debian.md`).
///
/// No front matter, YAML that cannot be read, no `title`, no `releases`, a
/// release without `releaseCycle` or `eol`, or an unreadable date:
/// [`FeedError::Format`].
pub fn parse(file: &str, text: &str) -> Result<Lifecycle, FeedError> {
    let format_error = |reason: String| FeedError::Format {
        file: file.to_owned(),
        format: FORMAT,
        reason,
    };
    let product = Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format_error("the file name gives no product".to_owned()))?
        .to_owned();
    let yaml = front_matter(text)
        .ok_or_else(|| format_error("no YAML front matter between \"---\" lines".to_owned()))?;
    let options = serde_saphyr::options! { with_snippet: false };
    let front: FrontMatter = serde_saphyr::from_str_with_options(yaml, options)
        .map_err(|e| format_error(format!("front matter: {e}")))?;
    let title = front
        .title
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format_error("no title".to_owned()))?;
    let raw_releases = front
        .releases
        .ok_or_else(|| format_error("no releases".to_owned()))?;

    let mut releases = Vec::with_capacity(raw_releases.len());
    for (index, raw) in raw_releases.into_iter().enumerate() {
        let cycle = non_empty(raw.release_cycle)
            .ok_or_else(|| format_error(format!("release #{} has no releaseCycle", index + 1)))?;
        let field_error = |field: &str, reason: String| {
            format_error(format!("release {cycle}: {field}: {reason}"))
        };
        let release_date = match non_empty(raw.release_date) {
            Some(text) => Some(date(&text).map_err(|r| field_error("releaseDate", r))?),
            None => None,
        };
        let eol = non_empty(raw.eol)
            .ok_or_else(|| field_error("eol", "missing".to_owned()))
            .and_then(|text| support_end(&text).map_err(|r| field_error("eol", r)))?;
        let extended = match non_empty(raw.eoes) {
            Some(text) => Some(support_end(&text).map_err(|r| field_error("eoes", r))?),
            None => None,
        };
        releases.push(ReleaseCycle {
            codename: non_empty(raw.codename),
            release_date,
            eol,
            extended,
            latest: non_empty(raw.latest),
            cycle,
        });
    }
    Ok(Lifecycle {
        product,
        title,
        releases,
    })
}

/// The YAML between a first line `---` and the next line `---` (or `...`).
fn front_matter(text: &str) -> Option<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut offset = 0;
    let mut start = None;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end();
        match start {
            None if content == "---" => start = Some(offset + line.len()),
            None => return None,
            Some(from) if content == "---" || content == "..." => return text.get(from..offset),
            Some(_) => {}
        }
        offset += line.len();
    }
    None
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// `2026-07-11`.
fn date(text: &str) -> Result<Date, String> {
    // A date, not a date-time: the files give days, and a time would
    // raise the question of its zone.
    if text.len() != 10 {
        return Err(format!("{text:?} is not a date such as 2026-07-11"));
    }
    text.parse::<Date>()
        .map_err(|e| format!("{text:?} is not a date such as 2026-07-11: {e}"))
}

/// A date, or `true` (ended, no date) / `false` (not ended, no date).
fn support_end(text: &str) -> Result<SupportEnd, String> {
    match text {
        "true" | "True" | "TRUE" => Ok(SupportEnd::Ended),
        "false" | "False" | "FALSE" => Ok(SupportEnd::Ongoing),
        _ => date(text)
            .map(SupportEnd::On)
            .map_err(|_| format!("{text:?} is neither a date such as 2026-07-11 nor true/false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date as d;

    const DEBIAN: &str = "\
---
title: Debian
category: os
releaseLabel: \"__RELEASE_CYCLE__ (__CODENAME__)\"
auto:
  methods:
    - release_table: https://www.debian.org/releases/index.en.html
      fields:
        releaseCycle: \"Version\"
        eol: \"End of Life (EOL)\"

releases:
  - releaseCycle: \"12\"
    codename: \"Bookworm\"
    releaseDate: 2023-06-10
    eol: 2026-07-11
    eoes: 2028-06-30
    link: https://www.debian.org/News/2026/2026051602
    latest: \"12.15\"
    latestReleaseDate: 2026-07-11

  - releaseCycle: \"1.1\"
    codename: \"Buzz\"
    releaseDate: 1996-06-17
    eol: true # date unknown
    eoas: 2000-01-01
---

> [Debian](https://www.debian.org/) is a free operating system.

---
not front matter
";

    #[test]
    fn releases_are_read() {
        let lc = parse("products/debian.md", DEBIAN).unwrap();
        assert_eq!(lc.product, "debian");
        assert_eq!(lc.title, "Debian");
        assert_eq!(
            lc.releases,
            [
                ReleaseCycle {
                    cycle: "12".into(),
                    codename: Some("Bookworm".into()),
                    release_date: Some(d(2023, 6, 10)),
                    eol: SupportEnd::On(d(2026, 7, 11)),
                    extended: Some(SupportEnd::On(d(2028, 6, 30))),
                    latest: Some("12.15".into()),
                },
                // eoas is not extended support.
                ReleaseCycle {
                    cycle: "1.1".into(),
                    codename: Some("Buzz".into()),
                    release_date: Some(d(1996, 6, 17)),
                    eol: SupportEnd::Ended,
                    extended: None,
                    latest: None,
                },
            ]
        );
    }

    #[test]
    fn unquoted_numbers_keep_their_text() {
        let text = "---\ntitle: Alpine Linux\nreleases:\n  - releaseCycle: 3.10\n    releaseDate: 2019-06-19\n    eol: false\n    eoes: true\n    latest: 3.10\n  - releaseCycle: 22.04\n    releaseDate: '2022-04-21'\n    eol: \"2027-06-01\"\n    latest: 22.04.5\n---\n";
        let lc = parse("alpine-linux.md", text).unwrap();
        assert_eq!(lc.product, "alpine-linux");
        let r = &lc.releases[0];
        assert_eq!(r.cycle, "3.10");
        assert_eq!(r.latest.as_deref(), Some("3.10"));
        assert_eq!(r.eol, SupportEnd::Ongoing);
        assert_eq!(r.extended, Some(SupportEnd::Ended));
        let r = &lc.releases[1];
        assert_eq!(r.cycle, "22.04");
        assert_eq!(r.release_date, Some(d(2022, 4, 21)));
        assert_eq!(r.eol, SupportEnd::On(d(2027, 6, 1)));
        assert_eq!(r.latest.as_deref(), Some("22.04.5"));
        assert_eq!(lc.cycle_of("3.10.4").unwrap().cycle, "3.10");
    }

    #[test]
    fn crlf_front_matter_is_read() {
        let text = "---\r\ntitle: X\r\nreleases:\r\n  - releaseCycle: \"1\"\r\n    eol: 2020-01-01\r\n---\r\nbody\r\n";
        let lc = parse("x.md", text).unwrap();
        assert_eq!(lc.releases[0].eol, SupportEnd::On(d(2020, 1, 1)));
        assert_eq!(lc.releases[0].release_date, None);
    }

    #[test]
    fn an_unreadable_date_names_the_cycle_and_field() {
        let text = "---\ntitle: X\nreleases:\n  - releaseCycle: \"2.0\"\n    releaseDate: 2020-01-01\n    eol: 2020-02-30\n---\n";
        let error = parse("x.md", text).unwrap_err().to_string();
        assert!(error.contains("release 2.0: eol:"), "{error}");
        let text = "---\ntitle: X\nreleases:\n  - releaseCycle: \"2.0\"\n    releaseDate: soon\n    eol: true\n---\n";
        let error = parse("x.md", text).unwrap_err().to_string();
        assert!(error.contains("release 2.0: releaseDate:"), "{error}");
        let text = "---\ntitle: X\nreleases:\n  - releaseCycle: \"2.0\"\n    eol: true\n    eoes: 2020-01-01T00:00:00Z\n---\n";
        let error = parse("x.md", text).unwrap_err().to_string();
        assert!(error.contains("release 2.0: eoes:"), "{error}");
        let text = "---\ntitle: X\nreleases:\n  - releaseCycle: \"2.0\"\n---\n";
        let error = parse("x.md", text).unwrap_err().to_string();
        assert!(error.contains("release 2.0: eol: missing"), "{error}");
    }

    #[test]
    fn a_file_without_front_matter_is_a_format_error() {
        for text in [
            "",
            "# Debian\n",
            "title: Debian\nreleases: []\n",
            "---\ntitle: Debian\nreleases: []\n",
            "---\n: [\n---\n",
            "---\nreleases: []\n---\n",
            "---\ntitle: Debian\n---\n",
            "---\ntitle: Debian\nreleases:\n  - codename: x\n    eol: true\n---\n",
            "---\ntitle: Debian\nreleases:\n  - releaseCycle: [1]\n    eol: true\n---\n",
        ] {
            let error = parse("debian.md", text).unwrap_err();
            assert!(
                matches!(error, FeedError::Format { .. }),
                "{text:?}: {error}"
            );
        }
    }

    #[test]
    fn the_front_matter_ends_at_its_closing_line() {
        assert_eq!(front_matter("---\na: 1\n---\nb\n---\n"), Some("a: 1\n"));
        assert_eq!(front_matter("---\n---\n"), Some(""));
        assert_eq!(front_matter("\u{feff}---\na: 1\n...\n"), Some("a: 1\n"));
        assert_eq!(front_matter(" ---\na: 1\n---\n"), None);
        assert_eq!(front_matter("---\na: 1\n"), None);
    }
}
