//! The web console: HTML pages rendered on the server, served by the same
//! process as the API, under `/console`.
//!
//! A key design decision made in this module is that a page never has
//! logic of its own about the fleet: it calls the same handler the API
//! serves (so the same access checks, the same reasons, the same audit
//! entries) and renders the JSON that handler returns. Pages that list
//! many rows page and sort on the server; live progress comes as HTML
//! fragments over server-sent events, swapped in by a few lines of
//! JavaScript. Forms post with the session cookie, which is `SameSite=
//! Strict`; posts from another origin are refused as well, by the layer in
//! `browser.rs`.

mod advisories;
mod dashboard;
mod deploy;
mod hosts;
mod records;
pub(crate) mod reports;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use jiff::Timestamp;
use maud::{html, Markup, DOCTYPE};
use patchwell_core::people::Access;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

/// The console's routes, a refused form answered with its page again.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    pages().route_layer(axum::middleware::from_fn_with_state(state, refill_forms))
}

/// The console's routes as they are.
fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console", get(dashboard::show))
        .route("/console/live/dashboard", get(dashboard::live))
        .route("/console/hosts", get(hosts::list))
        .route("/console/hosts/{id}", get(hosts::show))
        .route("/console/advisories", get(advisories::list))
        .route("/console/advisories/{id}", get(advisories::show))
        .route("/console/updates", get(advisories::updates))
        .route("/console/approvals", post(advisories::decide))
        .route("/console/approvals/bulk", post(advisories::decide_bulk))
        .route("/console/rollouts", get(deploy::list).post(deploy::create))
        .route("/console/rollouts/{name}", get(deploy::show))
        .route("/console/rollouts/{name}/live", get(deploy::live))
        .route("/console/rollouts/{name}/act", post(deploy::act))
        .route("/console/reports", get(reports::index))
        .route("/console/reports/monthly", get(reports::monthly_html))
        .route("/console/reports/monthly.csv", get(reports::monthly_csv))
        .route("/console/reports/monthly.pdf", get(reports::monthly_pdf))
        .route(
            "/console/reports/schedules/{name}/send",
            post(reports::send_now),
        )
        .route("/console/audit", get(records::audit))
        .route(
            "/console/users",
            get(records::users).post(records::add_user),
        )
        .route("/console/users/{name}", post(records::change_user))
        .route("/console/deferrals", get(records::deferrals))
        .route("/console/baselines/{name}", get(records::baseline))
        .route(
            "/console/deferrals/{id}/decide",
            post(records::decide_deferral),
        )
        .route("/console/procedure", get(records::procedure))
        .route("/console/procedure/acknowledge", post(records::acknowledge))
        .route(
            "/console/plans/{kind}",
            get(records::plans).post(records::save_plan),
        )
        .route(
            "/console/plans/{kind}/{name}/delete",
            post(records::delete_plan),
        )
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("assets/console.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("assets/console.js"),
    )
}

// ---------------------------------------------------------------------------
// Who is looking.

/// A signed-in person looking at the console. Anyone else is sent to the
/// sign-in page, and comes back to where they were going.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) caller: Caller,
}

impl Viewer {
    /// Whether the viewer may do this (to show or hide a control; the
    /// handler behind it checks again).
    pub(crate) fn may(&self, access: Access) -> bool {
        patchwell_core::people::allowed(self.caller.role, self.caller.scopes.as_deref(), access)
    }

    /// The viewer as a reader, for the API's read handlers.
    pub(crate) fn reader(&self) -> crate::auth::Reader {
        crate::auth::Reader(self.caller.clone())
    }

    /// The caller, if they may do this; else the page says why not.
    pub(crate) fn require(&self, access: Access) -> Result<Caller, PageError> {
        Ok(self.caller.clone().require(access)?)
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // The console reads the session cookie only: an API token has no
        // business in a browser.
        if crate::auth::session_cookie(&parts.headers).is_none() {
            return Err(to_login(parts));
        }
        match Caller::authenticate(parts, state).await {
            Ok(caller) => match caller.require(Access::Read) {
                Ok(caller) => Ok(Viewer { caller }),
                Err(e) => Err(PageError(e).into_response()),
            },
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => Err(to_login(parts)),
            Err(e) => Err(PageError(e).into_response()),
        }
    }
}

fn to_login(parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map_or("/console", |p| p.as_str());
    Redirect::to(&format!("/console/login?next={}", encode(next))).into_response()
}

// ---------------------------------------------------------------------------
// Errors as pages.

/// An API error shown as a page, with its status.
#[derive(Debug)]
pub(crate) struct PageError(pub(crate) ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<store::Error> for PageError {
    fn from(e: store::Error) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let reason = status.canonical_reason().unwrap_or("Error");
        let body = bare(
            reason,
            html! {
                nav aria-label="Main" {
                    ul class="error-nav" {
                        @for (path, label) in NAV { li { a href=(path) { (label) } } }
                    }
                }
                h1 { (status.as_u16()) " " (reason) }
                p role="alert" class="error" { (clip_long(self.0.message())) }
                p { a href="/console" { "Back to the dashboard" } }
            },
        );
        let mut response = (status, Html(body.into_string())).into_response();
        response
            .extensions_mut()
            .insert(Refusal(self.0.message().to_owned()));
        response
    }
}

/// A message cut at a bound, whatever it repeats.
fn clip_long(message: &str) -> String {
    clipped(message, &[])
}

pub(crate) type PageResult = Result<Html<String>, PageError>;

/// The JSON a handler answered.
pub(crate) fn body<T>(r: Result<Json<T>, ApiError>) -> Result<T, PageError> {
    Ok(r?.0)
}

// ---------------------------------------------------------------------------
// Layout.

/// The pages in the navigation: path, label.
const NAV: &[(&str, &str)] = &[
    ("/console", "Dashboard"),
    ("/console/hosts", "Hosts"),
    ("/console/advisories", "Advisories"),
    ("/console/updates", "Updates"),
    ("/console/rollouts", "Rollouts"),
    ("/console/plans/baselines", "Baselines"),
    ("/console/plans/exemptions", "Exemptions"),
    ("/console/plans/policies", "Policies"),
    ("/console/deferrals", "Deferrals"),
    ("/console/reports", "Reports"),
    ("/console/audit", "Audit log"),
    ("/console/users", "Users"),
    ("/console/procedure", "Procedure"),
];

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · Patchwell" }
        link rel="stylesheet" href="/console/assets/console.css";
        script src="/console/assets/console.js" defer {}
    }
}

/// A page without navigation (sign-in, errors).
fn bare(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body class="bare" {
                main id="main" { (content) }
            }
        }
    }
}

/// A page of the console: navigation, the viewer, a notice, the content.
pub(crate) fn page(
    viewer: &Viewer,
    title: &str,
    notice: Option<&str>,
    content: Markup,
) -> Html<String> {
    let active = NAV
        .iter()
        .find(|(_, label)| title.starts_with(label))
        .map(|(path, _)| *path);
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/console" { "Patchwell" }
                    nav aria-label="Main" {
                        ul {
                            @for (path, label) in NAV {
                                li {
                                    @if Some(*path) == active {
                                        a href=(path) aria-current="page" { (label) }
                                    } @else {
                                        a href=(path) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form class="who" method="post" action="/console/logout" {
                        span { (viewer.caller.username) " (" (viewer.caller.role) ")" }
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" tabindex="-1" {
                    @if let Some(n) = notice {
                        p class="notice" role="status" { (n) }
                    }
                    (content)
                }
            }
        }
    };
    Html(markup.into_string())
}

/// A time, shown in UTC by the server and in the viewer's own time zone by
/// the page's script.
pub(crate) fn when(t: Option<&str>) -> Markup {
    match t.and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(ts) => html! {
            time datetime=(ts.to_string()) { (patchwell_core::rollout::human(&ts)) }
        },
        None => html! { "—" },
    }
}

/// A JSON value as text: strings bare, null as a dash.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// A form the server refused: the same page again, the form as typed.

/// The message of a refused form, carried from [`PageError`] to
/// [`refill_forms`] on the answer.
#[derive(Debug, Clone)]
struct Refusal(String);

/// How much of a value people typed an error message repeats.
const CLIP: usize = 80;

/// A value as an error message repeats it: whole when short, else its
/// first 80 characters and an ellipsis.
pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() > CLIP {
        format!("{}…", s.chars().take(CLIP).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// [`clipped`], for a handler that shows its form again itself.
pub(crate) fn clip_message(message: &str, fields: &[(String, String)]) -> String {
    clipped(message, fields)
}

/// A message with every long value that was typed cut short where it
/// repeats them (as typed, or quoted as Rust's `{:?}` quotes).
fn clipped(message: &str, fields: &[(String, String)]) -> String {
    let mut out = message.to_owned();
    for (_, v) in fields {
        if v.chars().count() > CLIP {
            let quoted = format!("{v:?}");
            out = out
                .replace(&quoted, &format!("{:?}", clip(v)))
                .replace(v.as_str(), &clip(v));
        }
    }
    // Whatever else is long (a value the handler changed first) is cut at
    // a bound too.
    if out.chars().count() > 4 * CLIP {
        out = format!("{}…", out.chars().take(4 * CLIP).collect::<String>());
    }
    out
}

/// The fields of an `application/x-www-form-urlencoded` body, in order.
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut kv = pair.splitn(2, |&b| b == b'=');
            let k = decode(kv.next().unwrap_or_default());
            let v = decode(kv.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

/// The page a console form is on: where the browser says it came from (a
/// console page of this server), else the page the post's path belongs to.
fn page_of_form(post: &str, referer: Option<&str>) -> String {
    if let Some(r) = referer {
        // `https://host/console/...`: the path and query after the host.
        let path = r
            .split_once("://")
            .map_or(r, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
        // A page shown again after a refusal has the post's own address,
        // which is no page to show.
        let same = path.split('?').next() == Some(post);
        if path.starts_with("/console") && !path.starts_with("/console/login") && !same {
            return path.to_owned();
        }
    }
    let segments: Vec<&str> = post.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["console", "rollouts", name, "act"] => format!("/console/rollouts/{name}"),
        ["console", "users", ..] => "/console/users".into(),
        ["console", "plans", kind, ..] => format!("/console/plans/{kind}"),
        ["console", "deferrals", ..] => "/console/deferrals".into(),
        ["console", "procedure", ..] => "/console/procedure".into(),
        ["console", "reports", ..] => "/console/reports".into(),
        ["console", "approvals"] => "/console/updates".into(),
        _ => post.to_owned(),
    }
}

/// A layer over the console's routes: a form post the server refuses
/// (any 4xx answer from a handler that did not show the form again itself)
/// is answered with the page the form is on, the message on that form and
/// its fields as they were typed, with the refusal's status. One place, so
/// no form can forget it.
pub(crate) async fn refill_forms(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let posted_to = request.uri().path().to_owned();
    if *request.method() != axum::http::Method::POST
        || posted_to.starts_with("/console/login")
        || posted_to == "/console/logout"
    {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // body.rs read it whole already, under its limits.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return PageError(ApiError::bad_request("the form's body could not be read"))
            .into_response();
    };
    let fields = form_fields(&bytes);
    let cookie = parts.headers.get(header::COOKIE).cloned();
    let referer = parts
        .headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next
        .run(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(bytes),
        ))
        .await;
    let status = response.status();
    if !status.is_client_error() || status == StatusCode::UNAUTHORIZED {
        return response;
    }
    let message = match response.extensions().get::<Refusal>() {
        Some(Refusal(m)) => m.clone(),
        None => {
            let html = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("text/html"));
            if html {
                // The handler showed the form again itself.
                return response;
            }
            // A form the extractor refused (a field missing or malformed).
            let body = axum::body::to_bytes(response.into_body(), 16 * 1024)
                .await
                .unwrap_or_default();
            format!(
                "the form was refused: {}",
                String::from_utf8_lossy(&body).trim()
            )
        }
    };
    let message = clipped(&message, &fields);
    let page_path = page_of_form(&posted_to, referer.as_deref());
    let mut get = axum::extract::Request::builder()
        .method(axum::http::Method::GET)
        .uri(&page_path);
    if let Some(c) = cookie {
        get = get.header(header::COOKIE, c);
    }
    let Ok(get) = get.body(axum::body::Body::empty()) else {
        return refused_page(status, &message);
    };
    let mut router = pages().with_state(state);
    let shown = match tower_service::Service::call(&mut router, get).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    if !shown.status().is_success() {
        return refused_page(status, &message);
    }
    let Ok(html) = axum::body::to_bytes(shown.into_body(), 64 * 1024 * 1024).await else {
        return refused_page(status, &message);
    };
    let html = String::from_utf8_lossy(&html);
    let out = refill(&html, &posted_to, &fields, &message).unwrap_or_else(|| {
        // No form of that page matches: the message above the content.
        html.replacen(
            "tabindex=\"-1\">",
            &format!("tabindex=\"-1\">{}", alert(&message)),
            1,
        )
    });
    (status, Html(out)).into_response()
}

fn alert(message: &str) -> String {
    html! { p class="error" role="alert" data-test="form-error" { (message) } }.into_string()
}

/// The refusal alone, on a page with the navigation, when the form's page
/// cannot be shown.
fn refused_page(status: StatusCode, message: &str) -> Response {
    PageError(ApiError::new(status, message.to_owned())).into_response()
}

/// The value of attribute `name` in one tag's text, as written (escaped).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(&tag[start..end])
}

fn escaped(s: &str) -> String {
    html! { (s) }.into_string()
}

/// The page's HTML with the form that posted to `action` (the one whose
/// hidden fields match what was posted and that has most of its fields)
/// filled in as typed, and the message at its top; `None` when no form of
/// the page posts there.
fn refill(page: &str, action: &str, fields: &[(String, String)], message: &str) -> Option<String> {
    let action = escaped(action);
    let posted = |name: &str| -> Vec<String> {
        fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| escaped(v))
            .collect()
    };
    // Each form: where its opening tag ends and where it closes.
    let mut best: Option<(usize, usize, usize)> = None;
    let mut at = 0;
    while let Some(i) = page[at..].find("<form") {
        let start = at + i;
        let open_end = start + page[start..].find('>')? + 1;
        let close = open_end + page[open_end..].find("</form>")?;
        at = close;
        if attr(&page[start..open_end], "action") != Some(action.as_str()) {
            continue;
        }
        let inner = &page[open_end..close];
        let mut score = 0;
        let mut fits = true;
        for tag in controls(inner) {
            let Some(name) = attr(tag, "name") else {
                continue;
            };
            let given = posted(name);
            if attr(tag, "type") == Some("hidden") {
                if let Some(v) = given.first() {
                    fits &= attr(tag, "value") == Some(v.as_str());
                }
            } else if !given.is_empty() {
                score += 1;
            }
        }
        if fits && best.is_none_or(|(s, _, _)| score > s) {
            best = Some((score, open_end, close));
        }
    }
    let (_, open_end, close) = best?;
    let mut filled = String::with_capacity(page.len() + message.len() + 256);
    filled.push_str(&page[..open_end]);
    filled.push_str(&alert(message));
    let inner = &page[open_end..close];
    let mut rest = inner;
    while let Some(i) = next_control(rest) {
        filled.push_str(&rest[..i]);
        let tag_end = i + rest[i..].find('>').map_or(rest.len() - i, |e| e + 1);
        let tag = &rest[i..tag_end];
        let name = attr(tag, "name").unwrap_or_default();
        let given = posted(name);
        let kind = attr(tag, "type").unwrap_or("text");
        // An unticked box posts nothing, yet is a value typed.
        let ticks = kind == "checkbox" || kind == "radio";
        if name.is_empty()
            || (given.is_empty() && !tag.starts_with("<select") && !ticks)
            || kind == "hidden"
            || kind == "password"
        {
            filled.push_str(tag);
            rest = &rest[tag_end..];
            continue;
        }
        if tag.starts_with("<input") {
            if ticks {
                let on = attr(tag, "value").is_some_and(|v| given.iter().any(|g| g == v));
                let bare = tag.replace(" checked", "");
                filled.push_str(&if on {
                    bare.replacen("<input", "<input checked", 1)
                } else {
                    bare
                });
            } else if let Some(v) = given.first() {
                filled.push_str(&with_value(tag, v));
            } else {
                filled.push_str(tag);
            }
            rest = &rest[tag_end..];
        } else if let (true, Some(v)) = (tag.starts_with("<textarea"), given.first()) {
            filled.push_str(tag);
            filled.push_str(v);
            let after = &rest[tag_end..];
            rest = after.find("</textarea>").map_or(after, |e| &after[e..]);
        } else {
            // A select: the options typed are selected, no other.
            filled.push_str(tag);
            let after = &rest[tag_end..];
            let end = after.find("</select>").unwrap_or(after.len());
            let mut options = after[..end].replace(" selected", "");
            if !given.is_empty() {
                for g in &given {
                    options = options.replacen(
                        &format!("<option value=\"{g}\""),
                        &format!("<option value=\"{g}\" selected"),
                        1,
                    );
                }
            } else {
                options = after[..end].to_owned();
            }
            filled.push_str(&options);
            rest = &after[end..];
        }
    }
    filled.push_str(rest);
    filled.push_str(&page[close..]);
    Some(filled)
}

/// The opening tags of a form's fields.
fn controls(inner: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = inner;
    while let Some(i) = next_control(rest) {
        let end = i + rest[i..].find('>').map_or(rest.len() - i, |e| e + 1);
        out.push(&rest[i..end]);
        rest = &rest[end..];
    }
    out
}

fn next_control(s: &str) -> Option<usize> {
    ["<input", "<textarea", "<select"]
        .iter()
        .filter_map(|t| s.find(t))
        .min()
}

/// An input's tag with its value replaced.
fn with_value(tag: &str, value: &str) -> String {
    match tag.find(" value=\"") {
        Some(i) => {
            let start = i + " value=\"".len();
            let end = tag[start..].find('"').map_or(tag.len(), |e| start + e);
            format!("{}{}{}", &tag[..start], value, &tag[end..])
        }
        None => {
            let close = if tag.ends_with("/>") {
                tag.len() - 2
            } else {
                tag.len() - 1
            };
            format!("{} value=\"{value}\"{}", &tag[..close], &tag[close..])
        }
    }
}

// ---------------------------------------------------------------------------
// Tables that page and sort on the server.

/// How long a page waits for slow work that the server began at start
/// (the fleet's first posture, the audit chain's first verification)
/// before it answers without its result and says so.
pub(crate) const FIRST_LOOK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

/// How a table is being looked at: `?page=&sort=&dir=` and its filters.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Listing {
    #[serde(default)]
    pub(crate) page: Option<usize>,
    #[serde(default)]
    pub(crate) sort: Option<String>,
    #[serde(default)]
    pub(crate) dir: Option<String>,
    /// A search or a query, per table.
    #[serde(default)]
    pub(crate) q: Option<String>,
    /// A filter, per table.
    #[serde(default)]
    pub(crate) only: Option<String>,
    /// A notice after an action.
    #[serde(default)]
    pub(crate) done: Option<String>,
}

/// Rows a page.
pub(crate) const PER_PAGE: usize = 50;

impl Listing {
    pub(crate) fn page(&self) -> usize {
        self.page.unwrap_or(1).max(1)
    }

    pub(crate) fn descending(&self) -> bool {
        self.dir.as_deref() == Some("desc")
    }

    /// Whether to sort descending: as asked, or `default` when the viewer
    /// asked for neither a column nor a direction.
    pub(crate) fn descending_or(&self, default: bool) -> bool {
        if self.sort.is_none() && self.dir.is_none() {
            default
        } else {
            self.descending()
        }
    }

    pub(crate) fn sort_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.sort.as_deref().unwrap_or(default)
    }

    /// The rows of this page of `rows`.
    pub(crate) fn window<'a, T>(&self, rows: &'a [T]) -> &'a [T] {
        let start = (self.page() - 1) * PER_PAGE;
        if start >= rows.len() {
            return &[];
        }
        &rows[start..(start + PER_PAGE).min(rows.len())]
    }

    /// This listing's link with some parameters changed.
    pub(crate) fn link(
        &self,
        base: &str,
        page: usize,
        sort: Option<&str>,
        dir: Option<&str>,
    ) -> String {
        let mut parts = Vec::new();
        if let Some(q) = self.q.as_deref().filter(|q| !q.is_empty()) {
            parts.push(format!("q={}", encode(q)));
        }
        if let Some(o) = self.only.as_deref().filter(|o| !o.is_empty()) {
            parts.push(format!("only={}", encode(o)));
        }
        if let Some(s) = sort {
            parts.push(format!("sort={}", encode(s)));
        }
        if let Some(d) = dir {
            parts.push(format!("dir={d}"));
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", parts.join("&"))
        }
    }

    /// A column header that sorts by `key`, and says how it is sorted.
    pub(crate) fn header(&self, base: &str, key: &str, label: &str, default: &str) -> Markup {
        self.header_by(base, key, label, default, false)
    }

    /// [`Listing::header`] for a list whose default order (`default`) is
    /// descending when `default_descending`.
    pub(crate) fn header_by(
        &self,
        base: &str,
        key: &str,
        label: &str,
        default: &str,
        default_descending: bool,
    ) -> Markup {
        let current = self.sort_or(default) == key;
        let desc = current && self.descending_or(default_descending);
        let next_dir = if current && !desc { "desc" } else { "asc" };
        let aria = match (current, desc) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        };
        let arrow = match (current, desc) {
            (false, _) => "",
            (true, false) => " ▲",
            (true, true) => " ▼",
        };
        html! {
            th scope="col" aria-sort=(aria) {
                a href=(self.link(base, 1, Some(key), Some(next_dir))) { (label) (arrow) }
            }
        }
    }

    /// Links to the previous and next pages, and where this one is.
    pub(crate) fn pager(&self, base: &str, total: usize) -> Markup {
        let pages = total.div_ceil(PER_PAGE).max(1);
        let page = self.page().min(pages);
        let (sort, dir) = (self.sort.as_deref(), self.dir.as_deref());
        html! {
            nav class="pager" aria-label="Pages" {
                @if page > 1 {
                    a rel="prev" href=(self.link(base, page - 1, sort, dir)) { "← Previous" }
                }
                span { "Page " (page) " of " (pages) " · " (total) " in all" }
                @if page < pages {
                    a rel="next" href=(self.link(base, page + 1, sort, dir)) { "Next →" }
                }
            }
        }
    }
}

/// Orders rows by a key, descending when asked. Each row's key is worked
/// out once, not at every comparison: some keys ask the fleet.
pub(crate) fn order<T, K: Ord>(rows: &mut [T], descending: bool, key: impl Fn(&T) -> K) {
    rows.sort_by_cached_key(key);
    if descending {
        rows.reverse();
    }
}

// ---------------------------------------------------------------------------
// Signing in and out.

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

/// Where to go after signing in: only a console path, never elsewhere.
/// A path with a control character, a space or anything beyond ASCII
/// cannot be a link the console made: it is refused, not redirected to.
fn safe_next(next: Option<&str>) -> Result<&str, PageError> {
    match next {
        Some(n) if n.bytes().any(|b| !(0x21..=0x7e).contains(&b)) => {
            Err(PageError(ApiError::bad_request(
                "next: the page to return to may hold only printable ASCII without spaces \
                 (percent-encode the rest)",
            )))
        }
        Some(n) if n.starts_with("/console") && !n.starts_with("//") => Ok(n),
        _ => Ok("/console"),
    }
}

async fn login_page(Query(q): Query<LoginQuery>) -> PageResult {
    let next = safe_next(q.next.as_deref())?;
    Ok(Html(
        bare(
            "Sign in",
            html! {
                div class="login" {
                    h1 { "Patchwell" }
                    p { "Sign in to the patch management console." }
                    @if let Some(e) = &q.error {
                        p class="error" role="alert" { (e) }
                    }
                    form method="post" action="/console/login" {
                        input type="hidden" name="next" value=(next);
                        label for="username" { "User name" }
                        input id="username" name="username" autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input id="password" name="password" type="password" autocomplete="current-password" required;
                        button type="submit" { "Sign in" }
                    }
                }
            },
        )
        .into_string(),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    peer: crate::sign_in_audit::Peer,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(form.next.as_deref())?.to_owned();
    let request = crate::people_api::SignIn {
        username: form.username,
        password: form.password,
    };
    match crate::people_api::sign_in(State(state), peer, Ok(Json(request))).await {
        Ok((_, signed_in, _)) => {
            let mut response = Redirect::to(&next).into_response();
            if let Some(cookie) = signed_in.get(header::SET_COOKIE) {
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, cookie.clone());
            }
            Ok(response)
        }
        Err(e) if e.status().is_client_error() => Ok(Redirect::to(&format!(
            "/console/login?next={}&error={}",
            encode(&next),
            encode(e.message())
        ))
        .into_response()),
        Err(e) => Err(e.into()),
    }
}

async fn logout(State(state): State<AppState>, viewer: Viewer) -> Response {
    let mut response = Redirect::to("/console/login").into_response();
    match crate::people_api::sign_out(State(state), crate::auth::Member(viewer.caller)).await {
        Ok((_, cleared)) => {
            if let Some(cookie) = cleared.get(header::SET_COOKIE) {
                response
                    .headers_mut()
                    .insert(header::SET_COOKIE, cookie.clone());
            }
        }
        Err(e) => tracing::warn!("ending a console session: {}", e.message()),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::Listing;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The form that posted is the one whose hidden fields match: it gets
    /// the message and every field as typed; the other forms stay as they
    /// were.
    #[test]
    fn a_refused_form_is_filled_as_typed() {
        let page = concat!(
            r#"<main><form method="post" action="/a"><input type="hidden" name="action" value="halt">"#,
            r#"<input id="r1" name="reason" required></form>"#,
            r#"<form method="post" action="/a"><input type="hidden" name="action" value="note">"#,
            r#"<input id="n" name="note" value="old"><select name="kind"><option value="x" selected>x</option>"#,
            r#"<option value="y">y</option></select><textarea name="t">before</textarea>"#,
            r#"<input type="checkbox" name="c" value="on" checked></form></main>"#
        );
        let typed = pairs(&[
            ("action", "note"),
            ("note", "a <b> \"quoted\""),
            ("kind", "y"),
            ("t", "after"),
        ]);
        let out = super::refill(page, "/a", &typed, "too long").unwrap();
        let second = &out[out.rfind("<form").unwrap()..];
        assert!(
            second.contains(r#"role="alert" data-test="form-error">too long</p>"#),
            "{out}"
        );
        assert!(
            second.contains(r#"value="a &lt;b&gt; &quot;quoted&quot;""#),
            "{out}"
        );
        assert!(
            second.contains(r#"<option value="x">x</option><option value="y" selected>"#),
            "{out}"
        );
        assert!(second.contains(">after</textarea>"), "{out}");
        assert!(
            !second.contains("checked"),
            "an unticked box posts nothing: {out}"
        );
        let first = &out[..out.rfind("<form").unwrap()];
        assert!(!first.contains("alert"), "{out}");
        assert!(super::refill(page, "/b", &typed, "m").is_none());
    }

    #[test]
    fn long_typed_values_are_cut_in_messages() {
        let long = "y".repeat(300);
        let message = format!("name {long:?}: too long; {long}");
        let fields = pairs(&[("name", &long)]);
        let cut = super::clipped(&message, &fields);
        let short = format!("{}…", "y".repeat(80));
        assert_eq!(cut, format!("name {short:?}: too long; {short}"));
        assert_eq!(super::clip("short"), "short");
        assert_eq!(
            super::page_of_form("/console/rollouts/r/act", None),
            "/console/rollouts/r"
        );
        assert_eq!(
            super::page_of_form(
                "/console/rollouts/r/act",
                Some("https://h:8/console/rollouts/r/act")
            ),
            "/console/rollouts/r"
        );
        assert_eq!(
            super::page_of_form(
                "/console/approvals",
                Some("https://h/console/updates?only=pending")
            ),
            "/console/updates?only=pending"
        );
    }

    /// A list that sorts newest first by default says so in its header,
    /// and the header's link turns it around.
    #[test]
    fn a_header_shows_the_default_direction() {
        let created = |l: &Listing| {
            l.header_by(
                "/console/rollouts",
                "created_at",
                "Created",
                "created_at",
                true,
            )
            .into_string()
        };
        let fresh = Listing::default();
        let header = created(&fresh);
        assert!(header.contains(r#"aria-sort="descending""#), "{header}");
        assert!(header.contains("dir=asc"), "{header}");
        assert!(fresh.descending_or(true));
        let other = fresh
            .header_by("/console/rollouts", "name", "Name", "created_at", true)
            .into_string();
        assert!(other.contains(r#"aria-sort="none""#), "{other}");
        // Once the viewer chose, the choice holds.
        let ascending = Listing {
            sort: Some("created_at".into()),
            dir: Some("asc".into()),
            ..Listing::default()
        };
        assert!(!ascending.descending_or(true));
        let header = created(&ascending);
        assert!(header.contains(r#"aria-sort="ascending""#), "{header}");
        assert!(header.contains("dir=desc"), "{header}");
    }
}
