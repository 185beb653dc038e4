//! Several writes sent to the database as one. On SQLite they travel as one
//! query string of several statements: sqlx's SQLite driver runs each query
//! on its worker thread, and handing a query over and back costs more than
//! a small write itself. On PostgreSQL they run one after another.

use crate::sql::{Backend, Store};
use crate::Result;

/// One bound value.
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Blob(Vec<u8>),
}

impl From<&str> for Arg {
    fn from(text: &str) -> Arg {
        Arg::Text(Some(text.to_owned()))
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Arg {
        Arg::Text(Some(text))
    }
}

impl From<Option<String>> for Arg {
    fn from(text: Option<String>) -> Arg {
        Arg::Text(text)
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Arg {
        Arg::Int(Some(n))
    }
}

impl From<Option<i64>> for Arg {
    fn from(n: Option<i64>) -> Arg {
        Arg::Int(n)
    }
}

impl From<Vec<u8>> for Arg {
    fn from(bytes: Vec<u8>) -> Arg {
        Arg::Blob(bytes)
    }
}

/// Statements, each written with its own parameters `$1`, `$2`, ...
#[derive(Default)]
pub(crate) struct Batch {
    statements: Vec<(String, Vec<Arg>)>,
}

impl Batch {
    pub(crate) fn push(&mut self, sql: impl Into<String>, args: Vec<Arg>) {
        self.statements.push((sql.into(), args));
    }

    /// Adds `other`'s statements after these.
    pub(crate) fn append(&mut self, other: Batch) {
        self.statements.extend(other.statements);
    }

    /// Runs the statements in order inside `tx`.
    pub(crate) async fn run(self, store: &Store, conn: &mut sqlx::AnyConnection) -> Result<()> {
        match store.backend() {
            Backend::Sqlite => {
                // Parameter numbers run on across the statements of one
                // query; keep them well inside SQLite's limit (32,766).
                let mut sql = String::new();
                let mut all: Vec<Arg> = Vec::new();
                for (statement, args) in self.statements {
                    if !all.is_empty() && all.len() + args.len() > MAX_PARAMETERS {
                        run_sqlite(conn, &std::mem::take(&mut sql), std::mem::take(&mut all))
                            .await?;
                    }
                    sql.push_str(&renumber(&statement, all.len()));
                    sql.push_str(";\n");
                    all.extend(args);
                }
                if !sql.is_empty() {
                    run_sqlite(conn, &sql, all).await?;
                }
            }
            Backend::Postgres => {
                for (statement, args) in self.statements {
                    let mut query = sqlx::query(&statement);
                    for arg in args {
                        query = bind(query, arg);
                    }
                    query.execute(&mut *conn).await?;
                }
            }
        }
        Ok(())
    }
}

/// Parameters in one query string on SQLite, at most (unless one statement
/// alone has more).
const MAX_PARAMETERS: usize = 8_000;

async fn run_sqlite(conn: &mut sqlx::AnyConnection, sql: &str, args: Vec<Arg>) -> Result<()> {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = bind(query, arg);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

pub(crate) type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

pub(crate) fn bind(query: Query<'_>, arg: Arg) -> Query<'_> {
    match arg {
        Arg::Text(text) => query.bind(text),
        Arg::Int(n) => query.bind(n),
        Arg::Blob(bytes) => query.bind(bytes),
    }
}

/// `sql` with each parameter `$n` made `$(n + offset)`. A `$` not followed
/// by a digit (a JSON path such as `'$[0]'`) is left alone.
pub(crate) fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(&(_, d)) = chars.peek() {
            if !d.is_ascii_digit() {
                break;
            }
            digits.push(d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn parameters_are_renumbered_and_json_paths_kept() {
        assert_eq!(
            renumber(
                "UPDATE t SET a = $1, b = json_extract(x, '$[0]') WHERE c = $12",
                3
            ),
            "UPDATE t SET a = $4, b = json_extract(x, '$[0]') WHERE c = $15"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
    }
}
