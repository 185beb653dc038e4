//! Advisories and updates in the console: search the catalog, see which
//! hosts an advisory reaches and why, and approve or decline by title (an
//! advisory id, or an update's `name=version`).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{html, Markup};
use patchwell_core::applicability::Index;
use patchwell_core::people::Access;
use serde::Deserialize;
use serde_json::Value;
use store::PlanStore;

use super::{body, encode, order, page, text, when, Listing, PageError, PageResult, Viewer};
use crate::auth::Approver;
use crate::error::ApiError;
use crate::plan_docs::{ApprovalDoc, Doc};
use crate::{catalog_api, plan_api, AppState};

pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(l): Query<Listing>,
) -> PageResult {
    let catalog = state.catalog.get();
    let index = &catalog.index;
    let words: Vec<String> =
        l.q.as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
    let kev_only = l.only.as_deref() == Some("kev");
    let reaching_only = l.only.as_deref() == Some("reaching");
    let hosts_of = |a: &patchwell_core::advisory::Advisory| {
        index
            .position(&a.id)
            .map_or(0, |p| state.fleet.advisory_host_count(p))
    };
    let mut rows: Vec<&patchwell_core::advisory::Advisory> = index
        .advisories()
        .iter()
        .filter(|a| !kev_only || index.kev(a).is_some())
        .filter(|a| !reaching_only || hosts_of(a) > 0)
        .filter(|a| catalog_api::matches_words(a, &words))
        .collect();
    let desc = l.descending_or(true);
    match l.sort_or("published") {
        "id" => order(&mut rows, desc, |a| a.id.clone()),
        "severity" => order(&mut rows, desc, |a| (Index::severity(a), a.id.clone())),
        "hosts" => order(&mut rows, desc, |a| (hosts_of(a), a.id.clone())),
        "kev" => order(&mut rows, desc, |a| {
            (index.kev(a).map(|k| k.date_added), a.id.clone())
        }),
        _ => order(&mut rows, desc, |a| (a.published, a.id.clone())),
    }
    let base = "/console/advisories";
    let content = html! {
        h1 { "Advisories" }
        form class="filters" method="get" action=(base) role="search" {
            div {
                label for="q" { "Search (id, CVE, title or package)" }
                input id="q" name="q" size="40" value=(l.q.as_deref().unwrap_or_default());
            }
            div {
                label for="only" { "Show" }
                select id="only" name="only" {
                    option value="" { "every advisory" }
                    option value="reaching" selected[reaching_only] { "those that reach hosts" }
                    option value="kev" selected[kev_only] { "known exploited (KEV)" }
                }
            }
            button type="submit" { "Search" }
        }
        p class="muted" { (index.advisories().len()) " advisories in the catalog." }
        table {
            thead { tr {
                (l.header_by(base, "id", "Advisory", "published", true))
                th scope="col" { "Title" }
                (l.header_by(base, "severity", "Severity", "published", true))
                (l.header_by(base, "kev", "Known exploited", "published", true))
                (l.header_by(base, "published", "Published", "published", true))
                (l.header_by(base, "hosts", "Hosts", "published", true))
            } }
            tbody { @for a in l.window(&rows) {
                tr {
                    td { a href=(format!("/console/advisories/{}", encode(&a.id))) { (a.id) } }
                    td { (a.title) }
                    td { (Index::severity(a).map_or("—", |s| s.as_str())) }
                    td { @if let Some(k) = index.kev(a) { span class="tag kev" { "KEV " (k.date_added.to_string()) } } }
                    td { (when(a.published.map(|p| p.to_string()).as_deref())) }
                    td class="num" { (hosts_of(a)) }
                }
            } }
        }
        (l.pager(base, rows.len()))
    };
    Ok(page(&viewer, "Advisories", l.done.as_deref(), content))
}

/// The decision stored on a title, if any: verdict, who, comment.
async fn decision(state: &AppState, title: &str) -> Result<Option<ApprovalDoc>, PageError> {
    Ok(
        match state.store.plan_object(ApprovalDoc::KIND, title).await? {
            Some(o) => Some(serde_json::from_str(&o.body).map_err(ApiError::internal)?),
            None => None,
        },
    )
}

/// Approve and decline buttons for a title, coming back to `back`.
fn decide_form(title: &str, back: &str, compact: bool) -> Markup {
    html! {
        form class="inline" method="post" action="/console/approvals" {
            input type="hidden" name="title" value=(title);
            input type="hidden" name="back" value=(back);
            @if !compact {
                label for="comment" { "Comment" }
                input id="comment" name="comment" size="30";
            }
            button type="submit" name="verdict" value="approve" aria-label=(format!("Approve {title}")) { "Approve" }
            " "
            button type="submit" class="secondary" name="verdict" value="decline" aria-label=(format!("Decline {title}")) { "Decline" }
        }
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(l): Query<Listing>,
) -> PageResult {
    // Only this page's hosts are read and explained.
    let window = catalog_api::HostWindow {
        offset: Some((l.page() - 1) * super::PER_PAGE),
        limit: Some(super::PER_PAGE),
    };
    let v = body(
        catalog_api::show_advisory(
            State(state.clone()),
            viewer.reader(),
            Path(id.clone()),
            Ok(Query(window)),
        )
        .await,
    )?;
    let host_count = v["host_count"].as_u64().unwrap_or(0) as usize;
    let s = &v["summary"];
    let decided = decision(&state, &id).await?;
    let hosts: Vec<Value> = v["hosts"].as_array().cloned().unwrap_or_default();
    let base = format!("/console/advisories/{}", encode(&id));
    let content = html! {
        h1 { (id) }
        p { (text(&s["title"])) }
        dl class="facts" {
            dt { "Aliases" } dd { @for a in s["aliases"].as_array().into_iter().flatten() { span class="tag" { (text(a)) } } }
            dt { "Severity" } dd { (text(&s["severity"])) @if !s["cvss_score"].is_null() { " · CVSS " (text(&s["cvss_score"])) } }
            dt { "Known exploited" } dd {
                @if let Some(k) = v["kev"].as_object() {
                    span class="tag kev" { "KEV" } " added " (text(&k["date_added"])) ", due " (text(&k["due_date"]))
                    @if k["ransomware"] == true { " · used in ransomware" }
                } @else { "no" }
            }
            dt { "EPSS" } dd { (text(&s["epss"])) }
            dt { "Published" } dd { (when(s["published"].as_str())) }
            dt { "Packages" } dd { @for p in s["packages"].as_array().into_iter().flatten() { span class="tag" { (text(p)) } } }
            dt { "Feed" } dd { (text(&s["feed"])) }
            dt { "Superseded by" } dd { @for a in v["superseded_by"].as_array().into_iter().flatten() {
                a href=(format!("/console/advisories/{}", encode(a.as_str().unwrap_or_default()))) { (text(a)) } " "
            } }
            dt { "Decision" } dd data-test="decision" {
                @match &decided {
                    Some(d) => { strong { (d.verdict) } " by " (d.by.as_deref().unwrap_or("?")) " " (when(d.at.map(|t| t.to_string()).as_deref())) @if let Some(c) = &d.comment { " — " (c) } }
                    None => { "none yet" }
                }
            }
        }
        @if viewer.may(Access::Approve) {
            div class="actions" { (decide_form(&id, &base, false)) }
        }
        h2 { "Hosts it reaches (" (host_count) ")" }
        table {
            thead { tr { th scope="col" { "Host" } th scope="col" { "Criticality" } th scope="col" { "Package" } th scope="col" { "Installed → fixed" } th scope="col" { "Why" } } }
            tbody { @for h in &hosts {
                @for f in h["findings"].as_array().into_iter().flatten() {
                    tr {
                        td { a href=(format!("/console/hosts/{}", encode(h["host"].as_str().unwrap_or_default()))) { (text(&h["hostname"])) } }
                        td { (text(&h["criticality"])) }
                        td { (text(&f["package"])) }
                        td { (text(&f["installed"])) " → " (text(&f["fixed"])) }
                        td { (text(&f["matched_by"])) }
                    }
                }
            } }
        }
        (l.pager(&base, host_count))
    };
    Ok(page(
        &viewer,
        &format!("Advisories: {id}"),
        l.done.as_deref(),
        content,
    ))
}

pub(crate) async fn updates(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(l): Query<Listing>,
) -> PageResult {
    let all = body(plan_api::offered_updates(State(state.clone()), viewer.reader()).await)?;
    let mut rows: Vec<Value> = all.as_array().cloned().unwrap_or_default();
    match l.only.as_deref() {
        Some("pending") => rows.retain(|u| u["decision"].is_null()),
        Some("approve") => rows.retain(|u| u["decision"] == "approve"),
        Some("decline") => rows.retain(|u| u["decision"] == "decline"),
        Some("security") => rows.retain(|u| u["security"] == true),
        _ => {}
    }
    let words: Vec<String> =
        l.q.as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
    rows.retain(|u| {
        words
            .iter()
            .all(|w| text(&u["title"]).to_lowercase().contains(w))
    });
    let desc = l.descending();
    match l.sort_or("security") {
        "name" => order(&mut rows, desc, |u| text(&u["title"])),
        "hosts" => order(&mut rows, desc, |u| u["hosts"].as_u64()),
        "decision" => order(&mut rows, desc, |u| text(&u["decision"])),
        // The store's order: security first, then by hosts.
        _ => {
            if desc {
                rows.reverse();
            }
        }
    }
    let base = "/console/updates";
    // Back to this page after a decision, without the search or sorting.
    let back = Listing {
        only: l.only.clone(),
        ..Listing::default()
    }
    .link(base, l.page(), None, None);
    let approver = viewer.may(Access::Approve);
    let content = html! {
        h1 { "Updates" }
        p class="muted" {
            "What the fleet's own package managers offer, one row per package and version. "
            "Approve or decline by title; a rollout of approved updates takes only the approved ones, and a declined update never enters a rollout."
        }
        form class="filters" method="get" action=(base) role="search" {
            div {
                label for="q" { "Package" }
                input id="q" name="q" value=(l.q.as_deref().unwrap_or_default());
            }
            div {
                label for="only" { "Show" }
                select id="only" name="only" {
                    option value="" { "every update" }
                    @for (v, label) in [("pending", "waiting for a decision"), ("approve", "approved"), ("decline", "declined"), ("security", "security updates")] {
                        option value=(v) selected[l.only.as_deref() == Some(v)] { (label) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        table {
            thead { tr {
                (l.header(base, "name", "Update", "security"))
                (l.header(base, "security", "Security", "security"))
                th scope="col" { "Suite" }
                (l.header(base, "hosts", "Hosts", "security"))
                (l.header(base, "decision", "Decision", "security"))
                @if approver { th scope="col" { "Decide" } }
            } }
            tbody { @for u in l.window(&rows) {
                @let title = text(&u["title"]);
                tr data-title=(title) {
                    td { (title) }
                    td { @if u["security"] == true { span class="bad" { "security" } } }
                    td { (text(&u["suite"])) }
                    td class="num" { (text(&u["hosts"])) }
                    td { (text(&u["decision"])) }
                    @if approver { td { (decide_form(&title, &back, true)) } }
                }
            } }
        }
        (l.pager(base, rows.len()))
    };
    Ok(page(&viewer, "Updates", l.done.as_deref(), content))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecideForm {
    title: String,
    verdict: String,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    back: Option<String>,
}

/// `POST /console/approvals`: approve or decline a title.
pub(crate) async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<DecideForm>,
) -> Result<Response, PageError> {
    let caller = viewer.require(Access::Approve)?;
    // A decision limited to some rings or groups keeps its limits: the
    // form changes the verdict and the comment only.
    let (rings, groups) = decision(&state, &form.title)
        .await?
        .map(|d| (d.rings, d.groups))
        .unwrap_or_default();
    let doc = ApprovalDoc {
        verdict: form.verdict.clone(),
        rings,
        groups,
        comment: form.comment.filter(|c| !c.trim().is_empty()),
        by: None,
        at: None,
    };
    let _ = plan_api::put_doc::<ApprovalDoc, Approver>(
        State(state),
        Approver(caller),
        Path(form.title.clone()),
        Ok(Json(doc)),
    )
    .await?;
    let back = match form.back.as_deref() {
        Some(b) if b.starts_with("/console") => b.to_owned(),
        _ => "/console/updates".to_owned(),
    };
    let verb = if form.verdict == "approve" {
        "approved"
    } else {
        "declined"
    };
    let sep = if back.contains('?') { '&' } else { '?' };
    Ok(Redirect::to(&format!(
        "{back}{sep}done={}",
        encode(&format!("{} {verb}.", form.title))
    ))
    .into_response())
}
