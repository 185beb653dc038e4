//! The fleet's applicability, held in memory and kept current: each
//! inventory the server stores moves its host between package version keys
//! (checking only keys the fleet has never seen), and each new catalog is
//! checked against every key once. It answers "how many hosts does this
//! advisory reach" without touching the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use patchwell_core::applicability::{HostView, Index, InstalledPackage};
use patchwell_core::fleet::Fleet;
use store::{HostFilter, HostStore, InventoryStore, Store};

use crate::catalog::host_view;

#[derive(Debug, Default)]
struct State {
    fleet: Fleet,
    ids: HashMap<String, u32>,
    names: Vec<String>,
    loaded: bool,
}

/// The shared fleet.
#[derive(Debug, Default)]
pub struct FleetHandle {
    state: Mutex<State>,
}

impl FleetHandle {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether every stored host has been loaded since the server started.
    pub fn loaded(&self) -> bool {
        self.lock().loaded
    }

    /// Records what a host has now.
    pub fn set_host(&self, host: &str, view: &HostView) {
        let mut state = self.lock();
        let id = match state.ids.get(host) {
            Some(&id) => id,
            None => {
                let id = state.names.len() as u32;
                state.names.push(host.to_owned());
                state.ids.insert(host.to_owned(), id);
                id
            }
        };
        state.fleet.set_host(id, view);
    }

    /// Applies a delta to a host the fleet holds; false when it holds none.
    pub fn update_host(
        &self,
        host: &str,
        removed: &[InstalledPackage],
        added: &[InstalledPackage],
    ) -> bool {
        let mut state = self.lock();
        let Some(&id) = state.ids.get(host) else {
            return false;
        };
        state.fleet.update_host(id, removed, added).is_some()
    }

    /// Forgets a host (revoked).
    pub fn remove_host(&self, host: &str) {
        let mut state = self.lock();
        if let Some(&id) = state.ids.get(host) {
            state.fleet.remove_host(id);
        }
    }

    /// Checks the fleet against a new catalog.
    pub fn set_index(&self, index: Arc<Index>) {
        let pairs = self.lock().fleet.set_index(index);
        tracing::info!(pairs, "Fleet checked against the catalog.");
    }

    /// The hosts an advisory (by position in the index) reaches.
    pub fn advisory_hosts(&self, advisory: u32) -> Vec<String> {
        let state = self.lock();
        state
            .fleet
            .advisory_hosts(advisory)
            .into_iter()
            .filter_map(|id| state.names.get(id as usize).cloned())
            .collect()
    }

    /// How many hosts each advisory reaches, for those that reach any.
    pub fn reach(&self) -> HashMap<u32, usize> {
        let state = self.lock();
        let mut reach = HashMap::new();
        for id in state.ids.values() {
            for &a in state.fleet.host_advisories(*id) {
                *reach.entry(a).or_insert(0) += 1;
            }
        }
        reach
    }
}

/// Loads every stored host into the fleet, then checks it against the
/// catalog. Run once at start, in the background.
pub async fn load(
    store: &Store,
    fleet: &Arc<FleetHandle>,
    index: Arc<Index>,
    now: jiff::Timestamp,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let hosts = store
        .list_hosts(&HostFilter::default(), now, jiff::SignedDuration::ZERO)
        .await?;
    for host in &hosts {
        let packages = store.packages(&host.id).await?;
        let os = crate::catalog::os_of(host);
        let view = host_view(&os, host.kernel.as_deref().unwrap_or(""), &packages, &[]);
        let fleet = Arc::clone(fleet);
        let id = host.id.clone();
        tokio::task::spawn_blocking(move || fleet.set_host(&id, &view)).await?;
    }
    let fleet = Arc::clone(fleet);
    tokio::task::spawn_blocking(move || {
        fleet.set_index(index);
        fleet.lock().loaded = true;
    })
    .await?;
    tracing::info!(
        hosts = hosts.len(),
        "Fleet loaded in {} ms.",
        started.elapsed().as_millis()
    );
    Ok(())
}
