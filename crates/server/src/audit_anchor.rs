//! Anchoring the audit log: signed checkpoints of its head, written where
//! whoever owns the database cannot rewrite them, and verification of the
//! chain against them.
//!
//! The hash chain alone (`store::audit`) proves nothing to someone who can
//! write the database: they can rewrite an entry and work out every hash
//! after it again, or cut the tail and move the head back. A checkpoint
//! says "entry S had hash H at time T", signed by the server. It is one
//! line of JSON appended to a file (opened `O_APPEND`; by default
//! `DATA_DIR/audit-checkpoints.jsonl`, better on another volume or host),
//! and optionally sent to syslog and POSTed to a webhook. Verification
//! then requires that the chain holds every checkpointed (S, H) and does
//! not end before the last checkpoint, and that every checkpoint's
//! signature verifies.
//!
//! A key design decision made here is that checkpoints are signed with a
//! key of their own (`DATA_DIR/audit-checkpoint.key`), not with the job
//! key. A job key's signature makes every agent run commands as root;
//! keeping it for jobs alone means that nothing about checkpoints can ever
//! produce bytes an agent would take for a job, and each key can be
//! replaced without the other (a new job key means enrolling every host
//! again; a new checkpoint key only begins a new series of checkpoints).
//! The signed text also begins with its own purpose
//! ([`DOMAIN`]), which no job (JSON) does.
//!
//! Before writing a checkpoint, the server walks the chain from the last
//! one it wrote to the head, so a checkpoint only ever vouches for a log
//! that still extends the one checkpointed before. When it does not,
//! nothing is written and the problem is logged as an error: a checkpoint
//! must never bless a rewritten log.
//!
//! What this proves, and what not: every entry up to the last checkpoint
//! is as it was when checkpointed. Entries written since the last
//! checkpoint are protected by the chain alone, so checkpoints are written
//! often (every [`AnchorOptions::every`] or [`AnchorOptions::every_entries`]
//! entries, whichever comes first, at start and at shutdown). And whoever
//! can rewrite the checkpoints too (the same user on the same disk) can
//! defeat them: that is why they belong elsewhere.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::{AuditStore, AuditVerdict, ChainWalk, Store};

use crate::jobkey;

/// The file in the data directory that holds the checkpoint key's seed.
pub const CHECKPOINT_KEY_FILE: &str = "audit-checkpoint.key";

/// The checkpoint file's name in the data directory, unless another path
/// is given.
pub const CHECKPOINT_FILE: &str = "audit-checkpoints.jsonl";

/// What every signed text begins with.
pub const DOMAIN: &str = "patchwell audit checkpoint v1";

/// The tag of checkpoints sent to syslog.
const SYSLOG_TAG: &str = "patchwell-audit";

/// How many problems a verification lists one by one (it counts them all).
const MAX_PROBLEMS_LISTED: usize = 20;

const KEY_PREFIX: &str = "ed25519:";

/// Where checkpoints go, and how often.
#[derive(Debug, Clone)]
pub struct AnchorOptions {
    /// The append-only checkpoint file; `None`:
    /// `DATA_DIR/audit-checkpoints.jsonl`. In production, a path on
    /// another volume or host (or a file made append-only with
    /// `chattr +a`), so that whoever owns the database cannot rewrite it.
    pub file: Option<PathBuf>,
    /// A syslog socket (`/dev/log`) each checkpoint is sent to as well,
    /// with facility auth and the tag `patchwell-audit`.
    pub syslog: Option<PathBuf>,
    /// A URL each checkpoint is POSTed to as well, as JSON.
    pub webhook: Option<String>,
    /// A checkpoint at least this often while entries are added.
    pub every: Duration,
    /// And at least after this many new entries.
    pub every_entries: u64,
}

impl Default for AnchorOptions {
    fn default() -> Self {
        AnchorOptions {
            file: None,
            syslog: None,
            webhook: None,
            every: Duration::from_secs(5 * 60),
            every_entries: 1000,
        }
    }
}

/// One checkpoint, as written (one line of JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The head's sequence number: how many entries existed.
    pub seq: u64,
    /// The head entry's hash.
    pub head: String,
    /// When the checkpoint was made (whole seconds).
    pub at: Timestamp,
    /// The public key that signed it (`ed25519:<base64>`), to tell keys
    /// apart; what verifies it is the key the verifier trusts, never this.
    pub key: String,
    /// The signature (`ed25519:<base64>`) over [`Checkpoint::signed_text`].
    pub signature: String,
}

impl Checkpoint {
    /// The text a checkpoint's signature covers.
    pub fn signed_text(seq: u64, head: &str, at: Timestamp) -> String {
        format!("{DOMAIN}\n{seq}\n{head}\n{}\n", at.as_second())
    }

    /// Whether `key` signed it.
    fn verifies(&self, key: &VerifyingKey) -> bool {
        let Some(bytes) = self
            .signature
            .strip_prefix(KEY_PREFIX)
            .and_then(|b| BASE64.decode(b).ok())
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        let text = Checkpoint::signed_text(self.seq, &self.head, self.at);
        key.verify(text.as_bytes(), &Signature::from_bytes(&bytes))
            .is_ok()
    }

    /// As one line, without its newline.
    fn line(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A checkpoint key's public half in its text form.
pub fn key_text(key: &VerifyingKey) -> String {
    format!("{KEY_PREFIX}{}", BASE64.encode(key.as_bytes()))
}

/// Reads a checkpoint key's public half in its text form.
pub fn parse_key(text: &str) -> Result<VerifyingKey, String> {
    let b64 = text
        .trim()
        .strip_prefix(KEY_PREFIX)
        .ok_or_else(|| format!("checkpoint key {text:?}: it starts with {KEY_PREFIX}"))?;
    let bytes: [u8; 32] = BASE64
        .decode(b64)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("checkpoint key {text:?}: base64 of 32 bytes after {KEY_PREFIX}"))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| format!("checkpoint key {text:?}: not an ed25519 public key: {e}"))
}

/// The key checkpoints are signed with.
pub struct CheckpointKey {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("public", &self.public_text())
            .finish_non_exhaustive()
    }
}

impl CheckpointKey {
    /// A key that lives as long as the process (tests).
    pub fn ephemeral() -> anyhow::Result<Self> {
        Ok(CheckpointKey {
            key: SigningKey::from_bytes(&jobkey::random_seed()?),
        })
    }

    /// The key in `dir`, made at first start (mode 0600).
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let seed = jobkey::load_or_create_seed(
            &dir.join(CHECKPOINT_KEY_FILE),
            "checkpoint key",
            "Audit checkpoint key",
        )?;
        Ok(CheckpointKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The public half of the key in `dir`, if there is one.
    pub fn public_in(dir: &Path) -> anyhow::Result<Option<VerifyingKey>> {
        let seed = jobkey::read_seed(&dir.join(CHECKPOINT_KEY_FILE), "checkpoint key")?;
        Ok(seed.map(|s| SigningKey::from_bytes(&s).verifying_key()))
    }

    /// The public half.
    pub fn public(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public half in its text form.
    pub fn public_text(&self) -> String {
        key_text(&self.public())
    }

    /// A signed checkpoint of entry `seq` with hash `head`, at `at`.
    pub fn sign(&self, seq: u64, head: &str, at: Timestamp) -> Checkpoint {
        // Checkpoints speak in whole seconds, as the signed text does.
        let at = Timestamp::from_second(at.as_second()).unwrap_or(at);
        let signature = self
            .key
            .sign(Checkpoint::signed_text(seq, head, at).as_bytes());
        Checkpoint {
            seq,
            head: head.to_owned(),
            at,
            key: self.public_text(),
            signature: format!("{KEY_PREFIX}{}", BASE64.encode(signature.to_bytes())),
        }
    }
}

/// The checkpoints read from a text, and what was wrong with its lines.
#[derive(Debug, Clone, Default)]
pub struct CheckpointLines {
    /// Each checkpoint whose signature verifies, with its line number.
    pub good: Vec<(usize, Checkpoint)>,
    /// What was wrong with the others.
    pub problems: Vec<String>,
}

/// Reads checkpoint lines (`label` names their source in problems). A
/// line may carry text before the JSON (a syslog prefix); blank lines are
/// skipped. A line that is no checkpoint, or whose signature `key` does not
/// verify, is a problem: nothing writes such lines but someone altering or
/// forging them.
pub fn read_checkpoints(label: &str, text: &str, key: &VerifyingKey) -> CheckpointLines {
    let ours = key_text(key);
    let mut read = CheckpointLines::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let json = line.find('{').map_or(line, |start| &line[start..]);
        let checkpoint: Checkpoint = match serde_json::from_str(json) {
            Ok(c) => c,
            Err(e) => {
                read.problems
                    .push(format!("{label} line {n} is not a checkpoint: {e}"));
                continue;
            }
        };
        if checkpoint.key != ours {
            read.problems.push(format!(
                "{label} line {n} names another key ({}) than the checkpoint key trusted ({ours})",
                checkpoint.key
            ));
        } else if !checkpoint.verifies(key) {
            read.problems.push(format!(
                "{label} line {n} (entry {}, {}): its signature does not verify: the line was \
                 altered or forged",
                checkpoint.seq, checkpoint.at
            ));
        } else {
            read.good.push((n, checkpoint));
        }
    }
    read
}

/// What checking the chain against checkpoints found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchoring {
    /// Where the checkpoints were read from (none: no checkpoints).
    pub source: Option<String>,
    /// The trusted public key.
    pub key: String,
    /// How many checkpoints verified and were found in the chain.
    pub verified: u64,
    /// The last of those (by sequence number).
    pub last: Option<Checkpoint>,
    /// Every problem, with the entry it concerns when there is one.
    pub problems: Vec<(Option<u64>, String)>,
}

/// Holds the chain's walk against the checkpoints read: each must be in
/// the chain with its hash, and the chain must not end before any. A
/// checkpoint beyond the place where the chain is broken is not judged
/// (the chain's own problem is reported).
pub fn judge(
    walk: &ChainWalk,
    read: &CheckpointLines,
    source: Option<String>,
    key: String,
) -> Anchoring {
    let mut anchoring = Anchoring {
        source,
        key,
        verified: 0,
        last: None,
        problems: read.problems.iter().map(|p| (None, p.clone())).collect(),
    };
    let (entries, broken_at) = match &walk.verdict {
        AuditVerdict::Intact { entries, .. } => (*entries, None),
        AuditVerdict::Broken { seq, .. } => (seq.saturating_sub(1), Some(*seq)),
    };
    for (_, c) in &read.good {
        if broken_at.is_some_and(|b| c.seq >= b) {
            continue;
        }
        if c.seq > entries {
            anchoring.problems.push((
                Some(entries + 1),
                format!(
                    "the log ends at entry {entries}, but the checkpoint of {} says {} entries \
                     existed: entries were removed",
                    c.at, c.seq
                ),
            ));
            continue;
        }
        match walk.hashes.get(&c.seq) {
            Some(h) if *h == c.head => {
                anchoring.verified += 1;
                if anchoring.last.as_ref().is_none_or(|l| c.seq >= l.seq) {
                    anchoring.last = Some(c.clone());
                }
            }
            _ => anchoring.problems.push((
                Some(c.seq),
                format!(
                    "entry {}'s hash differs from the checkpoint of {}: the log was rewritten \
                     at or before entry {}",
                    c.seq, c.at, c.seq
                ),
            )),
        }
    }
    // A file that holds no checkpoint of a log with entries anchors
    // nothing: a server writes one at start and every few minutes, so an
    // empty or missing file means its checkpoints were removed.
    if entries > 0 && anchoring.verified == 0 && anchoring.problems.is_empty() {
        if let Some(source) = &anchoring.source {
            anchoring.problems.push((
                None,
                format!(
                    "the log holds {entries} entries, but no checkpoint in {source} verifies \
                     any of them: the log is not anchored (if checkpoints were written, they \
                     were removed)"
                ),
            ));
        }
    }
    anchoring
}

/// The verdict as JSON: the chain's (as `verdict_json` gives it) with the
/// checkpoints', and `intact` only when both are.
pub fn report(chain: &AuditVerdict, anchoring: &Anchoring) -> Value {
    let mut v = crate::people_api::verdict_json(chain);
    let listed: Vec<&str> = anchoring
        .problems
        .iter()
        .take(MAX_PROBLEMS_LISTED)
        .map(|(_, p)| p.as_str())
        .collect();
    v["checkpoints"] = json!({
        "source": anchoring.source,
        "key": anchoring.key,
        "verified": anchoring.verified,
        "last": anchoring.last.as_ref().map(|c| json!({"seq": c.seq, "head": c.head, "at": c.at})),
        "problems": listed,
        "problems_total": anchoring.problems.len(),
    });
    if v["intact"] == true {
        if let Some((seq, problem)) = anchoring.problems.first() {
            v["intact"] = json!(false);
            v["first_bad_entry"] = json!(seq);
            v["problem"] = json!(problem);
        }
    }
    v
}

/// Verifies the chain in `store` against the checkpoints in `text` (from
/// `source`), trusting `key`; `remembered` is a checkpoint known good
/// otherwise (the last this server wrote), which `text` must hold too.
pub async fn verify(
    store: &Store,
    source: Option<(String, String)>,
    key: &VerifyingKey,
    remembered: Option<&Checkpoint>,
) -> anyhow::Result<Value> {
    let mut read = match &source {
        Some((label, text)) => read_checkpoints(label, text, key),
        None => CheckpointLines::default(),
    };
    if let Some(c) = remembered {
        if !read.good.iter().any(|(_, g)| g == c) {
            let place = source
                .as_ref()
                .map_or("no checkpoint file", |(l, _)| l.as_str());
            read.problems.push(format!(
                "the checkpoint of entry {} this server wrote at {} is not in {place}: the \
                 checkpoints were cut or replaced",
                c.seq, c.at
            ));
            read.good.push((0, c.clone()));
        }
    }
    let keep: BTreeSet<u64> = read.good.iter().map(|(_, c)| c.seq).collect();
    let walk = store.walk_audit(None, &keep).await?;
    let anchoring = judge(&walk, &read, source.map(|(label, _)| label), key_text(key));
    Ok(report(&walk.verdict, &anchoring))
}

/// The last checkpoint `key` signed among the last lines of `file`: where
/// the next walk starts. Only the file's tail is read.
fn last_in(file: &Path, key: &VerifyingKey) -> anyhow::Result<Option<Checkpoint>> {
    let mut f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    // The first line may be cut; it is then no checkpoint, and skipped.
    let tail = String::from_utf8_lossy(&bytes);
    let read = read_checkpoints(&file.display().to_string(), &tail, key);
    Ok(read.good.into_iter().map(|(_, c)| c).max_by_key(|c| c.seq))
}

/// What the writer remembers.
#[derive(Debug, Default)]
struct Written {
    /// The last checkpoint written (or found in the file at start).
    last: Option<Checkpoint>,
    /// When this process last wrote one.
    at: Option<Timestamp>,
    /// The problem that stops checkpoints, once logged.
    refused: Option<String>,
}

/// The server's checkpoint writer: its key, where checkpoints go, and the
/// last one written.
#[derive(Debug)]
pub struct Anchor {
    key: CheckpointKey,
    file: Option<PathBuf>,
    syslog: Option<PathBuf>,
    webhook: Option<String>,
    every: SignedDuration,
    every_entries: u64,
    written: tokio::sync::Mutex<Written>,
}

impl Anchor {
    /// A writer that writes nothing, with a key of its own (tests that
    /// call the router directly).
    pub fn none() -> anyhow::Result<Self> {
        Ok(Anchor {
            key: CheckpointKey::ephemeral()?,
            file: None,
            syslog: None,
            webhook: None,
            every: SignedDuration::MAX,
            every_entries: u64::MAX,
            written: tokio::sync::Mutex::default(),
        })
    }

    /// The writer `options` describe, with the key in `data_dir`; the
    /// checkpoint file must be writable now.
    pub fn open(data_dir: &Path, options: &AnchorOptions) -> anyhow::Result<Self> {
        if let Some(url) = &options.webhook {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("the audit checkpoint webhook {url:?}: {e}"))?;
            if !["http", "https"].contains(&parsed.scheme()) {
                anyhow::bail!("the audit checkpoint webhook {url:?}: not an http or https URL");
            }
        }
        if let Some(socket) = &options.syslog {
            if !socket.exists() {
                tracing::warn!(
                    socket = %socket.display(),
                    "No syslog socket here: audit checkpoints are not sent to syslog until it appears."
                );
            }
        }
        let key = CheckpointKey::load_or_create(data_dir)?;
        let file = options
            .file
            .clone()
            .unwrap_or_else(|| data_dir.join(CHECKPOINT_FILE));
        append_to(&file, None).with_context(|| {
            format!(
                "the audit checkpoint file {} cannot be written",
                file.display()
            )
        })?;
        let last = last_in(&file, &key.public())?;
        if options.file.is_none() && options.syslog.is_none() && options.webhook.is_none() {
            tracing::warn!(
                file = %file.display(),
                "Audit checkpoints are kept only in the data directory, which whoever owns the \
                 database can rewrite too: point --audit-checkpoints at another volume or host, \
                 or add --audit-syslog or --audit-webhook."
            );
        }
        tracing::info!(
            file = %file.display(),
            key = %key.public_text(),
            "Audit checkpoints are written here and signed with this key."
        );
        Ok(Anchor {
            key,
            file: Some(file),
            syslog: options.syslog.clone(),
            webhook: options.webhook.clone(),
            every: SignedDuration::try_from(options.every).unwrap_or(SignedDuration::MAX),
            every_entries: options.every_entries.max(1),
            written: tokio::sync::Mutex::new(Written {
                last,
                ..Written::default()
            }),
        })
    }

    /// Something that changes when the checkpoint file does (its length),
    /// for results kept per inputs.
    pub(crate) fn file_len(&self) -> u64 {
        self.file
            .as_deref()
            .and_then(|f| std::fs::metadata(f).ok())
            .map_or(0, |m| m.len())
    }

    /// Writes a checkpoint of the head now, if there are entries since the
    /// last; gives it. Nothing is written when the log no longer extends
    /// the last checkpoint (logged as an error, once).
    pub async fn checkpoint(
        &self,
        store: &Store,
        now: Timestamp,
    ) -> anyhow::Result<Option<Checkpoint>> {
        if self.file.is_none() {
            return Ok(None);
        }
        let mut written = self.written.lock().await;
        let from = written.last.as_ref().map(|c| (c.seq, c.head.as_str()));
        let walk = store.walk_audit(from, &BTreeSet::new()).await?;
        let (entries, head) = match walk.verdict {
            AuditVerdict::Intact { entries, head } => (entries, head),
            AuditVerdict::Broken { problem, .. } => {
                if written.refused.as_deref() != Some(problem.as_str()) {
                    tracing::error!(
                        "No audit checkpoint is written: the log no longer extends the last \
                         checkpoint ({problem}). Run `patchwell audit verify` and find out who \
                         changed the database."
                    );
                    written.refused = Some(problem);
                }
                return Ok(None);
            }
        };
        written.refused = None;
        if entries == 0 || written.last.as_ref().is_some_and(|c| c.seq == entries) {
            return Ok(None);
        }
        if written.last.is_none() && entries > 1 {
            if let Some(file) = &self.file {
                tracing::warn!(
                    file = %file.display(),
                    entries,
                    "A new series of audit checkpoints starts at entry {entries}: the file holds \
                     none. Expected on a new server or a new file; otherwise its checkpoints \
                     were removed, and the log before this entry is not anchored here (check the \
                     copies in syslog or the webhook's)."
                );
            }
        }
        let checkpoint = self.key.sign(entries, &head, now);
        if let Some(file) = &self.file {
            append_to(file, Some(&checkpoint.line()))
                .with_context(|| format!("writing an audit checkpoint to {}", file.display()))?;
        }
        if let Some(socket) = &self.syslog {
            if let Err(e) = to_syslog(socket, &checkpoint.line()) {
                tracing::warn!(socket = %socket.display(), "Audit checkpoint not sent to syslog: {e}");
            }
        }
        if let Some(url) = &self.webhook {
            to_webhook(url, &checkpoint).await;
        }
        tracing::info!(seq = checkpoint.seq, "Audit checkpoint written.");
        written.last = Some(checkpoint.clone());
        written.at = Some(now);
        Ok(Some(checkpoint))
    }

    /// Whether a checkpoint is due with `head` entries at `now`.
    async fn due(&self, head: u64, now: Timestamp) -> bool {
        let written = self.written.lock().await;
        let last = written.last.as_ref().map_or(0, |c| c.seq);
        if head <= last {
            return false;
        }
        match written.at {
            None => true,
            Some(at) => head - last >= self.every_entries || now.duration_since(at) >= self.every,
        }
    }

    /// The chain's verdict against the checkpoint file and the last
    /// checkpoint this server wrote.
    pub async fn verify(&self, store: &Store) -> anyhow::Result<Value> {
        let source = match &self.file {
            Some(file) => match std::fs::read_to_string(file) {
                Ok(text) => Some((file.display().to_string(), text)),
                // Removed since the server started: it anchors nothing.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Some((file.display().to_string(), String::new()))
                }
                Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
            },
            None => None,
        };
        let remembered = self.written.lock().await.last.clone();
        verify(store, source, &self.key.public(), remembered.as_ref()).await
    }
}

/// Appends `line` and a newline to `file` (made mode 0600 if missing),
/// opened for appending only, and syncs it; with no line, only checks that
/// it can be opened so.
fn append_to(file: &Path, line: Option<&str>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(file)?;
    if let Some(line) = line {
        // One write, so that lines from two writers never interleave.
        f.write_all(format!("{line}\n").as_bytes())?;
        f.sync_data()?;
    }
    Ok(())
}

/// Sends a line to the local syslog socket (facility auth, notice).
fn to_syslog(socket: &Path, line: &str) -> std::io::Result<()> {
    let s = std::os::unix::net::UnixDatagram::unbound()?;
    let message = format!("<37>{SYSLOG_TAG}[{}]: {line}", std::process::id());
    s.send_to(message.as_bytes(), socket)?;
    Ok(())
}

async fn to_webhook(url: &str, checkpoint: &Checkpoint) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build();
    let sent = match client {
        Ok(client) => client.post(url).json(checkpoint).send().await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!(status = %r.status(), "Audit checkpoint refused by its webhook."),
        Err(e) => tracing::warn!("Audit checkpoint not sent to its webhook: {e}"),
    }
}

/// Writes checkpoints while the server runs, whenever one is due (looked
/// at every ten seconds); `serve` writes one as it starts and as it stops.
pub(crate) async fn run(state: crate::AppState) {
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    loop {
        ticks.tick().await;
        let now = crate::handlers::now(&state);
        let head = match state.store.audit_head().await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("reading the audit log's head: {e}");
                continue;
            }
        };
        if state.anchor.due(head, now).await {
            if let Err(e) = state.anchor.checkpoint(&state.store, now).await {
                tracing::error!("{e:#}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_780_000_000 + s).unwrap()
    }

    #[test]
    fn a_checkpoint_verifies_only_as_signed_and_only_with_its_key() {
        let key = CheckpointKey::ephemeral().unwrap();
        let c = key.sign(42, &"ab".repeat(32), t(0));
        let text = format!(
            "{}\n\nMay  1 12:00:00 h patchwell-audit[7]: {}\n",
            c.line(),
            c.line()
        );
        let read = read_checkpoints("f", &text, &key.public());
        assert_eq!(read.good.len(), 2, "{:?}", read.problems);
        assert!(read.problems.is_empty());
        // Another seq under the same signature is a forgery.
        let forged = Checkpoint {
            seq: 41,
            ..c.clone()
        };
        let read = read_checkpoints("f", &forged.line(), &key.public());
        assert!(read.good.is_empty());
        assert!(
            read.problems[0].contains("f line 1 (entry 41"),
            "{:?}",
            read.problems
        );
        assert!(read.problems[0].contains("does not verify"));
        // Signed by another key: named as such.
        let other = CheckpointKey::ephemeral().unwrap();
        let read = read_checkpoints("f", &other.sign(1, "x", t(0)).line(), &key.public());
        assert!(
            read.problems[0].contains("names another key"),
            "{:?}",
            read.problems
        );
        // Not a checkpoint at all.
        let read = read_checkpoints("f", "hello", &key.public());
        assert!(read.problems[0].contains("f line 1 is not a checkpoint"));
        // The signed text is never a job's JSON.
        assert!(Checkpoint::signed_text(1, "x", t(0)).starts_with(DOMAIN));
    }

    #[test]
    fn keys_read_back_from_their_text() {
        let key = CheckpointKey::ephemeral().unwrap();
        assert_eq!(parse_key(&key.public_text()).unwrap(), key.public());
        assert!(parse_key("rsa:AAAA")
            .unwrap_err()
            .contains("starts with ed25519:"));
        assert!(parse_key("ed25519:AAAA").unwrap_err().contains("32 bytes"));
    }

    fn walk(entries: u64, hashes: &[(u64, &str)]) -> ChainWalk {
        ChainWalk {
            verdict: AuditVerdict::Intact {
                entries,
                head: "h".into(),
            },
            hashes: hashes.iter().map(|(s, h)| (*s, (*h).to_owned())).collect(),
        }
    }

    #[test]
    fn the_chain_must_hold_every_checkpoint_and_reach_the_last() {
        let key = CheckpointKey::ephemeral().unwrap();
        let read = |cs: &[Checkpoint]| CheckpointLines {
            good: cs.iter().cloned().enumerate().collect(),
            problems: vec![],
        };
        let c10 = key.sign(10, "h10", t(0));
        let c20 = key.sign(20, "h20", t(60));
        let ok = judge(
            &walk(25, &[(10, "h10"), (20, "h20")]),
            &read(&[c10.clone(), c20.clone()]),
            None,
            String::new(),
        );
        assert_eq!(
            (ok.verified, ok.last.as_ref().map(|c| c.seq)),
            (2, Some(20))
        );
        assert!(ok.problems.is_empty());
        // Cut back to 15: the checkpoint of 20 says otherwise.
        let cut = judge(
            &walk(15, &[(10, "h10")]),
            &read(&[c10.clone(), c20.clone()]),
            None,
            String::new(),
        );
        assert_eq!(cut.verified, 1);
        assert_eq!(cut.problems[0].0, Some(16));
        assert!(cut.problems[0]
            .1
            .starts_with("the log ends at entry 15, but the checkpoint of"));
        assert!(cut.problems[0].1.contains("says 20 entries existed"));
        // Rewritten, hashes and all.
        let rewritten = judge(
            &walk(25, &[(10, "h10"), (20, "other")]),
            &read(&[c10, c20]),
            None,
            String::new(),
        );
        assert_eq!(rewritten.problems[0].0, Some(20));
        assert!(rewritten.problems[0]
            .1
            .starts_with("entry 20's hash differs from the checkpoint of"));
        let v = report(
            &AuditVerdict::Intact {
                entries: 25,
                head: "h".into(),
            },
            &rewritten,
        );
        assert_eq!(v["intact"], false);
        assert_eq!(v["first_bad_entry"], 20);
        assert_eq!(v["checkpoints"]["verified"], 1);
    }
}
