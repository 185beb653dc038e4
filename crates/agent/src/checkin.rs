//! One check-in: collect, send the digest, send the inventory when the
//! server's copy differs. `patchwell-agent run` repeats it with jitter.

use std::time::Duration;

use jiff::Timestamp;

use crate::client::{Client, ClientError};
use crate::inventory;
use crate::root::Root;
use crate::runner::CommandRunner;

/// What a check-in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    /// Whether the inventory was sent.
    pub sent_inventory: bool,
    /// How long to wait before the next one, before jitter.
    pub next: Duration,
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
}

/// Checks in once.
pub fn check_in(
    client: &Client,
    root: &Root,
    runner: &dyn CommandRunner,
    now: Timestamp,
) -> Result<CheckIn, CheckInError> {
    let inventory = inventory::collect(root, runner, now)?;
    let answer = client.heartbeat(&inventory.digest())?;
    if answer.send_inventory {
        client.send_inventory(&inventory)?;
    }
    Ok(CheckIn {
        sent_inventory: answer.send_inventory,
        next: Duration::from_secs(answer.next_checkin_seconds.max(10)),
    })
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
