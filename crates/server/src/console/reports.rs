//! Reports: the monthly executive compliance report (HTML that prints
//! well, and CSV), with its chart drawn here as SVG, and the links to each
//! rollout's post-implementation review.
//!
//! Compliance over time comes from the posture the server keeps once a day
//! (`posture_days`); a day the server did not run has no point. Figures
//! about rollouts come from their reviews, the same the API serves.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use serde_json::Value;
use store::{DetectionStore, RolloutStore};

use super::{body, encode, page, text, when, PageError, PageResult, Viewer};
use crate::auth::{Caller, Reader};
use crate::error::ApiError;
use crate::pdf::{Column, Document};
use crate::{catalog_api, plan_api, posture, rollouts, AppState};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct MonthQuery {
    /// `2026-11`; default: this month.
    pub(crate) month: Option<String>,
    /// What was just done, to say so.
    #[serde(default)]
    pub(crate) done: Option<String>,
}

/// The month asked for: its first and last day.
fn month_of(state: &AppState, q: &MonthQuery) -> Result<(Date, Date), PageError> {
    let today = (state.clock)().to_zoned(jiff::tz::TimeZone::UTC).date();
    let first = match q.month.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        None => today.first_of_month(),
        Some(m) => {
            let first = format!("{m}-01").parse::<Date>().map_err(|_| {
                ApiError::bad_request(format!("month {m:?}: write it as YYYY-MM, such as 2026-11"))
            })?;
            // A report is of a month that has begun; the calendar's far
            // ends are no month anything was recorded in.
            if first > today || first.year() < 1970 {
                return Err(ApiError::bad_request(format!(
                    "month {m:?}: name a month from 1970-01 to this month ({})",
                    today.strftime("%Y-%m")
                ))
                .into());
            }
            first
        }
    };
    Ok((first, first.last_of_month()))
}

/// Everything the monthly report says, worked out once for every format.
pub(crate) struct Monthly {
    pub(crate) first: Date,
    pub(crate) last: Date,
    /// Day and its kept posture.
    pub(crate) days: Vec<(String, Value)>,
    /// The posture at the month's end (or now, for this month).
    pub(crate) end: Value,
    /// Reviews of the rollouts created in the month.
    pub(crate) reviews: Vec<Value>,
    /// The risks, end-of-life systems and pending updates at the month's
    /// end: now for this month, else as kept on its last kept day; `None`
    /// when that day kept none (or no day was kept).
    pub(crate) standing: Option<Standing>,
    /// Findings fixed in the month, per class (critical first), then all.
    pub(crate) remediated: Vec<Remediated>,
}

/// Findings fixed in a month, of one class or of all.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Remediated {
    /// The class, or `all`.
    pub(crate) class: &'static str,
    /// Findings fixed.
    pub(crate) fixed: usize,
    /// Of those, fixed by their deadline.
    pub(crate) met: usize,
    /// Mean seconds from first detection to the fix.
    pub(crate) mean_seconds: Option<f64>,
}

impl Monthly {
    /// Findings of every class fixed in the month.
    pub(crate) fn mttr(&self) -> Remediated {
        self.remediated
            .iter()
            .find(|r| r.class == "all")
            .cloned()
            .unwrap_or(Remediated {
                class: "all",
                fixed: 0,
                met: 0,
                mean_seconds: None,
            })
    }
}

impl Remediated {
    /// Per class in `CLASSES` order, then `all`.
    fn of(rows: &[store::Remediation]) -> Vec<Remediated> {
        CLASSES
            .iter()
            .copied()
            .map(Some)
            .chain([None])
            .map(|class| {
                let mine: Vec<&store::Remediation> = rows
                    .iter()
                    .filter(|r| class.is_none_or(|c| r.class == c))
                    .collect();
                let seconds: f64 = mine
                    .iter()
                    .map(|r| r.fixed_at.duration_since(r.first_seen).as_secs_f64())
                    .sum();
                Remediated {
                    class: class.unwrap_or("all"),
                    fixed: mine.len(),
                    met: mine.iter().filter(|r| r.fixed_at <= r.due).count(),
                    mean_seconds: (!mine.is_empty()).then(|| seconds / mine.len() as f64),
                }
            })
            .collect()
    }

    /// Fixed by the deadline, as a share: "3 of 4 (75.0%)".
    pub(crate) fn met_share(&self) -> String {
        if self.fixed == 0 {
            "none fixed".into()
        } else {
            format!(
                "{} of {} ({:.1}%)",
                self.met,
                self.fixed,
                self.met as f64 * 100.0 / self.fixed as f64
            )
        }
    }

    /// Mean time to remediate, as people read it.
    pub(crate) fn mean_text(&self) -> String {
        self.mean_seconds.map_or("—".into(), duration)
    }
}

/// What stood at a month's end besides the counts.
pub(crate) struct Standing {
    /// The top risks (`GET /api/v1/summary/exposure`'s answer).
    pub(crate) risks: Value,
    /// End-of-life releases: release, support, hosts.
    pub(crate) end_of_life: Vec<(String, String, usize)>,
    /// Updates offered and not decided.
    pub(crate) pending: Vec<Value>,
}

impl Standing {
    /// As a kept day keeps it; `None` for a day kept before days kept it.
    fn from_kept(day: &Value) -> Option<Standing> {
        Some(Standing {
            risks: day.get("risks").filter(|r| r.is_object())?.clone(),
            end_of_life: serde_json::from_value(day.get("end_of_life")?.clone()).ok()?,
            pending: day.get("pending")?.as_array()?.clone(),
        })
    }
}

/// Said where a past month's end kept no risks, end-of-life systems or
/// pending updates.
pub(crate) const NOT_KEPT: &str =
    "Not kept for this month's end (no posture was kept then with this detail), so not shown: today's would be another month's.";

/// The monthly report for `q`'s month, read with `caller`'s access.
pub(crate) async fn monthly(
    state: &AppState,
    caller: &Caller,
    q: &MonthQuery,
) -> Result<Monthly, PageError> {
    let reader = || Reader(caller.clone());
    let (first, last) = month_of(state, q)?;
    let today = (state.clock)().to_zoned(jiff::tz::TimeZone::UTC).date();
    let now = posture::current(state).await?;
    let mut days: Vec<(String, Value)> = state
        .store
        .postures(&first.to_string(), &last.to_string())
        .await?
        .into_iter()
        .filter_map(|(d, b)| serde_json::from_str(&b).ok().map(|v| (d, v)))
        .collect();
    // This month ends today: today's point is the posture now, not the
    // one kept earlier today.
    if first <= today && today <= last {
        let day = today.to_string();
        days.retain(|(d, _)| *d != day);
        days.push((day, now.to_json()));
    }
    // The month's end: its last kept day. A past month with none kept has
    // no end figures (today's would be another month's).
    let end = days.last().map_or(Value::Null, |(_, v)| v.clone());
    let mut reviews = Vec::new();
    for r in state.store.rollouts().await? {
        let day = r.created_at.to_zoned(jiff::tz::TimeZone::UTC).date();
        if day < first || day > last {
            continue;
        }
        reviews.push(body(
            rollouts::review(
                State(state.clone()),
                reader(),
                axum::extract::Path(r.name.clone()),
            )
            .await,
        )?);
    }
    // This month's end is now; a past month's is its last kept day.
    let standing = if today <= last {
        Some(Standing {
            risks: catalog_api::exposure_now(state, posture::TOP_RISKS),
            end_of_life: now.end_of_life.clone(),
            pending: plan_api::offered_now(state)
                .await?
                .into_iter()
                .filter(|u| u["decision"].is_null())
                .collect(),
        })
    } else {
        Standing::from_kept(&end)
    };
    let midnight = |d: Date| {
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(ApiError::internal)
    };
    let next = last.tomorrow().map_err(ApiError::internal)?;
    let fixes = state
        .store
        .remediations(midnight(first)?, midnight(next)?)
        .await?;
    Ok(Monthly {
        first,
        last,
        days,
        end,
        reviews,
        standing,
        remediated: Remediated::of(&fixes),
    })
}

const CLASSES: [&str; 4] = ["critical", "high", "medium", "low"];

/// Compliance per day as an SVG line chart, 0 to 100%.
fn chart(m: &Monthly) -> Markup {
    let (w, h, left, bottom) = (640.0, 200.0, 40.0, 24.0);
    let days = f64::from(m.last.day());
    let x = |day: f64| left + (day - 1.0) / (days - 1.0).max(1.0) * (w - left - 10.0);
    let y = |pct: f64| 10.0 + (100.0 - pct) / 100.0 * (h - bottom - 10.0);
    let points: Vec<(f64, f64)> = m
        .days
        .iter()
        .filter_map(|(d, v)| {
            let day = d.parse::<Date>().ok()?.day();
            Some((x(f64::from(day)), y(v["compliance_percent"].as_f64()?)))
        })
        .collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" role="img" aria-label="Compliance per day, {} points" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">"#,
        points.len()
    );
    for pct in [0.0, 50.0, 100.0] {
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="#d9dde5"/><text x="4" y="{}">{pct:.0}%</text>"##,
            w - 10.0,
            y(pct) + 4.0,
            y = y(pct)
        );
    }
    for day in [1.0, 10.0, 20.0, days] {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}">{day:.0}</text>"#,
            x(day) - 4.0,
            h - 6.0
        );
    }
    if points.len() > 1 {
        let path: Vec<String> = points
            .iter()
            .map(|(a, b)| format!("{a:.1},{b:.1}"))
            .collect();
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="#1f5fbf" stroke-width="2" points="{}"/>"##,
            path.join(" ")
        );
    }
    for (a, b) in &points {
        let _ = write!(
            svg,
            r##"<circle cx="{a:.1}" cy="{b:.1}" r="3" fill="#1f5fbf"/>"##
        );
    }
    svg.push_str("</svg>");
    // Drawn here from numbers only: nothing in it comes from input.
    PreEscaped(svg)
}

/// Said where the month's end figures would be, when none were kept.
pub(crate) const NO_END_FIGURES: &str =
    "No posture was kept in this month, so there are no figures for its end.";

/// The month-end compliance as a percentage, or a dash when none was kept.
pub(crate) fn compliance(end: &Value) -> String {
    end["compliance_percent"]
        .as_f64()
        .map_or_else(|| "\u{2014}".to_owned(), |p| format!("{p:.1}%"))
}

/// A class's findings at the month's end: open, past deadline, due soon,
/// exempt.
type ClassCounts = (u64, u64, u64, u64);

/// The month-end share of fully patched hosts, or a dash when it was not
/// kept.
pub(crate) fn fully_patched(end: &Value) -> String {
    end["fully_patched_percent"]
        .as_f64()
        .map_or_else(|| "\u{2014}".to_owned(), |p| format!("{p:.1}%"))
}

/// Each class's findings at the month's end; none when no posture was kept
/// in the month.
fn class_rows(end: &Value) -> Vec<(&'static str, ClassCounts)> {
    if end.is_null() {
        return Vec::new();
    }
    CLASSES
        .iter()
        .map(|&class| {
            let c = &end["classes"][class];
            let n = |k: &str| c[k].as_u64().unwrap_or(0);
            (
                class,
                (n("open"), n("breached"), n("due_soon"), n("exempt")),
            )
        })
        .collect()
}

/// The report's sentence on missed patches, in every format.
fn missed(end: &Value) -> String {
    if end.is_null() {
        return format!("Missed: {NO_END_FIGURES}");
    }
    let per_class: Vec<String> = class_rows(end)
        .into_iter()
        .map(|(class, (_, breached, _, _))| format!("{class} {breached}"))
        .collect();
    format!(
        "Missed: findings past their deadline at the month's end: {}.",
        per_class.join("; ")
    )
}

/// Mean seconds to 95% over the reviews that reached it.
fn mean_to_95(reviews: &[Value]) -> Option<f64> {
    let times: Vec<f64> = reviews
        .iter()
        .filter_map(|r| r["seconds_to_95_percent"].as_f64())
        .collect();
    (!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64)
}

/// Each failed deployment of the month's rollouts: rollout, failure.
fn failures(m: &Monthly) -> Vec<(String, Value)> {
    m.reviews
        .iter()
        .flat_map(|r| {
            let name = text(&r["rollout"]);
            r["failures"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |f| (name.clone(), f))
        })
        .collect()
}

/// The share of a class's open findings still within their deadline.
fn within(open: u64, breached: u64) -> String {
    if open == 0 {
        "100%".to_owned()
    } else {
        format!("{:.1}%", (open - breached) as f64 * 100.0 / open as f64)
    }
}

fn duration(seconds: f64) -> String {
    if seconds >= 86_400.0 {
        format!("{:.1} days", seconds / 86_400.0)
    } else if seconds >= 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else if seconds >= 60.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{seconds:.0} s")
    }
}

/// `GET /console/reports`
pub(crate) async fn index(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<MonthQuery>,
) -> PageResult {
    let (first, _) = month_of(&state, &q)?;
    let month = first.strftime("%Y-%m").to_string();
    let mut rollouts = state.store.rollouts().await?;
    rollouts.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let schedules = body(
        plan_api::list_docs::<crate::plan_docs::ReportScheduleDoc>(
            State(state.clone()),
            viewer.reader(),
        )
        .await,
    )?;
    let may_mail = viewer.may(patchwell_core::people::Access::Administer);
    let relay = state.config.smtp.is_some();
    let content = html! {
        h1 { "Reports" }
        h2 { "Monthly executive compliance report" }
        form class="filters" method="get" action="/console/reports/monthly" {
            div { label for="month" { "Month" } input id="month" name="month" type="month" value=(month); }
            button type="submit" { "Show report" }
        }
        p {
            a href=(format!("/console/reports/monthly?month={month}")) { "This month's report (HTML, prints well)" } " · "
            a href=(format!("/console/reports/monthly.csv?month={month}")) download { "Download as CSV" } " · "
            a href=(format!("/console/reports/monthly.pdf?month={month}")) download { "Download as PDF" }
        }
        h2 { "Mailed on a schedule" }
        @if schedules.is_empty() {
            p class="muted" { "No report is mailed on a schedule yet." }
        } @else {
            @if !relay {
                p class="warn" data-test="no-relay" {
                    "No mail relay is configured (the server's --smtp-url), so nothing is mailed, on schedule or by \"Mail now\". "
                    "Download the report above meanwhile."
                }
            }
            table {
                thead { tr { th scope="col" { "Schedule" } th scope="col" { "When" } th scope="col" { "Month reported" }
                    th scope="col" { "Audiences" } th scope="col" { "Files" } th scope="col" { "Next mailing" }
                    @if may_mail { th scope="col" { "Mail now" } } } }
                tbody { @for sc in &schedules {
                    @let name = text(&sc["name"]);
                    tr {
                        td { (name) }
                        td { (text(&sc["when"])) " (" (sc["timezone"].as_str().unwrap_or("UTC")) ")" }
                        td { (text(&sc["month"])) }
                        td { (sc["audiences"].as_array().map(|a| a.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                        td { (sc["formats"].as_array().map(|a| a.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                        td { (when(sc["now"]["next_mailing"].as_str())) }
                        @if may_mail { td {
                            @if relay {
                                form class="inline" method="post" action=(format!("/console/reports/schedules/{}/send", encode(&name))) {
                                    button type="submit" aria-label=(format!("Mail {name} now")) { "Mail now" }
                                }
                            } @else {
                                button type="button" disabled aria-label=(format!("Mail {name} now: no mail relay is configured")) title="No mail relay is configured" { "Mail now" }
                            }
                        } }
                    }
                } }
            }
        }
        p { a href="/console/plans/report-schedules" { "Define or change report schedules" } " (mailed to the contacts of their audiences)." }
        h2 { "Post-implementation reviews" }
        @if rollouts.is_empty() { p class="muted" { "No rollout yet." } }
        ul { @for r in &rollouts {
            li { a href=(format!("/console/rollouts/{}#review", encode(&r.name))) { (r.name) } " — " (r.status) ", created " (when(Some(&r.created_at.to_string()))) }
        } }
    };
    Ok(page(&viewer, "Reports", q.done.as_deref(), content))
}

/// `GET /console/reports/monthly?month=YYYY-MM`
pub(crate) async fn monthly_html(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<MonthQuery>,
) -> PageResult {
    let m = monthly(&state, &viewer.caller, &q).await?;
    let month = m.first.strftime("%B %Y").to_string();
    let end = &m.end;
    let failures = failures(&m);
    let content = html! {
        h1 { "Compliance report: " (month) }
        p class="muted" { "From " (m.first) " to " (m.last) ". "
            a href=(format!("/console/reports/monthly.csv?month={}", m.first.strftime("%Y-%m"))) download { "Download as CSV" } " · "
            a href=(format!("/console/reports/monthly.pdf?month={}", m.first.strftime("%Y-%m"))) download { "Download as PDF" } }
        h2 { "Summary" }
        div class="cards" {
            div class="card" { div class="figure" data-test="report-compliance" { (compliance(end)) } div class="label" { "hosts compliant (" (text(&end["compliant"])) " of " (text(&end["hosts"])) ")" } div class="label muted" { (crate::posture::COMPLIANT) } }
            div class="card" { div class="figure" data-test="report-fully-patched" { (fully_patched(end)) } div class="label" { "hosts fully patched (" (text(&end["fully_patched"])) " of " (text(&end["hosts"])) ")" } div class="label muted" { (crate::posture::FULLY_PATCHED) } }
            div class="card" { div class="figure" { (text(&end["breached_hosts"])) } div class="label" { "hosts past a deadline" } }
            div class="card" { div class="figure" { (text(&end["kev_hosts"])) } div class="label" { "hosts exposed to a known-exploited vulnerability" } }
            div class="card" { div class="figure" { (m.reviews.len()) } div class="label" { "rollouts started" } }
            div class="card" { div class="figure" data-test="report-mttr" { (m.mttr().mean_text()) } div class="label" { "mean time to remediate (" (m.mttr().fixed) " findings fixed)" } }
            div class="card" { div class="figure" { (mean_to_95(&m.reviews).map_or("—".into(), duration)) } div class="label" { "mean time for a rollout to reach 95% of its hosts" } }
        }
        h2 { "Compliance over time" }
        @if m.days.is_empty() { p class="muted" { "No posture was kept in this month (the server keeps one a day while it runs)." } }
        @else { (chart(&m)) }
        h2 { "Deadlines per class at the month's end" }
        @if end.is_null() { p class="muted" { (NO_END_FIGURES) } }
        @else { table {
            thead { tr { th scope="col" { "Class" } th scope="col" class="num" { "Open" } th scope="col" class="num" { "Past deadline" } th scope="col" class="num" { "Due soon" } th scope="col" class="num" { "Exempt" } th scope="col" class="num" { "Within deadline" } } }
            tbody { @for (class, (open, breached, soon, exempt)) in class_rows(end) {
                tr { th scope="row" { (class) } td class="num" { (open) } td class="num" { (breached) } td class="num" { (soon) } td class="num" { (exempt) }
                     td class="num" { (within(open, breached)) } }
            } }
        } }
        h2 { "Remediated in the month, per class" }
        table {
            thead { tr { th scope="col" { "Class" } th scope="col" class="num" { "Fixed" } th scope="col" { "Deadline met" } th scope="col" { "Mean time to remediate" } } }
            tbody { @for r in &m.remediated {
                tr { th scope="row" { (r.class) } td class="num" { (r.fixed) } td { (r.met_share()) } td { (r.mean_text()) } }
            } }
        }
        h2 { "Top risks (known exploited first)" }
        @match &m.standing {
            Some(s) => (super::dashboard::top_risks(&s.risks)),
            None => p class="muted" { (NOT_KEPT) },
        }
        h2 { "End-of-life systems" }
        @match &m.standing {
            Some(s) if s.end_of_life.is_empty() => p class="muted" { "None." },
            Some(s) => ul { @for (release, support, n) in &s.end_of_life { li { (release) ": " (support) ", " (n) " hosts" } } },
            None => p class="muted" { (NOT_KEPT) },
        }
        h2 { "Rollouts" }
        table {
            thead { tr { th scope="col" { "Rollout" } th scope="col" class="num" { "Targets" } th scope="col" class="num" { "Succeeded" } th scope="col" class="num" { "Failed" } th scope="col" class="num" { "Rolled back" } th scope="col" { "Time to 95%" } th scope="col" { "Deadline met" } } }
            tbody { @for r in &m.reviews {
                tr {
                    td { a href=(format!("/console/rollouts/{}#review", encode(&text(&r["rollout"])))) { (text(&r["rollout"])) } }
                    td class="num" { (text(&r["targets"])) } td class="num" { (text(&r["succeeded"])) }
                    td class="num" { (text(&r["failed"])) } td class="num" { (text(&r["rolled_back"])) }
                    td { (r["seconds_to_95_percent"].as_f64().map_or("not reached".into(), duration)) }
                    td { (text(&r["deadline_met"])) }
                }
            } }
        }
        h2 { "Failed deployments" }
        @if failures.is_empty() { p class="muted" { "None." } }
        ul { @for (rollout, f) in &failures { li { (rollout) ": " (text(&f["hostname"])) " — " (text(&f["why"])) } } }
        h2 { "Missed and pending patches" }
        p { (missed(end)) }
        @match &m.standing {
            Some(s) => p { "Pending at the month's end: " (s.pending.len()) " updates offered to the fleet waited for a decision: "
                (s.pending.iter().filter(|u| u["security"] == true).count()) " security updates and "
                (s.pending.iter().filter(|u| u["security"] != true).count()) " other available updates"
                @if !s.pending.is_empty() { " (" a href="/console/updates?only=pending" { "decide" } ")" } "." },
            None => p class="muted" { "Pending: " (NOT_KEPT) },
        }
    };
    Ok(page(&viewer, &format!("Reports: {month}"), None, content))
}

/// One CSV cell. Text that a spreadsheet would take for a formula (it
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return) is
/// neutralised with a leading `'`: a host name, an advisory title or a
/// note is text an outsider may have chosen. A number is left as it is.
pub(crate) fn csv_field(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    let s = if formula {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /console/reports/monthly.csv?month=YYYY-MM`: the same report as
/// rows `section,key,value...`.
pub(crate) async fn monthly_csv(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<MonthQuery>,
) -> Result<Response, PageError> {
    let m = monthly(&state, &viewer.caller, &q).await?;
    Ok(download(
        csv_of(&m),
        "text/csv; charset=utf-8",
        &file_name(&m, "csv"),
    ))
}

/// The report's file name: `patchwell-compliance-2026-11.csv`.
pub(crate) fn file_name(m: &Monthly, extension: &str) -> String {
    format!(
        "patchwell-compliance-{}.{extension}",
        m.first.strftime("%Y-%m")
    )
}

pub(crate) fn download(body: impl IntoResponse, content_type: &str, file: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The report as CSV rows `section,item,value,detail`.
pub(crate) fn csv_of(m: &Monthly) -> String {
    let mut out = String::from("section,item,value,detail\n");
    let mut row = |section: &str, item: &str, value: String, detail: &str| {
        let _ = writeln!(
            out,
            "{},{},{},{}",
            csv_field(section),
            csv_field(item),
            csv_field(&value),
            csv_field(detail)
        );
    };
    let end = &m.end;
    row(
        "summary",
        "month",
        m.first.strftime("%Y-%m").to_string(),
        "",
    );
    // A figure not kept is an empty field.
    let figure = |v: &Value| if v.is_null() { String::new() } else { text(v) };
    row("summary", "hosts", figure(&end["hosts"]), "");
    row("summary", "compliant hosts", figure(&end["compliant"]), "");
    row(
        "summary",
        "compliance percent",
        end["compliance_percent"]
            .as_f64()
            .map_or_else(String::new, |p| format!("{p:.1}")),
        if end.is_null() {
            "no posture kept in the month"
        } else {
            crate::posture::COMPLIANT
        },
    );
    row(
        "summary",
        "fully patched hosts",
        figure(&end["fully_patched"]),
        crate::posture::FULLY_PATCHED,
    );
    row(
        "summary",
        "hosts past a deadline",
        figure(&end["breached_hosts"]),
        "",
    );
    row(
        "summary",
        "hosts exposed to known exploited",
        figure(&end["kev_hosts"]),
        "",
    );
    row(
        "summary",
        "mean seconds to 95%",
        mean_to_95(&m.reviews).map_or(String::new(), |s| format!("{s:.0}")),
        "",
    );
    for (day, v) in &m.days {
        row(
            "compliance over time",
            day,
            format!("{:.1}", v["compliance_percent"].as_f64().unwrap_or(0.0)),
            "",
        );
    }
    for (class, (open, breached, soon, exempt)) in class_rows(end) {
        row(
            "deadlines",
            class,
            open.to_string(),
            &format!("past deadline {breached}; due soon {soon}; exempt {exempt}"),
        );
    }
    for r in &m.remediated {
        row(
            "remediated",
            r.class,
            r.fixed.to_string(),
            &format!(
                "deadline met {}; mean seconds to remediate {}",
                r.met,
                r.mean_seconds.map_or(String::new(), |s| format!("{s:.0}"))
            ),
        );
    }
    if m.standing.is_none() {
        for section in ["top risks", "end of life", "pending"] {
            row(section, "", String::new(), NOT_KEPT);
        }
    }
    let standing = m.standing.as_ref();
    for a in standing
        .and_then(|s| s.risks["top"].as_array())
        .into_iter()
        .flatten()
    {
        row(
            "top risks",
            &text(&a["id"]),
            text(&a["hosts"]),
            &format!(
                "{}{}",
                text(&a["title"]),
                if a["kev"] == true {
                    " (known exploited)"
                } else {
                    ""
                }
            ),
        );
    }
    for (release, support, n) in standing.iter().flat_map(|s| &s.end_of_life) {
        row("end of life", release, n.to_string(), support);
    }
    for r in &m.reviews {
        row(
            "rollouts",
            &text(&r["rollout"]),
            text(&r["succeeded"]),
            &format!(
                "targets {}; failed {}; rolled back {}; seconds to 95% {}",
                text(&r["targets"]),
                text(&r["failed"]),
                text(&r["rolled_back"]),
                text(&r["seconds_to_95_percent"])
            ),
        );
        for f in r["failures"].as_array().into_iter().flatten() {
            row(
                "failed deployments",
                &text(&r["rollout"]),
                text(&f["hostname"]),
                &text(&f["why"]),
            );
        }
    }
    for u in standing.iter().flat_map(|s| &s.pending) {
        row(
            "pending",
            &text(&u["title"]),
            text(&u["hosts"]),
            if u["security"] == true {
                "security"
            } else {
                "available update"
            },
        );
    }
    out
}

/// `GET /console/reports/monthly.pdf?month=YYYY-MM`: the same report as a
/// PDF, for those who file or forward it.
pub(crate) async fn monthly_pdf(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<MonthQuery>,
) -> Result<Response, PageError> {
    let m = monthly(&state, &viewer.caller, &q).await?;
    Ok(download(
        pdf_of(&m),
        "application/pdf",
        &file_name(&m, "pdf"),
    ))
}

/// Pending updates listed in the PDF; the CSV lists them all.
const PDF_PENDING: usize = 40;

/// The report as a PDF.
pub(crate) fn pdf_of(m: &Monthly) -> Vec<u8> {
    let month = m.first.strftime("%B %Y").to_string();
    let title = format!("Compliance report: {month}");
    let end = &m.end;
    let mut d = Document::new(&title);
    d.heading(1, &title);
    d.paragraph(&match end["at"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    {
        Some(at) => format!(
            "From {} to {}. Figures at the month's end (for this month: as worked out at {}).",
            m.first,
            m.last,
            at.strftime("%Y-%m-%d %H:%M UTC")
        ),
        None => format!("From {} to {}. {NO_END_FIGURES}", m.first, m.last),
    });
    d.figures(&[
        (
            compliance(end),
            &format!(
                "compliant ({} of {} hosts)",
                text(&end["compliant"]),
                text(&end["hosts"])
            ),
        ),
        (
            fully_patched(end),
            &format!(
                "fully patched ({} of {} hosts)",
                text(&end["fully_patched"]),
                text(&end["hosts"])
            ),
        ),
        (text(&end["breached_hosts"]), "hosts past a deadline"),
        (text(&end["kev_hosts"]), "hosts exposed to known exploited"),
    ]);
    d.paragraph(&format!(
        "{}. {}.",
        crate::posture::COMPLIANT,
        crate::posture::FULLY_PATCHED
    ));
    d.figures(&[
        (m.mttr().mean_text(), "mean time to remediate"),
        (m.reviews.len().to_string(), "rollouts started"),
        (
            mean_to_95(&m.reviews).map_or("\u{2014}".into(), duration),
            "mean time for a rollout to reach 95%",
        ),
    ]);
    d.heading(2, "Compliance over time");
    if m.days.is_empty() {
        d.paragraph(
            "No posture was kept in this month (the server keeps one a day while it runs).",
        );
    } else {
        let span = (f32::from(m.last.day()) - 1.0).max(1.0);
        let at = |day: i8| (f32::from(day) - 1.0) / span;
        let points: Vec<(f32, f32)> = m
            .days
            .iter()
            .filter_map(|(day, v)| {
                let day = day.parse::<Date>().ok()?.day();
                Some((at(day), v["compliance_percent"].as_f64()? as f32))
            })
            .collect();
        let labels: Vec<(f32, String)> = [1, 10, 20, m.last.day()]
            .iter()
            .map(|&day| (at(day), day.to_string()))
            .collect();
        d.percent_chart(&points, &labels);
    }
    d.heading(2, "Deadlines per class at the month's end");
    let rows: Vec<Vec<String>> = class_rows(end)
        .into_iter()
        .map(|(class, (open, breached, soon, exempt))| {
            vec![
                class.to_owned(),
                open.to_string(),
                breached.to_string(),
                soon.to_string(),
                exempt.to_string(),
                within(open, breached),
            ]
        })
        .collect();
    d.table_or(
        &[
            Column::text("Class", 1.2),
            Column::number("Open"),
            Column::number("Past deadline"),
            Column::number("Due soon"),
            Column::number("Exempt"),
            Column::number("Within deadline"),
        ],
        &rows,
        NO_END_FIGURES,
    );
    d.heading(2, "Remediated in the month, per class");
    let rows: Vec<Vec<String>> = m
        .remediated
        .iter()
        .map(|r| {
            vec![
                r.class.to_owned(),
                r.fixed.to_string(),
                r.met_share(),
                r.mean_text(),
            ]
        })
        .collect();
    d.table(
        &[
            Column::text("Class", 1.2),
            Column::number("Fixed"),
            Column::text("Deadline met", 2.0),
            Column::text("Mean time to remediate", 2.0),
        ],
        &rows,
    );
    d.heading(2, "Top risks (known exploited first)");
    let standing = m.standing.as_ref();
    let risks: Vec<Vec<String>> = standing
        .and_then(|s| s.risks["top"].as_array())
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                text(&a["id"]),
                text(&a["title"]),
                text(&a["severity"]),
                if a["kev"] == true {
                    format!("yes, {}", text(&a["kev_date_added"]))
                } else {
                    String::new()
                },
                text(&a["hosts"]),
            ]
        })
        .collect();
    d.table_or(
        &[
            Column::text("Advisory", 1.6),
            Column::text("Title", 3.0),
            Column::text("Severity", 1.0),
            Column::text("Known exploited", 1.4),
            Column::number("Hosts"),
        ],
        &risks,
        if standing.is_some() {
            "No advisory in the catalog reaches a host."
        } else {
            NOT_KEPT
        },
    );
    d.heading(2, "End-of-life systems");
    let rows: Vec<Vec<String>> = standing
        .iter()
        .flat_map(|s| &s.end_of_life)
        .map(|(release, support, n)| vec![release.clone(), support.clone(), n.to_string()])
        .collect();
    d.table_or(
        &[
            Column::text("Release", 2.0),
            Column::text("Support", 2.0),
            Column::number("Hosts"),
        ],
        &rows,
        if standing.is_some() {
            "None."
        } else {
            NOT_KEPT
        },
    );
    d.heading(2, "Rollouts: post-implementation reviews");
    let rows: Vec<Vec<String>> = m
        .reviews
        .iter()
        .map(|r| {
            vec![
                text(&r["rollout"]),
                text(&r["targets"]),
                text(&r["succeeded"]),
                text(&r["failed"]),
                text(&r["rolled_back"]),
                r["seconds_to_95_percent"]
                    .as_f64()
                    .map_or("not reached".into(), duration),
                text(&r["deadline_met"]),
            ]
        })
        .collect();
    d.table_or(
        &[
            Column::text("Rollout", 2.0),
            Column::number("Targets"),
            Column::number("Succeeded"),
            Column::number("Failed"),
            Column::number("Rolled back"),
            Column::text("Time to 95%", 1.2),
            Column::text("Deadline met", 1.1),
        ],
        &rows,
        "No rollout was started in this month.",
    );
    d.heading(2, "Failed deployments");
    let rows: Vec<Vec<String>> = failures(m)
        .iter()
        .map(|(rollout, f)| vec![rollout.clone(), text(&f["hostname"]), text(&f["why"])])
        .collect();
    d.table_or(
        &[
            Column::text("Rollout", 1.2),
            Column::text("Host", 1.2),
            Column::text("Why", 4.0),
        ],
        &rows,
        "None.",
    );
    d.heading(2, "Missed and pending patches");
    d.paragraph(&missed(end));
    let pending = standing.map_or(&[][..], |s| &s.pending[..]);
    d.paragraph(&match standing {
        None => format!("Pending: {NOT_KEPT}"),
        Some(_) => format!(
            "Pending at the month's end: {} updates offered to the fleet waited for a decision{}.",
            pending.len(),
            if pending.len() > PDF_PENDING {
                format!(" (the {PDF_PENDING} reaching most hosts below; the CSV lists all)")
            } else {
                String::new()
            }
        ),
    });
    if !pending.is_empty() {
        let rows: Vec<Vec<String>> = pending
            .iter()
            .take(PDF_PENDING)
            .map(|u| {
                vec![
                    text(&u["title"]),
                    if u["security"] == true {
                        "security".into()
                    } else {
                        "available update".into()
                    },
                    text(&u["hosts"]),
                ]
            })
            .collect();
        d.table(
            &[
                Column::text("Update", 4.0),
                Column::text("Kind", 1.0),
                Column::number("Hosts"),
            ],
            &rows,
        );
    }
    d.finish()
}

/// `POST /console/reports/schedules/{name}/send`: mails a schedule's
/// report now, through the API's handler.
pub(crate) async fn send_now(
    State(state): State<AppState>,
    viewer: Viewer,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let caller = viewer.require(patchwell_core::people::Access::Administer)?;
    let done = crate::report_mail::send_now(
        State(state),
        crate::auth::Administrator(caller),
        axum::extract::Path(name.clone()),
    )
    .await?;
    let to: Vec<String> = done["mailed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    Ok(axum::response::Redirect::to(&format!(
        "/console/reports?done={}",
        encode(&format!(
            "{name}: the report for {} mailed to {}.",
            text(&done["month"]),
            to.join(", ")
        ))
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    /// Text a spreadsheet would run as a formula is made plain text; a
    /// number, a negative one too, stays a number.
    #[test]
    fn csv_cells_cannot_become_formulas() {
        for (cell, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("-12.5", "-12.5"),
            ("web1", "web1"),
            ("a,b", "\"a,b\""),
        ] {
            assert_eq!(csv_field(cell), written, "{cell:?}");
        }
    }
}
