//! The catalog's routes: feeds, advisories, and which advisories apply to
//! which hosts, with reasons.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use patchwell_core::applicability::Index;
use protocol::Manager;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{CatalogStore, DetectionStore, FeedRecord, HostStore, InventoryStore};

use crate::api::{FeedDefinition, FeedView, ImportReport, RejectedRecord};
use crate::auth::{Administrator, Operator, Reader};
use crate::catalog::{finding_json, host_view, manager_of, os_of, report_json};
use crate::error::ApiError;
use crate::feeds::{self, FeedKind, Verification};
use crate::handlers::{check_name, now, stored_host, ApiResult, JsonBody};
use crate::AppState;

fn feed_view(f: FeedRecord) -> FeedView {
    FeedView {
        name: f.name,
        kind: f.kind,
        location: f.location,
        verification: f.verification,
        imported_at: f.imported_at,
        sha256: f.sha256,
        records: f.records,
        rejected: f.rejected,
        last_error: f.last_error,
        last_error_at: f.last_error_at,
    }
}

/// `GET /api/v1/feeds`
pub(crate) async fn list_feeds(
    State(state): State<AppState>,
    _caller: Reader,
) -> ApiResult<Json<Vec<FeedView>>> {
    Ok(Json(
        state
            .store
            .feeds()
            .await?
            .into_iter()
            .map(feed_view)
            .collect(),
    ))
}

/// `PUT /api/v1/feeds/{name}`: define (or redefine) a feed and import it.
pub(crate) async fn put_feed(
    State(state): State<AppState>,
    Administrator(caller): Administrator,
    Path(name): Path<String>,
    body: JsonBody<FeedDefinition>,
) -> ApiResult<Json<ImportReport>> {
    let Json(definition) = body?;
    check_name("feed", &name)?;
    let kind = FeedKind::parse(definition.kind.trim()).map_err(ApiError::bad_request)?;
    let verification =
        Verification::parse(&definition.verification).map_err(ApiError::bad_request)?;
    feeds::check_config(kind, &verification)
        .map_err(|e| ApiError::bad_request(format!("feed {name}: {e}")))?;
    let location = definition.location.trim();
    if location.is_empty() {
        return Err(ApiError::bad_request(
            "location: a file, directory or URL is needed",
        ));
    }
    let at = now(&state);
    let existing = state.store.feed(&name).await?;
    let record = FeedRecord {
        name: name.clone(),
        kind: kind.as_str().to_owned(),
        location: location.to_owned(),
        verification: verification.to_text(),
        created_at: existing.as_ref().map_or(at, |f| f.created_at),
        imported_at: None,
        sha256: None,
        records: 0,
        rejected: 0,
        last_error: None,
        last_error_at: None,
    };
    // A new feed is configured at once, so a failed first import is kept
    // on it; a changed definition replaces the stored one only with a
    // successful import.
    if existing.is_none() {
        state.store.put_feed(&record).await?;
    }
    tracing::info!(feed = %name, kind = kind.as_str(), by = %caller.username, "Feed defined.");
    run_import(&state, &name, feeds::ImportOf::Definition(&record)).await
}

/// `POST /api/v1/feeds/{name}/import`
pub(crate) async fn import_feed(
    State(state): State<AppState>,
    _caller: Operator,
    Path(name): Path<String>,
) -> ApiResult<Json<ImportReport>> {
    if state.store.feed(&name).await?.is_none() {
        return Err(ApiError::not_found(format!("feed {name} not found")));
    }
    run_import(&state, &name, feeds::ImportOf::Stored(&name)).await
}

async fn run_import(
    state: &AppState,
    name: &str,
    what: feeds::ImportOf<'_>,
) -> ApiResult<Json<ImportReport>> {
    match feeds::import(&state.store, &state.catalog, &state.fleet, what, now(state)).await {
        Ok(outcome) => {
            tracing::info!(
                feed = %name,
                records = outcome.records,
                rejected = outcome.rejected.len(),
                "Feed imported."
            );
            Ok(Json(ImportReport {
                feed: name.to_owned(),
                sha256: outcome.sha256,
                records: outcome.records as u64,
                rejected_count: outcome.rejected.len() as u64,
                rejected: outcome
                    .rejected
                    .iter()
                    .take(100)
                    .map(|r| RejectedRecord {
                        file: r.file.clone(),
                        record: r.record.clone(),
                        reason: r.reason.clone(),
                    })
                    .collect(),
                catalog_advisories: state.catalog.get().index.advisories().len() as u64,
            }))
        }
        Err(e) => {
            tracing::warn!(feed = %name, "Feed import refused: {e}");
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "feed {name}: {e}; nothing of it was imported and the catalog in force is unchanged"
                ),
            ))
        }
    }
}

/// `DELETE /api/v1/feeds/{name}`
pub(crate) async fn delete_feed(
    State(state): State<AppState>,
    _caller: Administrator,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store.delete_feed(&name).await? {
        return Err(ApiError::not_found(format!("feed {name} not found")));
    }
    feeds::forget(&state.catalog, &state.fleet, &name).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub(crate) struct AdvisoryFilter {
    /// Words that the id, an alias, the title or a package must contain.
    search: Option<String>,
    /// Only advisories for this ecosystem (`Debian:12`).
    ecosystem: Option<String>,
    /// Only known exploited ones.
    kev: Option<bool>,
    limit: Option<usize>,
    offset: Option<usize>,
}

fn advisory_summary(index: &Index, a: &patchwell_core::advisory::Advisory) -> Value {
    let kev = index.kev(a);
    json!({
        "id": a.id,
        "aliases": a.aliases,
        "title": a.title,
        "severity": Index::severity(a).map(|s| s.as_str()),
        "cvss_score": a.cvss.as_ref().and_then(|c| c.score),
        "kev": kev.is_some(),
        "kev_date_added": kev.map(|k| k.date_added.to_string()),
        "epss": index.epss(a).map(|e| e.score),
        "update_type": a.update_type.as_str(),
        "security": a.is_security(),
        "published": a.published.map(|t| t.to_string()),
        "withdrawn": a.withdrawn.map(|t| t.to_string()),
        "packages": a.affected.iter().map(|af| format!("{} {}", af.ecosystem, af.package)).collect::<Vec<_>>(),
        "feed": a.origin.feed,
    })
}

/// Whether an advisory matches every word of a search (lowercase): in its
/// id, title or an alias, or as the name of a package it affects.
pub(crate) fn matches_words(a: &patchwell_core::advisory::Advisory, words: &[String]) -> bool {
    words.iter().all(|w| {
        a.id.to_lowercase().contains(w)
            || a.title.to_lowercase().contains(w)
            || a.aliases.iter().any(|x| x.to_lowercase().contains(w))
            || a.affected.iter().any(|af| af.package.to_lowercase() == *w)
    })
}

/// `GET /api/v1/advisories`
pub(crate) async fn list_advisories(
    State(state): State<AppState>,
    _caller: Reader,
    Query(filter): Query<AdvisoryFilter>,
) -> ApiResult<Json<Value>> {
    let catalog = state.catalog.get();
    let words: Vec<String> = filter
        .search
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let limit = filter.limit.unwrap_or(100).min(1000);
    let offset = filter.offset.unwrap_or(0);
    let matching: Vec<&patchwell_core::advisory::Advisory> = catalog
        .index
        .advisories()
        .iter()
        .filter(|a| {
            filter
                .ecosystem
                .as_deref()
                .is_none_or(|e| a.affected.iter().any(|af| af.ecosystem.name() == e))
        })
        .filter(|a| !filter.kev.unwrap_or(false) || catalog.index.kev(a).is_some())
        .filter(|a| matches_words(a, &words))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|a| {
            let mut summary = advisory_summary(&catalog.index, a);
            if let Some(at) = catalog.index.position(&a.id) {
                summary["hosts"] = json!(state.fleet.advisory_host_count(at));
            }
            summary
        })
        .collect();
    Ok(Json(json!({ "total": matching.len(), "advisories": page })))
}

/// `?offset=&limit=` for the hosts an advisory reaches.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HostWindow {
    /// Hosts to skip, by host name.
    #[serde(default)]
    pub(crate) offset: Option<usize>,
    /// At most this many hosts (default: all).
    #[serde(default)]
    pub(crate) limit: Option<usize>,
}

/// `GET /api/v1/advisories/{id}`: the advisory, what supersedes it, and the
/// hosts it applies to with the reason for each. Hosts are found through
/// the packages it names, never by scanning every host.
pub(crate) async fn show_advisory(
    State(state): State<AppState>,
    _caller: Reader,
    Path(id): Path<String>,
    window: Result<Query<HostWindow>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(window) = window?;
    let catalog = state.catalog.get();
    let index = &catalog.index;
    let advisory = index
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("advisory {id} not found")))?;
    // The hosts it reaches: from the fleet in memory once it is loaded
    // (which holds security advisories only), else through the store's
    // index on source packages.
    let candidates: Vec<String> = match index.position(&id) {
        Some(at) if state.fleet.loaded() && advisory.is_security() => {
            state.fleet.advisory_hosts(at)
        }
        _ => {
            let mut by_manager: BTreeMap<Manager, Vec<&str>> = BTreeMap::new();
            for af in &advisory.affected {
                by_manager
                    .entry(manager_of(af.ecosystem.scheme()))
                    .or_default()
                    .push(af.package.as_str());
            }
            let mut ids = std::collections::BTreeSet::new();
            for (manager, names) in by_manager {
                for (host, _) in state.store.hosts_with_sources(manager, &names).await? {
                    ids.insert(host);
                }
            }
            ids.into_iter().collect()
        }
    };
    // By host name; only the window asked for is read and explained.
    let candidates: std::collections::HashSet<String> = candidates.into_iter().collect();
    let ordered: Vec<String> = state
        .store
        .host_names()
        .await?
        .into_iter()
        .filter(|(id, _)| candidates.contains(id))
        .map(|(id, _)| id)
        .collect();
    let host_count = ordered.len();
    // The window's hosts, and of their inventories only the packages this
    // advisory names (by source or binary) and kernel images, whose
    // findings depend on which one runs: three reads for the whole page.
    let offset = window.offset.unwrap_or(0);
    let limit = window.limit.unwrap_or(usize::MAX);
    let shown: Vec<String> = ordered.into_iter().skip(offset).take(limit).collect();
    let mut named: Vec<&str> = advisory
        .affected
        .iter()
        .map(|af| af.package.as_str())
        .collect();
    named.sort_unstable();
    named.dedup();
    let records = state
        .store
        .list_hosts(
            &store::HostFilter {
                ids: Some(shown.clone()),
                ..store::HostFilter::default()
            },
            now(&state),
            state.config.stale_after,
        )
        .await?;
    let mut packages: HashMap<String, Vec<protocol::Package>> = HashMap::new();
    let names = store::PackageNames {
        names: &named,
        prefixes: patchwell_core::applicability::KERNEL_IMAGE_PREFIXES,
    };
    // Only the package managers the advisory speaks of: the fleet reached
    // these hosts through them, and another manager's few packages must
    // not decide which manager the partial view is read as.
    let managers: std::collections::BTreeSet<Manager> = advisory
        .affected
        .iter()
        .map(|af| manager_of(af.ecosystem.scheme()))
        .collect();
    for (host, p) in state.store.packages_of(&shown, &names).await? {
        if managers.contains(&p.manager) {
            packages.entry(host).or_default().push(p);
        }
    }
    let mut updates: HashMap<String, Vec<protocol::AvailableUpdate>> = HashMap::new();
    for (host, u) in state.store.updates_of(&shown).await? {
        updates.entry(host).or_default().push(u);
    }
    let records: HashMap<&str, &store::HostRecord> =
        records.iter().map(|h| (h.id.as_str(), h)).collect();
    let today = now(&state).to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut hosts = Vec::new();
    for host_id in &shown {
        let Some(host) = records.get(host_id.as_str()) else {
            continue;
        };
        let view = host_view(
            &os_of(host),
            host.kernel.as_deref().unwrap_or(""),
            packages.get(host_id).map_or(&[], Vec::as_slice),
            updates.get(host_id).map_or(&[], Vec::as_slice),
        );
        let report = index.evaluate(&view, today);
        // An advisory that is not a security one reaches hosts as an
        // available update.
        let findings: Vec<Value> = report
            .findings
            .iter()
            .chain(&report.available_updates)
            .filter(|f| f.advisory.id == advisory.id)
            .map(|f| finding_json(index, f))
            .collect();
        if !findings.is_empty() {
            hosts.push(json!({
                "host": host.id,
                "hostname": host.hostname,
                "criticality": host.attributes.criticality,
                "findings": findings,
            }));
        }
    }
    let superseded_by: Vec<&str> = index
        .superseded_by(&id)
        .iter()
        .map(|a| a.id.as_str())
        .collect();
    let kev = index.kev(advisory);
    Ok(Json(json!({
        "advisory": ::feeds::osv::to_json(advisory),
        "summary": advisory_summary(index, advisory),
        "kev": kev.map(|k| json!({
            "cve": k.cve, "date_added": k.date_added.to_string(),
            "due_date": k.due_date.map(|d| d.to_string()), "ransomware": k.ransomware,
            "name": k.name,
        })),
        "superseded_by": superseded_by,
        "host_count": host_count,
        "hosts": hosts,
    })))
}

/// A stored host as applicability sees it: its packages and its offered
/// updates as last reported.
async fn stored_view(
    state: &AppState,
    host: &store::HostRecord,
) -> ApiResult<patchwell_core::applicability::HostView> {
    let packages = state.store.packages(&host.id).await?;
    let updates = state.store.updates(&host.id).await?;
    Ok(host_view(
        &os_of(host),
        host.kernel.as_deref().unwrap_or(""),
        &packages,
        &updates,
    ))
}

/// `GET /api/v1/hosts/{id}/findings`: every security advisory that applies
/// to a host, the security updates its package manager offers, and its OS
/// release's lifecycle, each with the reason (`findings`); and apart, its
/// available updates: newer versions from ordinary suites, not findings
/// (`available_updates`).
pub(crate) async fn host_findings(
    State(state): State<AppState>,
    _caller: Reader,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let host = stored_host(&state, &id).await?;
    let view = stored_view(&state, &host).await?;
    let catalog = state.catalog.get();
    let today = now(&state).to_zoned(jiff::tz::TimeZone::UTC).date();
    let report = catalog.index.evaluate(&view, today);
    let mut findings = report_json(&catalog.index, &report);
    let available_updates = crate::catalog::available_updates_json(&report, &view);
    // First detections: those of this host that the periodic sweep has not
    // recorded yet are recorded now, so a clock never starts later than the
    // first look. Most reads find them all recorded and write nothing.
    let at = now(&state);
    let mut detections = state.store.detections(&host.id).await?;
    let missing: Vec<(&str, &str)> = findings
        .iter()
        .filter_map(|f| f["advisory"].as_str())
        .filter(|a| !detections.contains_key(*a))
        .map(|a| (host.id.as_str(), a))
        .collect();
    if !missing.is_empty() {
        state.store.record_detections(&missing, at).await?;
        detections.extend(missing.iter().map(|(_, a)| ((*a).to_owned(), at)));
    }
    let planning = crate::plan_api::Planning::load(&state).await?;
    let groups = planning.groups_of(&state, &host);
    crate::plan_api::assess_findings(&planning, &host, &groups, &detections, &mut findings, at);
    Ok(Json(json!({
        "host": host.id,
        "hostname": host.hostname,
        "ecosystem": report.ecosystem.as_ref().map(|e| e.name().to_owned()),
        "groups": groups,
        "findings": findings,
        "available_updates": available_updates,
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExposureQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/summary/exposure`: the advisories that reach hosts, known
/// exploited first, then by severity, then by hosts reached; from the
/// fleet's applicability in memory, without a database query.
pub(crate) async fn exposure(
    State(state): State<AppState>,
    _caller: Reader,
    Query(query): Query<ExposureQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(exposure_now(
        &state,
        query.limit.unwrap_or(20).min(1000),
    )))
}

/// The fleet's exposure now, with its `limit` top advisories (what
/// `GET /api/v1/summary/exposure` answers, and what reports keep).
pub(crate) fn exposure_now(state: &AppState, limit: usize) -> Value {
    let catalog = state.catalog.get();
    let reach = state.fleet.reach();
    let mut rows: Vec<(
        bool,
        Option<patchwell_core::advisory::Severity>,
        usize,
        &patchwell_core::advisory::Advisory,
    )> = reach
        .iter()
        .filter_map(|(&at, &hosts)| {
            let a = catalog.index.advisory(at)?;
            Some((catalog.index.kev(a).is_some(), Index::severity(a), hosts, a))
        })
        .collect();
    rows.sort_by(|x, y| {
        (y.0, y.1, y.2)
            .cmp(&(x.0, x.1, x.2))
            .then_with(|| x.3.id.cmp(&y.3.id))
    });
    let affected_pairs: usize = reach.values().sum();
    let top: Vec<Value> = rows
        .iter()
        .take(limit)
        .map(|(_, _, hosts, a)| {
            let mut summary = advisory_summary(&catalog.index, a);
            summary["hosts"] = json!(hosts);
            summary
        })
        .collect();
    json!({
        "fleet_loaded": state.fleet.loaded(),
        "advisories_reaching_hosts": rows.len(),
        "host_advisory_pairs": affected_pairs,
        "known_exploited_reaching_hosts": rows.iter().filter(|r| r.0).count(),
        "top": top,
    })
}
