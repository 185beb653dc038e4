//! Inventory deltas on SQLite, stored together. Each waits for the
//! writer's turn; the one that gets it stores every delta waiting by then
//! in one transaction, in two hand-offs to sqlx's worker thread (one query
//! begins and reads every host's stored rows, one writes them all and
//! commits), and hands each its answer. A delta that finds its answer
//! waiting when its own turn comes goes at once.
//!
//! A delta that needs more than the shared path (its host is settled
//! again, its updates or neighbours changed, its host has another delta in
//! the group, or the group failed to write) gets no answer here and is
//! stored on its own in a transaction, as on PostgreSQL.

use std::collections::HashSet;
use std::sync::Mutex;

use jiff::Timestamp;
use protocol::{InventoryDelta, Package};
use tokio::sync::oneshot;

use crate::batch::{bind, Batch};
use crate::sql::{
    delta_base_args, head_digest, package_rows, parse_delta_base, DeltaInput, OpenTransaction,
    Store,
};
use crate::{DeltaStored, Result};

/// What a delta waiting in a group is told: stored, refused, or to go on
/// its own (none).
type Answer = Result<Option<DeltaStored>>;

/// A delta waiting for the writer's turn.
struct Job {
    host_id: String,
    delta: InventoryDelta,
    now: Timestamp,
    answer: oneshot::Sender<Answer>,
}

/// Deltas waiting for the writer's turn.
#[derive(Default)]
pub(crate) struct Waiting {
    jobs: Mutex<Vec<Job>>,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.jobs.lock().map(|j| j.len()).unwrap_or(0);
        f.debug_struct("Waiting").field("jobs", &waiting).finish()
    }
}

/// At most this many deltas are stored in one transaction.
const GROUP: usize = 64;

/// A waiting delta's answer, if it has one. A group that took it and was
/// stopped before answering sends it on its own (none).
fn answered(told: &mut oneshot::Receiver<Answer>) -> Option<Answer> {
    match told.try_recv() {
        Ok(answer) => Some(answer),
        Err(oneshot::error::TryRecvError::Closed) => Some(Ok(None)),
        Err(oneshot::error::TryRecvError::Empty) => None,
    }
}

impl Store {
    /// Stores a delta with the others waiting (SQLite); none when it is to
    /// be stored on its own.
    pub(crate) async fn delta_in_group(
        &self,
        host_id: &str,
        delta: &InventoryDelta,
        now: Timestamp,
    ) -> Result<Option<DeltaStored>> {
        let (answer, told) = oneshot::channel();
        match self.deltas.jobs.lock() {
            Ok(mut jobs) => jobs.push(Job {
                host_id: host_id.to_owned(),
                delta: delta.clone(),
                now,
                answer,
            }),
            Err(_) => return Ok(None),
        }
        self.wait_in_group(told).await
    }

    /// Waits for a waiting delta's answer: at each turn of the writer's
    /// that it gets, the answer is there (a group stored it), or it stores
    /// the group of those waiting then, itself among the first 64 or not.
    async fn wait_in_group(&self, mut told: oneshot::Receiver<Answer>) -> Answer {
        loop {
            let turn = self.write_turn().await;
            if let Some(answer) = answered(&mut told) {
                return answer;
            }
            let jobs: Vec<Job> = match self.deltas.jobs.lock() {
                Ok(mut jobs) => {
                    let n = jobs.len().min(GROUP);
                    jobs.drain(..n).collect()
                }
                Err(_) => return Ok(None),
            };
            self.store_group(jobs).await;
            drop(turn);
            if let Some(answer) = answered(&mut told) {
                return answer;
            }
        }
    }

    /// Stores `jobs` in one transaction and answers each.
    async fn store_group(&self, jobs: Vec<Job>) {
        // A host's second delta in a group would be read before its first
        // is written: it goes alone, after.
        let mut hosts = HashSet::new();
        let mut group = Vec::with_capacity(jobs.len());
        for job in jobs {
            if hosts.insert(job.host_id.clone()) {
                group.push(job);
            } else {
                job.answer.send(Ok(None)).ok();
            }
        }
        if group.is_empty() {
            return;
        }
        let answers = self.store_jobs(&group).await;
        for (job, answer) in group.into_iter().zip(answers) {
            job.answer.send(answer).ok();
        }
    }

    /// The answers for `jobs`, in order; every one none if the group could
    /// not be read or written (nothing was stored).
    async fn store_jobs(&self, jobs: &[Job]) -> Vec<Answer> {
        let alone = || jobs.iter().map(|_| Ok(None)).collect();
        // Each job checked and keyed before anything is read.
        let mut checked = Vec::with_capacity(jobs.len());
        for job in jobs {
            let rows = package_rows(&job.delta.packages_changed);
            let touched: Vec<protocol::PackageKey> = job
                .delta
                .packages_removed
                .iter()
                .cloned()
                .chain(job.delta.packages_changed.iter().map(Package::key))
                .collect();
            checked.push((rows, touched, head_digest(&job.delta.head())));
        }
        let Ok(conn) = self.pool.acquire().await else {
            return alone();
        };
        let mut tx = OpenTransaction { conn, open: true };

        // One query: begin, and one row per delta.
        let one = self.delta_base_sql(true);
        let mut sql = String::from("BEGIN IMMEDIATE;\n");
        let mut args = Vec::new();
        for (job, (_, touched, _)) in jobs.iter().zip(&checked) {
            match delta_base_args(&job.host_id, touched) {
                Ok(a) => {
                    sql.push_str(&crate::batch::renumber(&one, args.len()));
                    sql.push_str(";\n");
                    args.extend(a);
                }
                Err(_) => return alone(),
            }
        }
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = bind(query, arg);
        }
        let rows = match query.fetch_all(&mut *tx.conn).await {
            Ok(rows) if rows.len() == jobs.len() => rows,
            _ => {
                tx.rollback().await.ok();
                return alone();
            }
        };

        // Each delta planned against what is stored; one batch for all.
        let mut answers: Vec<Answer> = Vec::with_capacity(jobs.len());
        let mut writes = Batch::default();
        let mut stored_ones = Vec::new();
        for (i, (job, (rows_checked, touched, head))) in jobs.iter().zip(&checked).enumerate() {
            let rows_checked = match rows_checked {
                Ok(r) => r,
                Err(e) => {
                    answers.push(Err(crate::Error::Invalid(e.to_string())));
                    continue;
                }
            };
            let input = DeltaInput {
                host_id: &job.host_id,
                delta: &job.delta,
                rows: rows_checked,
                touched,
                head,
                now: job.now,
            };
            let planned =
                parse_delta_base(&rows[i], &job.host_id, touched).and_then(|(stored, before)| {
                    Ok((self.plan_delta(&input, &stored, before)?, stored))
                });
            match planned {
                Err(e) => answers.push(Err(e)),
                Ok((plan, _)) if plan.rebase || plan.children => answers.push(Ok(None)),
                Ok((mut plan, stored)) => {
                    let written = input.written(&plan, stored.package_set);
                    if let Err(e) =
                        Store::push_head(&mut plan.batch, &job.host_id, &written, job.now)
                    {
                        answers.push(Err(e));
                        continue;
                    }
                    writes.append(std::mem::take(&mut plan.batch));
                    stored_ones.push(answers.len());
                    answers.push(Ok(Some(DeltaStored {
                        replaced: plan.replaced,
                        os_changed: stored.os_changed(&job.delta.os),
                    })));
                }
            }
        }
        writes.push("COMMIT", Vec::new());
        match writes.run(self, &mut tx.conn).await {
            Ok(()) => tx.open = false,
            Err(_) => {
                tx.rollback().await.ok();
                for i in stored_ones {
                    answers[i] = Ok(None);
                }
            }
        }
        answers
    }
}
