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
use protocol::InventoryDelta;
use tokio::sync::oneshot;

use crate::batch::{bind, Batch};
use crate::sql::{delta_base_args, parse_delta_base, DeltaParts, OpenTransaction, Store};
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

    /// The answers for `jobs`, in order; none for every delta the group
    /// was to store if it could not be read or written (nothing was).
    async fn store_jobs(&self, jobs: &[Job]) -> Vec<Answer> {
        // Each delta checked and keyed before anything is read; one that
        // fails is answered so and left out.
        let mut answers: Vec<Option<Answer>> = Vec::with_capacity(jobs.len());
        let mut parts = Vec::with_capacity(jobs.len());
        for job in jobs {
            match DeltaParts::of(&job.delta) {
                Ok(p) => {
                    parts.push((job, p));
                    answers.push(None);
                }
                Err(e) => answers.push(Some(Err(e))),
            }
        }
        let alone = |answers: Vec<Option<Answer>>| -> Vec<Answer> {
            answers.into_iter().map(|a| a.unwrap_or(Ok(None))).collect()
        };
        if parts.is_empty() {
            return alone(answers);
        }
        let Ok(conn) = self.pool.acquire().await else {
            return alone(answers);
        };
        let mut tx = OpenTransaction { conn, open: true };

        // One query: begin, and one row per delta.
        let one = self.delta_base_sql(true);
        let mut sql = String::from("BEGIN IMMEDIATE;\n");
        let mut args = Vec::new();
        for (job, p) in &parts {
            match delta_base_args(&job.host_id, &p.touched) {
                Ok(a) => {
                    sql.push_str(&crate::batch::renumber(&one, args.len()));
                    sql.push_str(";\n");
                    args.extend(a);
                }
                Err(_) => return alone(answers),
            }
        }
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = bind(query, arg);
        }
        let rows = match query.fetch_all(&mut *tx.conn).await {
            Ok(rows) if rows.len() == parts.len() => rows,
            _ => {
                tx.rollback().await.ok();
                return alone(answers);
            }
        };

        // Each delta planned against what is stored; one batch for all.
        let mut writes = Batch::default();
        let mut planned_answers = Vec::with_capacity(parts.len());
        for ((job, p), row) in parts.iter().zip(&rows) {
            let input = p.input(&job.host_id, &job.delta, job.now);
            let planned =
                parse_delta_base(row, &job.host_id, &p.touched).and_then(|(stored, before)| {
                    Ok((self.plan_delta(&input, &stored, before)?, stored))
                });
            let answer = match planned {
                Err(e) => Err(e),
                Ok((plan, _)) if plan.rebase || plan.children => Ok(None),
                Ok((mut plan, stored)) => {
                    let written = input.written(&plan, stored.package_set);
                    Store::push_head(&mut plan.batch, &job.host_id, &written, job.now).map(|()| {
                        writes.append(std::mem::take(&mut plan.batch));
                        Some(DeltaStored {
                            replaced: plan.replaced,
                            os_changed: stored.os_changed(&job.delta.os),
                        })
                    })
                }
            };
            planned_answers.push(answer);
        }
        writes.push("COMMIT", Vec::new());
        if writes.run(self, &mut tx.conn).await.is_ok() {
            tx.open = false;
        } else {
            tx.rollback().await.ok();
            for answer in &mut planned_answers {
                if matches!(answer, Ok(Some(_))) {
                    *answer = Ok(None);
                }
            }
        }
        // The planned answers fill the places left open, in order.
        let mut planned_answers = planned_answers.into_iter();
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| planned_answers.next().unwrap_or(Ok(None))))
            .collect()
    }
}
