//! Sign-ins in the audit log: every one that succeeds, and the ones that
//! fail, without letting a flood of failures flood the log.
//!
//! A key design decision made here is how failures are collapsed. The
//! first failure from a source address (an IPv6 address's /64) is recorded at once, with the user
//! name presented (cut to [`MAX_NAME_CHARS`], and labelled as presented: it
//! is whatever the client typed) and why it failed. The failures that
//! follow from that address within a minute are only counted, and written
//! as one entry when the minute is over ("N more failed sign-ins from Y in
//! the minute from T"), with a count for each of the first
//! [`MAX_NAMES`] names. At most [`MAX_SOURCES`] addresses are followed at
//! once; failures from any other address meanwhile are counted together and
//! written as one entry a minute. Failures therefore add at most two
//! entries per address and minute, and at most `2 * MAX_SOURCES + 1` entries
//! a minute in all, however many arrive, and the memory kept is bounded
//! the same way. A minute's count is written by the next sign-in after it
//! ends, by a task once a minute, and when the server stops; a success
//! writes its address's count first, so the log reads in order.
//!
//! The actor of a failure is [`ANONYMOUS`], never the name presented: no
//! one was authenticated.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use store::{AuditEvent, AuditStore};

use crate::error::ApiError;
use crate::handlers::now;
use crate::AppState;

/// The actor of a failed sign-in: not a user name (parentheses are not
/// allowed in one), so it cannot be mistaken for one.
pub(crate) const ANONYMOUS: &str = "(anonymous)";

/// How long failures from one address are collapsed into one entry.
const WINDOW: SignedDuration = SignedDuration::from_secs(60);

/// How many addresses are followed at once: so many first failures a
/// minute are written one by one, however many addresses an attacker has.
const MAX_SOURCES: usize = 64;

/// How many names a collapsed entry counts one by one.
const MAX_NAMES: usize = 5;

/// How much of a presented user name is kept (user names have at most 64
/// characters).
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// Why a sign-in failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No user has the name presented.
    UnknownUser,
    /// The user exists; the password was wrong.
    WrongPassword,
    /// The password was right, but the user is disabled.
    Disabled,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::UnknownUser => "unknown user",
            Failure::WrongPassword => "wrong password",
            Failure::Disabled => "user disabled",
        }
    }
}

/// The address a request came from, when the server was started to know
/// it (tests that call the router directly do not).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) Option<IpAddr>);

impl Peer {
    fn source(self) -> String {
        self.0
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_canonical().to_string())
    }

    /// The source the sign-in limits count it under.
    pub(crate) fn limited_as(self) -> crate::ratelimit::Source {
        self.0
            .map_or(crate::ratelimit::Source(None), crate::ratelimit::Source::of)
    }

    /// The source its failures are counted under: the address, or an IPv6
    /// address's /64 (one machine commonly holds a whole /64), as the
    /// sign-in limits count it.
    fn network(self) -> String {
        match self.0 {
            Some(_) => self.limited_as().to_string(),
            None => "unknown".to_owned(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip()),
        ))
    }
}

/// A presented user name as kept: at most [`MAX_NAME_CHARS`] characters,
/// and whether it was cut.
fn presented(name: &str) -> (String, bool) {
    let mut chars = name.chars();
    let kept: String = chars.by_ref().take(MAX_NAME_CHARS).collect();
    (kept, chars.next().is_some())
}

/// The failures from one address since its first, which was recorded.
#[derive(Debug)]
struct Window {
    since: Timestamp,
    /// Failures after the first.
    more: u64,
    /// Counts by (name, failure), for the first names.
    names: Vec<(String, Failure, u64)>,
    /// Failures with other names.
    other_names: u64,
}

/// Failures from addresses beyond those followed.
#[derive(Debug)]
struct Overflow {
    since: Timestamp,
    failures: u64,
}

#[derive(Debug, Default)]
struct Windows {
    by_source: HashMap<String, Window>,
    overflow: Option<Overflow>,
}

/// The failed sign-ins not yet written, by source address.
#[derive(Debug, Default)]
pub struct SignInLog {
    windows: Mutex<Windows>,
}

impl SignInLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        // A panic while counting leaves counts at worst one off.
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the windows over at `now` (all when `everything`), and the
    /// one of `source` whatever its age, as entries to write.
    fn take_due(&self, now: Timestamp, everything: bool, source: Option<&str>) -> Vec<AuditEvent> {
        let mut w = self.lock();
        let due = |since: Timestamp| everything || since + WINDOW <= now;
        let mut events = Vec::new();
        let sources: Vec<String> = w
            .by_source
            .iter()
            .filter(|(s, win)| due(win.since) || Some(s.as_str()) == source)
            .map(|(s, _)| s.clone())
            .collect();
        for s in sources {
            if let Some(win) = w.by_source.remove(&s) {
                if win.more > 0 {
                    events.push(collapsed(&s, &win));
                }
            }
        }
        if w.overflow.as_ref().is_some_and(|o| due(o.since)) {
            if let Some(o) = w.overflow.take() {
                events.push(overflowed(&o));
            }
        }
        events
    }

    /// Counts a failure; gives the entry to write at once when it is the
    /// first from its address.
    fn count(
        &self,
        now: Timestamp,
        source: &str,
        name: &str,
        failure: Failure,
    ) -> Option<AuditEvent> {
        let mut w = self.lock();
        if let Some(win) = w.by_source.get_mut(source) {
            win.more += 1;
            // Only the cut name is kept: the memory held stays bounded.
            let (name, _) = presented(name);
            let known = win
                .names
                .iter()
                .position(|(n, f, _)| *n == name && *f == failure);
            match known {
                Some(i) => win.names[i].2 += 1,
                None if win.names.len() < MAX_NAMES => {
                    win.names.push((name, failure, 1));
                }
                None => win.other_names += 1,
            }
            return None;
        }
        if w.by_source.len() >= MAX_SOURCES {
            let o = w.overflow.get_or_insert(Overflow {
                since: now,
                failures: 0,
            });
            o.failures += 1;
            return None;
        }
        w.by_source.insert(
            source.to_owned(),
            Window {
                since: now,
                more: 0,
                names: Vec::new(),
                other_names: 0,
            },
        );
        Some(first_failure(source, name, failure))
    }
}

fn first_failure(source: &str, name: &str, failure: Failure) -> AuditEvent {
    let (kept, cut) = presented(name);
    let shown = if cut {
        format!("{kept:?}...")
    } else {
        format!("{kept:?}")
    };
    AuditEvent {
        actor: ANONYMOUS.to_owned(),
        action: "sign-in-failed".to_owned(),
        subject: format!("sign-in/{source}"),
        before: None,
        after: Some(
            json!({
                "presented_username": kept,
                "presented_username_cut": cut,
                "source": source,
                "failure": failure.as_str(),
            })
            .to_string(),
        ),
        reason: Some(format!(
            "sign-in from {source} as {shown} (the name presented, not a verified user) \
             refused: {}",
            failure.as_str()
        )),
    }
}

fn collapsed(source: &str, win: &Window) -> AuditEvent {
    let mut counts: Vec<String> = win
        .names
        .iter()
        .map(|(n, f, c)| format!("{n:?} x{c} ({})", f.as_str()))
        .collect();
    if win.other_names > 0 {
        counts.push(format!("{} with other names", win.other_names));
    }
    AuditEvent {
        actor: ANONYMOUS.to_owned(),
        action: "sign-in-failures".to_owned(),
        subject: format!("sign-in/{source}"),
        before: None,
        after: Some(
            json!({
                "source": source,
                "failures": win.more,
                "since": win.since,
                "presented_usernames": win.names.iter().map(|(n, f, c)| json!({
                    "presented_username": n,
                    "failure": f.as_str(),
                    "count": c,
                })).collect::<Vec<_>>(),
                "other_names": win.other_names,
            })
            .to_string(),
        ),
        reason: Some(format!(
            "{} more failed sign-ins from {source} in the minute from {} (names as \
             presented): {}",
            win.more,
            win.since,
            counts.join(", ")
        )),
    }
}

fn overflowed(o: &Overflow) -> AuditEvent {
    AuditEvent {
        actor: ANONYMOUS.to_owned(),
        action: "sign-in-failures".to_owned(),
        subject: "sign-in/other-sources".to_owned(),
        before: None,
        after: Some(json!({"failures": o.failures, "since": o.since}).to_string()),
        reason: Some(format!(
            "{} failed sign-ins in the minute from {} from addresses beyond the {MAX_SOURCES} \
             followed at once",
            o.failures, o.since
        )),
    }
}

async fn write(state: &AppState, events: &[AuditEvent], at: Timestamp) {
    for event in events {
        if let Err(e) = state.store.record(event, at).await {
            tracing::warn!(action = %event.action, "Recording a sign-in in the audit log: {e}");
        }
    }
}

/// Records a failed sign-in (see the module's header for how bursts are
/// collapsed). A failure to record is logged; it never changes the answer.
pub(crate) async fn failed(state: &AppState, peer: Peer, presented: &str, failure: Failure) {
    let at = now(state);
    let source = peer.network();
    let mut events = state.sign_ins.take_due(at, false, None);
    events.extend(state.sign_ins.count(at, &source, presented, failure));
    write(state, &events, at).await;
}

/// Records a sign-in that succeeded, after what its address failed
/// before. Unlike a failure, it is an error not to record it: no session
/// is given without its entry.
pub(crate) async fn succeeded(
    state: &AppState,
    peer: Peer,
    username: &str,
) -> Result<(), ApiError> {
    let at = now(state);
    let events = state.sign_ins.take_due(at, false, Some(&peer.network()));
    let source = peer.source();
    write(state, &events, at).await;
    let event = AuditEvent {
        actor: username.to_owned(),
        action: "sign-in".to_owned(),
        subject: format!("users/{username}"),
        before: None,
        after: Some(json!({"source": source}).to_string()),
        reason: None,
    };
    state.store.record(&event, at).await?;
    Ok(())
}

/// Writes every count, whatever its age: as the server stops.
pub(crate) async fn flush(state: &AppState) {
    let at = now(state);
    let events = state.sign_ins.take_due(at, true, None);
    write(state, &events, at).await;
}

/// Writes, once a minute, the counts whose minute is over, so that a burst
/// is in the log even when no one signs in after it.
pub(crate) async fn run(state: AppState) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        ticks.tick().await;
        let at = now(&state);
        let events = state.sign_ins.take_due(at, false, None);
        write(&state, &events, at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_780_000_000 + s).unwrap()
    }

    #[test]
    fn a_burst_from_one_address_is_one_entry_and_then_one_count() {
        let log = SignInLog::default();
        let first = log
            .count(t(0), "192.0.2.7", "admin", Failure::WrongPassword)
            .expect("the first failure is written at once");
        assert_eq!(first.actor, ANONYMOUS);
        assert!(first.reason.unwrap().contains("\"admin\""));
        for i in 1..=40 {
            assert!(log
                .count(t(i), "192.0.2.7", "admin", Failure::WrongPassword)
                .is_none());
        }
        for name in ["a", "b", "c", "d", "e", "f", "g"] {
            assert!(log
                .count(t(50), "192.0.2.7", name, Failure::UnknownUser)
                .is_none());
        }
        assert!(log.take_due(t(59), false, None).is_empty(), "not yet");
        let due = log.take_due(t(60), false, None);
        assert_eq!(due.len(), 1);
        let reason = due[0].reason.clone().unwrap();
        assert!(
            reason.starts_with("47 more failed sign-ins from 192.0.2.7"),
            "{reason}"
        );
        assert!(
            reason.contains("\"admin\" x40 (wrong password)"),
            "{reason}"
        );
        assert!(reason.contains("3 with other names"), "{reason}");
        // The window is gone: the next failure is written at once again.
        assert!(log
            .count(t(61), "192.0.2.7", "admin", Failure::WrongPassword)
            .is_some());
    }

    #[test]
    fn addresses_beyond_those_followed_are_counted_together() {
        let log = SignInLog::default();
        for i in 0..MAX_SOURCES {
            assert!(log
                .count(
                    t(0),
                    &format!("10.0.{}.{}", i / 256, i % 256),
                    "x",
                    Failure::UnknownUser
                )
                .is_some());
        }
        for i in 0..500 {
            assert!(log
                .count(
                    t(1),
                    &format!("10.9.{}.{}", i / 256, i % 256),
                    "x",
                    Failure::UnknownUser
                )
                .is_none());
        }
        assert_eq!(log.lock().by_source.len(), MAX_SOURCES);
        let due = log.take_due(t(61), false, None);
        // Each followed address failed once (already written); the others
        // are one entry.
        assert_eq!(due.len(), 1);
        assert!(due[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("500 failed sign-ins"));
        assert!(log.lock().by_source.is_empty());
    }

    #[test]
    fn a_long_name_is_cut() {
        let name = "a".repeat(10_000);
        let e = first_failure("192.0.2.1", &name, Failure::UnknownUser);
        let after: serde_json::Value = serde_json::from_str(e.after.as_deref().unwrap()).unwrap();
        assert_eq!(
            after["presented_username"].as_str().unwrap().len(),
            MAX_NAME_CHARS
        );
        assert_eq!(after["presented_username_cut"], true);
        assert!(e.reason.unwrap().len() < 300);
    }
}
