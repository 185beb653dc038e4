//! Reboots after a job: logged-in users are told (wall) and may put the
//! reboot off a set number of times, never past a deadline; the reboot
//! itself happens inside the job's maintenance windows.
//!
//! A key design decision made here is that a pending reboot is a small
//! file in the state directory (`reboot.json`), and that users ask for a
//! deferral by dropping a file into a directory only they can write to and
//! nobody can list (`requests/`, mode 1733): the agent runs as root and
//! needs no socket or privilege helper, and a request survives an agent
//! restart. What to do is decided by pure functions ([`decide`],
//! [`defer`]) from the pending reboot and the time.

use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use protocol::job::{Job, RebootDeferral, Span, Step, StepReport};
use serde::{Deserialize, Serialize};

use crate::jobs::{self, StepSink};
use crate::runner::CommandRunner;
use crate::state;

/// The pending reboot, in the state directory.
pub const REBOOT_FILE: &str = "reboot.json";

/// Where users drop deferral requests, in the state directory.
pub const REQUESTS_DIR: &str = "requests";

/// How long logged-in users have between being told and the reboot.
pub const NOTICE: SignedDuration = SignedDuration::from_mins(15);

/// A reboot the agent owes the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingReboot {
    /// The job that asked for it (its journal gets the reboot's steps).
    pub job_id: String,
    /// Not before then.
    pub due: Timestamp,
    /// Deferrals granted so far.
    pub deferrals_used: u32,
    /// How far users may put it off (`None`: not at all).
    pub terms: Option<RebootDeferral>,
    /// The maintenance windows it must happen in (none: any time).
    pub windows: Vec<Span>,
    /// When logged-in users were last told.
    pub told_at: Option<Timestamp>,
}

/// What to do about a pending reboot now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Reboot.
    Now,
    /// Not yet, until then, and why.
    Wait {
        /// Until when.
        until: Timestamp,
        /// Why.
        why: String,
    },
    /// Every maintenance window is over: a person must reboot the host.
    NoWindowLeft,
}

/// A pending reboot for `job`, finished at `now`; users logged in get
/// [`NOTICE`] before it.
pub fn pending_for(job: &Job, now: Timestamp, users_logged_in: bool) -> PendingReboot {
    PendingReboot {
        job_id: job.id.clone(),
        due: if users_logged_in { now + NOTICE } else { now },
        deferrals_used: 0,
        terms: job.reboot_deferral,
        windows: job.windows.clone(),
        told_at: None,
    }
}

/// What to do about `p` at `now`.
pub fn decide(p: &PendingReboot, now: Timestamp) -> Decision {
    if now < p.due {
        return Decision::Wait {
            until: p.due,
            why: "users were told it happens then".into(),
        };
    }
    match Span::next_open(&p.windows, now) {
        Some(t) if t <= now => Decision::Now,
        Some(t) => Decision::Wait {
            until: t,
            why: "outside the maintenance window".into(),
        },
        None => Decision::NoWindowLeft,
    }
}

/// Puts `p` off once, for a user's request at `now`: by the terms'
/// minutes from the later of now and the time it was due, never past the
/// deadline. Returns the new time, or why not.
pub fn defer(p: &mut PendingReboot, now: Timestamp) -> Result<Timestamp, String> {
    let Some(terms) = p.terms else {
        return Err("this reboot may not be put off".into());
    };
    if p.deferrals_used >= terms.max_deferrals {
        return Err(format!(
            "it was put off {} times already, the most allowed",
            p.deferrals_used
        ));
    }
    if now >= terms.deadline {
        return Err(format!("its deadline, {}, has passed", terms.deadline));
    }
    let from = p.due.max(now);
    let later =
        (from + SignedDuration::from_mins(i64::from(terms.defer_minutes))).min(terms.deadline);
    if later <= p.due {
        return Err(format!("it is due at its deadline, {}", terms.deadline));
    }
    p.deferrals_used += 1;
    p.due = later;
    Ok(later)
}

/// What users are told while a reboot waits.
pub fn notice_text(p: &PendingReboot) -> String {
    let mut text = format!(
        "Patchwell: this computer restarts at {} (UTC) to finish installing updates.",
        p.due
    );
    if let Some(t) = p.terms {
        let left = t.max_deferrals.saturating_sub(p.deferrals_used);
        if left > 0 && p.due < t.deadline {
            text.push_str(&format!(
                " To put it off by {} minutes, run: patchwell-agent defer-reboot \
                 ({left} more time{} allowed, not past {}).",
                t.defer_minutes,
                if left == 1 { "" } else { "s" },
                t.deadline
            ));
        }
    }
    if !p.windows.is_empty() {
        text.push_str(" It happens inside the maintenance window.");
    }
    text
}

/// Reads the pending reboot, if there is one that can be read.
pub fn load(state_dir: &Path) -> Option<PendingReboot> {
    let text = std::fs::read_to_string(state_dir.join(REBOOT_FILE)).ok()?;
    match serde_json::from_str(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("warning: {REBOOT_FILE} is unreadable, no reboot pending: {e}");
            None
        }
    }
}

/// Writes the pending reboot.
pub fn save(state_dir: &Path, p: &PendingReboot) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(p).map_err(io::Error::other)?;
    state::write_private(state_dir, REBOOT_FILE, &json)
}

/// Makes the request directory: anyone may drop a file in, nobody but
/// root may list or remove another's (1733, like `/tmp` without reading);
/// the state directory becomes traversable (0711) so users can reach it,
/// its files staying private.
pub fn prepare(state_dir: &Path) -> io::Result<PathBuf> {
    let dir = state_dir.join(REQUESTS_DIR);
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1733))?;
    std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o711))?;
    Ok(dir)
}

/// Drops a deferral request (`patchwell-agent defer-reboot`): the file's
/// owner is the user who asks.
pub fn request_deferral(state_dir: &Path, user: &str) -> io::Result<PathBuf> {
    let dir = state_dir.join(REQUESTS_DIR);
    let nanos = Timestamp::now().as_nanosecond();
    let path = dir.join(format!("defer-reboot.{}.{nanos}", std::process::id()));
    std::fs::write(&path, user.as_bytes())?;
    Ok(path)
}

/// The users logged in, from `who`.
pub fn logged_in(runner: &dyn CommandRunner) -> Vec<String> {
    match crate::runner::stdout_of(runner, "who", &[]) {
        Ok(text) => {
            let mut users: Vec<String> = text
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_owned)
                .collect();
            users.sort();
            users.dedup();
            users
        }
        Err(e) => {
            eprintln!("warning: cannot tell who is logged in: {e}");
            Vec::new()
        }
    }
}

/// What a tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// No reboot pending.
    Idle,
    /// Waiting, until then.
    Waiting(Timestamp),
    /// The reboot was started.
    Rebooting,
    /// No window left; a person must reboot.
    Stuck,
}

/// Looks at the pending reboot: takes users' deferral requests, tells
/// logged-in users when it happens, and reboots when it is due and inside
/// a window. Each deferral and the reboot are reported as steps of the job
/// that asked for it.
pub fn tick(
    state_dir: &Path,
    runner: &dyn CommandRunner,
    sink: &dyn StepSink,
    now: Timestamp,
) -> io::Result<Tick> {
    let Some(mut p) = load(state_dir) else {
        return Ok(Tick::Idle);
    };
    let users = logged_in(runner);
    let mut changed = false;

    for (path, owner) in requests(state_dir) {
        let who = format!(
            "{} (uid {owner})",
            std::fs::read_to_string(&path).unwrap_or_default().trim()
        );
        let answer = match defer(&mut p, now) {
            Ok(until) => {
                changed = true;
                let left = p.terms.map_or(0, |t| t.max_deferrals - p.deferrals_used);
                let text = format!("put off by {who} until {until}; {left} deferrals left");
                let mut report = StepReport::new(Step::RebootDeferred, now);
                report.message = Some(text.clone());
                jobs::report_after_end(sink, state_dir, &p.job_id, report)?;
                format!("Patchwell: the restart was {text}.")
            }
            Err(why) => format!("Patchwell: the restart cannot be put off: {why}."),
        };
        wall(runner, &answer);
        std::fs::remove_file(&path).ok();
    }

    let result = match decide(&p, now) {
        Decision::Now => {
            let (when, text) = if users.is_empty() {
                ("now".to_owned(), "no one logged in".to_owned())
            } else {
                ("+5".to_owned(), format!("{} told", users.join(", ")))
            };
            let argv = [
                "-r",
                when.as_str(),
                "Patchwell: restarting to finish installing updates",
            ];
            let output = runner.run("shutdown", &argv)?;
            if !output.status.success() {
                return Err(io::Error::other(format!(
                    "shutdown -r {when} failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            let mut report = StepReport::new(Step::Rebooting, now);
            report.message = Some(format!("restarting ({when}; {text})"));
            jobs::report_after_end(sink, state_dir, &p.job_id, report)?;
            std::fs::remove_file(state_dir.join(REBOOT_FILE))?;
            return Ok(Tick::Rebooting);
        }
        Decision::Wait { until, .. } => {
            if !users.is_empty() && (changed || p.told_at.is_none()) {
                wall(runner, &notice_text(&p));
                p.told_at = Some(now);
                changed = true;
            }
            Tick::Waiting(until)
        }
        Decision::NoWindowLeft => Tick::Stuck,
    };
    if changed {
        save(state_dir, &p)?;
    }
    Ok(result)
}

/// The deferral requests waiting, with their owners' uids.
fn requests(state_dir: &Path) -> Vec<(PathBuf, u32)> {
    let Ok(entries) = std::fs::read_dir(state_dir.join(REQUESTS_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, u32)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("defer-reboot."))
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.uid())))
        .collect();
    out.sort();
    out
}

/// Tells every logged-in user; a failure is only logged.
fn wall(runner: &dyn CommandRunner, text: &str) {
    match runner.run("wall", &[text]) {
        Ok(o) if o.status.success() => {}
        Ok(o) => eprintln!(
            "warning: wall failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => eprintln!("warning: cannot run wall: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientError;
    use crate::jobs::{Journal, JOBS_DIR};
    use std::cell::RefCell;
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::{ExitStatus, Output};

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pending() -> PendingReboot {
        PendingReboot {
            job_id: "r1.1.install.h1".into(),
            due: "2026-12-05T01:15:00Z".parse().unwrap(),
            deferrals_used: 0,
            terms: Some(RebootDeferral {
                max_deferrals: 2,
                defer_minutes: 60,
                deadline: "2026-12-05T03:00:00Z".parse().unwrap(),
            }),
            windows: vec![Span {
                start: "2026-12-05T00:00:00Z".parse().unwrap(),
                end: "2026-12-05T04:00:00Z".parse().unwrap(),
            }],
            told_at: None,
        }
    }

    #[test]
    fn users_put_a_reboot_off_a_set_number_of_times_never_past_the_deadline() {
        let mut p = pending();
        assert_eq!(
            defer(&mut p, t("2026-12-05T01:00:00Z")),
            Ok(t("2026-12-05T02:15:00Z"))
        );
        // The second deferral stops at the deadline.
        assert_eq!(
            defer(&mut p, t("2026-12-05T02:00:00Z")),
            Ok(t("2026-12-05T03:00:00Z"))
        );
        assert_eq!(
            defer(&mut p, t("2026-12-05T02:30:00Z")),
            Err("it was put off 2 times already, the most allowed".into())
        );
        let mut late = pending();
        late.due = t("2026-12-05T03:00:00Z");
        assert_eq!(
            defer(&mut late, t("2026-12-05T03:00:00Z")),
            Err("its deadline, 2026-12-05T03:00:00Z, has passed".into())
        );
        let mut none = pending();
        none.terms = None;
        assert!(defer(&mut none, t("2026-12-05T01:00:00Z")).is_err());
    }

    #[test]
    fn a_reboot_waits_for_its_time_and_its_window() {
        let mut p = pending();
        assert_eq!(
            decide(&p, t("2026-12-05T01:00:00Z")),
            Decision::Wait {
                until: t("2026-12-05T01:15:00Z"),
                why: "users were told it happens then".into()
            }
        );
        assert_eq!(decide(&p, t("2026-12-05T01:15:00Z")), Decision::Now);
        // Put off past the window's end: the next window, or none.
        p.due = t("2026-12-05T04:30:00Z");
        assert_eq!(
            decide(&p, t("2026-12-05T04:30:00Z")),
            Decision::NoWindowLeft
        );
        p.windows.push(Span {
            start: t("2026-12-12T00:00:00Z"),
            end: t("2026-12-12T04:00:00Z"),
        });
        assert_eq!(
            decide(&p, t("2026-12-05T04:30:00Z")),
            Decision::Wait {
                until: t("2026-12-12T00:00:00Z"),
                why: "outside the maintenance window".into()
            }
        );
        p.windows.clear();
        assert_eq!(decide(&p, t("2026-12-05T04:30:00Z")), Decision::Now);
    }

    #[test]
    fn the_notice_says_when_and_how_to_put_it_off() {
        let p = pending();
        assert_eq!(
            notice_text(&p),
            "Patchwell: this computer restarts at 2026-12-05T01:15:00Z (UTC) to finish \
             installing updates. To put it off by 60 minutes, run: patchwell-agent \
             defer-reboot (2 more times allowed, not past 2026-12-05T03:00:00Z). It happens \
             inside the maintenance window."
        );
    }

    /// `who` prints what it is given; `wall` and `shutdown` are recorded.
    #[derive(Debug, Default)]
    struct Host {
        who: String,
        ran: RefCell<Vec<String>>,
    }

    impl CommandRunner for Host {
        fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
            let stdout = if program == "who" {
                self.who.clone().into_bytes()
            } else {
                self.ran
                    .borrow_mut()
                    .push(format!("{program} {}", args.join(" ")));
                Vec::new()
            };
            Ok(Output {
                status: ExitStatus::from_raw(0),
                stdout,
                stderr: Vec::new(),
            })
        }
    }

    #[derive(Default)]
    struct Server(RefCell<Vec<(String, Step, Option<String>)>>);

    impl StepSink for Server {
        fn report_steps(&self, job_id: &str, steps: &[StepReport]) -> Result<(), ClientError> {
            for s in steps {
                self.0
                    .borrow_mut()
                    .push((job_id.to_owned(), s.step, s.message.clone()));
            }
            Ok(())
        }
    }

    #[test]
    fn a_user_puts_the_reboot_off_and_it_happens_when_due_inside_the_window() {
        let dir = std::env::temp_dir().join(format!("patchwell-reboot-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(dir.join(JOBS_DIR)).unwrap();
        let job_id = "r1.1.install.h1";
        let journal = Journal {
            id: job_id.into(),
            job: None,
            before: None,
            targets: Vec::new(),
            skipped: Vec::new(),
            reports: vec![StepReport::new(Step::Succeeded, t("2026-12-05T01:00:00Z"))],
            acknowledged: 1,
            finished: true,
        };
        std::fs::write(
            dir.join(JOBS_DIR).join(format!("{job_id}.json")),
            serde_json::to_vec(&journal).unwrap(),
        )
        .unwrap();
        let mut p = pending();
        p.job_id = job_id.into();
        save(&dir, &p).unwrap();
        prepare(&dir).unwrap();
        let host = Host {
            who: "alice    seat0        2026-12-05 00:50 (login screen)\nalice    pts/0 2026-12-05 00:51\n"
                .into(),
            ..Host::default()
        };
        let server = Server::default();

        // Before it is due: alice is told once, with how to put it off.
        let now = t("2026-12-05T01:00:00Z");
        assert_eq!(
            tick(&dir, &host, &server, now).unwrap(),
            Tick::Waiting(t("2026-12-05T01:15:00Z"))
        );
        assert_eq!(host.ran.borrow().len(), 1);
        assert!(host.ran.borrow()[0]
            .starts_with("wall Patchwell: this computer restarts at 2026-12-05T01:15:00Z"));
        tick(&dir, &host, &server, now).unwrap();
        assert_eq!(host.ran.borrow().len(), 1, "told once, not at every tick");

        // She asks to put it off: an hour later, reported to the server.
        request_deferral(&dir, "alice").unwrap();
        assert_eq!(
            tick(&dir, &host, &server, t("2026-12-05T01:05:00Z")).unwrap(),
            Tick::Waiting(t("2026-12-05T02:15:00Z"))
        );
        let ran = host.ran.borrow().clone();
        assert!(
            ran[1].starts_with("wall Patchwell: the restart was put off by alice (uid "),
            "{ran:?}"
        );
        assert!(
            ran[1].ends_with("until 2026-12-05T02:15:00Z; 1 deferrals left."),
            "{ran:?}"
        );
        assert!(
            ran[2].starts_with("wall Patchwell: this computer restarts at 2026-12-05T02:15:00Z")
        );
        assert_eq!(server.0.borrow()[0].1, Step::RebootDeferred);
        assert!(requests(&dir).is_empty(), "the request is used up");

        // When due, inside the window, it reboots (users get five minutes).
        assert_eq!(
            tick(&dir, &host, &server, t("2026-12-05T02:15:00Z")).unwrap(),
            Tick::Rebooting
        );
        assert_eq!(
            host.ran.borrow().last().unwrap(),
            "shutdown -r +5 Patchwell: restarting to finish installing updates"
        );
        let steps = server.0.borrow();
        assert_eq!(steps[1].1, Step::Rebooting);
        assert_eq!(steps[1].2.as_deref(), Some("restarting (+5; alice told)"));
        assert!(load(&dir).is_none(), "nothing owed any more");
        let journal = crate::jobs::load_journal(&dir, job_id).unwrap();
        assert_eq!(journal.reports.len(), 3);
        assert_eq!(journal.acknowledged, 3);
        std::fs::remove_dir_all(&dir).ok();
    }
}
