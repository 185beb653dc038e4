//! The console's record pages: the audit log (newest first, with its
//! verification), users and roles, the patch procedure and who has
//! acknowledged it, and the planning objects of each kind (baselines,
//! exemptions, policies, approvals, rules, contacts, owners, report
//! schedules), each with a form that defines, replaces or deletes one
//! through the API's own handlers.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use store::AuditStore;

use super::{body, encode, page, text, when, Listing, PageError, PageResult, Viewer, PER_PAGE};
use crate::auth::Member;
use crate::auth::{Administrator, Approver, Caller};
use crate::error::ApiError;
use crate::plan_docs::{
    ApprovalDoc, ApprovalRuleDoc, BaselineDoc, ContactDoc, Doc, ExemptionDoc, GoNoGoDoc, OwnerDoc,
    PolicyDoc, ReportScheduleDoc,
};
use crate::{people_api, plan_api, AppState};
use patchwell_core::people::Access;

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
            let all = crate::people_api::subject_entries(&state, s).await?;
            let total = all.len();
            let end = total.saturating_sub((l.page() - 1) * PER_PAGE);
            let start = end.saturating_sub(PER_PAGE);
            (all[start..end].to_vec(), total)
        }
    };
    entries.reverse();
    let verdict = people_api::kept_verdict(&state, super::FIRST_LOOK_PATIENCE).await?;
    let base = "/console/audit";
    let content = html! {
        h1 { "Audit log" }
        @match &verdict {
            Some((verified_at, verdict)) => {
                p data-test="audit-verdict" class=(if verdict["intact"] == true { "good" } else { "bad" }) {
                    @if verdict["intact"] == true {
                        "The chain is intact: " (text(&verdict["entries"])) " entries, head " code { (text(&verdict["head"])) } "."
                    } @else {
                        "The chain is broken: " (text(&verdict["problem"]))
                    }
                    " Verified " (when(Some(&verified_at.to_string()))) "."
                }
                @let c = &verdict["checkpoints"];
                @if c.is_object() {
                    p data-test="audit-checkpoints" class="muted" {
                        @match c["last"].as_object() {
                            Some(last) => {
                                (text(&c["verified"])) " signed checkpoints hold, the last at entry " (text(&last["seq"])) " on " (when(last["at"].as_str())) "."
                            }
                            None => { "No signed checkpoint of the log yet." }
                        }
                        " Checkpoint key " code { (text(&c["key"])) } "."
                    }
                }
            }
            None => {
                p data-test="audit-verdict" role="status" class="muted" {
                    "The chain is being verified for the first time since the server started; reload in a few seconds for its verdict."
                }
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

/// `GET /console/users`: users and roles; an admin adds people, changes
/// roles and disables or enables them here.
pub(crate) async fn users(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(l): Query<Listing>,
) -> PageResult {
    users_page(&state, &viewer, l.done.as_deref(), None).await
}

/// What the users page says after a form: a notice (a new password) or a
/// problem, with the form as it was sent.
enum Said<'a> {
    Notice(Markup),
    Problem(String, &'a UserForm),
}

async fn users_page(
    state: &AppState,
    viewer: &Viewer,
    done: Option<&str>,
    said: Option<Said<'_>>,
) -> PageResult {
    let users = body(people_api::list_users(State(state.clone()), viewer.reader()).await)?;
    let admin = viewer.may(Access::Administer);
    let typed = match &said {
        Some(Said::Problem(_, form)) => Some(*form),
        _ => None,
    };
    let roles = ["admin", "approver", "operator", "auditor"];
    let content = html! {
        h1 { "Users" }
        @match &said {
            Some(Said::Notice(n)) => { div class="notice" role="status" { (n) } }
            Some(Said::Problem(p, _)) => { p class="error" role="alert" { (p) } }
            None => {}
        }
        p class="muted" {
            "Roles: admin (everything), approver (approvals, exemptions, baselines), operator (hosts, rollouts, feeds), auditor (reads everything)."
        }
        table {
            thead { tr { th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { "Email" } th scope="col" { "Created" } th scope="col" { "State" }
                @if admin { th scope="col" { "Change" } } } }
            tbody { @for u in &users {
                @let name = text(&u["username"]);
                @let enabled = u["disabled_at"].is_null();
                tr {
                    td { (name) }
                    td { (text(&u["role"])) }
                    td { (text(&u["email"])) }
                    td { (when(u["created_at"].as_str())) }
                    td { @if enabled { "enabled" } @else { span class="warn" { "disabled " (when(u["disabled_at"].as_str())) } } }
                    @if admin { td {
                        form class="inline" method="post" action=(format!("/console/users/{}", encode(&name))) {
                            label for=(format!("role-{name}")) class="visually-hidden" { "Role of " (name) }
                            select id=(format!("role-{name}")) name="role" {
                                @for r in roles { option value=(r) selected[u["role"] == r] { (r) } }
                            }
                            button type="submit" { "Set role" }
                        }
                        " "
                        form class="inline" method="post" action=(format!("/console/users/{}", encode(&name))) data-confirm=[enabled.then(|| format!("Disable {name}? They can no longer sign in, and their sessions and API tokens stop working."))] {
                            input type="hidden" name="disabled" value=(if enabled { "true" } else { "false" });
                            label for=(format!("reason-{name}")) class="visually-hidden" { "Why (for the audit log)" }
                            input id=(format!("reason-{name}")) name="reason" size="18" placeholder="why";
                            button type="submit" { @if enabled { "Disable" } @else { "Enable" } }
                        }
                    } }
                }
            } }
        }
        @if admin {
            h2 { "Add a user" }
            form class="filters" method="post" action="/console/users" {
                div { label for="username" { "User name" } input id="username" name="username" required value=(typed.map_or("", |f| f.username.as_str())); }
                div { label for="role" { "Role" } select id="role" name="role" {
                    // The least privilege unless the admin chooses more.
                    @for r in roles { option value=(r) selected[typed.map_or(r == "auditor", |f| f.role == r)] { (r) } }
                } }
                div { label for="email" { "Email (optional)" } input id="email" name="email" type="email" value=(typed.and_then(|f| f.email.as_deref()).unwrap_or("")); }
                button type="submit" { "Add" }
            }
            p class="muted" { "The server makes the password and shows it once. The same as " code { "patchwell users add" } "; an admin sets another password with " code { "PATCH /api/v1/users/NAME" } "." }
        }
    };
    Ok(page(viewer, "Users", done, content))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UserForm {
    username: String,
    role: String,
    #[serde(default)]
    email: Option<String>,
}

/// `POST /console/users`: adds a user through the API's handler; the
/// password the server made is shown on the answer, once.
pub(crate) async fn add_user(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<UserForm>,
) -> Result<Response, PageError> {
    let caller = viewer.require(Access::Administer)?;
    let email = form
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let request = serde_json::from_value(serde_json::json!({
        "username": form.username.trim(), "role": form.role, "email": email,
    }))
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    match people_api::create_user(
        State(state.clone()),
        Administrator(caller),
        Ok(Json(request)),
    )
    .await
    {
        Ok((_, Json(created))) => {
            let notice = html! {
                (text(&created["username"])) " was added as " (text(&created["role"])) ". Their password, shown this once: "
                code data-test="new-password" { (text(&created["password"])) }
            };
            Ok(
                users_page(&state, &viewer, None, Some(Said::Notice(notice)))
                    .await?
                    .into_response(),
            )
        }
        Err(e) if e.status().is_client_error() => {
            let status = e.status();
            let page = users_page(
                &state,
                &viewer,
                None,
                Some(Said::Problem(
                    super::clip_message(
                        e.message(),
                        &[
                            ("username".to_owned(), form.username.clone()),
                            ("email".to_owned(), form.email.clone().unwrap_or_default()),
                        ],
                    ),
                    &form,
                )),
            )
            .await?;
            Ok((status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChangeUserForm {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /console/users/{name}`: a role, or disabled or enabled, through
/// the API's handler.
pub(crate) async fn change_user(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Form(form): Form<ChangeUserForm>,
) -> Result<Response, PageError> {
    let caller = viewer.require(Access::Administer)?;
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let request = serde_json::from_value(serde_json::json!({
        "role": form.role, "disabled": form.disabled, "reason": reason,
    }))
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let _ = people_api::patch_user(
        State(state),
        Administrator(caller),
        Path(name.clone()),
        Ok(Json(request)),
    )
    .await?;
    let said = match (form.role.as_deref(), form.disabled) {
        (Some(role), _) => format!("{name} is now {role}."),
        (None, Some(true)) => format!("{name} is disabled."),
        _ => format!("{name} is enabled."),
    };
    Ok(Redirect::to(&format!("/console/users?done={}", encode(&said))).into_response())
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
    Form(form): Form<AckForm>,
) -> Result<Response, PageError> {
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
            // Hosts named by name show by name; their ids are in the JSON.
            @let by_name = map.get("host_names").is_some_and(Value::is_array);
            @for (k, x) in map {
                @if !(SHOWN_APART.contains(&k.as_str()) || x.is_null() || x == &Value::Array(Vec::new()) || (by_name && k == "hosts")) {
                    span class="field" { strong { (k) ": " } (short(x)) } " "
                }
            }
        }
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().map(text).collect::<Vec<_>>().join(", ")
        }
        Value::String(s) => match s.parse::<jiff::Timestamp>() {
            Ok(t) => patchwell_core::rollout::human(&t),
            Err(_) => s.clone(),
        },
        other => other.to_string(),
    };
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

/// A kind of planning object as the console shows it: its title, who may
/// change it, and the document a new one starts from.
struct Kind {
    key: &'static str,
    title: &'static str,
    access: Access,
    example: &'static str,
}

const KINDS: [Kind; 9] = [
    Kind {
        key: "baselines",
        title: "Baselines",
        access: Access::Approve,
        example: r#"{"group": "servers", "minimum": [{"package": "openssl", "version": "3.0.17-1~deb12u2"}], "fixed": ["DSA-5000-1"]}"#,
    },
    Kind {
        key: "exemptions",
        title: "Exemptions",
        access: Access::Approve,
        example: r#"{"host": "HOST-ID", "advisory": "DSA-5000-1", "reason": "vendor application certified on this version only", "control": "host isolated in VLAN 40", "expires": "2027-03-31T00:00:00Z"}"#,
    },
    Kind {
        key: "policies",
        title: "Policies, schedules and maintenance windows",
        access: Access::Administer,
        example: r#"{"hosts": "tag = laptop", "classes": ["critical", "high"], "security_only": true, "schedule": "second tuesday of every month at 22:00", "windows": [{"opens": "every sat at 01:00", "hours": 4}], "timezone": "Europe/Berlin", "reboot": "if-required", "reboot_max_deferral_hours": 24}"#,
    },
    Kind {
        key: "approvals",
        title: "Approvals",
        access: Access::Approve,
        example: r#"{"verdict": "approve", "comment": "tested in the pilot ring"}"#,
    },
    Kind {
        key: "approval-rules",
        title: "Approval rules",
        access: Access::Administer,
        example: r#"{"classes": ["critical"], "security_only": true, "ring": "pilot", "days_after_release": 0}"#,
    },
    Kind {
        key: "go-no-go",
        title: "Go / no-go",
        access: Access::Approve,
        example: r#"{"go": true, "comment": "pilot clean for two business days"}"#,
    },
    Kind {
        key: "contacts",
        title: "Contacts",
        access: Access::Administer,
        example: r#"{"audience": "management", "email": "it-director@example.org"}"#,
    },
    Kind {
        key: "owners",
        title: "Owners",
        access: Access::Administer,
        example: r#"{"risk": "high", "note": "payment systems"}"#,
    },
    Kind {
        key: "report-schedules",
        title: "Report schedules",
        access: Access::Administer,
        example: r#"{"when": "first monday of every month at 08:00", "timezone": "UTC", "month": "previous", "formats": ["pdf", "csv"], "audiences": ["management"]}"#,
    },
];

fn kind_of(key: &str) -> Result<&'static Kind, PageError> {
    KINDS.iter().find(|k| k.key == key).ok_or_else(|| {
        ApiError::not_found(format!(
            "no console page for planning objects of kind {key:?}"
        ))
        .into()
    })
}

/// Every object of a kind, as the API lists them.
async fn listed(state: &AppState, viewer: &Viewer, kind: &Kind) -> Result<Vec<Value>, PageError> {
    let (s, r) = (State(state.clone()), viewer.reader());
    let listed = match kind.key {
        "baselines" => plan_api::list_docs::<BaselineDoc>(s, r).await,
        "exemptions" => plan_api::list_docs::<ExemptionDoc>(s, r).await,
        "policies" => plan_api::list_docs::<PolicyDoc>(s, r).await,
        "approvals" => plan_api::list_docs::<ApprovalDoc>(s, r).await,
        "approval-rules" => plan_api::list_docs::<ApprovalRuleDoc>(s, r).await,
        "go-no-go" => plan_api::list_docs::<GoNoGoDoc>(s, r).await,
        "contacts" => plan_api::list_docs::<ContactDoc>(s, r).await,
        "owners" => plan_api::list_docs::<OwnerDoc>(s, r).await,
        _ => plan_api::list_docs::<ReportScheduleDoc>(s, r).await,
    };
    body(listed)
}

/// Stores a document through the API's handler, as `caller`.
async fn put<D: Doc>(
    state: &AppState,
    caller: Caller,
    kind: &Kind,
    name: &str,
    doc: Value,
) -> Result<(), ApiError> {
    let doc: D = serde_json::from_value(doc)
        .map_err(|e| ApiError::bad_request(format!("{} {name}: {e}", D::WHAT)))?;
    let (s, n) = (State(state.clone()), Path(name.to_owned()));
    let stored = if kind.access == Access::Administer {
        plan_api::put_doc::<D, Administrator>(s, Administrator(caller), n, Ok(Json(doc))).await
    } else {
        plan_api::put_doc::<D, Approver>(s, Approver(caller), n, Ok(Json(doc))).await
    };
    stored.map(|_| ())
}

/// Deletes a document through the API's handler, as `caller`.
async fn delete<D: Doc>(
    state: &AppState,
    caller: Caller,
    kind: &Kind,
    name: &str,
) -> Result<(), ApiError> {
    let (s, n) = (State(state.clone()), Path(name.to_owned()));
    let done = if kind.access == Access::Administer {
        plan_api::delete_doc::<D, Administrator>(s, Administrator(caller), n).await
    } else {
        plan_api::delete_doc::<D, Approver>(s, Approver(caller), n).await
    };
    done.map(|_| ())
}

/// `GET /console/plans/{kind}`: the planning objects of one kind, with a
/// form that defines, replaces (`?edit=NAME`) or deletes one.
pub(crate) async fn plans(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(kind): Path<String>,
    Query(l): Query<Listing>,
    Query(edit): Query<EditQuery>,
) -> PageResult {
    let kind = kind_of(&kind)?;
    let rows = listed(&state, &viewer, kind).await?;
    let editing = edit
        .edit
        .as_deref()
        .and_then(|name| rows.iter().find(|o| o["name"] == name));
    let draft = editing.map(|o| Draft {
        name: text(&o["name"]),
        document: document_of(o),
        problem: None,
    });
    Ok(plans_page(&viewer, kind, &l, &rows, draft, editing))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EditQuery {
    edit: Option<String>,
}

/// What the form holds: a name, a document, and what was wrong with it.
struct Draft {
    name: String,
    document: String,
    problem: Option<String>,
}

/// A stored object's document without what the server keeps beside it.
fn document_of(o: &Value) -> String {
    let mut doc = o.clone();
    if let Some(map) = doc.as_object_mut() {
        for k in ["name", "created_at", "updated_at", "updated_by", "now"] {
            map.remove(k);
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn plans_page(
    viewer: &Viewer,
    kind: &Kind,
    l: &Listing,
    rows: &[Value],
    draft: Option<Draft>,
    editing_object: Option<&Value>,
) -> axum::response::Html<String> {
    let may = viewer.may(kind.access);
    let editing = draft.as_ref().is_some_and(|d| d.problem.is_none());
    let draft = draft.unwrap_or_else(|| Draft {
        name: String::new(),
        document: serde_json::from_str::<Value>(kind.example)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_default(),
        problem: None,
    });
    let base = format!("/console/plans/{}", kind.key);
    let json_form = html! {
        form class="editor" method="post" action=(base) {
            div {
                label for="name" { "Name" }
                input id="name" name="name" required value=(draft.name);
            }
            div {
                label for="document" { "Document (JSON)" }
                textarea id="document" name="document" rows="10" cols="90" spellcheck="false" { (draft.document) }
            }
            button type="submit" { "Save" }
        }
    };
    let content = html! {
        h1 { (kind.title) }
        nav class="actions" aria-label="Planning objects" {
            @for k in &KINDS {
                @if k.key == kind.key { strong { (k.key) } } @else { a href=(format!("/console/plans/{}", k.key)) { (k.key) } }
            }
        }
        @if let Some(p) = &draft.problem {
            p class="error" role="alert" { (p) }
        }
        @if rows.is_empty() {
            p class="muted" { "None yet." }
        } @else {
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "What it says" } th scope="col" { "Changed" }
                    @if may || kind.key == "baselines" { th scope="col" { "Actions" } } } }
                tbody { @for o in l.window(rows) {
                    @let name = text(&o["name"]);
                    tr {
                        td { (name) }
                        td { (fields(o)) }
                        td { (when(o["updated_at"].as_str())) " by " (text(&o["updated_by"])) }
                        @if may || kind.key == "baselines" { td {
                            @if kind.key == "baselines" {
                                a href=(format!("/console/baselines/{}", encode(&name))) { "Compliance" } " "
                            }
                        @if may {
                            a href=(format!("{base}?edit={}#editor", encode(&name))) { "Edit" } " "
                            form class="inline" method="post" action=(format!("{base}/{}/delete", encode(&name))) data-confirm=(format!("Delete {name}? This cannot be undone (the audit log keeps what it said).")) {
                                button type="submit" aria-label=(format!("Delete {name}")) { "Delete" }
                            }
                        }
                        } }
                    }
                } }
            }
            (l.pager(&base, rows.len()))
        }
        @if may {
            h2 id="editor" { @if editing { "Change " (draft.name) } @else { "Define or replace one" } }
            @if let Some(fields) = fields_of(kind.key) {
                (fields_form(&base, fields, if editing { draft.name.as_str() } else { "" }, editing_object.filter(|_| editing)))
                details open[draft.problem.is_some()] {
                    summary { "Advanced: the document as JSON" }
                    (json_form)
                }
            } @else {
                (json_form)
            }
            p class="muted" { "Checked by the server before it is stored; every change is in the audit log. The same as "
                code { (format!("PUT /api/v1/{}/NAME", kind.key)) } "." }
        } @else {
            p class="muted" { "Your role may read these but not change them." }
        }
    };
    page(viewer, kind.title, l.done.as_deref(), content)
}

/// `POST /console/plans/{kind}`: defines or replaces one; a document the
/// server refuses is shown again with why.
pub(crate) async fn save_plan(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(kind): Path<String>,
    Form(posted): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let kind = kind_of(&kind)?;
    let caller = viewer.require(kind.access)?;
    let get = |key: &str| {
        posted
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    };
    let name = get("name").trim().to_owned();
    // The form with fields: what it describes is stored as its JSON would
    // be; a refusal comes back on that form, as typed.
    let by_fields = get("form") == "fields";
    let document = match fields_of(kind.key).filter(|_| by_fields) {
        Some(fields) => document_from_fields(fields, &posted)?.to_string(),
        None => get("document").to_owned(),
    };
    let stored = match serde_json::from_str::<Value>(&document) {
        Err(e) => Err(ApiError::bad_request(format!(
            "the document is not JSON: {e}"
        ))),
        Ok(doc) => match kind.key {
            "baselines" => put::<BaselineDoc>(&state, caller, kind, &name, doc).await,
            "exemptions" => put::<ExemptionDoc>(&state, caller, kind, &name, doc).await,
            "policies" => put::<PolicyDoc>(&state, caller, kind, &name, doc).await,
            "approvals" => put::<ApprovalDoc>(&state, caller, kind, &name, doc).await,
            "approval-rules" => put::<ApprovalRuleDoc>(&state, caller, kind, &name, doc).await,
            "go-no-go" => put::<GoNoGoDoc>(&state, caller, kind, &name, doc).await,
            "contacts" => put::<ContactDoc>(&state, caller, kind, &name, doc).await,
            "owners" => put::<OwnerDoc>(&state, caller, kind, &name, doc).await,
            _ => put::<ReportScheduleDoc>(&state, caller, kind, &name, doc).await,
        },
    };
    match stored {
        Ok(()) => Ok(Redirect::to(&format!(
            "/console/plans/{}?done={}",
            kind.key,
            encode(&format!("{name} saved."))
        ))
        .into_response()),
        Err(e) if e.status().is_client_error() && !by_fields => {
            let rows = listed(&state, &viewer, kind).await?;
            let draft = Draft {
                name,
                document,
                problem: Some(super::clip_message(e.message(), &posted)),
            };
            let page = plans_page(&viewer, kind, &Listing::default(), &rows, Some(draft), None);
            Ok((e.status(), page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /console/plans/{kind}/{name}/delete`
pub(crate) async fn delete_plan(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let kind = kind_of(&kind)?;
    let caller = viewer.require(kind.access)?;
    match kind.key {
        "baselines" => delete::<BaselineDoc>(&state, caller, kind, &name).await,
        "exemptions" => delete::<ExemptionDoc>(&state, caller, kind, &name).await,
        "policies" => delete::<PolicyDoc>(&state, caller, kind, &name).await,
        "approvals" => delete::<ApprovalDoc>(&state, caller, kind, &name).await,
        "approval-rules" => delete::<ApprovalRuleDoc>(&state, caller, kind, &name).await,
        "go-no-go" => delete::<GoNoGoDoc>(&state, caller, kind, &name).await,
        "contacts" => delete::<ContactDoc>(&state, caller, kind, &name).await,
        "owners" => delete::<OwnerDoc>(&state, caller, kind, &name).await,
        _ => delete::<ReportScheduleDoc>(&state, caller, kind, &name).await,
    }?;
    Ok(Redirect::to(&format!(
        "/console/plans/{}?done={}",
        kind.key,
        encode(&format!("{name} deleted."))
    ))
    .into_response())
}

/// `GET /console/deferrals`: users' requests to put off updates, pending
/// first, each with its business justification; approvers grant (perhaps
/// shorter) or refuse with a reason.
pub(crate) async fn deferrals(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(l): Query<Listing>,
) -> PageResult {
    let all = serde_json::from_value(serde_json::json!({})).map_err(ApiError::internal)?;
    let listed =
        body(crate::deferrals::list(State(state.clone()), viewer.reader(), Query(all)).await)?;
    let mut rows: Vec<Value> = listed["deferrals"].as_array().cloned().unwrap_or_default();
    // Pending first, then the newest.
    rows.sort_by_cached_key(|d| {
        (
            d["state"] != "pending",
            std::cmp::Reverse(text(&d["requested_at"])),
        )
    });
    let may = viewer.may(Access::Approve);
    let base = "/console/deferrals";
    let content = html! {
        h1 { "Deferral requests" }
        p class="muted" { "A user asks (through the agent, or the help desk for them) to put off updates on a host until a date, with a business justification. A granted deferral holds that host's jobs until it ends; the ring's gate does not wait for it." }
        @if rows.is_empty() {
            p class="muted" { "No one has asked." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Host" } th scope="col" { "Rollout" } th scope="col" { "Until" }
                    th scope="col" { "Justification" } th scope="col" { "Asked by" } th scope="col" { "State" }
                    @if may { th scope="col" { "Decide" } }
                } }
                tbody { @for d in l.window(&rows) {
                    @let id = text(&d["id"]);
                    tr {
                        td { a href=(format!("/console/hosts/{}", encode(&text(&d["host"])))) { (d["hostname"].as_str().unwrap_or(&text(&d["host"]))) } }
                        td { (d["rollout"].as_str().unwrap_or("every rollout")) }
                        td { (when(d["until"].as_str())) }
                        td { (text(&d["justification"])) }
                        td { (text(&d["asked_by"])) " " (when(d["requested_at"].as_str())) }
                        td {
                            @if d["state"] == "pending" { span class="warn" { "pending" } }
                            @else { (text(&d["state"])) " by " (text(&d["decided_by"])) @if let Some(why) = d["decision"].as_str() { ": " (why) } }
                        }
                        @if may { td {
                            @if d["state"] == "pending" {
                                form class="inline" method="post" action=(format!("{base}/{}/decide", encode(&id))) {
                                    input type="hidden" name="verdict" value="grant";
                                    input type="hidden" name="offset_minutes" value="0";
                                    label for=(format!("until-{id}")) class="visually-hidden" { "Grant until (optional, shorter)" }
                                    input id=(format!("until-{id}")) name="until" type="datetime-local" title="grant a shorter deferral (optional)";
                                    button type="submit" { "Grant" }
                                }
                                " "
                                form class="inline" method="post" action=(format!("{base}/{}/decide", encode(&id))) {
                                    input type="hidden" name="verdict" value="refuse";
                                    label for=(format!("why-{id}")) class="visually-hidden" { "Why refused (the user is told)" }
                                    input id=(format!("why-{id}")) name="reason" size="24" placeholder="why (the user is told)" required;
                                    button type="submit" { "Refuse" }
                                }
                            }
                        } }
                    }
                } }
            }
            (l.pager(base, rows.len()))
        }
    };
    Ok(page(
        &viewer,
        "Deferral requests",
        l.done.as_deref(),
        content,
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecideForm {
    verdict: String,
    #[serde(default)]
    reason: Option<String>,
    /// `2026-12-01T09:00` as typed in the viewer's browser.
    #[serde(default)]
    until: Option<String>,
    /// The viewer's offset from UTC in minutes (JavaScript's
    /// `getTimezoneOffset`), which the page's script fills in; 0 without it.
    #[serde(default)]
    offset_minutes: Option<i64>,
}

/// `POST /console/deferrals/{id}/decide`: grant or refuse through the
/// API's handlers.
pub(crate) async fn decide_deferral(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Result<Response, PageError> {
    let caller = viewer.require(Access::Approve)?;
    let until = match form
        .until
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        None => None,
        Some(u) => Some(parse_until(u, form.offset_minutes.unwrap_or(0))?),
    };
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let decide = serde_json::from_value(serde_json::json!({"reason": reason, "until": until}))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (s, p) = (State(state), Path(id.clone()));
    let done = match form.verdict.as_str() {
        "grant" => crate::deferrals::grant(s, Approver(caller), p, Ok(Json(decide))).await?,
        "refuse" => crate::deferrals::refuse(s, Approver(caller), p, Ok(Json(decide))).await?,
        other => {
            return Err(
                ApiError::bad_request(format!("verdict {other:?}: use grant or refuse")).into(),
            )
        }
    };
    let said = format!("Deferral {id} {}.", text(&done.0["state"]));
    Ok(Redirect::to(&format!("/console/deferrals?done={}", encode(&said))).into_response())
}

/// A time from a form: RFC 3339, or a `datetime-local` value in the
/// viewer's zone, `offset` minutes behind UTC.
fn parse_until(u: &str, offset: i64) -> Result<jiff::Timestamp, PageError> {
    if let Ok(t) = u.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    u.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .and_then(|z| {
            z.timestamp()
                .checked_add(jiff::SignedDuration::from_mins(offset))
                .ok()
        })
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "until {u:?}: give a date and time such as 2026-12-01T09:00"
            ))
            .into()
        })
}

/// `GET /console/baselines/{name}`: each host of a baseline's group,
/// below, above, exempt or at, with what is missing or unapproved;
/// `?only=below` (or another state) keeps those.
pub(crate) async fn baseline(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(l): Query<Listing>,
) -> PageResult {
    let c = body(
        plan_api::baseline_compliance(State(state.clone()), viewer.reader(), Path(name.clone()))
            .await,
    )?;
    let only = l.only.as_deref().filter(|o| !o.is_empty());
    let mut rows: Vec<Value> = c["compliance"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| only.is_none_or(|o| r["status"] == o))
        .cloned()
        .collect();
    let rank = |s: &Value| match s.as_str() {
        Some("below") => 0,
        Some("exempt") => 1,
        Some("above") => 2,
        _ => 3,
    };
    rows.sort_by_cached_key(|r| (rank(&r["status"]), text(&r["hostname"])));
    let base = format!("/console/baselines/{}", encode(&name));
    let requirement = |m: &Value| {
        let mut s = format!(
            "{} (has {})",
            text(&m["requirement"]),
            m["has"].as_str().unwrap_or("none")
        );
        if let Some(by) = m["exempt_by"].as_str() {
            s.push_str(&format!(", exempt by {by}"));
        }
        s
    };
    let content = html! {
        h1 { "Baseline " (name) }
        p { "Group " strong { (text(&c["group"])) } ": " (text(&c["hosts"])) " hosts." }
        div class="cards" {
            @for (state_name, label) in [("below", "below the baseline"), ("exempt", "below, exempt"), ("above", "above (unapproved versions)"), ("at", "at the baseline")] {
                div class="card" {
                    div class=(if state_name == "below" && c["below"].as_u64().unwrap_or(0) > 0 { "figure bad" } else { "figure" }) { (text(&c[state_name])) }
                    div class="label" { a href=(format!("{base}?only={state_name}")) { (label) } }
                }
            }
        }
        @if let Some(o) = only { p { "Only hosts " (o) ". " a href=(base.clone()) { "Show all" } } }
        table {
            thead { tr { th scope="col" { "Host" } th scope="col" { "State" } th scope="col" { "Missing" } th scope="col" { "Unapproved" } } }
            tbody { @for r in l.window(&rows) {
                tr {
                    td { a href=(format!("/console/hosts/{}", encode(&text(&r["host"])))) { (text(&r["hostname"])) } }
                    td class=(if r["status"] == "below" { "bad" } else { "" }) { (text(&r["status"])) }
                    td { @for m in r["missing"].as_array().into_iter().flatten() { div { (requirement(m)) } } }
                    td { @for u in r["unapproved"].as_array().into_iter().flatten() {
                        div { (text(&u["package"])) " " (text(&u["installed"])) " (highest approved " (u["highest_approved"].as_str().unwrap_or("none")) ")" }
                    } }
                }
            } }
        }
        (l.pager(&base, rows.len()))
        p { a href=(format!("/console/plans/baselines?edit={}#editor", encode(&name))) { "Change the baseline" } }
    };
    Ok(page(
        &viewer,
        &format!("Baselines: {name}"),
        l.done.as_deref(),
        content,
    ))
}

// ---------------------------------------------------------------------------
// Planning objects as forms with fields; the JSON stays as the advanced view.

/// How a field of a planning object's form is typed and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    /// One line of text.
    Text,
    /// Several lines of text.
    Long,
    /// A list: items separated by commas, spaces or lines.
    List,
    /// A day (`2027-03-31`): the document's time is the end of that day, UTC.
    Day,
    /// Yes or no.
    Flag,
    /// One of these.
    Choice(&'static [&'static str]),
    /// A whole number.
    Number,
    /// Lines of `package version`.
    PackageVersions,
    /// Lines of `RULE for N hours` (`every sat at 01:00 for 4 hours`).
    Windows,
}

/// One field of a planning object's form: its key in the document, its
/// label, how it is typed, and whether it is required.
struct Field {
    key: &'static str,
    label: &'static str,
    kind: FieldKind,
    required: bool,
}

const fn field(key: &'static str, label: &'static str, kind: FieldKind) -> Field {
    Field {
        key,
        label,
        kind,
        required: false,
    }
}

const fn required(key: &'static str, label: &'static str, kind: FieldKind) -> Field {
    Field {
        key,
        label,
        kind,
        required: true,
    }
}

const EXEMPTION_FIELDS: &[Field] = &[
    field(
        "hosts",
        "Hosts, by name or id (separated by commas or spaces)",
        FieldKind::List,
    ),
    field(
        "query",
        "And the hosts a query selects now (resolved once, when saved)",
        FieldKind::Text,
    ),
    field(
        "group",
        "Or a group (its members as they change), instead of hosts",
        FieldKind::Text,
    ),
    field("advisory", "Advisory", FieldKind::Text),
    field(
        "package",
        "Or every update of a package, instead of an advisory",
        FieldKind::Text,
    ),
    required("reason", "Reason", FieldKind::Long),
    field("control", "Compensating control", FieldKind::Text),
    required(
        "expires",
        "Expires (at the end of this day, UTC)",
        FieldKind::Day,
    ),
];

const BASELINE_FIELDS: &[Field] = &[
    required("group", "Group of its hosts", FieldKind::Text),
    field(
        "versions",
        "How versions compare",
        FieldKind::Choice(&["deb", "rpm", "apk"]),
    ),
    field(
        "minimum",
        "Minimum versions (one \"package version\" a line)",
        FieldKind::PackageVersions,
    ),
    field(
        "fixed",
        "Advisories that must be fixed (separated by commas or spaces)",
        FieldKind::List,
    ),
];

const POLICY_FIELDS: &[Field] = &[
    required("hosts", "Hosts (a query)", FieldKind::Text),
    field(
        "classes",
        "Classes deployed (critical, high, medium, low; empty: all)",
        FieldKind::List,
    ),
    field(
        "packages",
        "Packages deployed (empty: all)",
        FieldKind::List,
    ),
    field("security_only", "Security updates only", FieldKind::Flag),
    field(
        "approval_rules",
        "Automatic approval rules (names)",
        FieldKind::List,
    ),
    field(
        "schedule",
        "Schedule (second tuesday of every month at 22:00)",
        FieldKind::Text,
    ),
    field(
        "auto_deploy",
        "Start a rollout of the approved updates at each scheduled time",
        FieldKind::Flag,
    ),
    field(
        "windows",
        "Maintenance windows (one \"every sat at 01:00 for 4 hours\" a line; none: any time)",
        FieldKind::Windows,
    ),
    field("timezone", "Time zone (default UTC)", FieldKind::Text),
    field(
        "reboot",
        "Reboot",
        FieldKind::Choice(&["if-required", "never", "always"]),
    ),
    field(
        "reboot_max_deferral_hours",
        "Hours a user may defer a reboot (default 24)",
        FieldKind::Number,
    ),
];

/// The fields of a kind's form, for the kinds that have one.
fn fields_of(kind: &str) -> Option<&'static [Field]> {
    match kind {
        "exemptions" => Some(EXEMPTION_FIELDS),
        "baselines" => Some(BASELINE_FIELDS),
        "policies" => Some(POLICY_FIELDS),
        _ => None,
    }
}

fn items(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The document a fields form describes; a value that cannot be read is
/// an error naming the field.
fn document_from_fields(fields: &[Field], posted: &[(String, String)]) -> Result<Value, ApiError> {
    let value = |key: &str| {
        posted
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
            .trim()
    };
    let mut doc = serde_json::Map::new();
    for f in fields {
        let v = value(f.key);
        if v.is_empty() && f.kind != FieldKind::Flag {
            if f.required {
                return Err(ApiError::bad_request(format!("{}: required", f.label)));
            }
            continue;
        }
        let json = match f.kind {
            FieldKind::Text | FieldKind::Long | FieldKind::Choice(_) => Value::String(v.to_owned()),
            FieldKind::List => serde_json::json!(items(v)),
            FieldKind::Flag => Value::Bool(!v.is_empty()),
            FieldKind::Number => serde_json::json!(v.parse::<u32>().map_err(|_| {
                ApiError::bad_request(format!(
                    "{}: {:?} is not a whole number",
                    f.label,
                    super::clip(v)
                ))
            })?),
            FieldKind::Day => {
                let day: jiff::civil::Date = v.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "{}: {:?} is not a day (2027-03-31)",
                        f.label,
                        super::clip(v)
                    ))
                })?;
                let end = day
                    .tomorrow()
                    .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
                    .map_err(|e| ApiError::bad_request(format!("{}: {e}", f.label)))?;
                Value::String(end.timestamp().to_string())
            }
            FieldKind::PackageVersions => {
                let mut out = Vec::new();
                for line in v.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let mut words = line.split_whitespace();
                    match (words.next(), words.next(), words.next()) {
                        (Some(p), Some(ver), None) => {
                            out.push(serde_json::json!({"package": p, "version": ver}))
                        }
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "{}: {:?}: write a package and its version",
                                f.label,
                                super::clip(line)
                            )))
                        }
                    }
                }
                Value::Array(out)
            }
            FieldKind::Windows => {
                let mut out = Vec::new();
                for line in v.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let parsed = line.rsplit_once(" for ").and_then(|(rule, hours)| {
                        let hours = hours
                            .trim()
                            .trim_end_matches("hours")
                            .trim_end_matches("hour");
                        Some((rule.trim(), hours.trim().parse::<u32>().ok()?))
                    });
                    match parsed {
                        Some((rule, hours)) => {
                            out.push(serde_json::json!({"opens": rule, "hours": hours}))
                        }
                        None => {
                            return Err(ApiError::bad_request(format!(
                                "{}: {:?}: write when it opens and for how long \
                                 (every sat at 01:00 for 4 hours)",
                                f.label,
                                super::clip(line)
                            )))
                        }
                    }
                }
                Value::Array(out)
            }
        };
        doc.insert(f.key.to_owned(), json);
    }
    Ok(Value::Object(doc))
}

/// A stored object's value for one field of its form.
fn field_value(f: &Field, o: &Value) -> String {
    // An exemption's hosts show by name: that is how people name them.
    let v = if f.key == "hosts" && o["host_names"].is_array() {
        &o["host_names"]
    } else {
        &o[f.key]
    };
    let list =
        |v: &Value| -> Vec<String> { v.as_array().into_iter().flatten().map(text).collect() };
    match f.kind {
        _ if v.is_null() => String::new(),
        FieldKind::List => list(v).join(", "),
        FieldKind::Flag => {
            if v == &Value::Bool(true) {
                "on".into()
            } else {
                String::new()
            }
        }
        FieldKind::Day => v
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| {
                (t - jiff::SignedDuration::from_nanos(1))
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .date()
                    .to_string()
            })
            .unwrap_or_default(),
        FieldKind::PackageVersions => v
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("{} {}", text(&p["package"]), text(&p["version"])))
            .collect::<Vec<_>>()
            .join("\n"),
        FieldKind::Windows => v
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| format!("{} for {} hours", text(&w["opens"]), text(&w["hours"])))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => text(v),
    }
}

/// The fields form of a kind, filled from `object` when one is edited.
fn fields_form(base: &str, fields: &[Field], name: &str, object: Option<&Value>) -> Markup {
    let value = |f: &Field| object.map(|o| field_value(f, o)).unwrap_or_default();
    html! {
        form class="stack" method="post" action=(base) aria-labelledby="editor" {
            input type="hidden" name="form" value="fields";
            div { label for="f-name" { "Name" } input id="f-name" name="name" required value=(name); }
            @for f in fields {
                @let id = format!("f-{}", f.key);
                @let v = value(f);
                @match f.kind {
                    FieldKind::Long | FieldKind::PackageVersions | FieldKind::Windows => {
                        div class="wide" { label for=(id) { (f.label) } textarea id=(id) name=(f.key) rows="3" required[f.required] { (v) } }
                    }
                    FieldKind::Flag => {
                        div { label for=(id) { input id=(id) name=(f.key) type="checkbox" value="on" checked[!v.is_empty()]; " " (f.label) } }
                    }
                    FieldKind::Choice(options) => {
                        div { label for=(id) { (f.label) } select id=(id) name=(f.key) {
                            @for o in options { option value=(o) selected[v == *o] { (o) } }
                        } }
                    }
                    FieldKind::Day => {
                        div { label for=(id) { (f.label) } input id=(id) name=(f.key) type="date" required[f.required] value=(v); }
                    }
                    FieldKind::Number => {
                        div { label for=(id) { (f.label) } input id=(id) name=(f.key) type="number" min="0" value=(v); }
                    }
                    _ => {
                        div { label for=(id) { (f.label) } input id=(id) name=(f.key) required[f.required] value=(v); }
                    }
                }
            }
            div { button type="submit" { "Save" } }
        }
    }
}
