//! Debian versions, `[epoch:]upstream[-revision]`, with dpkg's rules.
//!
//! Validity is what `dpkg --validate-version` decides (dpkg's `parseversion`):
//! blanks around the version are ignored; the epoch is whatever `strtol` reads
//! before the first colon and must be a number from 0 to `INT_MAX`; the revision
//! follows the last hyphen and must not be empty; the upstream part must start
//! with a digit and may hold `A-Za-z0-9.+~-:`, the revision `A-Za-z0-9.+~`.
//!
//! Order is dpkg's `verrevcmp` on upstream, then revision, after the epoch: text
//! is split into alternating non-digit and digit runs; non-digit runs compare
//! character by character with `~` before the end of the run, the end before
//! letters, letters before everything else; digit runs compare as numbers of any
//! size. An absent revision equals `0`, so `1.0` equals `1.0-0`.

use std::cmp::Ordering;
use std::ops::Range;

use crate::{key, keyed_version, ByteSet, Ecosystem, ParseError};

static UPSTREAM_CHARS: ByteSet = ByteSet::alphanumeric_and(b".-+~:");
static REVISION_CHARS: ByteSet = ByteSet::alphanumeric_and(b".+~");

/// A rule of dpkg's that a version breaks. The wording follows dpkg's own messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// Nothing but blanks.
    #[error("version string is empty")]
    Empty,
    /// A blank between other characters.
    #[error("version string has embedded spaces")]
    EmbeddedSpace,
    /// A colon with no number before it.
    #[error("epoch in version is empty")]
    EpochEmpty,
    /// Something other than a number before the first colon.
    #[error("epoch in version is not number")]
    EpochNotNumber,
    /// A negative epoch.
    #[error("epoch in version is negative")]
    EpochNegative,
    /// An epoch above 2147483647.
    #[error("epoch in version is too big")]
    EpochTooBig,
    /// An epoch and a colon with nothing after them.
    #[error("nothing after colon in version number")]
    NothingAfterColon,
    /// A trailing hyphen.
    #[error("revision number is empty")]
    RevisionEmpty,
    /// Nothing between the epoch and the revision.
    #[error("version number is empty")]
    UpstreamEmpty,
    /// The upstream version starts with something other than a digit.
    #[error("version number does not start with digit")]
    UpstreamNotDigit,
    /// A character outside `A-Za-z0-9.+~-:` in the upstream version.
    #[error("invalid character {0:?} in version number")]
    UpstreamChar(char),
    /// A character outside `A-Za-z0-9.+~` in the revision.
    #[error("invalid character {0:?} in revision number")]
    RevisionChar(char),
}

/// A valid Debian version.
#[derive(Debug, Clone)]
pub struct Version {
    text: Box<str>,
    epoch: u32,
    upstream: Range<usize>,
    revision: Option<Range<usize>>,
    key: Box<[u8]>,
}

keyed_version!(Version);

impl Version {
    /// Parses `text` with dpkg's rules.
    pub fn parse(text: &str) -> Result<Version, ParseError> {
        let parts = split(text).map_err(|rule| ParseError::new(Ecosystem::Deb, text, rule))?;
        let mut key = Vec::with_capacity(8 + 2 * text.len());
        key.extend_from_slice(&parts.epoch.to_be_bytes());
        push_key(&mut key, parts.upstream.as_bytes());
        push_key(&mut key, parts.revision.as_bytes());
        let offset = |s: &str| s.as_ptr() as usize - text.as_ptr() as usize;
        let upstream = offset(parts.upstream)..offset(parts.upstream) + parts.upstream.len();
        let revision = parts
            .has_revision
            .then(|| offset(parts.revision)..offset(parts.revision) + parts.revision.len());
        Ok(Version {
            text: text.into(),
            epoch: parts.epoch,
            upstream,
            revision,
            key: key.into(),
        })
    }

    /// The epoch; 0 when none is written.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version: between the epoch's colon and the last hyphen.
    pub fn upstream(&self) -> &str {
        &self.text[self.upstream.clone()]
    }

    /// The Debian revision after the last hyphen, if there is one.
    pub fn revision(&self) -> Option<&str> {
        self.revision.clone().map(|r| &self.text[r])
    }
}

/// Checks `text` as `dpkg --validate-version` does.
pub fn validate(text: &str) -> Result<(), ParseError> {
    split(text)
        .map(drop)
        .map_err(|rule| ParseError::new(Ecosystem::Deb, text, rule))
}

/// Compares two version strings as `dpkg --compare-versions` does, without
/// allocating. Both must be valid.
pub fn compare_str(a: &str, b: &str) -> Result<Ordering, ParseError> {
    if a == b {
        return validate(a).map(|()| Ordering::Equal);
    }
    let pa = split(a).map_err(|rule| ParseError::new(Ecosystem::Deb, a, rule))?;
    let pb = split(b).map_err(|rule| ParseError::new(Ecosystem::Deb, b, rule))?;
    Ok(pa
        .epoch
        .cmp(&pb.epoch)
        .then_with(|| verrevcmp(pa.upstream.as_bytes(), pb.upstream.as_bytes()))
        .then_with(|| verrevcmp(pa.revision.as_bytes(), pb.revision.as_bytes())))
}

/// The pieces of a valid version, borrowed from the input.
struct Parts<'a> {
    epoch: u32,
    upstream: &'a str,
    /// Empty when there is no revision, which compares like `0`.
    revision: &'a str,
    has_revision: bool,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits and validates in the order dpkg's `parseversion` checks, so the rule
/// reported for a string with several faults is the one dpkg reports.
fn split(text: &str) -> Result<Parts<'_>, Rule> {
    let s = text.trim_start_matches(is_blank);
    if s.is_empty() {
        return Err(Rule::Empty);
    }
    let s = match s.find(is_blank) {
        Some(end) if !s[end..].trim_start_matches(is_blank).is_empty() => {
            return Err(Rule::EmbeddedSpace)
        }
        Some(end) => &s[..end],
        None => s,
    };

    let (epoch, rest) = match s.find(':') {
        Some(colon) => {
            let epoch = parse_epoch(&s[..colon])?;
            let rest = &s[colon + 1..];
            if rest.is_empty() {
                return Err(Rule::NothingAfterColon);
            }
            (epoch, rest)
        }
        None => (0, s),
    };

    let (upstream, revision, has_revision) = match rest.rfind('-') {
        Some(hyphen) => {
            let revision = &rest[hyphen + 1..];
            if revision.is_empty() {
                return Err(Rule::RevisionEmpty);
            }
            (&rest[..hyphen], revision, true)
        }
        None => (rest, "", false),
    };

    match upstream.as_bytes().first() {
        None => return Err(Rule::UpstreamEmpty),
        Some(c) if !c.is_ascii_digit() => return Err(Rule::UpstreamNotDigit),
        Some(_) => {}
    }
    if let Some(c) = UPSTREAM_CHARS.first_outside(&upstream[1..]) {
        return Err(Rule::UpstreamChar(c));
    }
    if let Some(c) = REVISION_CHARS.first_outside(revision) {
        return Err(Rule::RevisionChar(c));
    }
    Ok(Parts {
        epoch,
        upstream,
        revision,
        has_revision,
    })
}

/// Reads an epoch the way dpkg does with `strtol`: leading white space and a
/// sign are accepted, the number must run up to the colon, and it must lie in
/// `0..=INT_MAX` (so `-0` is a valid epoch 0, as it is for dpkg).
fn parse_epoch(s: &str) -> Result<u32, Rule> {
    let body = s.trim_start_matches([' ', '\t', '\n', '\u{b}', '\u{c}', '\r']);
    let (negative, digits_and_rest) = match body.as_bytes().first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    let digits_len = digits_and_rest
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if digits_len == 0 {
        return Err(Rule::EpochEmpty);
    }
    if digits_len != digits_and_rest.len() {
        return Err(Rule::EpochNotNumber);
    }
    let digits = digits_and_rest.as_bytes();
    let is_zero = digits.iter().all(|&d| d == b'0');
    if negative && !is_zero {
        return Err(Rule::EpochNegative);
    }
    let mut value: u64 = 0;
    for &d in digits {
        value = value * 10 + u64::from(d - b'0');
        if value > i32::MAX as u64 {
            return Err(Rule::EpochTooBig);
        }
    }
    Ok(value as u32)
}

/// dpkg's weight of a character in a non-digit run; 0 stands for the end of the run.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit and digit runs.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        loop {
            let ca = a.get(i).copied();
            let cb = b.get(j).copied();
            let a_nondigit = ca.is_some_and(|c| !c.is_ascii_digit());
            let b_nondigit = cb.is_some_and(|c| !c.is_ascii_digit());
            if !(a_nondigit || b_nondigit) {
                break;
            }
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            i += 1;
            j += 1;
        }
        let da = a[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        let numbers = key::cmp_decimal(&a[i..i + da], &b[j..j + db]);
        if numbers != Ordering::Equal {
            return numbers;
        }
        i += da;
        j += db;
    }
    Ordering::Equal
}

/// Appends the sort key of an upstream version or revision.
///
/// The text is a sequence of (non-digit run, number) pairs. Each pair becomes
/// the run's characters mapped to bytes in dpkg's order (`~` to 0x01, letters to
/// themselves, other characters above 0x80), an end-of-run byte 0x02, then the
/// number. The whole ends with 0x02, which stands for the end of the text: it
/// sorts after `~` and before any other character, as dpkg's end of string does.
/// Only a first pair can have an empty run, so that final 0x02 never meets
/// another pair's empty run; the empty text is encoded as `0`, which dpkg holds
/// equal to it, so that it too has a first pair.
fn push_key(out: &mut Vec<u8>, text: &[u8]) {
    let text = if text.is_empty() { b"0" } else { text };
    let mut i = 0;
    loop {
        while let Some(&c) = text.get(i).filter(|c| !c.is_ascii_digit()) {
            out.push(match c {
                b'~' => 0x01,
                c if c.is_ascii_alphabetic() => c,
                c => 0x80 | c,
            });
            i += 1;
        }
        out.push(0x02);
        let digits = text[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        key::push_decimal(out, &text[i..i + digits]);
        i += digits;
        if i == text.len() {
            break;
        }
    }
    out.push(0x02);
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
            ("1.0-1", "1.0000-1", Equal),
            ("1.0", "1.0-0", Equal),
            ("0:1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc1~", Greater),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0+", Less),
            ("1.0+", "1.0.", Less),
            ("1.0.", "1.0-1", Greater),
            ("1.0a", "1.0A", Greater),
            ("1.0Z", "1.0a", Less),
            ("1.0", "1.0.0", Less),
            ("1.9", "1.10", Less),
            ("2:1.0", "1:9.9", Greater),
            ("1.0-1", "1.0-1ubuntu1", Less),
            ("1.0-1+b1", "1.0-1", Greater),
            ("1.0-1+deb12u1", "1.0-1+deb12u2", Less),
            ("1.0-1~bpo11+1", "1.0-1", Less),
            ("3.0.11-1~deb12u2", "3.0.15-1~deb12u1", Less),
            ("1:2.0", "1:2.0-0", Equal),
            ("1.0-a", "1.0-0", Greater),
            ("1.0-~", "1.0", Less),
            ("10", "9", Greater),
            ("1.000000000000000000000000000001", "1.1", Equal),
            (
                "1.99999999999999999999999999",
                "1.100000000000000000000000000",
                Less,
            ),
            ("1-1-1", "1-1", Greater),
            ("1:1:1", "1:1", Greater),
            ("0", "0~", Greater),
            ("1.2.3", "1.2.3-0", Equal),
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
            ("   ", Rule::Empty),
            ("1 0", Rule::EmbeddedSpace),
            (":1", Rule::EpochEmpty),
            ("+:1", Rule::EpochEmpty),
            ("a:1", Rule::EpochEmpty),
            ("1a:1", Rule::EpochNotNumber),
            ("1.0:1", Rule::EpochNotNumber),
            ("-1:1", Rule::EpochNegative),
            ("2147483648:1", Rule::EpochTooBig),
            ("99999999999999999999:1", Rule::EpochTooBig),
            ("1:", Rule::NothingAfterColon),
            ("1.0-", Rule::RevisionEmpty),
            ("-1", Rule::UpstreamEmpty),
            ("1:-1", Rule::UpstreamEmpty),
            ("a1.0", Rule::UpstreamNotDigit),
            ("1:a", Rule::UpstreamNotDigit),
            ("1.0_1", Rule::UpstreamChar('_')),
            ("1.0é", Rule::UpstreamChar('é')),
            ("1:1.0-1:2", Rule::RevisionChar(':')),
            ("1.0-1:2", Rule::EpochNotNumber),
            ("1.0-1_2", Rule::RevisionChar('_')),
        ];
        for (text, rule) in invalid {
            let err = validate(text).unwrap_err();
            assert_eq!(err.rule, crate::Rule::Deb(rule), "{text:?}");
            assert_eq!(err.version, text);
        }
        for text in [
            "1",
            " 1.0 ",
            "\t1.0",
            "2147483647:1",
            "-0:1",
            "+1:1",
            "\n1:1",
            "1:1:1",
            "1-a-b",
        ] {
            validate(text).unwrap_or_else(|e| panic!("{text:?} should be valid: {e}"));
        }
    }

    #[test]
    fn parts_and_display() {
        let v = Version::parse("2:1.0-1-3+b1").unwrap();
        assert_eq!(
            (v.epoch(), v.upstream(), v.revision()),
            (2, "1.0-1", Some("3+b1"))
        );
        assert_eq!(v.to_string(), "2:1.0-1-3+b1");
        let v = Version::parse(" 1.0 ").unwrap();
        assert_eq!((v.epoch(), v.upstream(), v.revision()), (0, "1.0", None));
        assert_eq!(v.to_string(), " 1.0 ");
        assert_eq!(
            Version::parse("1.0").unwrap(),
            Version::parse("0:1.0-0").unwrap()
        );
    }

    #[test]
    fn error_message_names_version_and_rule() {
        let err = Version::parse("1:").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid deb version \"1:\": nothing after colon in version number"
        );
    }
}
