//! Host queries: the rule of a dynamic group.
//!
//! ```text
//! query      := or
//! or         := and ("or" and)*
//! and        := not ("and" not)*
//! not        := "not" not | "(" query ")" | comparison
//! comparison := field op value
//! op         := = | != | < | <= | > | >=
//! value      := word | "quoted text"
//! ```
//!
//! Fields: `os`, `os_version`, `codename`, `kernel`, `arch`, `hostname`,
//! `group`, `tag`, `criticality`, `owner`, `department`, `reboot_required`,
//! `stale`. `os_version` and `kernel` compare as versions (so `10 > 9` and
//! `22.04 > 20.10`), `criticality` by rank (low < medium < high < critical),
//! `reboot_required` and `stale` are `true` or `false`, everything else as
//! text. `tag = x` holds when the host has tag x, `tag != x` when it has not.
//! A host that lacks a field (no inventory yet) matches no comparison on it
//! except `!=`.

use std::cmp::Ordering;
use std::fmt;

/// What a query can ask about a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// os-release ID.
    Os,
    /// os-release VERSION_ID.
    OsVersion,
    /// os-release VERSION_CODENAME.
    Codename,
    /// Running kernel release.
    Kernel,
    /// Architecture.
    Arch,
    /// Host name.
    Hostname,
    /// Static group.
    Group,
    /// Tags (several).
    Tag,
    /// Criticality.
    Criticality,
    /// Owner.
    Owner,
    /// Department.
    Department,
    /// Needs a reboot.
    RebootRequired,
    /// Not heard from for the stale period.
    Stale,
}

const FIELDS: [(&str, Field); 13] = [
    ("os", Field::Os),
    ("os_version", Field::OsVersion),
    ("codename", Field::Codename),
    ("kernel", Field::Kernel),
    ("arch", Field::Arch),
    ("hostname", Field::Hostname),
    ("group", Field::Group),
    ("tag", Field::Tag),
    ("criticality", Field::Criticality),
    ("owner", Field::Owner),
    ("department", Field::Department),
    ("reboot_required", Field::RebootRequired),
    ("stale", Field::Stale),
];

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Both hold.
    And(Box<Query>, Box<Query>),
    /// Either holds.
    Or(Box<Query>, Box<Query>),
    /// It does not hold.
    Not(Box<Query>),
    /// A field compared with a value.
    Compare {
        /// The field.
        field: Field,
        /// The operator.
        op: Op,
        /// The value, as written.
        value: String,
    },
}

/// What a query is evaluated against: one host's attributes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// os-release ID.
    pub os: Option<&'a str>,
    /// os-release VERSION_ID.
    pub os_version: Option<&'a str>,
    /// os-release VERSION_CODENAME.
    pub codename: Option<&'a str>,
    /// Running kernel.
    pub kernel: Option<&'a str>,
    /// Architecture.
    pub arch: Option<&'a str>,
    /// Host name.
    pub hostname: &'a str,
    /// Static group.
    pub group: Option<&'a str>,
    /// Tags.
    pub tags: &'a [String],
    /// Criticality.
    pub criticality: Option<&'a str>,
    /// Owner.
    pub owner: Option<&'a str>,
    /// Department.
    pub department: Option<&'a str>,
    /// Needs a reboot.
    pub reboot_required: bool,
    /// Stale, as decided by the caller from its clock.
    pub stale: bool,
}

/// A query that cannot be parsed: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query {query:?}, at character {at}: {problem}")]
pub struct QueryError {
    /// The query.
    pub query: String,
    /// Where the problem is (0-based character offset).
    pub at: usize,
    /// What is wrong.
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(Op),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, (usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((start, Token::Open));
                i += 1;
            }
            ')' => {
                out.push((start, Token::Close));
                i += 1;
            }
            '=' => {
                out.push((start, Token::Op(Op::Eq)));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push((start, Token::Op(Op::Ne)));
                i += 2;
            }
            '<' | '>' => {
                let or_equal = chars.get(i + 1) == Some(&'=');
                let op = match (c, or_equal) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                };
                out.push((start, Token::Op(op)));
                i += if or_equal { 2 } else { 1 };
            }
            '"' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err((start, "a quoted value is not closed".into())),
                        Some('"') => break,
                        Some('\\') if chars.get(i + 1).is_some() => {
                            value.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&ch) => {
                            value.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((start, Token::Quoted(value)));
                i += 1;
            }
            c if c.is_alphanumeric() || "._:~+-/@".contains(c) => {
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || "._:~+-/@".contains(chars[i]))
                {
                    i += 1;
                }
                out.push((start, Token::Word(chars[start..i].iter().collect())));
            }
            other => return Err((start, format!("unexpected character {other:?}"))),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: &'a [(usize, Token)],
    pos: usize,
    end: usize,
    /// How deep in `not` and parentheses the parser is, and how many
    /// comparisons it has read: both are bounded, since a query comes from
    /// the API and its evaluation recurses through the tree.
    depth: usize,
    terms: usize,
}

/// The deepest nesting of `not` and parentheses a query may have.
const MAX_DEPTH: usize = 32;
/// The most comparisons a query may have.
const MAX_TERMS: usize = 256;

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn here(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(at, _)| *at)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Query, (usize, String)> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            left = Query::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Query, (usize, String)> {
        let mut left = self.not()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Query::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Query, (usize, String)> {
        if self.depth >= MAX_DEPTH {
            return Err((
                self.here(),
                format!("nested more than {MAX_DEPTH} deep in `not` and parentheses"),
            ));
        }
        self.depth += 1;
        let inner = self.not_inner();
        self.depth -= 1;
        inner
    }

    fn not_inner(&mut self) -> Result<Query, (usize, String)> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Query::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Token::Open) {
            let open = self.here();
            self.pos += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Token::Close) {
                return Err((
                    self.here(),
                    format!("the parenthesis opened at character {open} is not closed"),
                ));
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Query, (usize, String)> {
        let at = self.here();
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err((at, format!("more than {MAX_TERMS} comparisons")));
        }
        let field = match self.peek() {
            Some(Token::Word(w)) => FIELDS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(w))
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    let names: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
                    (
                        at,
                        format!("unknown field {w:?}; fields are {}", names.join(", ")),
                    )
                })?,
            _ => return Err((at, "expected a field, such as os or tag".into())),
        };
        self.pos += 1;
        let op = match self.peek() {
            Some(Token::Op(op)) => *op,
            _ => return Err((self.here(), "expected an operator: = != < <= > >=".into())),
        };
        self.pos += 1;
        let value_at = self.here();
        let value = match self.peek() {
            Some(Token::Word(w)) | Some(Token::Quoted(w)) => w.clone(),
            _ => return Err((value_at, "expected a value".into())),
        };
        self.pos += 1;
        match field {
            Field::RebootRequired | Field::Stale => {
                if value != "true" && value != "false" {
                    return Err((value_at, format!("{value:?}: this field is true or false")));
                }
                if !matches!(op, Op::Eq | Op::Ne) {
                    return Err((value_at, "true and false compare with = or != only".into()));
                }
            }
            Field::Criticality if rank(&value).is_none() => {
                return Err((
                    value_at,
                    format!("{value:?}: criticality is low, medium, high or critical"),
                ));
            }
            Field::Tag if !matches!(op, Op::Eq | Op::Ne) => {
                return Err((value_at, "tags compare with = or != only".into()));
            }
            _ => {}
        }
        Ok(Query::Compare { field, op, value })
    }
}

fn rank(criticality: &str) -> Option<u8> {
    ["low", "medium", "high", "critical"]
        .iter()
        .position(|c| *c == criticality)
        .map(|p| p as u8)
}

/// Versions such as `12`, `22.04` or `6.1.0-18-amd64` compare by dpkg's
/// rules, which order numeric runs as numbers; text that is not a valid
/// version falls back to plain comparison.
fn version_order(a: &str, b: &str) -> Ordering {
    versions::compare(versions::Ecosystem::Deb, a, b).unwrap_or_else(|_| a.cmp(b))
}

impl Query {
    /// Parses a query.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let error = |(at, problem): (usize, String)| QueryError {
            query: text.to_owned(),
            at,
            problem,
        };
        let tokens = tokenize(text).map_err(error)?;
        if tokens.is_empty() {
            return Err(error((0, "the query is empty".into())));
        }
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            end: text.chars().count(),
            depth: 0,
            terms: 0,
        };
        let query = parser.or().map_err(error)?;
        if parser.pos < tokens.len() {
            return Err(error((
                parser.here(),
                "expected `and`, `or` or the end of the query".into(),
            )));
        }
        Ok(query)
    }

    /// Whether the host matches.
    pub fn matches(&self, host: &Subject<'_>) -> bool {
        match self {
            Query::And(a, b) => a.matches(host) && b.matches(host),
            Query::Or(a, b) => a.matches(host) || b.matches(host),
            Query::Not(q) => !q.matches(host),
            Query::Compare { field, op, value } => compare(host, *field, *op, value),
        }
    }
}

fn compare(host: &Subject<'_>, field: Field, op: Op, value: &str) -> bool {
    let holds = |order: Ordering| match op {
        Op::Eq => order == Ordering::Equal,
        Op::Ne => order != Ordering::Equal,
        Op::Lt => order == Ordering::Less,
        Op::Le => order != Ordering::Greater,
        Op::Gt => order == Ordering::Greater,
        Op::Ge => order != Ordering::Less,
    };
    let text = |actual: Option<&str>, order: fn(&str, &str) -> Ordering| match actual {
        Some(actual) => holds(order(actual, value)),
        None => op == Op::Ne,
    };
    match field {
        Field::Tag => host.tags.iter().any(|t| t == value) == (op == Op::Eq),
        Field::RebootRequired => (host.reboot_required == (value == "true")) == (op == Op::Eq),
        Field::Stale => (host.stale == (value == "true")) == (op == Op::Eq),
        Field::Criticality => match (host.criticality.and_then(rank), rank(value)) {
            (Some(actual), Some(wanted)) => holds(actual.cmp(&wanted)),
            _ => op == Op::Ne,
        },
        Field::OsVersion => text(host.os_version, version_order),
        Field::Kernel => text(host.kernel, version_order),
        Field::Os => text(host.os, str::cmp),
        Field::Codename => text(host.codename, str::cmp),
        Field::Arch => text(host.arch, str::cmp),
        Field::Hostname => text(Some(host.hostname), str::cmp),
        Field::Group => text(host.group, str::cmp),
        Field::Owner => text(host.owner, str::cmp),
        Field::Department => text(host.department, str::cmp),
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host<'a>(tags: &'a [String]) -> Subject<'a> {
        Subject {
            os: Some("debian"),
            os_version: Some("12"),
            codename: Some("bookworm"),
            kernel: Some("6.1.0-18-amd64"),
            arch: Some("amd64"),
            hostname: "lap-042",
            group: Some("laptops"),
            tags,
            criticality: Some("high"),
            owner: Some("ana"),
            department: None,
            reboot_required: true,
            stale: false,
        }
    }

    #[test]
    fn queries_select_as_written() {
        let tags = vec!["laptop".to_owned(), "eu".to_owned()];
        let h = host(&tags);
        let table = [
            ("os = debian and os_version >= 12 and tag = laptop", true),
            ("os = debian and os_version >= 13", false),
            ("os_version > 9", true),
            ("os_version < 9", false),
            ("kernel >= 6.1.0-10-amd64", true),
            ("tag = desktop", false),
            ("tag != desktop", true),
            ("not tag = laptop", false),
            ("criticality >= medium", true),
            ("criticality = critical", false),
            ("reboot_required = true and stale = false", true),
            ("department = finance", false),
            ("department != finance", true),
            ("(os = ubuntu or os = debian) and arch = amd64", true),
            ("os = ubuntu or os = debian and arch = arm64", false),
            ("hostname = \"lap-042\"", true),
            ("OS = debian AND Tag = eu", true),
        ];
        for (text, want) in table {
            let q = Query::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(q.matches(&h), want, "{text}");
        }
        let old = Subject {
            os_version: Some("22.04"),
            ..h
        };
        assert!(
            Query::parse("os_version > 20.10").unwrap().matches(&old),
            "versions, not text"
        );
    }

    #[test]
    fn hostile_queries_are_refused_before_they_nest_too_deep() {
        let deep = format!("{}os = debian{}", "(".repeat(10_000), ")".repeat(10_000));
        let error = Query::parse(&deep).unwrap_err().to_string();
        assert!(error.contains("nested more than 32 deep"), "{error}");
        let nots = format!("{}os = debian", "not ".repeat(10_000));
        assert!(Query::parse(&nots).is_err());
        let long = vec!["tag = x"; 1_000].join(" and ");
        let error = Query::parse(&long).unwrap_err().to_string();
        assert!(error.contains("more than 256 comparisons"), "{error}");
        // Sensible nesting still reads.
        assert!(Query::parse("not (os = debian and (tag = a or not tag = b))").is_ok());
    }

    #[test]
    fn bad_queries_say_where_and_what() {
        let table = [
            ("", 0, "empty"),
            ("os =", 4, "expected a value"),
            ("os debian", 3, "expected an operator"),
            ("colour = red", 0, "unknown field \"colour\""),
            ("os = debian and", 15, "expected a field"),
            ("os = debian or (tag = x", 23, "not closed"),
            ("stale = maybe", 8, "true or false"),
            ("criticality > huge", 14, "criticality is low"),
            ("tag > x", 6, "= or != only"),
            ("os = debian tag = x", 12, "expected `and`"),
            ("os = \"debian", 5, "quoted value is not closed"),
            ("os = deb;ian", 8, "unexpected character ';'"),
        ];
        for (text, at, says) in table {
            let e = Query::parse(text).unwrap_err();
            assert_eq!(e.at, at, "{text}: {e}");
            assert!(e.problem.contains(says), "{text}: {e}");
            assert!(e.to_string().contains(&format!("{text:?}")), "{e}");
        }
    }
}
