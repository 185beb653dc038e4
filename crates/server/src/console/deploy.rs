//! Rollouts in the console: the list with the form that starts one, one
//! rollout with its rings live, its hosts, its review and the actions
//! people take on it (release or refuse, halt, resume, roll back, redeploy,
//! approve a ring, notes, raise a baseline).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use futures_util::Stream;
use maud::{html, Markup};
use patchwell_core::people::Access;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{body, encode, order, page, text, when, Listing, PageError, PageResult, Viewer};
use crate::auth::{Approver, Operator};
use crate::error::ApiError;
use crate::{rollouts, AppState};

/// Hosts, succeeded, failed, in progress, rolled back and exempt, over a
/// rollout's rings.
fn totals(r: &Value) -> (usize, usize, usize, usize, usize, usize) {
    let mut t = (0, 0, 0, 0, 0, 0);
    for ring in r["rings"].as_array().into_iter().flatten() {
        let n = |k: &str| {
            ring[k]
                .as_u64()
                .map_or(0, |n| usize::try_from(n).unwrap_or(0))
        };
        t.0 += n("hosts");
        t.1 += n("succeeded");
        t.2 += n("failed");
        t.3 += n("in_progress");
        t.4 += n("rolled_back");
        t.5 += n("exempt");
    }
    t
}

/// A progress bar with its numbers as its accessible name (the exempt
/// hosts where the plan was made to know them).
pub(crate) fn bar(
    hosts: usize,
    (ok, failed, running, back): (usize, usize, usize, usize),
    exempt: Option<usize>,
) -> Markup {
    let pct = |n: usize| {
        if hosts == 0 {
            0.0
        } else {
            n as f64 * 100.0 / hosts as f64
        }
    };
    let label = format!(
        "{ok} of {hosts} succeeded, {failed} failed, {running} in progress, {back} rolled back{}",
        exempt.map_or(String::new(), |n| format!(", {n} exempt"))
    );
    html! {
        // Drawn as SVG: its geometry is attributes, not inline style, which
        // the Content-Security-Policy forbids.
        svg class="bar" role="img" aria-label=(label) viewBox="0 0 100 1" preserveAspectRatio="none" {
            title { (label) }
            @for (class, x, width) in segments(&[("ok", pct(ok)), ("fail", pct(failed)), ("run", pct(running)), ("back", pct(back))]) {
                rect class=(class) x=(format!("{x:.2}")) y="0" width=(format!("{width:.2}")) height="1" {}
            }
        }
    }
}

/// Segments laid end to end: each one's class, where it starts and its
/// width, in percent.
fn segments<'a>(parts: &[(&'a str, f64)]) -> Vec<(&'a str, f64, f64)> {
    let mut x = 0.0;
    parts
        .iter()
        .map(|&(class, width)| {
            let start = x;
            x += width;
            (class, start, width)
        })
        .collect()
}

/// An event stream of HTML fragments: `produce` is asked every `every`;
/// a fragment goes out when it differs from the last, and the stream ends
/// (with an `end` event) once `produce` says so.
pub(crate) fn fragments<F, Fut>(
    every: Duration,
    produce: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = (String, bool)> + Send,
{
    struct S<F> {
        produce: F,
        last: Option<String>,
        ended: bool,
        first: bool,
    }
    let start = S {
        produce,
        last: None,
        ended: false,
        first: true,
    };
    let stream = futures_util::stream::unfold(start, move |mut s| async move {
        if s.ended {
            return None;
        }
        loop {
            if !s.first {
                tokio::time::sleep(every).await;
            }
            s.first = false;
            let (html, end) = (s.produce)().await;
            if end {
                s.ended = true;
                let event = Event::default().data(html);
                return Some((Ok(event), s));
            }
            if s.last.as_deref() != Some(html.as_str()) {
                s.last = Some(html.clone());
                return Some((Ok(Event::default().data(html)), s));
            }
        }
    });
    let end = futures_util::stream::once(async { Ok(Event::default().event("end").data("")) });
    use futures_util::StreamExt;
    Sse::new(stream.chain(end)).keep_alive(KeepAlive::default())
}

// ---------------------------------------------------------------------------
// The list and the form that starts a rollout.

pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(l): Query<Listing>,
) -> PageResult {
    let all = body(rollouts::list(State(state.clone()), viewer.reader()).await)?;
    let mut rows: Vec<Value> = all.as_array().cloned().unwrap_or_default();
    let key = l.sort_or("created_at").to_owned();
    order(&mut rows, l.descending_or(true), |r| {
        r[key.as_str()].to_string()
    });
    let base = "/console/rollouts";
    let updates =
        body(crate::plan_api::offered_updates(State(state.clone()), viewer.reader()).await)?;
    let approved = updates
        .as_array()
        .map(|a| a.iter().filter(|u| u["decision"] == "approved").count())
        .unwrap_or(0);
    let policies: Vec<String> = store::PlanStore::plan_objects(
        &state.store,
        <crate::plan_docs::PolicyDoc as crate::plan_docs::Doc>::KIND,
    )
    .await?
    .into_iter()
    .map(|o| o.name)
    .collect();
    let content = html! {
        h1 { "Rollouts" }
        @if rows.is_empty() {
            p class="muted" { "No rollout yet." }
        } @else {
            table {
                thead { tr {
                    (l.header_by(base, "name", "Name", "created_at", true))
                    (l.header_by(base, "status", "Status", "created_at", true))
                    th scope="col" { "Reason" }
                    th scope="col" class="num" { "Packages" }
                    (l.header_by(base, "created_at", "Created", "created_at", true))
                    th scope="col" { "By" }
                } }
                tbody { @for r in l.window(&rows) {
                    @let name = r["name"].as_str().unwrap_or_default();
                    tr {
                        td { a href=(format!("/console/rollouts/{}", encode(name))) { (name) } }
                        td { (text(&r["status"])) }
                        td { (text(&r["reason"])) }
                        td class="num" { (text(&r["packages"])) }
                        td { (when(r["created_at"].as_str())) }
                        td { (text(&r["created_by"])) }
                    }
                } }
            }
            (l.pager(base, rows.len()))
        }
        @if viewer.may(Access::Operate) {
            h2 id="new" { "Start a rollout" }
            p class="muted" {
                "Versions are frozen when the rollout is created: every ring gets what the pilot tested. "
                (approved) " update(s) are approved now; see " a href="/console/updates" { "Updates" } ". "
                "Started by someone who may not approve, a rollout with versions no approval covers waits until an approver or an administrator releases it."
            }
            form class="stack" method="post" action="/console/rollouts" aria-labelledby="new" {
                div { label for="name" { "Name" } input id="name" name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._-]*" placeholder="2026-12-patch-tuesday"; }
                div { label for="updates" { "Updates" }
                    select id="updates" name="updates" {
                        option value="approved" selected { "Approved updates" }
                        option value="security" { "All security updates (declined left out)" }
                        option value="all" { "All updates (declined left out)" }
                    }
                }
                div { label for="hosts" { "Hosts (a query; empty: every host)" } input id="hosts" name="hosts" placeholder="os = debian and tag = laptop"; }
                div { label for="pilot" { "Pilot ring size" } input id="pilot" name="pilot" value="5%"; }
                div { label for="wait" { "Business days between pilot and the rest" } input id="wait" name="wait" type="number" min="0" max="30" value="2"; }
                div { label for="budget" { "Disruption budget (hosts or %, at once)" } input id="budget" name="budget" placeholder="unlimited"; }
                div { label for="gate" { "Pilot's success gate (% of its hosts that must succeed first)" } input id="gate" name="gate" type="number" min="1" max="100" value="95"; }
                div { label for="halt" { "Halt when a ring's failures pass (% of its hosts)" } input id="halt" name="halt" type="number" min="1" max="100" value="10"; }
                div { label for="policy" { "Policy (its maintenance windows and schedule)" }
                    select id="policy" name="policy" {
                        option value="" selected { "None: any time" }
                        @for p in &policies { option value=(p) { (p) } }
                    }
                }
                div { label for="start" { "Start" }
                    select id="start" name="start" {
                        option value="" selected { "At the policy's next scheduled time, if it has one; else now" }
                        option value="now" { "Now" }
                    }
                }
                div class="wide" { label for="reason" { "Reason (the chain of communication is told)" } textarea id="reason" name="reason" required rows="2" {} }
                div { button type="submit" { "Start rollout" } }
            }
        }
    };
    Ok(page(&viewer, "Rollouts", l.done.as_deref(), content))
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewRollout {
    name: String,
    reason: String,
    updates: String,
    #[serde(default)]
    hosts: String,
    #[serde(default)]
    pilot: String,
    #[serde(default)]
    wait: String,
    #[serde(default)]
    budget: String,
    #[serde(default)]
    gate: String,
    #[serde(default)]
    halt: String,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    start: String,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<NewRollout>,
) -> Result<Response, PageError> {
    let caller = viewer.require(Access::Operate)?;
    let wait: i64 = match form.wait.trim() {
        "" => 2,
        w => w.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "business days {:?}: give a whole number",
                super::clip(w)
            ))
        })?,
    };
    let pilot = match form.pilot.trim() {
        "" => "5%",
        p => p,
    };
    let percent = |what: &str, text: &str, default: u32| -> Result<u32, ApiError> {
        match text.trim() {
            "" => Ok(default),
            t => t.parse::<u32>().ok().filter(|p| *p <= 100).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{what} {:?}: give a whole percentage, 0 to 100",
                    super::clip(t)
                ))
            }),
        }
    };
    let gate = percent("the pilot's success gate", &form.gate, 95)?;
    let halt = percent("the halt on failures", &form.halt, 10)?;
    let mut request = json!({
        "name": form.name.trim(),
        "reason": form.reason,
        "updates": form.updates,
        "rings": [
            {"name": "pilot", "size": pilot, "gate_success_percent": gate, "halt_failure_percent": halt},
            {"name": "broad", "size": "rest", "wait_business_days": wait, "halt_failure_percent": halt},
        ],
    });
    if !form.hosts.trim().is_empty() {
        request["hosts"] = json!(form.hosts.trim());
    }
    if !form.budget.trim().is_empty() {
        request["budget"] = json!(form.budget.trim());
    }
    if !form.policy.trim().is_empty() {
        request["policy"] = json!(form.policy.trim());
    }
    if !form.start.trim().is_empty() {
        request["start"] = json!(form.start.trim());
    }
    let request =
        serde_json::from_value(request).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let name = form.name.trim().to_owned();
    let (_, Json(created)) =
        rollouts::create(State(state), Operator(caller), Ok(Json(request))).await?;
    let done = match created["starts_at"].as_str() {
        _ if created["status"] == rollouts::AWAITING_RELEASE => format!(
            "Rollout created; nothing of it runs until an approver or administrator releases it, \
             since {}.",
            created["release"]["why"].as_str().unwrap_or_default()
        ),
        Some(at) => format!(
            "Rollout created; the pilot ring starts at {}.",
            at.parse::<jiff::Timestamp>()
                .map_or_else(|_| at.to_owned(), |t| patchwell_core::rollout::human(&t))
        ),
        None => "Rollout created; the pilot ring starts now.".to_owned(),
    };
    Ok(Redirect::to(&format!(
        "/console/rollouts/{}?done={}",
        encode(&name),
        encode(&done)
    ))
    .into_response())
}

// ---------------------------------------------------------------------------
// One rollout.

/// The part of a rollout's page that changes while it runs: its status,
/// its rings (and what a ring stuck at its gate lacks), and the review's
/// figures, all from one plan, so no two figures on the page disagree.
fn progress(r: &Value, review: &Value) -> Markup {
    let (hosts, ok, failed, running, back, exempt) = totals(r);
    let halted_by_itself = r["halted_by"] == "failures";
    html! {
        section aria-labelledby="progress" {
            h2 id="progress" { "Progress" }
            p {
                "Status: " strong data-test="status" { (text(&r["status"])) }
                @if let Some(h) = r["halt"].as_str() {
                    " · " span class="bad" data-test="halt" {
                        @if halted_by_itself { "halted by itself: " } (h)
                    }
                }
                @if r["complete"] == true { " · every host is done" }
            }
            (bar(hosts, (ok, failed, running, back), Some(exempt)))
            p class="muted" { (ok) " succeeded, " (failed) " failed, " (running) " in progress, " (back) " rolled back, " (exempt) " exempt, of " (hosts) " hosts" }
            table {
                thead { tr {
                    th scope="col" { "Ring" } th scope="col" { "State" } th scope="col" { "Why" }
                    th scope="col" class="num" { "Hosts" } th scope="col" class="num" { "Succeeded" }
                    th scope="col" class="num" { "Failed" } th scope="col" class="num" { "In progress" }
                    th scope="col" class="num" { "Deferred" } th scope="col" class="num" { "Exempt" }
                } }
                tbody { @for ring in r["rings"].as_array().into_iter().flatten() {
                    tr data-ring=(text(&ring["name"])) {
                        th scope="row" { (text(&ring["name"])) }
                        td data-test="ring-state" { (text(&ring["state"])) }
                        td data-test="ring-reason" { (text(&ring["reason"])) }
                        td class="num" { (text(&ring["hosts"])) }
                        td class="num" { (text(&ring["succeeded"])) }
                        td class="num" { (text(&ring["failed"])) }
                        td class="num" { (text(&ring["in_progress"])) }
                        td class="num" { (text(&ring["deferred"])) }
                        td class="num" { (text(&ring["exempt"])) }
                    }
                } }
            }
            @for ring in r["rings"].as_array().into_iter().flatten() {
                @let g = &ring["gate"];
                @if g.is_object() {
                    div class="gate" data-test="gate" {
                        p {
                            strong { "Ring " (text(&ring["name"])) " waits for ring " (text(&g["ring"])) "'s gate: " }
                            "it lacks " (text(&g["lacking"])) " of the " (text(&g["needed"])) " successes it needs ("
                            (text(&g["succeeded"])) " so far). Of ring " (text(&g["ring"])) "'s hosts, "
                            (text(&g["installing"])) " are installing, " (text(&g["offline"])) " offline, "
                            (text(&g["later"])) " wait for a window or the budget and " (text(&g["failed"])) " failed or were rolled back"
                            @if g["unhealthy"].as_u64().unwrap_or(0) > 0 { "; the health check failed on " (text(&g["unhealthy"])) } "."
                            @if g["stuck"] == true { " " strong class="warn" { "It cannot pass by itself." } }
                        }
                        p { "What would move it:" }
                        ul { @for a in g["actions"].as_array().into_iter().flatten() { li { (text(a)) } } }
                    }
                }
            }
        }
        section aria-labelledby="review" {
            h2 id="review" { "Post-implementation review" }
            dl class="facts" data-test="review" {
                dt { "Targets" } dd { (text(&review["targets"])) }
                dt { "Succeeded" } dd { (text(&review["succeeded"])) }
                dt { "Failed" } dd { (text(&review["failed"])) }
                dt { "Rolled back" } dd { (text(&review["rolled_back"])) }
                dt { "In progress" } dd { (text(&review["in_progress"])) }
                dt { "Time to 50%" } dd { (seconds(&review["seconds_to_50_percent"])) }
                dt { "Time to 95%" } dd { (seconds(&review["seconds_to_95_percent"])) }
                dt { "Deadline met" } dd { (text(&review["deadline_met"])) }
            }
        }
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(l): Query<Listing>,
) -> PageResult {
    // The page and its review from one plan, as the API's show and review
    // give them.
    let (r, review, mut hosts) = rollouts::shown_and_reviewed(&state, &name).await?;
    let gate_rings: Vec<(String, u64)> = r["rings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| {
            let prev = &g["gate"];
            Some((prev["ring"].as_str()?.to_owned(), prev["percent"].as_u64()?))
        })
        .filter(|(_, p)| *p > 0)
        .collect();
    let stuck_failed = r["rings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|g| g["gate"]["failed"].as_u64().unwrap_or(0) > 0);
    let every = hosts.len();
    let mut by_progress: BTreeMap<&str, usize> = BTreeMap::new();
    for h in &hosts {
        *by_progress.entry(dash(&h.progress)).or_default() += 1;
    }
    let by_progress: Vec<(String, usize)> = by_progress
        .into_iter()
        .map(|(p, n)| (p.to_owned(), n))
        .collect();
    if let Some(only) = l.only.as_deref().filter(|o| !o.is_empty()) {
        hosts.retain(|h| h.progress.as_deref() == Some(only));
    }
    // Sorted by borrowed text: no copy of 10,000 keys.
    let field: fn(&rollouts::ShownHost) -> &str = match l.sort_or("hostname") {
        "ring" => |h| dash(&h.ring),
        "progress" => |h| dash(&h.progress),
        "step" => |h| dash(&h.step),
        _ => |h| dash(&h.hostname),
    };
    hosts.sort_by(|a, b| field(a).cmp(field(b)));
    if l.descending() {
        hosts.reverse();
    }
    let base = format!("/console/rollouts/{}", encode(&name));
    let status = r["status"].as_str().unwrap_or_default();
    let waiting_rings: Vec<String> = r["rings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["state"] == "waiting" && g["manual_approval"] == true)
        .filter_map(|g| g["name"].as_str().map(str::to_owned))
        .collect();
    let act = format!("{base}/act");
    // Nothing of a rollout that was never released ran: there is nothing
    // to roll back.
    let unreleased = status == rollouts::AWAITING_RELEASE || status == rollouts::REFUSED;
    let content = html! {
        h1 { "Rollout " (name) }
        dl class="facts" {
            dt { "Reason" } dd { (text(&r["reason"])) }
            dt { "Created" } dd { (when(r["created_at"].as_str())) " by " (text(&r["created_by"])) }
            dt { "Generation" } dd { (text(&r["generation"])) }
            dt { "Packages (frozen)" } dd {
                @for p in r["packages"].as_array().into_iter().flatten() {
                    span class="tag" { (text(&p["name"])) " " (text(&p["version"])) }
                }
            }
            @if let Some(starts) = r["starts_at"].as_str() {
                dt { "Scheduled start" } dd { (when(Some(starts))) }
            }
            dt { "Expires" } dd { (when(r["expires_at"].as_str())) }
        }
        (release_section(&r, &act, viewer.may(Access::Approve)))
        @if viewer.may(Access::Operate) {
            div class="actions" {
                @if status == "running" {
                    form class="inline" method="post" action=(act) data-confirm="Halt this rollout? No new host will start." {
                        input type="hidden" name="action" value="halt";
                        label for="halt-reason" { "Reason" }
                        input id="halt-reason" name="reason" required placeholder="why halt";
                        button type="submit" class="danger" { "Halt" }
                    }
                }
                @if status == "halted" && r["halted_by"] == "person" {
                    form class="inline" method="post" action=(act) {
                        input type="hidden" name="action" value="resume";
                        button type="submit" { "Resume" }
                    }
                }
                @if status == "halted" || (status == "running" && stuck_failed) {
                    form class="inline" method="post" action=(act) {
                        input type="hidden" name="action" value="redeploy";
                        label for="redeploy-reason" { "Reason" }
                        input id="redeploy-reason" name="reason" required placeholder="why retry";
                        button type="submit" class="secondary" { "Redeploy (new generation)" }
                    }
                }
                @if status == "running" || status == "halted" {
                    @for (ring, percent) in &gate_rings {
                        form class="inline" method="post" action=(act) data-confirm=(format!("Lower ring {ring}'s success gate? The next ring starts with fewer of its hosts succeeded.")) {
                            input type="hidden" name="action" value="gate";
                            input type="hidden" name="ring" value=(ring);
                            label for=(format!("gate-{ring}")) { "Gate of ring " (ring) " (%, now " (percent) ")" }
                            input id=(format!("gate-{ring}")) name="gate_success_percent" type="number" min="0" max=(percent.saturating_sub(1)) required;
                            label for=(format!("gate-reason-{ring}")) { "Reason" }
                            input id=(format!("gate-reason-{ring}")) name="reason" required placeholder="why lower it";
                            button type="submit" { "Lower the gate" }
                        }
                    }
                }
                @if !unreleased && status != "rolling_back" && status != "rolled_back" && (status != "complete" || review["succeeded"].as_u64().unwrap_or(0) > 0) {
                    form class="inline" method="post" action=(act) data-confirm="Roll back every host where this rollout installed?" {
                        input type="hidden" name="action" value="rollback";
                        label for="rollback-reason" { "Reason" }
                        input id="rollback-reason" name="reason" required placeholder="why roll back";
                        button type="submit" class="danger" { "Roll back" }
                    }
                }
                @if viewer.may(Access::Approve) {
                    @for ring in &waiting_rings {
                        form class="inline" method="post" action=(act) {
                            input type="hidden" name="action" value="approve";
                            input type="hidden" name="ring" value=(ring);
                            button type="submit" { "Approve ring " (ring) }
                        }
                    }
                }
            }
        }
        div data-live=(format!("{base}/live")) { (progress(&r, &review)) }
        section aria-labelledby="notes" {
            h3 id="notes" { "Notes" }
            @for n in review["notes"].as_array().into_iter().flatten() {
                p { (text(&n["text"])) " — " (text(&n["by"])) " " (when(n["at"].as_str())) }
            }
            @if viewer.may(Access::Operate) {
                form class="actions" method="post" action=(act) {
                    input type="hidden" name="action" value="note";
                    label for="note" { "Add a note" }
                    input id="note" name="note" required size="60";
                    button type="submit" class="secondary" { "Add note" }
                }
            }
            @if viewer.may(Access::Approve) {
                form class="actions" method="post" action=(act) {
                    input type="hidden" name="action" value="raise-baseline";
                    label for="baseline" { "Raise baseline to this result" }
                    input id="baseline" name="baseline" required placeholder="baseline name";
                    button type="submit" class="secondary" { "Raise baseline" }
                }
            }
        }
        section aria-labelledby="hosts" {
            h2 id="hosts" { "Hosts" }
            p class="muted" data-test="hosts-as-of" {
                "As the page was loaded (" (when(Some(&crate::handlers::now(&state).to_string()))) "); the progress and the review above are live. Reload for each host's latest."
            }
            form class="filters" method="get" action=(base) {
                div {
                    label for="only" { "Progress" }
                    select id="only" name="only" {
                        option value="" { "every host (" (every) ")" }
                        @for (p, n) in &by_progress {
                            option value=(p) selected[l.only.as_deref() == Some(p.as_str())] { (p) " (" (n) ")" }
                        }
                    }
                }
                button type="submit" class="secondary" { "Show" }
            }
            table {
                thead { tr {
                    (l.header(&base, "hostname", "Host", "hostname"))
                    (l.header(&base, "ring", "Ring", "hostname"))
                    (l.header(&base, "progress", "Progress", "hostname"))
                    (l.header(&base, "step", "Last step", "hostname"))
                    th scope="col" { "What the plan says" }
                    th scope="col" { "Detail" }
                } }
                tbody { @for h in l.window(&hosts) {
                    tr {
                        td { a href=(format!("/console/hosts/{}", encode(&h.host))) { (dash(&h.hostname)) } }
                        td { (dash(&h.ring)) }
                        td { (dash(&h.progress)) }
                        td { (dash(&h.step)) }
                        td { (h.action) }
                        td { (dash(&h.detail)) }
                    }
                } }
            }
            (l.pager(&base, hosts.len()))
        }
    };
    Ok(page(
        &viewer,
        &format!("Rollouts: {name}"),
        l.done.as_deref(),
        content,
    ))
}

/// What of a rollout needs (or needed) an approver's release, with the
/// full text of each script and the versions no approval covers; for those
/// who may, the release and refusal forms beside them.
fn release_section(r: &Value, act: &str, may_approve: bool) -> Markup {
    let release = &r["release"];
    if release.is_null() {
        return html! {};
    }
    let state = release["state"].as_str().unwrap_or_default();
    html! {
        section class="release" aria-labelledby="release" {
            h2 id="release" { "Release" }
            @if state == rollouts::AWAITING_RELEASE {
                p data-test="release-state" {
                    strong class="warn" { "Awaits release." }
                    " Nothing of it runs until an approver or administrator releases it, since "
                    (text(&release["why"])) "."
                }
            } @else if state == "released" {
                p data-test="release-state" {
                    "Released by " (text(&release["by"])) " " (when(release["at"].as_str()))
                    @if let Some(why) = release["reason"].as_str() { ": " (why) } "."
                }
            } @else {
                p data-test="release-state" {
                    strong class="bad" { "Refused" } " by " (text(&release["by"])) " "
                    (when(release["at"].as_str()))
                    @if let Some(why) = release["reason"].as_str() { ": " (why) }
                    ". Nothing of it runs."
                }
            }
            @for s in release["scripts"].as_array().into_iter().flatten() {
                h3 { "Script " code { (text(&s["hook"])) } ", run as root on every host" }
                pre class="script" { (text(&s["text"])) }
                p class="muted" { "SHA-256 " code { (text(&s["sha256"])) } }
            }
            @let uncovered: Vec<&str> = release["uncovered"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            @if !uncovered.is_empty() {
                p { "Versions no approval covers: "
                    @for v in &uncovered { span class="tag" { (v) } }
                }
            }
            @if state == rollouts::AWAITING_RELEASE {
                @if may_approve {
                    div class="actions" {
                        form class="inline" method="post" action=(act) data-confirm="Release this rollout? Its scripts run as root and its versions install on every host it targets." {
                            input type="hidden" name="action" value="release";
                            label for="release-reason" { "Reason" }
                            input id="release-reason" name="reason" placeholder="why it may run";
                            button type="submit" { "Release" }
                        }
                        form class="inline" method="post" action=(act) {
                            input type="hidden" name="action" value="refuse";
                            label for="refuse-reason" { "Reason" }
                            input id="refuse-reason" name="reason" required placeholder="why it may not";
                            button type="submit" class="danger" { "Refuse" }
                        }
                    }
                } @else {
                    p class="muted" { "Only an approver or an administrator may release or refuse it." }
                }
            }
        }
    }
}

/// A text shown, or a dash where there is none (as `text` shows null).
fn dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("\u{2014}")
}

fn seconds(v: &Value) -> String {
    match v.as_i64() {
        Some(s) if s >= 3600 => format!("{:.1} h", s as f64 / 3600.0),
        Some(s) if s >= 60 => format!("{:.1} min", s as f64 / 60.0),
        Some(s) => format!("{s} s"),
        None => "not reached".into(),
    }
}

/// `GET /console/rollouts/{name}/live`: the progress part, whenever it
/// changes, until the rollout is complete.
pub(crate) async fn live(
    State(state): State<AppState>,
    _viewer: Viewer,
    Path(name): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    fragments(Duration::from_secs(1), move || {
        let (state, name) = (state.clone(), name.clone());
        async move {
            match rollouts::shown_head_and_reviewed(&state, &name).await {
                Ok((r, review)) => (
                    progress(&r, &review).into_string(),
                    // Nothing moves any more once it is complete or rolled
                    // back (a halted one may be resumed).
                    (r["status"] == "complete" && r["complete"] == true)
                        || r["status"] == "rolled_back"
                        || r["status"] == rollouts::REFUSED,
                ),
                Err(e) => (
                    html! { p class="error" { (e.message()) } }.into_string(),
                    true,
                ),
            }
        }
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActForm {
    action: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    ring: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    baseline: Option<String>,
    #[serde(default)]
    gate_success_percent: Option<String>,
}

pub(crate) async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Form(form): Form<ActForm>,
) -> Result<Response, PageError> {
    let mut action = json!({});
    for (k, v) in [
        ("reason", &form.reason),
        ("ring", &form.ring),
        ("note", &form.note),
    ] {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            action[k] = json!(v);
        }
    }
    if form.action == "gate" {
        let percent = form.gate_success_percent.as_deref().unwrap_or("").trim();
        let percent: u32 = percent.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "the gate {:?}: give a whole percentage, 0 to 100",
                super::clip(percent)
            ))
        })?;
        action["gate_success_percent"] = json!(percent);
    }
    let parsed = || -> Result<_, PageError> {
        Ok(Ok(Json(
            serde_json::from_value(action.clone())
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        )))
    };
    let (s, p) = (State(state.clone()), Path(name.clone()));
    let resumed_but: String;
    let done: &str = match form.action.as_str() {
        "halt" => {
            let _ =
                rollouts::halt(s, Operator(viewer.require(Access::Operate)?), p, parsed()?).await?;
            "Halted: no new host starts."
        }
        "resume" => {
            let Json(after) =
                rollouts::resume(s, Operator(viewer.require(Access::Operate)?), p, parsed()?)
                    .await?;
            // The executor's pass right after may halt it again at once,
            // when its failures are still over a ring's threshold.
            if after["status"] == "halted" {
                resumed_but = format!(
                    "Resumed, but it halted again at once by itself: {}. Redeploy it to retry \
                     the failed hosts, or roll it back.",
                    after["halt"]
                        .as_str()
                        .unwrap_or("a ring's failures are over its threshold")
                );
                &resumed_but
            } else {
                "Resumed."
            }
        }
        "gate" => {
            let _ =
                rollouts::lower_gate(s, Operator(viewer.require(Access::Operate)?), p, parsed()?)
                    .await?;
            "Gate lowered."
        }
        "rollback" => {
            let _ = rollouts::rollback(s, Operator(viewer.require(Access::Operate)?), p, parsed()?)
                .await?;
            "Rolling back: hosts that installed get their earlier versions."
        }
        "redeploy" => {
            let _ = rollouts::redeploy(s, Operator(viewer.require(Access::Operate)?), p, parsed()?)
                .await?;
            "Redeployed as a new generation."
        }
        "approve" => {
            let _ = rollouts::approve(s, Approver(viewer.require(Access::Approve)?), p, parsed()?)
                .await?;
            "Ring approved."
        }
        "release" => {
            let _ = rollouts::release(s, Approver(viewer.require(Access::Approve)?), p, parsed()?)
                .await?;
            "Released: it starts as planned."
        }
        "refuse" => {
            let _ = rollouts::refuse(s, Approver(viewer.require(Access::Approve)?), p, parsed()?)
                .await?;
            "Refused: nothing of it runs."
        }
        "note" => {
            let _ = rollouts::add_note(s, Operator(viewer.require(Access::Operate)?), p, parsed()?)
                .await?;
            "Note added."
        }
        "raise-baseline" => {
            let request = serde_json::from_value(
                json!({"baseline": form.baseline.unwrap_or_default().trim()}),
            )
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let _ = rollouts::raise_baseline(
                s,
                Approver(viewer.require(Access::Approve)?),
                p,
                Ok(Json(request)),
            )
            .await?;
            "Baseline raised to this rollout's result."
        }
        other => {
            return Err(
                ApiError::bad_request(format!("unknown action {:?}", super::clip(other))).into(),
            );
        }
    };
    Ok(Redirect::to(&format!(
        "/console/rollouts/{}?done={}",
        encode(&name),
        encode(done)
    ))
    .into_response())
}
