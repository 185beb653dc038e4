//! Telling the chain of communication: every contact whose audience a
//! notice is for gets it by webhook (JSON) and by email (SMTP through the
//! relay given with `--smtp-url`).
//!
//! A key design decision made here is that notices are sent after the
//! change they report is stored, on tasks of their own: a relay or a
//! webhook that is down or slow delays nobody and loses nothing stored; a
//! failure is logged with the contact's name.

use std::time::Duration;

use lettre::message::{header::ContentType, Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{json, Value};
use store::PlanStore;

use crate::plan_docs::{ContactDoc, Doc};
use crate::AppState;

/// The audiences a contact may have.
pub(crate) const AUDIENCES: [&str; 3] = ["patch-team", "management", "end-users"];

/// How the server sends mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    /// The relay: `smtp://host:port` (plain, or STARTTLS when the relay
    /// offers it with `?tls=opportunistic`; `?tls=required` insists),
    /// `smtps://host:port` (TLS), credentials as `smtp://user:pass@host`.
    pub url: String,
    /// The sender address.
    pub from: String,
}

impl Smtp {
    /// Checks the relay URL and sender address; the error names which is
    /// wrong and why.
    pub fn check(&self) -> Result<(), String> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.url)
            .map_err(|e| format!("--smtp-url {}: {e}", self.url))?;
        self.from
            .parse::<Mailbox>()
            .map_err(|e| format!("--smtp-from {}: {e}", self.from))?;
        Ok(())
    }
}

/// Something to tell.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    /// Its kind (`rollout-created`, `rollout-halted`, ...).
    pub(crate) event: &'static str,
    /// The mail's subject.
    pub(crate) subject: String,
    /// The mail's text, for people.
    pub(crate) text: String,
    /// The facts, for machines (merged into the webhook's JSON).
    pub(crate) data: Value,
    /// Who is told: contacts of these audiences.
    pub(crate) audiences: &'static [&'static str],
}

/// Sends a notice to every contact of its audiences; never fails.
pub(crate) async fn send(state: &AppState, notice: Notice) {
    let contacts = match state.store.plan_objects(ContactDoc::KIND).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("reading contacts to notify: {e}");
            return;
        }
    };
    let mut body = json!({
        "event": notice.event,
        "subject": notice.subject,
        "text": notice.text,
    });
    if let (Some(out), Value::Object(data)) = (body.as_object_mut(), &notice.data) {
        for (k, v) in data {
            out.entry(k.clone()).or_insert(v.clone());
        }
    }
    for c in contacts {
        let Ok(doc) = serde_json::from_str::<ContactDoc>(&c.body) else {
            tracing::warn!(contact = %c.name, "Stored contact is damaged; not told.");
            continue;
        };
        if !notice.audiences.contains(&doc.audience.as_str()) {
            continue;
        }
        if let Some(url) = doc.webhook.clone() {
            tokio::spawn(webhook(c.name.clone(), url, body.clone()));
        }
        if let Some(to) = doc.email.clone() {
            match &state.config.smtp {
                Some(smtp) => {
                    tokio::spawn(mail(
                        c.name.clone(),
                        smtp.clone(),
                        to,
                        notice.subject.clone(),
                        notice.text.clone(),
                    ));
                }
                None => tracing::warn!(
                    contact = %c.name,
                    "Contact has an email address but the server has no --smtp-url; not mailed."
                ),
            }
        }
    }
}

async fn webhook(name: String, url: String, body: Value) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build();
    let sent = match client {
        Ok(client) => client.post(&url).json(&body).send().await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(r) if r.status().is_success() => tracing::info!(contact = %name, "Webhook told."),
        Ok(r) => tracing::warn!(contact = %name, status = %r.status(), "Webhook refused."),
        Err(e) => tracing::warn!(contact = %name, "Webhook failed: {e}"),
    }
}

async fn mail(name: String, smtp: Smtp, to: String, subject: String, text: String) {
    match deliver(&smtp, &to, &subject, text).await {
        Ok(()) => tracing::info!(contact = %name, "Mail sent."),
        Err(e) => tracing::warn!(contact = %name, "Mail to {to} not sent: {e}"),
    }
}

/// A file attached to a mail: its name, content type and bytes.
pub(crate) struct Attached {
    pub(crate) name: String,
    pub(crate) content_type: &'static str,
    pub(crate) bytes: Vec<u8>,
}

/// Sends one plain-text mail through the relay.
pub(crate) async fn deliver(
    smtp: &Smtp,
    to: &str,
    subject: &str,
    text: String,
) -> Result<(), String> {
    deliver_with(smtp, to, subject, text, &[]).await
}

/// Sends one mail through the relay: its text, and files attached.
pub(crate) async fn deliver_with(
    smtp: &Smtp,
    to: &str,
    subject: &str,
    text: String,
    files: &[Attached],
) -> Result<(), String> {
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("sender {}: {e}", smtp.from))?;
    let to: Mailbox = to.parse().map_err(|e| format!("address {to}: {e}"))?;
    let builder = Message::builder().from(from).to(to).subject(subject);
    let message = if files.is_empty() {
        builder.header(ContentType::TEXT_PLAIN).body(text)
    } else {
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(text));
        for f in files {
            let kind = ContentType::parse(f.content_type)
                .map_err(|e| format!("content type {}: {e}", f.content_type))?;
            parts = parts.singlepart(Attachment::new(f.name.clone()).body(f.bytes.clone(), kind));
        }
        builder.multipart(parts)
    }
    .map_err(|e| format!("building the mail: {e}"))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp.url)
        .map_err(|e| format!("relay {}: {e}", smtp.url))?
        .timeout(Some(Duration::from_secs(20)))
        .build();
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("relay {}: {e}", smtp.url))
}
