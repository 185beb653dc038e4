//! The Debian security tracker's advisory lists (`data/DSA/list`,
//! `data/DLA/list`), in the tracker's own line format:
//!
//! ```text
//! [29 Mar 2023] DSA-5380-1 xorg-server - security update
//!     {CVE-2023-1393}
//!     [bullseye] - xorg-server 2:1.20.11-1+deb11u6
//!     [buster] - xorg-server <not-affected> (vulnerable code not present)
//!     NOTE: a free-form note
//! ```
//!
//! (The real lists indent with a tab.)
//!
//! A key design decision made in this module is that a release line becomes
//! an affected entry only when it names a fixed version: a `<not-affected>`
//! release was never vulnerable, and an `<unfixed>`, `<end-of-life>` or
//! `<removed>` release has no fix to offer, so in both cases there is nothing
//! a host could be upgraded *to* and Patchwell records nothing. The tracker
//! writes code names (`bullseye`); the catalog speaks OSV's ecosystems
//! (`Debian:11`), so an unknown code name is a rejected record rather than a
//! guess.
//!
//! The format has grown by hand over twenty years and the parser is tolerant
//! of what the real lists contain: CRLF line ends, spaces or tabs as
//! indentation, trailing spaces, `{ CVE-... }` with inner spaces, headers
//! whose package and description are separated by `--` or not at all, and
//! comments after a release line's version.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use patchwell_core::advisory::{
    Advisory, Affected, Ecosystem, Event, Origin, PackageKind, UpdateType,
};

use crate::{rejected, FeedError, Parsed, ParsedAdvisories};

/// The format's name in errors.
const FORMAT: &str = "Debian security tracker list";

/// Debian's release code names and the release numbers OSV uses for them:
/// `3.0` and `3.1` keep their minor number, from `etch` on the major number
/// alone (`Debian:4`, ..., `Debian:12`). Releases before 3.0 are written as
/// Debian numbered them (`Debian:2.2`).
const RELEASES: &[(&str, &str)] = &[
    ("buzz", "1.1"),
    ("rex", "1.2"),
    ("bo", "1.3"),
    ("hamm", "2.0"),
    ("slink", "2.1"),
    ("potato", "2.2"),
    ("woody", "3.0"),
    ("sarge", "3.1"),
    ("etch", "4"),
    ("lenny", "5"),
    ("squeeze", "6"),
    ("wheezy", "7"),
    ("jessie", "8"),
    ("stretch", "9"),
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
    ("duke", "15"),
];

/// The OSV ecosystem name of a Debian code name (`bullseye` is `Debian:11`),
/// or None for a name Patchwell does not know.
pub fn ecosystem_of_codename(codename: &str) -> Option<String> {
    let codename = codename.trim().to_ascii_lowercase();
    RELEASES
        .iter()
        .find(|(name, _)| *name == codename)
        .map(|(_, number)| format!("Debian:{number}"))
}

/// Parses a DSA or DLA list: one advisory per header line.
///
/// A header that cannot be read is rejected under its line number (`line
/// 12`), together with the lines indented below it; a record with an unknown
/// code name, an invalid version or a line of unknown shape is rejected under
/// its advisory id. A text in which no line is a readable header is not this
/// format at all: [`FeedError::Format`].
pub fn parse(file: &str, text: &str) -> Result<ParsedAdvisories, FeedError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parsed = Parsed {
        items: Vec::new(),
        rejected: Vec::new(),
    };
    let mut headers = 0usize;
    let mut current: Option<Record> = None;

    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim_end();
        if line.trim_start().is_empty() {
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if !indented {
            if let Some(record) = current.take() {
                record.finish(file, &mut parsed);
            }
            current = Some(match read_header(line) {
                Ok(header) => {
                    headers += 1;
                    Record::Good(Box::new(Entry::new(file, header)))
                }
                Err(reason) => Record::Unreadable {
                    line: number,
                    reason,
                },
            });
            continue;
        }
        match current.as_mut() {
            Some(Record::Good(entry)) => entry.add_line(number, line.trim_start()),
            // The lines of an unreadable header are rejected with it.
            Some(Record::Unreadable { .. }) => {}
            None => parsed.rejected.push(rejected(
                file,
                format!("line {number}"),
                "indented line before the first advisory header",
            )),
        }
    }
    if let Some(record) = current.take() {
        record.finish(file, &mut parsed);
    }
    if headers == 0 {
        return Err(FeedError::Format {
            file: file.to_owned(),
            format: FORMAT,
            reason: "no line is an advisory header such as \"[29 Mar 2023] DSA-5380-1 xorg-server - security update\"".to_owned(),
        });
    }
    Ok(parsed)
}

/// One header and what follows it, while it is being read.
enum Record {
    /// A readable header.
    Good(Box<Entry>),
    /// A header that could not be read, at this line.
    Unreadable { line: usize, reason: String },
}

impl Record {
    fn finish(self, file: &str, parsed: &mut ParsedAdvisories) {
        match self {
            Record::Good(entry) => {
                let Entry {
                    mut advisory,
                    notes,
                    problem,
                } = *entry;
                match problem {
                    Some(reason) => parsed.rejected.push(rejected(file, advisory.id, reason)),
                    None => {
                        advisory.summary = notes.join("\n");
                        parsed.items.push(advisory);
                    }
                }
            }
            Record::Unreadable { line, reason } => {
                parsed
                    .rejected
                    .push(rejected(file, format!("line {line}"), reason));
            }
        }
    }
}

/// An advisory being built from its lines, with the first problem found.
struct Entry {
    advisory: Advisory,
    notes: Vec<String>,
    problem: Option<String>,
}

impl Entry {
    fn new(file: &str, header: Header) -> Entry {
        // Every DSA and DLA is a security advisory, whatever its description
        // says (old ones name the flaw: "buffer overflow"), except those that
        // fix a regression an earlier update caused.
        let update_type = if header
            .description
            .to_ascii_lowercase()
            .contains("regression")
        {
            UpdateType::Update
        } else {
            UpdateType::SecurityUpdate
        };
        let mut advisory = Advisory::new(header.id.clone(), update_type);
        advisory.title = header.title;
        advisory.published = Some(header.published);
        advisory.references = vec![format!(
            "https://security-tracker.debian.org/tracker/{}",
            header.id
        )];
        advisory.origin = Origin {
            location: file.to_owned(),
            ..Origin::default()
        };
        Entry {
            advisory,
            notes: Vec::new(),
            problem: None,
        }
    }

    /// Reads one indented line (without its indentation).
    fn add_line(&mut self, number: usize, line: &str) {
        if self.problem.is_some() {
            return;
        }
        if let Some(ids) = line.strip_prefix('{') {
            let ids = ids.trim_end().strip_suffix('}').unwrap_or(ids);
            for id in ids.split_whitespace() {
                if !self.advisory.aliases.iter().any(|a| a == id) {
                    self.advisory.aliases.push(id.to_owned());
                }
            }
        } else if line.starts_with('[') {
            match read_release(line) {
                Ok(Some(affected)) => self.advisory.affected.push(affected),
                Ok(None) => {}
                Err(reason) => self.problem = Some(format!("line {number}: {reason}")),
            }
        } else if let Some(note) = line.strip_prefix("NOTE:") {
            self.notes.push(note.trim().to_owned());
        } else {
            self.problem = Some(format!(
                "line {number}: not an id list, release line or NOTE: {line:?}"
            ));
        }
    }
}

/// What a header line says.
#[derive(Debug)]
struct Header {
    id: String,
    title: String,
    description: String,
    published: Timestamp,
}

/// Reads `[29 Mar 2023] DSA-5380-1 xorg-server - security update`.
fn read_header(line: &str) -> Result<Header, String> {
    let rest = line
        .strip_prefix('[')
        .ok_or_else(|| format!("not an advisory header: {line:?}"))?;
    let (date, rest) = rest
        .split_once(']')
        .ok_or_else(|| format!("no closing ']' after the date: {line:?}"))?;
    let published = read_date(date)?;
    let rest = rest.trim();
    let (id, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !is_advisory_id(id) {
        return Err(format!(
            "{id:?} is not an advisory id such as DSA-5380-1: {line:?}"
        ));
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // A few old headers write "DSA-1099-1 - horde2 - ...".
    let text = text.strip_prefix("- ").unwrap_or(&text);
    let (packages, description) = text
        .split_once(" - ")
        .or_else(|| text.split_once(" -- "))
        .unwrap_or((text, ""));
    let title = if description.is_empty() {
        packages.to_owned()
    } else {
        format!("{packages} - {description}")
    };
    Ok(Header {
        id: id.to_owned(),
        title,
        description: description.to_owned(),
        published,
    })
}

/// Reads `29 Mar 2023` as that day at 00:00 UTC.
fn read_date(text: &str) -> Result<Timestamp, String> {
    let bad = || format!("{text:?} is not a date such as \"29 Mar 2023\"");
    let mut parts = text.split_whitespace();
    let (Some(day), Some(month), Some(year), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = month.to_ascii_lowercase();
    let month = MONTHS
        .iter()
        .position(|m| *m == month)
        .and_then(|m| i8::try_from(m + 1).ok())
        .ok_or_else(bad)?;
    let day: i8 = day.parse().map_err(|_| bad())?;
    let year: i16 = year.parse().map_err(|_| bad())?;
    let date = Date::new(year, month, day).map_err(|e| format!("{}: {e}", bad()))?;
    date.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| format!("{}: {e}", bad()))
}

/// `DSA-5380-1`, `DLA-3380-1`, and the revision-less `DSA-541` of old.
fn is_advisory_id(id: &str) -> bool {
    let mut parts = id.split('-');
    let prefix_ok = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_uppercase()));
    let numbers: Vec<&str> = parts.collect();
    prefix_ok
        && (1..=2).contains(&numbers.len())
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads `[bullseye] - xorg-server 2:1.20.11-1+deb11u6`, or a release line
/// with a `<marker>` instead of a version (None: nothing to record).
fn read_release(line: &str) -> Result<Option<Affected>, String> {
    let rest = line.strip_prefix('[').unwrap_or(line);
    let (codename, rest) = rest
        .split_once(']')
        .ok_or_else(|| format!("no closing ']' after the release: {line:?}"))?;
    let codename = codename.trim();
    let ecosystem = ecosystem_of_codename(codename)
        .ok_or_else(|| format!("unknown Debian release code name {codename:?}"))?;
    let ecosystem = Ecosystem::parse(&ecosystem).map_err(|e| e.to_string())?;
    let rest = rest
        .trim_start()
        .strip_prefix('-')
        .ok_or_else(|| format!("expected \"[{codename}] - package version\": {line:?}"))?;
    let mut words = rest.split_whitespace();
    let package = words
        .next()
        .ok_or_else(|| format!("release line names no package: {line:?}"))?;
    let version = words
        .next()
        .ok_or_else(|| format!("release line for {package} gives no version: {line:?}"))?;
    // Anything after the version is a comment, e.g. "(not affected according to DSA)".
    if version.starts_with('<') {
        // <not-affected>: never vulnerable. <unfixed>, <end-of-life>,
        // <removed>, ...: no fix. Either way there is no fixed version.
        return Ok(None);
    }
    versions::validate(versions::Ecosystem::Deb, version).map_err(|e| e.to_string())?;
    Ok(Some(Affected {
        ecosystem,
        package: package.to_owned(),
        kind: PackageKind::Source,
        ranges: vec![vec![
            Event::Introduced("0".to_owned()),
            Event::Fixed(version.to_owned()),
        ]],
        versions: Vec::new(),
        binaries: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
[29 Mar 2023] DSA-5380-1 xorg-server - security update
\t{CVE-2023-1393}
\t[bullseye] - xorg-server 2:1.20.11-1+deb11u6
[17 Mar 2023] DSA-5356-2 sox - regression update
\t[bullseye] - sox 14.4.2+git20190427-2+deb11u2
[07 Feb 2009] DSA-1716-1 vnc4 - arbitrary code execution
\t{CVE-2008-4770 CVE-2009-0031}
\t[etch] - vnc4 4.1.1+X4.3.0-21+etch1
\t[lenny] - vnc4 <not-affected> (fixed before the release)
        [sarge] - vnc4 4.0-8sarge1 (no longer supported)
\tNOTE: sarge security support ended
[18 Apr 2018] DSA-4205-1 jessie end-of-life
[02 Jul 2002] DSA-135 libapache-mod-ssl -- buffer overflow / DoS
\t{ CVE-2002-0653 }
\t[woody] - libapache-mod-ssl 2.8.9-2
\t[potato] - libapache-mod-ssl <unfixed>
";

    fn ids(parsed: &ParsedAdvisories) -> Vec<&str> {
        parsed.items.iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn each_header_becomes_an_advisory() {
        let parsed = parse("DSA.list", SAMPLE).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(
            ids(&parsed),
            [
                "DSA-5380-1",
                "DSA-5356-2",
                "DSA-1716-1",
                "DSA-4205-1",
                "DSA-135"
            ]
        );
        let a = &parsed.items[0];
        assert_eq!(a.title, "xorg-server - security update");
        assert_eq!(a.aliases, ["CVE-2023-1393"]);
        assert_eq!(a.update_type, UpdateType::SecurityUpdate);
        assert_eq!(
            a.published,
            Some("2023-03-29T00:00:00Z".parse::<Timestamp>().unwrap())
        );
        assert_eq!(
            a.references,
            ["https://security-tracker.debian.org/tracker/DSA-5380-1"]
        );
        assert_eq!(a.origin.location, "DSA.list");
        assert_eq!(a.affected.len(), 1);
        let affected = &a.affected[0];
        assert_eq!(affected.ecosystem.name(), "Debian:11");
        assert_eq!(affected.package, "xorg-server");
        assert_eq!(affected.kind, PackageKind::Source);
        assert_eq!(
            affected.ranges,
            [vec![
                Event::Introduced("0".into()),
                Event::Fixed("2:1.20.11-1+deb11u6".into())
            ]]
        );
    }

    #[test]
    fn a_regression_update_is_not_a_security_update() {
        let parsed = parse("DSA.list", SAMPLE).unwrap();
        assert_eq!(parsed.items[1].update_type, UpdateType::Update);
        assert_eq!(parsed.items[1].title, "sox - regression update");
        assert!(parsed.items[1].aliases.is_empty());
    }

    #[test]
    fn markers_add_no_affected_entry_and_comments_after_versions_are_ignored() {
        let parsed = parse("DSA.list", SAMPLE).unwrap();
        let a = &parsed.items[2];
        let releases: Vec<(&str, &str)> = a
            .affected
            .iter()
            .map(|x| (x.ecosystem.name(), x.ranges[0][1].version()))
            .collect();
        assert_eq!(
            releases,
            [
                ("Debian:4", "4.1.1+X4.3.0-21+etch1"),
                ("Debian:3.1", "4.0-8sarge1")
            ]
        );
        assert_eq!(a.summary, "sarge security support ended");
        assert_eq!(a.title, "vnc4 - arbitrary code execution");
    }

    #[test]
    fn old_headers_are_read_as_written() {
        let parsed = parse("DSA.list", SAMPLE).unwrap();
        let eol = &parsed.items[3];
        assert_eq!(eol.title, "jessie end-of-life");
        assert!(eol.affected.is_empty());
        let old = &parsed.items[4];
        assert_eq!(old.title, "libapache-mod-ssl - buffer overflow / DoS");
        assert_eq!(old.aliases, ["CVE-2002-0653"]);
        assert_eq!(old.affected.len(), 1);
        assert_eq!(old.affected[0].ecosystem.name(), "Debian:3.0");
    }

    #[test]
    fn crlf_trailing_spaces_and_spaces_for_tabs_are_tolerated() {
        let text = "[01 Apr 2023] DLA-3379-1 intel-microcode - security update   \r\n    {CVE-2022-21216  CVE-2022-21233}\r\n  [buster]  -  intel-microcode   3.20230214.1~deb10u1  \r\n\r\n";
        let parsed = parse("DLA.list", text).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let a = &parsed.items[0];
        assert_eq!(a.title, "intel-microcode - security update");
        assert_eq!(a.aliases, ["CVE-2022-21216", "CVE-2022-21233"]);
        assert_eq!(a.affected[0].ecosystem.name(), "Debian:10");
        assert_eq!(a.affected[0].ranges[0][1].version(), "3.20230214.1~deb10u1");
    }

    #[test]
    fn a_bad_record_is_rejected_and_the_rest_kept() {
        let text = "\
[01 Apr 2023] DLA-1-1 good - security update
\t[buster] - good 1.0-1
[01 Apr 2023] DLA-2-1 bad - security update
\t[buster] - bad 1.0-1
\t[hurd] - bad 1.0-2
[31 Feb 2023] DLA-3-1 nodate - security update
\t[buster] - nodate 1.0-1
[01 Apr 2023] DLA-4-1 badversion - security update
\t[buster] - badversion 1:
[01 Apr 2023] DLA-5-1 strange - security update
\tsomething else
[01 Apr 2023] DLA-6-1 noversion - security update
\t[buster] - noversion
[01 Apr 2023] not-an-id pkg - security update
";
        let parsed = parse("DLA.list", text).unwrap();
        assert_eq!(ids(&parsed), ["DLA-1-1"]);
        let rejected: Vec<(&str, &str)> = parsed
            .rejected
            .iter()
            .map(|r| (r.record.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(rejected.len(), 6, "{rejected:?}");
        assert_eq!(rejected[0].0, "DLA-2-1");
        assert!(rejected[0].1.contains("\"hurd\""), "{}", rejected[0].1);
        assert_eq!(rejected[1].0, "line 6");
        assert!(rejected[1].1.contains("31 Feb 2023"), "{}", rejected[1].1);
        assert_eq!(rejected[2].0, "DLA-4-1");
        assert!(
            rejected[2].1.contains("invalid deb version \"1:\""),
            "{}",
            rejected[2].1
        );
        assert_eq!(rejected[3].0, "DLA-5-1");
        assert!(rejected[3].1.starts_with("line 11:"), "{}", rejected[3].1);
        assert_eq!(rejected[4].0, "DLA-6-1");
        assert!(rejected[4].1.contains("no version"), "{}", rejected[4].1);
        assert_eq!(rejected[5].0, "line 14");
        assert_eq!(parsed.rejected[0].file, "DLA.list");
    }

    #[test]
    fn lines_before_the_first_header_are_rejected() {
        let text = "\t[buster] - x 1.0\n[01 Apr 2023] DLA-1-1 x - security update\n";
        let parsed = parse("DLA.list", text).unwrap();
        assert_eq!(parsed.items.len(), 1);
        assert_eq!(parsed.rejected[0].record, "line 1");
    }

    #[test]
    fn a_text_without_headers_is_not_this_format() {
        for text in [
            "",
            "\n\n",
            "{\"id\": \"DSA-1\"}",
            "Package: bash\nVersion: 5.2\n",
        ] {
            let error = parse("x.list", text).unwrap_err();
            assert!(matches!(error, FeedError::Format { .. }), "{error}");
        }
    }

    #[test]
    fn every_known_codename_maps_to_an_osv_ecosystem() {
        assert_eq!(
            ecosystem_of_codename("potato").as_deref(),
            Some("Debian:2.2")
        );
        assert_eq!(
            ecosystem_of_codename("woody").as_deref(),
            Some("Debian:3.0")
        );
        assert_eq!(
            ecosystem_of_codename("sarge").as_deref(),
            Some("Debian:3.1")
        );
        assert_eq!(ecosystem_of_codename("etch").as_deref(), Some("Debian:4"));
        assert_eq!(
            ecosystem_of_codename("Bookworm").as_deref(),
            Some("Debian:12")
        );
        assert_eq!(ecosystem_of_codename("sid"), None);
        for (name, _) in RELEASES {
            let eco = ecosystem_of_codename(name).unwrap();
            assert!(Ecosystem::parse(&eco).is_ok(), "{eco}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let inputs = [
            "[",
            "[]",
            "[] ",
            "[1 x 2]",
            "[99 Jan 99999] DSA-1",
            "[01 Jan 2000] DSA-1\n\t[",
            "[01 Jan 2000] DSA-1\n\t[woody",
            "[01 Jan 2000] DSA-1\n\t[woody] -",
            "[01 Jan 2000] DSA-1\n\t[woody] x y",
            "[01 Jan 2000] DSA-1\n\t{",
            "[01 Jan 2000] DSA-1\n\t{}",
            "[01 Jan 2000] DSA-1\n\tNOTE:",
            "[01 Jan 2000] \u{e9}\u{e9}\n",
            "\u{feff}[01 Jan 2000] DSA-1-1 x - y\n",
        ];
        for input in inputs {
            let _ = parse("fuzz", input);
        }
        let parsed = parse("fuzz", "\u{feff}[01 Jan 2000] DSA-1-1 x - y\n").unwrap();
        assert_eq!(parsed.items[0].id, "DSA-1-1");
    }
}
