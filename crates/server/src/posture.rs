//! The fleet's posture at a glance: how many hosts are compliant, how many
//! fully patched, where each class's deadlines stand, known-exploited
//! exposure and end-of-life systems. The dashboard and the monthly report
//! show it, each figure beside its definition ([`COMPLIANT`],
//! [`FULLY_PATCHED`]).
//!
//! Only findings count: hosts affected by security advisories (or offered
//! a security suite's update). An ordinary suite's newer version is an
//! available update and never counts against a host.
//!
//! It reads every open (host, advisory) pair the fleet holds, classifies
//! it for that host and reads its SLA clock from the first detection, the
//! same way a host's findings are assessed. That is work proportional to
//! the fleet, so the result is kept until the fleet changes or a minute
//! passes; when working it out takes longer than a page may (a large
//! fleet: seconds), a page gets the kept one, which says when it was worked
//! out, while a background task works out the next (`kept`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use patchwell_core::classify::Class;
use patchwell_core::sla;
use store::{DetectionStore, HostFilter, HostStore};

use crate::handlers::{now, ApiResult};
use crate::plan_api::Planning;
use crate::AppState;

/// What "compliant" means, shown beside the figure.
pub(crate) const COMPLIANT: &str = "compliant: no open security finding past its deadline, \
     and at or above every baseline of its groups (exempt findings do not count against a host)";

/// What "fully patched" means, shown beside the figure.
pub(crate) const FULLY_PATCHED: &str =
    "fully patched: no open security finding at all, exempt or not, whatever its deadline";

/// Findings of one class across the fleet, by where their clocks stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClassCounts {
    /// Open (not exempt) findings.
    pub(crate) open: usize,
    /// Of those, past their deadline.
    pub(crate) breached: usize,
    /// Of those, due soon.
    pub(crate) due_soon: usize,
    /// Findings an exemption covers.
    pub(crate) exempt: usize,
}

/// The fleet's posture now.
#[derive(Debug, Clone)]
pub struct Posture {
    /// When it was worked out.
    pub(crate) at: Timestamp,
    /// The fleet's generation it was worked out from: behind the fleet's
    /// when hosts have reported since.
    pub(crate) generation: u64,
    /// Hosts not revoked.
    pub(crate) hosts: usize,
    /// Hosts compliant as [`COMPLIANT`] says: no open finding past its
    /// deadline (exempt ones do not count against), and no baseline
    /// broken.
    pub(crate) compliant: usize,
    /// Hosts with no open finding at all ([`FULLY_PATCHED`]).
    pub(crate) fully_patched: usize,
    /// Hosts below a baseline of one of their groups.
    pub(crate) below_baseline: usize,
    /// Hosts not heard from for the stale period.
    pub(crate) stale: usize,
    /// Hosts waiting for a reboot.
    pub(crate) reboot_required: usize,
    /// Critical, High, Medium, Low.
    pub(crate) classes: [(Class, ClassCounts); 4],
    /// Hosts with at least one open known-exploited finding.
    pub(crate) kev_hosts: usize,
    /// Hosts with a breached deadline.
    pub(crate) breached_hosts: usize,
    /// OS releases out of (regular) support: release, support state,
    /// hosts.
    pub(crate) end_of_life: Vec<(String, String, usize)>,
    /// Findings first detected and no longer open: fixed, with their class
    /// and deadline. Only judged once the fleet is loaded, for hosts still
    /// enrolled and advisories still in the catalog.
    pub(crate) fixed: Vec<store::Fixed>,
    /// Open findings with no first detection recorded yet.
    pub(crate) undetected: Vec<(String, String)>,
}

impl Posture {
    /// The counts as kept per day (`posture_days`) and read back by
    /// reports.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut classes = serde_json::Map::new();
        for (class, c) in &self.classes {
            classes.insert(
                class.as_str().to_owned(),
                serde_json::json!({"open": c.open, "breached": c.breached, "due_soon": c.due_soon, "exempt": c.exempt}),
            );
        }
        serde_json::json!({
            "at": self.at,
            "hosts": self.hosts,
            "compliant": self.compliant,
            "compliance_percent": self.compliance_percent(),
            "compliance_definition": COMPLIANT,
            "fully_patched": self.fully_patched,
            "fully_patched_percent": self.fully_patched_percent(),
            "fully_patched_definition": FULLY_PATCHED,
            "below_baseline": self.below_baseline,
            "stale": self.stale,
            "reboot_required": self.reboot_required,
            "kev_hosts": self.kev_hosts,
            "breached_hosts": self.breached_hosts,
            "classes": classes,
        })
    }

    /// Whether hosts have reported since it was worked out.
    pub(crate) fn is_behind(&self, state: &AppState) -> bool {
        self.generation != state.fleet.generation()
    }

    /// Compliant hosts as a percentage (100 for an empty fleet).
    pub(crate) fn compliance_percent(&self) -> f64 {
        percent(self.compliant, self.hosts)
    }

    /// Fully patched hosts as a percentage (100 for an empty fleet).
    pub(crate) fn fully_patched_percent(&self) -> f64 {
        percent(self.fully_patched, self.hosts)
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        100.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The last posture worked out, with the fleet generation it was for.
pub type PostureCache = crate::kept::Kept<Posture>;

/// How long a posture is kept when the fleet does not change.
const KEEP: SignedDuration = SignedDuration::from_secs(60);

/// The fleet's posture: the kept one while the fleet is as it was and it
/// is younger than a minute; else worked out again, for this caller when
/// that is quick, or in the background (the caller getting the kept one)
/// when it is not.
pub(crate) async fn current(state: &AppState) -> ApiResult<Arc<Posture>> {
    let (generation, at) = (state.fleet.generation(), now(state));
    let s = state.clone();
    let (_, p) = state
        .posture
        .get(generation, at, KEEP, move || async move {
            work_out(&s, at).await
        })
        .await?;
    Ok(p)
}

/// The posture, as [`current`] gives it, unless the first one since the
/// server started is still being worked out after `patience`.
pub(crate) async fn current_within(
    state: &AppState,
    patience: std::time::Duration,
) -> ApiResult<Option<Arc<Posture>>> {
    // Before the fleet is loaded no host has a finding yet: a posture
    // worked out now would read as all compliant.
    if !state.fleet.loaded() {
        return Ok(None);
    }
    let (generation, at) = (state.fleet.generation(), now(state));
    let s = state.clone();
    let kept = state
        .posture
        .get_within(generation, at, KEEP, patience, move || async move {
            work_out(&s, at).await
        })
        .await?;
    Ok(kept.map(|(_, p)| p))
}

/// `GET /api/v1/summary/posture`: the posture as [`current`] gives it,
/// with the end-of-life systems.
pub(crate) async fn summary(
    axum::extract::State(state): axum::extract::State<AppState>,
    _caller: crate::auth::Reader,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let p = current(&state).await?;
    let mut v = p.to_json();
    v["end_of_life"] = serde_json::json!(p.end_of_life);
    Ok(axum::Json(v))
}

/// Works the posture out now and keeps it.
async fn refresh(state: &AppState) -> ApiResult<Arc<Posture>> {
    let (generation, at) = (state.fleet.generation(), now(state));
    let (_, p) = state
        .posture
        .refresh(generation, at, || work_out(state, at))
        .await?;
    Ok(p)
}

/// Keeps today's posture, every ten minutes, for compliance over time.
/// The first is worked out as soon as the fleet is loaded, so that the
/// first page to show it finds it ready.
pub(crate) async fn record_daily(state: AppState) {
    while !state.fleet.loaded() {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        ticks.tick().await;
        if let Err(e) = record_now(&state).await {
            tracing::warn!("keeping today's posture: {}", e.message());
        }
    }
}

/// Works out the posture now and keeps it as today's (what the server
/// does every ten minutes); says why when it could not.
pub async fn keep_today(state: &AppState) -> Result<(), String> {
    record_now(state).await.map_err(|e| e.message().to_owned())
}

/// Works out the posture and keeps it as today's, with what a report of
/// this month tells besides the counts: the top risks, the end-of-life
/// systems and the updates waiting for a decision, as they are now.
async fn record_now(state: &AppState) -> ApiResult<()> {
    let p = refresh(state).await?;
    let day = p.at.to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
    // Fixes move to the remediations (a fix recorded already is skipped),
    // and open findings get a first detection if they have none.
    let fixed = state.store.record_remediations(&p.fixed, p.at).await?;
    if fixed > 0 {
        tracing::info!(findings = fixed, "Findings fixed since the last look.");
    }
    let undetected: Vec<(&str, &str)> = p
        .undetected
        .iter()
        .map(|(h, a)| (h.as_str(), a.as_str()))
        .collect();
    state.store.record_detections(&undetected, p.at).await?;
    let mut kept = p.to_json();
    kept["end_of_life"] = serde_json::json!(p.end_of_life);
    kept["risks"] = crate::catalog_api::exposure_now(state, TOP_RISKS);
    kept["pending"] = serde_json::Value::Array(
        crate::plan_api::offered_now(state)
            .await?
            .into_iter()
            .filter(|u| u["decision"].is_null())
            .collect(),
    );
    store::DetectionStore::record_posture(&state.store, &day, &kept.to_string(), p.at).await?;
    Ok(())
}

/// How many top risks a report shows, and a kept day keeps.
pub(crate) const TOP_RISKS: usize = 10;

async fn work_out(state: &AppState, at: Timestamp) -> ApiResult<Posture> {
    let generation = state.fleet.generation();
    let planning = Planning::load(state).await?;
    let catalog = state.catalog.get();
    let index = &catalog.index;
    let stale_after = state.config.stale_after;
    let hosts = state
        .store
        .list_hosts(&HostFilter::default(), at, stale_after)
        .await?;
    let detections = state.store.all_detections().await?;
    let below = crate::plan_api::below_baselines(state, &planning, &hosts, at).await?;
    // Each host's first detections, to find those no longer open.
    let judge_fixes = state.fleet.loaded();
    let mut detected: HashMap<&str, Vec<(&str, Timestamp)>> = HashMap::new();
    if judge_fixes {
        for ((host, advisory), first) in &detections {
            detected
                .entry(host.as_str())
                .or_default()
                .push((advisory.as_str(), *first));
        }
    }
    let (mut fixed, mut undetected) = (Vec::new(), Vec::new());
    let today = at.to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut classes = [
        (Class::Critical, ClassCounts::default()),
        (Class::High, ClassCounts::default()),
        (Class::Medium, ClassCounts::default()),
        (Class::Low, ClassCounts::default()),
    ];
    let slot = |c: Class| match c {
        Class::Critical => 0,
        Class::High => 1,
        Class::Medium => 2,
        Class::Low => 3,
    };
    let (mut compliant, mut stale, mut reboot, mut kev_hosts, mut breached_hosts) = (0, 0, 0, 0, 0);
    let mut fully_patched = 0;
    let mut eol: BTreeMap<(String, String), usize> = BTreeMap::new();
    for h in &hosts {
        stale += usize::from(h.is_stale(at, stale_after));
        reboot += usize::from(h.reboot_required);
        if let (Some(os), version) = (h.os_id.as_deref(), h.os_version.as_deref()) {
            if let Some(f) = index.lifecycle_of(os, version, today) {
                let release = format!("{} {}", os, version.unwrap_or(""));
                *eol.entry((release, f.support.as_str().to_owned()))
                    .or_default() += 1;
            }
        }
        let (mut kev, mut breached) = (false, false);
        let findings = planning.fleet_findings(state, index, h, at);
        fully_patched += usize::from(findings.is_empty());
        if let Some(first_seen) = detected.get(h.id.as_str()) {
            let open_now: HashSet<&str> = findings.iter().map(|f| f.advisory.id.as_str()).collect();
            let gone = first_seen
                .iter()
                .filter(|(a, _)| !open_now.contains(a))
                .filter_map(|(a, first)| {
                    let advisory = index.advisory(index.position(a)?)?;
                    Some((advisory, *first))
                });
            let (gone, firsts): (Vec<_>, Vec<_>) = gone.unzip();
            let classified = planning.findings_of(state, index, h, gone.into_iter(), at);
            for (f, first) in classified.iter().zip(firsts) {
                let clock = sla::clock(
                    &planning.sla,
                    f.class,
                    f.advisory.published,
                    first,
                    &paused_by(f),
                    at,
                );
                fixed.push(store::Fixed {
                    host_id: h.id.clone(),
                    advisory_id: f.advisory.id.clone(),
                    class: f.class.as_str().to_owned(),
                    due: clock.deadline,
                });
            }
        }
        for f in findings {
            let counts = &mut classes[slot(f.class)].1;
            if f.exempt {
                counts.exempt += 1;
                continue;
            }
            let a = f.advisory;
            let first = match detections.get(&(h.id.clone(), a.id.clone())) {
                Some(first) => *first,
                None => {
                    undetected.push((h.id.clone(), a.id.clone()));
                    at
                }
            };
            let clock = sla::clock(
                &planning.sla,
                f.class,
                a.published,
                first,
                &paused_by(&f),
                at,
            );
            counts.open += 1;
            kev |= f.kev;
            match clock.state {
                sla::State::Breached => {
                    counts.breached += 1;
                    breached = true;
                }
                sla::State::DueSoon => counts.due_soon += 1,
                sla::State::Within | sla::State::Exempt => {}
            }
        }
        compliant += usize::from(!breached && !below.contains_key(&h.id));
        kev_hosts += usize::from(kev);
        breached_hosts += usize::from(breached);
    }
    // Fixes are judged on one catalog: if another was put in force while
    // this ran (the fleet's findings are then positions in its index), none
    // is judged fixed this time; the next look judges them.
    if !std::sync::Arc::ptr_eq(&catalog, &state.catalog.get()) || !state.fleet.uses_index(index) {
        fixed.clear();
    }
    let mut end_of_life: Vec<(String, String, usize)> =
        eol.into_iter().map(|((r, s), n)| (r, s, n)).collect();
    end_of_life.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    Ok(Posture {
        generation,
        at,
        hosts: hosts.len(),
        compliant,
        fully_patched,
        below_baseline: below.len(),
        stale,
        reboot_required: reboot,
        classes,
        kev_hosts,
        breached_hosts,
        end_of_life,
        fixed,
        undetected,
    })
}

/// Records the findings of one host that its inventory just showed fixed:
/// each advisory first detected on the host that no longer applies moves
/// to the remediations with its class and deadline, now, so that the
/// dashboard, reports and remediation counts move at the inventory that
/// fixed it. A failure is logged; the ten-minute pass records it then.
pub(crate) async fn record_fixes(state: &AppState, host_id: &str) {
    match fixes_of(state, host_id).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(host = %host_id, findings = n, "Findings fixed."),
        Err(e) => tracing::warn!(host = %host_id, "recording fixed findings: {}", e.message()),
    }
}

async fn fixes_of(state: &AppState, host_id: &str) -> ApiResult<usize> {
    let detections = state.store.detections(host_id).await?;
    if detections.is_empty() {
        return Ok(0);
    }
    let catalog = state.catalog.get();
    let index = &catalog.index;
    // Fixes are judged on the catalog the fleet's findings come from.
    if !state.fleet.uses_index(index) {
        return Ok(0);
    }
    let open: HashSet<u32> = state.fleet.host_advisories(host_id).into_iter().collect();
    let (gone, firsts): (Vec<_>, Vec<_>) = detections
        .iter()
        .filter_map(|(a, first)| {
            let pos = index.position(a)?;
            (!open.contains(&pos)).then_some((index.advisory(pos)?, *first))
        })
        .unzip();
    if gone.is_empty() {
        return Ok(0);
    }
    let Some(host) = state.store.host(host_id).await? else {
        return Ok(0);
    };
    let planning = Planning::load(state).await?;
    let at = now(state);
    let fixed: Vec<store::Fixed> = planning
        .findings_of(state, index, &host, gone.into_iter(), at)
        .iter()
        .zip(firsts)
        .map(|(f, first)| {
            let clock = sla::clock(
                &planning.sla,
                f.class,
                f.advisory.published,
                first,
                &paused_by(f),
                at,
            );
            store::Fixed {
                host_id: host.id.clone(),
                advisory_id: f.advisory.id.clone(),
                class: f.class.as_str().to_owned(),
                due: clock.deadline,
            }
        })
        .collect();
    Ok(state.store.record_remediations(&fixed, at).await?)
}

/// The time exemptions covering a finding paused its clock.
fn paused_by(f: &crate::plan_api::FleetFinding<'_>) -> Vec<sla::Paused> {
    f.covering
        .iter()
        .map(|e| sla::Paused {
            from: e.from,
            until: Some(e.expires),
        })
        .collect()
}
