//! RPM versions, `[epoch:]version[-release]`, with rpm's rules.
//!
//! Validity is what rpmbuild accepts for a versioned dependency (`checkDep` in
//! rpm's `build/parseReqs.c`): letters, digits and `._+%{}~^-:` only, no `..`,
//! at most one `-` and one `:`, and an epoch made of digits. On top of that the
//! version may not be empty, nor the release when a `-` announces one, as rpm's
//! `Version:` and `Release:` tags may not be.
//!
//! Order is rpm's `rpmverCmp`: epochs (absent means 0), then versions, then
//! releases, each with `rpmvercmp`. `rpmvercmp` ignores separators and compares
//! segments: a `~` sorts before anything, even the end of the string; a `^`
//! sorts after the end but before any further segment; a numeric segment beats
//! an alphabetic one; numbers compare as numbers of any size, letters as bytes.
//! Like `rpmverCmp`, a version without a release sorts before the same version
//! with any release, so the order is total.

use std::cmp::Ordering;

use crate::{key, keyed_version, ByteSet, Ecosystem, ParseError};

static EVR_CHARS: ByteSet = ByteSet::alphanumeric_and(b"._+%{}~^-:");
/// What `rpmvercmp` does not skip as a separator.
static SEGMENT_CHARS: ByteSet = ByteSet::alphanumeric_and(b"~^");

/// A rule of rpm's that a version breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// The empty string.
    #[error("version string is empty")]
    Empty,
    /// A character rpm does not allow in a version.
    #[error("illegal character {0:?}: rpm allows letters, digits and . _ + % {{ }} ~ ^ - :")]
    IllegalChar(char),
    /// Two dots in a row.
    #[error("illegal sequence \"..\"")]
    DoubleDot,
    /// More than one `-` or more than one `:`.
    #[error("more than one {0:?} separator")]
    DoubleSeparator(char),
    /// Something other than digits before the `:`.
    #[error("epoch must be an unsigned integer")]
    EpochNotNumber,
    /// Nothing between the epoch and the release.
    #[error("version part is empty")]
    VersionEmpty,
    /// A trailing `-`.
    #[error("release after '-' is empty")]
    ReleaseEmpty,
}

/// A valid RPM version: epoch, version and release.
#[derive(Debug, Clone)]
pub struct Version {
    text: Box<str>,
    epoch: Option<std::ops::Range<usize>>,
    version: std::ops::Range<usize>,
    release: Option<std::ops::Range<usize>>,
    key: Box<[u8]>,
}

keyed_version!(Version);

impl Version {
    /// Parses `text` with rpm's rules.
    pub fn parse(text: &str) -> Result<Version, ParseError> {
        let parts = split(text).map_err(|rule| ParseError::new(Ecosystem::Rpm, text, rule))?;
        let mut key = Vec::with_capacity(4 + 2 * text.len());
        key::push_decimal(&mut key, parts.epoch.unwrap_or("0").as_bytes());
        push_key(&mut key, parts.version.as_bytes());
        match parts.release {
            None => key.push(0x00),
            Some(release) => {
                key.push(0x01);
                push_key(&mut key, release.as_bytes());
            }
        }
        let span = |s: &str| {
            let start = s.as_ptr() as usize - text.as_ptr() as usize;
            start..start + s.len()
        };
        Ok(Version {
            text: text.into(),
            epoch: parts.epoch.map(span),
            version: span(parts.version),
            release: parts.release.map(span),
            key: key.into(),
        })
    }

    /// The epoch's digits as written (empty for `:1.0`, which rpm reads as 0),
    /// or `None` when there is no epoch.
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.clone().map(|r| &self.text[r])
    }

    /// The version part.
    pub fn version(&self) -> &str {
        &self.text[self.version.clone()]
    }

    /// The release part, if there is one.
    pub fn release(&self) -> Option<&str> {
        self.release.clone().map(|r| &self.text[r])
    }
}

/// Checks `text` with rpm's rules.
pub fn validate(text: &str) -> Result<(), ParseError> {
    split(text)
        .map(drop)
        .map_err(|rule| ParseError::new(Ecosystem::Rpm, text, rule))
}

/// Compares two EVR strings as rpm's `rpmverCmp` does, without allocating.
/// Both must be valid.
pub fn compare_str(a: &str, b: &str) -> Result<Ordering, ParseError> {
    if a == b {
        return validate(a).map(|()| Ordering::Equal);
    }
    let pa = split(a).map_err(|rule| ParseError::new(Ecosystem::Rpm, a, rule))?;
    let pb = split(b).map_err(|rule| ParseError::new(Ecosystem::Rpm, b, rule))?;
    let (ea, eb) = (pa.epoch.unwrap_or("0"), pb.epoch.unwrap_or("0"));
    Ok(key::cmp_decimal(ea.as_bytes(), eb.as_bytes())
        .then_with(|| rpmvercmp(pa.version.as_bytes(), pb.version.as_bytes()))
        .then_with(|| match (pa.release, pb.release) {
            (Some(ra), Some(rb)) => rpmvercmp(ra.as_bytes(), rb.as_bytes()),
            (ra, rb) => ra.is_some().cmp(&rb.is_some()),
        }))
}

struct Parts<'a> {
    epoch: Option<&'a str>,
    version: &'a str,
    release: Option<&'a str>,
}

/// Validates in rpmbuild's order, then splits as rpm's `parseEVR` does.
///
/// One pass gathers every fact the rules need; the rules are then applied in
/// rpmbuild's order, so a string with several faults reports the same one.
fn split(text: &str) -> Result<Parts<'_>, Rule> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(Rule::Empty);
    }
    let mut illegal = None;
    let mut double_dot = false;
    let (mut dashes, mut colons) = (0u32, 0u32);
    let (mut dash, mut colon) = (0, 0);
    let mut previous = 0u8;
    for (i, &b) in bytes.iter().enumerate() {
        if !EVR_CHARS.contains(b) {
            illegal = Some(i);
            break;
        }
        match b {
            b'.' => double_dot |= previous == b'.',
            b'-' => {
                dashes += 1;
                dash = i;
            }
            b':' => {
                colons += 1;
                colon = i;
            }
            _ => {}
        }
        previous = b;
    }
    if let Some(at) = illegal {
        return Err(Rule::IllegalChar(
            text[at..].chars().next().unwrap_or('\u{fffd}'),
        ));
    }
    if double_dot {
        return Err(Rule::DoubleDot);
    }
    if dashes > 1 {
        return Err(Rule::DoubleSeparator('-'));
    }
    if colons > 1 {
        return Err(Rule::DoubleSeparator(':'));
    }
    let (epoch, rest_start) = if colons == 1 {
        if !bytes[..colon].iter().all(u8::is_ascii_digit) {
            return Err(Rule::EpochNotNumber);
        }
        (Some(&text[..colon]), colon + 1)
    } else {
        (None, 0)
    };
    let (version, release) = if dashes == 1 {
        // A dash before the colon was refused above as a bad epoch.
        (&text[rest_start..dash], Some(&text[dash + 1..]))
    } else {
        (&text[rest_start..], None)
    };
    if version.is_empty() {
        return Err(Rule::VersionEmpty);
    }
    if release == Some("") {
        return Err(Rule::ReleaseEmpty);
    }
    Ok(Parts {
        epoch,
        version,
        release,
    })
}

fn is_separator(c: u8) -> bool {
    !SEGMENT_CHARS.contains(c)
}

/// rpm's `rpmvercmp`: compares one version (or one release) string with
/// another, with no epoch or release splitting. Like rpm's, it accepts any
/// string; characters other than ASCII letters, digits, `~` and `^` separate
/// segments.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    rpmvercmp(a.as_bytes(), b.as_bytes())
}

/// rpm's `rpmvercmp`, step for step.
fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while a.get(i).is_some_and(|&c| is_separator(c)) {
            i += 1;
        }
        while b.get(j).is_some_and(|&c| is_separator(c)) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());

        // A tilde sorts before everything, the end of the string included.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }

        // A caret sorts after the end of the string but before anything else.
        if ca == Some(b'^') || cb == Some(b'^') {
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(x), _) if x != b'^' => return Ordering::Greater,
                (_, Some(y)) if y != b'^' => return Ordering::Less,
                _ => {}
            }
            i += 1;
            j += 1;
            continue;
        }

        let (Some(first), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = first.is_ascii_digit();
        let in_segment = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let la = a[i..].iter().take_while(|c| in_segment(c)).count();
        let lb = b[j..].iter().take_while(|c| in_segment(c)).count();
        if lb == 0 {
            // Segments of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (sa, sb) = (&a[i..i + la], &b[j..j + lb]);
        let order = if numeric {
            key::cmp_decimal(sa, sb)
        } else {
            sa.cmp(sb)
        };
        if order != Ordering::Equal {
            return order;
        }
        i += la;
        j += lb;
    }
    // Whichever version still has segments left wins.
    (i < a.len()).cmp(&(j < b.len()))
}

/// Token bytes of the sort key, in rpm's order.
const TILDE: u8 = 0x01;
const END: u8 = 0x02;
const CARET: u8 = 0x03;
const ALPHA: u8 = 0x04;
const NUMBER: u8 = 0x05;

/// Appends the sort key of a version or release: its segments as tokens,
/// separators dropped, closed by an end token. `~` < end < `^` < letters <
/// number is exactly how `rpmvercmp` weighs what it meets at each step.
fn push_key(out: &mut Vec<u8>, text: &[u8]) {
    let mut i = 0;
    loop {
        while text.get(i).is_some_and(|&c| is_separator(c)) {
            i += 1;
        }
        let Some(&c) = text.get(i) else {
            out.push(END);
            return;
        };
        if c == b'~' || c == b'^' {
            out.push(if c == b'~' { TILDE } else { CARET });
            i += 1;
        } else if c.is_ascii_digit() {
            let n = text[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            out.push(NUMBER);
            key::push_decimal(out, &text[i..i + n]);
            i += n;
        } else {
            let n = text[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            out.push(ALPHA);
            out.extend_from_slice(&text[i..i + n]);
            // Letters are all above 0x00, so a shorter run sorts first, as strcmp has it.
            out.push(0x00);
            i += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        let direct = compare_str(a, b).unwrap();
        let keyed = Version::parse(a).unwrap().cmp(&Version::parse(b).unwrap());
        assert_eq!(
            direct, keyed,
            "direct and keyed comparison disagree on {a} vs {b}"
        );
        direct
    }

    #[test]
    fn ordering_table() {
        use Ordering::*;
        let table = [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0", Greater),
            ("2.0.1a", "2.0.1", Greater),
            ("5.5p1", "5.5p2", Less),
            ("5.5p10", "5.5p1", Greater),
            ("10xyz", "10.1xyz", Less),
            ("xyz10", "xyz10.1", Less),
            ("xyz.4", "8", Less),
            ("1.0010", "1.9", Greater),
            ("1.05", "1.5", Equal),
            ("1.0", "1", Greater),
            ("2.50", "2.5", Greater),
            ("fc4", "fc.4", Equal),
            ("FC5", "fc4", Less),
            ("2a", "2.0", Less),
            ("1.0", "1_0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~rc1~git123", "1.0~rc1", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.01", Less),
            ("1.0^git1", "1.0^git2", Less),
            ("1.0^git1", "1.0~rc1", Greater),
            ("1.0^20160101", "1.0.1", Less),
            ("1.0~rc1^git1", "1.0~rc1", Greater),
            ("1.0^git1~pre", "1.0^git1", Less),
            ("1:1.0", "2.0", Greater),
            ("0:1.0", "1.0", Equal),
            (":1.0", "1.0", Equal),
            ("1.0-1", "1.0-2", Less),
            ("1.0", "1.0-1", Less),
            ("1.0", "1.0-~1", Less),
            ("1.0-1.el9", "1.0-1.el9_2", Less),
            ("2.6.32-754.el6", "2.6.32-696.30.1.el6", Greater),
            ("99999999999999999999999", "1.0", Greater),
        ];
        for (a, b, want) in table {
            assert_eq!(cmp(a, b), want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn validity_table() {
        let invalid = [
            ("", Rule::Empty),
            ("1.0 ", Rule::IllegalChar(' ')),
            ("1.0/2", Rule::IllegalChar('/')),
            ("1.0é", Rule::IllegalChar('é')),
            ("1..0", Rule::DoubleDot),
            ("1.0-1-2", Rule::DoubleSeparator('-')),
            ("1:2:3", Rule::DoubleSeparator(':')),
            ("a:1.0", Rule::EpochNotNumber),
            ("1.0-1:2", Rule::EpochNotNumber),
            ("1:", Rule::VersionEmpty),
            ("-1", Rule::VersionEmpty),
            ("1.0-", Rule::ReleaseEmpty),
        ];
        for (text, rule) in invalid {
            let err = validate(text).unwrap_err();
            assert_eq!(err.rule, crate::Rule::Rpm(rule), "{text:?}");
        }
        for text in [
            "1",
            "1.0-1",
            "0:1.0-1.el9",
            ":1.0",
            "1.0^git1~rc2",
            "1_0+x",
            "%{x}",
        ] {
            validate(text).unwrap_or_else(|e| panic!("{text:?} should be valid: {e}"));
        }
    }

    #[test]
    fn parts() {
        let v = Version::parse("3:1.2.3-4.el9").unwrap();
        assert_eq!(
            (v.epoch(), v.version(), v.release()),
            (Some("3"), "1.2.3", Some("4.el9"))
        );
        let v = Version::parse("1.2").unwrap();
        assert_eq!((v.epoch(), v.version(), v.release()), (None, "1.2", None));
    }
}
