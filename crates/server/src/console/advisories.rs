//! Advisories and updates in the console: search the catalog, see which
//! hosts an advisory reaches and why, and approve or decline by title (an
//! advisory id, which reaches every update that fixes it, a source package,
//! or an update's `name=version`), one at a time or many at once.

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
                th scope="col" { "Kind" }
                (l.header_by(base, "hosts", "Hosts", "published", true))
            } }
            tbody { @for a in l.window(&rows) {
                tr {
                    td { a href=(format!("/console/advisories/{}", encode(&a.id))) { (a.id) } }
                    td { (a.title) }
                    td { (Index::severity(a).map_or("—", |s| s.as_str())) }
                    td { @if let Some(k) = index.kev(a) { span class="tag kev" { "KEV " (k.date_added.to_string()) } } }
                    td { (when(a.published.map(|p| p.to_string()).as_deref())) }
                    @if a.is_security() {
                        td { "security" }
                        td class="num" { (hosts_of(a)) }
                    } @else {
                        // Not a finding: the hosts it reaches are offered it as
                        // an available update (its page lists them).
                        td { "available update" }
                        td class="num muted" { "—" }
                    }
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
    // The offered updates that fix it (by id or by alias).
    let aliases: Vec<String> = std::iter::once(id.clone())
        .chain(
            s["aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned)),
        )
        .collect();
    let offered = body(plan_api::offered_updates(State(state.clone()), viewer.reader()).await)?;
    let fixing: Vec<Value> = offered
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| {
            u["advisories"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a.as_str().is_some_and(|a| aliases.iter().any(|x| x == a)))
        })
        .cloned()
        .collect();
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
                    Some(d) => { strong { (if d.verdict == "approve" { "approved" } else { "declined" }) } " by " (d.by.as_deref().unwrap_or("?")) " " (when(d.at.map(|t| t.to_string()).as_deref())) @if let Some(c) = &d.comment { " — " (c) } }
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
        h2 { "Updates that fix it (" (fixing.len()) ")" }
        p class="muted" { "A decision on the advisory is the decision on each of these, unless the update or its source package has one of its own." }
        table data-test="fixing" {
            thead { tr { th scope="col" { "Update" } th scope="col" { "Source" } th scope="col" { "Hosts" } th scope="col" { "Decision" } } }
            tbody { @for u in &fixing {
                tr data-title=(text(&u["title"])) {
                    td { (text(&u["name"])) " " span class="muted" { (text(&u["candidate"])) } }
                    td { (text(&u["source"])) }
                    td class="num" { (text(&u["hosts"])) }
                    td { (decision_cell(u)) }
                }
            } }
        }
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
    updates_page(&state, &viewer, &l, None).await
}

/// What the bulk form sent, kept to show it again with what was wrong.
#[derive(Debug, Default)]
pub(crate) struct BulkInput {
    titles: Vec<String>,
    comment: String,
    problem: String,
}

/// The updates of one source package on the page.
struct SourceGroup {
    source: String,
    rows: Vec<Value>,
    security: bool,
    hosts: u64,
}

/// A decision as the updates page shows it: the verdict, who, through
/// which title when not the update's own, and the comment.
fn decision_cell(u: &Value) -> Markup {
    let d = &u["decided_by"];
    html! {
        @if let Some(verdict) = u["decision"].as_str() {
            strong class=(if verdict == "approved" { "good" } else { "bad" }) data-test="decision" { (verdict) }
            " by " (text(&d["by"]))
            @if d["title"] != u["title"] { " (" span class="muted" { (d["rank"].as_str().unwrap_or_default()) " " } (text(&d["title"])) ")" }
            @if let Some(rings) = d["rings"].as_array().filter(|r| !r.is_empty()) {
                " for ring " (rings.iter().map(text).collect::<Vec<_>>().join(", "))
            }
            @if let Some(c) = d["comment"].as_str() { br; span class="comment" data-test="comment" { "“" (c) "”" } }
        } @else {
            span class="muted" { "waiting" }
        }
    }
}

async fn updates_page(
    state: &AppState,
    viewer: &Viewer,
    l: &Listing,
    input: Option<&BulkInput>,
) -> PageResult {
    let all = body(plan_api::offered_updates(State(state.clone()), viewer.reader()).await)?;
    let mut rows: Vec<Value> = all.as_array().cloned().unwrap_or_default();
    match l.only.as_deref() {
        Some("pending") => rows.retain(|u| u["decision"].is_null()),
        Some("approved" | "approve") => rows.retain(|u| u["decision"] == "approved"),
        Some("declined" | "decline") => rows.retain(|u| u["decision"] == "declined"),
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
        let haystack = format!(
            "{} {} {}",
            text(&u["title"]),
            text(&u["source"]),
            u["advisories"]
                .as_array()
                .map(|a| a.iter().map(text).collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        )
        .to_lowercase();
        words.iter().all(|w| haystack.contains(w))
    });
    // Binaries grouped under their source package.
    let mut groups: Vec<SourceGroup> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for u in rows {
        let source = u["source"]
            .as_str()
            .map_or_else(|| text(&u["name"]), str::to_owned);
        let i = *at.entry(source.clone()).or_insert_with(|| {
            groups.push(SourceGroup {
                source: source.clone(),
                rows: Vec::new(),
                security: false,
                hosts: 0,
            });
            groups.len() - 1
        });
        let g = &mut groups[i];
        g.security |= u["security"] == true;
        g.hosts = g.hosts.max(u["hosts"].as_u64().unwrap_or(0));
        g.rows.push(u);
    }
    let desc = l.descending();
    match l.sort_or("security") {
        "name" => order(&mut groups, desc, |g| g.source.clone()),
        "hosts" => order(&mut groups, desc, |g| (g.hosts, g.source.clone())),
        "decision" => order(&mut groups, desc, |g| {
            (text(&g.rows[0]["decision"]), g.source.clone())
        }),
        // Security first, then by hosts, then by name.
        _ => {
            groups.sort_by(|a, b| {
                (b.security, b.hosts)
                    .cmp(&(a.security, a.hosts))
                    .then_with(|| a.source.cmp(&b.source))
            });
            if desc {
                groups.reverse();
            }
        }
    }
    let update_count: usize = groups.iter().map(|g| g.rows.len()).sum();
    let base = "/console/updates";
    // Back to this page after a decision, without the search or sorting.
    let back = Listing {
        only: l.only.clone(),
        ..Listing::default()
    }
    .link(base, l.page(), None, None);
    let approver = viewer.may(Access::Approve);
    let kept: std::collections::HashSet<&str> = input
        .map(|i| i.titles.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let check = |title: &str, label: String| {
        html! {
            input type="checkbox" form="bulk" name="title" value=(title) checked[kept.contains(title)] aria-label=(label);
        }
    };
    let content = html! {
        h1 { "Updates" }
        p class="muted" {
            "What the fleet's own package managers offer, grouped by source package. "
            "Select updates or whole source packages and approve or decline them at once, with one comment; "
            "approving an advisory (on its page) approves every update that fixes it. "
            "An update's own decision wins over its source package's, which wins over an advisory's; "
            "among equals a decline wins. A rollout of approved updates takes only the approved ones, and a declined update never enters a rollout."
        }
        form class="filters" method="get" action=(base) role="search" {
            div {
                label for="q" { "Package, source or advisory" }
                input id="q" name="q" value=(l.q.as_deref().unwrap_or_default());
            }
            div {
                label for="only" { "Show" }
                select id="only" name="only" {
                    option value="" { "every update" }
                    @for (v, label) in [("pending", "waiting for a decision"), ("approved", "approved"), ("declined", "declined"), ("security", "security updates")] {
                        option value=(v) selected[l.only.as_deref() == Some(v)] { (label) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        p class="muted" { (update_count) " updates of " (groups.len()) " source packages." }
        @if approver {
            form id="bulk" class="actions" method="post" action="/console/approvals/bulk" {
                @if let Some(i) = input {
                    p class="error" role="alert" id="bulk-problem" { (i.problem) }
                }
                input type="hidden" name="back" value=(back);
                div {
                    label for="bulk-comment" { "Comment for the selected" }
                    input id="bulk-comment" name="comment" size="50" maxlength="2000" value=(input.map(|i| i.comment.as_str()).unwrap_or_default());
                }
                button type="submit" name="verdict" value="approve" { "Approve selected" }
                button type="submit" class="secondary" name="verdict" value="decline" { "Decline selected" }
            }
        }
        table class="updates" {
            thead { tr {
                @if approver { th scope="col" { span class="visually-hidden" { "Select" } } }
                (l.header(base, "name", "Update", "security"))
                (l.header(base, "security", "Security", "security"))
                th scope="col" { "Advisories" }
                (l.header(base, "hosts", "Hosts", "security"))
                (l.header(base, "decision", "Decision", "security"))
            } }
            @for g in l.window(&groups) {
                @let source_title = format!("{}{}", patchwell_core::approval::SOURCE_PREFIX, g.source);
                tbody data-source=(g.source) {
                    tr class="source" {
                        @if approver { td { (check(&source_title, format!("Select source package {} (every binary, every version)", g.source))) } }
                        th scope="rowgroup" colspan="5" {
                            "source " (g.source) " "
                            span class="muted" { "(" (g.rows.len()) " " (if g.rows.len() == 1 { "binary" } else { "binaries" }) ")" }
                        }
                    }
                    @for u in &g.rows {
                        @let title = text(&u["title"]);
                        tr data-title=(title) {
                            @if approver { td { (check(&title, format!("Select {title}"))) } }
                            td { (text(&u["name"])) " " span class="muted" { (text(&u["candidate"])) } }
                            td { @if u["security"] == true { span class="bad" { "security" } } " " span class="muted" { (text(&u["suite"])) } }
                            td {
                                @for a in u["advisories"].as_array().into_iter().flatten() {
                                    @let id = text(a);
                                    a class="tag" href=(format!("/console/advisories/{}", encode(&id))) { (id) } " "
                                }
                                @if let Some(id) = u["update_id"].as_str() { span class="tag" title="a security update no advisory in the catalog explains" { (id) } }
                            }
                            td class="num" { (text(&u["hosts"])) }
                            td { (decision_cell(u)) }
                        }
                    }
                }
            }
        }
        (l.pager(base, groups.len()))
    };
    Ok(page(viewer, "Updates", l.done.as_deref(), content))
}

/// `POST /console/approvals/bulk`: the selected titles approved or
/// declined with one comment, through the API's handler. A problem comes
/// back on the form, with what was selected and written.
pub(crate) async fn decide_bulk(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let caller = viewer.require(Access::Approve)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let titles: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "title")
        .map(|(_, v)| v.clone())
        .collect();
    let comment = field("comment").unwrap_or_default();
    let verdict = field("verdict").unwrap_or_default();
    let request = crate::approvals::Bulk {
        titles: titles.clone(),
        verdict: verdict.clone(),
        comment: Some(comment.clone()),
        rings: Vec::new(),
        groups: Vec::new(),
    };
    match crate::approvals::bulk(State(state.clone()), Approver(caller), Ok(Json(request))).await {
        Ok(Json(done)) => {
            let back = match field("back") {
                Some(b) if b.starts_with("/console") => b,
                _ => "/console/updates".to_owned(),
            };
            let n = done["titles"].as_array().map_or(0, Vec::len);
            let sep = if back.contains('?') { '&' } else { '?' };
            let said = format!(
                "{n} {} {}.",
                if n == 1 { "title" } else { "titles" },
                text(&done["verdict"])
            );
            Ok(Redirect::to(&format!("{back}{sep}done={}", encode(&said))).into_response())
        }
        Err(e) if e.status().is_client_error() => {
            let input = BulkInput {
                titles,
                comment,
                problem: e.message().to_owned(),
            };
            // The page the form was on (its filter and page), again.
            let l = field("back")
                .and_then(|b| b.parse::<axum::http::Uri>().ok())
                .and_then(|u| Query::<Listing>::try_from_uri(&u).ok())
                .map(|Query(l)| l)
                .unwrap_or_default();
            let page = updates_page(&state, &viewer, &l, Some(&input)).await?;
            Ok((e.status(), page).into_response())
        }
        Err(e) => Err(e.into()),
    }
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
