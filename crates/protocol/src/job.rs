//! Jobs: what the server asks an agent to install or roll back, signed, and
//! the steps the agent reports back.
//!
//! A key design decision made here is that a job travels as the exact bytes
//! the server signed ([`SignedJob::body`]) with a detached ed25519
//! signature: the agent verifies those bytes with the key it received at
//! enrollment before it parses them, so nothing in a job can be altered on
//! the way, and a job names the host it is for, so it cannot be replayed on
//! another.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::Manager;

/// The job schema this crate writes and reads.
pub const JOB_SCHEMA: u32 = 1;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Upgrade the listed packages to exactly the listed versions.
    Install,
    /// Put the listed packages back to exactly the listed versions (the
    /// ones the agent recorded before it installed), downgrading.
    Rollback,
}

/// One package of a job, at the exact version wanted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobPackage {
    /// The binary package.
    pub name: String,
    /// Its architecture (`amd64`, `all`).
    pub arch: String,
    /// The version to end at.
    pub version: String,
}

/// What happens to configuration files a person changed, when the new
/// package ships a different one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConffilePolicy {
    /// Keep the local file (the new one is left beside it).
    #[default]
    KeepOld,
    /// Take the package's file (the local one is kept beside it).
    TakeNew,
}

/// Whether the host reboots after the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebootPolicy {
    /// Never: the host reports that it needs one.
    #[default]
    Never,
    /// When the installed packages ask for one.
    IfRequired,
    /// Always.
    Always,
}

/// The start of the message of a job that failed at its health check: the
/// server tells such a failure from others by it (a ring's gate may ask
/// for no failed health check).
pub const HEALTH_CHECK: &str = "health check";

/// A stretch of time a job may disturb its host in: one opening of a
/// maintenance window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    /// When it opens.
    pub start: Timestamp,
    /// When it closes.
    pub end: Timestamp,
}

impl Span {
    /// Whether `at` is inside one of `spans`; no spans at all means any
    /// time.
    pub fn admits(spans: &[Span], at: Timestamp) -> bool {
        spans.is_empty() || spans.iter().any(|s| s.start <= at && at < s.end)
    }

    /// The first moment at or after `at` inside one of `spans` (`at`
    /// itself with no spans); `None` when every span is over.
    pub fn next_open(spans: &[Span], at: Timestamp) -> Option<Timestamp> {
        if Span::admits(spans, at) {
            return Some(at);
        }
        spans
            .iter()
            .filter(|s| s.start > at && s.start < s.end)
            .map(|s| s.start)
            .min()
    }
}

/// How far logged-in users may put a reboot off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebootDeferral {
    /// How many times.
    pub max_deferrals: u32,
    /// By how long each time, in minutes.
    pub defer_minutes: u32,
    /// No deferral reaches past this; after it, the reboot happens in the
    /// next maintenance window.
    pub deadline: Timestamp,
}

/// A job, as the server signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// [`JOB_SCHEMA`].
    pub schema: u32,
    /// Unique; a job delivered twice has the same id.
    pub id: String,
    /// The host it is for: any other host refuses it.
    pub host_id: String,
    /// The rollout it belongs to.
    pub rollout: String,
    /// The rollout's generation it was issued in.
    pub generation: u64,
    /// Install or roll back.
    pub kind: JobKind,
    /// The package manager that runs it.
    pub manager: Manager,
    /// The packages, each at its exact version.
    pub packages: Vec<JobPackage>,
    /// Configuration files.
    #[serde(default)]
    pub conffiles: ConffilePolicy,
    /// Rebooting afterwards.
    #[serde(default)]
    pub reboot: RebootPolicy,
    /// How users may defer the reboot (`None`: they are told, and it
    /// happens in the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_deferral: Option<RebootDeferral>,
    /// The maintenance windows the job may install and reboot in (none:
    /// any time). A job received outside them waits for the next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Span>,
    /// A script run (`sh -c`) before installing; failing fails the job.
    #[serde(default)]
    pub pre_hook: Option<String>,
    /// A script run after installing; failing fails the job.
    #[serde(default)]
    pub post_hook: Option<String>,
    /// A script run last, that says whether the host is healthy.
    #[serde(default)]
    pub health_check: Option<String>,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// An agent that receives it after this refuses it.
    pub not_after: Timestamp,
}

/// A job on the wire: the exact JSON the server signed, and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedJob {
    /// The job's id, repeated outside the signed bytes so that a job that
    /// fails its check can still be reported by id.
    pub id: String,
    /// The job's JSON, as signed.
    pub body: String,
    /// `ed25519:<base64>` of the signature over `body`'s bytes.
    pub signature: String,
}

/// Why an agent refused a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobRefused {
    /// The signature is missing, malformed, or not the server's over these bytes.
    #[error("job {id}: the signature does not verify with the server's key: {why}")]
    Signature {
        /// The job's id as the envelope gives it.
        id: String,
        /// What was wrong.
        why: String,
    },
    /// The signed bytes are not a job this agent reads.
    #[error("job {id}: signed, but not a job this agent reads: {why}")]
    Malformed {
        /// The job's id.
        id: String,
        /// What was wrong.
        why: String,
    },
    /// The envelope's id is not the signed one.
    #[error("job {outside}: the signed job is {inside}")]
    IdMismatch {
        /// The envelope's.
        outside: String,
        /// The signed one.
        inside: String,
    },
    /// Meant for another host.
    #[error("job {id} is for host {host}, not this one")]
    OtherHost {
        /// The job.
        id: String,
        /// The host it names.
        host: String,
    },
    /// Too late.
    #[error("job {id} expired at {not_after}")]
    Expired {
        /// The job.
        id: String,
        /// When it expired.
        not_after: Timestamp,
    },
}

const SIGNATURE_PREFIX: &str = "ed25519:";

/// The text form of a public job key: `ed25519:<base64>`.
pub fn key_text(key: &VerifyingKey) -> String {
    format!("{SIGNATURE_PREFIX}{}", BASE64.encode(key.as_bytes()))
}

/// Reads a public job key in its text form.
pub fn parse_key(text: &str) -> Result<VerifyingKey, String> {
    let b64 = text
        .trim()
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or_else(|| format!("a job key starts with {SIGNATURE_PREFIX}"))?;
    let bytes = BASE64
        .decode(b64)
        .map_err(|e| format!("a job key is base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "a job key is 32 bytes".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an ed25519 public key: {e}"))
}

impl Job {
    /// Signs the job's JSON.
    pub fn sign(&self, key: &SigningKey) -> SignedJob {
        // Serialising a plain struct of strings and numbers cannot fail.
        let body = serde_json::to_string(self).unwrap_or_default();
        let signature = key.sign(body.as_bytes());
        SignedJob {
            id: self.id.clone(),
            body,
            signature: format!("{SIGNATURE_PREFIX}{}", BASE64.encode(signature.to_bytes())),
        }
    }
}

impl SignedJob {
    /// Verifies the signature, then reads the job and checks that it is
    /// for `host_id` and not expired at `now`.
    pub fn open(
        &self,
        key: &VerifyingKey,
        host_id: &str,
        now: Timestamp,
    ) -> Result<Job, JobRefused> {
        let bad = |why: String| JobRefused::Signature {
            id: self.id.clone(),
            why,
        };
        let b64 = self
            .signature
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| bad(format!("it does not start with {SIGNATURE_PREFIX}")))?;
        let bytes = BASE64
            .decode(b64)
            .map_err(|e| bad(format!("not base64: {e}")))?;
        let bytes: [u8; 64] = bytes
            .try_into()
            .map_err(|_| bad("not 64 bytes".to_owned()))?;
        key.verify(self.body.as_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| bad("the bytes or the signature were altered".to_owned()))?;
        let job: Job = serde_json::from_str(&self.body).map_err(|e| JobRefused::Malformed {
            id: self.id.clone(),
            why: e.to_string(),
        })?;
        if job.schema != JOB_SCHEMA {
            return Err(JobRefused::Malformed {
                id: self.id.clone(),
                why: format!("schema {} (this agent reads {JOB_SCHEMA})", job.schema),
            });
        }
        if job.id != self.id {
            return Err(JobRefused::IdMismatch {
                outside: self.id.clone(),
                inside: job.id,
            });
        }
        if job.host_id != host_id {
            return Err(JobRefused::OtherHost {
                id: job.id,
                host: job.host_id,
            });
        }
        if now > job.not_after {
            return Err(JobRefused::Expired {
                id: job.id,
                not_after: job.not_after,
            });
        }
        Ok(job)
    }
}

/// A step of a job, as the agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The agent verified and recorded the job.
    Received,
    /// Received outside its maintenance windows: it starts in the next.
    Waiting,
    /// Fetching the packages.
    Downloading,
    /// Fetched, and the files checked against the signed package lists.
    Downloaded,
    /// The package manager is installing.
    Installing,
    /// Installed; the report lists what changed.
    Installed,
    /// Checking the result (versions in place, hooks, health check).
    Verifying,
    /// The host needs a reboot to finish.
    RebootRequired,
    /// A logged-in user put the reboot off (after the job ended).
    RebootDeferred,
    /// The agent started the reboot (after the job ended).
    Rebooting,
    /// Done.
    Succeeded,
    /// Failed; the report has the exit code and the output's tail.
    Failed,
    /// Not run: the job did not verify, was for another host, or expired.
    Refused,
}

impl Step {
    /// Whether the job ends with this step.
    pub fn is_final(self) -> bool {
        matches!(self, Step::Succeeded | Step::Failed | Step::Refused)
    }

    /// Its name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Received => "received",
            Step::Waiting => "waiting",
            Step::Downloading => "downloading",
            Step::Downloaded => "downloaded",
            Step::Installing => "installing",
            Step::Installed => "installed",
            Step::Verifying => "verifying",
            Step::RebootRequired => "reboot_required",
            Step::RebootDeferred => "reboot_deferred",
            Step::Rebooting => "rebooting",
            Step::Succeeded => "succeeded",
            Step::Failed => "failed",
            Step::Refused => "refused",
        }
    }
}

/// One package a job moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The package.
    pub name: String,
    /// Its architecture.
    pub arch: String,
    /// The version before (`None`: it was not installed).
    pub from: Option<String>,
    /// The version after.
    pub to: String,
}

/// One step as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    /// The step.
    pub step: Step,
    /// When, by the agent's clock.
    pub at: Timestamp,
    /// A sentence about it (why it failed, what it found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The exit code of the command that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The last lines of that command's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tail: Option<String>,
    /// With [`Step::Installed`]: what changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

impl StepReport {
    /// A step with nothing more to say.
    pub fn new(step: Step, at: Timestamp) -> Self {
        StepReport {
            step,
            at,
            message: None,
            exit_code: None,
            output_tail: None,
            changes: Vec::new(),
        }
    }
}

/// `POST /api/v1/agent/jobs/{id}/steps`: steps of one job, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepsRequest {
    /// The steps.
    pub steps: Vec<StepReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(host: &str) -> Job {
        Job {
            schema: JOB_SCHEMA,
            id: "j1".into(),
            host_id: host.into(),
            rollout: "r".into(),
            generation: 1,
            kind: JobKind::Install,
            manager: Manager::Dpkg,
            packages: vec![JobPackage {
                name: "libssl3".into(),
                arch: "amd64".into(),
                version: "3.0.16-1~deb12u1".into(),
            }],
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

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_signed_job_opens_only_unaltered_for_its_host_in_time() {
        let now: Timestamp = "2026-11-03T00:00:00Z".parse().unwrap();
        let signed = job("h1").sign(&key(1));
        let public = key(1).verifying_key();
        assert_eq!(signed.open(&public, "h1", now).unwrap(), job("h1"));
        // Through the key's text form too.
        let again = parse_key(&key_text(&public)).unwrap();
        assert!(signed.open(&again, "h1", now).is_ok());

        // Another key.
        let err = signed.open(&key(2).verifying_key(), "h1", now).unwrap_err();
        assert!(matches!(err, JobRefused::Signature { .. }), "{err}");
        // One byte of the body changed: a different version.
        let mut altered = signed.clone();
        altered.body = altered.body.replace("3.0.16", "3.0.17");
        let err = altered.open(&public, "h1", now).unwrap_err();
        assert!(err.to_string().contains("altered"), "{err}");
        // Unsigned.
        let mut unsigned = signed.clone();
        unsigned.signature = String::new();
        assert!(matches!(
            unsigned.open(&public, "h1", now),
            Err(JobRefused::Signature { .. })
        ));
        // Another host's job, replayed here.
        let err = signed.open(&public, "h2", now).unwrap_err();
        assert_eq!(err.to_string(), "job j1 is for host h1, not this one");
        // Too late.
        let late: Timestamp = "2026-11-10T00:00:00Z".parse().unwrap();
        assert!(matches!(
            signed.open(&public, "h1", late),
            Err(JobRefused::Expired { .. })
        ));
        // The envelope's id swapped for another.
        let mut swapped = signed;
        swapped.id = "j2".into();
        assert!(matches!(
            swapped.open(&public, "h1", now),
            Err(JobRefused::IdMismatch { .. })
        ));
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        assert!(parse_key("rsa:AAAA").unwrap_err().contains("starts with"));
        assert!(parse_key("ed25519:AAAA").unwrap_err().contains("32 bytes"));
        assert!(parse_key("ed25519:***").unwrap_err().contains("base64"));
    }

    #[test]
    fn spans_say_when_a_job_may_run() {
        let t = |s: &str| -> Timestamp { s.parse().unwrap() };
        let spans = [
            Span {
                start: t("2026-12-05T00:00:00Z"),
                end: t("2026-12-05T04:00:00Z"),
            },
            Span {
                start: t("2026-12-12T00:00:00Z"),
                end: t("2026-12-12T04:00:00Z"),
            },
        ];
        assert!(Span::admits(&[], t("2026-12-01T12:00:00Z")));
        assert!(Span::admits(&spans, t("2026-12-05T03:59:59Z")));
        assert!(!Span::admits(&spans, t("2026-12-05T04:00:00Z")));
        assert_eq!(
            Span::next_open(&spans, t("2026-12-05T04:00:00Z")),
            Some(t("2026-12-12T00:00:00Z"))
        );
        assert_eq!(
            Span::next_open(&spans, t("2026-12-05T01:00:00Z")),
            Some(t("2026-12-05T01:00:00Z"))
        );
        assert_eq!(Span::next_open(&spans, t("2026-12-13T00:00:00Z")), None);
    }

    #[test]
    fn steps_travel_by_their_names() {
        let report = StepReport::new(
            Step::RebootRequired,
            "2026-11-03T00:00:00Z".parse().unwrap(),
        );
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(
            json,
            r#"{"step":"reboot_required","at":"2026-11-03T00:00:00Z"}"#
        );
        for step in [Step::Received, Step::Failed, Step::Refused, Step::Installed] {
            let json = serde_json::to_value(step).unwrap();
            assert_eq!(json, step.as_str());
        }
        assert!(Step::Refused.is_final() && !Step::Installed.is_final());
    }
}
