//! Decisions on updates as admins make them: by advisory, by source package
//! or by binary update, one at a time or in bulk.
//!
//! An offered update (a binary package at a version) is reached by the
//! titles of [`approval::Title`]: its own (`name=version`), its source
//! package's (`source:name`, `source:name=version`) and those of the
//! advisories it fixes (their ids and aliases; a security suite's update id
//! when no advisory in the catalog explains it). What it fixes is worked out
//! from the fleet's offers ([`crate::fleet::FleetHandle::update_facts`]); the
//! decision in force is [`approval::decide`]'s: the most specific title with
//! a decision wins, and among equals a decline wins. The updates list, the
//! count waiting for a decision, rollouts and eligibility all ask here, so
//! they cannot disagree.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use patchwell_core::advisory::UpdateType;
use patchwell_core::applicability::Index;
use patchwell_core::approval::{self, Approval, Decided, Title};
use protocol::Manager;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::{PlanStore, Why};

use crate::auth::Approver;
use crate::error::ApiError;
use crate::feeds::Catalog;
use crate::fleet::UpdateFacts;
use crate::handlers::{now, ApiResult, JsonBody};
use crate::plan_docs::{ApprovalDoc, Doc};
use crate::AppState;

/// The most titles one bulk decision takes.
pub(crate) const MAX_BULK: usize = 500;
/// The longest comment, in characters.
pub(crate) const MAX_COMMENT: usize = 2000;

/// What titles reach one update besides its own: its source package and
/// the advisories it fixes. Kept in a rollout's frozen versions, so that a
/// decision made while it runs reaches what it installs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reach {
    /// The source package, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<String>,
    /// The advisories it fixes, by id (a security suite's update id when no
    /// advisory in the catalog explains a security update).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) advisories: Vec<String>,
}

/// Every stored decision, by title.
pub(crate) struct Decisions {
    by_title: HashMap<String, (Approval, ApprovalDoc)>,
    /// The catalog, for advisories' aliases.
    catalog: Arc<Catalog>,
}

impl Decisions {
    /// Reads every decision. One that no longer reads is left out and
    /// logged, so it cannot hold every other decision back.
    pub(crate) async fn load(state: &AppState) -> ApiResult<Decisions> {
        let mut by_title = HashMap::new();
        for (o, d) in crate::plan_api::docs::<ApprovalDoc>(state).await? {
            match d.to_approval(&o.name) {
                Ok(a) => {
                    by_title.insert(o.name, (a, d));
                }
                Err(e) => tracing::error!(title = %o.name, "A stored approval is damaged: {e}"),
            }
        }
        Ok(Decisions {
            by_title,
            catalog: state.catalog.get(),
        })
    }

    /// The stored document of a title.
    pub(crate) fn doc(&self, title: &str) -> Option<&ApprovalDoc> {
        self.by_title.get(title).map(|(_, d)| d)
    }

    /// The decision in force on `name` at `version`, reached as `reach`
    /// says.
    pub(crate) fn decide(&self, name: &str, version: &str, reach: &Reach) -> Option<Decided<'_>> {
        let mut ids: Vec<&str> = Vec::new();
        for id in &reach.advisories {
            ids.push(id);
            if let Some(a) = self.catalog.index.get(id) {
                ids.extend(a.aliases.iter().map(String::as_str));
            }
        }
        approval::decide(
            &approval::Update {
                name,
                version,
                source: reach.source.as_deref(),
                advisories: &ids,
            },
            |title| self.by_title.get(title).map(|(a, _)| a),
        )
    }

    /// A decision as the API shows it: `decision` (`approved` or
    /// `declined`, null when none) and `decided_by` (the title in force,
    /// how specific it is, who decided, when, and why).
    pub(crate) fn json(&self, decided: Option<&Decided<'_>>) -> (Value, Value) {
        let Some(d) = decided else {
            return (Value::Null, Value::Null);
        };
        let a = d.decided_by();
        let doc = self.doc(&a.title);
        let verdict = if d.approved() { "approved" } else { "declined" };
        let by = json!({
            "title": a.title,
            "rank": d.rank.as_str(),
            "by": a.by,
            "at": doc.and_then(|d| d.at),
            "comment": a.comment,
            "rings": doc.map(|d| d.rings.clone()).unwrap_or_default(),
            "groups": doc.map(|d| d.groups.clone()).unwrap_or_default(),
        });
        (json!(verdict), by)
    }
}

/// What the fleet's offers say of each offered update, with the catalog
/// they were checked against.
pub(crate) struct Offers {
    facts: HashMap<(Manager, String, String), UpdateFacts>,
    /// The suite the updates list names for each offered update.
    suites: HashMap<(Manager, String, String), String>,
    catalog: Arc<Catalog>,
    fleet: Arc<crate::fleet::FleetHandle>,
}

impl Offers {
    /// Reads the offers now (nothing known of them until the fleet is
    /// loaded: then only titles of their own reach them).
    pub(crate) fn load(state: &AppState) -> Offers {
        let catalog = state.catalog.get();
        let facts = state.fleet.update_facts(&catalog.index).unwrap_or_default();
        let suites = state
            .fleet
            .offered_updates()
            .unwrap_or_default()
            .into_iter()
            .map(|u| ((u.manager, u.name, u.candidate), u.suites))
            .collect();
        Offers {
            facts,
            suites,
            catalog,
            fleet: Arc::clone(&state.fleet),
        }
    }

    /// What reaches `name` at `version` of `manager`; `security_suite` is
    /// the security suite offering it, if one does (the one the updates
    /// list names is used when it names one, so that a security update's
    /// id is the same wherever it is decided).
    pub(crate) fn reach(
        &self,
        manager: Manager,
        name: &str,
        version: &str,
        security_suite: Option<&str>,
    ) -> Reach {
        let key = (manager, name.to_owned(), version.to_owned());
        let facts = self.facts.get(&key);
        let security_suite = security_suite.map(|given| {
            self.suites
                .get(&key)
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(given)
        });
        let mut advisories: Vec<String> = facts
            .map(|f| {
                f.advisories
                    .iter()
                    .filter_map(|&p| self.catalog.index.advisory(p))
                    .map(|a| a.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        if advisories.is_empty() {
            if let Some(suite) = security_suite.filter(|s| !s.is_empty()) {
                advisories.push(suite_update_id(suite, name, version));
            }
        }
        let source = facts
            .and_then(|f| f.source.clone())
            .or_else(|| Some(self.fleet.source_of(manager, name)));
        Reach { source, advisories }
    }

    /// Whether the catalog has an advisory of this id.
    pub(crate) fn in_catalog(&self, id: &str) -> bool {
        self.catalog.index.get(id).is_some()
    }

    /// Whether an update is a security update: offered from a security
    /// suite, or fixing an advisory that is a security update.
    pub(crate) fn is_security(&self, from_security_suite: bool, reach: &Reach) -> bool {
        from_security_suite
            || reach
                .advisories
                .iter()
                .any(|id| self.is_security_advisory(id))
    }

    /// Whether the catalog has a security advisory of this id.
    pub(crate) fn is_security_advisory(&self, id: &str) -> bool {
        self.catalog
            .index
            .get(id)
            .is_some_and(|a| a.update_type == UpdateType::SecurityUpdate)
    }
}

/// The id of a security update no advisory explains, as findings name it.
pub(crate) fn suite_update_id(suite: &str, name: &str, version: &str) -> String {
    format!("{suite}:{name}:{version}")
}

/// `POST /api/v1/approvals/bulk`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bulk {
    /// The titles decided.
    pub(crate) titles: Vec<String>,
    /// `approve` or `decline` (`approved`, `declined` too).
    pub(crate) verdict: String,
    /// One comment for them all.
    #[serde(default)]
    pub(crate) comment: Option<String>,
    /// The rings approved for (empty: all).
    #[serde(default)]
    pub(crate) rings: Vec<String>,
    /// The groups approved for (empty: all).
    #[serde(default)]
    pub(crate) groups: Vec<String>,
}

/// The verdict as stored (`approve`, `decline`).
pub(crate) fn stored_verdict(text: &str) -> Option<&'static str> {
    match text.trim() {
        "approve" | "approved" => Some("approve"),
        "decline" | "declined" => Some("decline"),
        _ => None,
    }
}

/// Checks every title of a bulk decision and returns them as stored, in
/// the order given, each once; the error names every title refused (the
/// first ten) and why. An advisory id must be one the catalog knows (by id
/// or alias) or a security suite's update id offered now.
pub(crate) fn check_titles(state: &AppState, titles: &[String]) -> Result<Vec<String>, String> {
    if titles.is_empty() {
        return Err("titles: name at least one update, source or advisory".into());
    }
    if titles.len() > MAX_BULK {
        return Err(format!(
            "titles: {} given; at most {MAX_BULK} in one decision",
            titles.len()
        ));
    }
    let catalog = state.catalog.get();
    let mut known: Option<HashSet<String>> = None;
    let mut out: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for t in titles {
        let title = match Title::parse(t) {
            Ok(title) => title,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let canonical = title.canonical();
        if canonical.len() > 128 {
            problems.push(format!("title {t:?}: longer than 128 characters"));
            continue;
        }
        if let Title::Advisory(id) = &title {
            let known = known.get_or_insert_with(|| known_advisory_ids(state, &catalog.index));
            if !known.contains(id) {
                problems.push(format!(
                    "title {id:?}: no advisory in the catalog has this id or alias, and no \
                     update offered now is a security update of that id"
                ));
                continue;
            }
        }
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(10);
        let more = if n > 10 {
            format!(" (and {} more)", n - 10)
        } else {
            String::new()
        };
        return Err(format!(
            "{}{more}; nothing was decided",
            problems.join("; ")
        ));
    }
    Ok(out)
}

/// Every advisory id and alias of the catalog, and the ids of the
/// security updates offered now that no advisory explains.
fn known_advisory_ids(state: &AppState, index: &Index) -> HashSet<String> {
    let mut known: HashSet<String> = HashSet::new();
    for a in index.advisories() {
        known.insert(a.id.clone());
        known.extend(a.aliases.iter().cloned());
    }
    if let Some(offered) = state.fleet.offered_updates() {
        for u in offered.iter().filter(|u| u.security) {
            known.insert(suite_update_id(&u.suites, &u.name, &u.candidate));
        }
    }
    known
}

/// `POST /api/v1/approvals/bulk`: one decision on many titles, each stored
/// and audited as its own, all in one transaction: all or nothing.
pub(crate) async fn bulk(
    State(state): State<AppState>,
    Approver(caller): Approver,
    body: JsonBody<Bulk>,
) -> ApiResult<Json<Value>> {
    let Json(req) = body?;
    let decided = decide_bulk(&state, &caller.username, req).await?;
    Ok(Json(decided))
}

/// Stores a bulk decision made by `by`; what the API and the console's
/// form both call.
pub(crate) async fn decide_bulk(state: &AppState, by: &str, req: Bulk) -> ApiResult<Value> {
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m);
    let verdict = stored_verdict(&req.verdict)
        .ok_or_else(|| invalid(format!("verdict {:?}: use approve or decline", req.verdict)))?;
    let comment = req
        .comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if let Some(c) = &comment {
        if c.chars().count() > MAX_COMMENT {
            return Err(invalid(format!(
                "comment: at most {MAX_COMMENT} characters"
            )));
        }
    }
    for (what, names) in [("ring", &req.rings), ("group", &req.groups)] {
        for n in names {
            crate::handlers::check_name(what, n)?;
        }
    }
    let titles = check_titles(state, &req.titles).map_err(invalid)?;
    let at = now(state);
    let mut bodies = Vec::with_capacity(titles.len());
    let mut reason = None;
    for title in &titles {
        let mut doc = ApprovalDoc {
            verdict: verdict.to_owned(),
            rings: req.rings.clone(),
            groups: req.groups.clone(),
            comment: comment.clone(),
            by: None,
            at: None,
        };
        doc.check(title, by, at).map_err(invalid)?;
        reason = doc.reason();
        let text = serde_json::to_string(&doc).map_err(ApiError::internal)?;
        bodies.push((title.as_str(), text, doc.action()));
    }
    let objects: Vec<(&str, &str, Why)> = bodies
        .iter()
        .map(|(title, text, action)| {
            (
                *title,
                text.as_str(),
                Why::new(by, action.clone()).because(reason.clone()),
            )
        })
        .collect();
    let replaced = state
        .store
        .put_plan_objects(ApprovalDoc::KIND, &objects, at)
        .await?;
    tracing::info!(titles = titles.len(), %by, verdict, "Decision stored in bulk.");
    crate::rollouts::plans_changed(state);
    Ok(json!({
        "verdict": if verdict == "approve" { "approved" } else { "declined" },
        "titles": titles,
        "replaced": replaced.iter().filter(|r| r.is_some()).count(),
        "comment": comment,
        "rings": req.rings,
        "groups": req.groups,
        "by": by,
        "at": at,
    }))
}
