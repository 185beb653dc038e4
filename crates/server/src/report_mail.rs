//! Reports mailed on a schedule to the chain of communication, and the
//! reports' API.
//!
//! A report schedule (`report-schedules`, a planning document) names a
//! rule, the month it reports and the audiences mailed. Once a minute the
//! server mails each schedule whose next time after its last mailing (or
//! its definition) has come: a server that was down at that time mails
//! once when it is back, not once per missed time. Every mailing, whether
//! the relay took it or not, is written to the audit log
//! (`mail-report` on `report-schedules/NAME`) with who was mailed and what
//! failed; the log is also what says when a schedule last mailed.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use jiff::Timestamp;
use patchwell_core::people::Role;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{AuditEvent, AuditStore, PlanStore};

use crate::auth::{Administrator, Caller, Reader};
use crate::console::reports::{self, MonthQuery, Monthly};
use crate::error::ApiError;
use crate::handlers::{now, ApiResult};
use crate::notify::{self, Attached};
use crate::plan_docs::{ContactDoc, Doc, ReportScheduleDoc};
use crate::AppState;

/// The audit log's action for a mailing.
const ACTION: &str = "mail-report";

/// Mails due schedules, once a minute.
pub(crate) async fn run(state: AppState) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        ticks.tick().await;
        mail_due(&state).await;
    }
}

/// Mails every schedule whose time has come since it last mailed (or was
/// defined), and says what each mailing did.
pub async fn mail_due(state: &AppState) -> Vec<Value> {
    let at = now(state);
    let schedules = match state.store.plan_objects(ReportScheduleDoc::KIND).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("reading report schedules: {e}");
            return Vec::new();
        }
    };
    let mut done = Vec::new();
    for s in schedules {
        let Ok(doc) = serde_json::from_str::<ReportScheduleDoc>(&s.body) else {
            tracing::warn!(schedule = %s.name, "Stored report schedule is damaged; not mailed.");
            continue;
        };
        let since = match crate::people_api::last_recorded(
            state,
            &format!("{}/{}", ReportScheduleDoc::KIND, s.name),
            ACTION,
        )
        .await
        {
            Ok(last) => last.map_or(s.updated_at, |l| l.max(s.updated_at)),
            Err(e) => {
                tracing::warn!(schedule = %s.name, "reading when it last mailed: {}", e.message());
                continue;
            }
        };
        let Some(due) = doc.next_after(since) else {
            continue;
        };
        if due > at {
            continue;
        }
        match mail(state, &s.name, &doc, due, "scheduler").await {
            Ok(result) => done.push(result),
            Err(e) => tracing::warn!(schedule = %s.name, "mailing the report: {}", e.message()),
        }
    }
    done
}

/// Builds the report a mailing at `at` sends and mails it to every
/// contact of the schedule's audiences with an email address; audited.
async fn mail(
    state: &AppState,
    name: &str,
    doc: &ReportScheduleDoc,
    at: Timestamp,
    actor: &str,
) -> ApiResult<Value> {
    let month = doc.month_reported(at).strftime("%Y-%m").to_string();
    let caller = Caller {
        username: actor.to_owned(),
        role: Role::Auditor,
        scopes: None,
        session: None,
    };
    let q = MonthQuery {
        month: Some(month.clone()),
        done: None,
    };
    let m = reports::monthly(state, &caller, &q)
        .await
        .map_err(|e| e.0)?;
    let mut recipients = Vec::new();
    for c in state.store.plan_objects(ContactDoc::KIND).await? {
        let Ok(contact) = serde_json::from_str::<ContactDoc>(&c.body) else {
            continue;
        };
        if let Some(email) = contact.email {
            if doc.audiences.contains(&contact.audience) && !recipients.contains(&email) {
                recipients.push(email);
            }
        }
    }
    let subject = format!("Patchwell compliance report: {}", m.first.strftime("%B %Y"));
    let text = summary(&m, name);
    let mut mailed = Vec::new();
    let mut failed = Vec::new();
    match (&state.config.smtp, recipients.is_empty()) {
        (None, _) => failed
            .push(json!({"to": null, "error": "the server has no --smtp-url to mail through"})),
        (_, true) => failed.push(json!({"to": null, "error": format!(
            "no contact of the audiences {} has an email address", doc.audiences.join(", "))})),
        (Some(smtp), false) => {
            let files = files(&m, doc);
            for to in &recipients {
                match notify::deliver_with(smtp, to, &subject, text.clone(), &files).await {
                    Ok(()) => mailed.push(to.clone()),
                    Err(e) => failed.push(json!({"to": to, "error": e})),
                }
            }
        }
    }
    let result = json!({
        "schedule": name,
        "month": month,
        "mailed": mailed,
        "failed": failed,
    });
    state
        .store
        .record(
            &AuditEvent {
                actor: actor.to_owned(),
                action: ACTION.into(),
                subject: format!("{}/{name}", ReportScheduleDoc::KIND),
                before: None,
                after: Some(result.to_string()),
                reason: Some(format!("the compliance report for {month}")),
            },
            now(state),
        )
        .await?;
    tracing::info!(schedule = %name, %month, mailed = mailed.len(), failed = failed.len(), "Report mailed.");
    Ok(result)
}

/// The files a schedule attaches.
fn files(m: &Monthly, doc: &ReportScheduleDoc) -> Vec<Attached> {
    doc.formats
        .iter()
        .map(|f| match f.as_str() {
            "csv" => Attached {
                name: reports::file_name(m, "csv"),
                content_type: "text/csv; charset=utf-8",
                bytes: reports::csv_of(m).into_bytes(),
            },
            _ => Attached {
                name: reports::file_name(m, "pdf"),
                content_type: "application/pdf",
                bytes: reports::pdf_of(m),
            },
        })
        .collect()
}

/// The mail's text: the headline figures; the rest is attached.
fn summary(m: &Monthly, schedule: &str) -> String {
    let end = &m.end;
    let figure = |k: &str| end[k].as_u64().map_or("?".into(), |n| n.to_string());
    let figures = if end.is_null() {
        format!("{}\n", crate::console::reports::NO_END_FIGURES)
    } else {
        format!(
            "Compliance: {pct} ({compliant} of {hosts} hosts have no open finding)\n\
             Hosts past a deadline: {breached}\n\
             Hosts exposed to a known-exploited vulnerability: {kev}\n",
            pct = crate::console::reports::compliance(end),
            compliant = figure("compliant"),
            hosts = figure("hosts"),
            breached = figure("breached_hosts"),
            kev = figure("kev_hosts"),
        )
    };
    format!(
        "The compliance report for {month} is attached.\n\n\
         {figures}\
         Findings fixed in the month: {fixed}, {met} by their deadline; mean time to remediate: {mttr}\n\
         Rollouts started in the month: {rollouts}\n\
         Updates waiting for a decision at the month's end: {pending}\n\n\
         Sent by Patchwell on the report schedule {schedule}.\n",
        month = m.first.strftime("%B %Y"),
        fixed = m.mttr().fixed,
        met = m.mttr().met,
        mttr = m.mttr().mean_text(),
        rollouts = m.reviews.len(),
        pending = m
            .standing
            .as_ref()
            .map_or("not kept".into(), |s| s.pending.len().to_string()),
    )
}

/// `POST /api/v1/report-schedules/{name}/send`: mails the schedule's
/// report now (the month it would report now); audited. 409 when nobody
/// could be mailed, with why.
pub(crate) async fn send_now(
    State(state): State<AppState>,
    who: Administrator,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let caller: Caller = who.into();
    let doc = state
        .store
        .plan_object(ReportScheduleDoc::KIND, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("report schedule {name}")))?;
    let doc: ReportScheduleDoc = serde_json::from_str(&doc.body).map_err(ApiError::internal)?;
    let result = mail(&state, &name, &doc, now(&state), &caller.username).await?;
    if result["mailed"].as_array().is_none_or(Vec::is_empty) {
        let why: Vec<String> = result["failed"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| match f["to"].as_str() {
                Some(to) => format!("{to}: {}", f["error"].as_str().unwrap_or("")),
                None => f["error"].as_str().unwrap_or("").to_owned(),
            })
            .collect();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("report schedule {name}: nothing mailed: {}", why.join("; ")),
        ));
    }
    Ok(Json(result))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReportQuery {
    month: Option<String>,
    /// `pdf` (default) or `csv`.
    format: Option<String>,
}

/// `GET /api/v1/reports/monthly?month=YYYY-MM&format=pdf|csv`: the monthly
/// compliance report as a file.
pub(crate) async fn monthly(
    State(state): State<AppState>,
    Reader(caller): Reader,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query?;
    let format = q.format.as_deref().unwrap_or("pdf");
    if !["pdf", "csv"].contains(&format) {
        return Err(ApiError::bad_request(format!(
            "format {format:?}: use pdf or csv"
        )));
    }
    let m = reports::monthly(
        &state,
        &caller,
        &MonthQuery {
            month: q.month,
            done: None,
        },
    )
    .await
    .map_err(|e| e.0)?;
    let (body, content_type) = if format == "csv" {
        (reports::csv_of(&m).into_bytes(), "text/csv; charset=utf-8")
    } else {
        (reports::pdf_of(&m), "application/pdf")
    };
    Ok(reports::download(
        body,
        content_type,
        &reports::file_name(&m, format),
    ))
}
