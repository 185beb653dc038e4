//! The audit log: append-only and hash-chained.
//!
//! Each entry's hash is SHA-256 over its sequence number, time, actor,
//! action, subject, before, after, reason and the previous entry's hash, each
//! field length-prefixed so no two entries can hash alike by moving text
//! between fields. `audit_head` keeps the last sequence number and hash:
//! appending updates it first, which makes appenders wait for each other on
//! both databases (a row lock on PostgreSQL, the write lock on SQLite), and
//! it lets verification notice that the newest entries were removed.
//! Entries are written by the store methods that make the change, inside
//! their transaction, so a change and its record commit or fail together.
//!
//! The chain is not keyed: whoever can write the database can rewrite an
//! entry and every hash after it, or cut the tail and move the head back,
//! and the chain still verifies. What catches that is outside the
//! database: the server writes signed checkpoints of the head elsewhere,
//! and [`AuditStore::walk_audit`] gives the hashes to hold them against.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::sql::{ts, Store};
use crate::{Error, Result};

/// Who made a change, what it was, and why: the part of an audit entry the
/// caller gives. The store adds the subject and the before and after states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    /// The user (or `system`) who made it.
    pub actor: String,
    /// What was done (`approve`, `exempt`, `create-user`, ...).
    pub action: String,
    /// The reason given, if any.
    pub reason: Option<String>,
}

impl Why {
    /// A change by `actor`, with no reason given.
    pub fn new(actor: impl Into<String>, action: impl Into<String>) -> Why {
        Why {
            actor: actor.into(),
            action: action.into(),
            reason: None,
        }
    }

    /// The same, with a reason.
    pub fn because(mut self, reason: Option<String>) -> Why {
        self.reason = reason.filter(|r| !r.trim().is_empty());
        self
    }
}

/// One thing that happened, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to (`exemptions/web-1-openssl`, `users/alice`).
    pub subject: String,
    /// The state before (JSON), when there was one.
    pub before: Option<String>,
    /// The state after (JSON), when there is one.
    pub after: Option<String>,
    /// The reason given.
    pub reason: Option<String>,
}

impl AuditEvent {
    /// An event from a [`Why`], its subject and states.
    pub fn of(why: &Why, subject: String, before: Option<String>, after: Option<String>) -> Self {
        AuditEvent {
            actor: why.actor.clone(),
            action: why.action.clone(),
            subject,
            before,
            after,
            reason: why.reason.clone(),
        }
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its place in the log, from 1.
    pub seq: u64,
    /// When it was written.
    pub at: Timestamp,
    /// What happened.
    pub event: AuditEvent,
    /// The previous entry's hash (64 zeros for the first).
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

impl AuditEntry {
    /// The hash this entry's contents and its `prev_hash` make: what `hash`
    /// holds in an entry as written. Anyone can work it out; it proves
    /// nothing alone (see the module's header).
    pub fn computed_hash(&self) -> String {
        entry_hash(self.seq, self.at.as_second(), &self.event, &self.prev_hash)
    }
}

/// What verifying the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerdict {
    /// Every entry is as written.
    Intact {
        /// How many entries.
        entries: u64,
        /// The last entry's hash: write it down elsewhere to detect a
        /// rewrite of the whole chain later.
        head: String,
    },
    /// The first entry found altered or missing.
    Broken {
        /// Its sequence number.
        seq: u64,
        /// What is wrong with it.
        problem: String,
    },
}

/// A walk along the chain: what it found, and the hashes it was asked to
/// keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainWalk {
    /// The verdict, as [`AuditStore::verify_audit`] gives it.
    pub verdict: AuditVerdict,
    /// The hash of each entry asked for that the walk passed before it
    /// ended or found a problem, by sequence number.
    pub hashes: BTreeMap<u64, String>,
}

/// The hash of the first entry's predecessor.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of an entry.
fn entry_hash(seq: u64, at: i64, e: &AuditEvent, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(&seq.to_be_bytes());
    field(&at.to_be_bytes());
    field(e.actor.as_bytes());
    field(e.action.as_bytes());
    field(e.subject.as_bytes());
    // An absent state and an empty one hash differently.
    for state in [&e.before, &e.after, &e.reason] {
        match state {
            None => field(b"\x00"),
            Some(s) => field(format!("\x01{s}").as_bytes()),
        }
    }
    field(prev_hash.as_bytes());
    let digest = h.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends an entry inside the caller's transaction.
pub(crate) async fn append(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    event: &AuditEvent,
    now: Timestamp,
) -> Result<()> {
    let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut **tx)
        .await?;
    let seq: i64 = head.try_get(0)?;
    let prev: String = head.try_get(1)?;
    let seq = u64::try_from(seq).map_err(|_| Error::Corrupt(format!("audit sequence {seq}")))?;
    let hash = entry_hash(seq, now.as_second(), event, &prev);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, subject, before_json, after_json, reason, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq as i64)
    .bind(now.as_second())
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.subject)
    .bind(event.before.clone())
    .bind(event.after.clone())
    .bind(event.reason.clone())
    .bind(&prev)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const COLUMNS: &str =
    "seq, at, actor, action, subject, before_json, after_json, reason, prev_hash, hash";

fn entry_from_row(r: &AnyRow) -> Result<AuditEntry> {
    let seq: i64 = r.try_get(0)?;
    Ok(AuditEntry {
        seq: u64::try_from(seq).map_err(|_| Error::Corrupt(format!("audit sequence {seq}")))?,
        at: ts(r.try_get(1)?)?,
        event: AuditEvent {
            actor: r.try_get(2)?,
            action: r.try_get(3)?,
            subject: r.try_get(4)?,
            before: r.try_get(5)?,
            after: r.try_get(6)?,
            reason: r.try_get(7)?,
        },
        prev_hash: r.try_get(8)?,
        hash: r.try_get(9)?,
    })
}

/// Reading and checking the audit log. Writing happens only inside the
/// store methods that make changes, and through [`AuditStore::record`].
pub trait AuditStore {
    /// Records something that changes nothing else (a sign-in, an export).
    async fn record(&self, event: &AuditEvent, now: Timestamp) -> Result<()>;
    /// Entries after `after_seq`, oldest first, at most `limit`; only those
    /// whose subject starts with `subject` when given.
    async fn audit_entries(
        &self,
        subject: Option<&str>,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;
    /// Walks the whole chain and reports the first entry altered or missing.
    async fn verify_audit(&self) -> Result<AuditVerdict>;
    /// Walks the chain as [`AuditStore::verify_audit`] does, but from the
    /// entry `from` names (its sequence number and the hash it had when it
    /// was last checked; the first entry when `None`), which must still be
    /// there with that hash; and keeps the hash of each entry in `keep` it
    /// passes, for comparison with hashes written down elsewhere.
    async fn walk_audit(
        &self,
        from: Option<(u64, &str)>,
        keep: &BTreeSet<u64>,
    ) -> Result<ChainWalk>;
    /// The sequence number of the newest entry (0 when the log is empty),
    /// to read the log newest first.
    async fn audit_head(&self) -> Result<u64>;
}

impl AuditStore for Store {
    async fn record(&self, event: &AuditEvent, now: Timestamp) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        append(&mut tx, event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_entries(
        &self,
        subject: Option<&str>,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let rows = match subject {
            Some(prefix) => {
                // A prefix match that needs no LIKE escaping: the range of
                // strings that start with it.
                let sql = format!(
                    "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 AND subject >= $2 AND subject < $3 \
                     ORDER BY seq LIMIT $4"
                );
                sqlx::query(&sql)
                    .bind(after)
                    .bind(prefix)
                    .bind(format!("{prefix}\u{10FFFF}"))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql =
                    format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
                sqlx::query(&sql)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(entry_from_row).collect()
    }

    async fn audit_head(&self) -> Result<u64> {
        let seq: i64 =
            sqlx::query_scalar("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM audit_log")
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    async fn verify_audit(&self) -> Result<AuditVerdict> {
        Ok(self.walk_audit(None, &BTreeSet::new()).await?.verdict)
    }

    async fn walk_audit(
        &self,
        from: Option<(u64, &str)>,
        keep: &BTreeSet<u64>,
    ) -> Result<ChainWalk> {
        // One read transaction, so entries appended meanwhile are not seen
        // half: the head and the entries are one snapshot.
        let mut tx = self.pool.begin().await?;
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let head_seq: i64 = head.try_get(0)?;
        let head_hash: String = head.try_get(1)?;
        let mut walk = ChainWalk {
            verdict: AuditVerdict::Intact {
                entries: 0,
                head: GENESIS.to_owned(),
            },
            hashes: BTreeMap::new(),
        };
        let broken = |walk: ChainWalk, seq: u64, problem: String| ChainWalk {
            verdict: AuditVerdict::Broken { seq, problem },
            ..walk
        };
        let mut expected_seq: u64 = 1;
        let mut prev = GENESIS.to_owned();
        let mut after: i64 = 0;
        if let Some((seq, hash)) = from {
            // The walk goes on from an entry checked before: it must still
            // be there as it was, or whatever follows proves nothing.
            let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq = $1");
            let row = sqlx::query(&sql)
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Ok(broken(
                    walk,
                    seq,
                    format!("entry {seq} is missing: the log ends at {head_seq}"),
                ));
            };
            let entry = entry_from_row(&row)?;
            if entry.hash != hash {
                return Ok(broken(
                    walk,
                    seq,
                    format!("entry {seq} was altered: its hash is not the one checked before"),
                ));
            }
            if keep.contains(&seq) {
                walk.hashes.insert(seq, entry.hash.clone());
            }
            expected_seq = seq + 1;
            prev = entry.hash;
            after = entry.seq as i64;
        }
        loop {
            let sql =
                format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 1000");
            let rows = sqlx::query(&sql).bind(after).fetch_all(&mut *tx).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let entry = entry_from_row(row)?;
                if entry.seq != expected_seq {
                    return Ok(broken(
                        walk,
                        expected_seq,
                        format!(
                            "entry {expected_seq} is missing (the next one stored is {})",
                            entry.seq
                        ),
                    ));
                }
                if entry.prev_hash != prev {
                    let seq = entry.seq.saturating_sub(1);
                    return Ok(broken(
                        walk,
                        seq,
                        format!(
                            "entry {seq} was altered: entry {} records a different hash for it",
                            entry.seq
                        ),
                    ));
                }
                let at = entry.at.as_second();
                if entry_hash(entry.seq, at, &entry.event, &prev) != entry.hash {
                    return Ok(broken(
                        walk,
                        entry.seq,
                        format!(
                            "entry {} was altered: its contents do not match its hash",
                            entry.seq
                        ),
                    ));
                }
                if keep.contains(&entry.seq) {
                    walk.hashes.insert(entry.seq, entry.hash.clone());
                }
                prev = entry.hash;
                after = entry.seq as i64;
                expected_seq += 1;
            }
        }
        let entries = expected_seq - 1;
        if head_seq != entries as i64 {
            return Ok(broken(
                walk,
                expected_seq,
                format!(
                    "entries {expected_seq} to {head_seq} are missing: the log ends at {entries} but {head_seq} were written"
                ),
            ));
        }
        if head_hash != prev {
            return Ok(broken(
                walk,
                entries,
                format!("entry {entries} was altered: the head records a different hash"),
            ));
        }
        walk.verdict = AuditVerdict::Intact {
            entries,
            head: prev,
        };
        Ok(walk)
    }
}
