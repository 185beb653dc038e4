//! People over HTTP: signing in and out, users, API tokens with scopes,
//! the patch procedure with acknowledgements, and the audit log.

use std::path::{Path as FsPath, PathBuf};

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use jiff::{SignedDuration, Timestamp};
use patchwell_core::people::{Access, Role};
use serde::Deserialize;
use serde_json::{json, Value};
use store::{
    ApiTokenStore, AuditStore, AuditVerdict, NewApiToken, NewUser, PeopleStore, Store, UserChange,
    UserRecord, Why,
};

use crate::auth::{Administrator, Member, Reader, SESSION_COOKIE, SESSION_PREFIX};
use crate::error::ApiError;
use crate::handlers::{check_identifier, now, ApiResult, JsonBody};
use crate::sign_in_audit::{self, Failure, Peer};
use crate::{secrets, AppState};

/// How long a session lasts.
const SESSION_HOURS: i64 = 12;

/// Hashes a password with argon2id (the crate's default parameters), off
/// the async threads: it takes tens of milliseconds on purpose.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("random salt: {e}"))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// Whether a password matches a stored hash.
async fn password_matches(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// The longest password accepted, in bytes: hashing takes time in
/// proportion, and a sign-in checks the length before anything else.
const MAX_PASSWORD_BYTES: usize = 1024;

fn check_password(password: &str) -> ApiResult<()> {
    if password.chars().count() < 12 {
        return Err(ApiError::bad_request(
            "a password needs at least 12 characters",
        ));
    }
    check_password_length(password)
}

fn check_password_length(password: &str) -> ApiResult<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::bad_request(format!(
            "the password is {} bytes long; at most {MAX_PASSWORD_BYTES} are accepted",
            password.len()
        )));
    }
    Ok(())
}

fn check_username(name: &str) -> ApiResult<()> {
    check_identifier("user name", name, 64, "-_.@")
}

fn parse_role(name: &str) -> ApiResult<Role> {
    Role::parse(name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role {name:?}: use admin, approver, operator or auditor"
        ))
    })
}

fn user_json(u: &UserRecord) -> Value {
    json!({
        "username": u.username,
        "role": u.role,
        "email": u.email,
        "created_at": u.created_at,
        "disabled_at": u.disabled_at,
    })
}

/// `POST /api/v1/session`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// Signs in: a session token, also set as an HTTP-only cookie. The user
/// name and password are checked for length before anything else, and the
/// attempt must be within the sign-in budgets (see
/// [`crate::ratelimit::SignInLimiter`] for the rule).
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    peer: Peer,
    body: JsonBody<SignIn>,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let Json(request) = body?;
    check_username(&request.username)?;
    check_password_length(&request.password)?;
    let at = now(&state);
    let source = peer.limited_as();
    let attempt = state
        .sign_in
        .admit(&request.username, source, at)
        .map_err(|refusal| {
            // Refusals can come by the thousand a second; each is not worth
            // a line at the default level (the admitted failures are).
            tracing::debug!(source = %source, "Sign-in refused: {refusal}.");
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, refusal.to_string())
                .retry_after(refusal.wait())
        })?;
    let refused = || ApiError::unauthorized("wrong user name or password");
    let turn = state.sign_in.hashing_turn().await;
    let Some((user, hash)) = state.store.user(&request.username).await? else {
        // Spend the same time as a real check, so timing does not tell
        // which user names exist.
        let _ = hash_password(request.password).await;
        sign_in_audit::failed(&state, peer, &request.username, Failure::UnknownUser).await;
        return Err(refused());
    };
    let matches = password_matches(request.password, hash).await;
    drop(turn);
    if !matches {
        tracing::warn!(user = %user.username, source = %source, "Sign-in refused: wrong password.");
        sign_in_audit::failed(&state, peer, &user.username, Failure::WrongPassword).await;
        return Err(refused());
    }
    if user.disabled_at.is_some() {
        sign_in_audit::failed(&state, peer, &user.username, Failure::Disabled).await;
        return Err(ApiError::unauthorized(format!(
            "user {} is disabled",
            user.username
        )));
    }
    state.sign_in.succeeded(attempt, at);
    let secret = format!(
        "{SESSION_PREFIX}{}",
        secrets::generate(32).map_err(ApiError::internal)?
    );
    let expires = at
        .checked_add(SignedDuration::from_hours(SESSION_HOURS))
        .map_err(ApiError::internal)?;
    state
        .store
        .create_session(&secrets::hash(&secret), &user.username, expires, at)
        .await?;
    sign_in_audit::succeeded(&state, peer, &user.username).await?;
    let mut headers = HeaderMap::new();
    // Over HTTPS the cookie is `Secure`: a browser never sends it over
    // plain HTTP, where anyone on the path could read it.
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if state.config.https { "; Secure" } else { "" }
    );
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    tracing::info!(user = %user.username, "Signed in.");
    Ok((
        StatusCode::CREATED,
        headers,
        Json(json!({
            "token": secret,
            "username": user.username,
            "role": user.role,
            "expires_at": expires,
        })),
    ))
}

/// `DELETE /api/v1/session`: signs out.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    Member(caller): Member,
) -> ApiResult<(StatusCode, HeaderMap)> {
    let Some(session) = caller.session else {
        return Err(ApiError::bad_request(
            "this request came with an API token, not a session: revoke the token instead",
        ));
    };
    state.store.end_session(&session, now(&state)).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_static(if state.config.https {
            "patchwell_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
        } else {
            "patchwell_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        }),
    );
    Ok((StatusCode::NO_CONTENT, headers))
}

/// `GET /api/v1/me`
pub(crate) async fn me(
    State(state): State<AppState>,
    Member(caller): Member,
) -> ApiResult<Json<Value>> {
    let procedure = state.store.procedure().await?;
    let acknowledged = match &procedure {
        Some(p) => state
            .store
            .procedure_acks(p.version)
            .await?
            .iter()
            .any(|(u, _)| *u == caller.username),
        None => true,
    };
    Ok(Json(json!({
        "username": caller.username,
        "role": caller.role.as_str(),
        "via": if caller.session.is_some() { "session" } else { "api-token" },
        "scopes": caller.scopes.as_deref().map(Access::join),
        "procedure": procedure.map(|p| json!({"version": p.version, "acknowledged": acknowledged})),
    })))
}

/// `PUT /api/v1/me/password`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePassword {
    current: String,
    new: String,
}

/// Changes one's own password; every session of the user ends.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    Member(caller): Member,
    body: JsonBody<ChangePassword>,
) -> ApiResult<StatusCode> {
    let Json(request) = body?;
    check_password(&request.new)?;
    let (_, hash) = state
        .store
        .user(&caller.username)
        .await?
        .ok_or_else(|| ApiError::unauthorized("no such user"))?;
    if !password_matches(request.current, hash).await {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the current password is wrong",
        ));
    }
    let change = UserChange {
        password_hash: Some(
            hash_password(request.new)
                .await
                .map_err(ApiError::internal)?,
        ),
        ..UserChange::default()
    };
    let why = Why::new(&caller.username, "change-password");
    state
        .store
        .change_user(&caller.username, &change, &why, now(&state))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/users`
pub(crate) async fn list_users(
    State(state): State<AppState>,
    _caller: Reader,
) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(
        state.store.users().await?.iter().map(user_json).collect(),
    ))
}

/// `POST /api/v1/users`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    username: String,
    /// Default: auditor, the least privilege (reads, changes nothing).
    #[serde(default = "least_privilege")]
    role: String,
    #[serde(default)]
    email: Option<String>,
    /// None: the server makes one and shows it this once.
    #[serde(default)]
    password: Option<String>,
}

/// The role a new user gets when none is given: the one that may change
/// nothing.
fn least_privilege() -> String {
    Role::Auditor.as_str().to_owned()
}

/// Creates a user.
pub(crate) async fn create_user(
    State(state): State<AppState>,
    Administrator(caller): Administrator,
    body: JsonBody<CreateUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(request) = body?;
    check_username(&request.username)?;
    let role = parse_role(&request.role)?;
    let (password, generated) = match request.password {
        Some(p) => {
            check_password(&p)?;
            (p, false)
        }
        None => (secrets::generate(18).map_err(ApiError::internal)?, true),
    };
    let user = NewUser {
        username: request.username.clone(),
        role: role.as_str().to_owned(),
        password_hash: hash_password(password.clone())
            .await
            .map_err(ApiError::internal)?,
        email: request.email,
    };
    let why = Why::new(&caller.username, "create-user");
    state.store.create_user(&user, &why, now(&state)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "username": user.username,
            "role": user.role,
            "password": generated.then_some(password),
        })),
    ))
}

/// `PATCH /api/v1/users/{name}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchUser {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
}

/// Changes a user's role, address, password or whether they are disabled.
/// The last enabled administrator cannot be demoted or disabled.
pub(crate) async fn patch_user(
    State(state): State<AppState>,
    Administrator(caller): Administrator,
    Path(name): Path<String>,
    body: JsonBody<PatchUser>,
) -> ApiResult<Json<Value>> {
    let Json(request) = body?;
    let role = request.role.as_deref().map(parse_role).transpose()?;
    let password_hash = match request.password {
        Some(p) => {
            check_password(&p)?;
            Some(hash_password(p).await.map_err(ApiError::internal)?)
        }
        None => None,
    };
    let (current, _) = state
        .store
        .user(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {name} not found")))?;
    let loses_admin = current.role == "admin"
        && current.disabled_at.is_none()
        && (role.is_some_and(|r| r != Role::Admin) || request.disabled == Some(true));
    if loses_admin {
        let admins = state
            .store
            .users()
            .await?
            .iter()
            .filter(|u| u.role == "admin" && u.disabled_at.is_none())
            .count();
        if admins <= 1 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{name} is the last enabled administrator: make another one first"),
            ));
        }
    }
    let change = UserChange {
        role: role.map(|r| r.as_str().to_owned()),
        password_hash,
        email: request.email.map(|e| Some(e).filter(|e| !e.is_empty())),
        disabled: request.disabled,
    };
    let why = Why::new(&caller.username, "change-user").because(request.reason);
    let user = state
        .store
        .change_user(&name, &change, &why, now(&state))
        .await?;
    Ok(Json(user_json(&user)))
}

/// `GET /api/v1/api-tokens`: an administrator sees every token, anyone
/// else their own.
pub(crate) async fn list_api_tokens(
    State(state): State<AppState>,
    Member(caller): Member,
) -> ApiResult<Json<Vec<Value>>> {
    let all =
        patchwell_core::people::allowed(caller.role, caller.scopes.as_deref(), Access::Administer);
    let tokens = state
        .store
        .api_tokens((!all).then_some(caller.username.as_str()))
        .await?;
    Ok(Json(
        tokens
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "name": t.name,
                    "user": t.username,
                    "scopes": t.scopes,
                    "created_at": t.created_at,
                    "revoked_at": t.revoked_at,
                })
            })
            .collect(),
    ))
}

/// `POST /api/v1/api-tokens`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiToken {
    name: String,
    /// Comma-separated; default: everything the user's role allows (and
    /// the caller's own token allows).
    #[serde(default)]
    scopes: Option<String>,
    /// Another user (administrators only).
    #[serde(default)]
    user: Option<String>,
}

/// Creates an API token for oneself, or (administrators) for another user.
/// Its scopes never exceed the user's role nor the caller's own scopes.
pub(crate) async fn create_api_token(
    State(state): State<AppState>,
    Member(caller): Member,
    body: JsonBody<CreateApiToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(request) = body?;
    if request.name.trim().is_empty() || request.name.len() > 100 {
        return Err(ApiError::bad_request("a token's name: 1 to 100 characters"));
    }
    let owner = request.user.unwrap_or_else(|| caller.username.clone());
    if owner != caller.username
        && !patchwell_core::people::allowed(
            caller.role,
            caller.scopes.as_deref(),
            Access::Administer,
        )
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only an administrator makes tokens for other users",
        ));
    }
    let (user, _) = state
        .store
        .user(&owner)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {owner} not found")))?;
    let role = parse_role(&user.role)?;
    let mut allowed: Vec<Access> = role.scopes();
    if let Some(mine) = &caller.scopes {
        allowed.retain(|a| mine.contains(a));
    }
    let scopes = match &request.scopes {
        Some(text) => Access::parse_scopes(text).map_err(ApiError::bad_request)?,
        None => allowed.clone(),
    };
    if let Some(extra) = scopes.iter().find(|s| !allowed.contains(s)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "scope {} is more than this token may have (at most {})",
                extra.as_str(),
                Access::join(&allowed)
            ),
        ));
    }
    if scopes.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no scope is left to give",
        ));
    }
    let secret = format!("pwa_{}", secrets::generate(32).map_err(ApiError::internal)?);
    let token = NewApiToken {
        id: secrets::generate(8).map_err(ApiError::internal)?,
        name: request.name.trim().to_owned(),
        secret_hash: secrets::hash(&secret),
        username: owner,
        scopes: Access::join(&scopes),
    };
    let why = Why::new(&caller.username, "create-api-token");
    state
        .store
        .create_api_token(&token, &why, now(&state))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": token.id,
            "token": secret,
            "user": token.username,
            "scopes": token.scopes,
        })),
    ))
}

/// `DELETE /api/v1/api-tokens/{id}`: one's own, or (administrators) any.
pub(crate) async fn revoke_api_token(
    State(state): State<AppState>,
    Member(caller): Member,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let admin =
        patchwell_core::people::allowed(caller.role, caller.scopes.as_deref(), Access::Administer);
    let tokens = state.store.api_tokens(None).await?;
    let token = tokens
        .iter()
        .find(|t| t.id == id && t.revoked_at.is_none())
        .ok_or_else(|| ApiError::not_found(format!("API token {id} not found")))?;
    if !admin && token.username.as_deref() != Some(caller.username.as_str()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only an administrator revokes other users' tokens",
        ));
    }
    let why = Why::new(&caller.username, "revoke-api-token");
    state.store.revoke_api_token(&id, &why, now(&state)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/procedure`: the current version, who acknowledged it, and
/// who has not yet.
pub(crate) async fn show_procedure(
    State(state): State<AppState>,
    _caller: Reader,
) -> ApiResult<Json<Value>> {
    let Some(p) = state.store.procedure().await? else {
        return Err(ApiError::not_found(
            "no patch procedure has been published: PUT /api/v1/procedure",
        ));
    };
    let acks = state.store.procedure_acks(p.version).await?;
    let users = state.store.users().await?;
    let pending: Vec<&str> = users
        .iter()
        .filter(|u| u.disabled_at.is_none() && !acks.iter().any(|(a, _)| *a == u.username))
        .map(|u| u.username.as_str())
        .collect();
    Ok(Json(json!({
        "version": p.version,
        "text": p.body,
        "published_at": p.published_at,
        "published_by": p.published_by,
        "acknowledged": acks.iter().map(|(u, at)| json!({"user": u, "at": at})).collect::<Vec<_>>(),
        "not_acknowledged": pending,
    })))
}

/// `PUT /api/v1/procedure`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishProcedure {
    text: String,
}

/// Publishes a new version; everyone acknowledges it anew.
pub(crate) async fn publish_procedure(
    State(state): State<AppState>,
    Administrator(caller): Administrator,
    body: JsonBody<PublishProcedure>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(request) = body?;
    if request.text.trim().is_empty() || request.text.len() > 1 << 20 {
        return Err(ApiError::bad_request(
            "the procedure's text: not empty, at most 1 MiB",
        ));
    }
    let why = Why::new(&caller.username, "publish-procedure");
    let p = state
        .store
        .publish_procedure(&request.text, &why, now(&state))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"version": p.version, "published_at": p.published_at})),
    ))
}

/// `POST /api/v1/procedure/acknowledge`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Acknowledge {
    version: u64,
}

/// Records that the caller read and accepts the current version.
pub(crate) async fn acknowledge_procedure(
    State(state): State<AppState>,
    Member(caller): Member,
    body: JsonBody<Acknowledge>,
) -> ApiResult<StatusCode> {
    let Json(request) = body?;
    state
        .store
        .acknowledge_procedure(&caller.username, request.version, now(&state))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    subject: Option<String>,
    after: Option<u64>,
    limit: Option<u32>,
}

/// `GET /api/v1/audit?subject=&after=&limit=`
pub(crate) async fn audit_log(
    State(state): State<AppState>,
    _caller: Reader,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<Value>>> {
    let Query(q) = query?;
    let entries = state
        .store
        .audit_entries(
            q.subject.as_deref(),
            q.after.unwrap_or(0),
            q.limit.unwrap_or(100).min(10_000),
        )
        .await?;
    let state_json = |s: &Option<String>| {
        s.as_deref()
            .map(|s| serde_json::from_str::<Value>(s).unwrap_or_else(|_| json!(s)))
    };
    Ok(Json(
        entries
            .iter()
            .map(|e| {
                json!({
                    "seq": e.seq,
                    "at": e.at,
                    "actor": e.event.actor,
                    "action": e.event.action,
                    "subject": e.event.subject,
                    "before": state_json(&e.event.before),
                    "after": state_json(&e.event.after),
                    "reason": e.event.reason,
                    "hash": e.hash,
                })
            })
            .collect(),
    ))
}

/// `GET /api/v1/audit/verify`: the chain, against the checkpoints.
pub(crate) async fn verify_audit(
    State(state): State<AppState>,
    _caller: Reader,
) -> ApiResult<Json<Value>> {
    let (_, verdict) = state
        .audit_verdict
        .refresh(verdict_key(&state).await?, now(&state), || async {
            state
                .anchor
                .verify(&state.store)
                .await
                .map_err(ApiError::internal)
        })
        .await?;
    Ok(Json((*verdict).clone()))
}

/// What a kept verdict was worked out for: the log's head and the
/// checkpoint file's length.
async fn verdict_key(state: &AppState) -> ApiResult<u64> {
    let head = state.store.audit_head().await?;
    Ok(head.wrapping_mul(1_000_003) ^ state.anchor.file_len())
}

/// The audit chain's verdict for the console: the last one while no entry
/// was added, no checkpoint written and it is younger than a minute, else
/// verified again (in the background, the last one shown meanwhile, when
/// verifying is slow). Gives when it was verified; none while the first
/// verification since the server started ([`verify_at_start`]) is still
/// going after `patience`.
pub(crate) async fn kept_verdict(
    state: &AppState,
    patience: std::time::Duration,
) -> ApiResult<Option<(jiff::Timestamp, Value)>> {
    let key = verdict_key(state).await?;
    let s = state.clone();
    let kept = state
        .audit_verdict
        .get_within(
            key,
            now(state),
            jiff::SignedDuration::from_secs(60),
            patience,
            move || async move { s.anchor.verify(&s.store).await.map_err(ApiError::internal) },
        )
        .await?;
    Ok(kept.map(|(at, verdict)| (at, (*verdict).clone())))
}

/// Verifies the audit chain once as the server starts, so that the first
/// look at the audit page need not walk a long chain itself.
pub(crate) async fn verify_at_start(state: AppState) {
    // Begun in the background and not waited for; a failure is logged there.
    if let Err(e) = kept_verdict(&state, std::time::Duration::ZERO).await {
        tracing::warn!("verifying the audit chain at start: {}", e.message());
    }
}

/// A chain's verdict as JSON; [`crate::audit_anchor::report`] adds the
/// checkpoints' (what `patchwell audit verify` prints).
pub fn verdict_json(v: &AuditVerdict) -> Value {
    match v {
        AuditVerdict::Intact { entries, head } => {
            json!({"intact": true, "entries": entries, "head": head})
        }
        AuditVerdict::Broken { seq, problem } => {
            json!({"intact": false, "first_bad_entry": seq, "problem": problem})
        }
    }
}

/// The files the first start writes.
#[derive(Debug)]
pub struct FirstAdmin {
    /// `DATA_DIR/admin-password`, when the first administrator was made now.
    pub password_file: Option<PathBuf>,
    /// `DATA_DIR/admin-token`, when the first API token was made now.
    pub token_file: Option<PathBuf>,
}

/// At first start: creates the user `admin` (role admin) with a random
/// password written to `DATA_DIR/admin-password`, gives it any token made
/// before users existed, and, when there is no API token at all, makes one
/// for it in `DATA_DIR/admin-token` (both mode 0600).
pub async fn ensure_first_admin(
    store: &Store,
    data_dir: &FsPath,
    now: Timestamp,
) -> anyhow::Result<FirstAdmin> {
    let mut made = FirstAdmin {
        password_file: None,
        token_file: None,
    };
    let why = |action: &str| Why::new("system", action).because(Some("first start".into()));
    if store.user_count().await? == 0 {
        let password = secrets::generate(18)?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let path = data_dir.join("admin-password");
        crate::write_private(&path, &format!("{password}\n"))?;
        let user = NewUser {
            username: "admin".into(),
            role: "admin".into(),
            password_hash: hash_password(password).await?,
            email: None,
        };
        store.create_user(&user, &why("create-user"), now).await?;
        made.password_file = Some(path);
    }
    let first = store
        .users()
        .await?
        .into_iter()
        .find(|u| u.role == "admin" && u.disabled_at.is_none())
        .map(|u| u.username);
    if let Some(admin) = &first {
        store.adopt_tokens(admin).await?;
    }
    if store.api_token_count().await? == 0 {
        let admin = first.context("no enabled administrator to give the first API token")?;
        let secret = format!("pwa_{}", secrets::generate(32)?);
        let path = data_dir.join("admin-token");
        crate::write_private(&path, &format!("{secret}\n"))?;
        let token = NewApiToken {
            id: secrets::generate(8)?,
            name: "first administrator".into(),
            secret_hash: secrets::hash(&secret),
            username: admin,
            scopes: Access::join(&Role::Admin.scopes()),
        };
        store
            .create_api_token(&token, &why("create-api-token"), now)
            .await?;
        made.token_file = Some(path);
    }
    Ok(made)
}

/// Every audit entry of a subject (`hosts/ID`; subjects that begin with
/// it too), oldest first, read in pages: the newest are never cut off,
/// however long its history.
pub(crate) async fn subject_entries(
    state: &AppState,
    subject: &str,
) -> ApiResult<Vec<store::AuditEntry>> {
    let mut all: Vec<store::AuditEntry> = Vec::new();
    loop {
        let after = all.last().map_or(0, |e| e.seq);
        let page = state
            .store
            .audit_entries(Some(subject), after, 10_000)
            .await?;
        let full = page.len() == 10_000;
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

/// When `action` was last recorded on exactly `subject`, by the audit log:
/// what says when a schedule last mailed or a policy last deployed.
pub(crate) async fn last_recorded(
    state: &AppState,
    subject: &str,
    action: &str,
) -> ApiResult<Option<Timestamp>> {
    Ok(subject_entries(state, subject)
        .await?
        .iter()
        .rev()
        .find(|e| e.event.subject == subject && e.event.action == action)
        .map(|e| e.at))
}
