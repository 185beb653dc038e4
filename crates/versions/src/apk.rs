//! Alpine versions with apk-tools' rules:
//! `digits{.digits}[letter]{_suffix[digits]}[~hash][-rN]`.
//!
//! A version is a sequence of tokens, each allowed only after certain others:
//! a leading number; further numbers after `.`; one lower-case letter; any
//! number of suffixes (`_alpha _beta _pre _rc` sort before the plain release,
//! `_cvs _svn _git _hg _p` after it), each optionally numbered; one `~` commit
//! hash of hex digits; one `-r` revision number. Anything else is invalid, as
//! `apk version -c` would say.
//!
//! Order is apk-tools' `apk_version_compare`: tokens are compared pairwise while
//! both are of the same kind. Numbers compare as numbers, except that a number
//! after a dot with a leading zero compares as text with the number it meets
//! (`1.01` < `1.1`, and `1.0` < `1.00`). When the kinds differ, a pre-release
//! suffix is older than anything; otherwise the version whose next token comes
//! later in the grammar (the end of the version being last of all) is older, so
//! `1.0` < `1.0-r1` < `1.0~ab` < `1.0_p1` < `1.0a` < `1.0.1`. Numbers are read
//! into 64 bits, wrapping on overflow exactly as apk-tools does.

use std::cmp::Ordering;

use crate::{keyed_version, Ecosystem, ParseError};

/// A rule of apk-tools' that a version breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// The empty string.
    #[error("version string is empty")]
    Empty,
    /// The first character is not a digit.
    #[error("version must start with a digit")]
    NoLeadingDigit,
    /// A `.` with no digits after it.
    #[error("'.' at byte {0} must be followed by digits")]
    MissingDigits(usize),
    /// `_` followed by a word apk does not know.
    #[error(
        "unknown suffix {0:?}: apk knows _alpha, _beta, _pre, _rc, _cvs, _svn, _git, _hg and _p"
    )]
    UnknownSuffix(String),
    /// `~` with no hex digits after it.
    #[error("'~' at byte {0} must be followed by a hex commit hash")]
    EmptyHash(usize),
    /// `-` not followed by `r` and digits.
    #[error("'-' at byte {0} must be followed by 'r' and the revision number")]
    BadRevision(usize),
    /// A part in a place the grammar does not allow it.
    #[error("{what} at byte {at} cannot follow {after}")]
    OutOfOrder {
        /// What was found.
        what: &'static str,
        /// Where, as a byte offset.
        at: usize,
        /// The kind of part before it.
        after: &'static str,
    },
    /// A character that has no place in an apk version.
    #[error("invalid character {ch:?} at byte {at}")]
    IllegalChar {
        /// The character.
        ch: char,
        /// Where, as a byte offset.
        at: usize,
    },
}

/// A valid Alpine version.
#[derive(Debug, Clone)]
pub struct Version {
    text: Box<str>,
    key: Box<[u8]>,
}

keyed_version!(Version);

impl Version {
    /// Parses `text` with apk-tools' rules.
    pub fn parse(text: &str) -> Result<Version, ParseError> {
        let mut key = Vec::with_capacity(4 * text.len() + 10);
        let mut tokens = Tokens::new(text.as_bytes());
        loop {
            let token = tokens
                .next()
                .map_err(|rule| ParseError::new(Ecosystem::Apk, text, rule))?;
            token.push_key(&mut key);
            if token == Token::End {
                break;
            }
        }
        Ok(Version {
            text: text.into(),
            key: key.into(),
        })
    }
}

/// Checks `text` as `apk version -c` does.
pub fn validate(text: &str) -> Result<(), ParseError> {
    let mut tokens = Tokens::new(text.as_bytes());
    loop {
        match tokens.next() {
            Ok(Token::End) => return Ok(()),
            Ok(_) => {}
            Err(rule) => return Err(ParseError::new(Ecosystem::Apk, text, rule)),
        }
    }
}

/// Compares two versions as `apk version -t` does, without allocating. Both
/// must be valid.
pub fn compare_str(a: &str, b: &str) -> Result<Ordering, ParseError> {
    validate(a)?;
    validate(b)?;
    let (mut ta, mut tb) = (Tokens::new(a.as_bytes()), Tokens::new(b.as_bytes()));
    loop {
        // Both were validated above, so the tokenizers cannot fail here.
        let (x, y) = (
            ta.next().unwrap_or(Token::End),
            tb.next().unwrap_or(Token::End),
        );
        if x.kind() != y.kind() {
            return Ok(different_kinds(&x, &y));
        }
        if x == Token::End {
            return Ok(Ordering::Equal);
        }
        let order = same_kind(&x, &y);
        if order != Ordering::Equal {
            return Ok(order);
        }
    }
}

/// The kinds of token, in apk-tools' grammar order; the order matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Initial,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    Hash,
    Revision,
    End,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Initial | Kind::Digit => "a number",
            Kind::Letter => "a letter",
            Kind::Suffix => "a suffix",
            Kind::SuffixNo => "a suffix number",
            Kind::Hash => "a commit hash",
            Kind::Revision => "the revision",
            Kind::End => "the end",
        }
    }
}

/// Suffix values in apk-tools' order; `NONE` (5) is the plain release.
const SUFFIXES: [(&str, u8); 9] = [
    ("alpha", 1),
    ("beta", 2),
    ("pre", 3),
    ("rc", 4),
    ("cvs", 6),
    ("svn", 7),
    ("git", 8),
    ("hg", 9),
    ("p", 10),
];
const SUFFIX_NONE: u8 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Initial(u64),
    /// A number after a dot: its digits as written, and their value.
    Digit(&'a [u8], u64),
    Letter(u8),
    Suffix(u8),
    SuffixNo(u64),
    Hash(&'a [u8]),
    Revision(u64),
    End,
}

impl Token<'_> {
    fn kind(&self) -> Kind {
        match self {
            Token::Initial(_) => Kind::Initial,
            Token::Digit(..) => Kind::Digit,
            Token::Letter(_) => Kind::Letter,
            Token::Suffix(_) => Kind::Suffix,
            Token::SuffixNo(_) => Kind::SuffixNo,
            Token::Hash(_) => Kind::Hash,
            Token::Revision(_) => Kind::Revision,
            Token::End => Kind::End,
        }
    }

    fn is_pre_release(&self) -> bool {
        matches!(self, Token::Suffix(s) if *s < SUFFIX_NONE)
    }

    /// The token's class in the sort key. When two versions first differ in the
    /// kind of token, apk-tools ranks them: a pre-release suffix lowest, then the
    /// later a kind comes in the grammar, the lower. Splitting suffixes into pre-
    /// and post-release classes keeps that one ordering for equal kinds too.
    fn class(&self) -> u8 {
        match self {
            Token::Suffix(s) if *s < SUFFIX_NONE => 1,
            Token::End => 2,
            Token::Revision(_) => 3,
            Token::Hash(_) => 4,
            Token::SuffixNo(_) => 5,
            Token::Suffix(_) => 6,
            Token::Letter(_) => 7,
            Token::Digit(..) => 8,
            Token::Initial(_) => 9,
        }
    }

    fn push_key(&self, out: &mut Vec<u8>) {
        out.push(self.class());
        match *self {
            Token::Initial(n) | Token::SuffixNo(n) | Token::Revision(n) => {
                out.extend_from_slice(&n.to_be_bytes())
            }
            // A number with a leading zero compares as text, and text starting
            // with `0` is below any number without one: mark which case this is.
            Token::Digit(text, _) if text[0] == b'0' => {
                out.push(0x00);
                out.extend_from_slice(text);
                out.push(0x00);
            }
            Token::Digit(_, n) => {
                out.push(0x01);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Token::Letter(c) | Token::Suffix(c) => out.push(c),
            Token::Hash(text) => {
                out.extend_from_slice(text);
                out.push(0x00);
            }
            Token::End => {}
        }
    }
}

/// apk-tools' `token_cmp` for two tokens of the same kind.
fn same_kind(x: &Token<'_>, y: &Token<'_>) -> Ordering {
    match (*x, *y) {
        (Token::Digit(a, _), Token::Digit(b, _)) if a[0] == b'0' || b[0] == b'0' => a.cmp(b),
        (Token::Digit(_, a), Token::Digit(_, b))
        | (Token::Initial(a), Token::Initial(b))
        | (Token::SuffixNo(a), Token::SuffixNo(b))
        | (Token::Revision(a), Token::Revision(b)) => a.cmp(&b),
        (Token::Letter(a), Token::Letter(b)) | (Token::Suffix(a), Token::Suffix(b)) => a.cmp(&b),
        (Token::Hash(a), Token::Hash(b)) => a.cmp(b),
        _ => Ordering::Equal,
    }
}

/// apk-tools' rule for the first tokens of different kinds.
fn different_kinds(x: &Token<'_>, y: &Token<'_>) -> Ordering {
    if x.is_pre_release() {
        Ordering::Less
    } else if y.is_pre_release() {
        Ordering::Greater
    } else {
        y.kind().cmp(&x.kind())
    }
}

/// apk-tools' tokenizer (`token_first` / `token_next`), with the grammar checks
/// turned into errors that say what is wrong.
struct Tokens<'a> {
    text: &'a [u8],
    pos: usize,
    last: Option<Kind>,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a [u8]) -> Self {
        Tokens {
            text,
            pos: 0,
            last: None,
        }
    }

    fn digits(&mut self) -> (&'a [u8], u64) {
        let start = self.pos;
        let n = self.text[start..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        self.pos += n;
        let run = &self.text[start..start + n];
        let value = run.iter().fold(0u64, |v, d| {
            v.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
        (run, value)
    }

    fn out_of_order(&self, what: &'static str, at: usize, last: Kind) -> Rule {
        Rule::OutOfOrder {
            what,
            at,
            after: last.describe(),
        }
    }

    fn next(&mut self) -> Result<Token<'a>, Rule> {
        let Some(last) = self.last else {
            let (run, value) = self.digits();
            if run.is_empty() {
                return Err(if self.text.is_empty() {
                    Rule::Empty
                } else {
                    Rule::NoLeadingDigit
                });
            }
            self.last = Some(Kind::Initial);
            return Ok(Token::Initial(value));
        };
        let at = self.pos;
        let Some(&c) = self.text.get(at) else {
            self.last = Some(Kind::End);
            return Ok(Token::End);
        };
        let token = match c {
            b'a'..=b'z' => {
                if last > Kind::Digit {
                    return Err(self.out_of_order("a letter", at, last));
                }
                self.pos += 1;
                Token::Letter(c)
            }
            b'.' => {
                if last > Kind::Digit {
                    return Err(self.out_of_order("'.'", at, last));
                }
                self.pos += 1;
                let (run, value) = self.digits();
                if run.is_empty() {
                    return Err(Rule::MissingDigits(at));
                }
                Token::Digit(run, value)
            }
            b'0'..=b'9' => {
                // Digits run on from a number, so here they can only follow a
                // suffix word (or, wrongly, a letter).
                if last != Kind::Suffix {
                    return Err(self.out_of_order("a digit", at, last));
                }
                Token::SuffixNo(self.digits().1)
            }
            b'_' => {
                if last > Kind::SuffixNo {
                    return Err(self.out_of_order("a suffix", at, last));
                }
                self.pos += 1;
                let n = self.text[self.pos..]
                    .iter()
                    .take_while(|c| c.is_ascii_lowercase())
                    .count();
                let word = &self.text[self.pos..self.pos + n];
                self.pos += n;
                match SUFFIXES.iter().find(|(name, _)| name.as_bytes() == word) {
                    Some(&(_, value)) => Token::Suffix(value),
                    None => {
                        return Err(Rule::UnknownSuffix(format!(
                            "_{}",
                            String::from_utf8_lossy(word)
                        )))
                    }
                }
            }
            b'~' => {
                if last >= Kind::Hash {
                    return Err(self.out_of_order("a commit hash", at, last));
                }
                self.pos += 1;
                let n = self.text[self.pos..]
                    .iter()
                    .take_while(|c| c.is_ascii_hexdigit())
                    .count();
                if n == 0 {
                    return Err(Rule::EmptyHash(at));
                }
                let hash = &self.text[self.pos..self.pos + n];
                self.pos += n;
                Token::Hash(hash)
            }
            b'-' => {
                if last >= Kind::Revision {
                    return Err(self.out_of_order("a revision", at, last));
                }
                if self.text.get(at + 1) != Some(&b'r') {
                    return Err(Rule::BadRevision(at));
                }
                self.pos += 2;
                let (run, value) = self.digits();
                if run.is_empty() {
                    return Err(Rule::BadRevision(at));
                }
                Token::Revision(value)
            }
            _ => {
                let ch = std::str::from_utf8(&self.text[at..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(Rule::IllegalChar { ch, at });
            }
        };
        self.last = Some(token.kind());
        Ok(token)
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
            ("1.0", "1.1", Less),
            ("1.9", "1.10", Less),
            ("01.0", "1.0", Equal),
            ("1.01", "1.1", Less),
            ("1.0", "1.00", Less),
            ("1.001", "1.01", Less),
            ("1.09", "1.1", Less),
            ("8.2.0015", "8.2.002", Less),
            ("1.0_alpha", "1.0", Less),
            ("1.0_alpha", "1.0_beta", Less),
            ("1.0_beta", "1.0_pre", Less),
            ("1.0_pre", "1.0_rc", Less),
            ("1.0_rc", "1.0", Less),
            ("1.0_rc1", "1.0_rc2", Less),
            ("1.0_rc", "1.0_rc1", Less),
            ("1.0", "1.0_cvs", Less),
            ("1.0_cvs", "1.0_svn", Less),
            ("1.0_svn", "1.0_git", Less),
            ("1.0_git", "1.0_hg", Less),
            ("1.0_hg", "1.0_p", Less),
            ("1.0_p1", "1.0_p2", Less),
            ("1.0_p9", "1.0_p10", Less),
            ("1.0", "1.0-r1", Less),
            ("1.0-r1", "1.0-r2", Less),
            ("1.0-r9", "1.0-r10", Less),
            ("1.0-r1", "1.0~abc", Less),
            ("1.0~abc", "1.0_p1", Less),
            ("1.0_p1", "1.0a", Less),
            ("1.0a", "1.0b", Less),
            ("1.0a", "1.0.1", Less),
            ("1.0_alpha", "1.0-r1", Less),
            ("1.0_alpha1_beta", "1.0_alpha1", Less),
            ("1.0_p1_rc", "1.0_p1", Less),
            ("1.0~abc", "1.0~abd", Less),
            ("1.0~ABC", "1.0~abc", Less),
            ("1.0~abc-r1", "1.0~abc", Greater),
            ("2", "10", Less),
            ("1.2.3-r0", "1.2.3", Greater),
            // apk-tools reads numbers into 64 bits and wraps, so 2^64 reads as 0.
            ("18446744073709551616", "0", Equal),
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
            ("a1", Rule::NoLeadingDigit),
            (".1", Rule::NoLeadingDigit),
            ("1.", Rule::MissingDigits(1)),
            ("1..2", Rule::MissingDigits(1)),
            ("1_foo", Rule::UnknownSuffix("_foo".into())),
            ("1_", Rule::UnknownSuffix("_".into())),
            ("1_alphaa", Rule::UnknownSuffix("_alphaa".into())),
            ("1~", Rule::EmptyHash(1)),
            ("1~xyz", Rule::EmptyHash(1)),
            ("1-1", Rule::BadRevision(1)),
            ("1-r", Rule::BadRevision(1)),
            ("1-rx", Rule::BadRevision(1)),
            (
                "1ab",
                Rule::OutOfOrder {
                    what: "a letter",
                    at: 2,
                    after: "a letter",
                },
            ),
            (
                "1a2",
                Rule::OutOfOrder {
                    what: "a digit",
                    at: 2,
                    after: "a letter",
                },
            ),
            (
                "1a.2",
                Rule::OutOfOrder {
                    what: "'.'",
                    at: 2,
                    after: "a letter",
                },
            ),
            (
                "1_p1.2",
                Rule::OutOfOrder {
                    what: "'.'",
                    at: 4,
                    after: "a suffix number",
                },
            ),
            (
                "1-r1_p1",
                Rule::OutOfOrder {
                    what: "a suffix",
                    at: 4,
                    after: "the revision",
                },
            ),
            (
                "1-r1-r2",
                Rule::OutOfOrder {
                    what: "a revision",
                    at: 4,
                    after: "the revision",
                },
            ),
            (
                "1-r1~ab",
                Rule::OutOfOrder {
                    what: "a commit hash",
                    at: 4,
                    after: "the revision",
                },
            ),
            (
                "1~ab~cd",
                Rule::OutOfOrder {
                    what: "a commit hash",
                    at: 4,
                    after: "a commit hash",
                },
            ),
            (
                "1~ab_p1",
                Rule::OutOfOrder {
                    what: "a suffix",
                    at: 4,
                    after: "a commit hash",
                },
            ),
            ("1.0A", Rule::IllegalChar { ch: 'A', at: 3 }),
            ("1.0 ", Rule::IllegalChar { ch: ' ', at: 3 }),
            ("1.0é", Rule::IllegalChar { ch: 'é', at: 3 }),
        ];
        for (text, rule) in invalid {
            let err = validate(text).unwrap_err();
            assert_eq!(err.rule, crate::Rule::Apk(rule), "{text:?}");
        }
        for text in [
            "0",
            "1.2.3",
            "1.2.3a",
            "1.0_alpha1_p2",
            "1.0_rc",
            "1.0~0f3A-r12",
            "1.0_p1-r0",
        ] {
            validate(text).unwrap_or_else(|e| panic!("{text:?} should be valid: {e}"));
        }
    }
}
