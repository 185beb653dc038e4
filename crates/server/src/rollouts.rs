//! Rollouts: created from the updates the fleet's own package managers
//! offer, with the exact versions frozen at creation; carried out by an
//! executor that asks the planner (`patchwell_core::rollout`) what to do
//! and records it; jobs signed with the server's key and handed to each host
//! at its next check-in; the steps agents report stored in batches.
//!
//! A key design decision made here is that the executor is "plan, then
//! record": every pass reads the rollout, makes a plan with the rollout's
//! generation, and writes what it decided (ring starts, a halt, the jobs it
//! hands out) naming that generation. The store refuses a decision for a
//! generation that has moved on, so a plan made just before a person's halt
//! or rollback cannot hand out jobs after it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use jiff::{SignedDuration, Timestamp};
use patchwell_core::classify::Class;
use patchwell_core::people::{self, Access};
use patchwell_core::policy::WindowState;
use patchwell_core::rollout::{self, Budget, Progress, Ring, Size};
use protocol::job::{
    ConffilePolicy, Job, JobKind, JobPackage, RebootDeferral, RebootPolicy, SignedJob, Span,
    StepsRequest, JOB_SCHEMA,
};
use protocol::Manager;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::{
    Assignment, HostFilter, HostRecord, HostStore, InventoryStore, NewRollout, NewRolloutHost,
    PlanStore, RolloutHostRecord, RolloutRecord, RolloutStore, RolloutUpdate, StepOutcome,
    StepRecord, Why,
};
use tokio::sync::{mpsc, oneshot};

use crate::auth::{Approver, Host, Operator, Reader};
use crate::catalog::scheme_of;
use crate::deferrals;
use crate::error::ApiError;
use crate::handlers::{check_name, now, parse_query, selected, ApiResult, JsonBody};
use crate::notify::{self, Notice};
use crate::plan_api::Planning;
use crate::plan_docs::{Doc, PolicyDoc};
use crate::AppState;

/// One ring as a rollout's spec writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RingSpec {
    /// Its name.
    pub(crate) name: String,
    /// `5%`, `20` (hosts) or `rest`.
    pub(crate) size: String,
    /// Business days after the previous ring started.
    #[serde(default)]
    pub(crate) wait_business_days: i64,
    /// Whether a person approves its start.
    #[serde(default)]
    pub(crate) manual_approval: bool,
    /// Share of its hosts that must succeed before the next starts.
    #[serde(default = "default_gate")]
    pub(crate) gate_success_percent: u32,
    /// And at least this many.
    #[serde(default = "one")]
    pub(crate) gate_min_hosts: u32,
    /// Failures over this share halt the rollout.
    #[serde(default = "default_halt")]
    pub(crate) halt_failure_percent: u32,
    /// Whether the gate also needs no failed health check (default yes).
    #[serde(default = "yes")]
    pub(crate) gate_healthy: bool,
}

fn yes() -> bool {
    true
}

fn default_gate() -> u32 {
    95
}
fn one() -> u32 {
    1
}
fn default_halt() -> u32 {
    10
}

impl RingSpec {
    fn of(ring: &Ring) -> RingSpec {
        RingSpec {
            name: ring.name.clone(),
            size: match ring.size {
                Size::Percent(p) => format!("{p}%"),
                Size::Hosts(n) => n.to_string(),
                Size::Rest => "rest".into(),
            },
            wait_business_days: ring.wait_business_days,
            manual_approval: ring.manual_approval,
            gate_success_percent: ring.gate_success_percent,
            gate_min_hosts: ring.gate_min_hosts,
            halt_failure_percent: ring.halt_failure_percent,
            gate_healthy: ring.gate_healthy,
        }
    }

    fn to_ring(&self) -> Result<Ring, String> {
        let size =
            match self.size.trim() {
                "rest" => Size::Rest,
                s => match s.strip_suffix('%') {
                    Some(p) => Size::Percent(p.trim().parse().map_err(|_| {
                        format!("ring {}: size {s:?} is not a percentage", self.name)
                    })?),
                    None => Size::Hosts(s.parse().map_err(|_| {
                        format!(
                        "ring {}: size {s:?}: write a percentage (5%), a number of hosts or rest",
                        self.name
                    )
                    })?),
                },
            };
        Ok(Ring {
            name: self.name.clone(),
            size,
            wait_business_days: self.wait_business_days,
            manual_approval: self.manual_approval,
            gate_success_percent: self.gate_success_percent,
            gate_min_hosts: self.gate_min_hosts,
            halt_failure_percent: self.halt_failure_percent,
            gate_healthy: self.gate_healthy,
        })
    }
}

fn parse_budget(text: &str) -> Result<Budget, String> {
    let t = text.trim();
    if t == "unlimited" {
        return Ok(Budget::Unlimited);
    }
    match t.strip_suffix('%') {
        Some(p) => p
            .trim()
            .parse()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .map(Budget::Percent)
            .ok_or_else(|| format!("budget {t:?}: a percentage from 1% to 100%")),
        None => t
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .map(Budget::Hosts)
            .ok_or_else(|| {
                format!("budget {t:?}: write unlimited, a number of hosts or a percentage")
            }),
    }
}

/// A package version frozen at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Frozen {
    pub(crate) manager: Manager,
    pub(crate) name: String,
    pub(crate) version: String,
    /// Its source package and the advisories it fixes, as they were when
    /// it was frozen: what a decision by source or by advisory reaches.
    #[serde(flatten)]
    pub(crate) reach: crate::approvals::Reach,
}

/// What a rollout installs and how: written once, at creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub(crate) reason: String,
    pub(crate) hosts: Option<String>,
    pub(crate) updates: String,
    pub(crate) packages: Vec<Frozen>,
    pub(crate) rings: Vec<RingSpec>,
    pub(crate) budget: String,
    pub(crate) reboot: RebootPolicy,
    pub(crate) conffiles: ConffilePolicy,
    pub(crate) pre_hook: Option<String>,
    pub(crate) post_hook: Option<String>,
    pub(crate) health_check: Option<String>,
    pub(crate) policy: Option<String>,
    pub(crate) expires_at: Timestamp,
    pub(crate) deadline: Option<Timestamp>,
    pub(crate) seed: u64,
    /// Budgets of single groups, by group.
    #[serde(default)]
    pub(crate) group_budgets: BTreeMap<String, String>,
    /// How users may put a reboot off.
    #[serde(default)]
    pub(crate) reboot_deferral: RebootDeferralSpec,
    /// Its first ring starts no earlier (`None`: at once).
    #[serde(default)]
    pub(crate) starts_at: Option<Timestamp>,
}

/// How logged-in users may put a reboot off, as a rollout gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RebootDeferralSpec {
    /// How many times (0: they are told, never asked).
    #[serde(default = "three")]
    pub(crate) times: u32,
    /// By how many minutes each time.
    #[serde(default = "sixty")]
    pub(crate) minutes: u32,
    /// Hours after the job is issued past which no deferral reaches
    /// (default: the policy's maximum deferral, else 24).
    #[serde(default)]
    pub(crate) deadline_hours: Option<u32>,
}

impl Default for RebootDeferralSpec {
    fn default() -> Self {
        RebootDeferralSpec {
            times: three(),
            minutes: sixty(),
            deadline_hours: None,
        }
    }
}

fn three() -> u32 {
    3
}
fn sixty() -> u32 {
    60
}

/// A note on a rollout's review.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Note {
    by: String,
    at: Timestamp,
    text: String,
}

/// What the executor and people recorded of a rollout.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StateDoc {
    #[serde(default)]
    ring_started: Vec<Option<Timestamp>>,
    #[serde(default)]
    ring_approved: Vec<bool>,
    /// A person's halt (or a rollback's), with the reason.
    #[serde(default)]
    halted: Option<String>,
    /// The planner's halt when failures passed a threshold, once recorded.
    #[serde(default)]
    failure_halt: Option<String>,
    #[serde(default)]
    notes: Vec<Note>,
    /// What of it needs a person's release, and their decision (`None`:
    /// nothing did, or it was stored before releases were asked for).
    #[serde(default)]
    release: Option<ReleaseDoc>,
    /// Success gates a person lowered since the rollout was created, by
    /// ring name (percent of its hosts); the spec keeps what was frozen.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    gates: BTreeMap<String, u32>,
}

/// A rollout waiting for an approver or administrator to release it.
pub(crate) const AWAITING_RELEASE: &str = "awaiting_release";
/// A rollout an approver or administrator refused to release: nothing of
/// it runs, ever.
pub(crate) const REFUSED: &str = "refused";

/// What a rollout would run as root that no approval vouches for: its
/// scripts, and the frozen versions no approval covered when it was
/// created. Such a rollout runs only once an approver or an administrator
/// releases it; an operator may create it, never release it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReleaseDoc {
    /// The frozen versions (`name=version`) no approval covered.
    #[serde(default)]
    uncovered: Vec<String>,
    /// Each script's SHA-256 (hex), by hook: exactly what a release lets
    /// run (the spec keeps the text).
    #[serde(default)]
    scripts: BTreeMap<String, String>,
    /// The decision, once a person made it.
    #[serde(default)]
    decision: Option<ReleaseDecision>,
}

/// A release or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReleaseVerdict {
    /// It may run.
    Released,
    /// It never runs.
    Refused,
}

impl ReleaseVerdict {
    fn as_str(self) -> &'static str {
        match self {
            ReleaseVerdict::Released => "released",
            ReleaseVerdict::Refused => "refused",
        }
    }
}

/// Who released or refused a rollout, when and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReleaseDecision {
    verdict: ReleaseVerdict,
    by: String,
    at: Timestamp,
    #[serde(default)]
    reason: Option<String>,
}

/// The scripts a rollout's jobs run as root, by hook, in the order the
/// agent runs them.
fn scripts(spec: &Spec) -> Vec<(&'static str, &str)> {
    [
        ("pre_hook", &spec.pre_hook),
        ("post_hook", &spec.post_hook),
        ("health_check", &spec.health_check),
    ]
    .into_iter()
    .filter_map(|(hook, text)| text.as_deref().map(|t| (hook, t)))
    .collect()
}

fn sha256_hex(text: &str) -> String {
    crate::secrets::hex(&crate::secrets::hash(text))
}

impl ReleaseDoc {
    /// What of a new rollout needs a release, given the decisions on
    /// updates; `None` when nothing does (no script, and every version
    /// approved for every ring and group).
    fn of(spec: &Spec, decisions: &crate::approvals::Decisions) -> Option<ReleaseDoc> {
        let mut uncovered: Vec<String> = spec
            .packages
            .iter()
            .filter(|f| {
                !decisions
                    .decide(&f.name, &f.version, &f.reach)
                    .is_some_and(|d| d.approves_everywhere())
            })
            .map(|f| format!("{}={}", f.name, f.version))
            .collect();
        uncovered.sort();
        uncovered.dedup();
        let scripts: BTreeMap<String, String> = scripts(spec)
            .into_iter()
            .map(|(hook, text)| (hook.to_owned(), sha256_hex(text)))
            .collect();
        (!uncovered.is_empty() || !scripts.is_empty()).then_some(ReleaseDoc {
            uncovered,
            scripts,
            decision: None,
        })
    }

    /// What needs the release, as people read it.
    fn what(&self) -> String {
        let mut parts = Vec::new();
        if !self.scripts.is_empty() {
            let hooks: Vec<&str> = self.scripts.keys().map(String::as_str).collect();
            parts.push(format!("runs scripts as root ({})", hooks.join(", ")));
        }
        if !self.uncovered.is_empty() {
            parts.push(format!(
                "installs versions no approval for every ring and group covers ({})",
                self.uncovered.join(", ")
            ));
        }
        format!("it {}", parts.join(" and "))
    }

    /// What a decision on it lets run, for the audit log: each script by
    /// its hash, and the versions.
    fn audited(&self) -> String {
        let mut parts = Vec::new();
        if !self.scripts.is_empty() {
            let hashes: Vec<String> = self
                .scripts
                .iter()
                .map(|(hook, sha)| format!("{hook} sha256:{sha}"))
                .collect();
            parts.push(format!("scripts {}", hashes.join(", ")));
        }
        if !self.uncovered.is_empty() {
            parts.push(format!(
                "versions no approval covers {}",
                self.uncovered.join(", ")
            ));
        }
        parts.join("; ")
    }

    /// Why no ring may start (`None`: released).
    fn holds(&self) -> Option<String> {
        match &self.decision {
            None => Some(format!(
                "an approver or administrator must release it, since {}",
                self.what()
            )),
            Some(d) if d.verdict == ReleaseVerdict::Refused => Some(format!(
                "refused by {} at {}{}",
                d.by,
                d.at,
                d.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
            Some(_) => None,
        }
    }
}

/// `POST /api/v1/rollouts`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRollout {
    name: String,
    reason: String,
    /// Which hosts, as a host query (default: every host).
    #[serde(default)]
    hosts: Option<String>,
    /// `security` (default) or `all`: the updates the hosts' own package
    /// managers offer.
    #[serde(default = "security")]
    updates: String,
    /// Only these packages (`name`, or `name=version` to freeze a version
    /// yourself).
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    rings: Option<Vec<RingSpec>>,
    #[serde(default)]
    budget: Option<String>,
    #[serde(default)]
    reboot: RebootPolicy,
    #[serde(default)]
    conffiles: ConffilePolicy,
    #[serde(default)]
    pre_hook: Option<String>,
    #[serde(default)]
    post_hook: Option<String>,
    #[serde(default)]
    health_check: Option<String>,
    /// The policy whose maintenance windows and schedule apply.
    #[serde(default)]
    policy: Option<String>,
    /// When the first ring starts: `now`, `scheduled` (the policy's next
    /// scheduled time; the default when the policy has a schedule) or a
    /// time (`2026-12-08T22:00:00Z`).
    #[serde(default)]
    start: Option<String>,
    /// Jobs not handed out within this many days are not handed out.
    #[serde(default = "fourteen")]
    expires_days: i64,
    /// The deadline the review measures against, in days.
    #[serde(default)]
    deadline_days: Option<i64>,
    /// Disruption budgets of single groups: group name to a number of
    /// hosts or a percentage of the group's hosts in the rollout.
    #[serde(default)]
    group_budgets: BTreeMap<String, String>,
    /// How users may put a reboot off.
    #[serde(default)]
    reboot_deferral: RebootDeferralSpec,
}

fn security() -> String {
    "security".into()
}
fn fourteen() -> i64 {
    14
}

/// A person's action on a rollout.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutAction {
    #[serde(default)]
    reason: Option<String>,
    /// The ring a person approves (its name).
    #[serde(default)]
    ring: Option<String>,
    /// A note for the review.
    #[serde(default)]
    note: Option<String>,
    /// A ring's new success gate, percent of its hosts.
    #[serde(default)]
    gate_success_percent: Option<u32>,
}

// ---------------------------------------------------------------------------
// The delivery board, the step writer and the executor's wake-ups.

/// What the deploy side keeps in memory.
#[derive(Default)]
pub struct Deploy {
    /// Signed jobs waiting for their host's check-in, by host.
    board: Mutex<HashMap<String, Vec<SignedJob>>>,
    /// Whether the board was loaded from the store.
    board_loaded: tokio::sync::OnceCell<()>,
    /// Rollouts to advance at the executor's next pass.
    dirty: Mutex<HashSet<String>>,
    /// Rollouts to advance once their scheduled start comes (those created
    /// since the server started; the executor's sweep finds the others).
    starts: Mutex<Vec<(Timestamp, String)>>,
    /// A planning object changed (an approval, a policy, an exemption):
    /// every running rollout is planned again at the next pass.
    rescan: std::sync::atomic::AtomicBool,
    /// The step writer's queue.
    steps: OnceLock<mpsc::Sender<StepBatch>>,
    /// The executor, once started.
    executor: OnceLock<()>,
    /// One pass at a time.
    passes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Deploy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deploy").finish_non_exhaustive()
    }
}

/// Steps to store, and where to say what became of them (or why the batch
/// they went in failed).
type StepBatch = (
    Vec<StepRecord>,
    oneshot::Sender<Result<Vec<StepOutcome>, String>>,
);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Deploy {
    fn post(&self, host: &str, job: SignedJob) {
        let mut board = lock(&self.board);
        let jobs = board.entry(host.to_owned()).or_default();
        jobs.retain(|j| j.id != job.id);
        jobs.push(job);
    }

    fn post_all(&self, jobs: Vec<(String, SignedJob)>) {
        for (host, job) in jobs {
            self.post(&host, job);
        }
    }

    /// Takes a host's job (every job, without an id) off the board, and
    /// gives back what it took.
    fn withdraw(&self, host: &str, job_id: Option<&str>) -> Vec<SignedJob> {
        let mut board = lock(&self.board);
        let mut taken = Vec::new();
        if let Some(jobs) = board.get_mut(host) {
            let (gone, kept): (Vec<SignedJob>, Vec<SignedJob>) = std::mem::take(jobs)
                .into_iter()
                .partition(|j| job_id.is_none_or(|id| j.id == id));
            *jobs = kept;
            taken = gone;
            if jobs.is_empty() {
                board.remove(host);
            }
        }
        taken
    }

    fn mark(&self, rollout: &str) {
        lock(&self.dirty).insert(rollout.to_owned());
    }
}

/// Says a planning object changed: the executor plans every running
/// rollout again at its next pass (within a second), since an approval, a
/// policy's window or an exemption may start or hold a host.
pub(crate) fn plans_changed(state: &AppState) {
    state
        .deploy
        .rescan
        .store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The jobs waiting for a host, for its heartbeat: none past its expiry,
/// which its agent would refuse (the executor takes those back).
pub(crate) async fn jobs_for(state: &AppState, host: &str) -> ApiResult<Vec<SignedJob>> {
    load_board(state).await?;
    let mut jobs = lock(&state.deploy.board)
        .get(host)
        .cloned()
        .unwrap_or_default();
    if !jobs.is_empty() {
        let at = now(state);
        jobs.retain(|j| not_after(&j.body).is_none_or(|end| at < end));
    }
    Ok(jobs)
}

/// A signed job's expiry, read from its JSON without parsing the rest (a
/// job carries its packages: kilobytes, on every heartbeat that hands it
/// out); `None` when it cannot be found.
fn not_after(body: &str) -> Option<Timestamp> {
    const KEY: &str = "\"not_after\":\"";
    let start = body.rfind(KEY)? + KEY.len();
    let end = start + body[start..].find('"')?;
    body[start..end].parse().ok()
}

async fn load_board(state: &AppState) -> ApiResult<()> {
    state
        .deploy
        .board_loaded
        .get_or_try_init(|| async {
            let waiting = state.store.undelivered_jobs().await?;
            for h in waiting {
                if let Some(job) = h.job.as_deref() {
                    match serde_json::from_str::<SignedJob>(job) {
                        Ok(job) => state.deploy.post(&h.host_id, job),
                        Err(e) => {
                            tracing::error!(host = %h.host_id, "a stored job is damaged: {e}")
                        }
                    }
                }
            }
            ensure_executor(state);
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(())
}

/// Loads the jobs waiting for delivery and starts the executor, so that
/// rollouts move on by time after a restart before any host checks in.
pub(crate) async fn start(state: &AppState) {
    if let Err(e) = load_board(state).await {
        tracing::error!("loading the jobs waiting for delivery: {}", e.message());
    }
}

/// Starts the step writer and the executor, once.
fn ensure_executor(state: &AppState) {
    state.deploy.executor.get_or_init(|| {
        tokio::spawn(executor(state.clone()));
    });
}

fn step_writer(state: &AppState) -> mpsc::Sender<StepBatch> {
    state
        .deploy
        .steps
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<StepBatch>(4096);
            tokio::spawn(write_steps(state.store.clone(), state.clock.clone(), rx));
            tx
        })
        .clone()
}

/// Stores reported steps: whatever queued while the last batch was being
/// written goes in the next transaction together.
async fn write_steps(store: store::Store, clock: crate::Clock, mut rx: mpsc::Receiver<StepBatch>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut records = batch[0].0.len();
        while records < 2048 {
            match rx.try_recv() {
                Ok(more) => {
                    records += more.0.len();
                    batch.push(more);
                }
                Err(_) => break,
            }
        }
        let all: Vec<StepRecord> = batch.iter().flat_map(|(s, _)| s.iter().cloned()).collect();
        let result = store.record_steps(&all, clock()).await;
        match result {
            Ok(outcomes) => {
                let mut rest = outcomes.into_iter();
                for (steps, reply) in batch {
                    let mine: Vec<StepOutcome> = rest.by_ref().take(steps.len()).collect();
                    let _ = reply.send(Ok(mine));
                }
            }
            Err(e) => {
                let text = e.to_string();
                for (_, reply) in batch {
                    let _ = reply.send(Err(text.clone()));
                }
            }
        }
    }
}

/// Advances rollouts whose hosts finished a job (each second), and every
/// running rollout (every 30 seconds: waits end and windows open by time).
async fn executor(state: AppState) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        ticks.tick().await;
        n += 1;
        let mut names: Vec<String> = lock(&state.deploy.dirty).drain().collect();
        {
            let at = now(&state);
            let mut starts = lock(&state.deploy.starts);
            starts.retain(|(start, name)| {
                let due = *start <= at;
                if due {
                    names.push(name.clone());
                }
                !due
            });
        }
        let changed = state
            .deploy
            .rescan
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        if changed || n.is_multiple_of(30) {
            match state.store.rollouts().await {
                Ok(all) => names.extend(
                    all.into_iter()
                        .filter(|r| {
                            matches!(r.status.as_str(), "running" | "halted" | "rolling_back")
                        })
                        .map(|r| r.name),
                ),
                Err(e) => tracing::warn!("listing rollouts: {e}"),
            }
        }
        names.sort();
        names.dedup();
        for name in names {
            if let Err(e) = advance(&state, &name).await {
                tracing::warn!(rollout = %name, "advancing: {}", e.message());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Creating.

fn criticality_rank(text: Option<&str>) -> u8 {
    match text.and_then(Class::parse) {
        Some(Class::Critical) => 3,
        Some(Class::High) => 2,
        Some(Class::Medium) => 1,
        _ => 0,
    }
}

fn is_older(manager: Manager, a: &str, b: &str) -> bool {
    versions::compare(scheme_of(manager), a, b).is_ok_and(|o| o.is_lt())
}

/// What the chain of communication is told when a rollout is created:
/// its reason and its schedule, ring by ring.
fn created_notice(name: &str, by: &str, spec: &Spec, view: &Value) -> Notice {
    let packages: Vec<String> = spec
        .packages
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    let mut text = format!(
        "Rollout {name}, created by {by}.\n\nWhy: {}\n\nUpdates ({}): {}\n\nSchedule{}:\n",
        spec.reason,
        packages.len(),
        packages.join(", "),
        spec.starts_at.map_or(String::new(), |t| format!(
            " (the first ring starts at {t})"
        ))
    );
    for r in view["rings"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "- ring {} ({} hosts, then a wait of {} business days): {}\n",
            r["name"].as_str().unwrap_or("?"),
            r["hosts"],
            r["wait_business_days"],
            r["reason"].as_str().unwrap_or("")
        ));
    }
    text.push_str(&format!(
        "\nJobs not handed out by {} are not handed out.\n",
        spec.expires_at
    ));
    if view["status"] == AWAITING_RELEASE {
        text.push_str(&format!(
            "\nNothing of it runs until an approver or administrator releases it: {}.\n",
            view["release"]["why"].as_str().unwrap_or_default()
        ));
    }
    Notice {
        event: "rollout-created",
        subject: format!("Rollout {name}: {}", spec.reason),
        text,
        data: json!({
            "rollout": name,
            "reason": spec.reason,
            "created_by": by,
            "packages": spec.packages,
            "rings": view["rings"],
            "expires_at": spec.expires_at,
            "starts_at": spec.starts_at,
            "status": view["status"],
        }),
        audiences: &notify::AUDIENCES,
    }
}

/// For a rollout of approved updates, why each ring may not start: the
/// frozen versions whose approval is scoped to other rings, or that a
/// person declined since (`None`: nothing held). A version with no decision
/// is not held: it was named by version when the rollout was created.
async fn unapproved(
    state: &AppState,
    spec: &Spec,
    rings: &[Ring],
) -> ApiResult<Vec<Option<String>>> {
    if spec.updates != "approved" {
        return Ok(Vec::new());
    }
    let decisions = crate::approvals::Decisions::load(state).await?;
    let decided: Vec<(String, Option<patchwell_core::approval::Decided<'_>>)> = spec
        .packages
        .iter()
        .map(|f| {
            (
                format!("{}={}", f.name, f.version),
                decisions.decide(&f.name, &f.version, &f.reach),
            )
        })
        .collect();
    Ok(rings
        .iter()
        .map(|ring| {
            let mut why: Vec<String> = Vec::new();
            for (title, d) in &decided {
                let Some(d) = d else { continue };
                // Through whose title, when not the update's own.
                let through = |a: &patchwell_core::approval::Approval| {
                    if a.title == *title {
                        String::new()
                    } else {
                        format!(" (through {})", a.title)
                    }
                };
                if let Some(declined) = d.decline() {
                    why.push(format!(
                        "{title} was declined by {}{}",
                        if declined.by.is_empty() {
                            "a person"
                        } else {
                            declined.by.as_str()
                        },
                        through(declined)
                    ));
                } else if !d.approves_ring(&ring.name) {
                    let mut approved_for: Vec<&str> = d
                        .approvals
                        .iter()
                        .flat_map(|a| match &a.verdict {
                            patchwell_core::approval::Verdict::Approve { rings, .. } => {
                                rings.iter().map(String::as_str).collect()
                            }
                            patchwell_core::approval::Verdict::Decline => Vec::new(),
                        })
                        .collect();
                    approved_for.sort_unstable();
                    approved_for.dedup();
                    why.push(format!(
                        "{title} is approved for ring {} only{}",
                        approved_for.join(", "),
                        through(d.decided_by())
                    ));
                }
            }
            match why.len() {
                0 => None,
                1 => why.pop(),
                n => Some(format!(
                    "{n} updates are not approved for ring {}: {}",
                    ring.name,
                    why.join("; ")
                )),
            }
        })
        .collect())
}

/// `POST /api/v1/rollouts`
pub(crate) async fn create(
    State(state): State<AppState>,
    Operator(caller): Operator,
    body: JsonBody<CreateRollout>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(req) = body?;
    check_name("rollout", &req.name)?;
    if req.reason.trim().is_empty() {
        return Err(ApiError::bad_request(
            "a rollout needs a reason: the chain of communication is told it",
        ));
    }
    let (security_only, approved_only) = match req.updates.as_str() {
        "security" => (true, false),
        "all" => (false, false),
        "approved" => (false, true),
        other => {
            return Err(ApiError::bad_request(format!(
                "updates {other:?}: use security, all or approved"
            )))
        }
    };
    // The decision in force on each offered update (its own, its source's,
    // or an advisory's it fixes): a declined update never enters a
    // rollout; with `approved`, only approved ones do.
    let decisions = crate::approvals::Decisions::load(&state).await?;
    let offers = crate::approvals::Offers::load(&state);
    let mut reaches: HashMap<(Manager, String, String), crate::approvals::Reach> = HashMap::new();
    let rings: Vec<RingSpec> = req
        .rings
        .clone()
        .unwrap_or_else(|| rollout::classic_rings().iter().map(RingSpec::of).collect());
    let parsed: Vec<Ring> = rings
        .iter()
        .map(RingSpec::to_ring)
        .collect::<Result<_, _>>()
        .map_err(ApiError::bad_request)?;
    rollout::check_rings(&parsed).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let budget_text = req.budget.clone().unwrap_or_else(|| "unlimited".into());
    parse_budget(&budget_text).map_err(ApiError::bad_request)?;
    for (group, budget) in &req.group_budgets {
        check_name("group", group)?;
        parse_budget(budget)
            .map_err(|e| ApiError::bad_request(format!("group_budgets {group}: {e}")))?;
    }
    let d = req.reboot_deferral;
    if d.times > 20
        || !(1..=24 * 60).contains(&d.minutes)
        || d.deadline_hours
            .is_some_and(|h| !(1..=24 * 30).contains(&h))
    {
        return Err(ApiError::bad_request(
            "reboot_deferral: times 0 to 20, minutes 1 to 1440, deadline_hours 1 to 720",
        ));
    }
    if !(1..=365).contains(&req.expires_days) {
        return Err(ApiError::bad_request("expires_days: 1 to 365"));
    }
    let at = now(&state);
    let policy = match &req.policy {
        Some(name) => Some(stored_policy(&state, name).await?),
        None => None,
    };
    let starts_at = start_of(req.start.as_deref(), policy.as_ref(), at)?;
    let stale_after = state.config.stale_after;
    let query = req.hosts.as_deref().map(parse_query).transpose()?;
    // Facts too: the pilot sample is stratified by hardware model.
    let hosts: Vec<HostRecord> = state
        .store
        .list_hosts(
            &HostFilter {
                facts: true,
                ..HostFilter::default()
            },
            at,
            stale_after,
        )
        .await?
        .into_iter()
        .filter(|h| {
            query
                .as_ref()
                .is_none_or(|q| selected(q, h, at, stale_after))
        })
        .collect();
    if hosts.is_empty() {
        return Err(ApiError::bad_request("no host matches the rollout's hosts"));
    }

    // Freeze: versions people named, else the newest each package's
    // managers offer among the selected hosts.
    let mut wanted: HashMap<String, Option<String>> = HashMap::new();
    for p in &req.packages {
        let (name, version) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_owned())),
            None => (p.trim(), None),
        };
        if name.is_empty() || version.as_deref() == Some("") {
            return Err(ApiError::bad_request(format!(
                "package {p:?}: write name or name=version"
            )));
        }
        wanted.insert(name.to_owned(), version);
    }
    // A version named is frozen for each manager that has the package
    // older on a selected host (dpkg when none has: nothing is then below
    // it, which is said below).
    let selected_ids: HashSet<&str> = hosts.iter().map(|h| h.id.as_str()).collect();
    let mut frozen: HashMap<(Manager, String), String> = HashMap::new();
    for (name, version) in &wanted {
        let Some(v) = version else { continue };
        for m in [Manager::Dpkg, Manager::Rpm, Manager::Apk] {
            // A version this manager cannot read is not one of its.
            let below = match state.store.hosts_with_package_below(m, name, v).await {
                Err(store::Error::Invalid(_)) => continue,
                other => other?,
            };
            if below
                .iter()
                .any(|h| selected_ids.contains(h.host_id.as_str()))
            {
                frozen.insert((m, name.clone()), v.clone());
            }
        }
        if !frozen.keys().any(|(_, n)| n == name) {
            frozen.insert((Manager::Dpkg, name.clone()), v.clone());
        }
    }
    if wanted.is_empty() || wanted.values().any(Option::is_none) {
        for h in &hosts {
            for u in state.store.updates(&h.id).await? {
                let key = (u.manager, u.name.clone(), u.candidate.clone());
                let reach = reaches.entry(key).or_insert_with(|| {
                    let suite = u.suite.as_deref().or(u.codename.as_deref());
                    offers.reach(
                        u.manager,
                        &u.name,
                        &u.candidate,
                        suite.filter(|_| u.security),
                    )
                });
                if security_only && !offers.is_security(u.security, reach) {
                    continue;
                }
                match decisions.decide(&u.name, &u.candidate, reach) {
                    Some(d) if !d.approved() => continue,
                    None if approved_only => continue,
                    _ => {}
                }
                match wanted.get(&u.name) {
                    Some(Some(_)) => continue,
                    None if !wanted.is_empty() => continue,
                    _ => {}
                }
                let key = (u.manager, u.name.clone());
                match frozen.get(&key) {
                    Some(v) if !is_older(u.manager, v, &u.candidate) => {}
                    _ => {
                        frozen.insert(key, u.candidate.clone());
                    }
                }
            }
        }
    }
    if frozen.is_empty() {
        return Err(ApiError::bad_request(format!(
            "the selected hosts' package managers offer no {} update{}",
            if security_only {
                "security"
            } else if approved_only {
                "approved"
            } else {
                ""
            },
            if wanted.is_empty() {
                String::new()
            } else {
                " of the packages named".into()
            }
        )));
    }
    // Each host's job: the frozen packages it has older, of one manager
    // (the first frozen one it has; a job runs one package manager).
    let mut jobs: HashMap<String, Vec<JobPackage>> = HashMap::new();
    let mut host_manager: HashMap<String, Manager> = HashMap::new();
    let mut packages: Vec<Frozen> = frozen
        .iter()
        .map(|((m, n), v)| Frozen {
            manager: *m,
            name: n.clone(),
            version: v.clone(),
            reach: reaches
                .get(&(*m, n.clone(), v.clone()))
                .cloned()
                .unwrap_or_else(|| offers.reach(*m, n, v, None)),
        })
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    for f in &packages {
        for h in state
            .store
            .hosts_with_package_below(f.manager, &f.name, &f.version)
            .await?
        {
            if !selected_ids.contains(h.host_id.as_str()) {
                continue;
            }
            if *host_manager.entry(h.host_id.clone()).or_insert(f.manager) == f.manager {
                jobs.entry(h.host_id).or_default().push(JobPackage {
                    name: h.package,
                    arch: h.arch,
                    version: f.version.clone(),
                });
            }
        }
    }
    if jobs.is_empty() {
        return Err(ApiError::bad_request(
            "no selected host has any of the frozen packages below its version",
        ));
    }
    let members: Vec<rollout::Member> = hosts
        .iter()
        .filter(|h| jobs.contains_key(&h.id))
        .map(|h| rollout::Member {
            id: h.id.clone(),
            os_release: format!(
                "{} {}",
                h.os_id.as_deref().unwrap_or("?"),
                h.os_version.as_deref().unwrap_or("?")
            ),
            // The hardware model where the firmware names one, else the
            // processor's, so that like machines share a stratum.
            model: h
                .facts
                .as_ref()
                .map(|f| f.model.clone().unwrap_or_else(|| f.cpu.model.clone()))
                .unwrap_or_default(),
            department: h.attributes.department.clone().unwrap_or_default(),
            criticality: criticality_rank(h.attributes.criticality.as_deref()),
            pinned_pilot: h.attributes.tags.iter().any(|t| t == "pilot"),
        })
        .collect();
    let seed = rollout::seed_for(&req.name);
    let ring_of = rollout::assign(&parsed, &members, seed);
    let mut new_hosts = Vec::with_capacity(members.len());
    for (m, ring) in members.iter().zip(&ring_of) {
        let job = HostPackages::Of {
            manager: host_manager.get(&m.id).copied().unwrap_or(Manager::Dpkg),
            packages: jobs.get(&m.id).cloned().unwrap_or_default(),
        };
        new_hosts.push(NewRolloutHost {
            host_id: m.id.clone(),
            ring: u32::try_from(*ring).unwrap_or(u32::MAX),
            packages: serde_json::to_string(&job).map_err(ApiError::internal)?,
        });
    }
    let spec = Spec {
        reason: req.reason.trim().to_owned(),
        hosts: req.hosts.clone(),
        updates: req.updates.clone(),
        packages,
        rings,
        budget: budget_text,
        reboot: req.reboot,
        conffiles: req.conffiles,
        pre_hook: req.pre_hook.clone(),
        post_hook: req.post_hook.clone(),
        health_check: req.health_check.clone(),
        policy: req.policy.clone(),
        // Counted from the first ring's start: a rollout scheduled for next
        // month's Patch Tuesday does not expire before it begins.
        expires_at: starts_at.unwrap_or(at) + SignedDuration::from_hours(24 * req.expires_days),
        deadline: req
            .deadline_days
            .map(|d| at + SignedDuration::from_hours(24 * d.clamp(0, 3650))),
        seed,
        group_budgets: req.group_budgets.clone(),
        reboot_deferral: req.reboot_deferral,
        starts_at,
    };
    // Scripts, and versions no approval covers, run only once an approver
    // or an administrator releases them: at once when the creator may (an
    // administrator, through a session or a token that may approve),
    // otherwise by a later decision.
    let mut release = ReleaseDoc::of(&spec, &decisions);
    let mut released_by = None;
    let mut status = "running";
    if let Some(r) = &mut release {
        if people::allowed(caller.role, caller.scopes.as_deref(), Access::Approve) {
            r.decision = Some(ReleaseDecision {
                verdict: ReleaseVerdict::Released,
                by: caller.username.clone(),
                at,
                reason: Some("released by its creator as it was created".into()),
            });
            released_by = Some(
                Why::new(&caller.username, "release-rollout")
                    .because(Some(format!("released as it was created: {}", r.audited()))),
            );
        } else {
            status = AWAITING_RELEASE;
        }
    }
    let doc = StateDoc {
        ring_started: vec![None; parsed.len()],
        ring_approved: vec![false; parsed.len()],
        release,
        ..StateDoc::default()
    };
    let rollout = NewRollout {
        name: req.name.clone(),
        spec: serde_json::to_string(&spec).map_err(ApiError::internal)?,
        state: serde_json::to_string(&doc).map_err(ApiError::internal)?,
        status: status.to_owned(),
        release: released_by,
        hosts: new_hosts,
    };
    let why = Why::new(&caller.username, "create-rollout").because(Some(spec.reason.clone()));
    state.store.create_rollout(&rollout, &why, at).await?;
    tracing::info!(rollout = %req.name, hosts = members.len(), %status, "Rollout created.");
    // The chain of communication is told the schedule and the reason
    // before the first job is handed out.
    if let Some(start) = starts_at {
        lock(&state.deploy.starts).push((start, req.name.clone()));
    }
    let planned = shown_head(&state, &req.name).await?;
    notify::send(
        &state,
        created_notice(&req.name, &caller.username, &spec, &planned),
    )
    .await;
    load_board(&state).await?;
    advance(&state, &req.name).await?;
    let view = shown(&state, &req.name).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// When a new rollout's first ring starts, from its `start` and its
/// policy's schedule; `None` at once.
fn start_of(
    start: Option<&str>,
    policy: Option<&patchwell_core::policy::Policy>,
    at: Timestamp,
) -> ApiResult<Option<Timestamp>> {
    let scheduled = || {
        let p = policy.ok_or_else(|| {
            ApiError::bad_request("start \"scheduled\": name the policy whose schedule applies")
        })?;
        let (text, _) = p.schedule.as_ref().ok_or_else(|| {
            ApiError::bad_request(format!(
                "start \"scheduled\": policy {} has no schedule",
                p.name
            ))
        })?;
        p.next_run(at).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "start \"scheduled\": policy {}'s schedule ({text}) has no time to come",
                p.name
            ))
        })
    };
    match start.map(str::trim) {
        Some("now") => Ok(None),
        Some("scheduled") => scheduled(),
        None if policy.is_some_and(|p| p.schedule.is_some()) => scheduled(),
        None | Some("") => Ok(None),
        Some(other) => match other.parse::<Timestamp>() {
            // A rollout is planned at most a year ahead: its expiry and its
            // jobs' are counted from its start.
            Ok(t) if t > at + SignedDuration::from_hours(24 * 366) => {
                Err(ApiError::bad_request(format!(
                    "start {other:?}: at most a year from now ({})",
                    at + SignedDuration::from_hours(24 * 366)
                )))
            }
            Ok(t) if t > at => Ok(Some(t)),
            Ok(t) => Err(ApiError::bad_request(format!(
                "start {other:?}: {t} has passed; use now"
            ))),
            Err(_) => Err(ApiError::bad_request(format!(
                "start {other:?}: use now, scheduled or a time such as 2026-12-08T22:00:00Z"
            ))),
        },
    }
}

async fn stored_policy(state: &AppState, name: &str) -> ApiResult<patchwell_core::policy::Policy> {
    let o = state
        .store
        .plan_object(PolicyDoc::KIND, name)
        .await?
        .ok_or_else(|| ApiError::bad_request(format!("policy {name} not found")))?;
    let doc: PolicyDoc = serde_json::from_str(&o.body)
        .map_err(|e| ApiError::internal(format!("stored policy {name} is damaged: {e}")))?;
    doc.to_policy(name).map_err(ApiError::internal)
}

// ---------------------------------------------------------------------------
// Planning and recording.

fn parse_spec(r: &RolloutRecord) -> ApiResult<(Spec, StateDoc)> {
    let spec: Spec = serde_json::from_str(&r.spec).map_err(|e| {
        ApiError::internal(format!("rollout {}: stored spec is damaged: {e}", r.name))
    })?;
    let doc: StateDoc = serde_json::from_str(&r.state).map_err(|e| {
        ApiError::internal(format!("rollout {}: stored state is damaged: {e}", r.name))
    })?;
    Ok((spec, doc))
}

fn progress_of(h: &RolloutHostRecord) -> Progress {
    let since = h.since.unwrap_or(h.updated_at);
    let done = h.done_at.unwrap_or(h.updated_at);
    match h.progress.as_str() {
        "assigned" if h.step.is_none() => Progress::Handed { since },
        "assigned" | "in_progress" | "rolling_back" => Progress::InProgress { since },
        "succeeded" => Progress::Succeeded { at: done },
        "failed" | "rollback_failed" => Progress::Failed {
            at: done,
            why: h.detail.clone().unwrap_or_else(|| "failed".into()),
            unhealthy: h
                .detail
                .as_deref()
                .is_some_and(|d| d.starts_with(protocol::job::HEALTH_CHECK)),
        },
        "rolled_back" => Progress::RolledBack { at: done },
        _ => Progress::NotStarted,
    }
}

struct Loaded {
    record: RolloutRecord,
    spec: Spec,
    doc: StateDoc,
    rings: Vec<Ring>,
    hosts: Vec<RolloutHostRecord>,
    names: HashMap<String, String>,
    plan: rollout::Plan,
    /// The rollout's policy, if it names one.
    policy: Option<patchwell_core::policy::Policy>,
    /// The openings of the policy's maintenance windows from now on, which
    /// jobs carry (empty: any time); worked out at the first job signed.
    windows: OnceLock<Vec<Span>>,
    /// Hours a reboot may be put off, from the rollout or its policy.
    reboot_deadline_hours: u32,
}

/// A rollout as stored: its record, spec and recorded state.
async fn stored_rollout(
    state: &AppState,
    name: &str,
) -> ApiResult<(RolloutRecord, Spec, StateDoc)> {
    let record = state
        .store
        .rollout(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("rollout {name} not found")))?;
    let (spec, doc) = parse_spec(&record)?;
    Ok((record, spec, doc))
}

async fn load_and_plan(state: &AppState, name: &str) -> ApiResult<Loaded> {
    let (record, spec, doc) = stored_rollout(state, name).await?;
    let mut rings: Vec<Ring> = spec
        .rings
        .iter()
        .map(RingSpec::to_ring)
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    for ring in &mut rings {
        if let Some(&p) = doc.gates.get(&ring.name) {
            ring.gate_success_percent = p;
            // A gate lowered to nothing lets the next ring start whatever
            // this one's result.
            if p == 0 {
                ring.gate_min_hosts = 0;
            }
        }
    }
    // Lines only: the packages are read when an exemption needs them.
    let hosts = state.store.rollout_lines(name).await?;
    let at = now(state);
    let stale_after = state.config.stale_after;
    let records: HashMap<String, HostRecord> = state
        .store
        .list_hosts(
            &HostFilter {
                include_revoked: true,
                ..HostFilter::default()
            },
            at,
            stale_after,
        )
        .await?
        .into_iter()
        .map(|h| (h.id.clone(), h))
        .collect();
    let planning = Planning::load(state).await?;
    let policy = match &spec.policy {
        Some(p) => Some(stored_policy(state, p).await?),
        None => None,
    };
    let window = policy
        .as_ref()
        .map_or(WindowState::Open { until: None }, |p| p.window_at(at));
    let reboot_deadline_hours = spec
        .reboot_deferral
        .deadline_hours
        .unwrap_or_else(|| match policy.as_ref().map(|p| p.reboot) {
            Some(patchwell_core::policy::Reboot::IfRequired { max_deferral }) => {
                u32::try_from(max_deferral.as_hours().max(1)).unwrap_or(24)
            }
            _ => 24,
        });
    let deferrals = deferrals::granted(state, name, at).await?;
    let group_budgets: Vec<rollout::GroupBudget> = spec
        .group_budgets
        .iter()
        .map(|(group, b)| {
            Ok(rollout::GroupBudget {
                group: group.clone(),
                budget: parse_budget(b).map_err(ApiError::internal)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    // A host's groups are worked out only when an exemption could use them.
    let in_force: Vec<&patchwell_core::exemption::Exemption> = planning
        .exemptions
        .iter()
        .filter(|e| e.standing(at) == patchwell_core::exemption::Standing::InForce)
        .collect();
    let host_packages = if in_force.is_empty() {
        HashMap::new()
    } else {
        state.store.rollout_packages(name, None).await?
    };
    let mut targets = Vec::with_capacity(hosts.len());
    let mut names = HashMap::new();
    for h in &hosts {
        let record = records.get(&h.host_id);
        let packages = host_packages
            .get(&h.host_id)
            .map(|p| HostPackages::read(p))
            .unwrap_or_default()
            .packages();
        let package_names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        let exempt = record.filter(|_| !in_force.is_empty()).and_then(|r| {
            let groups = planning.groups_of(state, r);
            let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
            in_force
                .iter()
                .find(|e| e.covers(&h.host_id, &groups, None, &package_names))
                .map(|e| format!("{} ({})", e.reason, e.name))
        });
        let revoked = record.is_some_and(|r| r.revoked_at.is_some());
        let groups: Vec<String> = match record {
            Some(r) if !group_budgets.is_empty() => planning
                .groups_of(state, r)
                .into_iter()
                .filter(|g| spec.group_budgets.contains_key(g))
                .collect(),
            _ => Vec::new(),
        };
        if let Some(r) = record {
            names.insert(h.host_id.clone(), r.hostname.clone());
        }
        targets.push(rollout::Target {
            id: h.host_id.clone(),
            ring: h.ring as usize,
            criticality: record
                .map_or(0, |r| criticality_rank(r.attributes.criticality.as_deref())),
            progress: progress_of(h),
            exempt: if revoked {
                Some("its enrollment was revoked".into())
            } else {
                exempt
            },
            last_seen: record.map_or(Timestamp::UNIX_EPOCH, |r| r.last_seen),
            window: window.clone(),
            deferred: deferrals.get(&h.host_id).cloned(),
            groups,
        });
    }
    let mut ring_started = doc.ring_started.clone();
    ring_started.resize(rings.len(), None);
    let mut ring_approved = doc.ring_approved.clone();
    ring_approved.resize(rings.len(), false);
    let budget = parse_budget(&spec.budget).map_err(ApiError::internal)?;
    let rollout_state = rollout::RolloutState {
        generation: record.generation,
        ring_started,
        ring_approved,
        // A halt by the failure threshold stays until a person redeploys or
        // rolls back, even if the counts it was measured on change (an
        // exemption lapsing adds hosts that have not failed).
        halted: doc.halted.clone().or_else(|| doc.failure_halt.clone()),
        expires: Some(spec.expires_at),
        starts: spec.starts_at,
        unreleased: doc.release.as_ref().and_then(ReleaseDoc::holds),
    };
    let plan = rollout::plan(&rollout::Input {
        rings: &rings,
        targets: &targets,
        state: &rollout_state,
        calendar: &planning.calendar,
        budget,
        group_budgets: &group_budgets,
        offline_after: SignedDuration::from_secs(
            i64::try_from(state.config.checkin_interval.as_secs()).unwrap_or(900) * 3,
        ),
        unapproved: &unapproved(state, &spec, &rings).await?,
        now: at,
    });
    Ok(Loaded {
        record,
        spec,
        doc,
        rings,
        hosts,
        names,
        plan,
        policy,
        windows: OnceLock::new(),
        reboot_deadline_hours,
    })
}

impl Loaded {
    /// The window openings jobs signed at `at` carry.
    fn windows(&self, at: Timestamp) -> &[Span] {
        self.windows.get_or_init(|| {
            self.policy
                .as_ref()
                .map(|p| {
                    p.windows_between(at, at + SignedDuration::from_hours(24 * JOB_WINDOW_DAYS))
                })
                .unwrap_or_default()
                .into_iter()
                .take(MAX_JOB_WINDOWS)
                .map(|(start, end)| Span { start, end })
                .collect()
        })
    }
}

/// Days of maintenance-window openings a job carries.
const JOB_WINDOW_DAYS: i64 = 60;
/// And at most this many openings.
const MAX_JOB_WINDOWS: usize = 200;

fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Install => "install",
        JobKind::Rollback => "rollback",
    }
}

/// `ROLLOUT.GENERATION.KIND.HOST`: the same job, the same id.
fn job_id(rollout: &str, generation: u64, kind: JobKind, host: &str) -> String {
    format!("{rollout}.{generation}.{}.{host}", kind_name(kind))
}

/// A job of a rollout, signed, and the assignment that records it.
fn make_job(
    state: &AppState,
    (rollout, generation, l): (&str, u64, &Loaded),
    host: &str,
    (kind, manager): (JobKind, Manager),
    packages: Vec<JobPackage>,
    at: Timestamp,
) -> ApiResult<(Assignment, SignedJob)> {
    let spec = &l.spec;
    let job = Job {
        schema: JOB_SCHEMA,
        id: job_id(rollout, generation, kind, host),
        host_id: host.to_owned(),
        rollout: rollout.to_owned(),
        generation,
        kind,
        manager,
        packages,
        conffiles: spec.conffiles,
        reboot: spec.reboot,
        reboot_deferral: (spec.reboot != RebootPolicy::Never).then(|| RebootDeferral {
            max_deferrals: spec.reboot_deferral.times,
            defer_minutes: spec.reboot_deferral.minutes,
            deadline: at + SignedDuration::from_hours(i64::from(l.reboot_deadline_hours)),
        }),
        windows: l.windows(at).to_vec(),
        pre_hook: spec.pre_hook.clone(),
        post_hook: spec.post_hook.clone(),
        health_check: spec.health_check.clone(),
        issued_at: at,
        not_after: match kind {
            JobKind::Install => spec.expires_at,
            JobKind::Rollback => at + SignedDuration::from_hours(24 * 14),
        },
    };
    let signed = state.job_key.sign(&job);
    let assignment = Assignment {
        host_id: host.to_owned(),
        job_id: job.id,
        job_kind: kind_name(kind).to_owned(),
        job: serde_json::to_string(&signed).map_err(ApiError::internal)?,
    };
    Ok((assignment, signed))
}

/// A rollout host's packages as its line keeps them: its job's packages
/// and the package manager that installs them (lines stored before this
/// kept the packages alone).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum HostPackages {
    Of {
        manager: Manager,
        packages: Vec<JobPackage>,
    },
    Bare(Vec<JobPackage>),
}

impl Default for HostPackages {
    fn default() -> Self {
        HostPackages::Bare(Vec::new())
    }
}

impl HostPackages {
    /// As stored; a damaged value reads as no package.
    fn read(text: &str) -> HostPackages {
        serde_json::from_str(text).unwrap_or_default()
    }

    fn packages(self) -> Vec<JobPackage> {
        match self {
            HostPackages::Of { packages, .. } | HostPackages::Bare(packages) => packages,
        }
    }
}

/// The package manager of a job: that of the frozen package one of its
/// packages is, by name and version (dpkg when none is, as before a rollout
/// froze its managers). A host's packages come from one manager, so one
/// match decides it.
fn frozen_manager<'a>(
    spec: &Spec,
    mut packages: impl Iterator<Item = (&'a String, &'a String)>,
) -> Manager {
    packages
        .find_map(|(name, version)| {
            spec.packages
                .iter()
                .find(|f| f.name == *name && f.version == *version)
                .map(|f| f.manager)
        })
        .unwrap_or(Manager::Dpkg)
}

/// Takes the jobs of the `reset` hosts' lines off the board, before the
/// change that resets them is written, so that no heartbeat hands one out
/// meanwhile; the caller posts them back if writing fails.
fn take_back(state: &AppState, l: &Loaded, reset: &[String]) -> Vec<(String, SignedJob)> {
    let mut withdrawn = Vec::new();
    for h in l.hosts.iter().filter(|h| reset.contains(&h.host_id)) {
        for job in state.deploy.withdraw(&h.host_id, h.job_id.as_deref()) {
            withdrawn.push((h.host_id.clone(), job));
        }
    }
    withdrawn
}

/// One executor pass over a rollout: plan, record ring starts and a halt,
/// hand out the jobs the plan starts.
pub(crate) async fn advance(state: &AppState, name: &str) -> ApiResult<()> {
    let _one = state.deploy.passes.lock().await;
    let l = load_and_plan(state, name).await?;
    let at = now(state);
    let status = l.record.status.as_str();
    let mut doc = l.doc.clone();
    let mut why: Option<Why> = None;
    let mut new_status = status.to_owned();
    let mut assignments = Vec::new();
    let mut signed = Vec::new();
    let mut reset = Vec::new();
    match status {
        "rolling_back" if !l.hosts.iter().any(|h| h.progress == "rolling_back") => {
            new_status = "rolled_back".into();
            why = Some(Why::new("executor", "rollback-finished"));
        }
        "running" | "halted" if at >= l.spec.expires_at && !undelivered(&l).is_empty() => {
            // Expired: the jobs no host fetched are taken back, and those
            // hosts' lines say the rollout expired before they started.
            reset = undelivered(&l);
            why = Some(Why::new("executor", "expire-jobs").because(Some(format!(
                "the rollout expired at {}; {} jobs no host fetched are withdrawn",
                l.spec.expires_at,
                reset.len()
            ))));
        }
        "running" | "halted" => {
            for (i, r) in l.plan.rings.iter().enumerate() {
                let starting = matches!(
                    r.state,
                    rollout::RingState::Running { started: None }
                        | rollout::RingState::Passed { started: None }
                );
                if starting && doc.ring_started.get(i).copied().flatten().is_none() {
                    if doc.ring_started.len() <= i {
                        doc.ring_started.resize(i + 1, None);
                    }
                    doc.ring_started[i] = Some(at);
                    why = Some(
                        Why::new("executor", "start-ring")
                            .because(Some(format!("ring {} started", r.name))),
                    );
                }
            }
            if let Some(halt) = &l.plan.halt {
                if doc.failure_halt.is_none() && doc.halted.is_none() {
                    let text = halt.describe();
                    doc.failure_halt = Some(text.clone());
                    why = Some(Why::new("executor", "halt").because(Some(text.clone())));
                    notify::send(
                        state,
                        Notice {
                            event: "rollout-halted",
                            subject: format!("Rollout {name} halted"),
                            text: format!(
                                "Rollout {name} halted by itself: {text}.\n\nNo new host starts \
                                 until someone resumes it; `patchwell rollouts show {name}` \
                                 lists every host's state."
                            ),
                            data: json!({"rollout": name, "reason": text}),
                            audiences: &["patch-team", "management"],
                        },
                    )
                    .await;
                }
                new_status = "halted".into();
            } else if l.plan.complete {
                new_status = "complete".into();
            } else {
                new_status = "running".into();
            }
            let starting: Vec<String> = l
                .plan
                .hosts
                .iter()
                .filter(|h| matches!(h.action, rollout::Action::Start { .. }))
                .map(|h| h.id.clone())
                .collect();
            let packages = if starting.is_empty() {
                HashMap::new()
            } else {
                state.store.rollout_packages(name, Some(&starting)).await?
            };
            for h in &l.plan.hosts {
                if let rollout::Action::Start { .. } = h.action {
                    let stored = packages
                        .get(h.id.as_str())
                        .map(|p| HostPackages::read(p))
                        .unwrap_or_default();
                    let issuer = (name, l.record.generation, &l);
                    let (manager, job) = match stored {
                        HostPackages::Of { manager, packages } => (manager, packages),
                        // Stored before lines kept their manager.
                        HostPackages::Bare(job) => (
                            frozen_manager(&l.spec, job.iter().map(|p| (&p.name, &p.version))),
                            job,
                        ),
                    };
                    let kind = (JobKind::Install, manager);
                    let (a, j) = make_job(state, issuer, &h.id, kind, job, at)?;
                    assignments.push(a);
                    signed.push((h.id.clone(), j));
                }
            }
        }
        _ => {}
    }
    let changed = new_status != status
        || !assignments.is_empty()
        || !reset.is_empty()
        || doc.ring_started != l.doc.ring_started
        || doc.failure_halt != l.doc.failure_halt;
    if changed {
        let jobs = assignments.len();
        let expired = reset.len();
        let withdrawn = take_back(state, &l, &reset);
        let update = RolloutUpdate {
            name: name.to_owned(),
            expected_generation: l.record.generation,
            generation: l.record.generation,
            state: serde_json::to_string(&doc).map_err(ApiError::internal)?,
            status: new_status,
            assignments,
            reset,
        };
        if let Err(e) = state.store.update_rollout(&update, why.as_ref(), at).await {
            state.deploy.post_all(withdrawn);
            return Err(e.into());
        }
        state.deploy.post_all(signed);
        if jobs > 0 {
            tracing::info!(rollout = %name, jobs, "Jobs handed out.");
        }
        if expired > 0 {
            tracing::info!(rollout = %name, jobs = expired, "Expired jobs withdrawn.");
            // The next pass plans the rollout without them.
            state.deploy.mark(name);
        }
    }
    Ok(())
}

/// The rollout as shown, planned now.
pub(crate) async fn shown(state: &AppState, name: &str) -> ApiResult<Value> {
    Ok(show_json(&load_and_plan(state, name).await?))
}

/// The rollout as shown, planned now, without its hosts: its status and
/// rings, which is what its live progress shows.
pub(crate) async fn shown_head(state: &AppState, name: &str) -> ApiResult<Value> {
    Ok(show_head_json(&load_and_plan(state, name).await?))
}

/// One host of a rollout as shown: where the plan puts it and how far it
/// got.
#[derive(Debug, Clone)]
pub(crate) struct ShownHost {
    pub(crate) host: String,
    pub(crate) hostname: Option<String>,
    pub(crate) ring: Option<String>,
    pub(crate) progress: Option<String>,
    pub(crate) step: Option<String>,
    /// What the plan says of it, and why.
    pub(crate) action: String,
    pub(crate) detail: Option<String>,
}

/// Every host of the rollout as shown, in the plan's order, with its line
/// (the changes its install made are in the line).
fn shown_hosts(l: &Loaded) -> Vec<(ShownHost, Option<&RolloutHostRecord>)> {
    let progress: HashMap<&str, &RolloutHostRecord> =
        l.hosts.iter().map(|h| (h.host_id.as_str(), h)).collect();
    l.plan
        .hosts
        .iter()
        .map(|h| {
            let p = progress.get(h.id.as_str()).copied();
            let shown = ShownHost {
                host: h.id.clone(),
                hostname: l.names.get(&h.id).cloned(),
                ring: l.rings.get(h.ring).map(|r| r.name.clone()),
                progress: p.map(|p| p.progress.clone()),
                step: p.and_then(|p| p.step.clone()),
                action: h.action.describe(),
                detail: p.and_then(|p| p.detail.clone()),
            };
            (shown, p)
        })
        .collect()
}

fn show_json(l: &Loaded) -> Value {
    let mut shown = show_head_json(l);
    let hosts: Vec<Value> = shown_hosts(l)
        .into_iter()
        .map(|(h, line)| {
            json!({
                "host": h.host,
                "hostname": h.hostname,
                "ring": h.ring,
                "progress": h.progress,
                "step": h.step,
                "action": h.action,
                "detail": h.detail,
                "changes": line.and_then(|p| p.changes.as_deref()).and_then(|c| serde_json::from_str::<Value>(c).ok()),
            })
        })
        .collect();
    shown["hosts"] = Value::Array(hosts);
    shown
}

/// The rollout as shown, but for its hosts.
fn show_head_json(l: &Loaded) -> Value {
    let halt = l.plan.halt.as_ref().map(rollout::Halt::describe);
    let rings: Vec<Value> = l
        .plan
        .rings
        .iter()
        .zip(&l.rings)
        .enumerate()
        .map(|(i, (r, spec))| {
            let c = r.counts;
            let (state, reason) = ring_shown(&l.record.status, halt.as_deref(), r);
            json!({
                "name": r.name,
                "state": state,
                "reason": reason,
                "gate": gate_shown(l, i),
                "gate_success_percent": spec.gate_success_percent,
                "hosts": c.hosts,
                "succeeded": c.succeeded,
                "failed": c.failed,
                "in_progress": c.in_progress,
                "rolled_back": c.rolled_back,
                "exempt": c.exempt,
                "deferred": c.deferred,
                "unhealthy": c.unhealthy,
                "wait_business_days": spec.wait_business_days,
                "manual_approval": spec.manual_approval,
            })
        })
        .collect();
    json!({
        "name": l.record.name,
        "status": l.record.status,
        "generation": l.record.generation,
        "reason": l.spec.reason,
        "created_at": l.record.created_at,
        "created_by": l.record.created_by,
        "packages": l.spec.packages,
        "expires_at": l.spec.expires_at,
        "starts_at": l.spec.starts_at,
        "halt": halt,
        // Who stopped it: a person (a halt or a rollback) or the failure
        // threshold, by itself.
        "halted_by": match (&l.doc.halted, &l.plan.halt) {
            (Some(_), _) => Some("person"),
            (None, Some(_)) => Some("failures"),
            _ => None,
        },
        "complete": l.plan.complete,
        "release": release_json(&l.spec, l.doc.release.as_ref()),
        "rings": rings,
    })
}

/// Where a ring stands as shown (its state's name and the reason people
/// read): the plan's, read against the rollout's status, so that a ring of
/// a halted or rolled-back rollout never reads as running.
fn ring_shown(status: &str, halt: Option<&str>, r: &rollout::RingPlan) -> (&'static str, String) {
    use rollout::RingState;
    let started = match r.state {
        RingState::Running { started } | RingState::Passed { started } => Some(started),
        RingState::Waiting(_) => None,
    };
    let since = |started: Option<Timestamp>| {
        started.map_or(String::new(), |t| {
            format!(" (started {})", rollout::human(&t))
        })
    };
    let why = halt.unwrap_or("no reason given");
    // A rollback's halt reads "rolled back: REASON".
    let back = why.strip_prefix("rolled back: ").unwrap_or(why);
    match (status, started) {
        ("rolling_back" | "rolled_back", None) => (
            "not_started",
            "never started: the rollout was rolled back".into(),
        ),
        ("rolling_back", Some(t)) => ("rolling_back", format!("rolling back{}: {back}", since(t))),
        ("rolled_back", Some(t)) => ("rolled_back", format!("rolled back{}: {back}", since(t))),
        ("halted", Some(t)) if matches!(r.state, RingState::Running { .. }) => {
            ("halted", format!("halted{}: {why}", since(t)))
        }
        (REFUSED, None) => (
            "not_started",
            "never starts: the rollout was refused".into(),
        ),
        _ => (
            match r.state {
                RingState::Waiting(_) => "waiting",
                RingState::Running { .. } => "running",
                RingState::Passed { .. } => "passed",
            },
            r.state.describe(),
        ),
    }
}

/// For a ring waiting for the previous ring's success gate: what the gate
/// lacks and what could still bring it (hosts installing, offline, outside
/// their window or queued), whether it can pass by itself, and the actions
/// that would move it. `None` for any other ring.
fn gate_shown(l: &Loaded, i: usize) -> Option<Value> {
    use rollout::{Action, RingState, RingWait};
    let r = l.plan.rings.get(i)?;
    let RingState::Waiting(RingWait::Gate {
        ring,
        succeeded,
        needed,
        unhealthy,
    }) = &r.state
    else {
        return None;
    };
    let prev = i.checked_sub(1)?;
    // Only a started ring's gate is worth explaining.
    if matches!(l.plan.rings[prev].state, RingState::Waiting(_)) {
        return None;
    }
    let (mut installing, mut offline, mut later, mut failed) = (0usize, 0usize, 0usize, 0usize);
    let mut offline_since: Option<Timestamp> = None;
    for h in l.plan.hosts.iter().filter(|h| h.ring == prev) {
        match &h.action {
            Action::Start {
                offline_since: Some(t),
            }
            | Action::Handed {
                offline_since: Some(t),
                ..
            } => {
                offline += 1;
                offline_since = Some(offline_since.map_or(*t, |o| o.min(*t)));
            }
            Action::Start { .. } | Action::Handed { .. } | Action::InProgress { .. } => {
                installing += 1
            }
            Action::OutsideWindow { .. } | Action::Queued { .. } => later += 1,
            Action::Failed { .. } | Action::RolledBack => failed += 1,
            _ => {}
        }
    }
    let lacking = needed.saturating_sub(*succeeded);
    let gate_healthy = l.rings.get(prev).is_some_and(|r| r.gate_healthy);
    let stuck =
        succeeded + installing + offline + later < *needed || (gate_healthy && *unhealthy > 0);
    let percent = l.rings.get(prev).map_or(0, |r| r.gate_success_percent);
    let mut actions = Vec::new();
    if installing > 0 {
        actions.push(format!(
            "wait: {installing} of its hosts are installing now"
        ));
    }
    if offline > 0 {
        actions.push(format!(
            "wait for the {offline} offline hosts: each picks its job up when it next checks in{}",
            offline_since.map_or(String::new(), |t| format!(
                " (the longest offline since {})",
                rollout::human(&t)
            ))
        ));
    }
    if later > 0 {
        actions.push(format!(
            "wait: {later} of its hosts start when their maintenance window opens or the \
             disruption budget frees"
        ));
    }
    if failed > 0 {
        actions.push(format!(
            "redeploy: the {failed} hosts that failed or were rolled back start again"
        ));
    }
    if percent > 0 {
        actions.push(format!(
            "lower the gate: now {percent}% of ring {ring}'s hosts must succeed"
        ));
    }
    actions.push(format!(
        "add hosts: a ring's hosts are fixed when its rollout is created, so a new rollout \
         whose ring {ring} takes more hosts has more successes to count"
    ));
    Some(json!({
        "ring": ring,
        "needed": needed,
        "succeeded": succeeded,
        "lacking": lacking,
        "installing": installing,
        "offline": offline,
        "offline_since": offline_since,
        "later": later,
        "failed": failed,
        "unhealthy": unhealthy,
        "percent": percent,
        "stuck": stuck,
        "actions": actions,
    }))
}

/// What of a rollout needed a release and the decision, with the full text
/// of each script: what the approver releases (null when nothing needed
/// one).
fn release_json(spec: &Spec, release: Option<&ReleaseDoc>) -> Value {
    let Some(r) = release else {
        return Value::Null;
    };
    let scripts: Vec<Value> = scripts(spec)
        .into_iter()
        .map(|(hook, text)| json!({"hook": hook, "text": text, "sha256": sha256_hex(text)}))
        .collect();
    json!({
        "state": r.decision.as_ref().map_or(AWAITING_RELEASE, |d| d.verdict.as_str()),
        "why": r.what(),
        "scripts": scripts,
        "uncovered": r.uncovered,
        "by": r.decision.as_ref().map(|d| &d.by),
        "at": r.decision.as_ref().map(|d| d.at),
        "reason": r.decision.as_ref().and_then(|d| d.reason.as_ref()),
    })
}

// ---------------------------------------------------------------------------
// Routes for people.

/// `GET /api/v1/rollouts`
pub(crate) async fn list(State(state): State<AppState>, _: Reader) -> ApiResult<Json<Value>> {
    let mut out = Vec::new();
    for r in state.store.rollouts().await? {
        let (spec, _) = parse_spec(&r)?;
        out.push(json!({
            "name": r.name,
            "status": r.status,
            "generation": r.generation,
            "reason": spec.reason,
            "created_at": r.created_at,
            "created_by": r.created_by,
            "packages": spec.packages.len(),
        }));
    }
    Ok(Json(Value::Array(out)))
}

/// `GET /api/v1/rollouts/{name}`
pub(crate) async fn show(
    State(state): State<AppState>,
    _: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(show_json(&load_and_plan(&state, &name).await?)))
}

/// `GET /api/v1/rollouts/{name}/events`
pub(crate) async fn events(
    State(state): State<AppState>,
    _: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let events = state.store.job_events(&name, None).await?;
    Ok(Json(Value::Array(
        events
            .into_iter()
            .map(|e| {
                json!({
                    "job": e.job_id,
                    "host": e.host_id,
                    "step": e.step,
                    "at": e.at,
                    "received_at": e.received_at,
                    "detail": e.detail.and_then(|d| serde_json::from_str::<Value>(&d).ok()),
                })
            })
            .collect(),
    )))
}

/// What a person's action decides.
struct Decision {
    /// The generation after it.
    generation: u64,
    /// The status after it.
    status: String,
    /// Jobs it hands out: host, kind and package manager, packages.
    jobs: Vec<(String, (JobKind, Manager), Vec<JobPackage>)>,
    /// Hosts put back to not started, their undelivered jobs withdrawn.
    reset: Vec<String>,
}

impl Decision {
    /// The same generation and status: only the recorded state changes.
    fn keep(l: &Loaded) -> Decision {
        Decision {
            generation: l.record.generation,
            status: l.record.status.clone(),
            jobs: Vec::new(),
            reset: Vec::new(),
        }
    }

    /// A new generation with this status.
    fn next(l: &Loaded, status: &str) -> Decision {
        Decision {
            generation: l.record.generation + 1,
            status: status.to_owned(),
            ..Decision::keep(l)
        }
    }
}

/// Records a person's action on a rollout (audited), then lets the
/// executor make its pass; returns the rollout as shown.
async fn act(
    state: &AppState,
    name: &str,
    why: Why,
    decide: impl FnOnce(&Loaded, &mut StateDoc) -> ApiResult<Decision>,
) -> ApiResult<Json<Value>> {
    {
        let _one = state.deploy.passes.lock().await;
        let l = load_and_plan(state, name).await?;
        let mut doc = l.doc.clone();
        let Decision {
            generation,
            status,
            jobs,
            reset,
        } = decide(&l, &mut doc)?;
        let at = now(state);
        let mut assignments = Vec::new();
        let mut signed = Vec::new();
        for (host, kind, packages) in jobs {
            // Jobs carry the generation they are issued in.
            let (a, j) = make_job(state, (name, generation, &l), &host, kind, packages, at)?;
            assignments.push(a);
            signed.push((host, j));
        }
        let withdrawn = take_back(state, &l, &reset);
        let update = RolloutUpdate {
            name: name.to_owned(),
            expected_generation: l.record.generation,
            generation,
            state: serde_json::to_string(&doc).map_err(ApiError::internal)?,
            status,
            assignments,
            reset,
        };
        if let Err(e) = state.store.update_rollout(&update, Some(&why), at).await {
            state.deploy.post_all(withdrawn);
            return Err(e.into());
        }
        state.deploy.post_all(signed);
    }
    ensure_executor(state);
    advance(state, name).await?;
    Ok(Json(shown(state, name).await?))
}

/// Takes back the jobs handed out to `host` but not yet delivered, in one
/// rollout or in every running one, because the host was granted a
/// deferral; returns the rollouts they were taken from.
pub(crate) async fn withdraw_deferred(
    state: &AppState,
    host: &str,
    only: Option<&str>,
    why: &Why,
) -> ApiResult<Vec<String>> {
    let mut from = Vec::new();
    for r in state.store.rollouts().await? {
        if only.is_some_and(|o| o != r.name) || !matches!(r.status.as_str(), "running" | "halted") {
            continue;
        }
        let held = state
            .store
            .rollout_lines(&r.name)
            .await?
            .iter()
            .any(|h| h.host_id == host && h.progress == "assigned" && h.step.is_none());
        if !held {
            continue;
        }
        let mut taken = false;
        let _shown = act(state, &r.name, why.clone(), |l, _| {
            let mut d = Decision::keep(l);
            if undelivered(l).iter().any(|h| h == host) {
                d.reset = vec![host.to_owned()];
                taken = true;
            }
            Ok(d)
        })
        .await?;
        if taken {
            from.push(r.name);
        }
    }
    Ok(from)
}

/// What a host's install changed, as its agent reported it (none when it
/// reported nothing).
fn changes_of(h: &RolloutHostRecord) -> Vec<protocol::job::Change> {
    h.changes
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default()
}

fn undelivered(l: &Loaded) -> Vec<String> {
    l.hosts
        .iter()
        .filter(|h| h.progress == "assigned" && h.step.is_none())
        .map(|h| h.host_id.clone())
        .collect()
}

fn reason_of(action: &RolloutAction, what: &str) -> ApiResult<String> {
    action
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request(format!("{what} needs a reason")))
}

/// Refuses an action on a rollout that was never released: a rollback or a
/// redeploy would move its status on past the release it still needs.
fn released(l: &Loaded, name: &str) -> ApiResult<()> {
    match l.record.status.as_str() {
        AWAITING_RELEASE => Err(ApiError::conflict(format!(
            "rollout {name} awaits release by an approver or administrator; nothing of it ran"
        ))),
        REFUSED => Err(ApiError::conflict(format!(
            "rollout {name} was refused; nothing of it runs (create a new rollout)"
        ))),
        _ => Ok(()),
    }
}

/// `POST /api/v1/rollouts/{name}/halt`: no new host starts; jobs not yet
/// delivered are withdrawn.
pub(crate) async fn halt(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(name): Path<String>,
    body: JsonBody<RolloutAction>,
) -> ApiResult<Json<Value>> {
    let Json(action) = body?;
    let reason = reason_of(&action, "a halt")?;
    let why = Why::new(&caller.username, "halt-rollout").because(Some(reason.clone()));
    act(&state, &name, why, |l, doc| {
        if !matches!(l.record.status.as_str(), "running" | "halted") {
            return Err(ApiError::conflict(format!(
                "rollout {name} is {}: only a running rollout halts",
                l.record.status
            )));
        }
        doc.halted = Some(reason);
        Ok(Decision {
            reset: undelivered(l),
            ..Decision::next(l, "halted")
        })
    })
    .await
}

/// `POST /api/v1/rollouts/{name}/resume`
pub(crate) async fn resume(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(name): Path<String>,
    body: JsonBody<RolloutAction>,
) -> ApiResult<Json<Value>> {
    let Json(action) = body?;
    let why = Why::new(&caller.username, "resume-rollout").because(action.reason.clone());
    act(&state, &name, why, |l, doc| {
        if l.record.status != "halted" {
            return Err(ApiError::conflict(format!(
                "rollout {name} is {}, not halted",
                l.record.status
            )));
        }
        if doc.halted.is_none() {
            return Err(ApiError::conflict(format!(
                "rollout {name} halted by itself ({}): redeploy it to retry the failed hosts, or roll it back",
                doc.failure_halt.as_deref().unwrap_or("failures")
            )));
        }
        doc.halted = None;
        Ok(Decision::next(l, "running"))
    })
    .await
}

/// `POST /api/v1/rollouts/{name}/rollback`: halts, then every host whose
/// install changed something gets a job that puts back the versions its
/// agent recorded before.
pub(crate) async fn rollback(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(name): Path<String>,
    body: JsonBody<RolloutAction>,
) -> ApiResult<Json<Value>> {
    let Json(action) = body?;
    let reason = reason_of(&action, "a rollback")?;
    let why = Why::new(&caller.username, "rollback-rollout").because(Some(reason.clone()));
    act(&state, &name, why, |l, doc| {
        released(l, &name)?;
        if matches!(l.record.status.as_str(), "rolling_back" | "rolled_back") {
            return Err(ApiError::conflict(format!(
                "rollout {name} is {} already",
                l.record.status
            )));
        }
        doc.halted = Some(format!("rolled back: {reason}"));
        let mut jobs = Vec::new();
        for h in &l.hosts {
            let changes = changes_of(h);
            // The manager that installed the frozen versions takes them back.
            let manager = frozen_manager(&l.spec, changes.iter().map(|c| (&c.name, &c.to)));
            let back: Vec<JobPackage> = changes
                .into_iter()
                .filter_map(|c| {
                    c.from.map(|from| JobPackage {
                        name: c.name,
                        arch: c.arch,
                        version: from,
                    })
                })
                .collect();
            if !back.is_empty() {
                jobs.push((h.host_id.clone(), (JobKind::Rollback, manager), back));
            }
        }
        let status = if jobs.is_empty() {
            "rolled_back"
        } else {
            "rolling_back"
        };
        Ok(Decision {
            jobs,
            reset: undelivered(l),
            ..Decision::next(l, status)
        })
    })
    .await
}

/// `POST /api/v1/rollouts/{name}/redeploy`: a new generation; hosts that
/// failed or were rolled back start again.
pub(crate) async fn redeploy(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(name): Path<String>,
    body: JsonBody<RolloutAction>,
) -> ApiResult<Json<Value>> {
    let Json(action) = body?;
    let reason = reason_of(&action, "a redeploy")?;
    let why = Why::new(&caller.username, "redeploy-rollout").because(Some(reason));
    act(&state, &name, why, |l, doc| {
        released(l, &name)?;
        if l.record.status == "rolling_back" {
            return Err(ApiError::conflict(format!(
                "rollout {name} is still rolling back"
            )));
        }
        doc.halted = None;
        doc.failure_halt = None;
        let mut reset: Vec<String> = l
            .hosts
            .iter()
            .filter(|h| {
                matches!(
                    h.progress.as_str(),
                    "failed" | "rolled_back" | "rollback_failed"
                )
            })
            .map(|h| h.host_id.clone())
            .collect();
        reset.extend(undelivered(l));
        Ok(Decision {
            reset,
            ..Decision::next(l, "running")
        })
    })
    .await
}

/// `POST /api/v1/rollouts/{name}/approve`: a person approves a ring's start.
pub(crate) async fn approve(
    State(state): State<AppState>,
    Approver(caller): Approver,
    Path(name): Path<String>,
    body: JsonBody<RolloutAction>,
) -> ApiResult<Json<Value>> {
    let Json(action) = body?;
    let ring = action
        .ring
        .clone()
        .ok_or_else(|| ApiError::bad_request("name the ring to approve"))?;
    let why = Why::new(&caller.username, "approve-ring").because(Some(format!(
        "ring {ring}{}",
        action.reason.map(|r| format!(": {r}")).unwrap_or_default()
    )));
    act(&state, &name, why, |l, doc| {
        let i =
            l.rings.iter().position(|r| r.name == ring).ok_or_else(|| {
                ApiError::bad_request(format!("rollout {name} has no ring {ring}"))
            })?;
        doc.ring_approved.resize(l.rings.len(), false);
        doc.ring_approved[i] = true;
        Ok(Decision::keep(l))
    })
    .await
}

/// `POST /api/v1/rollouts/{name}/gate`: a person lowers a started ring's
/// success gate (`{"ring", "gate_success_percent", "reason"}`), so the next
/// ring may start with fewer of its hosts succeeded. Only lower: raising a
/// gate the next ring may already have passed would mean nothing.
pub(crate) async fn lower_gate(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(name): Path<String>,
    body: JsonBody<RolloutAction>,
) -> ApiResult<Json<Value>> {
    let Json(action) = body?;
    let ring = action
        .ring
        .clone()
        .ok_or_else(|| ApiError::bad_request("name the ring whose gate to lower"))?;
    let percent = action.gate_success_percent.ok_or_else(|| {
        ApiError::bad_request("gate_success_percent: give the new gate, 0 to 100")
    })?;
    let reason = reason_of(&action, "lowering a gate")?;
    let why = Why::new(&caller.username, "lower-gate").because(Some(format!(
        "ring {ring}: {percent}% of its hosts must succeed; {reason}"
    )));
    act(&state, &name, why, |l, doc| {
        released(l, &name)?;
        if !matches!(l.record.status.as_str(), "running" | "halted") {
            return Err(ApiError::conflict(format!(
                "rollout {name} is {}: only a running or halted rollout's gates change",
                l.record.status
            )));
        }
        let r =
            l.rings.iter().find(|r| r.name == ring).ok_or_else(|| {
                ApiError::bad_request(format!("rollout {name} has no ring {ring}"))
            })?;
        if percent >= r.gate_success_percent {
            return Err(ApiError::bad_request(format!(
                "gate_success_percent {percent}: ring {ring}'s gate is {}% already; give less",
                r.gate_success_percent
            )));
        }
        doc.gates.insert(ring.clone(), percent);
        Ok(Decision::keep(l))
    })
    .await
}

/// A person's decision on a rollout awaiting release, and the audit entry
/// that records it (naming each script by its hash, and the versions).
async fn decide_release(
    state: &AppState,
    name: &str,
    caller: &crate::auth::Caller,
    verdict: ReleaseVerdict,
    reason: Option<String>,
) -> ApiResult<Json<Value>> {
    if reason.as_ref().is_some_and(|r| r.chars().count() > 4000) {
        return Err(ApiError::bad_request(
            "a release's or refusal's reason is at most 4000 characters",
        ));
    }
    let (_, _, stored) = stored_rollout(state, name).await?;
    let what = stored
        .release
        .as_ref()
        .map(ReleaseDoc::audited)
        .unwrap_or_default();
    let (action, verb) = match verdict {
        ReleaseVerdict::Released => ("release-rollout", "releases"),
        ReleaseVerdict::Refused => ("refuse-rollout", "refuses"),
    };
    let why = Why::new(&caller.username, action).because(Some(format!(
        "{}{verb} {what}",
        reason
            .as_deref()
            .map(|r| format!("{r}; "))
            .unwrap_or_default()
    )));
    let by = caller.username.clone();
    let at = now(state);
    act(state, name, why, |l, doc| {
        if l.record.status != AWAITING_RELEASE {
            return Err(ApiError::conflict(format!(
                "rollout {name} is {}: only a rollout awaiting release is released or refused",
                l.record.status
            )));
        }
        let release = doc.release.as_mut().ok_or_else(|| {
            ApiError::internal(format!(
                "rollout {name} awaits release but records nothing to release"
            ))
        })?;
        release.decision = Some(ReleaseDecision {
            verdict,
            by,
            at,
            reason,
        });
        let status = match verdict {
            ReleaseVerdict::Released => "running",
            ReleaseVerdict::Refused => REFUSED,
        };
        Ok(Decision {
            status: status.to_owned(),
            ..Decision::keep(l)
        })
    })
    .await
}

/// `POST /api/v1/rollouts/{name}/release`: an approver or administrator
/// lets a rollout that awaits release run (its scripts and the versions no
/// approval covers, as its answer shows them).
pub(crate) async fn release(
    State(state): State<AppState>,
    Approver(caller): Approver,
    Path(name): Path<String>,
    body: JsonBody<RolloutAction>,
) -> ApiResult<Json<Value>> {
    let Json(action) = body?;
    let reason = action
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    decide_release(&state, &name, &caller, ReleaseVerdict::Released, reason).await
}

/// `POST /api/v1/rollouts/{name}/refuse`: an approver or administrator
/// refuses a rollout that awaits release; it never runs.
pub(crate) async fn refuse(
    State(state): State<AppState>,
    Approver(caller): Approver,
    Path(name): Path<String>,
    body: JsonBody<RolloutAction>,
) -> ApiResult<Json<Value>> {
    let Json(action) = body?;
    let reason = reason_of(&action, "a refusal")?;
    decide_release(
        &state,
        &name,
        &caller,
        ReleaseVerdict::Refused,
        Some(reason),
    )
    .await
}

/// `POST /api/v1/rollouts/{name}/notes`: a note for the review.
pub(crate) async fn add_note(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(name): Path<String>,
    body: JsonBody<RolloutAction>,
) -> ApiResult<Json<Value>> {
    let Json(action) = body?;
    let text = action
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty() && n.len() <= 4000)
        .ok_or_else(|| ApiError::bad_request("a note is 1 to 4000 characters"))?;
    let at = now(&state);
    let by = caller.username.clone();
    let why = Why::new(&caller.username, "note-rollout");
    let _shown = act(&state, &name, why, |l, doc| {
        doc.notes.push(Note { by, at, text });
        Ok(Decision::keep(l))
    })
    .await?;
    review_of(&state, &name).await.map(Json)
}

/// `GET /api/v1/rollouts/{name}/review`: the post-implementation review.
pub(crate) async fn review(
    State(state): State<AppState>,
    _: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    review_of(&state, &name).await.map(Json)
}

/// A rollout's hosts by their recorded progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) hosts: usize,
    pub(crate) succeeded: usize,
    /// Failed installs and failed rollbacks.
    pub(crate) failed: usize,
    pub(crate) rolled_back: usize,
    /// Jobs handed out or running, installs and rollbacks.
    pub(crate) in_progress: usize,
    pub(crate) not_started: usize,
}

impl Tally {
    pub(crate) fn of(hosts: &[RolloutHostRecord]) -> Tally {
        let mut t = Tally {
            hosts: hosts.len(),
            ..Tally::default()
        };
        for h in hosts {
            match h.progress.as_str() {
                "succeeded" => t.succeeded += 1,
                "failed" | "rollback_failed" => t.failed += 1,
                "rolled_back" => t.rolled_back += 1,
                "assigned" | "in_progress" | "rolling_back" => t.in_progress += 1,
                "not_started" => t.not_started += 1,
                _ => {}
            }
        }
        t
    }
}

async fn review_of(state: &AppState, name: &str) -> ApiResult<Value> {
    // What was recorded is enough: no plan is made (a rollout's plan reads
    // every host of the fleet).
    let (record, spec, doc) = stored_rollout(state, name).await?;
    let hosts = state.store.rollout_lines(name).await?;
    let failed: Vec<String> = hosts
        .iter()
        .filter(|h| h.progress.ends_with("failed"))
        .map(|h| h.host_id.clone())
        .collect();
    let names: HashMap<String, String> = if failed.is_empty() {
        HashMap::new()
    } else {
        state
            .store
            .list_hosts(
                &HostFilter {
                    include_revoked: true,
                    ids: Some(failed),
                    ..HostFilter::default()
                },
                now(state),
                state.config.stale_after,
            )
            .await?
            .into_iter()
            .map(|h| (h.id, h.hostname))
            .collect()
    };
    Ok(review_json(&Recorded {
        record: &record,
        spec: &spec,
        doc: &doc,
        hosts: &hosts,
        names: &names,
    }))
}

/// What a rollout's review is made from: what was recorded of it.
struct Recorded<'a> {
    record: &'a RolloutRecord,
    spec: &'a Spec,
    doc: &'a StateDoc,
    hosts: &'a [RolloutHostRecord],
    names: &'a HashMap<String, String>,
}

impl<'a> From<&'a Loaded> for Recorded<'a> {
    fn from(l: &'a Loaded) -> Self {
        Recorded {
            record: &l.record,
            spec: &l.spec,
            doc: &l.doc,
            hosts: &l.hosts,
            names: &l.names,
        }
    }
}

/// The rollout as shown (its hosts apart, typed) and its review, from one
/// plan: what the console's rollout page shows. Ten thousand hosts as
/// typed rows cost a fraction of what they cost as JSON objects.
pub(crate) async fn shown_and_reviewed(
    state: &AppState,
    name: &str,
) -> ApiResult<(Value, Value, Vec<ShownHost>)> {
    let l = load_and_plan(state, name).await?;
    let hosts = shown_hosts(&l).into_iter().map(|(h, _)| h).collect();
    Ok((show_head_json(&l), review_json(&Recorded::from(&l)), hosts))
}

/// The rollout as shown without its hosts, and its review, from one plan:
/// what the live part of the console's rollout page shows, so that the
/// progress and the review's figures never disagree.
pub(crate) async fn shown_head_and_reviewed(
    state: &AppState,
    name: &str,
) -> ApiResult<(Value, Value)> {
    let l = load_and_plan(state, name).await?;
    Ok((show_head_json(&l), review_json(&Recorded::from(&l))))
}

fn review_json(l: &Recorded<'_>) -> Value {
    let tally = Tally::of(l.hosts);
    let targets = l.hosts.len();
    let start = l
        .doc
        .ring_started
        .iter()
        .flatten()
        .min()
        .copied()
        .unwrap_or(l.record.created_at);
    // When each host's install first succeeded: a later rollback does not
    // move it.
    let mut done: Vec<Timestamp> = l.hosts.iter().filter_map(|h| h.installed_at).collect();
    done.sort();
    let time_to = |share: usize| -> Option<i64> {
        let needed = (targets * share).div_ceil(100).max(1);
        done.get(needed - 1)
            .map(|t| t.duration_since(start).as_secs())
    };
    let reached_95 = time_to(95).map(|s| start + SignedDuration::from_secs(s));
    let deadline_met = l.spec.deadline.map(|d| reached_95.is_some_and(|t| t <= d));
    json!({
        "rollout": l.record.name,
        "status": l.record.status,
        "reason": l.spec.reason,
        "packages": l.spec.packages,
        "targets": targets,
        "succeeded": tally.succeeded,
        "failed": tally.failed,
        "rolled_back": tally.rolled_back,
        "in_progress": tally.in_progress,
        "not_started": tally.not_started,
        "started_at": start,
        "seconds_to_50_percent": time_to(50),
        "seconds_to_95_percent": time_to(95),
        "deadline": l.spec.deadline,
        "deadline_met": deadline_met,
        "failures": l.hosts.iter().filter(|h| h.progress.ends_with("failed")).map(|h| json!({"host": h.host_id, "hostname": l.names.get(&h.host_id), "why": h.detail})).collect::<Vec<_>>(),
        "notes": l.doc.notes,
    })
}

// ---------------------------------------------------------------------------
// The agent's route.

/// `POST /api/v1/rollouts/{name}/raise-baseline`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RaiseTo {
    /// The baseline to raise.
    baseline: String,
}

/// `POST /api/v1/rollouts/{name}/raise-baseline`: the review's action. Each
/// package the rollout installed where it succeeded (and was not rolled
/// back) becomes the baseline's minimum at the version the hosts reached.
pub(crate) async fn raise_baseline(
    State(state): State<AppState>,
    Approver(caller): Approver,
    Path(name): Path<String>,
    body: JsonBody<RaiseTo>,
) -> ApiResult<Json<Value>> {
    let Json(req) = body?;
    let l = load_and_plan(&state, &name).await?;
    // The versions the succeeded hosts reached, per package: the frozen
    // ones, as their changes report them.
    let mut reached: BTreeMap<String, String> = BTreeMap::new();
    for h in l.hosts.iter().filter(|h| h.progress == "succeeded") {
        for c in changes_of(h) {
            if l.spec
                .packages
                .iter()
                .any(|f| f.name == c.name && f.version == c.to)
            {
                reached.insert(c.name, c.to);
            }
        }
    }
    if reached.is_empty() {
        return Err(ApiError::conflict(format!(
            "rollout {name} has no host where it succeeded; there is nothing to raise the \
             baseline to"
        )));
    }
    let reference: Vec<patchwell_core::baseline::Installed<'_>> = reached
        .iter()
        .map(|(n, v)| patchwell_core::baseline::Installed {
            name: n,
            source: n,
            version: v,
        })
        .collect();
    let from = format!("the result of rollout {name}");
    let changes = crate::plan_api::raise_to(
        &state,
        &caller.username,
        &req.baseline,
        &reference,
        true,
        &from,
    )
    .await?;
    Ok(Json(json!({
        "baseline": req.baseline,
        "rollout": name,
        "changes": changes,
    })))
}

/// `POST /api/v1/agent/jobs/{id}/steps`
pub(crate) async fn report_steps(
    State(state): State<AppState>,
    host: Host,
    Path(job): Path<String>,
    body: JsonBody<StepsRequest>,
) -> ApiResult<StatusCode> {
    let Json(request) = body?;
    if request.steps.is_empty() || request.steps.len() > 64 {
        return Err(ApiError::bad_request("send 1 to 64 steps at a time"));
    }
    crate::fields::steps(&request.steps, state.config.max_packages)?;
    let clip = |s: &Option<String>, max: usize| {
        s.as_ref().map(|t| {
            if t.len() <= max {
                t.clone()
            } else {
                let mut end = max;
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                t[..end].to_owned()
            }
        })
    };
    let records: Vec<StepRecord> = request
        .steps
        .iter()
        .map(|s| {
            let message = clip(&s.message, 2000);
            let tail = clip(&s.output_tail, 8000);
            let detail = (message.is_some()
                || tail.is_some()
                || s.exit_code.is_some()
                || !s.changes.is_empty())
            .then(|| {
                json!({
                    "message": message,
                    "exit_code": s.exit_code,
                    "output_tail": tail,
                    "changes": s.changes,
                })
                .to_string()
            });
            let failure = matches!(
                s.step,
                protocol::job::Step::Failed | protocol::job::Step::Refused
            )
            .then(|| {
                let mut why = message
                    .clone()
                    .unwrap_or_else(|| s.step.as_str().to_owned());
                if let Some(code) = s.exit_code {
                    why.push_str(&format!(" (exit code {code})"));
                }
                why
            });
            StepRecord {
                job_id: job.clone(),
                host_id: host.id.clone(),
                step: s.step.as_str().to_owned(),
                at: s.at,
                detail,
                failure,
                changes: (!s.changes.is_empty())
                    .then(|| serde_json::to_string(&s.changes).unwrap_or_default()),
            }
        })
        .collect();
    let (reply, answer) = oneshot::channel();
    step_writer(&state)
        .send((records, reply))
        .await
        .map_err(|_| ApiError::internal("the step writer stopped"))?;
    let outcomes = answer
        .await
        .map_err(|_| ApiError::internal("the step writer stopped"))?
        .map_err(|e| ApiError::internal(format!("storing steps: {e}")))?;
    // Delivered: it leaves the board whatever the step.
    state.deploy.withdraw(&host.id, Some(&job));
    let mut known = false;
    for o in outcomes {
        if let StepOutcome::Recorded {
            rollout,
            moved,
            progress,
            ..
        } = o
        {
            known = true;
            if moved && progress != "in_progress" {
                state.deploy.mark(&rollout);
            }
        }
    }
    if !known {
        return Err(ApiError::not_found(format!(
            "job {job} is not a job of this host"
        )));
    }
    ensure_executor(&state);
    Ok(StatusCode::NO_CONTENT)
}

/// The deploy side's memory, shared by the state's clones.
pub type SharedDeploy = Arc<Deploy>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_s_expiry_is_read_from_its_json() {
        let job = Job {
            schema: JOB_SCHEMA,
            id: "r.1.install.h".into(),
            host_id: "h".into(),
            rollout: "r".into(),
            generation: 1,
            kind: JobKind::Install,
            manager: Manager::Dpkg,
            packages: vec![],
            conffiles: ConffilePolicy::default(),
            reboot: RebootPolicy::Never,
            reboot_deferral: None,
            windows: vec![],
            // A hook holding the key's text: serde escapes its quotes, so it
            // is never taken for the key.
            pre_hook: Some(r#"echo '"not_after":"1999-01-01T00:00:00Z"'"#.into()),
            post_hook: None,
            health_check: None,
            issued_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            not_after: "2026-12-15T00:00:00Z".parse().unwrap(),
        };
        let body = serde_json::to_string(&job).unwrap();
        assert_eq!(
            not_after(&body),
            Some("2026-12-15T00:00:00Z".parse().unwrap())
        );
        assert_eq!(not_after("{}"), None);
    }
}
