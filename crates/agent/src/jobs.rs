//! Running the jobs the server signs: verify, journal, execute, report.
//!
//! A key design decision made here is that a job's journal
//! (`<state dir>/jobs/<id>.json`) is written and synced before each thing
//! the job does, and that what is left to do is decided from the package
//! database, never from memory. A job delivered again is never started
//! again; a job interrupted by a crash or a reboot is resumed at the next
//! check-in, installs only the packages that are not yet at their target
//! version, and reports only the steps it had not reported. The versions
//! installed before the job touched anything are in the journal before the
//! first install command runs, so the `changes` a job reports are always
//! from those versions.
//!
//! apt jobs download first and check every file against the signed apt
//! lists before installing; dnf, zypper and apk jobs run one command that
//! fetches, checks signatures and installs, and their failure output is read
//! into a one-line reason. Only apt runs on a real system in this project's
//! tests; no rpm or apk system runs here, so the others are driven through
//! a stand-in whose output is written after the tools' own messages, not
//! captured from them.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use protocol::job::{
    Change, ConffilePolicy, Job, JobKind, JobPackage, RebootPolicy, SignedJob, Span, Step,
    StepReport,
};
use protocol::{Manager, PackageState};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::client::{Client, ClientError};
use crate::root::Root;
use crate::runner::CommandRunner;
use crate::state::{self, Enrollment};
use crate::{apk, apt, dpkg, reboot, rpm};

/// The directory of the journals, in the state directory.
pub const JOBS_DIR: &str = "jobs";

/// Where apt keeps the packages it downloaded, inside the root.
pub const ARCHIVES_DIR: &str = "/var/cache/apt/archives";

/// The file a Debian package's maintainer scripts create when the host
/// needs a reboot, inside the root.
pub const REBOOT_REQUIRED_FILE: &str = "/run/reboot-required";

/// How many lines of a failed command's output a report carries.
const TAIL_LINES: usize = 20;

/// The environment of every command a job runs: no question may wait for
/// an answer nobody will type, and messages are in the language the
/// failure readers understand.
const ENV: [(&str, &str); 2] = [("DEBIAN_FRONTEND", "noninteractive"), ("LC_ALL", "C")];

/// Where step reports go: the server, or a test's double.
pub trait StepSink {
    /// Sends steps of one job, in order.
    fn report_steps(&self, job_id: &str, steps: &[StepReport]) -> Result<(), ClientError>;
}

impl StepSink for Client {
    fn report_steps(&self, job_id: &str, steps: &[StepReport]) -> Result<(), ClientError> {
        Client::report_steps(self, job_id, steps)
    }
}

/// A package as the dpkg database has it, in a journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installed {
    /// The package.
    pub name: String,
    /// Its architecture.
    pub arch: String,
    /// Its version.
    pub version: String,
}

/// What the agent remembers of one job, on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    /// The job's id.
    pub id: String,
    /// The verified job; `None` when it was refused.
    pub job: Option<Job>,
    /// Every installed package before the job touched anything; `None`
    /// until read, which happens before any command runs.
    #[serde(default)]
    pub before: Option<Vec<Installed>>,
    /// The packages the job moves (decided with `before`).
    #[serde(default)]
    pub targets: Vec<JobPackage>,
    /// The packages left alone, each with a sentence saying why.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Every step reported so far, in order.
    pub reports: Vec<StepReport>,
    /// How many of `reports` the server has acknowledged.
    pub acknowledged: usize,
    /// Whether the job has ended (succeeded, failed or refused).
    pub finished: bool,
}

impl Journal {
    fn new(id: &str, job: Option<Job>) -> Journal {
        Journal {
            id: id.to_owned(),
            job,
            before: None,
            targets: Vec::new(),
            skipped: Vec::new(),
            reports: Vec::new(),
            acknowledged: 0,
            finished: false,
        }
    }

    fn reported(&self, step: Step) -> bool {
        self.reports.iter().any(|r| r.step == step)
    }
}

/// How a job stands after a check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Done; the packages are at their versions.
    Succeeded,
    /// Failed, with the reason reported.
    Failed(String),
    /// Not run, with the reason reported.
    Refused(String),
    /// Stopped before its end (its journal could not be written); resumed
    /// at the next check-in.
    Unfinished(String),
}

/// What one job did during a check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    /// The job's id.
    pub id: String,
    /// How it stands.
    pub state: JobState,
    /// How many packages changed version.
    pub packages: usize,
    /// Whether the package manager ran (so the inventory may have changed).
    pub ran_installs: bool,
}

impl fmt::Display for JobOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.packages == 1 { "" } else { "s" };
        match &self.state {
            JobState::Succeeded => write!(
                f,
                "job {}: succeeded ({} package{plural})",
                self.id, self.packages
            ),
            JobState::Failed(why) => write!(f, "job {}: failed: {why}", self.id),
            JobState::Refused(why) => write!(f, "job {}: refused: {why}", self.id),
            JobState::Unfinished(why) => write!(f, "job {}: unfinished: {why}", self.id),
        }
    }
}

/// Why no job could be looked at.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", dir.display())]
pub struct JobsError {
    /// The journal directory.
    pub dir: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// Whether `id` may name a journal file: server-made ids are checked, not
/// trusted, before they become a path.
pub fn valid_job_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && id != "."
        && id != ".."
}

/// Runs the jobs of a check-in.
///
/// First the journals a crash or reboot left unfinished are resumed; then
/// each job in `delivered` is verified with the enrollment's job key,
/// journaled and run, unless it has a journal already (a redelivery, which
/// never runs twice); last, every step report the server has not yet
/// acknowledged is sent again. A report that cannot be sent stays in the
/// journal for the next check-in and does not stop the job.
pub fn run_jobs(
    sink: &dyn StepSink,
    state_dir: &Path,
    root: &Root,
    runner: &dyn CommandRunner,
    enrollment: &Enrollment,
    delivered: &[SignedJob],
    clock: &dyn Fn() -> Timestamp,
) -> Result<Vec<JobOutcome>, JobsError> {
    let dir = state_dir.join(JOBS_DIR);
    let failed = |source| JobsError {
        dir: dir.clone(),
        source,
    };
    state::create_private_dir(&dir).map_err(failed)?;
    let worker = Worker {
        sink,
        dir: dir.clone(),
        root,
        runner,
        clock,
        server_up: Cell::new(true),
    };
    let mut outcomes = Vec::new();

    for id in worker.journal_ids().map_err(failed)? {
        let Some(mut journal) = worker.load(&id) else {
            continue;
        };
        if !journal.finished {
            outcomes.push(worker.execute(&mut journal, true));
        }
    }

    let mut seen = HashSet::new();
    for signed in delivered {
        if !seen.insert(signed.id.as_str()) {
            continue;
        }
        if !valid_job_id(&signed.id) {
            outcomes.push(worker.refuse_unjournaled(signed));
            continue;
        }
        if worker.path(&signed.id).exists() {
            // Delivered again (the server had not yet seen `received`):
            // the journal is the job now, resumed above if unfinished.
            continue;
        }
        outcomes.push(worker.start(signed, enrollment));
    }

    for id in worker.journal_ids().map_err(failed)? {
        if let Some(mut journal) = worker.load(&id) {
            worker.flush(&mut journal);
        }
    }
    Ok(outcomes)
}

/// Adds a step that comes after a job's end (a reboot put off, or
/// started) to its journal, and sends the steps the server has not
/// acknowledged. A journal that is gone (cleaned up) takes nothing.
pub fn report_after_end(
    sink: &dyn StepSink,
    state_dir: &Path,
    job_id: &str,
    report: StepReport,
) -> io::Result<()> {
    let dir = state_dir.join(JOBS_DIR);
    let Some(mut journal) = load_journal(state_dir, job_id) else {
        return Ok(());
    };
    journal.reports.push(report);
    save_journal(&dir, &journal)?;
    let unsent = &journal.reports[journal.acknowledged..];
    match sink.report_steps(&journal.id, unsent) {
        Ok(()) => {
            journal.acknowledged = journal.reports.len();
            save_journal(&dir, &journal)
        }
        Err(e) => {
            // Sent with the next check-in's flush.
            eprintln!("warning: job {job_id}: step reports not sent, kept: {e}");
            Ok(())
        }
    }
}

/// Writes a journal into the journal directory so that a crash leaves the
/// old one or the new.
fn save_journal(dir: &Path, journal: &Journal) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(journal).map_err(io::Error::other)?;
    state::write_private(dir, &format!("{}.json", journal.id), &json)
}

/// Reads a job's journal, if it has one that can be read.
pub fn load_journal(state_dir: &Path, id: &str) -> Option<Journal> {
    if !valid_job_id(id) {
        return None;
    }
    let text = std::fs::read_to_string(state_dir.join(JOBS_DIR).join(format!("{id}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

/// A command that failed, as a step reports it.
#[derive(Debug)]
struct Failure {
    message: String,
    exit_code: Option<i32>,
    output_tail: Option<String>,
}

impl Failure {
    fn said(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            exit_code: None,
            output_tail: None,
        }
    }
}

/// The installed packages by (name, arch): version and state.
type Database = BTreeMap<(String, String), (String, PackageState)>;

struct Worker<'a> {
    sink: &'a dyn StepSink,
    dir: PathBuf,
    root: &'a Root,
    runner: &'a dyn CommandRunner,
    clock: &'a dyn Fn() -> Timestamp,
    /// Cleared at the first report that cannot be sent, so that a server
    /// that is down costs one timeout per check-in, not one per step.
    server_up: Cell<bool>,
}

impl Worker<'_> {
    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// The ids of the journals, in a stable order.
    fn journal_ids(&self) -> io::Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if valid_job_id(id) {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn load(&self, id: &str) -> Option<Journal> {
        let path = self.path(id);
        let read = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()));
        match read {
            Ok(journal) => Some(journal),
            Err(e) => {
                // Left in place: a job whose journal is unreadable must not
                // run again when it is delivered again.
                eprintln!(
                    "warning: job journal {} is unreadable, job left alone: {e}",
                    path.display()
                );
                None
            }
        }
    }

    /// Writes the journal so that a crash leaves the old one or the new.
    fn save(&self, journal: &Journal) -> io::Result<()> {
        save_journal(&self.dir, journal)
    }

    /// Adds a step to the journal, keeps it, and sends what the server has
    /// not acknowledged. A step already reported is not reported again: a
    /// resumed job walks the same steps.
    fn record(&self, journal: &mut Journal, report: StepReport) -> io::Result<()> {
        if !report.step.is_final() && journal.reported(report.step) {
            return Ok(());
        }
        journal.finished |= report.step.is_final();
        journal.reports.push(report);
        self.save(journal)?;
        self.flush(journal);
        Ok(())
    }

    fn step(&self, journal: &mut Journal, step: Step, message: Option<String>) -> io::Result<()> {
        let mut report = StepReport::new(step, (self.clock)());
        report.message = message;
        self.record(journal, report)
    }

    fn fail(&self, journal: &mut Journal, failure: Failure) -> io::Result<()> {
        let mut report = StepReport::new(Step::Failed, (self.clock)());
        report.message = Some(failure.message);
        report.exit_code = failure.exit_code;
        report.output_tail = failure.output_tail;
        self.record(journal, report)
    }

    /// Sends the reports the server has not acknowledged.
    fn flush(&self, journal: &mut Journal) {
        if journal.acknowledged >= journal.reports.len() || !self.server_up.get() {
            return;
        }
        let unsent = &journal.reports[journal.acknowledged..];
        match self.sink.report_steps(&journal.id, unsent) {
            Ok(()) => {}
            // The server read the reports and will never take them (it
            // does not know the job, or finds them invalid): sending them
            // at every check-in forever would help nobody. Kept in the
            // journal all the same.
            Err(ClientError::Refused { status, message })
                if (400..500).contains(&status) && ![401, 403, 408, 429].contains(&status) =>
            {
                eprintln!(
                    "warning: job {}: the server refused its step reports ({status}): {message}",
                    journal.id
                );
            }
            Err(e) => {
                eprintln!(
                    "warning: job {}: step reports not sent, kept for the next check-in: {e}",
                    journal.id
                );
                self.server_up.set(false);
                return;
            }
        }
        journal.acknowledged = journal.reports.len();
        if let Err(e) = self.save(journal) {
            // The reports will be sent again; the server sees them twice.
            eprintln!("warning: job {}: journal not updated: {e}", journal.id);
        }
    }

    /// A job whose id cannot name a file: refused without a journal (it
    /// is refused again if delivered again, which is harmless).
    fn refuse_unjournaled(&self, signed: &SignedJob) -> JobOutcome {
        let why = format!(
            "job id {:?} is not 1 to 128 letters, digits, '.', '_' or '-'",
            signed.id
        );
        let mut report = StepReport::new(Step::Refused, (self.clock)());
        report.message = Some(why.clone());
        if self.server_up.get() {
            if let Err(e) = self.sink.report_steps(&signed.id, &[report]) {
                eprintln!("warning: refusal of a job with a bad id not sent: {e}");
            }
        }
        JobOutcome {
            id: signed.id.clone(),
            state: JobState::Refused(why),
            packages: 0,
            ran_installs: false,
        }
    }

    /// A job delivered for the first time: verified, journaled, run.
    fn start(&self, signed: &SignedJob, enrollment: &Enrollment) -> JobOutcome {
        let opened = match enrollment.job_key.as_deref() {
            None => Err(format!(
                "job {}: this agent has no job key (it enrolled before the server \
                 signed jobs); enroll it again to run jobs",
                signed.id
            )),
            Some(text) => protocol::job::parse_key(text)
                .map_err(|e| {
                    format!(
                        "job {}: the enrollment's job key is unusable: {e}",
                        signed.id
                    )
                })
                .and_then(|key| {
                    signed
                        .open(&key, &enrollment.host_id, (self.clock)())
                        .map_err(|e| e.to_string())
                }),
        };
        match opened {
            Ok(job) => {
                let mut journal = Journal::new(&signed.id, Some(job));
                if let Err(e) = self.save(&journal) {
                    // Nothing ran and nothing is journaled: delivered
                    // again, it is tried again.
                    return JobOutcome {
                        id: signed.id.clone(),
                        state: JobState::Unfinished(format!("journal not written: {e}")),
                        packages: 0,
                        ran_installs: false,
                    };
                }
                self.execute(&mut journal, false)
            }
            Err(why) => {
                let mut journal = Journal::new(&signed.id, None);
                if let Err(e) = self.step(&mut journal, Step::Refused, Some(why.clone())) {
                    eprintln!("warning: job {}: journal not written: {e}", signed.id);
                }
                outcome(&journal, false)
            }
        }
    }

    /// Runs a journaled job from wherever it stands.
    fn execute(&self, journal: &mut Journal, resumed: bool) -> JobOutcome {
        let mut ran_installs = false;
        match self.execute_steps(journal, resumed, &mut ran_installs) {
            Ok(()) => outcome(journal, ran_installs),
            Err(e) => JobOutcome {
                id: journal.id.clone(),
                state: JobState::Unfinished(format!(
                    "stopped, its journal could not be written: {e}"
                )),
                packages: 0,
                ran_installs,
            },
        }
    }

    fn execute_steps(
        &self,
        journal: &mut Journal,
        resumed: bool,
        ran_installs: &mut bool,
    ) -> io::Result<()> {
        let Some(job) = journal.job.clone() else {
            // A refused job's journal is finished when written; one that
            // is not (a crash between the two) is finished now.
            return self.step(journal, Step::Refused, Some("refused".into()));
        };
        let tool = Tool::for_job(job.manager, self.root);
        if resumed && tool == Tool::Apt && dpkg_interrupted(self.root) {
            *ran_installs = true;
            let configure = dpkg_configure_command(job.conffiles);
            if let Err(f) = self.command(&configure, &ENV) {
                return self.fail(journal, f);
            }
        }

        let before = match journal.before.clone() {
            Some(before) => before,
            None => {
                let database = match read_database(job.manager, self.root, self.runner) {
                    Ok(d) => d,
                    Err(why) => {
                        self.step(journal, Step::Received, None)?;
                        return self.fail(journal, Failure::said(why));
                    }
                };
                let (targets, skipped) = match plan(&job, &database) {
                    Ok(p) => p,
                    Err(why) => {
                        self.step(journal, Step::Received, None)?;
                        return self.fail(journal, Failure::said(why));
                    }
                };
                let before = installed_list(&database);
                journal.before = Some(before.clone());
                journal.targets = targets;
                journal.skipped = skipped;
                // Synced before any command of the job runs.
                self.save(journal)?;
                before
            }
        };
        let skipped = (!journal.skipped.is_empty()).then(|| journal.skipped.join("; "));
        self.step(journal, Step::Received, skipped)?;

        // Outside its maintenance windows a job waits for the next one (a
        // job already downloading carries on: it started inside one).
        let now = (self.clock)();
        if !journal.reported(Step::Downloading) && !Span::admits(&job.windows, now) {
            return match Span::next_open(&job.windows, now) {
                Some(opens) if opens < job.not_after => self.step(
                    journal,
                    Step::Waiting,
                    Some(format!(
                        "outside its maintenance window; it starts in the one opening at {opens}"
                    )),
                ),
                _ => self.fail(
                    journal,
                    Failure::said(format!(
                        "no maintenance window of the job opens before it expires at {}",
                        job.not_after
                    )),
                ),
            };
        }

        let database = match read_database(job.manager, self.root, self.runner) {
            Ok(d) => d,
            Err(why) => return self.fail(journal, Failure::said(why)),
        };
        let pending = match pending(&job, &journal.targets, &database) {
            Ok(p) => p,
            Err(why) => return self.fail(journal, Failure::said(why)),
        };

        if !pending.is_empty() {
            // The pre-install hook ran already if downloading was reported.
            if !journal.reported(Step::Downloading) {
                if let Some(hook) = &job.pre_hook {
                    if let Err(f) = self.hook("pre-install hook", hook, &job) {
                        return self.fail(journal, f);
                    }
                }
            }
            if tool == Tool::Apt {
                self.step(journal, Step::Downloading, None)?;
                if let Err(f) = self.command(&apt_download_command(&job, &pending), &ENV) {
                    return self.fail(journal, f);
                }
                if let Err(why) = check_downloads(self.root, &pending) {
                    return self.fail(journal, Failure::said(why));
                }
                self.step(journal, Step::Downloaded, None)?;
                self.step(journal, Step::Installing, None)?;
                *ran_installs = true;
                if let Err(f) = self.command(&apt_install_command(&job, &pending), &ENV) {
                    return self.fail(journal, f);
                }
            } else {
                // dnf, zypper and apk fetch and check each package's
                // signature as they install it: one command does both.
                self.step(
                    journal,
                    Step::Downloading,
                    Some(format!(
                        "{} fetches the packages and checks their signatures as it installs them",
                        tool.name()
                    )),
                )?;
                self.step(journal, Step::Installing, None)?;
                *ran_installs = true;
                let argv = other_manager_command(tool, job.kind, &pending);
                if let Err(f) = self.command(&argv, &ENV) {
                    return self.fail(journal, f);
                }
            }
        }

        let after = match read_database(job.manager, self.root, self.runner) {
            Ok(d) => d,
            Err(why) => return self.fail(journal, Failure::said(why)),
        };
        let mut installed = StepReport::new(Step::Installed, (self.clock)());
        installed.changes = changes(&before, &after);
        self.record(journal, installed)?;

        self.step(journal, Step::Verifying, None)?;
        if let Err(why) = verify(job.manager, &journal.targets, &after) {
            return self.fail(journal, Failure::said(why));
        }
        for (what, hook) in [
            ("post-install hook", &job.post_hook),
            (protocol::job::HEALTH_CHECK, &job.health_check),
        ] {
            if let Some(hook) = hook {
                if let Err(f) = self.hook(what, hook, &job) {
                    return self.fail(journal, f);
                }
            }
        }

        let required = self.root.path(REBOOT_REQUIRED_FILE).exists();
        let wanted = match job.reboot {
            RebootPolicy::Never => false,
            RebootPolicy::IfRequired => required,
            RebootPolicy::Always => true,
        };
        let reboot_message = if !wanted {
            "the host needs a reboot; the job's policy is not to reboot".to_owned()
        } else if !self.root.is_host() {
            format!(
                "not rebooting: the agent works on the system at {}, not on this machine",
                self.root.dir().display()
            )
        } else {
            // The reboot is owed, not made here: `reboot::tick` tells the
            // users, takes their deferrals and reboots inside the window.
            let users = !reboot::logged_in(self.runner).is_empty();
            let pending = reboot::pending_for(&job, (self.clock)(), users);
            let state_dir = self.dir.parent().unwrap_or(&self.dir);
            reboot::save(state_dir, &pending)?;
            format!(
                "reboot owed: {}",
                match reboot::decide(&pending, (self.clock)()) {
                    reboot::Decision::Now => "now".to_owned(),
                    reboot::Decision::Wait { until, why } => format!("at {until} ({why})"),
                    reboot::Decision::NoWindowLeft =>
                        "no maintenance window is left; reboot the host by hand".to_owned(),
                }
            )
        };
        let mut done = Vec::new();
        if required {
            self.step(journal, Step::RebootRequired, Some(reboot_message))?;
        } else if wanted {
            done.push(reboot_message);
        }
        done.extend(journal.skipped.iter().cloned());
        let message = (!done.is_empty()).then(|| done.join("; "));
        self.step(journal, Step::Succeeded, message)
    }

    /// Runs `sh -c script` inside the root.
    fn hook(&self, what: &str, script: &str, job: &Job) -> Result<(), Failure> {
        let argv = ["sh", "-c", script].map(str::to_owned);
        let env = [ENV[0], ENV[1], ("PATCHWELL_JOB_ID", job.id.as_str())];
        self.command(&argv, &env).map_err(|mut f| {
            f.message = format!("{what}: {}", f.message);
            f
        })
    }

    /// Runs `argv` inside the root: directly on `/`, through `chroot`
    /// otherwise.
    fn command(&self, argv: &[String], env: &[(&str, &str)]) -> Result<(), Failure> {
        let shown = argv.join(" ");
        let root_dir = self.root.dir().to_string_lossy();
        let mut all: Vec<&str> = Vec::with_capacity(argv.len() + 2);
        if !self.root.is_host() {
            all.push("chroot");
            all.push(&root_dir);
        }
        all.extend(argv.iter().map(String::as_str));
        let output = self
            .runner
            .run_with_env(all[0], &all[1..], env)
            .map_err(|e| Failure::said(format!("could not run `{shown}`: {e}")))?;
        if output.status.success() {
            return Ok(());
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let how = match output.status.code() {
            Some(code) => format!("exit code {code}"),
            None => format!("{}", output.status),
        };
        let reason = match argv[0].as_str() {
            "apt-get" | "apt" => failure_reason(Tool::Apt, &text),
            "dnf" => failure_reason(Tool::Dnf, &text),
            "zypper" => failure_reason(Tool::Zypper, &text),
            "apk" => failure_reason(Tool::Apk, &text),
            _ => None,
        };
        Err(Failure {
            message: match reason {
                Some(reason) => format!("`{shown}` failed ({how}): {reason}"),
                None => format!("`{shown}` failed ({how})"),
            },
            exit_code: output.status.code(),
            output_tail: Some(tail(&text, TAIL_LINES)),
        })
    }
}

fn outcome(journal: &Journal, ran_installs: bool) -> JobOutcome {
    let last = journal.reports.last();
    let message = || {
        last.and_then(|r| r.message.clone())
            .unwrap_or_else(|| "no reason given".into())
    };
    let state = match last.map(|r| r.step) {
        Some(Step::Succeeded) => JobState::Succeeded,
        Some(Step::Failed) => JobState::Failed(message()),
        Some(Step::Refused) => JobState::Refused(message()),
        Some(Step::Waiting) => JobState::Unfinished(message()),
        _ => JobState::Unfinished("not finished".into()),
    };
    let packages = journal
        .reports
        .iter()
        .find(|r| r.step == Step::Installed)
        .map_or(0, |r| r.changes.len());
    JobOutcome {
        id: journal.id.clone(),
        state,
        packages,
        ran_installs,
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn dpkg_interrupted(root: &Root) -> bool {
    std::fs::read_dir(root.path("/var/lib/dpkg/updates"))
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false)
}

/// The packages of the job's package manager in the root: dpkg's status
/// file, rpm's database (through `rpm -qa`), apk's installed database.
fn read_database(
    manager: Manager,
    root: &Root,
    runner: &dyn CommandRunner,
) -> Result<Database, String> {
    let packages = match manager {
        Manager::Dpkg => {
            let path = root.path(dpkg::STATUS_FILE);
            let file =
                std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let name = path.display().to_string();
            dpkg::parse_status(io::BufReader::new(file), &name)
                .map_err(|e| format!("{name}: {e}"))?
                .0
        }
        Manager::Rpm => {
            let mut warnings = Vec::new();
            let packages = rpm::collect(root, runner, &mut warnings);
            if packages.is_empty() {
                return Err(format!(
                    "no rpm database could be read in {}{}",
                    root.dir().display(),
                    if warnings.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", warnings.join("; "))
                    }
                ));
            }
            packages
        }
        Manager::Apk => {
            let path = root.path(apk::INSTALLED_FILE);
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            apk::parse_installed(&text).0
        }
    };
    Ok(packages
        .into_iter()
        .filter(|p| p.state.is_installed())
        .map(|p| ((p.name, p.arch), (p.version, p.state)))
        .collect())
}

fn installed_list(database: &Database) -> Vec<Installed> {
    database
        .iter()
        .map(|((name, arch), (version, _))| Installed {
            name: name.clone(),
            arch: arch.clone(),
            version: version.clone(),
        })
        .collect()
}

fn compare(
    manager: Manager,
    installed: &str,
    target: &JobPackage,
) -> Result<std::cmp::Ordering, String> {
    let ecosystem = match manager {
        Manager::Dpkg => versions::Ecosystem::Deb,
        Manager::Rpm => versions::Ecosystem::Rpm,
        Manager::Apk => versions::Ecosystem::Apk,
    };
    versions::compare(ecosystem, installed, &target.version)
        .map_err(|e| format!("package {}:{}: {e}", target.name, target.arch))
}

/// Decides, before anything runs, which of the job's packages it moves and
/// which it leaves alone (with a sentence each). An install job only
/// upgrades installed packages; a rollback only moves installed packages.
fn plan(job: &Job, installed: &Database) -> Result<(Vec<JobPackage>, Vec<String>), String> {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    for p in &job.packages {
        let Some((version, _)) = installed.get(&(p.name.clone(), p.arch.clone())) else {
            skipped.push(match job.kind {
                JobKind::Install => format!(
                    "{}:{} is not installed; an install job only upgrades",
                    p.name, p.arch
                ),
                JobKind::Rollback => format!(
                    "{}:{} is not installed; a rollback does not install it",
                    p.name, p.arch
                ),
            });
            continue;
        };
        let order = compare(job.manager, version, p)?;
        match (job.kind, order) {
            (JobKind::Install, std::cmp::Ordering::Less)
            | (JobKind::Rollback, std::cmp::Ordering::Less | std::cmp::Ordering::Greater) => {
                targets.push(p.clone());
            }
            (JobKind::Install, _) => skipped.push(format!(
                "{}:{} is already at {version}, not below {}",
                p.name, p.arch, p.version
            )),
            (JobKind::Rollback, _) => {
                skipped.push(format!("{}:{} is already at {version}", p.name, p.arch));
            }
        }
    }
    Ok((targets, skipped))
}

/// The targets not yet at their version: what a (resumed) job still has to
/// install. An install job never moves a package that is at or above it.
fn pending(
    job: &Job,
    targets: &[JobPackage],
    installed: &Database,
) -> Result<Vec<JobPackage>, String> {
    let mut left = Vec::new();
    for p in targets {
        let done = match installed.get(&(p.name.clone(), p.arch.clone())) {
            None => false,
            Some((version, _)) => match job.kind {
                JobKind::Install => compare(job.manager, version, p)?.is_ge(),
                JobKind::Rollback => compare(job.manager, version, p)?.is_eq(),
            },
        };
        if !done {
            left.push(p.clone());
        }
    }
    Ok(left)
}

/// Every target installed (configured) at exactly its version.
fn verify(manager: Manager, targets: &[JobPackage], installed: &Database) -> Result<(), String> {
    let mut wrong = Vec::new();
    for p in targets {
        match installed.get(&(p.name.clone(), p.arch.clone())) {
            None => wrong.push(format!("{}:{} is not installed", p.name, p.arch)),
            Some((version, state)) => {
                if compare(manager, version, p)?.is_ne() {
                    wrong.push(format!(
                        "{}:{} is at {version}, not {}",
                        p.name, p.arch, p.version
                    ));
                } else if *state != PackageState::Installed {
                    wrong.push(format!(
                        "{}:{} is at {version} but {state:?}, not configured",
                        p.name, p.arch
                    ));
                }
            }
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("after installing, {}", wrong.join("; ")))
    }
}

/// Every package whose version differs from before (or that is new).
fn changes(before: &[Installed], after: &Database) -> Vec<Change> {
    let before: HashMap<(&str, &str), &str> = before
        .iter()
        .map(|p| ((p.name.as_str(), p.arch.as_str()), p.version.as_str()))
        .collect();
    after
        .iter()
        .filter_map(|((name, arch), (version, _))| {
            let from = before.get(&(name.as_str(), arch.as_str())).copied();
            (from != Some(version.as_str())).then(|| Change {
                name: name.clone(),
                arch: arch.clone(),
                from: from.map(str::to_owned),
                to: version.clone(),
            })
        })
        .collect()
}

/// `name=version`, or `name:arch=version` for an architecture other than
/// `all`, so that apt takes exactly that package of exactly that version.
fn apt_spec(p: &JobPackage) -> String {
    if p.arch == "all" || p.arch.is_empty() {
        format!("{}={}", p.name, p.version)
    } else {
        format!("{}:{}={}", p.name, p.arch, p.version)
    }
}

fn apt_direction(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Install => "--only-upgrade",
        JobKind::Rollback => "--allow-downgrades",
    }
}

fn confold_or_confnew(policy: ConffilePolicy) -> &'static str {
    match policy {
        ConffilePolicy::KeepOld => "--force-confold",
        ConffilePolicy::TakeNew => "--force-confnew",
    }
}

/// `apt-get install --download-only` of exactly these versions. It names
/// the same options as the install, so that apt resolves the same set (a
/// rollback's downgrade is refused without `--allow-downgrades` even when
/// only downloading).
pub fn apt_download_command(job: &Job, packages: &[JobPackage]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "apt-get",
        "install",
        "--download-only",
        "-y",
        "-q",
        "--no-install-recommends",
        apt_direction(job.kind),
    ]
    .map(str::to_owned)
    .to_vec();
    argv.extend(packages.iter().map(apt_spec));
    argv
}

/// `apt-get install` of exactly these versions: configuration files kept
/// (or replaced) without a question, only upgrades for an install job,
/// downgrades allowed for a rollback.
pub fn apt_install_command(job: &Job, packages: &[JobPackage]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
    ]
    .map(str::to_owned)
    .to_vec();
    argv.push(format!(
        "Dpkg::Options::={}",
        confold_or_confnew(job.conffiles)
    ));
    argv.push(apt_direction(job.kind).to_owned());
    argv.extend(packages.iter().map(apt_spec));
    argv
}

/// Finishing what an interrupted dpkg left half done.
pub fn dpkg_configure_command(conffiles: ConffilePolicy) -> Vec<String> {
    vec![
        "dpkg".into(),
        "--configure".into(),
        "-a".into(),
        "--force-confdef".into(),
        confold_or_confnew(conffiles).into(),
    ]
}

/// The file name apt gives a downloaded package: `name_version_arch.deb`,
/// the epoch's colon written `%3a`.
pub fn archive_file_name(p: &JobPackage) -> String {
    format!(
        "{}_{}_{}.deb",
        p.name,
        p.version.replace(':', "%3a"),
        p.arch
    )
}

/// Checks each downloaded package against the SHA256 that the root's apt
/// lists (signed, and verified by apt when fetched) give for that exact
/// package, version and architecture.
pub fn check_downloads(root: &Root, packages: &[JobPackage]) -> Result<(), String> {
    let dir = root.path(apt::LISTS_DIR);
    let lists = apt::lists(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let names: HashSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let wanted: HashSet<(&str, &str, &str)> = packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.arch.as_str()))
        .collect();
    let mut sums: HashMap<(String, String, String), HashSet<String>> = HashMap::new();
    for list in &lists.packages {
        let reader = apt::open_list(list).map_err(|e| format!("{}: {e}", list.display()))?;
        crate::deb822::scan(
            reader,
            ["Package", "Version", "Architecture", "SHA256"],
            |name| names.contains(name),
            |[name, version, arch, sum]| {
                let (Some(name), Some(version), Some(arch), Some(sum)) = (name, version, arch, sum)
                else {
                    return;
                };
                if wanted.contains(&(name, version, arch)) {
                    sums.entry((name.to_owned(), version.to_owned(), arch.to_owned()))
                        .or_default()
                        .insert(sum.to_ascii_lowercase());
                }
            },
        )
        .map_err(|e| format!("{}: {e}", list.display()))?;
    }
    for p in packages {
        let key = (p.name.clone(), p.version.clone(), p.arch.clone());
        let Some(expected) = sums.get(&key) else {
            return Err(format!(
                "no apt list offers {} {} ({}) with a SHA256; is `apt-get update` current?",
                p.name, p.version, p.arch
            ));
        };
        let file = root.path(ARCHIVES_DIR).join(archive_file_name(p));
        let actual = sha256_file(&file).map_err(|e| {
            format!(
                "downloaded {} {} ({}) is missing or unreadable: {}: {e}",
                p.name,
                p.version,
                p.arch,
                file.display()
            )
        })?;
        if !expected.contains(&actual) {
            let mut expected: Vec<&String> = expected.iter().collect();
            expected.sort();
            return Err(format!(
                "{} has SHA256 {actual}, but the apt lists give {} for {} {} ({})",
                file.display(),
                expected
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                p.name,
                p.version,
                p.arch
            ));
        }
    }
    Ok(())
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = sha2::Sha256::new();
    io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The package tools whose failures are read into a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `apt-get`.
    Apt,
    /// `dnf` (Fedora, RHEL and its rebuilds).
    Dnf,
    /// `zypper` (SUSE).
    Zypper,
    /// `apk` (Alpine).
    Apk,
}

impl Tool {
    /// The tool that runs a job for `manager` in `root`: zypper where the
    /// root has it (SUSE), dnf for other rpm systems.
    pub fn for_job(manager: Manager, root: &Root) -> Tool {
        match manager {
            Manager::Dpkg => Tool::Apt,
            Manager::Apk => Tool::Apk,
            Manager::Rpm if root.path("/usr/bin/zypper").exists() => Tool::Zypper,
            Manager::Rpm => Tool::Dnf,
        }
    }

    /// Its command's name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Apt => "apt-get",
            Tool::Dnf => "dnf",
            Tool::Zypper => "zypper",
            Tool::Apk => "apk",
        }
    }
}

/// The command that moves packages to exactly these versions with an
/// RPM-family or Alpine tool.
pub fn other_manager_command(tool: Tool, kind: JobKind, packages: &[JobPackage]) -> Vec<String> {
    let mut argv: Vec<String> = match (tool, kind) {
        (Tool::Apt, _) => {
            // apt has its own builders, with the job's policies.
            return Vec::new();
        }
        (Tool::Dnf, JobKind::Install) => vec!["dnf".into(), "install".into(), "-y".into()],
        (Tool::Dnf, JobKind::Rollback) => vec!["dnf".into(), "downgrade".into(), "-y".into()],
        (Tool::Zypper, JobKind::Install) => {
            vec![
                "zypper".into(),
                "--non-interactive".into(),
                "install".into(),
            ]
        }
        (Tool::Zypper, JobKind::Rollback) => vec![
            "zypper".into(),
            "--non-interactive".into(),
            "install".into(),
            "--oldpackage".into(),
        ],
        (Tool::Apk, _) => vec!["apk".into(), "add".into()],
    };
    argv.extend(packages.iter().map(|p| match tool {
        // dnf takes a full NEVRA: name-[epoch:]version-release.arch.
        Tool::Dnf => format!("{}-{}.{}", p.name, p.version, p.arch),
        Tool::Zypper | Tool::Apk | Tool::Apt => format!("{}={}", p.name, p.version),
    }));
    argv
}

/// A one-line reason from a package tool's failure output (stdout and
/// stderr together), when one can be read.
pub fn failure_reason(tool: Tool, output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().map(str::trim_end).collect();
    match tool {
        // `E: Version '9.9' for 'hello' was not found`: the first error is
        // the cause; later ones (`E: Sub-process ... returned an error
        // code`) are its consequences.
        Tool::Apt => lines
            .iter()
            .find_map(|l| l.strip_prefix("E: "))
            .map(str::to_owned),
        Tool::Dnf => {
            let i = lines.iter().position(|l| l.starts_with("Error:"))?;
            let rest = lines[i].trim_start_matches("Error:").trim();
            if !rest.is_empty() {
                return Some(rest.to_owned());
            }
            // `Error:` alone, then ` Problem: ...` on the next lines.
            lines[i + 1..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.is_empty())
                .map(str::to_owned)
        }
        Tool::Zypper => lines
            .iter()
            .map(|l| l.trim())
            .find(|l| {
                l.starts_with("No provider of")
                    || l.starts_with("Problem:")
                    || l.starts_with("Problem retrieving")
                    || l.starts_with("ERROR:")
                    || l.starts_with("Error:")
            })
            .map(str::to_owned),
        Tool::Apk => {
            let i = lines.iter().position(|l| l.starts_with("ERROR: "))?;
            let first = lines[i].trim_start_matches("ERROR: ").trim();
            // `ERROR: unable to select packages:` names them on the next line.
            match (first.ends_with(':'), lines.get(i + 1)) {
                (true, Some(next)) if !next.trim().is_empty() => {
                    Some(format!("{first} {}", next.trim().trim_end_matches(':')))
                }
                _ => Some(first.to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::{ExitStatus, Output};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ed25519_dalek::SigningKey;
    use protocol::job::{key_text, JOB_SCHEMA};

    use super::*;

    const HOST: &str = "h1";

    /// The steps of a job that succeeds without a reboot, in order.
    const EVERY_STEP: [Step; 7] = [
        Step::Received,
        Step::Downloading,
        Step::Downloaded,
        Step::Installing,
        Step::Installed,
        Step::Verifying,
        Step::Succeeded,
    ];

    /// A directory that is removed when the test ends.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "patchwell-jobs-{name}-{}-{}",
                std::process::id(),
                COUNT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn enrollment() -> Enrollment {
        Enrollment {
            server: "https://patchwell.example".into(),
            host_id: HOST.into(),
            credential: "h1.secret".into(),
            ca_cert: None,
            job_key: Some(key_text(&key().verifying_key())),
        }
    }

    fn pkg(name: &str, arch: &str, version: &str) -> JobPackage {
        JobPackage {
            name: name.into(),
            arch: arch.into(),
            version: version.into(),
        }
    }

    fn job(id: &str, kind: JobKind, packages: Vec<JobPackage>) -> Job {
        Job {
            schema: JOB_SCHEMA,
            id: id.into(),
            host_id: HOST.into(),
            rollout: "openssl-2026-11".into(),
            generation: 1,
            kind,
            manager: Manager::Dpkg,
            packages,
            conffiles: ConffilePolicy::KeepOld,
            reboot: RebootPolicy::Never,
            reboot_deferral: None,
            windows: Vec::new(),
            pre_hook: None,
            post_hook: None,
            health_check: None,
            issued_at: "2026-11-02T00:00:00Z".parse().unwrap(),
            not_after: "2026-11-09T00:00:00Z".parse().unwrap(),
        }
    }

    /// The three packages of the install job, before and after.
    const OLD: [(&str, &str, &str); 3] = [
        ("libssl3", "amd64", "3.0.11-1~deb12u2"),
        ("openssl", "amd64", "3.0.11-1~deb12u2"),
        ("vim-common", "all", "2:9.0.1378-2"),
    ];
    const NEW: [(&str, &str, &str); 3] = [
        ("libssl3", "amd64", "3.0.15-1~deb12u1"),
        ("openssl", "amd64", "3.0.15-1~deb12u1"),
        ("vim-common", "all", "2:9.0.1378-2+deb12u2"),
    ];

    fn packages(of: &[(&str, &str, &str)]) -> Vec<JobPackage> {
        of.iter().map(|(n, a, v)| pkg(n, a, v)).collect()
    }

    /// A dpkg status file in dpkg's own format, with one package that
    /// stays as it is and one removed but configured.
    fn write_status(root: &Path, installed: &BTreeMap<(String, String), String>) {
        let mut text = String::from(
            "Package: base-files\nStatus: install ok installed\nPriority: required\n\
             Architecture: amd64\nVersion: 12.4+deb12u8\nDescription: Debian base system\n \
             miscellaneous files\n\n\
             Package: cron\nStatus: deinstall ok config-files\nArchitecture: amd64\n\
             Version: 3.0pl1-162\n\n",
        );
        for ((name, arch), version) in installed {
            text.push_str(&format!(
                "Package: {name}\nStatus: install ok installed\nPriority: optional\n\
                 Section: libs\nInstalled-Size: 100\nMaintainer: Debian <d@example.org>\n\
                 Architecture: {arch}\nMulti-Arch: same\nVersion: {version}\n\
                 Description: {name}\n a package\n\n"
            ));
        }
        let dir = root.join("var/lib/dpkg");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("status"), text).unwrap();
    }

    /// What apt would download for a package: any bytes will do, as long
    /// as the lists give their SHA256.
    fn deb_bytes(name: &str, version: &str, arch: &str) -> Vec<u8> {
        format!("!<arch>\ndebian-binary {name} {version} {arch}\n").into_bytes()
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A root with a dpkg database at `installed` and apt lists offering
    /// both the old and the new versions.
    fn make_root(dir: &Path, installed: &[(&str, &str, &str)]) -> Root {
        let map = installed
            .iter()
            .map(|(n, a, v)| ((n.to_string(), a.to_string()), v.to_string()))
            .collect();
        write_status(dir, &map);
        let lists = dir.join("var/lib/apt/lists");
        std::fs::create_dir_all(&lists).unwrap();
        std::fs::create_dir_all(dir.join("var/cache/apt/archives/partial")).unwrap();
        let mut text = String::new();
        for (name, arch, version) in OLD.iter().chain(NEW.iter()) {
            text.push_str(&format!(
                "Package: {name}\nVersion: {version}\nInstalled-Size: 100\n\
                 Maintainer: Debian <d@example.org>\nArchitecture: {arch}\n\
                 Description: {name}\nFilename: pool/main/{name}_{version}_{arch}.deb\n\
                 Size: 42\nMD5sum: 00000000000000000000000000000000\nSHA256: {}\n\n",
                sha256_hex(&deb_bytes(name, version, arch))
            ));
        }
        std::fs::write(
            lists.join("mirror.example_debian_dists_bookworm_main_binary-amd64_Packages"),
            text,
        )
        .unwrap();
        std::fs::write(
            lists.join("mirror.example_debian_dists_bookworm_InRelease"),
            "Origin: Debian\nCodename: bookworm\n",
        )
        .unwrap();
        Root::new(dir)
    }

    /// A command as the fake runner saw it: the program and its arguments
    /// in one list, and the environment given.
    type Seen = (Vec<String>, Vec<(String, String)>);

    /// Stands in for chroot, apt-get and dpkg: records each command, and
    /// does to the root what apt would (downloads files, moves versions in
    /// the dpkg database), or fails as told.
    #[derive(Debug, Default)]
    struct FakeApt {
        root: PathBuf,
        seen: RefCell<Vec<Seen>>,
        /// The install fails with this exit code and output.
        fail_install: Option<(i32, String)>,
        /// These packages are downloaded with other bytes than the lists say.
        corrupt: Vec<String>,
        /// A journal to look at when apt-get installs: was `before` in it?
        journal: Option<PathBuf>,
        before_was_synced: RefCell<Option<bool>>,
    }

    impl FakeApt {
        fn new(root: &Path) -> FakeApt {
            FakeApt {
                root: root.to_owned(),
                ..FakeApt::default()
            }
        }

        fn commands(&self) -> Vec<String> {
            self.seen
                .borrow()
                .iter()
                .map(|(a, _)| a.join(" "))
                .collect()
        }

        fn installs(&self) -> usize {
            self.commands()
                .iter()
                .filter(|c| c.contains("apt-get install") && !c.contains("--download-only"))
                .count()
        }

        fn database(&self) -> BTreeMap<(String, String), String> {
            read_database(Manager::Dpkg, &Root::new(&self.root), &crate::SystemRunner)
                .unwrap()
                .into_iter()
                .filter(|((name, _), _)| name != "base-files")
                .map(|(k, (v, _))| (k, v))
                .collect()
        }

        fn specs(args: &[&str]) -> Vec<(String, String, String)> {
            args.iter()
                .filter(|a| !a.starts_with('-') && !a.starts_with("Dpkg::") && a.contains('='))
                .map(|spec| {
                    let (what, version) = spec.split_once('=').unwrap();
                    let (name, arch) = what.split_once(':').unwrap_or((what, "all"));
                    (name.to_owned(), arch.to_owned(), version.to_owned())
                })
                .collect()
        }
    }

    fn exit(code: i32, output: &str) -> Output {
        Output {
            status: ExitStatus::from_raw(code << 8),
            stdout: output.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    impl CommandRunner for FakeApt {
        fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
            self.run_with_env(program, args, &[])
        }

        fn run_with_env(
            &self,
            program: &str,
            args: &[&str],
            env: &[(&str, &str)],
        ) -> io::Result<Output> {
            let mut argv = vec![program.to_owned()];
            argv.extend(args.iter().map(|a| a.to_string()));
            self.seen.borrow_mut().push((
                argv,
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ));
            // Inside the root, as the agent asks.
            let args = match (program, args) {
                ("chroot", [dir, rest @ ..]) if Path::new(dir) == self.root => rest,
                _ => return Ok(exit(127, "fake: not run in the root\n")),
            };
            if args.first() != Some(&"apt-get") {
                return Ok(exit(0, ""));
            }
            let archives = self.root.join("var/cache/apt/archives");
            if args.contains(&"--download-only") {
                for (name, arch, version) in Self::specs(args) {
                    let mut bytes = deb_bytes(&name, &version, &arch);
                    if self.corrupt.contains(&name) {
                        bytes.push(b'!');
                    }
                    let file = format!("{name}_{}_{arch}.deb", version.replace(':', "%3a"));
                    std::fs::write(archives.join(file), bytes).unwrap();
                }
                return Ok(exit(0, "Download complete and in download only mode\n"));
            }
            if let Some(journal) = &self.journal {
                let text = std::fs::read_to_string(journal).unwrap();
                let journal: Journal = serde_json::from_str(&text).unwrap();
                *self.before_was_synced.borrow_mut() = Some(journal.before.is_some());
            }
            if let Some((code, output)) = &self.fail_install {
                return Ok(exit(*code, output));
            }
            let mut database = self.database();
            for (name, arch, version) in Self::specs(args) {
                database.insert((name, arch), version);
            }
            write_status(&self.root, &database);
            Ok(exit(0, "Setting up ...\n"))
        }
    }

    /// Stands in for the server: keeps what it was sent, or fails.
    #[derive(Debug, Default)]
    struct FakeServer {
        got: RefCell<Vec<(String, Vec<StepReport>)>>,
        down: Cell<bool>,
    }

    impl FakeServer {
        fn steps(&self, id: &str) -> Vec<Step> {
            self.got
                .borrow()
                .iter()
                .filter(|(j, _)| j == id)
                .flat_map(|(_, r)| r.iter().map(|r| r.step))
                .collect()
        }
    }

    impl StepSink for FakeServer {
        fn report_steps(&self, job_id: &str, steps: &[StepReport]) -> Result<(), ClientError> {
            if self.down.get() {
                return Err(ClientError::Unreachable {
                    server: "patchwell.example".into(),
                    why: "connection refused".into(),
                });
            }
            self.got
                .borrow_mut()
                .push((job_id.to_owned(), steps.to_vec()));
            Ok(())
        }
    }

    /// A clock that moves one second at each reading.
    fn clock() -> impl Fn() -> Timestamp {
        let tick = Cell::new(0);
        move || {
            tick.set(tick.get() + 1);
            Timestamp::from_second(1_793_750_400 + tick.get()).unwrap()
        }
    }

    struct Setup {
        _dir: TempDir,
        state: PathBuf,
        root: Root,
        apt: FakeApt,
        server: FakeServer,
    }

    fn setup(name: &str, installed: &[(&str, &str, &str)]) -> Setup {
        let dir = TempDir::new(name);
        let state = dir.0.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let root = make_root(&dir.0.join("root"), installed);
        let apt = FakeApt::new(root.dir());
        Setup {
            _dir: dir,
            state,
            root,
            apt,
            server: FakeServer::default(),
        }
    }

    impl Setup {
        fn run(&self, delivered: &[SignedJob]) -> Vec<JobOutcome> {
            self.run_with(&self.apt, delivered)
        }

        /// As [`Self::run`], with another runner.
        fn run_with(&self, runner: &dyn CommandRunner, delivered: &[SignedJob]) -> Vec<JobOutcome> {
            run_jobs(
                &self.server,
                &self.state,
                &self.root,
                runner,
                &enrollment(),
                delivered,
                &clock(),
            )
            .unwrap()
        }

        fn journal(&self, id: &str) -> Journal {
            load_journal(&self.state, id).unwrap()
        }

        fn in_root(&self, command: &str) -> String {
            format!("chroot {} {command}", self.root.dir().display())
        }
    }

    fn installed_now(setup: &Setup) -> Vec<(String, String, String)> {
        setup
            .apt
            .database()
            .into_iter()
            .map(|((n, a), v)| (n, a, v))
            .collect()
    }

    fn triples(of: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        let mut all: Vec<_> = of
            .iter()
            .map(|(n, a, v)| (n.to_string(), a.to_string(), v.to_string()))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn a_verified_install_job_installs_exact_versions_and_reports_each_step() {
        let mut s = setup("install", &OLD);
        s.apt.journal = Some(s.state.join("jobs/j1.json"));
        let mut wanted = packages(&NEW);
        wanted.push(pkg("curl", "amd64", "7.88.1-10+deb12u8"));
        let signed = job("j1", JobKind::Install, wanted).sign(&key());

        let outcomes = s.run(&[signed]);

        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].to_string(), "job j1: succeeded (3 packages)");
        assert!(outcomes[0].ran_installs);
        let specs = "libssl3:amd64=3.0.15-1~deb12u1 openssl:amd64=3.0.15-1~deb12u1 \
                     vim-common=2:9.0.1378-2+deb12u2";
        assert_eq!(
            s.apt.commands(),
            [
                s.in_root(&format!(
                    "apt-get install --download-only -y -q --no-install-recommends \
                     --only-upgrade {specs}"
                )),
                s.in_root(&format!(
                    "apt-get install -y -q --no-install-recommends \
                     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                     --only-upgrade {specs}"
                )),
            ]
        );
        for (_, env) in s.apt.seen.borrow().iter() {
            assert!(env.contains(&("DEBIAN_FRONTEND".into(), "noninteractive".into())));
            assert!(env.contains(&("LC_ALL".into(), "C".into())));
        }
        // The versions before were on disk before apt-get installed.
        assert_eq!(*s.apt.before_was_synced.borrow(), Some(true));
        assert_eq!(installed_now(&s), triples(&NEW));

        let journal = s.journal("j1");
        let steps: Vec<Step> = journal.reports.iter().map(|r| r.step).collect();
        assert_eq!(steps, EVERY_STEP);
        assert!(journal.reports.windows(2).all(|w| w[0].at < w[1].at));
        assert!(journal.finished);
        assert_eq!(journal.acknowledged, journal.reports.len());
        // The server got every step, in order.
        assert_eq!(s.server.steps("j1"), steps);
        assert_eq!(
            journal.reports[0].message.as_deref(),
            Some("curl:amd64 is not installed; an install job only upgrades")
        );
        let installed = &journal.reports[4];
        let changes: Vec<(&str, Option<&str>, &str)> = installed
            .changes
            .iter()
            .map(|c| (c.name.as_str(), c.from.as_deref(), c.to.as_str()))
            .collect();
        assert_eq!(
            changes,
            [
                ("libssl3", Some("3.0.11-1~deb12u2"), "3.0.15-1~deb12u1"),
                ("openssl", Some("3.0.11-1~deb12u2"), "3.0.15-1~deb12u1"),
                ("vim-common", Some("2:9.0.1378-2"), "2:9.0.1378-2+deb12u2"),
            ]
        );
    }

    #[test]
    fn altered_jobs_and_other_hosts_jobs_are_refused_without_running_anything() {
        let s = setup("refused", &OLD);
        let mut altered = job("j-altered", JobKind::Install, packages(&NEW)).sign(&key());
        altered.body = altered.body.replace("3.0.15-1~deb12u1", "3.0.99-1");
        let mut elsewhere = job("j-elsewhere", JobKind::Install, packages(&NEW));
        elsewhere.host_id = "h2".into();
        let elsewhere = elsewhere.sign(&key());
        let bad_id = SignedJob {
            id: "../../etc/passwd".into(),
            ..job("x", JobKind::Install, vec![]).sign(&key())
        };

        let outcomes = s.run(&[altered, elsewhere, bad_id]);

        assert!(s.apt.commands().is_empty(), "{:?}", s.apt.commands());
        assert_eq!(installed_now(&s), triples(&OLD));
        let refusal = |id: &str| {
            let got = s.server.got.borrow();
            let (_, reports) = got.iter().find(|(j, _)| j == id).unwrap();
            assert_eq!(reports.len(), 1);
            assert_eq!(reports[0].step, Step::Refused);
            reports[0].message.clone().unwrap()
        };
        assert!(refusal("j-altered").contains("altered"));
        assert_eq!(
            refusal("j-elsewhere"),
            "job j-elsewhere is for host h2, not this one"
        );
        assert!(refusal("../../etc/passwd").contains("is not 1 to 128 letters"));
        assert!(s.journal("j-altered").finished);
        assert!(matches!(&outcomes[1].state, JobState::Refused(why) if why.contains("h2")));
        // Nothing was written outside the journal directory.
        assert!(!s.state.join("etc").exists());
        assert_eq!(
            outcomes[0].to_string(),
            format!("job j-altered: refused: {}", refusal("j-altered"))
        );
    }

    #[test]
    fn an_agent_without_a_job_key_refuses_and_says_to_enroll_again() {
        let s = setup("nokey", &OLD);
        let signed = job("j1", JobKind::Install, packages(&NEW)).sign(&key());
        let mut old = enrollment();
        old.job_key = None;
        run_jobs(
            &s.server,
            &s.state,
            &s.root,
            &s.apt,
            &old,
            &[signed],
            &clock(),
        )
        .unwrap();
        assert!(s.apt.commands().is_empty());
        let message = s.journal("j1").reports[0].message.clone().unwrap();
        assert!(message.contains("enroll it again"), "{message}");
    }

    #[test]
    fn a_job_delivered_twice_installs_once() {
        let s = setup("twice", &OLD);
        let signed = job("j1", JobKind::Install, packages(&NEW)).sign(&key());

        s.run(&[signed.clone(), signed.clone()]);
        let again = s.run(&[signed]);

        assert_eq!(s.apt.installs(), 1);
        assert!(again.is_empty());
        assert_eq!(s.server.steps("j1").len(), 7, "{:?}", s.server.steps("j1"));
    }

    #[test]
    fn a_job_interrupted_while_installing_resumes_without_installing_again() {
        let s = setup("resume", &NEW);
        // The journal as a crash left it: apt-get had installed everything,
        // the agent died before it could say so. dpkg was interrupted too.
        let the_job = job("j1", JobKind::Install, packages(&NEW));
        let at = |n| Timestamp::from_second(1_793_000_000 + n).unwrap();
        let journal = Journal {
            id: "j1".into(),
            job: Some(the_job.clone()),
            before: Some(
                OLD.iter()
                    .chain(&[("base-files", "amd64", "12.4+deb12u8")])
                    .map(|(n, a, v)| Installed {
                        name: n.to_string(),
                        arch: a.to_string(),
                        version: v.to_string(),
                    })
                    .collect(),
            ),
            targets: packages(&NEW),
            skipped: vec![],
            reports: [
                Step::Received,
                Step::Downloading,
                Step::Downloaded,
                Step::Installing,
            ]
            .into_iter()
            .enumerate()
            .map(|(i, step)| StepReport::new(step, at(i as i64)))
            .collect(),
            acknowledged: 3,
            finished: false,
        };
        std::fs::create_dir_all(s.state.join("jobs")).unwrap();
        std::fs::write(
            s.state.join("jobs/j1.json"),
            serde_json::to_string(&journal).unwrap(),
        )
        .unwrap();
        let updates = s.root.path("/var/lib/dpkg/updates");
        std::fs::create_dir_all(&updates).unwrap();
        std::fs::write(updates.join("0000"), "").unwrap();

        // Delivered again, as the server does until it hears `received`.
        let outcomes = s.run(&[the_job.sign(&key())]);

        assert_eq!(
            s.apt.commands(),
            [s.in_root("dpkg --configure -a --force-confdef --force-confold")]
        );
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].state, JobState::Succeeded);
        let journal = s.journal("j1");
        let steps: Vec<Step> = journal.reports.iter().map(|r| r.step).collect();
        assert_eq!(steps, EVERY_STEP);
        // The unacknowledged `installing` went with the new steps.
        assert_eq!(s.server.steps("j1"), steps[3..]);
        assert_eq!(journal.reports[4].changes.len(), 3);
        assert_eq!(
            journal.reports[4].changes[0].from.as_deref(),
            Some("3.0.11-1~deb12u2")
        );
    }

    #[test]
    fn a_failing_install_reports_its_exit_code_and_the_end_of_its_output() {
        let mut s = setup("fail", &OLD);
        let mut output: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        output.push_str("E: Sub-process /usr/bin/dpkg returned an error code (1)\n");
        s.apt.fail_install = Some((100, output));
        let signed = job("j1", JobKind::Install, packages(&NEW)).sign(&key());

        let outcomes = s.run(&[signed]);

        let journal = s.journal("j1");
        let last = journal.reports.last().unwrap();
        assert_eq!(last.step, Step::Failed);
        assert_eq!(last.exit_code, Some(100));
        let tail = last.output_tail.as_deref().unwrap();
        assert_eq!(tail.lines().count(), 20);
        assert!(tail.starts_with("line 12\n"), "{tail}");
        assert!(tail.ends_with("returned an error code (1)"), "{tail}");
        let message = last.message.as_deref().unwrap();
        assert!(message.starts_with("`apt-get install -y"), "{message}");
        assert!(
            message
                .ends_with("(exit code 100): Sub-process /usr/bin/dpkg returned an error code (1)"),
            "{message}"
        );
        assert!(journal.finished);
        assert_eq!(
            outcomes[0].to_string(),
            format!("job j1: failed: {message}")
        );
        assert_eq!(s.server.steps("j1").last(), Some(&Step::Failed));
    }

    #[test]
    fn a_download_that_differs_from_the_lists_fails_before_installing() {
        let mut s = setup("sha", &OLD);
        s.apt.corrupt = vec!["vim-common".into()];
        let signed = job("j1", JobKind::Install, packages(&NEW)).sign(&key());

        s.run(&[signed]);

        assert_eq!(s.apt.installs(), 0);
        assert_eq!(installed_now(&s), triples(&OLD));
        let journal = s.journal("j1");
        let steps: Vec<Step> = journal.reports.iter().map(|r| r.step).collect();
        assert_eq!(steps, [Step::Received, Step::Downloading, Step::Failed]);
        let message = journal.reports[2].message.as_deref().unwrap();
        assert!(
            message.contains("vim-common_2%3a9.0.1378-2+deb12u2_all.deb has SHA256"),
            "{message}"
        );
        assert!(message.contains("but the apt lists give"), "{message}");
    }

    #[test]
    fn a_missing_download_fails_too() {
        let s = setup("missing", &OLD);
        // Asked for a version no list has: nothing to compare with.
        let signed = job(
            "j1",
            JobKind::Install,
            vec![pkg("libssl3", "amd64", "3.0.16-1~deb12u1")],
        )
        .sign(&key());
        s.run(&[signed]);
        let last = s.journal("j1").reports.pop().unwrap();
        assert_eq!(last.step, Step::Failed);
        assert!(last.message.unwrap().contains("no apt list offers libssl3"));
        assert_eq!(s.apt.installs(), 0);
    }

    #[test]
    fn a_rollback_downgrades_to_the_listed_versions() {
        let s = setup("rollback", &NEW);
        let signed = job("j1", JobKind::Rollback, packages(&OLD)).sign(&key());

        let outcomes = s.run(&[signed]);

        assert_eq!(outcomes[0].to_string(), "job j1: succeeded (3 packages)");
        let install = s.apt.commands().pop().unwrap();
        assert_eq!(
            install,
            s.in_root(
                "apt-get install -y -q --no-install-recommends \
                 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                 --allow-downgrades libssl3:amd64=3.0.11-1~deb12u2 \
                 openssl:amd64=3.0.11-1~deb12u2 vim-common=2:9.0.1378-2"
            )
        );
        assert!(s.apt.commands()[0]
            .contains("--download-only -y -q --no-install-recommends --allow-downgrades"));
        assert_eq!(installed_now(&s), triples(&OLD));
        let journal = s.journal("j1");
        let changes = &journal.reports[4].changes;
        assert_eq!(changes[0].from.as_deref(), Some("3.0.15-1~deb12u1"));
        assert_eq!(changes[0].to, "3.0.11-1~deb12u2");
    }

    #[test]
    fn reports_that_cannot_be_sent_are_sent_at_the_next_check_in() {
        let s = setup("offline", &OLD);
        s.server.down.set(true);
        let signed = job("j1", JobKind::Install, packages(&NEW)).sign(&key());

        let outcomes = s.run(&[signed]);
        assert_eq!(outcomes[0].state, JobState::Succeeded);
        assert_eq!(s.journal("j1").acknowledged, 0);
        assert!(s.server.got.borrow().is_empty());

        s.server.down.set(false);
        let outcomes = s.run(&[]);
        assert!(outcomes.is_empty());
        assert_eq!(
            s.server.got.borrow().len(),
            1,
            "one request with every step"
        );
        assert_eq!(s.server.steps("j1").len(), 7);
        assert_eq!(s.journal("j1").acknowledged, 7);
        assert_eq!(s.apt.installs(), 1);
    }

    /// An rpm or apk system: `rpm -qa` and apk's database tell what it has;
    /// `dnf`, `zypper` and `apk` move it, or fail with output written after
    /// their messages.
    #[derive(Debug)]
    struct FakeOther {
        root: PathBuf,
        manager: Manager,
        /// name -> (version, arch)
        db: RefCell<BTreeMap<String, (String, String)>>,
        fail: Option<(i32, &'static str)>,
        seen: RefCell<Vec<String>>,
    }

    impl FakeOther {
        fn new(root: &Path, manager: Manager, packages: &[(&str, &str, &str)]) -> FakeOther {
            let fake = FakeOther {
                root: root.to_owned(),
                manager,
                db: RefCell::new(
                    packages
                        .iter()
                        .map(|(n, a, v)| (n.to_string(), (v.to_string(), a.to_string())))
                        .collect(),
                ),
                fail: None,
                seen: RefCell::new(Vec::new()),
            };
            fake.write();
            fake
        }

        /// apk's database is a file the agent reads; rpm's is behind `rpm`.
        fn write(&self) {
            let db = self.root.join("lib/apk/db");
            let rpmdb = self.root.join("var/lib/rpm");
            std::fs::create_dir_all(&db).unwrap();
            std::fs::create_dir_all(&rpmdb).unwrap();
            if self.manager == Manager::Apk {
                let text: String = self
                    .db
                    .borrow()
                    .iter()
                    .map(|(n, (v, a))| format!("P:{n}\nV:{v}\nA:{a}\n\n"))
                    .collect();
                std::fs::write(db.join("installed"), text).unwrap();
            } else {
                std::fs::write(rpmdb.join("rpmdb.sqlite"), "x").unwrap();
            }
        }
    }

    impl CommandRunner for FakeOther {
        fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
            self.run_with_env(program, args, &[])
        }

        fn run_with_env(
            &self,
            program: &str,
            args: &[&str],
            _env: &[(&str, &str)],
        ) -> io::Result<Output> {
            let all: Vec<&str> = std::iter::once(program)
                .chain(args.iter().copied())
                .collect();
            self.seen.borrow_mut().push(all.join(" "));
            if all[0] == "rpm" {
                let out: String = self
                    .db
                    .borrow()
                    .iter()
                    .map(|(n, (v, a))| {
                        let (ver, rel) = v.rsplit_once('-').unwrap();
                        let (epoch, ver) = ver.split_once(':').unwrap_or(("0", ver));
                        format!("{n}\t{epoch}\t{ver}\t{rel}\t{a}\t{n}-{ver}-{rel}.src.rpm\n")
                    })
                    .collect();
                return Ok(exit(0, &out));
            }
            let [chroot, dir, tool, rest @ ..] = all.as_slice() else {
                return Ok(exit(127, "fake: unexpected command\n"));
            };
            assert_eq!((*chroot, Path::new(dir)), ("chroot", self.root.as_path()));
            if let Some((code, output)) = self.fail {
                return Ok(exit(code, output));
            }
            let specs = rest
                .iter()
                .filter(|a| !a.starts_with('-') && !["install", "add", "downgrade"].contains(a));
            for spec in specs {
                let mut db = self.db.borrow_mut();
                let name = db
                    .keys()
                    .find(|n| {
                        spec.starts_with(&format!("{n}-")) || spec.starts_with(&format!("{n}="))
                    })
                    .cloned()
                    .unwrap();
                let version = match *tool {
                    // name-[epoch:]version-release.arch
                    "dnf" => {
                        let arch = &db[&name].1;
                        spec[name.len() + 1..]
                            .strip_suffix(&format!(".{arch}"))
                            .unwrap()
                            .to_owned()
                    }
                    _ => spec[name.len() + 1..].to_owned(),
                };
                db.get_mut(&name).unwrap().0 = version;
            }
            self.write();
            Ok(exit(0, "Complete!\n"))
        }
    }

    #[test]
    fn dnf_and_apk_jobs_move_their_packages_and_say_why_they_failed() {
        // dnf, on an rpm system.
        let dir = TempDir::new("dnf");
        let root = Root::new(dir.0.join("root"));
        let state = dir.0.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let mut dnf = FakeOther::new(
            root.dir(),
            Manager::Rpm,
            &[
                ("openssl-libs", "x86_64", "1:3.0.7-27.el9"),
                ("bash", "x86_64", "5.1.8-9.el9"),
            ],
        );
        let mut the_job = job("j1", JobKind::Install, Vec::new());
        the_job.manager = Manager::Rpm;
        the_job.packages = vec![JobPackage {
            name: "openssl-libs".into(),
            arch: "x86_64".into(),
            version: "1:3.0.7-28.el9".into(),
        }];
        let server = FakeServer::default();
        let run = |runner: &dyn CommandRunner, j: &Job| {
            run_jobs(
                &server,
                &state,
                &root,
                runner,
                &enrollment(),
                &[j.sign(&key())],
                &clock(),
            )
            .unwrap()
        };
        let outcomes = run(&dnf, &the_job);
        assert_eq!(outcomes[0].state, JobState::Succeeded, "{:?}", dnf.seen);
        assert!(
            dnf.seen
                .borrow()
                .iter()
                .any(|c| c.ends_with("dnf install -y openssl-libs-1:3.0.7-28.el9.x86_64")),
            "{:?}",
            dnf.seen
        );
        let journal = load_journal(&state, "j1").unwrap();
        let installed = journal
            .reports
            .iter()
            .find(|r| r.step == Step::Installed)
            .unwrap();
        assert_eq!(
            installed.changes,
            [Change {
                name: "openssl-libs".into(),
                arch: "x86_64".into(),
                from: Some("1:3.0.7-27.el9".into()),
                to: "1:3.0.7-28.el9".into()
            }]
        );

        // A version the repositories do not have, in the messages dnf 4
        // prints (written after them: no dnf system runs here).
        dnf.fail = Some((
            1,
            "Last metadata expiration check: 0:41:12 ago on Tue 03 Dec 2024 09:14:02 AM UTC.\n\
             No match for argument: openssl-libs-1:3.0.7-99.el9.x86_64\n\
             Error: Unable to find a match: openssl-libs-1:3.0.7-99.el9.x86_64\n",
        ));
        let mut missing = the_job.clone();
        missing.id = "j2".into();
        missing.packages[0].version = "1:3.0.7-99.el9".into();
        let outcomes = run(&dnf, &missing);
        assert_eq!(
            outcomes[0].state,
            JobState::Failed(
                "`dnf install -y openssl-libs-1:3.0.7-99.el9.x86_64` failed (exit code 1): \
                 Unable to find a match: openssl-libs-1:3.0.7-99.el9.x86_64"
                    .into()
            )
        );

        // apk, on Alpine: a rollback to the version it had.
        let dir = TempDir::new("apk");
        let root = Root::new(dir.0.join("root"));
        let state = dir.0.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let apk = FakeOther::new(
            root.dir(),
            Manager::Apk,
            &[("libcrypto3", "x86_64", "3.1.4-r5")],
        );
        let mut back = job("j3", JobKind::Rollback, Vec::new());
        back.manager = Manager::Apk;
        back.packages = vec![JobPackage {
            name: "libcrypto3".into(),
            arch: "x86_64".into(),
            version: "3.1.4-r1".into(),
        }];
        let outcomes = run_jobs(
            &server,
            &state,
            &root,
            &apk,
            &enrollment(),
            &[back.sign(&key())],
            &clock(),
        )
        .unwrap();
        assert_eq!(outcomes[0].state, JobState::Succeeded, "{:?}", apk.seen);
        assert!(
            apk.seen
                .borrow()
                .iter()
                .any(|c| c.ends_with("apk add libcrypto3=3.1.4-r1")),
            "{:?}",
            apk.seen
        );
        assert_eq!(apk.db.borrow()["libcrypto3"].0, "3.1.4-r1");
    }

    #[test]
    fn a_job_received_outside_its_window_waits_for_the_next_one() {
        let s = setup("window", &OLD);
        let mut the_job = job("j1", JobKind::Install, packages(&NEW));
        // The clock reads 2026-11-04T00:00:01Z onwards; the window opens the
        // next night.
        the_job.windows = vec![Span {
            start: "2026-11-05T01:00:00Z".parse().unwrap(),
            end: "2026-11-05T05:00:00Z".parse().unwrap(),
        }];
        let signed = the_job.sign(&key());
        let outcomes = s.run(std::slice::from_ref(&signed));
        assert_eq!(
            outcomes[0].state,
            JobState::Unfinished(
                "outside its maintenance window; it starts in the one opening at \
                 2026-11-05T01:00:00Z"
                    .into()
            )
        );
        assert!(
            s.apt.commands().is_empty(),
            "nothing ran outside the window"
        );
        let journal = s.journal("j1");
        assert!(!journal.finished);
        let steps: Vec<Step> = journal.reports.iter().map(|r| r.step).collect();
        assert_eq!(steps, [Step::Received, Step::Waiting]);
        assert_eq!(
            journal.reports[1].message.as_deref(),
            Some("outside its maintenance window; it starts in the one opening at 2026-11-05T01:00:00Z")
        );

        // The next check-in inside the window resumes it and installs.
        let inside = || Timestamp::from_second(1_793_842_200).unwrap();
        run_jobs(
            &s.server,
            &s.state,
            &s.root,
            &s.apt,
            &enrollment(),
            &[signed],
            &inside,
        )
        .unwrap();
        let journal = s.journal("j1");
        assert!(journal.finished);
        assert_eq!(journal.reports.last().unwrap().step, Step::Succeeded);
        assert_eq!(installed_now(&s), triples(&NEW));
    }

    #[test]
    fn a_reboot_is_reported_and_never_made_on_another_root() {
        let s = setup("reboot", &OLD);
        std::fs::create_dir_all(s.root.path("/run")).unwrap();
        std::fs::write(
            s.root.path(REBOOT_REQUIRED_FILE),
            "*** System restart required ***\n",
        )
        .unwrap();
        let mut the_job = job("j1", JobKind::Install, packages(&NEW));
        the_job.reboot = RebootPolicy::IfRequired;
        the_job.post_hook = Some("systemctl restart nginx".into());

        s.run(&[the_job.sign(&key())]);

        let commands = s.apt.commands();
        assert!(
            !commands.iter().any(|c| c.contains("shutdown")),
            "{commands:?}"
        );
        assert_eq!(
            commands.last().unwrap(),
            &s.in_root("sh -c systemctl restart nginx")
        );
        let journal = s.journal("j1");
        let steps: Vec<Step> = journal.reports.iter().map(|r| r.step).collect();
        assert_eq!(
            &steps[5..],
            [Step::Verifying, Step::RebootRequired, Step::Succeeded]
        );
        assert!(journal.reports[6]
            .message
            .as_deref()
            .unwrap()
            .starts_with("not rebooting: the agent works on the system at"));
    }

    #[test]
    fn a_failing_pre_hook_stops_the_job_before_downloading() {
        let s = setup("prehook", &OLD);
        let mut the_job = job("j1", JobKind::Install, packages(&NEW));
        the_job.pre_hook = Some("exit 3".into());
        let runner = FailingSh(FakeApt::new(s.root.dir()));
        s.run_with(&runner, &[the_job.sign(&key())]);
        let journal = s.journal("j1");
        let last = journal.reports.last().unwrap();
        assert_eq!(last.step, Step::Failed);
        assert_eq!(last.exit_code, Some(3));
        assert!(last
            .message
            .as_deref()
            .unwrap()
            .starts_with("pre-install hook: `sh -c exit 3` failed (exit code 3)"));
        assert_eq!(runner.0.commands().len(), 1);
    }

    #[test]
    fn a_failing_health_check_fails_the_job_after_installing_and_says_so() {
        let s = setup("health", &OLD);
        let mut the_job = job("j1", JobKind::Install, packages(&NEW));
        the_job.health_check = Some("systemctl is-active --quiet nginx".into());
        let runner = FailingSh(FakeApt::new(s.root.dir()));
        s.run_with(&runner, &[the_job.sign(&key())]);
        let journal = s.journal("j1");
        let steps: Vec<Step> = journal.reports.iter().map(|r| r.step).collect();
        // Installed and verified, then the check failed: the job fails with
        // the check named first, which the server counts as unhealthy.
        assert!(steps.contains(&Step::Installed), "{steps:?}");
        assert_eq!(steps[steps.len() - 2..], [Step::Verifying, Step::Failed]);
        let last = journal.reports.last().unwrap();
        assert_eq!(last.exit_code, Some(3));
        let message = last.message.as_deref().unwrap();
        assert!(
            message.starts_with(&format!(
                "{}: `sh -c systemctl is-active --quiet nginx` failed (exit code 3)",
                protocol::job::HEALTH_CHECK
            )),
            "{message}"
        );
        assert_eq!(installed_now(&s), triples(&NEW), "the install is kept");
    }

    /// The fake apt, with `sh` failing as `exit 3` would.
    #[derive(Debug)]
    struct FailingSh(FakeApt);

    impl CommandRunner for FailingSh {
        fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
            self.run_with_env(program, args, &[])
        }

        fn run_with_env(
            &self,
            program: &str,
            args: &[&str],
            env: &[(&str, &str)],
        ) -> io::Result<Output> {
            let output = self.0.run_with_env(program, args, env)?;
            if args.get(1) == Some(&"sh") {
                return Ok(exit(3, "nginx is not healthy\n"));
            }
            Ok(output)
        }
    }

    #[test]
    fn job_ids_are_checked_before_they_name_a_file() {
        for good in ["j1", "01JD2Z6.abc_def-9", &"a".repeat(128)] {
            assert!(valid_job_id(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é", &"a".repeat(129)] {
            assert!(!valid_job_id(bad), "{bad}");
        }
    }

    #[test]
    fn archive_names_encode_the_epoch_colon() {
        assert_eq!(
            archive_file_name(&pkg("vim-common", "all", "2:9.0.1378-2+deb12u2")),
            "vim-common_2%3a9.0.1378-2+deb12u2_all.deb"
        );
    }

    #[test]
    fn other_managers_get_exact_version_commands() {
        let p = [pkg("openssl", "x86_64", "1:3.0.7-27.el9")];
        let line = |tool, kind| other_manager_command(tool, kind, &p).join(" ");
        assert_eq!(
            line(Tool::Dnf, JobKind::Install),
            "dnf install -y openssl-1:3.0.7-27.el9.x86_64"
        );
        assert_eq!(
            line(Tool::Dnf, JobKind::Rollback),
            "dnf downgrade -y openssl-1:3.0.7-27.el9.x86_64"
        );
        let p = [pkg("openssl", "x86_64", "3.1.4-150600.5.15.1")];
        let line = |tool, kind| other_manager_command(tool, kind, &p).join(" ");
        assert_eq!(
            line(Tool::Zypper, JobKind::Rollback),
            "zypper --non-interactive install --oldpackage openssl=3.1.4-150600.5.15.1"
        );
        let p = [pkg("openssl", "x86_64", "3.3.2-r1")];
        assert_eq!(
            other_manager_command(Tool::Apk, JobKind::Install, &p).join(" "),
            "apk add openssl=3.3.2-r1"
        );
    }

    // The outputs below are representative captures, written from these
    // tools' messages (apt 2.6, dnf 4, zypper 1.14, apk-tools 2.14), not
    // recorded on a machine here.
    #[test]
    fn failure_output_reads_as_one_reason() {
        let apt = "Reading package lists...\nBuilding dependency tree...\n\
                   E: Version '9.9' for 'hello' was not found\n";
        assert_eq!(
            failure_reason(Tool::Apt, apt).as_deref(),
            Some("Version '9.9' for 'hello' was not found")
        );
        let dnf = "Last metadata expiration check: 0:12:01 ago on Tue 04 Nov 2026.\n\
                   No match for argument: openssl-3.0.7-99.el9.x86_64\n\
                   Error: Unable to find a match: openssl-3.0.7-99.el9.x86_64\n";
        assert_eq!(
            failure_reason(Tool::Dnf, dnf).as_deref(),
            Some("Unable to find a match: openssl-3.0.7-99.el9.x86_64")
        );
        let dnf_problem =
            "Error: \n Problem: cannot install both openssl-libs-1:3.0.7-27.el9.x86_64 \
                           and openssl-libs-1:3.0.7-25.el9.x86_64\n  - package openssl ...\n";
        assert_eq!(
            failure_reason(Tool::Dnf, dnf_problem).as_deref(),
            Some(
                "Problem: cannot install both openssl-libs-1:3.0.7-27.el9.x86_64 \
                 and openssl-libs-1:3.0.7-25.el9.x86_64"
            )
        );
        let zypper = "Loading repository data...\nReading installed packages...\n\
                      'openssl=9.9' not found in package names. Trying capabilities.\n\
                      No provider of 'openssl=9.9' found.\n";
        assert_eq!(
            failure_reason(Tool::Zypper, zypper).as_deref(),
            Some("No provider of 'openssl=9.9' found.")
        );
        let apk = "fetch https://dl-cdn.alpinelinux.org/alpine/v3.20/main/x86_64/APKINDEX.tar.gz\n\
                   ERROR: unable to select packages:\n  openssl-3.3.2-r1:\n    \
                   breaks: world[openssl=9.9]\n";
        assert_eq!(
            failure_reason(Tool::Apk, apk).as_deref(),
            Some("unable to select packages: openssl-3.3.2-r1")
        );
        assert_eq!(failure_reason(Tool::Apt, "all fine\n"), None);
    }
}
