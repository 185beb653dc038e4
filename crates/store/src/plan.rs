//! Planning objects (policies, baselines, exemptions, approvals, approval
//! rules, contacts, settings) and first detections.
//!
//! A key design decision made here is that planning objects are stored as
//! small JSON documents in one table keyed by (kind, name): the server parses
//! each into its typed form at the boundary and refuses what does not parse,
//! so the store needs no column per field, and every change is written with
//! its audit entry (before and after) in one transaction.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::{append, AuditEvent, Why};
use crate::sql::{placeholders, ts, Store, CHUNK};
use crate::{Error, Result};

/// A stored planning object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanObject {
    /// Its kind (`policies`, `exemptions`, ...).
    pub kind: String,
    /// Its name, unique within the kind.
    pub name: String,
    /// Its JSON document.
    pub body: String,
    /// When it was first stored.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Who last changed it.
    pub updated_by: String,
}

/// Planning objects, each change audited.
pub trait PlanStore {
    /// Creates or replaces an object, recording the change (subject
    /// `KIND/NAME`, before and after) in the same transaction. Returns the
    /// object it replaced.
    async fn put_plan_object(
        &self,
        kind: &str,
        name: &str,
        body: &str,
        why: &Why,
        now: Timestamp,
    ) -> Result<Option<PlanObject>>;
    /// Creates or replaces several objects of a kind, each `(name, body,
    /// why)` with its own audit entry, all in one transaction: all are
    /// stored or none. Returns, per object, the one it replaced.
    async fn put_plan_objects(
        &self,
        kind: &str,
        objects: &[(&str, &str, Why)],
        now: Timestamp,
    ) -> Result<Vec<Option<PlanObject>>>;
    /// Replaces an object only if it still has the body `expected` (the
    /// body the caller decided from), recording the change; refuses with
    /// [`crate::Error::Conflict`] when it changed or is gone meanwhile.
    async fn replace_plan_object(
        &self,
        kind: &str,
        name: &str,
        expected: &str,
        body: &str,
        why: &Why,
        now: Timestamp,
    ) -> Result<()>;
    /// Deletes an object, recording it; returns what was deleted.
    async fn delete_plan_object(
        &self,
        kind: &str,
        name: &str,
        why: &Why,
        now: Timestamp,
    ) -> Result<Option<PlanObject>>;
    /// Every object of a kind, by name.
    async fn plan_objects(&self, kind: &str) -> Result<Vec<PlanObject>>;
    /// One object.
    async fn plan_object(&self, kind: &str, name: &str) -> Result<Option<PlanObject>>;
}

/// When each host was first seen affected by each advisory.
pub trait DetectionStore {
    /// Records (host, advisory) pairs first seen now; pairs already recorded
    /// keep their first time. Unknown hosts are skipped.
    async fn record_detections(&self, pairs: &[(&str, &str)], now: Timestamp) -> Result<()>;
    /// A host's first detections, by advisory.
    async fn detections(&self, host_id: &str) -> Result<HashMap<String, Timestamp>>;
    /// Every host's first detections: (host, advisory) to the time.
    async fn all_detections(&self) -> Result<HashMap<(String, String), Timestamp>>;
    /// Keeps the fleet's posture of a day (`2026-11-29`), replacing what
    /// was kept for that day.
    async fn record_posture(&self, day: &str, body: &str, now: Timestamp) -> Result<()>;
    /// The postures kept for the days from `first` to `last` (inclusive),
    /// by day.
    async fn postures(&self, first: &str, last: &str) -> Result<Vec<(String, String)>>;
    /// Records findings fixed at `now`: each pair's first detection moves
    /// to the remediations with its class and deadline, in one
    /// transaction. A pair with no first detection (recorded fixed
    /// already) is skipped, so recording the same fix twice counts it once.
    async fn record_remediations(&self, fixed: &[Fixed], now: Timestamp) -> Result<usize>;
    /// The findings fixed from `from` up to (not including) `until`, oldest
    /// fix first.
    async fn remediations(&self, from: Timestamp, until: Timestamp) -> Result<Vec<Remediation>>;
}

/// A finding the server saw fixed: a host no longer affected by an
/// advisory it was affected by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixed {
    /// The host.
    pub host_id: String,
    /// The advisory.
    pub advisory_id: String,
    /// Its class for that host (`critical`, `high`, `medium`, `low`).
    pub class: String,
    /// Its deadline.
    pub due: Timestamp,
}

/// A finding remediated, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remediation {
    /// The host.
    pub host_id: String,
    /// The advisory.
    pub advisory_id: String,
    /// Its class for that host.
    pub class: String,
    /// When the host was first seen affected.
    pub first_seen: Timestamp,
    /// Its deadline.
    pub due: Timestamp,
    /// When the server saw it fixed.
    pub fixed_at: Timestamp,
}

const COLUMNS: &str = "kind, name, body, created_at, updated_at, updated_by";

fn object_from_row(r: &AnyRow) -> Result<PlanObject> {
    Ok(PlanObject {
        kind: r.try_get(0)?,
        name: r.try_get(1)?,
        body: r.try_get(2)?,
        created_at: ts(r.try_get(3)?)?,
        updated_at: ts(r.try_get(4)?)?,
        updated_by: r.try_get(5)?,
    })
}

impl Store {
    async fn locked_object(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        kind: &str,
        name: &str,
    ) -> Result<Option<PlanObject>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM plan_objects WHERE kind = $1 AND name = $2{}",
            self.for_update()
        );
        let row = sqlx::query(&sql)
            .bind(kind)
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
        row.as_ref().map(object_from_row).transpose()
    }
}

/// Writes an object (`kind`, `name`, `body`) and its audit entry, in the
/// caller's transaction.
async fn upsert_audited(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    (kind, name, body): (&str, &str, &str),
    before: Option<String>,
    why: &Why,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO plan_objects (kind, name, body, created_at, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (kind, name) DO UPDATE SET \
         body = excluded.body, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    )
    .bind(kind)
    .bind(name)
    .bind(body)
    .bind(now.as_second())
    .bind(&why.actor)
    .execute(&mut **tx)
    .await?;
    let event = AuditEvent::of(why, format!("{kind}/{name}"), before, Some(body.to_owned()));
    append(tx, &event, now).await
}

impl PlanStore for Store {
    async fn put_plan_object(
        &self,
        kind: &str,
        name: &str,
        body: &str,
        why: &Why,
        now: Timestamp,
    ) -> Result<Option<PlanObject>> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let before = self.locked_object(&mut tx, kind, name).await?;
        let prior = before.as_ref().map(|b| b.body.clone());
        upsert_audited(&mut tx, (kind, name, body), prior, why, now).await?;
        tx.commit().await?;
        Ok(before)
    }

    async fn put_plan_objects(
        &self,
        kind: &str,
        objects: &[(&str, &str, Why)],
        now: Timestamp,
    ) -> Result<Vec<Option<PlanObject>>> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let mut replaced = Vec::with_capacity(objects.len());
        for (name, body, why) in objects {
            let before = self.locked_object(&mut tx, kind, name).await?;
            let prior = before.as_ref().map(|b| b.body.clone());
            upsert_audited(&mut tx, (kind, name, body), prior, why, now).await?;
            replaced.push(before);
        }
        tx.commit().await?;
        Ok(replaced)
    }

    async fn replace_plan_object(
        &self,
        kind: &str,
        name: &str,
        expected: &str,
        body: &str,
        why: &Why,
        now: Timestamp,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let before = self.locked_object(&mut tx, kind, name).await?;
        match &before {
            Some(b) if b.body == expected => {}
            Some(_) => {
                return Err(Error::Conflict(format!(
                    "{kind}/{name} changed meanwhile; read it again"
                )))
            }
            None => return Err(Error::Conflict(format!("{kind}/{name} is gone"))),
        }
        upsert_audited(
            &mut tx,
            (kind, name, body),
            Some(expected.to_owned()),
            why,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_plan_object(
        &self,
        kind: &str,
        name: &str,
        why: &Why,
        now: Timestamp,
    ) -> Result<Option<PlanObject>> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let Some(before) = self.locked_object(&mut tx, kind, name).await? else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM plan_objects WHERE kind = $1 AND name = $2")
            .bind(kind)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let event = AuditEvent::of(
            why,
            format!("{kind}/{name}"),
            Some(before.body.clone()),
            None,
        );
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(Some(before))
    }

    async fn plan_objects(&self, kind: &str) -> Result<Vec<PlanObject>> {
        let sql = format!("SELECT {COLUMNS} FROM plan_objects WHERE kind = $1 ORDER BY name");
        let rows = sqlx::query(&sql).bind(kind).fetch_all(&self.pool).await?;
        rows.iter().map(object_from_row).collect()
    }

    async fn plan_object(&self, kind: &str, name: &str) -> Result<Option<PlanObject>> {
        let sql = format!("SELECT {COLUMNS} FROM plan_objects WHERE kind = $1 AND name = $2");
        let row = sqlx::query(&sql)
            .bind(kind)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(object_from_row).transpose()
    }
}

impl DetectionStore for Store {
    async fn record_detections(&self, pairs: &[(&str, &str)], now: Timestamp) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        for chunk in pairs.chunks(CHUNK) {
            // Only hosts that exist: a pair for a host removed meanwhile is
            // dropped rather than failing the batch on the foreign key.
            let sql = format!(
                "INSERT INTO detections (host_id, advisory_id, first_seen) \
                 SELECT v.column1, v.column2, v.column3 FROM (VALUES {}) AS v \
                 WHERE EXISTS (SELECT 1 FROM hosts WHERE id = v.column1) \
                 ON CONFLICT (host_id, advisory_id) DO NOTHING",
                placeholders(chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (host, advisory) in chunk {
                q = q.bind(*host).bind(*advisory).bind(now.as_second());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn detections(&self, host_id: &str) -> Result<HashMap<String, Timestamp>> {
        let rows = sqlx::query("SELECT advisory_id, first_seen FROM detections WHERE host_id = $1")
            .bind(host_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, ts(r.try_get(1)?)?)))
            .collect()
    }

    async fn record_posture(&self, day: &str, body: &str, now: Timestamp) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO posture_days (day, at, body) VALUES ($1, $2, $3) \
             ON CONFLICT (day) DO UPDATE SET at = excluded.at, body = excluded.body",
        )
        .bind(day)
        .bind(now.as_second())
        .bind(body)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn postures(&self, first: &str, last: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT day, body FROM posture_days WHERE day >= $1 AND day <= $2 ORDER BY day",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn record_remediations(&self, fixed: &[Fixed], now: Timestamp) -> Result<usize> {
        if fixed.is_empty() {
            return Ok(0);
        }
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let mut moved = 0;
        for chunk in fixed.chunks(CHUNK) {
            // The fix's time comes after the rows' values.
            let at = chunk.len() * 4 + 1;
            let sql = format!(
                "INSERT INTO remediations (host_id, advisory_id, class, first_seen, due, fixed_at) \
                 SELECT d.host_id, d.advisory_id, v.column3, d.first_seen, v.column4, ${at} \
                 FROM (VALUES {}) AS v, detections d \
                 WHERE d.host_id = v.column1 AND d.advisory_id = v.column2",
                placeholders(chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q
                    .bind(&f.host_id)
                    .bind(&f.advisory_id)
                    .bind(&f.class)
                    .bind(f.due.as_second());
            }
            q = q.bind(now.as_second());
            moved += q.execute(&mut *tx).await?.rows_affected();
            let sql = format!(
                "DELETE FROM detections WHERE (host_id, advisory_id) IN (VALUES {})",
                placeholders(chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q.bind(&f.host_id).bind(&f.advisory_id);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(usize::try_from(moved).unwrap_or(usize::MAX))
    }

    async fn remediations(&self, from: Timestamp, until: Timestamp) -> Result<Vec<Remediation>> {
        let rows = sqlx::query(
            "SELECT host_id, advisory_id, class, first_seen, due, fixed_at FROM remediations \
             WHERE fixed_at >= $1 AND fixed_at < $2 ORDER BY fixed_at, host_id, advisory_id",
        )
        .bind(from.as_second())
        .bind(until.as_second())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Remediation {
                    host_id: r.try_get(0)?,
                    advisory_id: r.try_get(1)?,
                    class: r.try_get(2)?,
                    first_seen: ts(r.try_get(3)?)?,
                    due: ts(r.try_get(4)?)?,
                    fixed_at: ts(r.try_get(5)?)?,
                })
            })
            .collect()
    }

    async fn all_detections(&self) -> Result<HashMap<(String, String), Timestamp>> {
        let rows = sqlx::query("SELECT host_id, advisory_id, first_seen FROM detections")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), ts(r.try_get(2)?)?)))
            .collect()
    }
}
