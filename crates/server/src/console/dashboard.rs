//! The dashboard: the fleet's posture, what waits for a decision, running
//! rollouts live, the top risks.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, Sse};
use futures_util::Stream;
use maud::{html, Markup};
use serde_json::Value;
use store::{InventoryStore, RolloutStore};

use super::{body, page, when, Listing, PageResult, Viewer};
use crate::{catalog_api, plan_api, posture, AppState};

/// How long a page waits for a posture being worked out again when the
/// one kept is behind the fleet.
const POSTURE_PATIENCE: Duration = Duration::from_secs(1);

/// How old a posture behind the fleet may be before the page says so.
const BEHIND_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_secs(10);

pub(crate) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(l): Query<Listing>,
) -> PageResult {
    // Right after a start, a large fleet's first posture takes seconds:
    // the page says so and reloads itself rather than keep the viewer
    // waiting for it.
    let Some(p) = posture::current_within(&state, super::FIRST_LOOK_PATIENCE).await? else {
        return Ok(page(
            &viewer,
            "Dashboard",
            l.done.as_deref(),
            html! {
                meta http-equiv="refresh" content="3";
                h1 { "Dashboard" }
                p role="status" data-test="posture-pending" {
                    "The fleet's posture is being worked out for the first time since the server started. "
                    "This page reloads itself in a few seconds; the other pages answer meanwhile."
                }
            },
        ));
    };
    // One behind the fleet is being worked out again already: give that a
    // moment before showing the older one.
    let p = if p.is_behind(&state) {
        posture::current_within(&state, POSTURE_PATIENCE)
            .await?
            .unwrap_or(p)
    } else {
        p
    };
    let updates = body(plan_api::offered_updates(State(state.clone()), viewer.reader()).await)?;
    let pending: Vec<&Value> = updates
        .as_array()
        .map(|a| a.iter().filter(|u| u["decision"].is_null()).collect())
        .unwrap_or_default();
    let pending_security = pending.iter().filter(|u| u["security"] == true).count();
    let exposure = body(
        catalog_api::exposure(
            State(state.clone()),
            viewer.reader(),
            Query(
                serde_json::from_value(serde_json::json!({"limit": 10}))
                    .map_err(crate::error::ApiError::internal)?,
            ),
        )
        .await,
    )?;
    let releases = state.store.hosts_per_os_release().await?;
    let running = running_rollouts(&state).await?;
    // A posture older than the fleet (hosts reported since) and than a few
    // seconds says so, and the page looks again shortly. (A fleet at work
    // reports all the time: a posture a moment old is as good as any.)
    let behind =
        p.is_behind(&state) && crate::handlers::now(&state).duration_since(p.at) > BEHIND_AFTER;
    let percent = |part: f64| {
        if p.hosts == 0 {
            "—".to_owned()
        } else {
            format!("{part:.1}%")
        }
    };
    let content = html! {
        @if behind {
            meta http-equiv="refresh" content="5";
        }
        h1 { "Dashboard" }
        @if behind {
            p role="status" class="notice" data-test="posture-behind" {
                "These figures are as of " (when(Some(&p.at.to_string())))
                "; hosts have reported since, and they are being worked out again. "
                "This page reloads itself in a few seconds."
            }
        }
        @if p.hosts == 0 {
            p class="muted" { "No host is enrolled yet: compliance has nothing to count." }
        }
        section aria-labelledby="posture" {
            h2 id="posture" { "Fleet posture" }
            div class="cards" {
                div class="card" {
                    div class="figure" data-test="compliance" { (percent(p.compliance_percent())) }
                    div class="label" { (p.compliant) " of " (p.hosts) " hosts compliant" }
                    div class="label muted" data-test="compliance-definition" { (posture::COMPLIANT) }
                }
                div class="card" {
                    div class="figure" data-test="fully-patched" { (percent(p.fully_patched_percent())) }
                    div class="label" { (p.fully_patched) " of " (p.hosts) " hosts fully patched" }
                    div class="label muted" data-test="fully-patched-definition" { (posture::FULLY_PATCHED) }
                }
                div class="card" {
                    div class=(if p.breached_hosts > 0 { "figure bad" } else { "figure" }) { (p.breached_hosts) }
                    div class="label" { "hosts past a deadline" }
                }
                div class="card" {
                    div class=(if p.kev_hosts > 0 { "figure bad" } else { "figure" }) { (p.kev_hosts) }
                    div class="label" { "hosts exposed to a known-exploited vulnerability" }
                }
                div class="card" {
                    div class="figure" { (pending.len()) }
                    div class="label" { a href="/console/updates?only=pending" { "updates waiting for approval" } " (" (pending_security) " security, " (pending.len() - pending_security) " other available updates)" }
                }
                div class="card" {
                    div class="figure" { (p.stale) }
                    div class="label" { a href="/console/hosts?q=stale%20%3D%20true" { "stale hosts" } " (not seen for " (state.config.stale_after.as_hours() / 24) " days)" }
                }
                div class="card" {
                    div class="figure" { (p.reboot_required) }
                    div class="label" { a href="/console/hosts?q=reboot_required%20%3D%20true" { "hosts waiting for a reboot" } }
                }
            }
        }
        section aria-labelledby="deadlines" {
            h2 id="deadlines" { "Deadlines per class" }
            table {
                thead { tr {
                    th scope="col" { "Class" } th scope="col" class="num" { "Open findings" }
                    th scope="col" class="num" { "Past deadline" } th scope="col" class="num" { "Due soon" }
                    th scope="col" class="num" { "Exempt" }
                } }
                tbody {
                    @for (class, c) in &p.classes {
                        tr {
                            th scope="row" { (class.as_str()) }
                            td class="num" { (c.open) }
                            td class=(if c.breached > 0 { "num bad" } else { "num" }) { (c.breached) }
                            td class=(if c.due_soon > 0 { "num warn" } else { "num" }) { (c.due_soon) }
                            td class="num" { (c.exempt) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="rollouts" {
            h2 id="rollouts" { "Running rollouts" }
            div data-live="/console/live/dashboard" { (running) }
        }
        section aria-labelledby="risks" {
            h2 id="risks" { "Top risks: security findings (known exploited first, then by severity and hosts)" }
            (top_risks(&exposure))
        }
        section aria-labelledby="eol" {
            h2 id="eol" { "End-of-life systems" }
            @if p.end_of_life.is_empty() {
                p class="muted" { "No host runs an OS release past its support, by the lifecycle data loaded." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Release" } th scope="col" { "Support" } th scope="col" class="num" { "Hosts" } } }
                    tbody { @for (release, support, n) in &p.end_of_life {
                        tr { td { (release) } td class="bad" { (support) } td class="num" { (n) } }
                    } }
                }
            }
        }
        section aria-labelledby="releases" {
            h2 id="releases" { "Hosts per OS release" }
            table {
                thead { tr { th scope="col" { "Release" } th scope="col" class="num" { "Hosts" } } }
                tbody { @for r in &releases {
                    tr { td { (r.value) } td class="num" { (r.hosts) } }
                } }
            }
        }
        p class="muted" { "Posture worked out " (when(Some(&p.at.to_string()))) "." }
    };
    Ok(page(&viewer, "Dashboard", l.done.as_deref(), content))
}

pub(crate) fn top_risks(exposure: &Value) -> Markup {
    let top = exposure["top"].as_array().cloned().unwrap_or_default();
    html! {
        @if top.is_empty() {
            p class="muted" { "No security advisory in the catalog reaches a host." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Advisory" } th scope="col" { "Title" } th scope="col" { "Severity" }
                    th scope="col" { "Known exploited" } th scope="col" class="num" { "Hosts" }
                } }
                tbody { @for a in &top {
                    @let id = a["id"].as_str().unwrap_or_default();
                    tr {
                        td { a href=(format!("/console/advisories/{}", super::encode(id))) { (id) } }
                        td { (a["title"].as_str().unwrap_or_default()) }
                        td { @if a["severity"].is_null() { span class="muted" { "none given (class by default)" } } @else { (super::text(&a["severity"])) } }
                        td { @if a["kev"] == true { span class="tag kev" { "KEV " (super::text(&a["kev_date_added"])) } } }
                        td class="num" { (super::text(&a["hosts"])) }
                    }
                } }
            }
        }
    }
}

/// The running rollouts (and those awaiting release) with their progress
/// bars, counted from each host's recorded progress (no plan is made for
/// this).
async fn running_rollouts(state: &AppState) -> Result<Markup, super::PageError> {
    let mut rows = Vec::new();
    for r in state.store.rollouts().await? {
        if matches!(
            r.status.as_str(),
            "running" | "halted" | crate::rollouts::AWAITING_RELEASE
        ) {
            let tally = crate::rollouts::Tally::of(&state.store.rollout_lines(&r.name).await?);
            rows.push((r, tally));
        }
    }
    Ok(html! {
        @if rows.is_empty() {
            p class="muted" { "No rollout is running. " a href="/console/rollouts" { "Start one" } "." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Rollout" } th scope="col" { "Status" } th scope="col" { "Progress" }
                    th scope="col" class="num" { "Succeeded" } th scope="col" class="num" { "Failed" }
                    th scope="col" class="num" { "Hosts" }
                } }
                tbody { @for (r, t) in &rows {
                    tr {
                        td { a href=(format!("/console/rollouts/{}", super::encode(&r.name))) { (r.name) } }
                        td { (r.status) }
                        td { (super::deploy::bar(t.hosts, (t.succeeded, t.failed, t.in_progress, t.rolled_back), None)) }
                        td class="num" { (t.succeeded) }
                        td class="num" { (t.failed) }
                        td class="num" { (t.hosts) }
                    }
                } }
            }
        }
    })
}

/// `GET /console/live/dashboard`: the running rollouts, again whenever
/// they change.
pub(crate) async fn live(
    State(state): State<AppState>,
    _viewer: Viewer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    super::deploy::fragments(Duration::from_secs(1), move || {
        let state = state.clone();
        async move {
            let html = match running_rollouts(&state).await {
                Ok(m) => m.into_string(),
                Err(e) => format!(
                    "<p class=\"error\">{}</p>",
                    maud::html! { (e.0.message()) }.into_string()
                ),
            };
            (html, false)
        }
    })
}
