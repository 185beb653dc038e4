//! Deferral requests: the user of a computer (through the agent on it) or
//! the help desk asks to put that host's updates off until a date, with a
//! business justification; an approver grants or refuses. A granted
//! deferral holds the host's jobs back until it ends (the planner says
//! "deferred until ..." with the reason), in one rollout or in all.
//!
//! A key design decision made here is that requests are planning documents
//! (kind `deferrals`), so every request and decision is in the audit log
//! with its before and after, and a decision is written only over the
//! request the approver read: two approvers deciding at once cannot both
//! win.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use jiff::{SignedDuration, Timestamp};
use patchwell_core::rollout::Deferred;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::{PlanStore, RolloutStore, Why};

use crate::auth::{Approver, Host, Operator, Reader};
use crate::error::ApiError;
use crate::handlers::{now, stored_host, ApiResult, JsonBody};
use crate::notify::{self, Notice};
use crate::{rollouts, AppState};

/// The kind of planning document a request is stored as.
pub(crate) const KIND: &str = "deferrals";

/// The longest deferral a request may ask for.
const MAX_DAYS: i64 = 90;

/// How many requests one host may have waiting for a decision.
const MAX_PENDING: usize = 3;

/// A request and, once made, its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeferralDoc {
    /// The host.
    pub(crate) host: String,
    /// One rollout, or every rollout (`None`).
    #[serde(default)]
    pub(crate) rollout: Option<String>,
    /// Until when.
    pub(crate) until: Timestamp,
    /// Why the updates would hurt the business now.
    pub(crate) justification: String,
    /// Who asked, as authenticated: `host:ID` for a request through the
    /// agent, else the console or API user. Never a name the agent sent.
    pub(crate) requested_by: String,
    /// The local user the host says asked (a request through the agent):
    /// the host's word only, no identity anyone verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_reported_by_host: Option<String>,
    /// The user the help desk asked for (a request through the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) on_behalf_of: Option<String>,
    /// When.
    pub(crate) requested_at: Timestamp,
    /// `pending`, `granted` or `refused`.
    pub(crate) state: String,
    /// The approver.
    #[serde(default)]
    pub(crate) decided_by: Option<String>,
    /// When they decided.
    #[serde(default)]
    pub(crate) decided_at: Option<Timestamp>,
    /// Their reason.
    #[serde(default)]
    pub(crate) decision: Option<String>,
}

/// `POST /api/v1/agent/deferrals` and `POST /api/v1/deferrals`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeferralRequest {
    /// The host (the person route only; an agent asks for its own).
    #[serde(default)]
    host: Option<String>,
    /// One rollout (default: every rollout).
    #[serde(default)]
    rollout: Option<String>,
    /// Until when.
    until: Timestamp,
    /// The business justification.
    justification: String,
    /// The local user who asks (the agent route).
    #[serde(default)]
    user: Option<String>,
}

/// `POST /api/v1/deferrals/{id}/grant|refuse`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decide {
    /// Why (required to refuse).
    #[serde(default)]
    reason: Option<String>,
    /// Grant a shorter deferral than asked.
    #[serde(default)]
    until: Option<Timestamp>,
}

/// `GET /api/v1/deferrals?state=pending`
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    host: Option<String>,
}

fn parse(name: &str, body: &str) -> ApiResult<DeferralDoc> {
    serde_json::from_str(body)
        .map_err(|e| ApiError::internal(format!("stored deferral {name} is damaged: {e}")))
}

/// Who asked, for people: the authenticated asker, with the user the host
/// reported or the help desk named, each said to be what it is.
fn asked_by(d: &DeferralDoc) -> String {
    match (&d.user_reported_by_host, &d.on_behalf_of) {
        (Some(user), _) => format!("{user} on host {} according to the host", d.host),
        (None, Some(user)) => format!("{} for {user}", d.requested_by),
        (None, None) => d.requested_by.clone(),
    }
}

fn view(name: &str, d: &DeferralDoc) -> Value {
    let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(name));
        o.insert("asked_by".into(), json!(asked_by(d)));
    }
    v
}

async fn all(state: &AppState) -> ApiResult<Vec<(String, DeferralDoc)>> {
    state
        .store
        .plan_objects(KIND)
        .await?
        .into_iter()
        .map(|o| Ok((o.name.clone(), parse(&o.name, &o.body)?)))
        .collect()
}

/// The requests `keep` keeps, as the API lists them.
async fn listed(state: &AppState, keep: impl Fn(&DeferralDoc) -> bool) -> ApiResult<Json<Value>> {
    let list: Vec<Value> = all(state)
        .await?
        .iter()
        .filter(|(_, d)| keep(d))
        .map(|(id, d)| view(id, d))
        .collect();
    Ok(Json(json!({ "deferrals": list })))
}

/// The granted deferrals in force now that apply to `rollout`, by host
/// (the one ending last where a host has several).
pub(crate) async fn granted(
    state: &AppState,
    rollout: &str,
    at: Timestamp,
) -> ApiResult<HashMap<String, Deferred>> {
    let mut out: HashMap<String, Deferred> = HashMap::new();
    for (_, d) in all(state).await? {
        if d.state != "granted"
            || d.until <= at
            || d.rollout.as_deref().is_some_and(|r| r != rollout)
        {
            continue;
        }
        let reason = format!(
            "{} (asked by {}, granted by {})",
            d.justification,
            asked_by(&d),
            d.decided_by.as_deref().unwrap_or("?")
        );
        match out.get(&d.host) {
            Some(e) if e.until >= d.until => {}
            _ => {
                out.insert(
                    d.host.clone(),
                    Deferred {
                        until: d.until,
                        reason,
                    },
                );
            }
        }
    }
    Ok(out)
}

/// Who asks: the authenticated caller, and the user they name.
enum Asker {
    /// A host, through its agent, naming one of its local users.
    Host { user: Option<String> },
    /// A person, perhaps for a user.
    Person {
        username: String,
        for_user: Option<String>,
    },
}

/// Checks and stores a request, and tells the patch team.
async fn request(
    state: &AppState,
    host: &str,
    asker: Asker,
    req: DeferralRequest,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let at = now(state);
    let hostname = stored_host(state, host).await?.hostname;
    let justification = req.justification.trim().to_owned();
    if justification.chars().count() < 10 {
        return Err(ApiError::bad_request(
            "a deferral needs a business justification: say in a sentence why updating now \
             would hurt the business",
        ));
    }
    if justification.chars().count() > 1000 {
        return Err(ApiError::bad_request(
            "justification: at most 1,000 characters",
        ));
    }
    if req.until <= at {
        return Err(ApiError::bad_request(format!(
            "until {}: that is not in the future",
            req.until
        )));
    }
    if req.until > at + SignedDuration::from_hours(24 * MAX_DAYS) {
        return Err(ApiError::bad_request(format!(
            "until {}: a deferral lasts at most {MAX_DAYS} days; ask for an exemption instead",
            req.until
        )));
    }
    if let Some(r) = &req.rollout {
        if state.store.rollout(r).await?.is_none() {
            return Err(ApiError::bad_request(format!("rollout {r} not found")));
        }
    }
    let pending = all(state)
        .await?
        .into_iter()
        .filter(|(_, d)| d.host == host && d.state == "pending")
        .count();
    if pending >= MAX_PENDING {
        return Err(ApiError::conflict(format!(
            "host {host} has {pending} deferral requests waiting for a decision already"
        )));
    }
    let id = format!(
        "d{}-{}",
        at.as_second(),
        crate::secrets::generate(3).map_err(ApiError::internal)?
    );
    let (requested_by, user_reported_by_host, on_behalf_of) = match asker {
        Asker::Host { user } => (format!("host:{host}"), user, None),
        Asker::Person { username, for_user } => (username, None, for_user),
    };
    let doc = DeferralDoc {
        host: host.to_owned(),
        rollout: req.rollout,
        until: req.until,
        justification,
        requested_by,
        user_reported_by_host,
        on_behalf_of,
        requested_at: at,
        state: "pending".into(),
        decided_by: None,
        decided_at: None,
        decision: None,
    };
    let body = serde_json::to_string(&doc).map_err(ApiError::internal)?;
    let why =
        Why::new(&doc.requested_by, "request-deferral").because(Some(doc.justification.clone()));
    state
        .store
        .put_plan_object(KIND, &id, &body, &why, at)
        .await?;
    notify::send(
        state,
        Notice {
            event: "deferral-requested",
            subject: format!("Deferral requested for {hostname} until {}", doc.until),
            text: format!(
                "{} asks to put the updates of {hostname} ({host}) off until {}{}.\n\n\
                 Justification: {}\n\nGrant or refuse it: patchwell deferrals grant {id} \
                 (or refuse {id} --reason ...).",
                asked_by(&doc),
                doc.until,
                doc.rollout
                    .as_deref()
                    .map(|r| format!(" in rollout {r}"))
                    .unwrap_or_default(),
                doc.justification
            ),
            data: view(&id, &doc),
            audiences: &["patch-team"],
        },
    )
    .await;
    Ok((StatusCode::CREATED, Json(view(&id, &doc))))
}

/// `POST /api/v1/agent/deferrals`: a user of this host asks.
pub(crate) async fn agent_request(
    State(state): State<AppState>,
    host: Host,
    body: JsonBody<DeferralRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(req) = body?;
    if req.host.as_deref().is_some_and(|h| h != host.id) {
        return Err(ApiError::bad_request(
            "an agent asks for its own host only; leave host out",
        ));
    }
    let user = req
        .user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    if user
        .as_deref()
        .is_some_and(|u| u.len() > 64 || u.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "user: at most 64 printable characters",
        ));
    }
    // The host is who asks; the user it names is only its word.
    request(&state, &host.id.clone(), Asker::Host { user }, req).await
}

/// `GET /api/v1/agent/deferrals`: this host's requests.
pub(crate) async fn agent_list(
    State(state): State<AppState>,
    host: Host,
) -> ApiResult<Json<Value>> {
    listed(&state, |d| d.host == host.id).await
}

/// `POST /api/v1/deferrals`: the help desk asks for a user.
pub(crate) async fn person_request(
    State(state): State<AppState>,
    Operator(caller): Operator,
    body: JsonBody<DeferralRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(req) = body?;
    let host = req
        .host
        .clone()
        .ok_or_else(|| ApiError::bad_request("host: which host's updates to defer"))?;
    let for_user = req
        .user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    if for_user
        .as_deref()
        .is_some_and(|u| u.len() > 64 || u.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "user: at most 64 printable characters",
        ));
    }
    let asker = Asker::Person {
        username: caller.username,
        for_user,
    };
    request(&state, &host, asker, req).await
}

/// `GET /api/v1/deferrals`
pub(crate) async fn list(
    State(state): State<AppState>,
    _: Reader,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    if let Some(s) = &q.state {
        if !["pending", "granted", "refused"].contains(&s.as_str()) {
            return Err(ApiError::bad_request(format!(
                "state {s:?}: use pending, granted or refused"
            )));
        }
    }
    listed(&state, |d| {
        q.state.as_deref().is_none_or(|s| d.state == s)
            && q.host.as_deref().is_none_or(|h| d.host == h)
    })
    .await
}

/// `POST /api/v1/deferrals/{id}/grant`
pub(crate) async fn grant(
    State(state): State<AppState>,
    Approver(caller): Approver,
    Path(id): Path<String>,
    body: JsonBody<Decide>,
) -> ApiResult<Json<Value>> {
    let Json(d) = body?;
    decide(&state, &caller.username, &id, true, d).await
}

/// `POST /api/v1/deferrals/{id}/refuse`
pub(crate) async fn refuse(
    State(state): State<AppState>,
    Approver(caller): Approver,
    Path(id): Path<String>,
    body: JsonBody<Decide>,
) -> ApiResult<Json<Value>> {
    let Json(d) = body?;
    decide(&state, &caller.username, &id, false, d).await
}

async fn decide(
    state: &AppState,
    approver: &str,
    id: &str,
    granted: bool,
    d: Decide,
) -> ApiResult<Json<Value>> {
    let at = now(state);
    let stored = state
        .store
        .plan_object(KIND, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("deferral request {id} not found")))?;
    let mut doc = parse(id, &stored.body)?;
    if doc.state != "pending" {
        return Err(ApiError::conflict(format!(
            "deferral request {id} was {} by {} already",
            doc.state,
            doc.decided_by.as_deref().unwrap_or("?")
        )));
    }
    let reason = d
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    if !granted && reason.is_none() {
        return Err(ApiError::bad_request(
            "refusing needs a reason: the user is told it",
        ));
    }
    if let Some(until) = d.until {
        if !granted {
            return Err(ApiError::bad_request(
                "until: only a grant may shorten a deferral",
            ));
        }
        if until > doc.until || until <= at {
            return Err(ApiError::bad_request(format!(
                "until {until}: a grant may shorten the deferral (to a time after now and \
                 not after {}), not lengthen it",
                doc.until
            )));
        }
        doc.until = until;
    }
    doc.state = if granted { "granted" } else { "refused" }.into();
    doc.decided_by = Some(approver.to_owned());
    doc.decided_at = Some(at);
    doc.decision = reason.clone();
    let body = serde_json::to_string(&doc).map_err(ApiError::internal)?;
    let action = if granted {
        "grant-deferral"
    } else {
        "refuse-deferral"
    };
    let why = Why::new(approver, action).because(reason);
    state
        .store
        .replace_plan_object(KIND, id, &stored.body, &body, &why, at)
        .await?;
    let mut withdrawn = Vec::new();
    if granted {
        // Jobs handed out but not yet delivered go back until it ends.
        withdrawn =
            rollouts::withdraw_deferred(state, &doc.host, doc.rollout.as_deref(), &why).await?;
    }
    notify::send(
        state,
        Notice {
            event: if granted {
                "deferral-granted"
            } else {
                "deferral-refused"
            },
            subject: format!("Deferral {id} {}", doc.state),
            text: format!(
                "{approver} {} the deferral of host {} until {} that {} asked for{}.",
                doc.state,
                doc.host,
                doc.until,
                asked_by(&doc),
                doc.decision
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            data: view(id, &doc),
            audiences: &["patch-team", "end-users"],
        },
    )
    .await;
    let mut out = view(id, &doc);
    if let Some(o) = out.as_object_mut() {
        o.insert("withdrawn_from".into(), json!(withdrawn));
    }
    Ok(Json(out))
}
