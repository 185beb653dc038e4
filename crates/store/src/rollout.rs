//! Rollouts: the frozen spec, the executor's recorded state, each host's
//! job and progress, and the steps agents report.
//!
//! A key design decision made here is that every change to a rollout as a
//! whole names the generation it was decided for, and is refused (as a
//! conflict, with nothing written) when the rollout moved on meanwhile: a
//! plan made before a halt or a rollback can never hand out jobs after it.
//! Step reports arrive by the thousand; they are stored many to a
//! transaction, and each moves its host's progress only when it belongs to
//! the host's current job.

use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::{append, AuditEvent, Why};
use crate::sql::{opt_ts, parse_json_array, ts, Store};
use crate::{Error, Result};

/// A rollout as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRecord {
    /// Its name.
    pub name: String,
    /// The server's JSON of what it installs and how (frozen).
    pub spec: String,
    /// Its generation: halts, rollbacks and redeploys move it on.
    pub generation: u64,
    /// The server's JSON of what the executor recorded.
    pub state: String,
    /// `awaiting_release`, `running`, `halted`, `complete`, `rolling_back`,
    /// `rolled_back`, `refused`.
    pub status: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// By whom.
    pub created_by: String,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// A host of a new rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRolloutHost {
    /// The host.
    pub host_id: String,
    /// Its ring.
    pub ring: u32,
    /// Its packages (JSON), each at the exact version frozen.
    pub packages: String,
}

/// A new rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRollout {
    /// Its name.
    pub name: String,
    /// Its spec (JSON).
    pub spec: String,
    /// Its initial state (JSON).
    pub state: String,
    /// Its initial status: `running`, or `awaiting_release` when a person
    /// must release it before any of it runs.
    pub status: String,
    /// A release decided as it is created (its creator may release what it
    /// runs as root), audited after the creation in the same transaction.
    pub release: Option<Why>,
    /// Its hosts.
    pub hosts: Vec<NewRolloutHost>,
}

/// One host's line of a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutHostRecord {
    /// The rollout.
    pub rollout: String,
    /// The host.
    pub host_id: String,
    /// Its ring.
    pub ring: u32,
    /// Its packages (JSON).
    pub packages: String,
    /// `not_started`, `assigned`, `in_progress`, `succeeded`, `failed`,
    /// `rolling_back`, `rolled_back`, `rollback_failed`.
    pub progress: String,
    /// Its current job.
    pub job_id: Option<String>,
    /// `install` or `rollback`.
    pub job_kind: Option<String>,
    /// The current job, signed, as delivered (JSON of a `SignedJob`).
    pub job: Option<String>,
    /// The last step reported.
    pub step: Option<String>,
    /// When its current job was handed out.
    pub since: Option<Timestamp>,
    /// When its current job ended.
    pub done_at: Option<Timestamp>,
    /// Why it failed, as the agent said.
    pub detail: Option<String>,
    /// What its install changed (JSON), as the agent reported it.
    pub changes: Option<String>,
    /// When the line last changed.
    pub updated_at: Timestamp,
    /// When its install first succeeded (a later rollback or generation
    /// does not move it).
    pub installed_at: Option<Timestamp>,
}

/// A job handed to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The host.
    pub host_id: String,
    /// The job's id.
    pub job_id: String,
    /// `install` or `rollback`.
    pub job_kind: String,
    /// The signed job (JSON of a `SignedJob`).
    pub job: String,
}

/// A change to a rollout as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutUpdate {
    /// The rollout.
    pub name: String,
    /// The generation the change was decided for; another refuses it.
    pub expected_generation: u64,
    /// The generation after it.
    pub generation: u64,
    /// The state after it (JSON).
    pub state: String,
    /// The status after it.
    pub status: String,
    /// Jobs handed out with it: `assigned` (install) or `rolling_back`.
    pub assignments: Vec<Assignment>,
    /// Hosts put back to `not_started`, their job withdrawn (a redeploy's
    /// failed hosts, a halt's undelivered jobs).
    pub reset: Vec<String>,
}

/// A step an agent reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// The job.
    pub job_id: String,
    /// The host that reported it (authenticated).
    pub host_id: String,
    /// The step's name (`received`, ..., `succeeded`, `failed`, `refused`).
    pub step: String,
    /// When, by the agent's clock.
    pub at: Timestamp,
    /// The report's details (JSON), if any.
    pub detail: Option<String>,
    /// A failure's sentence, kept on the host's line.
    pub failure: Option<String>,
    /// What the install changed (JSON), with `installed`.
    pub changes: Option<String>,
}

/// What became of a reported step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Recorded; the host's progress is now this.
    Recorded {
        /// The rollout.
        rollout: String,
        /// The host's progress after it.
        progress: String,
        /// Whether it moved the progress.
        moved: bool,
    },
    /// No such job for this host.
    UnknownJob,
}

/// A recorded step, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEvent {
    /// The job.
    pub job_id: String,
    /// The host.
    pub host_id: String,
    /// The step.
    pub step: String,
    /// When, by the agent's clock.
    pub at: Timestamp,
    /// When the server received it.
    pub received_at: Timestamp,
    /// Its details (JSON).
    pub detail: Option<String>,
}

/// Rollouts.
pub trait RolloutStore {
    /// Creates a rollout with its hosts (generation 1), audited. A rollout
    /// of that name already existing is a conflict.
    async fn create_rollout(&self, rollout: &NewRollout, why: &Why, now: Timestamp) -> Result<()>;
    /// Every rollout, newest first.
    async fn rollouts(&self) -> Result<Vec<RolloutRecord>>;
    /// One rollout.
    async fn rollout(&self, name: &str) -> Result<Option<RolloutRecord>>;
    /// A rollout's hosts, by ring then host.
    async fn rollout_hosts(&self, name: &str) -> Result<Vec<RolloutHostRecord>>;
    /// Every host's line without its packages and signed job (`packages`
    /// empty, `job` None): what planning and progress read, a small part
    /// of the whole (a line's packages and job are kilobytes each).
    async fn rollout_lines(&self, name: &str) -> Result<Vec<RolloutHostRecord>>;
    /// The packages (JSON) of the given hosts' lines in a rollout, or of
    /// every line.
    async fn rollout_packages(
        &self,
        name: &str,
        hosts: Option<&[String]>,
    ) -> Result<HashMap<String, String>>;
    /// Records a change decided for `expected_generation`: a conflict, with
    /// nothing written, when the rollout is at another. Audited when `why`
    /// is given (a person's change, or the executor's ring starts and
    /// halts); assignments that are not the host's are skipped.
    async fn update_rollout(
        &self,
        update: &RolloutUpdate,
        why: Option<&Why>,
        now: Timestamp,
    ) -> Result<()>;
    /// Stores steps, all in one transaction, each moving its host's progress
    /// when it belongs to the host's current job.
    async fn record_steps(&self, steps: &[StepRecord], now: Timestamp) -> Result<Vec<StepOutcome>>;
    /// Jobs handed out and not yet received (`assigned`, `rolling_back`
    /// before `received`), for the delivery board at start.
    async fn undelivered_jobs(&self) -> Result<Vec<RolloutHostRecord>>;
    /// The steps of a rollout (of one host, when given), in order.
    async fn job_events(&self, rollout: &str, host_id: Option<&str>) -> Result<Vec<JobEvent>>;
}

/// A whole line: `rollout_hosts h` joined with its `rollout_payloads p`.
const HOST_COLUMNS: &str = "h.rollout, h.host_id, h.ring, p.packages, h.progress, h.job_id, \
     h.job_kind, p.job, h.step, h.since, h.done_at, h.detail, h.changes, h.updated_at, \
     h.installed_at";

/// The tables [`HOST_COLUMNS`] reads.
const HOST_TABLES: &str = "rollout_hosts h JOIN rollout_payloads p \
     ON p.rollout = h.rollout AND p.host_id = h.host_id";

fn host_from_row(r: &AnyRow) -> Result<RolloutHostRecord> {
    Ok(RolloutHostRecord {
        rollout: r.try_get(0)?,
        host_id: r.try_get(1)?,
        ring: u32::try_from(r.try_get::<i64, _>(2)?)
            .map_err(|_| Error::Corrupt("a ring number out of range".into()))?,
        packages: r.try_get(3)?,
        progress: r.try_get(4)?,
        job_id: r.try_get(5)?,
        job_kind: r.try_get(6)?,
        job: r.try_get(7)?,
        step: r.try_get(8)?,
        since: opt_ts(r.try_get(9)?)?,
        done_at: opt_ts(r.try_get(10)?)?,
        detail: r.try_get(11)?,
        changes: r.try_get(12)?,
        updated_at: ts(r.try_get(13)?)?,
        installed_at: opt_ts(r.try_get(14)?)?,
    })
}

const ROLLOUT_COLUMNS: &str =
    "name, spec, generation, state, status, created_at, created_by, updated_at";

fn rollout_from_row(r: &AnyRow) -> Result<RolloutRecord> {
    Ok(RolloutRecord {
        name: r.try_get(0)?,
        spec: r.try_get(1)?,
        generation: u64::try_from(r.try_get::<i64, _>(2)?)
            .map_err(|_| Error::Corrupt("a negative rollout generation".into()))?,
        state: r.try_get(3)?,
        status: r.try_get(4)?,
        created_at: ts(r.try_get(5)?)?,
        created_by: r.try_get(6)?,
        updated_at: ts(r.try_get(7)?)?,
    })
}

/// The progress a step moves a host to, from `current` in a job of `kind`;
/// `None` when it does not move it.
fn progress_after(kind: &str, current: &str, step: &str) -> Option<&'static str> {
    let rollback = kind == "rollback";
    let finished = matches!(
        current,
        "succeeded" | "failed" | "rolled_back" | "rollback_failed"
    );
    if finished {
        return None;
    }
    Some(match (rollback, step) {
        (false, "succeeded") => "succeeded",
        (false, "failed" | "refused") => "failed",
        (true, "succeeded") => "rolled_back",
        (true, "failed" | "refused") => "rollback_failed",
        (false, _) if current == "assigned" => "in_progress",
        _ => return None,
    })
}

/// A rollout line as a batch of steps moves it.
#[derive(Debug, Default)]
struct LineMove {
    rollout: String,
    kind: String,
    progress: String,
    /// The last step reported; none while the batch has not reached it.
    step: Option<String>,
    done_at: Option<i64>,
    detail: Option<String>,
    changes: Option<String>,
    installed_at: Option<i64>,
}

fn generation_i64(g: u64) -> Result<i64> {
    i64::try_from(g).map_err(|_| Error::Invalid(format!("generation {g} is out of range")))
}

impl RolloutStore for Store {
    async fn create_rollout(&self, rollout: &NewRollout, why: &Why, now: Timestamp) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM rollouts WHERE name = $1")
            .bind(&rollout.name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(Error::Conflict(format!(
                "a rollout named {} exists already",
                rollout.name
            )));
        }
        sqlx::query(
            "INSERT INTO rollouts (name, spec, generation, state, status, created_at, created_by, updated_at) \
             VALUES ($1, $2, 1, $3, $6, $4, $5, $4)",
        )
        .bind(&rollout.name)
        .bind(&rollout.spec)
        .bind(&rollout.state)
        .bind(now.as_second())
        .bind(&why.actor)
        .bind(&rollout.status)
        .execute(&mut *tx)
        .await?;
        // The hosts travel as one JSON array: [[host, ring, packages], ...].
        let rows: Vec<(&str, u32, &str)> = rollout
            .hosts
            .iter()
            .map(|h| (h.host_id.as_str(), h.ring, h.packages.as_str()))
            .collect();
        let json = serde_json::to_string(&rows)
            .map_err(|e| Error::Invalid(format!("rollout hosts: {e}")))?;
        let sql = format!(
            "INSERT INTO rollout_hosts (rollout, host_id, ring, progress, updated_at) \
             SELECT $1, {h}, {r}, 'not_started', $2 FROM {rows} \
             WHERE EXISTS (SELECT 1 FROM hosts WHERE id = {h})",
            rows = self.json_rows(3),
            h = self.json_col(0, false),
            r = self.json_col(1, true),
        );
        sqlx::query(&sql)
            .bind(&rollout.name)
            .bind(now.as_second())
            .bind(&json)
            .execute(&mut *tx)
            .await?;
        let sql = format!(
            "INSERT INTO rollout_payloads (rollout, host_id, packages) \
             SELECT $1, {h}, {p} FROM {rows} \
             WHERE EXISTS (SELECT 1 FROM rollout_hosts WHERE rollout = $1 AND host_id = {h})",
            rows = self.json_rows(2),
            h = self.json_col(0, false),
            p = self.json_col(2, false),
        );
        sqlx::query(&sql)
            .bind(&rollout.name)
            .bind(&json)
            .execute(&mut *tx)
            .await?;
        let event = AuditEvent::of(
            why,
            format!("rollouts/{}", rollout.name),
            None,
            Some(rollout.spec.clone()),
        );
        append(&mut tx, &event, now).await?;
        if let Some(release) = &rollout.release {
            let event = AuditEvent::of(
                release,
                format!("rollouts/{}", rollout.name),
                None,
                Some(format!(
                    "{{\"generation\":1,\"status\":\"{}\",\"state\":{}}}",
                    rollout.status, rollout.state
                )),
            );
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rollouts(&self) -> Result<Vec<RolloutRecord>> {
        let sql = format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts ORDER BY created_at DESC, name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(rollout_from_row).collect()
    }

    async fn rollout(&self, name: &str) -> Result<Option<RolloutRecord>> {
        let sql = format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    async fn rollout_hosts(&self, name: &str) -> Result<Vec<RolloutHostRecord>> {
        let sql = format!(
            "SELECT {HOST_COLUMNS} FROM {HOST_TABLES} WHERE h.rollout = $1 ORDER BY h.ring, h.host_id"
        );
        let rows = sqlx::query(&sql).bind(name).fetch_all(&self.pool).await?;
        rows.iter().map(host_from_row).collect()
    }

    async fn rollout_lines(&self, name: &str) -> Result<Vec<RolloutHostRecord>> {
        let sql = format!(
            "SELECT {} FROM rollout_hosts h WHERE h.rollout = $1",
            self.json_array_of(
                "h.host_id, h.ring, h.progress, h.job_id, h.job_kind, h.step, h.since, \
                 h.done_at, h.detail, h.changes, h.updated_at, h.installed_at"
            )
        );
        let built: Option<String> = sqlx::query(&sql)
            .bind(name)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        type Line = (
            String,
            i64,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<String>,
            i64,
            Option<i64>,
        );
        let rows: Vec<Line> = parse_json_array(built, &format!("the lines of rollout {name}"))?;
        let mut lines = rows
            .into_iter()
            .map(
                |(
                    host_id,
                    ring,
                    progress,
                    job_id,
                    job_kind,
                    step,
                    since,
                    done_at,
                    detail,
                    changes,
                    updated_at,
                    installed_at,
                )| {
                    Ok(RolloutHostRecord {
                        rollout: name.to_owned(),
                        host_id,
                        ring: u32::try_from(ring)
                            .map_err(|_| Error::Corrupt("a ring number out of range".into()))?,
                        packages: String::new(),
                        progress,
                        job_id,
                        job_kind,
                        job: None,
                        step,
                        since: opt_ts(since)?,
                        done_at: opt_ts(done_at)?,
                        detail,
                        changes,
                        updated_at: ts(updated_at)?,
                        installed_at: opt_ts(installed_at)?,
                    })
                },
            )
            .collect::<Result<Vec<_>>>()?;
        lines.sort_by(|a, b| (a.ring, &a.host_id).cmp(&(b.ring, &b.host_id)));
        Ok(lines)
    }

    async fn rollout_packages(
        &self,
        name: &str,
        hosts: Option<&[String]>,
    ) -> Result<HashMap<String, String>> {
        let rows = match hosts {
            None => {
                sqlx::query("SELECT host_id, packages FROM rollout_payloads WHERE rollout = $1")
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(hosts) => {
                let sql = format!(
                    "SELECT host_id, packages FROM rollout_payloads \
                     WHERE rollout = $1 AND host_id IN ({})",
                    self.json_values(2, "text")
                );
                let list = serde_json::to_string(hosts)
                    .map_err(|e| Error::Invalid(format!("rollout hosts: {e}")))?;
                sqlx::query(&sql)
                    .bind(name)
                    .bind(list)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn update_rollout(
        &self,
        update: &RolloutUpdate,
        why: Option<&Why>,
        now: Timestamp,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE name = $1");
        let before = self
            .locked_row(&mut tx, &sql, &update.name)
            .await?
            .as_ref()
            .map(rollout_from_row)
            .transpose()?
            .ok_or_else(|| Error::NotFound(format!("rollout {}", update.name)))?;
        if before.generation != update.expected_generation {
            return Err(Error::Conflict(format!(
                "rollout {} is at generation {}, not {}: decide again",
                update.name, before.generation, update.expected_generation
            )));
        }
        sqlx::query(
            "UPDATE rollouts SET generation = $2, state = $3, status = $4, updated_at = $5 WHERE name = $1",
        )
        .bind(&update.name)
        .bind(generation_i64(update.generation)?)
        .bind(&update.state)
        .bind(&update.status)
        .bind(now.as_second())
        .execute(&mut *tx)
        .await?;
        for host in &update.reset {
            sqlx::query(
                "UPDATE rollout_hosts SET progress = 'not_started', job_id = NULL, job_kind = NULL, \
                   step = NULL, since = NULL, done_at = NULL, detail = NULL, updated_at = $3 \
                 WHERE rollout = $1 AND host_id = $2",
            )
            .bind(&update.name)
            .bind(host)
            .bind(now.as_second())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE rollout_payloads SET job = NULL WHERE rollout = $1 AND host_id = $2",
            )
            .bind(&update.name)
            .bind(host)
            .execute(&mut *tx)
            .await?;
        }
        for a in &update.assignments {
            let progress = if a.job_kind == "rollback" {
                "rolling_back"
            } else {
                "assigned"
            };
            sqlx::query(
                "UPDATE rollout_hosts SET job_id = $3, job_kind = $4, progress = $5, \
                   step = NULL, since = $6, done_at = NULL, detail = NULL, updated_at = $6 \
                 WHERE rollout = $1 AND host_id = $2",
            )
            .bind(&update.name)
            .bind(&a.host_id)
            .bind(&a.job_id)
            .bind(&a.job_kind)
            .bind(progress)
            .bind(now.as_second())
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE rollout_payloads SET job = $3 WHERE rollout = $1 AND host_id = $2")
                .bind(&update.name)
                .bind(&a.host_id)
                .bind(&a.job)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(why) = why {
            let event = AuditEvent::of(
                why,
                format!("rollouts/{}", update.name),
                Some(format!(
                    "{{\"generation\":{},\"status\":\"{}\",\"state\":{}}}",
                    before.generation, before.status, before.state
                )),
                Some(format!(
                    "{{\"generation\":{},\"status\":\"{}\",\"state\":{},\"jobs\":{},\"reset\":{}}}",
                    update.generation,
                    update.status,
                    update.state,
                    update.assignments.len(),
                    update.reset.len()
                )),
            );
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_steps(&self, steps: &[StepRecord], now: Timestamp) -> Result<Vec<StepOutcome>> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let json = |v: serde_json::Value| {
            serde_json::to_string(&v).map_err(|e| Error::Invalid(format!("steps: {e}")))
        };
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        // The batch takes three statements whatever its size: one reads the
        // lines its steps are for, one appends the events, one moves the
        // lines. Each statement is a round trip to SQLite's worker thread,
        // which is what a busy rollout spends its time on.
        let pairs: Vec<[&str; 2]> = steps
            .iter()
            .map(|s| [s.job_id.as_str(), s.host_id.as_str()])
            .collect();
        let sql = format!(
            "SELECT {} FROM {} JOIN rollout_hosts h ON h.job_id = {} AND h.host_id = {}",
            self.json_array_of("h.job_id, h.host_id, h.rollout, h.progress, h.job_kind"),
            self.json_rows(1),
            self.json_col(0, false),
            self.json_col(1, false),
        );
        let built: Option<String> = sqlx::query(&sql)
            .bind(json(serde_json::json!(pairs))?)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        type Found = (String, String, String, String, Option<String>);
        let found: Vec<Found> = parse_json_array(built, "the lines of reported jobs")?;
        // Each line as the batch moves it, by (job, host).
        let mut lines: HashMap<(String, String), LineMove> = found
            .into_iter()
            .map(|(job, host, rollout, progress, kind)| {
                let line = LineMove {
                    rollout,
                    kind: kind.unwrap_or_else(|| "install".to_owned()),
                    progress,
                    ..LineMove::default()
                };
                ((job, host), line)
            })
            .collect();
        let mut outcomes = Vec::with_capacity(steps.len());
        let mut events = Vec::with_capacity(steps.len());
        for s in steps {
            let Some(line) = lines.get_mut(&(s.job_id.clone(), s.host_id.clone())) else {
                outcomes.push(StepOutcome::UnknownJob);
                continue;
            };
            events.push(serde_json::json!([
                s.job_id,
                line.rollout,
                s.host_id,
                s.step,
                s.at.as_second(),
                s.detail,
                events.len()
            ]));
            let next = progress_after(&line.kind, &line.progress, &s.step);
            if let Some(next) = next {
                line.progress = next.to_owned();
                if matches!(
                    next,
                    "succeeded" | "failed" | "rolled_back" | "rollback_failed"
                ) {
                    line.done_at = Some(s.at.as_second());
                }
                if next == "succeeded" {
                    line.installed_at = line.installed_at.or(Some(s.at.as_second()));
                }
            }
            line.step = Some(s.step.clone());
            line.detail = s.failure.clone().or(line.detail.take());
            line.changes = s.changes.clone().or(line.changes.take());
            outcomes.push(StepOutcome::Recorded {
                rollout: line.rollout.clone(),
                progress: line.progress.clone(),
                moved: next.is_some(),
            });
        }
        if !events.is_empty() {
            let sql = format!(
                "INSERT INTO job_events (job_id, rollout, host_id, step, at, received_at, detail) \
                 SELECT {}, {}, {}, {}, {}, $2, {} FROM {} ORDER BY {}",
                self.json_col(0, false),
                self.json_col(1, false),
                self.json_col(2, false),
                self.json_col(3, false),
                self.json_col(4, true),
                self.json_col(5, false),
                self.json_rows(1),
                self.json_col(6, true),
            );
            sqlx::query(&sql)
                .bind(json(serde_json::Value::Array(events))?)
                .bind(now.as_second())
                .execute(&mut *tx)
                .await?;
            let moved: Vec<serde_json::Value> = lines
                .into_iter()
                .filter_map(|((job, host), l)| {
                    let step = l.step?;
                    Some(serde_json::json!([
                        l.rollout,
                        host,
                        step,
                        l.progress,
                        l.done_at,
                        l.detail,
                        l.changes,
                        l.installed_at,
                        job
                    ]))
                })
                .collect();
            let sql = format!(
                "UPDATE rollout_hosts SET step = {step}, progress = {progress}, \
                   done_at = COALESCE({done_at}, rollout_hosts.done_at), \
                   detail = COALESCE({detail}, rollout_hosts.detail), \
                   changes = COALESCE({changes}, rollout_hosts.changes), updated_at = $2, \
                   installed_at = COALESCE(rollout_hosts.installed_at, {installed_at}) \
                 FROM {rows} WHERE rollout_hosts.rollout = {rollout} \
                   AND rollout_hosts.host_id = {host} AND rollout_hosts.job_id = {job}",
                rows = self.json_rows(1),
                rollout = self.json_col(0, false),
                host = self.json_col(1, false),
                step = self.json_col(2, false),
                progress = self.json_col(3, false),
                done_at = self.json_col(4, true),
                detail = self.json_col(5, false),
                changes = self.json_col(6, false),
                installed_at = self.json_col(7, true),
                // A line given another job since it was read (PostgreSQL
                // lets the executor in between) is left to that job.
                job = self.json_col(8, false),
            );
            sqlx::query(&sql)
                .bind(json(serde_json::Value::Array(moved))?)
                .bind(now.as_second())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn undelivered_jobs(&self) -> Result<Vec<RolloutHostRecord>> {
        let sql = format!(
            "SELECT {HOST_COLUMNS} FROM {HOST_TABLES} \
             WHERE h.progress IN ('assigned', 'rolling_back') AND h.step IS NULL ORDER BY h.host_id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(host_from_row).collect()
    }

    async fn job_events(&self, rollout: &str, host_id: Option<&str>) -> Result<Vec<JobEvent>> {
        let rows = sqlx::query(
            "SELECT job_id, host_id, step, at, received_at, detail FROM job_events \
             WHERE rollout = $1 AND ($2 IS NULL OR host_id = $2) ORDER BY seq",
        )
        .bind(rollout)
        .bind(host_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobEvent {
                    job_id: r.try_get(0)?,
                    host_id: r.try_get(1)?,
                    step: r.try_get(2)?,
                    at: ts(r.try_get(3)?)?,
                    received_at: ts(r.try_get(4)?)?,
                    detail: r.try_get(5)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::progress_after;

    #[test]
    fn steps_move_progress_once_and_by_the_job_kind() {
        assert_eq!(
            progress_after("install", "assigned", "received"),
            Some("in_progress")
        );
        assert_eq!(progress_after("install", "in_progress", "installing"), None);
        assert_eq!(
            progress_after("install", "in_progress", "succeeded"),
            Some("succeeded")
        );
        assert_eq!(
            progress_after("install", "assigned", "refused"),
            Some("failed")
        );
        assert_eq!(
            progress_after("rollback", "rolling_back", "succeeded"),
            Some("rolled_back")
        );
        assert_eq!(
            progress_after("rollback", "rolling_back", "failed"),
            Some("rollback_failed")
        );
        // A final state stays final: a late duplicate changes nothing.
        assert_eq!(progress_after("install", "succeeded", "failed"), None);
    }
}
