//! Scheduled deployments: a policy with a schedule and `auto_deploy` starts
//! a rollout at each of its scheduled times (Patch Tuesday, every Saturday
//! night ...), of the updates people approved, for the policy's hosts and
//! packages, under its maintenance windows, with the default rings (a 5%
//! pilot, the rest two business days later). Its rollouts carry no script
//! and, but for a version the policy names by `name=version` that no
//! approval covers, only approved versions, so they need no release; such a
//! named version waits for an approver's release like an operator's would.
//!
//! Once a minute the server starts each such policy whose next time after
//! its last start (or its definition) has come: a server that was down at
//! that time starts one rollout when it is back, not one per missed time.
//! Every start, and every time there was nothing approved to deploy, is in
//! the audit log (`scheduled-rollout` on `policies/NAME`), which is also
//! what says when a policy last started one.

use axum::extract::State;
use axum::Json;
use jiff::Timestamp;
use patchwell_core::people::Role;
use serde_json::{json, Value};
use store::{AuditEvent, AuditStore, PlanStore};

use crate::auth::{Caller, Operator};
use crate::error::ApiError;
use crate::handlers::{now, ApiResult};
use crate::plan_docs::{Doc, PolicyDoc};
use crate::AppState;

/// The audit log's action for a scheduled start.
const ACTION: &str = "scheduled-rollout";

/// Starts due deployments, once a minute.
pub(crate) async fn run(state: AppState) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        ticks.tick().await;
        deploy_due(&state).await;
    }
}

/// Starts a rollout for every policy with `auto_deploy` whose scheduled
/// time has come since its last start (or its definition), and says what
/// each start did.
pub async fn deploy_due(state: &AppState) -> Vec<Value> {
    let at = now(state);
    let policies = match state.store.plan_objects(PolicyDoc::KIND).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("reading policies for scheduled deployments: {e}");
            return Vec::new();
        }
    };
    let mut done = Vec::new();
    for o in policies {
        let Ok(doc) = serde_json::from_str::<PolicyDoc>(&o.body) else {
            tracing::warn!(policy = %o.name, "Stored policy is damaged; nothing deployed.");
            continue;
        };
        if !doc.auto_deploy {
            continue;
        }
        let Ok(policy) = doc.to_policy(&o.name) else {
            continue;
        };
        let since = match crate::people_api::last_recorded(
            state,
            &format!("{}/{}", PolicyDoc::KIND, o.name),
            ACTION,
        )
        .await
        {
            Ok(last) => last.map_or(o.updated_at, |l| l.max(o.updated_at)),
            Err(e) => {
                tracing::warn!(policy = %o.name, "reading when it last deployed: {}", e.message());
                continue;
            }
        };
        let Some(due) = policy.next_run(since) else {
            continue;
        };
        if due > at {
            continue;
        }
        match start(state, &o.name, &doc, due, at).await {
            Ok(outcome) => done.push(outcome),
            Err(e) => tracing::warn!(policy = %o.name, "starting its rollout: {}", e.message()),
        }
    }
    done
}

/// Starts the rollout of a policy's scheduled time `due`; audited, whether
/// it started or there was nothing approved to deploy.
async fn start(
    state: &AppState,
    name: &str,
    doc: &PolicyDoc,
    due: Timestamp,
    at: Timestamp,
) -> ApiResult<Value> {
    let rollout = format!(
        "{name}-{}",
        due.to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y%m%d-%H%M")
    );
    let schedule = doc.schedule.clone().unwrap_or_default();
    let reason = format!("Scheduled by policy {name} ({schedule})");
    let request = serde_json::from_value(json!({
        "name": rollout,
        "reason": reason,
        "hosts": doc.hosts,
        "updates": "approved",
        "packages": doc.packages,
        "policy": name,
        "start": "now",
    }))
    .map_err(ApiError::internal)?;
    // The scheduler starts rollouts and releases nothing: its approved
    // updates need no release, and a version the policy names that no
    // approval covers waits for an approver, as an operator's would.
    let scheduler = Caller {
        username: "scheduler".into(),
        role: Role::Operator,
        scopes: None,
        session: None,
    };
    let created =
        crate::rollouts::create(State(state.clone()), Operator(scheduler), Ok(Json(request))).await;
    let outcome = match created {
        Ok(_) => json!({"policy": name, "due": due, "rollout": rollout, "started": true}),
        // Nothing approved to deploy, or no host: said, and not retried
        // until the next time.
        Err(e) if e.status().is_client_error() => {
            json!({"policy": name, "due": due, "rollout": null, "started": false, "why": e.message()})
        }
        Err(e) => return Err(e),
    };
    state
        .store
        .record(
            &AuditEvent {
                actor: "scheduler".into(),
                action: ACTION.into(),
                subject: format!("{}/{name}", PolicyDoc::KIND),
                before: None,
                after: Some(outcome.to_string()),
                reason: Some(format!("the policy's schedule: {schedule}")),
            },
            at,
        )
        .await?;
    tracing::info!(policy = %name, %rollout, started = outcome["started"] == true, "Scheduled deployment.");
    Ok(outcome)
}
