//! The console's record pages: the audit log (newest first, with its
//! verification), users and roles, the patch procedure and who has
//! acknowledged it, and the planning objects of each kind (baselines,
//! exemptions, policies, approvals, rules, contacts, owners).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use store::AuditStore;

use super::{
    body, encode, page, same_origin, text, when, Listing, PageError, PageResult, Viewer, PER_PAGE,
};
use crate::auth::Member;
use crate::error::ApiError;
use crate::plan_docs::{
    ApprovalDoc, ApprovalRuleDoc, BaselineDoc, ContactDoc, ExemptionDoc, GoNoGoDoc, OwnerDoc,
    PolicyDoc,
};
use crate::{people_api, plan_api, AppState};

pub(crate) async fn audit(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(l): Query<Listing>,
) -> PageResult {
    let subject = l.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let head = state.store.audit_head().await?;
    let page_no = l.page() as u64;
    let per = PER_PAGE as u64;
    // Newest first: without a subject the sequence has no gaps, so a page
    // is a range of it; with one, the newest entries of that subject.
    let (mut entries, total) = match subject {
        None => {
            let upto = head.saturating_sub((page_no - 1) * per);
            let after = upto.saturating_sub(per);
            let n = u32::try_from(upto - after).unwrap_or(0);
            (
                state.store.audit_entries(None, after, n).await?,
                usize::try_from(head).unwrap_or(usize::MAX),
            )
        }
        Some(s) => {
            let all = state.store.audit_entries(Some(s), 0, 10_000).await?;
            let total = all.len();
            let end = total.saturating_sub((l.page() - 1) * PER_PAGE);
            let start = end.saturating_sub(PER_PAGE);
            (all[start..end].to_vec(), total)
        }
    };
    entries.reverse();
    let verdict = people_api::verdict_json(&state.store.verify_audit().await?);
    let base = "/console/audit";
    let content = html! {
        h1 { "Audit log" }
        p data-test="audit-verdict" class=(if verdict["intact"] == true { "good" } else { "bad" }) {
            @if verdict["intact"] == true {
                "The chain is intact: " (text(&verdict["entries"])) " entries, head " code { (text(&verdict["head"])) } "."
            } @else {
                "The chain is broken: " (text(&verdict["problem"]))
            }
        }
        form class="filters" method="get" action=(base) role="search" {
            div {
                label for="q" { "Subject starts with" }
                input id="q" name="q" value=(subject.unwrap_or_default()) placeholder="rollouts/ or hosts/ID or approvals/";
            }
            button type="submit" { "Filter" }
        }
        table {
            thead { tr {
                th scope="col" class="num" { "#" } th scope="col" { "When" } th scope="col" { "Who" }
                th scope="col" { "Action" } th scope="col" { "Subject" } th scope="col" { "Reason" }
            } }
            tbody { @for e in &entries {
                tr {
                    td class="num" { (e.seq) }
                    td { (when(Some(&e.at.to_string()))) }
                    td { (e.event.actor) }
                    td { (e.event.action) }
                    td { (e.event.subject) }
                    td { (e.event.reason.as_deref().unwrap_or("")) }
                }
            } }
        }
        (l.pager(base, total))
    };
    Ok(page(&viewer, "Audit log", l.done.as_deref(), content))
}

pub(crate) async fn users(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(l): Query<Listing>,
) -> PageResult {
    let users = body(people_api::list_users(State(state), viewer.reader()).await)?;
    let content = html! {
        h1 { "Users" }
        p class="muted" {
            "Roles: admin (everything), approver (approvals, exemptions, baselines), operator (hosts, rollouts, feeds), auditor (reads everything). "
            "People are added with " code { "patchwell users create" } "."
        }
        table {
            thead { tr { th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { "Email" } th scope="col" { "Created" } th scope="col" { "State" } } }
            tbody { @for u in &users {
                tr {
                    td { (text(&u["username"])) }
                    td { (text(&u["role"])) }
                    td { (text(&u["email"])) }
                    td { (when(u["created_at"].as_str())) }
                    td { @if u["disabled_at"].is_null() { "enabled" } @else { span class="warn" { "disabled " (when(u["disabled_at"].as_str())) } } }
                }
            } }
        }
    };
    Ok(page(&viewer, "Users", l.done.as_deref(), content))
}

pub(crate) async fn procedure(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(l): Query<Listing>,
) -> PageResult {
    let shown = people_api::show_procedure(State(state), viewer.reader()).await;
    let content = match shown {
        Ok(Json(p)) => {
            let mine = p["acknowledged"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["user"] == viewer.caller.username.as_str());
            html! {
                h1 { "Procedure" }
                p class="muted" { "Version " (text(&p["version"])) ", published " (when(p["published_at"].as_str())) " by " (text(&p["published_by"])) "." }
                pre class="procedure" { (text(&p["text"])) }
                @if !mine {
                    form method="post" action="/console/procedure/acknowledge" {
                        input type="hidden" name="version" value=(text(&p["version"]));
                        button type="submit" { "I have read it and accept it" }
                    }
                }
                h2 { "Acknowledged" }
                ul { @for a in p["acknowledged"].as_array().into_iter().flatten() {
                    li { (text(&a["user"])) " " (when(a["at"].as_str())) }
                } }
                h2 { "Not yet acknowledged" }
                ul { @for u in p["not_acknowledged"].as_array().into_iter().flatten() { li { (text(u)) } } }
            }
        }
        Err(e) if e.status() == axum::http::StatusCode::NOT_FOUND => html! {
            h1 { "Procedure" }
            p class="muted" { "No patch procedure has been published yet: " code { "patchwell procedure publish FILE" } "." }
        },
        Err(e) => return Err(e.into()),
    };
    Ok(page(&viewer, "Procedure", l.done.as_deref(), content))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AckForm {
    version: u64,
}

pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<AckForm>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let request = serde_json::from_value(serde_json::json!({"version": form.version}))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    people_api::acknowledge_procedure(State(state), Member(viewer.caller), Ok(Json(request)))
        .await?;
    Ok(Redirect::to(&format!(
        "/console/procedure?done={}",
        encode("Acknowledged.")
    ))
    .into_response())
}

/// One planning object as a short list of its fields.
fn fields(v: &Value) -> Markup {
    const SHOWN_APART: [&str; 4] = ["name", "created_at", "updated_at", "updated_by"];
    html! {
        @if let Some(map) = v.as_object() {
            @for (k, x) in map {
                @if !SHOWN_APART.contains(&k.as_str()) && !x.is_null() && x != &Value::Array(Vec::new()) {
                    span class="field" { strong { (k) ": " } (short(x)) } " "
                }
            }
        }
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

/// `GET /console/plans/{kind}`: the planning objects of one kind.
pub(crate) async fn plans(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(kind): Path<String>,
    Query(l): Query<Listing>,
) -> PageResult {
    let (s, r) = (State(state.clone()), viewer.reader());
    let (title, listed) = match kind.as_str() {
        "baselines" => ("Baselines", plan_api::list_docs::<BaselineDoc>(s, r).await),
        "exemptions" => (
            "Exemptions",
            plan_api::list_docs::<ExemptionDoc>(s, r).await,
        ),
        "policies" => (
            "Policies, schedules and maintenance windows",
            plan_api::list_docs::<PolicyDoc>(s, r).await,
        ),
        "approvals" => ("Approvals", plan_api::list_docs::<ApprovalDoc>(s, r).await),
        "approval-rules" => (
            "Approval rules",
            plan_api::list_docs::<ApprovalRuleDoc>(s, r).await,
        ),
        "go-no-go" => ("Go / no-go", plan_api::list_docs::<GoNoGoDoc>(s, r).await),
        "contacts" => ("Contacts", plan_api::list_docs::<ContactDoc>(s, r).await),
        "owners" => ("Owners", plan_api::list_docs::<OwnerDoc>(s, r).await),
        other => {
            return Err(ApiError::not_found(format!(
                "no console page for planning objects of kind {other:?}"
            ))
            .into())
        }
    };
    let rows = body(listed)?;
    let content = html! {
        h1 { (title) }
        nav class="actions" aria-label="Planning objects" {
            @for k in ["baselines", "exemptions", "policies", "approvals", "approval-rules", "go-no-go", "contacts", "owners"] {
                @if k == kind { strong { (k) } } @else { a href=(format!("/console/plans/{k}")) { (k) } }
            }
        }
        p class="muted" { "Changed with " code { (format!("patchwell {kind} put NAME --file FILE.json")) } " or " code { (format!("PUT /api/v1/{kind}/NAME")) } "; every change is in the audit log." }
        @if rows.is_empty() {
            p class="muted" { "None yet." }
        } @else {
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "What it says" } th scope="col" { "Changed" } } }
                tbody { @for o in l.window(&rows) {
                    tr {
                        td { (text(&o["name"])) }
                        td { (fields(o)) }
                        td { (when(o["updated_at"].as_str())) " by " (text(&o["updated_by"])) }
                    }
                } }
            }
            (l.pager(&format!("/console/plans/{kind}"), rows.len()))
        }
    };
    Ok(page(&viewer, title, l.done.as_deref(), content))
}
