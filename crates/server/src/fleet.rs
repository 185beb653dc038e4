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
use crate::feeds::SharedCatalog;

#[derive(Debug, Default)]
struct State {
    fleet: Fleet,
    ids: HashMap<String, u32>,
    names: Vec<String>,
    /// Each host's main package manager, whose packages the fleet holds.
    managers: HashMap<u32, protocol::Manager>,
    loaded: bool,
    /// Counts changes, so a reader can tell whether anything moved since
    /// it last looked.
    generation: u64,
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

    /// A number that changes whenever a host or the catalog changes.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Whether the fleet holds a host.
    pub fn holds(&self, host: &str) -> bool {
        let state = self.lock();
        state
            .ids
            .get(host)
            .is_some_and(|&id| state.fleet.contains(id))
    }

    /// Records a host unless an inventory put it in meanwhile (the loader's
    /// copy is older) or it was revoked meanwhile.
    pub fn set_host_if_absent(&self, host: &str, view: &HostView) {
        let mut state = self.lock();
        if state.ids.contains_key(host) {
            return;
        }
        set_locked(&mut state, host, view);
    }

    /// Records what a host has now.
    pub fn set_host(&self, host: &str, view: &HostView) {
        set_locked(&mut self.lock(), host, view);
    }

    /// Applies a delta to a host the fleet holds: the packages it replaced
    /// (as they were) and those it brought, of any package manager; only
    /// those of the host's main one count. False when it holds no such host.
    pub fn update_host(
        &self,
        host: &str,
        replaced: &[protocol::Package],
        brought: &[protocol::Package],
    ) -> bool {
        let mut state = self.lock();
        let Some(&id) = state.ids.get(host) else {
            return false;
        };
        let Some(&manager) = state.managers.get(&id) else {
            return false;
        };
        let of_main = |packages: &[protocol::Package]| -> Vec<InstalledPackage> {
            packages
                .iter()
                .filter(|p| p.manager == manager)
                .map(crate::catalog::installed_package)
                .collect()
        };
        let (removed, added) = (of_main(replaced), of_main(brought));
        state.generation += 1;
        state.fleet.update_host(id, &removed, &added).is_some()
    }

    /// Forgets a host (revoked). Its id stays known, so the loader does not
    /// bring it back.
    pub fn remove_host(&self, host: &str) {
        let mut state = self.lock();
        let id = intern(&mut state, host);
        state.generation += 1;
        state.fleet.remove_host(id);
    }

    /// Checks the fleet against a new catalog.
    pub fn set_index(&self, index: Arc<Index>) {
        let pairs = {
            let mut state = self.lock();
            state.generation += 1;
            state.fleet.set_index(index)
        };
        tracing::info!(pairs, "Fleet checked against the catalog.");
    }

    /// How many hosts an advisory (by position in the index) reaches.
    pub fn advisory_host_count(&self, advisory: u32) -> usize {
        self.lock().fleet.advisory_hosts(advisory).len()
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

    /// The advisories (by position in the index) that apply to a host now.
    pub fn host_advisories(&self, host: &str) -> Vec<u32> {
        let state = self.lock();
        state
            .ids
            .get(host)
            .map(|&id| state.fleet.host_advisories(id).to_vec())
            .unwrap_or_default()
    }

    /// Every host the fleet holds with the advisories that apply to it.
    pub fn all_host_advisories(&self) -> Vec<(String, Vec<u32>)> {
        let state = self.lock();
        state
            .ids
            .iter()
            .filter(|(_, &id)| state.fleet.contains(id))
            .map(|(name, &id)| (name.clone(), state.fleet.host_advisories(id).to_vec()))
            .filter(|(_, advisories)| !advisories.is_empty())
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

/// The fleet's number for a host, given on first sight.
fn intern(state: &mut State, host: &str) -> u32 {
    if let Some(&id) = state.ids.get(host) {
        return id;
    }
    let id = state.names.len() as u32;
    state.names.push(host.to_owned());
    state.ids.insert(host.to_owned(), id);
    id
}

fn set_locked(state: &mut State, host: &str, view: &HostView) {
    let id = intern(state, host);
    state.generation += 1;
    state
        .managers
        .insert(id, crate::catalog::manager_of(view.scheme));
    state.fleet.set_host(id, view);
}

/// Loads every stored host into the fleet, then checks it against the
/// catalog in force. Run once at start, in the background; a host that an
/// inventory put in meanwhile is newer and kept.
pub async fn load(
    store: &Store,
    fleet: &Arc<FleetHandle>,
    catalog: &SharedCatalog,
    now: jiff::Timestamp,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let hosts = store
        .list_hosts(&HostFilter::default(), now, jiff::SignedDuration::ZERO)
        .await?;
    let mut views = Vec::with_capacity(hosts.len());
    for host in &hosts {
        let packages = store.packages(&host.id).await?;
        let os = crate::catalog::os_of(host);
        let kernel = host.kernel.as_deref().unwrap_or("");
        views.push((host.id.clone(), host_view(&os, kernel, &packages, &[])));
    }
    let loader = Arc::clone(fleet);
    tokio::task::spawn_blocking(move || {
        for (id, view) in &views {
            loader.set_host_if_absent(id, view);
        }
    })
    .await?;
    crate::feeds::check_fleet(catalog, fleet).await;
    fleet.lock().loaded = true;
    tracing::info!(
        hosts = hosts.len(),
        "Fleet loaded in {} ms.",
        started.elapsed().as_millis()
    );
    Ok(())
}
