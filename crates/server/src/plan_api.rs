//! Evaluate and plan over HTTP: the planning objects (generic over
//! [`Doc`]), baseline compliance, approval eligibility, risk ranking, and
//! the class, SLA clock and exemption of each finding.

use std::collections::{HashMap, HashSet};

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiff::Timestamp;
use patchwell_core::advisory::Severity;
use patchwell_core::applicability::Index;
use patchwell_core::approval::{self, Candidate, Decisions, Eligibility};
use patchwell_core::baseline::{HostState, Installed, Requirement};
use patchwell_core::classify::{self, Class, Exposure, Signals};
use patchwell_core::exemption::{self, Exemption};
use patchwell_core::risk;
use patchwell_core::sla;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{
    DetectionStore, GroupStore, HostFilter, HostRecord, HostStore, InventoryStore, PlanObject,
    PlanStore, Why,
};

use crate::auth::{Approver, Caller, Reader};
use crate::catalog::scheme_of;
use crate::error::ApiError;
use crate::handlers::{
    check_identifier, now, parse_query, selected, stored_host, ApiResult, JsonBody,
};
use crate::plan_docs::{
    check_setting, ApprovalRuleDoc, BaselineDoc, CalendarDoc, ClassificationDoc, Doc, ExemptionDoc,
    OwnerDoc, PolicyDoc, SlaDoc,
};
use crate::AppState;

/// The tag that marks a host as reachable from the internet.
pub(crate) const INTERNET_FACING: &str = "internet-facing";

/// Checks the name of a planning object. Titles such as
/// `openssl=3.0.15-1~deb12u1` and owners such as `jane.doe@example.org` are
/// names too.
fn check_key(what: &str, name: &str) -> ApiResult<()> {
    check_identifier(&format!("{what} name"), name, 128, "-_.:+~=@")
}

fn invalid(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

pub(crate) fn parse_doc<D: Doc>(o: &PlanObject) -> ApiResult<D> {
    serde_json::from_str(&o.body)
        .map_err(|e| ApiError::internal(format!("stored {} {} is damaged: {e}", D::WHAT, o.name)))
}

fn object_json(o: &PlanObject, body: Value, derived: Value) -> Value {
    let mut v = json!({
        "name": o.name,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
        "updated_by": o.updated_by,
    });
    if let Value::Object(fields) = body {
        for (k, val) in fields {
            v[k] = val;
        }
    }
    if !derived.is_null() {
        v["now"] = derived;
    }
    v
}

/// One stored document, parsed, or 404.
async fn stored_doc<D: Doc>(state: &AppState, name: &str) -> ApiResult<(PlanObject, D)> {
    let o = state
        .store
        .plan_object(D::KIND, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{} {name} not found", D::WHAT)))?;
    let d = parse_doc::<D>(&o)?;
    Ok((o, d))
}

/// A host's installed packages as baselines see them.
fn installed(packages: &[protocol::Package]) -> Vec<Installed<'_>> {
    packages
        .iter()
        .filter(|p| p.state == protocol::PackageState::Installed)
        .map(|p| Installed {
            name: &p.name,
            source: p.source.as_deref().unwrap_or(&p.name),
            version: &p.version,
        })
        .collect()
}

/// Every stored document of a kind, parsed.
pub(crate) async fn docs<D: Doc>(state: &AppState) -> ApiResult<Vec<(PlanObject, D)>> {
    let objects = state.store.plan_objects(D::KIND).await?;
    objects
        .into_iter()
        .map(|o| {
            let d = parse_doc::<D>(&o)?;
            Ok((o, d))
        })
        .collect()
}

/// `GET /api/v1/{kind}`
pub(crate) async fn list_docs<D: Doc>(
    State(state): State<AppState>,
    _caller: Reader,
) -> ApiResult<Json<Vec<Value>>> {
    let at = now(&state);
    Ok(Json(
        docs::<D>(&state)
            .await?
            .into_iter()
            .map(|(o, d)| {
                object_json(
                    &o,
                    serde_json::to_value(&d).unwrap_or_default(),
                    d.derived(at),
                )
            })
            .collect(),
    ))
}

/// `GET /api/v1/{kind}/{name}`
pub(crate) async fn show_doc<D: Doc>(
    State(state): State<AppState>,
    _caller: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let (o, d) = stored_doc::<D>(&state, &name).await?;
    let body = serde_json::to_value(&d).unwrap_or_default();
    Ok(Json(object_json(&o, body, d.derived(now(&state)))))
}

/// `PUT /api/v1/{kind}/{name}`: checked, then stored with its audit entry.
pub(crate) async fn put_doc<D: Doc, A>(
    State(state): State<AppState>,
    who: A,
    Path(name): Path<String>,
    body: JsonBody<D>,
) -> ApiResult<Json<Value>>
where
    A: FromRequestParts<AppState, Rejection = ApiError> + Into<Caller> + Send,
{
    let caller: Caller = who.into();
    check_key(D::WHAT, &name)?;
    let Json(mut doc) = body?;
    let at = now(&state);
    if let Some((named, query)) = doc.hosts_to_resolve() {
        let hosts = resolve_hosts(
            &state,
            &format!("{} {name}", D::WHAT),
            &named,
            query.as_deref(),
        )
        .await?;
        doc.set_resolved_hosts(hosts);
    }
    doc.check(&name, &caller.username, at).map_err(invalid)?;
    if let Some(host) = doc.host() {
        if state.store.host(host).await?.is_none() {
            return Err(invalid(format!("{} {name}: no host {host}", D::WHAT)));
        }
    }
    let body = serde_json::to_string(&doc).map_err(ApiError::internal)?;
    let why = Why::new(&caller.username, doc.action()).because(doc.reason());
    let before = state
        .store
        .put_plan_object(D::KIND, &name, &body, &why, at)
        .await?;
    tracing::info!(kind = D::KIND, name = %name, by = %caller.username, "Planning object stored.");
    crate::rollouts::plans_changed(&state);
    let stored = PlanObject {
        kind: D::KIND.to_owned(),
        name,
        created_at: before.as_ref().map_or(at, |b| b.created_at),
        updated_at: at,
        updated_by: caller.username,
        body,
    };
    let mut v = object_json(
        &stored,
        serde_json::to_value(&doc).unwrap_or_default(),
        doc.derived(at),
    );
    v["replaced"] = json!(before.is_some());
    Ok(Json(v))
}

/// The most hosts one document may name or select; more is what a group
/// is for.
const MAX_NAMED_HOSTS: usize = 10_000;

/// The hosts (not revoked) a document names by id or host name, and those
/// `query` selects now, in that order, each once, as (id, host name). An
/// unknown name, a name several hosts share, a query that does not parse
/// or selects nothing is an error naming it.
pub(crate) async fn resolve_hosts(
    state: &AppState,
    what: &str,
    named: &[String],
    query: Option<&str>,
) -> ApiResult<Vec<(String, String)>> {
    use crate::console::clip;
    if named.len() > MAX_NAMED_HOSTS {
        return Err(invalid(format!(
            "{what}: {} hosts named; at most {MAX_NAMED_HOSTS} (use a group)",
            named.len()
        )));
    }
    let at = now(state);
    let stale_after = state.config.stale_after;
    let all = state
        .store
        .list_hosts(&store::HostFilter::default(), at, stale_after)
        .await?;
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |id: &str, hostname: &str| {
        if !out.iter().any(|(i, _)| i == id) {
            out.push((id.to_owned(), hostname.to_owned()));
        }
    };
    for n in named.iter().map(|n| n.trim()) {
        if let Some(h) = all.iter().find(|h| h.id == n) {
            push(&h.id, &h.hostname);
            continue;
        }
        let by_name: Vec<_> = all.iter().filter(|h| h.hostname == n).collect();
        match by_name.as_slice() {
            [h] => push(&h.id, &h.hostname),
            [] => {
                return Err(invalid(format!(
                    "{what}: no host {:?} (neither a host's name nor its id)",
                    clip(n)
                )))
            }
            several => {
                return Err(invalid(format!(
                    "{what}: {} hosts are named {:?}; give one of their ids: {}",
                    several.len(),
                    clip(n),
                    several
                        .iter()
                        .take(5)
                        .map(|h| h.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
    }
    if let Some(q) = query {
        let parsed = patchwell_core::query::Query::parse(q)
            .map_err(|e| invalid(format!("{what}: the query {:?}: {e}", clip(q))))?;
        let selected: Vec<_> = all
            .iter()
            .filter(|h| crate::handlers::selected(&parsed, h, at, stale_after))
            .collect();
        if selected.is_empty() {
            return Err(invalid(format!(
                "{what}: the query {:?} selects no host",
                clip(q)
            )));
        }
        if selected.len() > MAX_NAMED_HOSTS {
            return Err(invalid(format!(
                "{what}: the query {:?} selects {} hosts; at most {MAX_NAMED_HOSTS} (use a group)",
                clip(q),
                selected.len()
            )));
        }
        for h in selected {
            push(&h.id, &h.hostname);
        }
    }
    Ok(out)
}

/// `DELETE /api/v1/{kind}/{name}`
pub(crate) async fn delete_doc<D: Doc, A>(
    State(state): State<AppState>,
    who: A,
    Path(name): Path<String>,
) -> ApiResult<StatusCode>
where
    A: FromRequestParts<AppState, Rejection = ApiError> + Into<Caller> + Send,
{
    let caller: Caller = who.into();
    let why = Why::new(&caller.username, format!("delete-{}", D::slug()));
    match state
        .store
        .delete_plan_object(D::KIND, &name, &why, now(&state))
        .await?
    {
        Some(_) => {
            crate::rollouts::plans_changed(&state);
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::not_found(format!("{} {name} not found", D::WHAT))),
    }
}

/// `GET /api/v1/settings/{name}`: the setting in force (defaults when none
/// was stored).
pub(crate) async fn show_setting(
    State(state): State<AppState>,
    _caller: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let stored = state.store.plan_object("settings", &name).await?;
    let body = match &stored {
        Some(o) => serde_json::from_str(&o.body).map_err(ApiError::internal)?,
        None => json!({}),
    };
    check_setting(&name, &body).map_err(ApiError::bad_request)?;
    let effective = match name.as_str() {
        "classification" => {
            let doc: ClassificationDoc = serde_json::from_value(body.clone()).unwrap_or_default();
            let r = doc.to_rules().map_err(ApiError::internal)?;
            json!({
                "unrated": r.unrated.as_str(),
                "kev_minimum": r.kev_minimum.map(Class::as_str),
                "ransomware_minimum": r.ransomware_minimum.map(Class::as_str),
                "epss_raise_at": r.epss_raise_at,
                "raise_for_critical_hosts": r.raise_for_critical_hosts,
                "raise_for_internet_facing": r.raise_for_internet_facing,
                "raise_for_high_risk_owners": r.raise_for_high_risk_owners,
            })
        }
        "sla" => {
            let doc: SlaDoc = serde_json::from_value(body.clone()).unwrap_or_default();
            let p = doc.to_policy().map_err(ApiError::internal)?;
            json!({
                "critical_hours": p.periods[0].as_hours(),
                "high_days": p.periods[1].as_hours() / 24,
                "medium_days": p.periods[2].as_hours() / 24,
                "low_days": p.periods[3].as_hours() / 24,
                "start": match p.start { sla::Start::FirstDetection => "first-detection", sla::Start::Publication => "publication" },
                "due_soon_percent": p.due_soon_percent,
            })
        }
        _ => {
            let doc: CalendarDoc = serde_json::from_value(body.clone()).unwrap_or_default();
            json!({
                "timezone": doc.timezone.unwrap_or_else(|| "UTC".into()),
                "holidays": doc.holidays,
            })
        }
    };
    Ok(Json(json!({
        "name": name,
        "stored": body,
        "effective": effective,
        "updated_at": stored.as_ref().map(|o| o.updated_at),
        "updated_by": stored.as_ref().map(|o| o.updated_by.clone()),
    })))
}

/// `PUT /api/v1/settings/{name}`
pub(crate) async fn put_setting(
    State(state): State<AppState>,
    crate::auth::Administrator(caller): crate::auth::Administrator,
    Path(name): Path<String>,
    body: JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let canonical = check_setting(&name, &body).map_err(invalid)?;
    let why = Why::new(&caller.username, format!("set-{name}"));
    state
        .store
        .put_plan_object("settings", &name, &canonical.to_string(), &why, now(&state))
        .await?;
    crate::rollouts::plans_changed(&state);
    show_setting(State(state), Reader(caller), Path(name)).await
}

/// What planning decisions rest on, read once per request.
pub(crate) struct Planning {
    pub(crate) rules: classify::Rules,
    pub(crate) sla: sla::Policy,
    pub(crate) calendar: approval::Calendar,
    pub(crate) exemptions: Vec<Exemption>,
    pub(crate) high_risk_owners: HashSet<String>,
    /// Dynamic groups: name and query.
    groups: Vec<(String, patchwell_core::query::Query)>,
}

async fn setting<T: serde::de::DeserializeOwned + Default>(
    state: &AppState,
    name: &str,
) -> ApiResult<T> {
    match state.store.plan_object("settings", name).await? {
        Some(o) => serde_json::from_str(&o.body)
            .map_err(|e| ApiError::internal(format!("stored setting {name} is damaged: {e}"))),
        None => Ok(T::default()),
    }
}

impl Planning {
    pub(crate) async fn load(state: &AppState) -> ApiResult<Planning> {
        let rules = setting::<ClassificationDoc>(state, "classification")
            .await?
            .to_rules()
            .map_err(ApiError::internal)?;
        let sla = setting::<SlaDoc>(state, "sla")
            .await?
            .to_policy()
            .map_err(ApiError::internal)?;
        let calendar = setting::<CalendarDoc>(state, "calendar")
            .await?
            .to_calendar()
            .map_err(ApiError::internal)?;
        let exemptions = docs::<ExemptionDoc>(state)
            .await?
            .into_iter()
            .filter_map(|(o, d)| d.to_exemption(&o.name).ok())
            .collect();
        let high_risk_owners = docs::<OwnerDoc>(state)
            .await?
            .into_iter()
            .filter(|(_, d)| d.risk == "high")
            .map(|(o, _)| o.name)
            .collect();
        let mut groups = Vec::new();
        for g in state.store.groups().await? {
            groups.push((g.name.clone(), parse_query(&g.query)?));
        }
        Ok(Planning {
            rules,
            sla,
            calendar,
            exemptions,
            high_risk_owners,
            groups,
        })
    }

    /// The groups a host is in: its static group and every dynamic group
    /// whose query selects it.
    pub(crate) fn groups_of(&self, state: &AppState, h: &HostRecord) -> Vec<String> {
        let at = now(state);
        let mut out: Vec<String> = h.attributes.group.iter().cloned().collect();
        for (name, q) in &self.groups {
            if selected(q, h, at, state.config.stale_after) && !out.contains(name) {
                out.push(name.clone());
            }
        }
        out
    }

    /// The advisories the fleet holds as applying to a host, each with its
    /// class for this host, whether it is known exploited, and whether an
    /// exemption is in force at `at`; with the exemptions that ever cover
    /// it, to pause its SLA clock.
    pub(crate) fn fleet_findings<'a>(
        &'a self,
        state: &AppState,
        index: &'a Index,
        h: &HostRecord,
        at: Timestamp,
    ) -> Vec<FleetFinding<'a>> {
        self.findings_of(
            state,
            index,
            h,
            state
                .fleet
                .host_advisories(&h.id)
                .into_iter()
                .filter_map(|pos| index.advisory(pos)),
            at,
        )
    }

    /// `advisories` as findings of host `h`, classified and with their
    /// exemptions, whether or not the host is affected now (a finding just
    /// fixed is classified as it would stand).
    pub(crate) fn findings_of<'a>(
        &'a self,
        state: &AppState,
        index: &'a Index,
        h: &HostRecord,
        advisories: impl Iterator<Item = &'a patchwell_core::advisory::Advisory>,
        at: Timestamp,
    ) -> Vec<FleetFinding<'a>> {
        let groups = self.groups_of(state, h);
        let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
        let (criticality, exposure) = self.host_signals(h);
        let owner_high_risk = self.owner_high_risk(h);
        let mut out = Vec::new();
        for a in advisories {
            let packages: Vec<&str> = a.affected.iter().map(|af| af.package.as_str()).collect();
            let mut s = advisory_signals(index, a);
            s.host_criticality = criticality;
            s.exposure = exposure;
            s.owner_high_risk = owner_high_risk;
            let covering: Vec<&Exemption> = self
                .exemptions
                .iter()
                .filter(|e| e.covers(&h.id, &group_refs, Some(&a.id), &packages))
                .collect();
            let exempt = exemption::in_force(
                &self.exemptions,
                &h.id,
                &group_refs,
                Some(&a.id),
                &packages,
                at,
            )
            .is_some();
            out.push(FleetFinding {
                advisory: a,
                class: self.rules.classify(&s).class,
                kev: s.kev,
                exempt,
                covering,
            });
        }
        out
    }

    /// Whether the host's owner is marked high risk.
    pub(crate) fn owner_high_risk(&self, h: &HostRecord) -> bool {
        h.attributes
            .owner
            .as_ref()
            .is_some_and(|o| self.high_risk_owners.contains(o))
    }

    pub(crate) fn host_signals(&self, h: &HostRecord) -> (Option<Class>, Exposure) {
        let criticality = h.attributes.criticality.as_deref().and_then(Class::parse);
        let exposure = if h.attributes.tags.iter().any(|t| t == INTERNET_FACING) {
            Exposure::InternetFacing
        } else {
            Exposure::Internal
        };
        (criticality, exposure)
    }
}

/// An advisory the fleet holds for a host, as planning sees it.
#[derive(Debug)]
pub(crate) struct FleetFinding<'a> {
    pub(crate) advisory: &'a patchwell_core::advisory::Advisory,
    /// Its class for this host.
    pub(crate) class: Class,
    /// Known exploited.
    pub(crate) kev: bool,
    /// An exemption is in force.
    pub(crate) exempt: bool,
    /// The exemptions that cover it, in force or not.
    pub(crate) covering: Vec<&'a Exemption>,
}

/// The signals of a finding as `catalog::finding_json` wrote it.
fn signals_of(
    f: &Value,
    criticality: Option<Class>,
    exposure: Exposure,
    owner_high_risk: bool,
) -> Signals {
    // An advisory's own severity, apart from its CVSS score's rating (the
    // `severity` shown); other kinds of finding have only `severity`.
    let severity = match f.get("vendor_severity") {
        Some(v) => v,
        None => &f["severity"],
    };
    Signals {
        severity: severity.as_str().and_then(Severity::parse),
        cvss: f["cvss"]["score"].as_f64(),
        kev: f["kev"].as_bool().unwrap_or(false),
        ransomware: f["kev_ransomware"].as_bool().unwrap_or(false),
        epss: f["epss"].as_f64(),
        host_criticality: criticality,
        exposure,
        owner_high_risk,
    }
}

/// Adds to each finding its class and the rule that decided it, its SLA
/// clock (started, deadline, state) and the exemption in force, if any;
/// then orders them by class, most urgent first, and deadline.
pub(crate) fn assess_findings(
    planning: &Planning,
    host: &HostRecord,
    groups: &[String],
    detections: &HashMap<String, Timestamp>,
    findings: &mut [Value],
    now: Timestamp,
) {
    let (criticality, exposure) = planning.host_signals(host);
    let owner_high_risk = planning.owner_high_risk(host);
    let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    for f in findings.iter_mut() {
        let decision =
            planning
                .rules
                .classify(&signals_of(f, criticality, exposure, owner_high_risk));
        let advisory = f["advisory"].as_str().unwrap_or_default().to_owned();
        let packages: Vec<&str> = [&f["package"], &f["source"]]
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let covering: Vec<&Exemption> = planning
            .exemptions
            .iter()
            .filter(|e| e.covers(&host.id, &group_refs, Some(&advisory), &packages))
            .collect();
        let paused: Vec<sla::Paused> = covering
            .iter()
            .map(|e| sla::Paused {
                from: e.from,
                until: Some(e.expires),
            })
            .collect();
        let published = f["published"].as_str().and_then(|p| p.parse().ok());
        let first = detections.get(&advisory).copied().unwrap_or(now);
        let clock = sla::clock(
            &planning.sla,
            decision.class,
            published,
            first,
            &paused,
            now,
        );
        let in_force = exemption::in_force(
            &planning.exemptions,
            &host.id,
            &group_refs,
            Some(&advisory),
            &packages,
            now,
        );
        f["class"] = json!(decision.class.as_str());
        f["class_rule"] = json!(decision.rule);
        f["class_default"] = json!(decision.default);
        f["first_detected"] = json!(first);
        f["sla"] = json!({
            "started": clock.started,
            "deadline": clock.deadline,
            "state": clock.state.as_str(),
        });
        f["exempt_by"] = json!(in_force.map(|e| e.name.clone()));
    }
    findings.sort_by(|a, b| {
        let class = |v: &Value| v["class"].as_str().and_then(Class::parse);
        class(b).cmp(&class(a)).then_with(|| {
            a["sla"]["deadline"]
                .as_str()
                .cmp(&b["sla"]["deadline"].as_str())
        })
    });
}

/// The ids of the advisories the fleet holds as applying to a host now.
pub(crate) fn open_advisories(state: &AppState, host: &str) -> Vec<String> {
    let catalog = state.catalog.get();
    state
        .fleet
        .host_advisories(host)
        .into_iter()
        .filter_map(|at| catalog.index.advisory(at).map(|a| a.id.clone()))
        .collect()
}

/// `GET /api/v1/baselines/{name}/compliance`: every host of the baseline's
/// group, below / above / exempt / at, with what is missing or unapproved.
pub(crate) async fn baseline_compliance(
    State(state): State<AppState>,
    _caller: Reader,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, doc) = stored_doc::<BaselineDoc>(&state, &name).await?;
    let planning = Planning::load(&state).await?;
    let at = now(&state);
    let hosts = state
        .store
        .list_hosts(&HostFilter::default(), at, state.config.stale_after)
        .await?;
    let verdicts = baseline_verdicts(&state, &planning, &name, &doc, hosts, at).await?;
    let mut rows = Vec::new();
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    for (h, c) in verdicts {
        *counts.entry(c.status.as_str()).or_default() += 1;
        rows.push(json!({
            "host": h.id,
            "hostname": h.hostname,
            "status": c.status.as_str(),
            "missing": c.missing.iter().map(|m| json!({
                "requirement": match &m.requirement {
                    Requirement::AtLeast { package, version } => format!("{package} >= {version}"),
                    Requirement::Fixed { advisory } => format!("{advisory} fixed"),
                },
                "has": m.has,
                "exempt_by": m.exempt_by,
            })).collect::<Vec<_>>(),
            "unapproved": c.unapproved.iter().map(|u| json!({
                "package": u.package,
                "installed": u.installed,
                "highest_approved": u.approved,
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(Json(json!({
        "baseline": name,
        "group": doc.group,
        "hosts": rows.len(),
        "below": counts.get("below").copied().unwrap_or(0),
        "above": counts.get("above").copied().unwrap_or(0),
        "exempt": counts.get("exempt").copied().unwrap_or(0),
        "at": counts.get("at").copied().unwrap_or(0),
        "compliance": rows,
    })))
}

/// The hosts below any baseline: each with the baselines it is below.
pub(crate) async fn below_baselines(
    state: &AppState,
    planning: &Planning,
    hosts: &[HostRecord],
    at: Timestamp,
) -> ApiResult<HashMap<String, Vec<String>>> {
    let mut below: HashMap<String, Vec<String>> = HashMap::new();
    for (o, doc) in docs::<BaselineDoc>(state).await? {
        let verdicts =
            baseline_verdicts(state, planning, &o.name, &doc, hosts.to_vec(), at).await?;
        for (h, c) in verdicts {
            if c.status == patchwell_core::baseline::Status::Below {
                below.entry(h.id).or_default().push(o.name.clone());
            }
        }
    }
    Ok(below)
}

/// A baseline's verdict on every host of its group among `hosts`.
async fn baseline_verdicts(
    state: &AppState,
    planning: &Planning,
    name: &str,
    doc: &BaselineDoc,
    hosts: Vec<HostRecord>,
    at: Timestamp,
) -> ApiResult<Vec<(HostRecord, patchwell_core::baseline::Compliance)>> {
    let baseline = doc.to_baseline(name);
    // The group's hosts. Of their packages only those that can break the
    // baseline are read: the hosts below each minimum version, found by the
    // store's index, then those hosts' rows of the named packages (and
    // every host's rows of the packages given a ceiling). The verdict is
    // the one the whole inventory gives: a package at or above its minimum
    // plays no part in it.
    let members: Vec<(HostRecord, Vec<String>)> = hosts
        .into_iter()
        .filter_map(|h| {
            let groups = planning.groups_of(state, &h);
            groups.contains(&doc.group).then_some((h, groups))
        })
        .collect();
    let member_ids: HashSet<&str> = members.iter().map(|(h, _)| h.id.as_str()).collect();
    let manager = match doc.scheme().map_err(ApiError::internal)? {
        versions::Ecosystem::Deb => protocol::Manager::Dpkg,
        versions::Ecosystem::Rpm => protocol::Manager::Rpm,
        versions::Ecosystem::Apk => protocol::Manager::Apk,
    };
    let mut to_read: HashSet<String> = HashSet::new();
    let mut named: Vec<&str> = Vec::new();
    for r in &baseline.requirements {
        if let Requirement::AtLeast { package, version } = r {
            named.push(package);
            for below in state
                .store
                .hosts_with_package_below(manager, package, version)
                .await?
            {
                if member_ids.contains(below.host_id.as_str()) {
                    to_read.insert(below.host_id);
                }
            }
        }
    }
    if !baseline.ceilings.is_empty() {
        named.extend(baseline.ceilings.iter().map(|(p, _)| p.as_str()));
        to_read.extend(member_ids.iter().map(|id| (*id).to_owned()));
    }
    let mut packages_by_host: HashMap<String, Vec<protocol::Package>> = HashMap::new();
    if !to_read.is_empty() && !named.is_empty() {
        let ids: Vec<String> = to_read.into_iter().collect();
        let names = store::PackageNames {
            names: &named,
            prefixes: &[],
        };
        for (host, p) in state.store.packages_of(&ids, &names).await? {
            if p.manager == manager && named.contains(&p.name.as_str()) {
                packages_by_host.entry(host).or_default().push(p);
            }
        }
    }
    let fixed_required = baseline
        .requirements
        .iter()
        .any(|r| matches!(r, Requirement::Fixed { .. }));
    let mut out = Vec::new();
    for (h, groups) in members {
        let packages = packages_by_host.remove(&h.id).unwrap_or_default();
        let scheme = scheme_of(manager);
        let installed = installed(&packages);
        let open = if fixed_required {
            open_advisories(state, &h.id)
        } else {
            Vec::new()
        };
        let open_refs: Vec<&str> = open.iter().map(String::as_str).collect();
        let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
        let c = baseline.evaluate(
            &HostState {
                id: &h.id,
                groups: &group_refs,
                scheme,
                packages: &installed,
                open_advisories: &open_refs,
            },
            &planning.exemptions,
            at,
        );
        out.push((h, c));
    }
    Ok(out)
}

/// `POST /api/v1/baselines/{name}/raise`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Raise {
    /// The reference host: a pilot host after a successful rollout.
    host: String,
}

/// Raises a baseline's minimums and ceilings to what a reference host has.
pub(crate) async fn raise_baseline(
    State(state): State<AppState>,
    Approver(caller): Approver,
    Path(name): Path<String>,
    body: JsonBody<Raise>,
) -> ApiResult<Json<Value>> {
    let Json(raise) = body?;
    let host = stored_host(&state, &raise.host).await?;
    let packages = state.store.packages(&host.id).await?;
    let reference = installed(&packages);
    let from = format!("what host {} ({}) has", host.id, host.hostname);
    let changes = raise_to(&state, &caller.username, &name, &reference, false, &from).await?;
    Ok(Json(
        json!({"baseline": name, "host": host.id, "changes": changes}),
    ))
}

/// Raises a baseline to the versions of `reference`: minimums and
/// ceilings below them are lifted; with `add`, a package the baseline does
/// not name yet gets a minimum too. Audited with `from` as the reason;
/// returns the changes, each as `package: old -> new`.
pub(crate) async fn raise_to(
    state: &AppState,
    by: &str,
    name: &str,
    reference: &[Installed<'_>],
    add: bool,
    from: &str,
) -> ApiResult<Vec<String>> {
    let (_, doc) = stored_doc::<BaselineDoc>(state, name).await?;
    let scheme = doc.scheme().map_err(ApiError::internal)?;
    let (raised, mut changes) = doc.to_baseline(name).raised_to(scheme, reference);
    let mut new_doc = doc.with_versions_of(&raised);
    if add {
        for p in reference {
            if !new_doc.minimum.iter().any(|m| m.package == p.name) {
                changes.push(format!("{}: none -> {}", p.name, p.version));
                new_doc.minimum.push(crate::plan_docs::PackageVersion {
                    package: p.name.to_owned(),
                    version: p.version.to_owned(),
                });
            }
        }
    }
    if !changes.is_empty() {
        let body = serde_json::to_string(&new_doc).map_err(ApiError::internal)?;
        let why = Why::new(by, "raise-baseline")
            .because(Some(format!("raised to {from}: {}", changes.join(", "))));
        state
            .store
            .put_plan_object(BaselineDoc::KIND, name, &body, &why, now(state))
            .await?;
    }
    Ok(changes)
}

#[derive(Debug, Deserialize)]
pub(crate) struct EligibilityQuery {
    ring: Option<String>,
    group: Option<String>,
    policy: Option<String>,
    class: Option<String>,
}

/// `GET /api/v1/approvals/{title}/eligibility?ring=&group=&policy=`
pub(crate) async fn eligibility(
    State(state): State<AppState>,
    _caller: Reader,
    Path(title): Path<String>,
    query: Result<Query<EligibilityQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let planning = Planning::load(&state).await?;
    let at = now(&state);
    let catalog = state.catalog.get();
    let advisory = catalog
        .index
        .position(&title)
        .and_then(|p| catalog.index.advisory(p));
    let (class, rule, released) = match (&q.class, advisory) {
        (Some(c), _) => (
            Class::parse(c).ok_or_else(|| {
                ApiError::bad_request(format!("class {c:?}: use critical, high, medium or low"))
            })?,
            "given".to_owned(),
            advisory.and_then(|a| a.published).unwrap_or(at),
        ),
        (None, Some(a)) => {
            let d = planning
                .rules
                .classify(&advisory_signals(&catalog.index, a));
            (
                d.class,
                d.rule,
                a.published.or(a.origin.fetched_at).unwrap_or(at),
            )
        }
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "{title} is not an advisory in the catalog: give ?class="
            )))
        }
    };
    let mut rules: Vec<approval::Rule> = docs::<ApprovalRuleDoc>(&state)
        .await?
        .into_iter()
        .filter_map(|(o, d)| d.to_rule(&o.name).ok())
        .collect();
    if let Some(policy) = &q.policy {
        let (_, p) = stored_doc::<PolicyDoc>(&state, policy).await?;
        rules.retain(|r| p.approval_rules.contains(&r.name));
    }
    let ring = q.ring.unwrap_or_else(|| "pilot".into());
    // An update's title is decided as rollouts decide it: by its own
    // decision, its source's, or an advisory's it fixes; any other title by
    // its own decision.
    let decisions = crate::approvals::Decisions::load(&state).await?;
    let (manual, decided_by) = match approval::Title::parse(&title) {
        Ok(approval::Title::Package { name, version }) => {
            let offers = crate::approvals::Offers::load(&state);
            let reach = offers.reach(protocol::Manager::Dpkg, &name, &version, None);
            let reach = if reach.advisories.is_empty() {
                [protocol::Manager::Rpm, protocol::Manager::Apk]
                    .into_iter()
                    .map(|m| offers.reach(m, &name, &version, None))
                    .find(|r| !r.advisories.is_empty())
                    .unwrap_or(reach)
            } else {
                reach
            };
            let d = decisions.decide(&name, &version, &reach);
            let manual = d
                .as_ref()
                .map(|d| d.for_target(&ring, q.group.as_deref()).clone());
            let by = decisions.json(d.as_ref()).1;
            (manual, by)
        }
        _ => {
            let manual = decisions
                .doc(&title)
                .map(|d| d.to_approval(&title))
                .transpose()
                .map_err(ApiError::internal)?;
            let rank = match approval::Title::parse(&title) {
                Ok(approval::Title::Source {
                    version: Some(_), ..
                }) => approval::Rank::SourceVersion,
                Ok(approval::Title::Source { .. }) => approval::Rank::Source,
                _ => approval::Rank::Advisory,
            };
            let by = match &manual {
                Some(a) => {
                    json!({"title": title, "rank": rank.as_str(), "by": a.by, "comment": a.comment})
                }
                None => Value::Null,
            };
            (manual, by)
        }
    };
    // Rollouts come with the deploy phase; until then no ring has started.
    let not_started = |_: &str| None;
    let e = approval::eligibility(
        &Candidate {
            title: &title,
            class,
            security: true,
            released,
        },
        &ring,
        q.group.as_deref(),
        &Decisions {
            manual: manual.as_ref(),
            rules: &rules,
            ring_started: &not_started,
            calendar: &planning.calendar,
        },
        at,
    );
    let verdict = match &e {
        Eligibility::Approved { by } => json!({"eligible": true, "state": "approved", "by": by}),
        Eligibility::Waiting { until, reason } => {
            json!({"eligible": false, "state": "waiting", "until": until, "reason": reason})
        }
        Eligibility::Declined { by, comment } => {
            json!({"eligible": false, "state": "declined", "by": by, "comment": comment})
        }
        Eligibility::NotApproved => json!({"eligible": false, "state": "not-approved",
            "reason": "no person approved it and no approval rule covers it"}),
    };
    Ok(Json(json!({
        "title": title,
        "ring": ring,
        "group": q.group,
        "class": class.as_str(),
        "class_rule": rule,
        "released": released,
        "decision": verdict,
        "decided_by": decided_by,
    })))
}

/// The classification signals of an advisory alone (no host).
pub(crate) fn advisory_signals(index: &Index, a: &patchwell_core::advisory::Advisory) -> Signals {
    let kev = index.kev(a);
    Signals {
        severity: a.severity,
        cvss: a.cvss.as_ref().and_then(|c| c.score),
        kev: kev.is_some(),
        ransomware: kev.is_some_and(|k| k.ransomware),
        epss: index.epss(a).map(|e| e.score),
        host_criticality: None,
        exposure: Exposure::Internal,
        owner_high_risk: false,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RiskQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/updates`: every update the fleet is offered, with its
/// source package, the advisories it fixes, the decision in force
/// (approved, declined or none yet) and which title decided it, and
/// whether it is a security update (`security`: from a security suite,
/// `security_suite`, or bringing the fix of a security advisory, named in
/// `fixes`) or an available update.
pub(crate) async fn offered_updates(
    State(state): State<AppState>,
    _caller: Reader,
) -> ApiResult<Json<Value>> {
    Ok(Json(Value::Array(offered_now(&state).await?)))
}

/// The updates offered to the fleet now, each with its decision (what
/// `GET /api/v1/updates` answers, and what reports keep).
pub(crate) async fn offered_now(state: &AppState) -> ApiResult<Vec<Value>> {
    let decisions = crate::approvals::Decisions::load(state).await?;
    let offers = crate::approvals::Offers::load(state);
    // Tallied in memory once the fleet is loaded; summed by the store
    // before then.
    let offered = match state.fleet.offered_updates() {
        Some(offered) => offered,
        None => state.store.offered_updates().await?,
    };
    // An update is a security one when a security suite offers it, or
    // when it brings the fix of a security advisory to a host it reaches (a
    // point release that carries a security suite's fix, or a later one).
    let rows: Vec<Value> = offered
        .into_iter()
        .map(|u| {
            let title = format!("{}={}", u.name, u.candidate);
            let reach = offers.reach(
                u.manager,
                &u.name,
                &u.candidate,
                u.security.then_some(u.suites.as_str()),
            );
            let security = offers.is_security(u.security, &reach);
            let fixes: Vec<&String> = reach
                .advisories
                .iter()
                .filter(|a| offers.is_security_advisory(a))
                .collect();
            let (decision, decided_by) =
                decisions.json(decisions.decide(&u.name, &u.candidate, &reach).as_ref());
            json!({
                "title": title,
                "manager": u.manager.as_str(),
                "name": u.name,
                "candidate": u.candidate,
                "source": reach.source,
                "security": security,
                "security_suite": u.security,
                "fixes": fixes,
                "suite": (!u.suites.is_empty()).then_some(u.suites),
                // The catalog's advisories it fixes; a security update no
                // advisory explains has an id of its own instead.
                "advisories": reach.advisories.iter().filter(|a| offers.in_catalog(a)).collect::<Vec<_>>(),
                "update_id": reach.advisories.iter().find(|a| !offers.in_catalog(a)),
                "hosts": u.hosts,
                "decision": decision,
                "decided_by": decided_by,
            })
        })
        .collect();
    // Security first (stable: by hosts within each).
    let mut rows = rows;
    rows.sort_by_key(|r| !r["security"].as_bool().unwrap_or(false));
    Ok(rows)
}

/// `GET /api/v1/summary/risk`: hosts by risk, highest first, each with its
/// score and why: open findings by class (exempt ones left out), known
/// exploited ones, criticality, exposure and the owner's risk.
pub(crate) async fn risk_ranking(
    State(state): State<AppState>,
    _caller: Reader,
    query: Result<Query<RiskQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let planning = Planning::load(&state).await?;
    let at = now(&state);
    let catalog = state.catalog.get();
    let hosts = state
        .store
        .list_hosts(&HostFilter::default(), at, state.config.stale_after)
        .await?;
    let mut rows = Vec::new();
    for h in &hosts {
        let (criticality, exposure) = planning.host_signals(h);
        let mut open = Vec::new();
        let mut per_class: HashMap<&'static str, usize> = HashMap::new();
        for f in planning.fleet_findings(&state, &catalog.index, h, at) {
            if f.exempt {
                continue;
            }
            *per_class.entry(f.class.as_str()).or_default() += 1;
            open.push(risk::Open {
                class: f.class,
                kev: f.kev,
            });
        }
        let owner_high = h
            .attributes
            .owner
            .as_ref()
            .is_some_and(|o| planning.high_risk_owners.contains(o));
        let score = risk::score(
            &risk::Factors {
                criticality,
                internet_facing: exposure == Exposure::InternetFacing,
                owner_high_risk: owner_high,
            },
            &open,
        );
        rows.push((score, h, per_class, open.iter().filter(|o| o.kev).count()));
    }
    rows.sort_by(|a, b| {
        b.0.score
            .total_cmp(&a.0.score)
            .then_with(|| a.1.hostname.cmp(&b.1.hostname))
    });
    let limit = q.limit.unwrap_or(50).min(10_000);
    Ok(Json(json!({
        "hosts": rows.iter().take(limit).map(|(s, h, per_class, kev)| json!({
            "host": h.id,
            "hostname": h.hostname,
            "owner": h.attributes.owner,
            "criticality": h.attributes.criticality,
            "score": s.score,
            "findings_weight": s.findings_weight,
            "multiplier": s.multiplier,
            "because": s.because,
            "open": {
                "critical": per_class.get("critical").copied().unwrap_or(0),
                "high": per_class.get("high").copied().unwrap_or(0),
                "medium": per_class.get("medium").copied().unwrap_or(0),
                "low": per_class.get("low").copied().unwrap_or(0),
                "known_exploited": kev,
            },
        })).collect::<Vec<_>>(),
    })))
}

/// Records the first detection of every (host, advisory) pair the fleet
/// holds and `recorded` does not; returns how many it sent to the store.
/// The store keeps the first time of pairs it already has, so sending one
/// twice is harmless: `recorded` only saves the work.
pub(crate) async fn sweep_detections(
    state: &AppState,
    recorded: &mut HashSet<(String, String)>,
) -> store::Result<usize> {
    let catalog = state.catalog.get();
    let mut open: HashSet<(String, String)> = HashSet::new();
    for (host, positions) in state.fleet.all_host_advisories() {
        for pos in positions {
            if let Some(a) = catalog.index.advisory(pos) {
                open.insert((host.clone(), a.id.clone()));
            }
        }
    }
    let refs: Vec<(&str, &str)> = open
        .iter()
        .filter(|pair| !recorded.contains(*pair))
        .map(|(h, a)| (h.as_str(), a.as_str()))
        .collect();
    state.store.record_detections(&refs, now(state)).await?;
    let n = refs.len();
    // Only pairs open now are remembered: one fixed (its detection moved
    // to the remediations) that comes back is recorded afresh.
    *recorded = open;
    Ok(n)
}
