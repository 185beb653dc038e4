//! One check-in: collect, send the digest, send the inventory when the
//! server's copy differs, run the jobs the server handed over, and send the
//! inventory again if they installed anything, so that the server sees the
//! new versions in the same check-in. `patchwell-agent run` repeats it with
//! jitter.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use protocol::{Inventory, InventoryWanted};

use crate::client::{Client, ClientError};
use crate::inventory;
use crate::jobs::{self, JobOutcome};
use crate::root::Root;
use crate::runner::CommandRunner;
use crate::state;

/// What a check-in sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Nothing: the server's copy was current.
    Nothing,
    /// The changes since the acknowledged inventory.
    Delta,
    /// The whole inventory.
    Full,
}

/// What a check-in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    /// What was sent.
    pub sent: Sent,
    /// How long to wait before the next one, before jitter.
    pub next: Duration,
    /// What each job that ran, resumed or was refused did.
    pub jobs: Vec<JobOutcome>,
    /// Where a reboot a job owes stands.
    pub reboot: crate::reboot::Tick,
}

/// Why a check-in failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckInError {
    /// The inventory could not be collected.
    #[error(transparent)]
    Inventory(#[from] inventory::Error),
    /// The server could not be reached or refused.
    #[error(transparent)]
    Server(#[from] ClientError),
    /// The job journals could not be kept, so no job ran.
    #[error("jobs not run: {0}")]
    Jobs(#[from] jobs::JobsError),
}

/// Sends the heartbeat and then what the server asks for: nothing, a
/// delta or the whole inventory.
fn report_inventory(
    client: &Client,
    state_dir: &Path,
    root: &Root,
    runner: &dyn CommandRunner,
    clock: &dyn Fn() -> Timestamp,
) -> Result<(Sent, protocol::HeartbeatResponse, Inventory), CheckInError> {
    let inventory = inventory::collect(root, runner, clock())?;
    let acknowledged = state::load_acknowledged(state_dir);
    let answer = client.heartbeat(
        &inventory.digest(),
        acknowledged.as_ref().map(Inventory::digest),
    )?;
    let sent = match (answer.inventory, acknowledged) {
        (InventoryWanted::None, _) => Sent::Nothing,
        (InventoryWanted::Delta, Some(base)) => send_delta(client, &inventory, &base)?,
        (InventoryWanted::Delta | InventoryWanted::Full, _) => {
            client.send_inventory(&inventory)?;
            Sent::Full
        }
    };
    if sent != Sent::Nothing {
        keep_acknowledged(state_dir, &inventory);
    }
    Ok((sent, answer, inventory))
}

/// Why a read-only agent refuses every job.
const READ_ONLY: &str = "this agent runs read-only: it reports the computer and changes nothing";

/// Checks in without changing the computer: the inventory goes to the
/// server, jobs it hands out are refused (and reported so) and no reboot
/// is made. For a computer that is watched, not managed (`patchwell-agent
/// run --read-only`, and the demo's own machine).
pub fn check_in_read_only(
    client: &Client,
    state_dir: &Path,
    root: &Root,
    runner: &dyn CommandRunner,
    clock: &dyn Fn() -> Timestamp,
) -> Result<CheckIn, CheckInError> {
    let (sent, answer, _) = report_inventory(client, state_dir, root, runner, clock)?;
    // A job handed out is refused, and the server told why, so that its
    // rollout records this host as failed with the reason instead of
    // waiting for it until the job expires.
    for job in &answer.jobs {
        let mut refused = protocol::job::StepReport::new(protocol::job::Step::Refused, clock());
        refused.message = Some(READ_ONLY.into());
        match client.report_steps(&job.id, &[refused]) {
            Ok(()) => eprintln!("job {}: refused: {READ_ONLY}", job.id),
            Err(e) => eprintln!("warning: job {}: refusal not reported: {e}", job.id),
        }
    }
    Ok(CheckIn {
        sent,
        next: Duration::from_secs(answer.next_checkin_seconds.max(10)),
        jobs: Vec::new(),
        reboot: crate::reboot::Tick::Idle,
    })
}

/// Checks in once. `clock` dates the inventory and each step of a job.
pub fn check_in(
    client: &Client,
    state_dir: &Path,
    root: &Root,
    runner: &dyn CommandRunner,
    enrollment: &state::Enrollment,
    clock: &dyn Fn() -> Timestamp,
) -> Result<CheckIn, CheckInError> {
    let (mut sent, answer, inventory) = report_inventory(client, state_dir, root, runner, clock)?;

    let outcomes = jobs::run_jobs(
        client,
        state_dir,
        root,
        runner,
        enrollment,
        &answer.jobs,
        clock,
    )?;
    if outcomes.iter().any(|o| o.ran_installs) {
        // The versions moved: the server learns it now, not at the next
        // check-in. The server acknowledged `inventory` (or already held
        // it, when it asked for nothing), so the changes are a delta from it.
        let after = inventory::collect(root, runner, clock())?;
        if after.digest() != inventory.digest() {
            let again = send_delta(client, &after, &inventory)?;
            keep_acknowledged(state_dir, &after);
            sent = match (sent, again) {
                (Sent::Full, _) | (_, Sent::Full) => Sent::Full,
                _ => Sent::Delta,
            };
        }
    }
    // A reboot a job owes: users told, their deferrals taken, made when due.
    let reboot = match crate::reboot::tick(state_dir, runner, client, clock()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("warning: the pending reboot: {e}");
            crate::reboot::Tick::Idle
        }
    };
    Ok(CheckIn {
        reboot,
        sent,
        next: Duration::from_secs(answer.next_checkin_seconds.max(10)),
        jobs: outcomes,
    })
}

/// Sends `inventory` as a delta from `base`, or whole when the server
/// cannot use the delta.
fn send_delta(
    client: &Client,
    inventory: &Inventory,
    base: &Inventory,
) -> Result<Sent, ClientError> {
    match client.send_delta(&inventory.delta_from(base)) {
        Ok(()) => Ok(Sent::Delta),
        // The server could not use the delta: it asks for the whole.
        Err(ClientError::Refused { status: 409, .. }) => {
            client.send_inventory(inventory)?;
            Ok(Sent::Full)
        }
        Err(e) => Err(e),
    }
}

fn keep_acknowledged(state_dir: &Path, inventory: &Inventory) {
    // Failing to keep it costs a full upload next time, nothing worse.
    if let Err(e) = state::save_acknowledged(state_dir, inventory) {
        eprintln!("warning: could not keep the acknowledged inventory: {e}");
    }
}

/// `interval` moved by up to a tenth either way, so that a fleet started at
/// once does not check in at once forever after.
pub fn jitter(interval: Duration) -> Duration {
    let mut byte = [0u8; 2];
    let spread = if getrandom::fill(&mut byte).is_ok() {
        f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX)
    } else {
        0.5
    };
    interval.mul_f64(0.9 + 0.2 * spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_tenth() {
        let base = Duration::from_secs(900);
        for _ in 0..1000 {
            let j = jitter(base);
            assert!(
                j >= Duration::from_secs(810) && j <= Duration::from_secs(990),
                "{j:?}"
            );
        }
    }
}
