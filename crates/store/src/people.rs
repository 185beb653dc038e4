//! People: users with a role, their sessions and API tokens, and the
//! organisation's patch procedure with each user's acknowledgement.
//!
//! Roles and scopes are stored as the server names them; the server parses
//! them and decides what they allow. Password hashes arrive hashed (argon2,
//! by the server): the store never sees a password.

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::{append, AuditEvent, Why};
use crate::sql::{opt_ts, ts, Store};
use crate::{Error, Result};

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The sign-in name.
    pub username: String,
    /// `admin`, `approver`, `operator` or `auditor`.
    pub role: String,
    /// The argon2 hash of the password (PHC string).
    pub password_hash: String,
    /// Where to write to them.
    pub email: Option<String>,
}

/// A stored user (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The sign-in name.
    pub username: String,
    /// The role.
    pub role: String,
    /// Their address.
    pub email: Option<String>,
    /// When the user was created.
    pub created_at: Timestamp,
    /// When the user was disabled, if they were.
    pub disabled_at: Option<Timestamp>,
}

/// A change to a user; fields left `None` stay.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// A new role.
    pub role: Option<String>,
    /// A new password hash.
    pub password_hash: Option<String>,
    /// A new address (`Some(None)` removes it).
    pub email: Option<Option<String>>,
    /// Disable (true) or enable (false).
    pub disabled: Option<bool>,
}

/// An API token to create. Only a hash of its secret is stored.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// Public identifier.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
    /// The user it acts as.
    pub username: String,
    /// What it may do, comma-separated; never more than the user's role.
    pub scopes: String,
}

/// An API token for the command line and scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    /// Public identifier.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// The user it acts as (`None` only for a token made before users
    /// existed and not yet adopted by the first administrator).
    pub username: Option<String>,
    /// What it may do, comma-separated.
    pub scopes: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// A version of the organisation's patch procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcedureVersion {
    /// 1, 2, ...
    pub version: u64,
    /// The text.
    pub body: String,
    /// When it was published.
    pub published_at: Timestamp,
    /// Who published it.
    pub published_by: String,
}

/// API tokens: who may use the API without a session.
pub trait ApiTokenStore {
    /// Stores a token (its secret's hash only) and records it.
    async fn create_api_token(&self, token: &NewApiToken, why: &Why, now: Timestamp) -> Result<()>;
    /// The token whose secret hashes to `secret_hash`, if it is not revoked.
    async fn api_token(&self, secret_hash: &[u8]) -> Result<Option<ApiTokenRecord>>;
    /// Every token, or one user's, newest first.
    async fn api_tokens(&self, username: Option<&str>) -> Result<Vec<ApiTokenRecord>>;
    /// Revokes a token; false when there is no such token or it was revoked.
    async fn revoke_api_token(&self, id: &str, why: &Why, now: Timestamp) -> Result<bool>;
    /// How many tokens exist, revoked or not.
    async fn api_token_count(&self) -> Result<u64>;
}

/// Users, sessions and the procedure.
pub trait PeopleStore {
    /// Creates a user; `Conflict` when the name is taken.
    async fn create_user(&self, user: &NewUser, why: &Why, now: Timestamp) -> Result<()>;
    /// Every user, by name.
    async fn users(&self) -> Result<Vec<UserRecord>>;
    /// One user and their password hash.
    async fn user(&self, username: &str) -> Result<Option<(UserRecord, String)>>;
    /// How many users exist.
    async fn user_count(&self) -> Result<u64>;
    /// Changes a user; disabling one also ends their sessions. `NotFound`
    /// when there is no such user.
    async fn change_user(
        &self,
        username: &str,
        change: &UserChange,
        why: &Why,
        now: Timestamp,
    ) -> Result<UserRecord>;
    /// Gives the tokens that belong to nobody (made before users existed)
    /// to `username`. Returns how many.
    async fn adopt_tokens(&self, username: &str) -> Result<u64>;
    /// Stores a session.
    async fn create_session(
        &self,
        secret_hash: &[u8],
        username: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()>;
    /// The user of a live session: not expired, not ended, user enabled.
    async fn session_user(&self, secret_hash: &[u8], now: Timestamp) -> Result<Option<String>>;
    /// Ends a session; false when it was not live.
    async fn end_session(&self, secret_hash: &[u8], now: Timestamp) -> Result<bool>;
    /// Publishes a new version of the procedure; returns it.
    async fn publish_procedure(
        &self,
        body: &str,
        why: &Why,
        now: Timestamp,
    ) -> Result<ProcedureVersion>;
    /// The current version, if any was published.
    async fn procedure(&self) -> Result<Option<ProcedureVersion>>;
    /// Records that a user read and accepted a version. Refused (`Conflict`)
    /// unless it is the current one; acknowledging twice is fine.
    async fn acknowledge_procedure(
        &self,
        username: &str,
        version: u64,
        now: Timestamp,
    ) -> Result<()>;
    /// Who acknowledged a version, and when.
    async fn procedure_acks(&self, version: u64) -> Result<Vec<(String, Timestamp)>>;
}

const USER_COLUMNS: &str = "username, role, email, created_at, disabled_at, password_hash";

fn user_from_row(r: &AnyRow) -> Result<(UserRecord, String)> {
    Ok((
        UserRecord {
            username: r.try_get(0)?,
            role: r.try_get(1)?,
            email: r.try_get(2)?,
            created_at: ts(r.try_get(3)?)?,
            disabled_at: opt_ts(r.try_get(4)?)?,
        },
        r.try_get(5)?,
    ))
}

/// A user as the audit log shows it: never the password hash.
fn user_json(u: &UserRecord) -> serde_json::Value {
    serde_json::json!({
        "username": u.username,
        "role": u.role,
        "email": u.email,
        "disabled": u.disabled_at.is_some(),
    })
}

const TOKEN_COLUMNS: &str = "id, name, username, scopes, created_at, revoked_at";

fn token_from_row(r: &AnyRow) -> Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        username: r.try_get(2)?,
        scopes: r.try_get(3)?,
        created_at: ts(r.try_get(4)?)?,
        revoked_at: opt_ts(r.try_get(5)?)?,
    })
}

fn procedure_from_row(r: &AnyRow) -> Result<ProcedureVersion> {
    let v: i64 = r.try_get(0)?;
    Ok(ProcedureVersion {
        version: u64::try_from(v).map_err(|_| Error::Corrupt(format!("procedure version {v}")))?,
        body: r.try_get(1)?,
        published_at: ts(r.try_get(2)?)?,
        published_by: r.try_get(3)?,
    })
}

impl ApiTokenStore for Store {
    async fn create_api_token(&self, token: &NewApiToken, why: &Why, now: Timestamp) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, secret_hash, name, created_at, username, scopes) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(token.secret_hash.clone())
        .bind(&token.name)
        .bind(now.as_second())
        .bind(&token.username)
        .bind(&token.scopes)
        .execute(&mut *tx)
        .await?;
        let after = serde_json::json!({
            "id": token.id, "name": token.name, "user": token.username, "scopes": token.scopes,
        });
        let event = AuditEvent::of(
            why,
            format!("api-tokens/{}", token.id),
            None,
            Some(after.to_string()),
        );
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn api_token(&self, secret_hash: &[u8]) -> Result<Option<ApiTokenRecord>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = $1 AND revoked_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(secret_hash.to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn api_tokens(&self, username: Option<&str>) -> Result<Vec<ApiTokenRecord>> {
        let rows = match username {
            Some(user) => {
                let sql = format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE username = $1 ORDER BY created_at DESC, id"
                );
                sqlx::query(&sql).bind(user).fetch_all(&self.pool).await?
            }
            None => {
                let sql =
                    format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at DESC, id");
                sqlx::query(&sql).fetch_all(&self.pool).await?
            }
        };
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_api_token(&self, id: &str, why: &Why, now: Timestamp) -> Result<bool> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now.as_second())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let event = AuditEvent::of(
            why,
            format!("api-tokens/{id}"),
            Some(r#"{"revoked":false}"#.to_owned()),
            Some(r#"{"revoked":true}"#.to_owned()),
        );
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn api_token_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl PeopleStore for Store {
    async fn create_user(&self, user: &NewUser, why: &Why, now: Timestamp) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM users WHERE username = $1")
            .bind(&user.username)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(Error::Conflict(format!(
                "user {} already exists",
                user.username
            )));
        }
        sqlx::query(
            "INSERT INTO users (username, role, password_hash, email, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user.username)
        .bind(&user.role)
        .bind(&user.password_hash)
        .bind(user.email.clone())
        .bind(now.as_second())
        .execute(&mut *tx)
        .await?;
        let record = UserRecord {
            username: user.username.clone(),
            role: user.role.clone(),
            email: user.email.clone(),
            created_at: now,
            disabled_at: None,
        };
        let event = AuditEvent::of(
            why,
            format!("users/{}", user.username),
            None,
            Some(user_json(&record).to_string()),
        );
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn users(&self) -> Result<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(user_from_row(r)?.0)).collect()
    }

    async fn user(&self, username: &str) -> Result<Option<(UserRecord, String)>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn change_user(
        &self,
        username: &str,
        change: &UserChange,
        why: &Why,
        now: Timestamp,
    ) -> Result<UserRecord> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row = self
            .locked_row(&mut tx, &sql, username)
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {username}")))?;
        let (before, hash) = user_from_row(&row)?;
        let mut after = before.clone();
        if let Some(role) = &change.role {
            after.role = role.clone();
        }
        if let Some(email) = &change.email {
            after.email = email.clone();
        }
        match change.disabled {
            Some(true) if after.disabled_at.is_none() => after.disabled_at = Some(now),
            Some(false) => after.disabled_at = None,
            _ => {}
        }
        let hash = change.password_hash.clone().unwrap_or(hash);
        sqlx::query(
            "UPDATE users SET role = $1, email = $2, disabled_at = $3, password_hash = $4 WHERE username = $5",
        )
        .bind(&after.role)
        .bind(after.email.clone())
        .bind(after.disabled_at.map(|t| t.as_second()))
        .bind(&hash)
        .bind(username)
        .execute(&mut *tx)
        .await?;
        if after.disabled_at.is_some() || change.password_hash.is_some() {
            // A disabled user, or one whose password changed, signs in again.
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE username = $2 AND revoked_at IS NULL",
            )
            .bind(now.as_second())
            .bind(username)
            .execute(&mut *tx)
            .await?;
        }
        let mut after_json = user_json(&after);
        if change.password_hash.is_some() {
            // The log says that the password changed, never what it is.
            after_json["password_changed"] = true.into();
        }
        let event = AuditEvent::of(
            why,
            format!("users/{username}"),
            Some(user_json(&before).to_string()),
            Some(after_json.to_string()),
        );
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn adopt_tokens(&self, username: &str) -> Result<u64> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("UPDATE api_tokens SET username = $1 WHERE username IS NULL")
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_session(
        &self,
        secret_hash: &[u8],
        username: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO sessions (secret_hash, username, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(secret_hash.to_vec())
        .bind(username)
        .bind(now.as_second())
        .bind(expires_at.as_second())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session_user(&self, secret_hash: &[u8], now: Timestamp) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT s.username FROM sessions s JOIN users u ON u.username = s.username \
             WHERE s.secret_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             AND u.disabled_at IS NULL",
        )
        .bind(secret_hash.to_vec())
        .bind(now.as_second())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get(0).map_err(Error::from)).transpose()
    }

    async fn end_session(&self, secret_hash: &[u8], now: Timestamp) -> Result<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE secret_hash = $2 AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now.as_second())
        .bind(secret_hash.to_vec())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn publish_procedure(
        &self,
        body: &str,
        why: &Why,
        now: Timestamp,
    ) -> Result<ProcedureVersion> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        // The audit head's row lock (taken below) would serialise too late:
        // two publishers must not pick the same number, so the primary key
        // refuses the second, which then fails whole.
        let last: Option<i64> = sqlx::query("SELECT MAX(version) FROM procedure_versions")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let previous = match last {
            Some(v) => {
                let row = sqlx::query(
                    "SELECT version, body, published_at, published_by FROM procedure_versions WHERE version = $1",
                )
                .bind(v)
                .fetch_one(&mut *tx)
                .await?;
                Some(procedure_from_row(&row)?)
            }
            None => None,
        };
        let version = last.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO procedure_versions (version, body, published_at, published_by) VALUES ($1, $2, $3, $4)",
        )
        .bind(version)
        .bind(body)
        .bind(now.as_second())
        .bind(&why.actor)
        .execute(&mut *tx)
        .await?;
        let state =
            |v: i64, body: &str| serde_json::json!({"version": v, "text": body}).to_string();
        let event = AuditEvent::of(
            why,
            "procedure".to_owned(),
            previous.map(|p| state(p.version as i64, &p.body)),
            Some(state(version, body)),
        );
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(ProcedureVersion {
            version: version as u64,
            body: body.to_owned(),
            published_at: now,
            published_by: why.actor.clone(),
        })
    }

    async fn procedure(&self) -> Result<Option<ProcedureVersion>> {
        let row = sqlx::query(
            "SELECT version, body, published_at, published_by FROM procedure_versions \
             ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(procedure_from_row).transpose()
    }

    async fn acknowledge_procedure(
        &self,
        username: &str,
        version: u64,
        now: Timestamp,
    ) -> Result<()> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let current: Option<i64> = sqlx::query("SELECT MAX(version) FROM procedure_versions")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        match current {
            None => return Err(Error::Conflict("no procedure has been published".into())),
            Some(c) if c as u64 != version => {
                return Err(Error::Conflict(format!(
                    "version {version} is not the current procedure (version {c} is)"
                )))
            }
            Some(_) => {}
        }
        let done = sqlx::query(
            "INSERT INTO procedure_acks (username, version, acknowledged_at) VALUES ($1, $2, $3) \
             ON CONFLICT (username, version) DO NOTHING",
        )
        .bind(username)
        .bind(version as i64)
        .bind(now.as_second())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            let event = AuditEvent {
                actor: username.to_owned(),
                action: "acknowledge-procedure".to_owned(),
                subject: "procedure".to_owned(),
                before: None,
                after: Some(serde_json::json!({"version": version}).to_string()),
                reason: None,
            };
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn procedure_acks(&self, version: u64) -> Result<Vec<(String, Timestamp)>> {
        let rows = sqlx::query(
            "SELECT username, acknowledged_at FROM procedure_acks WHERE version = $1 ORDER BY username",
        )
        .bind(version as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, ts(r.try_get(1)?)?)))
            .collect()
    }
}
