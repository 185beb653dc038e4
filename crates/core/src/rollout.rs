//! Rollout planning: which ring each host belongs to, whether each ring may
//! start, and what each host should do now, with the reason.
//!
//! A key design decision made in this module is "plan, then execute": the
//! planner is a pure function from (rings, hosts and their progress, the
//! rollout's state, a calendar, now) to a [`Plan`]. The executor only
//! carries a plan out and records what happened, then asks for the next
//! plan. Every decision carries its reason as a value ([`Action`],
//! [`RingState`]), so the console can say why a host waits. A plan carries
//! the rollout's generation; one made for an earlier generation (before a
//! halt, a rollback or a redeploy) is refused by [`Plan::check_generation`].
//!
//! Ring membership is chosen once, when a rollout is created
//! ([`assign`]): a pilot sampled across strata (OS release, hardware
//! model, department, criticality) so that it resembles the fleet, always
//! including the hosts pinned as pilot members.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::approval::Calendar;
use crate::policy::WindowState;

/// How many hosts a ring takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// This share of all the rollout's hosts (1 to 100), rounded up, at
    /// least one.
    Percent(u32),
    /// This many hosts.
    Hosts(u32),
    /// Every host not in an earlier ring.
    Rest,
}

/// One ring of a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    /// Its name (`pilot`, `broad`).
    pub name: String,
    /// How many hosts it takes.
    pub size: Size,
    /// Business days to wait after the previous ring started.
    pub wait_business_days: i64,
    /// Whether a person must approve its start.
    pub manual_approval: bool,
    /// The share (percent) of its hosts that must succeed before the next
    /// ring may start.
    pub gate_success_percent: u32,
    /// And at least this many of them (all of them, in a smaller ring).
    pub gate_min_hosts: u32,
    /// Failures above this share (percent) of its hosts halt the rollout.
    pub halt_failure_percent: u32,
    /// Whether its gate also needs every health check to have passed: a
    /// host whose health check failed after installing holds the next ring
    /// back, however many others succeeded.
    pub gate_healthy: bool,
}

/// The rings of a classic desktop procedure: a pilot of about 5%, then,
/// two business days after the pilot started and once 95% of it
/// succeeded, everyone else. More than 10% of a ring failing halts.
pub fn classic_rings() -> Vec<Ring> {
    vec![
        Ring {
            name: "pilot".into(),
            size: Size::Percent(5),
            wait_business_days: 0,
            manual_approval: false,
            gate_success_percent: 95,
            gate_min_hosts: 1,
            halt_failure_percent: 10,
            gate_healthy: true,
        },
        Ring {
            name: "broad".into(),
            size: Size::Rest,
            wait_business_days: 2,
            manual_approval: false,
            gate_success_percent: 95,
            gate_min_hosts: 1,
            halt_failure_percent: 10,
            gate_healthy: true,
        },
    ]
}

/// Rings that cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingsError {
    /// No rings at all.
    #[error("a rollout needs at least one ring")]
    Empty,
    /// A percentage outside 1 to 100.
    #[error("ring {ring}: {what} {value} is not a percentage from 1 to 100")]
    Percent {
        /// The ring.
        ring: String,
        /// Which setting.
        what: &'static str,
        /// Its value.
        value: u32,
    },
    /// A negative wait.
    #[error("ring {ring}: a wait of {days} business days is negative")]
    Wait {
        /// The ring.
        ring: String,
        /// The wait.
        days: i64,
    },
    /// Two rings of one name.
    #[error("ring {0} is named twice")]
    Duplicate(String),
    /// `Size::Rest` before the last ring leaves the later rings empty.
    #[error("ring {0} takes the rest, so it must be the last")]
    RestNotLast(String),
}

/// Checks a ring list: names unique, percentages 1 to 100, waits not
/// negative, only the last ring taking the rest.
pub fn check_rings(rings: &[Ring]) -> Result<(), RingsError> {
    if rings.is_empty() {
        return Err(RingsError::Empty);
    }
    for (i, r) in rings.iter().enumerate() {
        if rings[..i].iter().any(|o| o.name == r.name) {
            return Err(RingsError::Duplicate(r.name.clone()));
        }
        let mut percents = vec![
            ("the success gate", r.gate_success_percent),
            ("the failure threshold", r.halt_failure_percent),
        ];
        if let Size::Percent(p) = r.size {
            percents.push(("the size", p));
        }
        for (what, value) in percents {
            if !(1..=100).contains(&value) {
                return Err(RingsError::Percent {
                    ring: r.name.clone(),
                    what,
                    value,
                });
            }
        }
        if r.wait_business_days < 0 {
            return Err(RingsError::Wait {
                ring: r.name.clone(),
                days: r.wait_business_days,
            });
        }
        if r.size == Size::Rest && i + 1 != rings.len() {
            return Err(RingsError::RestNotLast(r.name.clone()));
        }
    }
    Ok(())
}

/// A host as ring assignment sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its identity.
    pub id: String,
    /// Its OS release (`debian 12`).
    pub os_release: String,
    /// Its hardware model (or processor model, where that is all it says).
    pub model: String,
    /// Its department (empty when none).
    pub department: String,
    /// Its criticality, 0 (low) to 3 (critical).
    pub criticality: u8,
    /// Whether it is pinned as a pilot member.
    pub pinned_pilot: bool,
}

impl Member {
    fn stratum(&self) -> (&str, &str, &str, u8) {
        (
            &self.os_release,
            &self.model,
            &self.department,
            self.criticality,
        )
    }
}

/// The ring (by index into `rings`) of each member, in the members' order.
///
/// Rings are filled in order. The first ring takes the pinned members
/// first; each ring but the last then takes a stratified sample of the
/// hosts left: one from each stratum while it can (larger strata first),
/// the rest in proportion to the strata's sizes (largest remainder).
/// Within a stratum, hosts are taken in an order fixed by `seed` and their
/// ids, so the same rollout gets the same rings. The last ring takes
/// everything left, whatever its size says.
pub fn assign(rings: &[Ring], members: &[Member], seed: u64) -> Vec<usize> {
    let total = members.len();
    let last = rings.len().saturating_sub(1);
    let mut ring_of: Vec<usize> = vec![last; total];
    let mut left: Vec<usize> = (0..total).collect();
    for (r, ring) in rings.iter().enumerate().take(last) {
        let want = match ring.size {
            Size::Percent(p) => (total * p as usize).div_ceil(100).max(1),
            Size::Hosts(n) => n as usize,
            Size::Rest => left.len(),
        }
        .min(left.len());
        let mut chosen: Vec<usize> = Vec::new();
        if r == 0 {
            chosen.extend(left.iter().copied().filter(|&i| members[i].pinned_pilot));
        }
        let rest: Vec<usize> = left
            .iter()
            .copied()
            .filter(|i| !chosen.contains(i))
            .collect();
        let slots = want.saturating_sub(chosen.len());
        chosen.extend(stratified(members, &rest, slots, seed ^ r as u64));
        for &i in &chosen {
            ring_of[i] = r;
        }
        left.retain(|i| !chosen.contains(i));
    }
    ring_of
}

/// `slots` of the members at `from`, sampled across strata.
fn stratified(members: &[Member], from: &[usize], slots: usize, seed: u64) -> Vec<usize> {
    let mut strata: BTreeMap<(&str, &str, &str, u8), Vec<usize>> = BTreeMap::new();
    for &i in from {
        strata.entry(members[i].stratum()).or_default().push(i);
    }
    // Largest strata first; each shuffled by the seed.
    let mut strata: Vec<Vec<usize>> = strata.into_values().collect();
    for s in &mut strata {
        s.sort_by_key(|&i| (mix(seed, &members[i].id), i));
    }
    strata.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut take = vec![0usize; strata.len()];
    let mut slots = slots.min(from.len());
    // One from each stratum while slots last.
    for t in take.iter_mut() {
        if slots == 0 {
            break;
        }
        *t = 1;
        slots -= 1;
    }
    // The rest in proportion to what each stratum has left.
    let remaining: usize = strata.iter().zip(&take).map(|(s, t)| s.len() - t).sum();
    if slots > 0 && remaining > 0 {
        let mut shares: Vec<(usize, usize, usize)> = strata
            .iter()
            .zip(&take)
            .enumerate()
            .map(|(k, (s, t))| {
                let exact = (s.len() - t) * slots;
                (exact / remaining, exact % remaining, k)
            })
            .collect();
        let mut given = 0;
        for &(whole, _, k) in &shares {
            take[k] += whole;
            given += whole;
        }
        shares.sort_by_key(|&(_, remainder, k)| (std::cmp::Reverse(remainder), k));
        for &(_, _, k) in shares.iter().take(slots - given) {
            take[k] += 1;
        }
    }
    strata
        .iter()
        .zip(take)
        .flat_map(|(s, t)| s.iter().copied().take(t))
        .collect()
}

/// The seed a rollout's name gives its ring assignment: the same name, the
/// same rings.
pub fn seed_for(name: &str) -> u64 {
    mix(0, name)
}

/// A stable 64-bit mix of a seed and a name (FNV-1a, then SplitMix64's
/// finaliser): the order hosts are taken in, the same on every run.
fn mix(seed: u64, name: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Where one host's job stands, as the executor recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Not handed out yet.
    NotStarted,
    /// Handed out, and its agent has not fetched it yet.
    Handed {
        /// Since when.
        since: Timestamp,
    },
    /// Received by its agent (downloading, installing, verifying ...).
    InProgress {
        /// Since when.
        since: Timestamp,
    },
    /// Installed and verified.
    Succeeded {
        /// When.
        at: Timestamp,
    },
    /// Failed.
    Failed {
        /// When.
        at: Timestamp,
        /// Why, as the agent reported it.
        why: String,
        /// Whether it was the health check after installing that failed.
        unhealthy: bool,
    },
    /// Rolled back to the versions it had before.
    RolledBack {
        /// When.
        at: Timestamp,
    },
}

/// One host of a rollout as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its identity.
    pub id: String,
    /// Its ring (index into the rollout's rings).
    pub ring: usize,
    /// Its criticality, 0 (low) to 3 (critical): critical hosts go first
    /// within their ring.
    pub criticality: u8,
    /// Its job's progress.
    pub progress: Progress,
    /// An exemption in force, by its reason.
    pub exempt: Option<String>,
    /// When it last checked in.
    pub last_seen: Timestamp,
    /// Its maintenance window now (from its policy).
    pub window: WindowState,
    /// A deferral an approver granted, in force.
    pub deferred: Option<Deferred>,
    /// The groups it is in that have a disruption budget of their own.
    pub groups: Vec<String>,
}

/// A deferral granted to a host: its job does not start before `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    /// When it ends.
    pub until: Timestamp,
    /// The requester's business justification, and who granted it.
    pub reason: String,
}

/// A disruption budget of one group: at most so many of the group's hosts
/// in progress at once, whatever the rollout-wide budget allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBudget {
    /// The group.
    pub group: String,
    /// Its budget; a percentage is of the group's hosts in the rollout.
    pub budget: Budget,
}

/// How many hosts may be in progress at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// No limit.
    Unlimited,
    /// At most this many.
    Hosts(u32),
    /// At most this share (percent) of the rollout's hosts, at least one.
    Percent(u32),
}

/// What the executor has recorded of the rollout as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutState {
    /// Counts halts, rollbacks and redeploys; plans of older generations
    /// are refused.
    pub generation: u64,
    /// When each ring started (by index), once it did.
    pub ring_started: Vec<Option<Timestamp>>,
    /// Whether a person approved each ring's start (by index).
    pub ring_approved: Vec<bool>,
    /// Halted by a person, with their reason.
    pub halted: Option<String>,
    /// Jobs not handed out by then are not handed out at all.
    pub expires: Option<Timestamp>,
    /// The first ring starts no earlier (a policy's scheduled time).
    pub starts: Option<Timestamp>,
    /// Why no ring may start at all: the rollout runs scripts as root or
    /// installs versions no approval covers, and no approver or
    /// administrator released it (or one refused it). `None`: released, or
    /// nothing in it needs a release.
    pub unreleased: Option<String>,
}

/// Everything a plan is made from.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The rings.
    pub rings: &'a [Ring],
    /// The hosts.
    pub targets: &'a [Target],
    /// The rollout's recorded state.
    pub state: &'a RolloutState,
    /// The business-day calendar.
    pub calendar: &'a Calendar,
    /// The disruption budget.
    pub budget: Budget,
    /// Budgets of single groups, on top of the rollout-wide one.
    pub group_budgets: &'a [GroupBudget],
    /// A host not seen for this long is offline: it picks its job up at its
    /// next check-in.
    pub offline_after: SignedDuration,
    /// Per ring, why what it installs is not approved for it (`None`, or
    /// no entry: nothing held).
    pub unapproved: &'a [Option<String>],
    /// Now.
    pub now: Timestamp,
}

/// Why a ring has not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingWait {
    /// The previous ring has not passed its success gate.
    Gate {
        /// The previous ring.
        ring: String,
        /// Its hosts that succeeded.
        succeeded: usize,
        /// How many must.
        needed: usize,
        /// Its hosts whose health check failed after installing (the gate
        /// needs none, when the ring asks for healthy hosts).
        unhealthy: usize,
    },
    /// The wait after the previous ring started has not passed.
    BusinessDays {
        /// The previous ring.
        ring: String,
        /// The wait.
        days: i64,
        /// When it ends (`None` past the calendar's end).
        until: Option<Timestamp>,
    },
    /// A person must approve the start.
    Approval,
    /// The rollout is halted.
    Halted,
    /// The rollout's scheduled start has not come.
    Scheduled {
        /// When it starts.
        at: Timestamp,
    },
    /// What the ring would install is not approved for it (an approval
    /// scoped to other rings, or a decline since).
    NotApproved {
        /// Why, naming the updates.
        reason: String,
    },
    /// The rollout is not released: what it would run as root waits for
    /// an approver's or administrator's decision.
    Unreleased {
        /// Why, naming the scripts and versions.
        reason: String,
    },
}

/// Where a ring stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingState {
    /// Not started, and why.
    Waiting(RingWait),
    /// Started (`started` is `None` when it starts with this plan: the
    /// executor records now).
    Running {
        /// When it started.
        started: Option<Timestamp>,
    },
    /// Its success gate is met.
    Passed {
        /// When it started.
        started: Option<Timestamp>,
    },
}

/// Why the rollout stopped by itself or was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// A person halted it.
    Manual {
        /// Their reason.
        reason: String,
    },
    /// A ring's failures went over its threshold.
    Failures {
        /// The ring.
        ring: String,
        /// Its failed hosts.
        failed: usize,
        /// Its hosts.
        hosts: usize,
        /// The threshold, percent.
        threshold: u32,
    },
}

/// What a host should do now, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand its job out now (an offline host picks it up when it next
    /// checks in).
    Start {
        /// Offline since, when it is.
        offline_since: Option<Timestamp>,
    },
    /// Its ring has not started.
    WaitingForRing {
        /// The ring.
        ring: String,
        /// Why.
        wait: RingWait,
    },
    /// Its maintenance window is closed.
    OutsideWindow {
        /// When it opens next.
        opens: Option<Timestamp>,
    },
    /// The disruption budget is full.
    Queued {
        /// Hosts in progress (of the group, for a group's budget).
        in_progress: usize,
        /// The budget.
        limit: usize,
        /// The group whose budget is full; `None` for the rollout's.
        group: Option<String>,
    },
    /// An approver granted a deferral.
    Deferred {
        /// Until then.
        until: Timestamp,
        /// Why.
        reason: String,
    },
    /// Exempt, by this reason.
    Exempt {
        /// The exemption's reason.
        reason: String,
    },
    /// Its job is handed out and waits for the host to fetch it.
    Handed {
        /// Since when.
        since: Timestamp,
        /// When the host was last seen, if longer ago than the plan's
        /// offline limit.
        offline_since: Option<Timestamp>,
    },
    /// Its job is under way.
    InProgress {
        /// Since when.
        since: Timestamp,
    },
    /// Done.
    Succeeded,
    /// Failed, by the agent's reason.
    Failed {
        /// Why.
        why: String,
    },
    /// Rolled back.
    RolledBack,
    /// The rollout is halted before this host started.
    Halted,
    /// The rollout expired before this host started.
    Expired,
}

/// One host's line of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// The host.
    pub id: String,
    /// Its ring.
    pub ring: usize,
    /// What to do.
    pub action: Action,
}

/// Counts of a ring's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Hosts (exempt ones included).
    pub hosts: usize,
    /// Exempt.
    pub exempt: usize,
    /// Deferred by a deferral in force, not started.
    pub deferred: usize,
    /// In progress.
    pub in_progress: usize,
    /// Succeeded.
    pub succeeded: usize,
    /// Failed.
    pub failed: usize,
    /// Rolled back.
    pub rolled_back: usize,
    /// Failed at the health check after installing.
    pub unhealthy: usize,
}

impl Counts {
    /// The hosts that count toward gates and thresholds: those not exempt
    /// and not deferred.
    pub fn counted(&self) -> usize {
        self.hosts - self.exempt - self.deferred
    }
}

/// One ring's line of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingPlan {
    /// The ring's name.
    pub name: String,
    /// Where it stands.
    pub state: RingState,
    /// Its hosts.
    pub counts: Counts,
}

/// A plan: immutable, for one generation of a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The rollout generation it was made for.
    pub generation: u64,
    /// When it was made.
    pub at: Timestamp,
    /// The rings.
    pub rings: Vec<RingPlan>,
    /// The hosts, in the order their jobs go out (ring, then critical
    /// first, then id).
    pub hosts: Vec<HostPlan>,
    /// Why the rollout is halted, if it is.
    pub halt: Option<Halt>,
    /// Whether every ring passed.
    pub complete: bool,
}

/// A plan made for another generation than the rollout's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the plan is for generation {plan} of the rollout, which is now at generation {current}")]
pub struct StalePlan {
    /// The plan's.
    pub plan: u64,
    /// The rollout's.
    pub current: u64,
}

impl Plan {
    /// Refuses a plan made for another generation.
    pub fn check_generation(&self, current: u64) -> Result<(), StalePlan> {
        if self.generation == current {
            Ok(())
        } else {
            Err(StalePlan {
                plan: self.generation,
                current,
            })
        }
    }
}

/// Makes the plan: a pure function of its input.
pub fn plan(input: &Input<'_>) -> Plan {
    let Input {
        rings,
        targets,
        state,
        calendar,
        budget,
        group_budgets,
        offline_after,
        unapproved,
        now,
    } = *input;
    let mut counts = vec![Counts::default(); rings.len()];
    for t in targets {
        let Some(c) = counts.get_mut(t.ring) else {
            continue;
        };
        c.hosts += 1;
        if t.exempt.is_some() && t.progress == Progress::NotStarted {
            c.exempt += 1;
            continue;
        }
        if deferred_now(t, now).is_some() && t.progress == Progress::NotStarted {
            c.deferred += 1;
            continue;
        }
        match t.progress {
            Progress::NotStarted => {}
            Progress::Handed { .. } | Progress::InProgress { .. } => c.in_progress += 1,
            Progress::Succeeded { .. } => c.succeeded += 1,
            Progress::Failed { unhealthy, .. } => {
                c.failed += 1;
                c.unhealthy += usize::from(unhealthy);
            }
            Progress::RolledBack { .. } => c.rolled_back += 1,
        }
    }

    // A halt: a person's, or the first ring whose failures passed its
    // threshold.
    let mut halt = state.halted.clone().map(|reason| Halt::Manual { reason });
    if halt.is_none() {
        halt = rings.iter().zip(&counts).find_map(|(r, c)| {
            let counted = c.counted();
            (counted > 0 && c.failed * 100 > counted * r.halt_failure_percent as usize).then(|| {
                Halt::Failures {
                    ring: r.name.clone(),
                    failed: c.failed,
                    hosts: counted,
                    threshold: r.halt_failure_percent,
                }
            })
        });
    }

    // Rings in order: each may start once the one before passed its gate,
    // its wait is over and, if it asks, a person approved.
    let mut ring_plans: Vec<RingPlan> = Vec::with_capacity(rings.len());
    for (i, ring) in rings.iter().enumerate() {
        let started = state.ring_started.get(i).copied().flatten();
        let blocked = if started.is_some() {
            None
        } else if let Some(reason) = &state.unreleased {
            // Before anything else: a halt, a schedule or a gate may all
            // change, and none of them releases it.
            Some(RingWait::Unreleased {
                reason: reason.clone(),
            })
        } else if halt.is_some() {
            Some(RingWait::Halted)
        } else if i == 0 {
            state
                .starts
                .filter(|at| *at > now)
                .map(|at| RingWait::Scheduled { at })
        } else {
            let prev = &rings[i - 1];
            let prev_plan = &ring_plans[i - 1];
            match prev_plan.state {
                RingState::Waiting(_) | RingState::Running { .. } => {
                    let c = &prev_plan.counts;
                    Some(RingWait::Gate {
                        ring: prev.name.clone(),
                        succeeded: c.succeeded,
                        needed: gate_needed(prev, c),
                        unhealthy: c.unhealthy,
                    })
                }
                RingState::Passed {
                    started: prev_started,
                } => {
                    let from = prev_started.unwrap_or(now);
                    let until = calendar.business_days_after(from, ring.wait_business_days);
                    if until.is_none_or(|u| u > now) {
                        Some(RingWait::BusinessDays {
                            ring: prev.name.clone(),
                            days: ring.wait_business_days,
                            until,
                        })
                    } else {
                        None
                    }
                }
            }
        };
        let blocked = blocked.or_else(|| {
            let reason = unapproved
                .get(i)
                .cloned()
                .flatten()
                .filter(|_| started.is_none())?;
            Some(RingWait::NotApproved { reason })
        });
        let blocked = blocked.or_else(|| {
            (started.is_none()
                && ring.manual_approval
                && !state.ring_approved.get(i).copied().unwrap_or(false))
            .then_some(RingWait::Approval)
        });
        let c = counts[i];
        let ring_state = match blocked {
            Some(wait) => RingState::Waiting(wait),
            None if gate_met(ring, &c) => RingState::Passed { started },
            None => RingState::Running { started },
        };
        ring_plans.push(RingPlan {
            name: ring.name.clone(),
            state: ring_state,
            counts: c,
        });
    }

    // Hosts: ring order, critical first, then by id.
    let mut order: Vec<&Target> = targets.iter().filter(|t| t.ring < rings.len()).collect();
    order.sort_by(|a, b| {
        (a.ring, std::cmp::Reverse(a.criticality), &a.id).cmp(&(
            b.ring,
            std::cmp::Reverse(b.criticality),
            &b.id,
        ))
    });
    let limit = budget_limit(budget, targets.len());
    let mut in_progress: usize = counts.iter().map(|c| c.in_progress).sum();
    // Each group's budget: its limit over its hosts, and its hosts in
    // progress.
    let mut groups: Vec<(usize, usize)> = group_budgets
        .iter()
        .map(|g| {
            let members = targets.iter().filter(|t| t.groups.contains(&g.group));
            let (hosts, busy) = members.fold((0, 0), |(n, b), t| {
                (
                    n + 1,
                    b + usize::from(matches!(
                        t.progress,
                        Progress::Handed { .. } | Progress::InProgress { .. }
                    )),
                )
            });
            (budget_limit(g.budget, hosts), busy)
        })
        .collect();
    let expired = state.expires.is_some_and(|e| now >= e);
    let hosts: Vec<HostPlan> = order
        .into_iter()
        .map(|t| {
            let action = match &t.progress {
                Progress::Handed { since } => Action::Handed {
                    since: *since,
                    offline_since: (now.duration_since(t.last_seen) > offline_after)
                        .then_some(t.last_seen),
                },
                Progress::InProgress { since } => Action::InProgress { since: *since },
                Progress::Succeeded { .. } => Action::Succeeded,
                Progress::Failed { why, .. } => Action::Failed { why: why.clone() },
                Progress::RolledBack { .. } => Action::RolledBack,
                Progress::NotStarted => {
                    let full_group = group_budgets
                        .iter()
                        .zip(&groups)
                        .find(|(g, (limit, busy))| busy >= limit && t.groups.contains(&g.group));
                    if let Some(reason) = &t.exempt {
                        Action::Exempt {
                            reason: reason.clone(),
                        }
                    } else if let Some(d) = deferred_now(t, now) {
                        Action::Deferred {
                            until: d.until,
                            reason: d.reason.clone(),
                        }
                    } else if halt.is_some() {
                        Action::Halted
                    } else if expired {
                        Action::Expired
                    } else if let RingState::Waiting(wait) = &ring_plans[t.ring].state {
                        Action::WaitingForRing {
                            ring: rings[t.ring].name.clone(),
                            wait: wait.clone(),
                        }
                    } else if let WindowState::Closed { opens } = t.window {
                        Action::OutsideWindow { opens }
                    } else if in_progress >= limit {
                        Action::Queued {
                            in_progress,
                            limit,
                            group: None,
                        }
                    } else if let Some((g, (limit, busy))) = full_group {
                        Action::Queued {
                            in_progress: *busy,
                            limit: *limit,
                            group: Some(g.group.clone()),
                        }
                    } else {
                        in_progress += 1;
                        for (g, (_, busy)) in group_budgets.iter().zip(groups.iter_mut()) {
                            if t.groups.contains(&g.group) {
                                *busy += 1;
                            }
                        }
                        let offline = now.duration_since(t.last_seen) > offline_after;
                        Action::Start {
                            offline_since: offline.then_some(t.last_seen),
                        }
                    }
                }
            };
            HostPlan {
                id: t.id.clone(),
                ring: t.ring,
                action,
            }
        })
        .collect();
    // Complete: every gate met and no host left to act on (one queued,
    // deferred or outside its window still is). Once expired nothing more
    // starts, so it is complete when no job is out, whatever its gates.
    let complete = halt.is_none()
        && state.unreleased.is_none()
        && (expired
            || ring_plans
                .iter()
                .all(|r| matches!(r.state, RingState::Passed { .. })))
        && hosts.iter().all(|h| match h.action {
            Action::Succeeded
            | Action::Failed { .. }
            | Action::RolledBack
            | Action::Exempt { .. }
            | Action::Expired => true,
            Action::Handed { .. } | Action::InProgress { .. } | Action::Start { .. } => false,
            _ => expired,
        });
    Plan {
        generation: state.generation,
        at: now,
        rings: ring_plans,
        hosts,
        halt,
        complete,
    }
}

/// How many hosts a budget lets be in progress out of `hosts`.
fn budget_limit(budget: Budget, hosts: usize) -> usize {
    match budget {
        Budget::Unlimited => usize::MAX,
        Budget::Hosts(n) => n as usize,
        Budget::Percent(p) => (hosts * p as usize).div_ceil(100).max(1),
    }
}

/// A host's deferral, if it is in force now.
fn deferred_now(t: &Target, now: Timestamp) -> Option<&Deferred> {
    t.deferred.as_ref().filter(|d| d.until > now)
}

/// Whether a ring's success gate is met: enough successes and, when it
/// asks, no failed health check.
fn gate_met(ring: &Ring, c: &Counts) -> bool {
    c.succeeded >= gate_needed(ring, c) && !(ring.gate_healthy && c.unhealthy > 0)
}

/// How many of a ring's hosts must succeed for its gate: the share of its
/// hosts that are not exempt, and at least the minimum (or all of them, in
/// a smaller ring).
fn gate_needed(ring: &Ring, c: &Counts) -> usize {
    let counted = c.counted();
    let share = (counted * ring.gate_success_percent as usize).div_ceil(100);
    share.max((ring.gate_min_hosts as usize).min(counted))
}

impl Halt {
    /// The halt as people read it.
    pub fn describe(&self) -> String {
        match self {
            Halt::Manual { reason } => reason.clone(),
            Halt::Failures {
                ring,
                failed,
                hosts,
                threshold,
            } => format!(
                "{failed} of {hosts} hosts failed in ring {ring}, over its {threshold}% threshold"
            ),
        }
    }
}

impl RingState {
    /// Where the ring stands, as people read it.
    pub fn describe(&self) -> String {
        match self {
            RingState::Waiting(w) => format!("waiting: {}", wait_text(w)),
            RingState::Running { started: Some(t) } => format!("running since {}", human(t)),
            RingState::Running { started: None } => "starting now".into(),
            RingState::Passed { .. } => "passed".into(),
        }
    }
}

impl Action {
    /// What the host does and why, as people read it.
    pub fn describe(&self) -> String {
        match self {
            Action::Start {
                offline_since: None,
            } => "start".to_owned(),
            Action::Start {
                offline_since: Some(t),
            } => format!("start at its next check-in (offline since {})", human(t)),
            Action::WaitingForRing { ring, wait } => {
                format!("its ring {ring} has not started: {}", wait_text(wait))
            }
            Action::OutsideWindow { opens: Some(t) } => {
                format!(
                    "outside its maintenance window, which opens at {}",
                    human(t)
                )
            }
            Action::OutsideWindow { opens: None } => {
                "outside its maintenance window, which never opens".into()
            }
            Action::Queued {
                in_progress,
                limit,
                group: None,
            } => format!("queued: {in_progress} hosts in progress, the budget is {limit}"),
            Action::Queued {
                in_progress,
                limit,
                group: Some(g),
            } => format!(
                "queued: {in_progress} hosts of group {g} in progress, its budget is {limit}"
            ),
            Action::Deferred { until, reason } => {
                format!("deferred until {}: {reason}", human(until))
            }
            Action::Exempt { reason } => format!("exempt: {reason}"),
            Action::Handed {
                since,
                offline_since: None,
            } => format!(
                "job handed out at {}, not yet fetched by the host",
                human(since)
            ),
            Action::Handed {
                since,
                offline_since: Some(seen),
            } => format!(
                "job handed out at {}, waiting for the host: offline since {}",
                human(since),
                human(seen)
            ),
            Action::InProgress { since } => format!("in progress since {}", human(since)),
            Action::Succeeded => "succeeded".into(),
            Action::Failed { why } => format!("failed: {why}"),
            Action::RolledBack => "rolled back".into(),
            Action::Halted => "not started: the rollout is halted".into(),
            Action::Expired => "not started: the rollout expired".into(),
        }
    }
}

impl std::fmt::Display for Plan {
    /// The plan as people read it: one line per ring, then one per host.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "generation {} at {}", self.generation, self.at)?;
        if let Some(halt) = &self.halt {
            writeln!(f, "halted: {}", halt.describe())?;
        }
        for r in &self.rings {
            let c = r.counts;
            writeln!(
                f,
                "ring {}: {} hosts, {} succeeded, {} failed, {} in progress, {} exempt; {}",
                r.name,
                c.hosts,
                c.succeeded,
                c.failed,
                c.in_progress,
                c.exempt,
                r.state.describe()
            )?;
        }
        for h in &self.hosts {
            writeln!(
                f,
                "  {} [{}] {}",
                h.id,
                self.rings[h.ring].name,
                h.action.describe()
            )?;
        }
        Ok(())
    }
}

fn wait_text(w: &RingWait) -> String {
    match w {
        RingWait::Gate {
            ring,
            succeeded,
            needed,
            unhealthy: 0,
        } => format!("ring {ring} has {succeeded} of the {needed} successes it needs"),
        RingWait::Gate {
            ring,
            succeeded,
            needed,
            unhealthy,
        } => format!(
            "ring {ring} has {succeeded} of the {needed} successes it needs, and the health \
             check failed on {unhealthy} of its hosts"
        ),
        RingWait::BusinessDays {
            ring,
            days,
            until: Some(t),
        } => format!(
            "{days} business days after ring {ring} started, until {}",
            human(t)
        ),
        RingWait::BusinessDays {
            ring,
            days,
            until: None,
        } => format!("{days} business days after ring {ring} started, past the calendar's end"),
        RingWait::Approval => "a person must approve its start".into(),
        RingWait::Halted => "the rollout is halted".into(),
        RingWait::Scheduled { at } => format!("the rollout is scheduled to start at {}", human(at)),
        RingWait::NotApproved { reason } => reason.clone(),
        RingWait::Unreleased { reason } => format!("not released: {reason}"),
    }
}

/// A time as people read it: to the minute, in UTC (`2026-12-07 14:03
/// UTC`).
pub fn human(t: &Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use jiff::tz::TimeZone;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn fleet() -> Vec<Member> {
        (0..300)
            .map(|i| Member {
                id: format!("host-{i:03}"),
                os_release: match i % 15 {
                    0 => "ubuntu 22.04",
                    1..=4 => "debian 11",
                    _ => "debian 12",
                }
                .into(),
                model: if i % 3 == 0 {
                    "ThinkPad T14"
                } else {
                    "OptiPlex 7010"
                }
                .into(),
                department: if i % 2 == 0 { "finance" } else { "engineering" }.into(),
                criticality: (i % 7 == 0) as u8 * 3,
                pinned_pilot: i == 7 || i == 299,
            })
            .collect()
    }

    #[test]
    fn the_pilot_is_five_percent_across_every_stratum_with_the_pinned_hosts() {
        let members = fleet();
        let rings = classic_rings();
        let ring_of = assign(&rings, &members, 42);
        let pilot: Vec<&Member> = members
            .iter()
            .zip(&ring_of)
            .filter(|(_, &r)| r == 0)
            .map(|(m, _)| m)
            .collect();
        assert_eq!(pilot.len(), 15);
        assert!(pilot.iter().any(|m| m.id == "host-007"));
        assert!(pilot.iter().any(|m| m.id == "host-299"));
        for os in ["ubuntu 22.04", "debian 11", "debian 12"] {
            assert!(pilot.iter().any(|m| m.os_release == os), "no {os} host");
        }
        for dept in ["finance", "engineering"] {
            assert!(pilot.iter().any(|m| m.department == dept), "no {dept} host");
        }
        assert!(pilot.iter().any(|m| m.criticality == 3));
        assert!(pilot.iter().any(|m| m.model == "ThinkPad T14"));
        // Everyone else is in the broad ring.
        assert_eq!(ring_of.iter().filter(|&&r| r == 1).count(), 285);
        // The same seed gives the same rings; another seed other pilots.
        assert_eq!(assign(&rings, &members, 42), ring_of);
        assert_ne!(assign(&rings, &members, 43), ring_of);
    }

    #[test]
    fn small_fleets_still_get_a_pilot_and_rings_fill_in_order() {
        let members: Vec<Member> = fleet().into_iter().take(3).collect();
        let ring_of = assign(&classic_rings(), &members, 1);
        assert_eq!(ring_of.iter().filter(|&&r| r == 0).count(), 1);
        let mut three = classic_rings();
        three.insert(
            1,
            Ring {
                name: "early".into(),
                size: Size::Hosts(50),
                ..three[1].clone()
            },
        );
        let ring_of = assign(&three, &fleet(), 1);
        let per_ring: Vec<usize> = (0..3)
            .map(|r| ring_of.iter().filter(|&&x| x == r).count())
            .collect();
        assert_eq!(per_ring, [15, 50, 235]);
    }

    #[test]
    fn rings_are_checked() {
        let mut rings = classic_rings();
        assert_eq!(check_rings(&rings), Ok(()));
        rings[0].size = Size::Percent(0);
        assert_eq!(
            check_rings(&rings).unwrap_err().to_string(),
            "ring pilot: the size 0 is not a percentage from 1 to 100"
        );
        let mut rings = classic_rings();
        rings.swap(0, 1);
        assert_eq!(
            check_rings(&rings).unwrap_err().to_string(),
            "ring broad takes the rest, so it must be the last"
        );
        assert_eq!(check_rings(&[]), Err(RingsError::Empty));
    }

    fn calendar() -> Calendar {
        Calendar {
            tz: TimeZone::get("Europe/Berlin").unwrap(),
            // Monday 7 December 2026, a holiday for this test.
            holidays: [date(2026, 12, 7)].into_iter().collect(),
        }
    }

    fn target(id: &str, ring: usize, progress: Progress) -> Target {
        Target {
            id: id.into(),
            ring,
            criticality: 0,
            progress,
            exempt: None,
            last_seen: t("2026-12-04T09:00:00Z"),
            window: WindowState::Open { until: None },
            deferred: None,
            groups: Vec::new(),
        }
    }

    fn state(pilot_started: Option<&str>) -> RolloutState {
        RolloutState {
            generation: 3,
            ring_started: vec![pilot_started.map(t), None],
            ring_approved: vec![false, false],
            halted: None,
            expires: None,
            starts: None,
            unreleased: None,
        }
    }

    fn make(targets: &[Target], state: &RolloutState, budget: Budget, now: &str) -> Plan {
        let rings = classic_rings();
        plan(&Input {
            rings: &rings,
            targets,
            state,
            calendar: &calendar(),
            budget,
            group_budgets: &[],
            offline_after: SignedDuration::from_hours(24),
            unapproved: &[],
            now: t(now),
        })
    }

    #[test]
    fn a_ring_waits_until_what_it_installs_is_approved_for_it() {
        let targets = vec![
            target(
                "p1",
                0,
                Progress::Succeeded {
                    at: t("2026-12-04T12:00:00Z"),
                },
            ),
            target("b1", 1, Progress::NotStarted),
        ];
        let rings = classic_rings();
        let held = [
            None,
            Some("libssl3=3.0.16-1~deb12u1 is approved for ring pilot only".to_owned()),
        ];
        let input = |unapproved: &'_ [Option<String>]| {
            plan(&Input {
                rings: &rings,
                targets: &targets,
                state: &state(Some("2026-12-04T09:00:00Z")),
                calendar: &calendar(),
                budget: Budget::Unlimited,
                group_budgets: &[],
                offline_after: SignedDuration::from_hours(24),
                unapproved,
                now: t("2026-12-21T09:00:00Z"),
            })
        };
        // The pilot passed and the wait is over: only the approval holds.
        let p = input(&held);
        assert_eq!(
            p.rings[1].state,
            RingState::Waiting(RingWait::NotApproved {
                reason: "libssl3=3.0.16-1~deb12u1 is approved for ring pilot only".into()
            })
        );
        assert_eq!(
            p.hosts[1].action.describe(),
            "its ring broad has not started: libssl3=3.0.16-1~deb12u1 is approved for ring pilot only"
        );
        assert!(!p.complete);
        let p = input(&[]);
        assert!(matches!(p.hosts[1].action, Action::Start { .. }));
    }

    #[test]
    fn the_gate_needs_its_minimum_of_hosts_whatever_the_share() {
        let done = || Progress::Succeeded {
            at: t("2026-12-04T12:00:00Z"),
        };
        let mut targets: Vec<Target> = (0..10)
            .map(|i| target(&format!("p{i}"), 0, Progress::NotStarted))
            .collect();
        targets.push(target("b1", 1, Progress::NotStarted));
        let mut rings = classic_rings();
        rings[0].gate_success_percent = 10;
        rings[0].gate_min_hosts = 3;
        rings[1].wait_business_days = 0;
        let run = |targets: &[Target]| {
            plan(&Input {
                rings: &rings,
                targets,
                state: &state(Some("2026-12-04T09:00:00Z")),
                calendar: &calendar(),
                budget: Budget::Unlimited,
                group_budgets: &[],
                offline_after: SignedDuration::from_hours(24),
                unapproved: &[],
                now: t("2026-12-04T13:00:00Z"),
            })
        };
        // 10% of ten is one host; the minimum asks for three.
        targets[0].progress = done();
        targets[1].progress = done();
        assert_eq!(
            run(&targets).rings[1].state,
            RingState::Waiting(RingWait::Gate {
                ring: "pilot".into(),
                succeeded: 2,
                needed: 3,
                unhealthy: 0,
            })
        );
        targets[2].progress = done();
        assert!(matches!(
            run(&targets).rings[1].state,
            RingState::Running { .. }
        ));
    }

    #[test]
    fn a_scheduled_rollout_starts_at_its_time() {
        let targets = vec![
            target("p1", 0, Progress::NotStarted),
            target("b1", 1, Progress::NotStarted),
        ];
        let mut scheduled = state(None);
        scheduled.starts = Some(t("2026-12-08T22:00:00Z"));
        let before = make(
            &targets,
            &scheduled,
            Budget::Unlimited,
            "2026-12-08T21:59:00Z",
        );
        assert_eq!(
            before.rings[0].state,
            RingState::Waiting(RingWait::Scheduled {
                at: t("2026-12-08T22:00:00Z")
            })
        );
        assert_eq!(
            before.hosts[0].action.describe(),
            "its ring pilot has not started: the rollout is scheduled to start at 2026-12-08 22:00 UTC"
        );
        let after = make(
            &targets,
            &scheduled,
            Budget::Unlimited,
            "2026-12-08T22:00:01Z",
        );
        assert_eq!(after.rings[0].state, RingState::Running { started: None });
        assert!(
            matches!(after.hosts[0].action, Action::Start { .. }),
            "{:?}",
            after.hosts[0].action
        );
    }

    #[test]
    fn an_unreleased_rollout_starts_no_ring_whatever_its_schedule_or_halt() {
        let targets = vec![
            target("p1", 0, Progress::NotStarted),
            target("b1", 1, Progress::NotStarted),
        ];
        let mut held = state(None);
        held.unreleased = Some("it runs a pre_hook as root".into());
        // Its scheduled start came and went, and a halt was lifted: still
        // nothing starts.
        held.starts = Some(t("2026-12-08T22:00:00Z"));
        let p = make(&targets, &held, Budget::Unlimited, "2026-12-09T09:00:00Z");
        let wait = RingWait::Unreleased {
            reason: "it runs a pre_hook as root".into(),
        };
        assert_eq!(p.rings[0].state, RingState::Waiting(wait));
        assert!(
            p.hosts
                .iter()
                .all(|h| !matches!(h.action, Action::Start { .. })),
            "{p}"
        );
        assert_eq!(
            p.hosts[0].action.describe(),
            "its ring pilot has not started: not released: it runs a pre_hook as root"
        );
        assert!(!p.complete);
        held.unreleased = None;
        let p = make(&targets, &held, Budget::Unlimited, "2026-12-09T09:00:00Z");
        assert!(matches!(p.hosts[0].action, Action::Start { .. }), "{p}");
    }

    #[test]
    fn the_broad_ring_waits_for_the_pilot_then_two_business_days() {
        let done = Progress::Succeeded {
            at: t("2026-12-04T12:00:00Z"),
        };
        let mut targets = vec![
            target("p1", 0, done.clone()),
            target("p2", 0, Progress::NotStarted),
            target("b1", 1, Progress::NotStarted),
        ];
        // Friday 4 December, 10:00 in Berlin: the pilot started at 09:00 UTC.
        let started = state(Some("2026-12-04T09:00:00Z"));
        let p = make(
            &targets,
            &started,
            Budget::Unlimited,
            "2026-12-04T13:00:00Z",
        );
        assert_eq!(
            p.hosts[2].action,
            Action::WaitingForRing {
                ring: "broad".into(),
                wait: RingWait::Gate {
                    ring: "pilot".into(),
                    succeeded: 1,
                    needed: 2,
                    unhealthy: 0,
                }
            }
        );
        assert_eq!(
            p.hosts[1].action,
            Action::Start {
                offline_since: None
            }
        );

        // The pilot succeeded. Two business days from Friday, skipping the
        // weekend and Monday's holiday: Wednesday 9 December, 10:00 Berlin.
        targets[1].progress = done;
        let p = make(
            &targets,
            &started,
            Budget::Unlimited,
            "2026-12-08T15:00:00Z",
        );
        assert_eq!(
            p.rings[1].state,
            RingState::Waiting(RingWait::BusinessDays {
                ring: "pilot".into(),
                days: 2,
                until: Some(t("2026-12-09T09:00:00Z"))
            })
        );
        let p = make(
            &targets,
            &started,
            Budget::Unlimited,
            "2026-12-09T09:00:00Z",
        );
        assert_eq!(p.rings[1].state, RingState::Running { started: None });
        // b1 has not checked in since Friday: it gets its job when it does.
        assert_eq!(
            p.hosts[2].action,
            Action::Start {
                offline_since: Some(t("2026-12-04T09:00:00Z"))
            }
        );
        assert!(!p.complete);
        assert_eq!(p.check_generation(3), Ok(()));
        assert_eq!(
            p.check_generation(4).unwrap_err().to_string(),
            "the plan is for generation 3 of the rollout, which is now at generation 4"
        );
    }

    #[test]
    fn failures_over_the_threshold_halt_the_rollout() {
        let mut targets: Vec<Target> = (0..10)
            .map(|i| target(&format!("p{i}"), 0, Progress::NotStarted))
            .collect();
        targets.push(target("b1", 1, Progress::NotStarted));
        targets[0].progress = Progress::Failed {
            at: t("2026-12-04T10:00:00Z"),
            why: "dpkg exit 1".into(),
            unhealthy: false,
        };
        let started = state(Some("2026-12-04T09:00:00Z"));
        // One failure in ten is 10%: at the threshold, not over it.
        let p = make(
            &targets,
            &started,
            Budget::Unlimited,
            "2026-12-04T11:00:00Z",
        );
        assert_eq!(p.halt, None);
        targets[1].progress = targets[0].progress.clone();
        let p = make(
            &targets,
            &started,
            Budget::Unlimited,
            "2026-12-04T11:00:00Z",
        );
        assert_eq!(
            p.halt,
            Some(Halt::Failures {
                ring: "pilot".into(),
                failed: 2,
                hosts: 10,
                threshold: 10
            })
        );
        assert_eq!(p.hosts[2].action, Action::Halted);
        assert_eq!(p.rings[1].state, RingState::Waiting(RingWait::Halted));
        // A person's halt stops it too.
        let mut halted = state(Some("2026-12-04T09:00:00Z"));
        halted.halted = Some("printing broke in finance".into());
        targets[1].progress = Progress::NotStarted;
        let p = make(&targets, &halted, Budget::Unlimited, "2026-12-04T11:00:00Z");
        assert!(p.to_string().contains("halted: printing broke in finance"));
    }

    #[test]
    fn a_plan_explains_every_host() {
        let mut targets = vec![
            target("a-low", 0, Progress::NotStarted),
            target("b-exempt", 0, Progress::NotStarted),
            target("c-closed", 0, Progress::NotStarted),
            target("d-running", 0, Progress::NotStarted),
            target("e-offline", 0, Progress::NotStarted),
            target("f-later", 0, Progress::NotStarted),
            target("z-critical", 0, Progress::NotStarted),
            target("broad-1", 1, Progress::NotStarted),
        ];
        targets[1].exempt = Some("lab instrument, vendor certifies updates".into());
        targets[2].window = WindowState::Closed {
            opens: Some(t("2026-12-05T00:00:00Z")),
        };
        targets[3].progress = Progress::InProgress {
            since: t("2026-12-04T09:30:00Z"),
        };
        targets[4].last_seen = t("2026-11-20T08:00:00Z");
        targets[6].criticality = 3;
        let p = make(
            &targets,
            &state(None),
            Budget::Hosts(3),
            "2026-12-04T10:00:00Z",
        );
        assert_eq!(
            p.to_string(),
            "\
generation 3 at 2026-12-04T10:00:00Z
ring pilot: 7 hosts, 0 succeeded, 0 failed, 1 in progress, 1 exempt; starting now
ring broad: 1 hosts, 0 succeeded, 0 failed, 0 in progress, 0 exempt; waiting: ring pilot has 0 of the 6 successes it needs
  z-critical [pilot] start
  a-low [pilot] start
  b-exempt [pilot] exempt: lab instrument, vendor certifies updates
  c-closed [pilot] outside its maintenance window, which opens at 2026-12-05 00:00 UTC
  d-running [pilot] in progress since 2026-12-04 09:30 UTC
  e-offline [pilot] queued: 3 hosts in progress, the budget is 3
  f-later [pilot] queued: 3 hosts in progress, the budget is 3
  broad-1 [broad] its ring broad has not started: ring pilot has 0 of the 6 successes it needs
"
        );
        // With room in the budget the offline host gets its job at its next
        // check-in; an expired rollout hands out nothing more.
        let p = make(
            &targets,
            &state(None),
            Budget::Percent(100),
            "2026-12-04T10:00:00Z",
        );
        assert_eq!(
            p.hosts[5].action,
            Action::Start {
                offline_since: Some(t("2026-11-20T08:00:00Z"))
            }
        );
        // Once its job is handed out, the offline host's line says it waits
        // for that host, and since when the host has been away.
        targets[4].progress = Progress::Handed {
            since: t("2026-12-04T10:00:00Z"),
        };
        let p = make(
            &targets,
            &state(None),
            Budget::Percent(100),
            "2026-12-04T12:00:00Z",
        );
        let offline = p.hosts.iter().find(|h| h.id == "e-offline").unwrap();
        assert_eq!(
            offline.action.describe(),
            "job handed out at 2026-12-04 10:00 UTC, waiting for the host: offline since 2026-11-20 08:00 UTC"
        );
        assert_eq!(p.rings[0].counts.in_progress, 2);
        targets[4].progress = Progress::NotStarted;
        let mut expired = state(None);
        expired.expires = Some(t("2026-12-04T00:00:00Z"));
        let p = make(
            &targets,
            &expired,
            Budget::Unlimited,
            "2026-12-04T10:00:00Z",
        );
        assert_eq!(p.hosts[0].action, Action::Expired);
        // d-running's job is still out: not complete until it ends, though
        // the pilot's gate (95%) can no longer be met.
        assert!(!p.complete);
        targets[3].progress = Progress::Succeeded {
            at: t("2026-12-04T09:45:00Z"),
        };
        let p = make(
            &targets,
            &expired,
            Budget::Unlimited,
            "2026-12-04T10:00:00Z",
        );
        assert!(
            matches!(p.rings[0].state, RingState::Running { .. }),
            "{:?}",
            p.rings[0].state
        );
        assert!(p.complete, "nothing more starts once expired");
    }

    #[test]
    fn a_ring_that_asks_waits_for_a_person() {
        let mut rings = classic_rings();
        rings[0].manual_approval = true;
        let targets = vec![target("p1", 0, Progress::NotStarted)];
        let mut s = state(None);
        let input = |s: &RolloutState| {
            plan(&Input {
                rings: &rings,
                targets: &targets,
                state: s,
                calendar: &calendar(),
                budget: Budget::Unlimited,
                group_budgets: &[],
                offline_after: SignedDuration::from_hours(24),
                unapproved: &[],
                now: t("2026-12-04T10:00:00Z"),
            })
        };
        assert_eq!(
            input(&s).rings[0].state,
            RingState::Waiting(RingWait::Approval)
        );
        s.ring_approved[0] = true;
        assert_eq!(
            input(&s).hosts[0].action,
            Action::Start {
                offline_since: None
            }
        );
    }

    #[test]
    fn a_failed_health_check_holds_the_next_ring_back() {
        // Twenty pilot hosts, nineteen succeeded: 95% is met, but the one
        // that failed failed its health check.
        let done = Progress::Succeeded {
            at: t("2026-12-04T12:00:00Z"),
        };
        let mut targets: Vec<Target> = (0..20)
            .map(|i| target(&format!("p{i:02}"), 0, done.clone()))
            .collect();
        targets[0].progress = Progress::Failed {
            at: t("2026-12-04T12:00:00Z"),
            why: "health check failed: exit 1".into(),
            unhealthy: true,
        };
        targets.push(target("b1", 1, Progress::NotStarted));
        let started = state(Some("2026-12-04T09:00:00Z"));
        let p = make(
            &targets,
            &started,
            Budget::Unlimited,
            "2026-12-10T09:00:00Z",
        );
        assert_eq!(
            p.rings[0].state,
            RingState::Running {
                started: Some(t("2026-12-04T09:00:00Z"))
            }
        );
        assert_eq!(
            p.hosts[20].action.describe(),
            "its ring broad has not started: ring pilot has 19 of the 19 successes it needs, \
             and the health check failed on 1 of its hosts"
        );
        // A ring that does not ask for healthy hosts lets it through; so
        // does an ordinary failure.
        let mut rings = classic_rings();
        rings[0].gate_healthy = false;
        let lenient = plan(&Input {
            rings: &rings,
            targets: &targets,
            state: &started,
            calendar: &calendar(),
            budget: Budget::Unlimited,
            group_budgets: &[],
            offline_after: SignedDuration::from_hours(24),
            unapproved: &[],
            now: t("2026-12-10T09:00:00Z"),
        });
        assert_eq!(lenient.rings[1].state, RingState::Running { started: None });
        targets[0].progress = Progress::Failed {
            at: t("2026-12-04T12:00:00Z"),
            why: "dpkg exit 100".into(),
            unhealthy: false,
        };
        let p = make(
            &targets,
            &started,
            Budget::Unlimited,
            "2026-12-10T09:00:00Z",
        );
        assert_eq!(p.rings[1].state, RingState::Running { started: None });
    }

    #[test]
    fn a_granted_deferral_holds_one_host_until_it_ends_and_does_not_block_the_gate() {
        let done = Progress::Succeeded {
            at: t("2026-12-04T12:00:00Z"),
        };
        let mut targets = vec![
            target("p1", 0, done.clone()),
            target("p2", 0, Progress::NotStarted),
            target("b1", 1, Progress::NotStarted),
        ];
        targets[1].deferred = Some(Deferred {
            until: t("2026-12-11T00:00:00Z"),
            reason: "quarter-end close (granted by carol)".into(),
        });
        let started = state(Some("2026-12-04T09:00:00Z"));
        let p = make(
            &targets,
            &started,
            Budget::Unlimited,
            "2026-12-09T10:00:00Z",
        );
        assert_eq!(
            p.hosts[1].action.describe(),
            "deferred until 2026-12-11 00:00 UTC: quarter-end close (granted by carol)"
        );
        assert_eq!(p.rings[0].counts.deferred, 1);
        assert!(!p.complete, "a deferred host is still to do");
        // The pilot's gate counts p1 alone, so the broad ring may start.
        assert_eq!(p.rings[1].state, RingState::Running { started: None });
        // Once the deferral ends, the host starts like any other.
        let p = make(
            &targets,
            &started,
            Budget::Unlimited,
            "2026-12-11T00:00:00Z",
        );
        assert_eq!(
            p.hosts[1].action,
            Action::Start {
                offline_since: Some(t("2026-12-04T09:00:00Z"))
            }
        );
    }

    #[test]
    fn a_group_budget_caps_its_hosts_in_progress() {
        let mut targets: Vec<Target> = (0..6)
            .map(|i| target(&format!("h{i}"), 0, Progress::NotStarted))
            .collect();
        for t in &mut targets[..4] {
            t.groups = vec!["finance".into()];
        }
        targets[0].progress = Progress::InProgress {
            since: t("2026-12-04T09:30:00Z"),
        };
        let rings = classic_rings();
        let budgets = [GroupBudget {
            group: "finance".into(),
            budget: Budget::Percent(50),
        }];
        let p = plan(&Input {
            rings: &rings,
            targets: &targets,
            state: &state(None),
            calendar: &calendar(),
            budget: Budget::Hosts(3),
            group_budgets: &budgets,
            offline_after: SignedDuration::from_hours(24),
            unapproved: &[],
            now: t("2026-12-04T10:00:00Z"),
        });
        let actions: Vec<String> = p.hosts.iter().map(|h| h.action.describe()).collect();
        assert_eq!(
            actions,
            [
                "in progress since 2026-12-04 09:30 UTC",
                "start",
                "queued: 2 hosts of group finance in progress, its budget is 2",
                "queued: 2 hosts of group finance in progress, its budget is 2",
                "start",
                "queued: 3 hosts in progress, the budget is 3",
            ]
        );
    }
}
