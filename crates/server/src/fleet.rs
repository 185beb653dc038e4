//! The fleet's applicability, held in memory and kept current: each
//! inventory the server stores moves its host between package version keys
//! (checking only keys the fleet has never seen), and each new catalog is
//! checked against every key once. It answers "how many hosts does this
//! advisory reach" without touching the database.
//!
//! Beside it, the updates each host's package managers offer, tallied per
//! `name=version`, so that the list of offered updates (and the count
//! waiting for a decision) is read from memory, not summed over every
//! host's rows.

use std::collections::{BTreeMap, HashMap};
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
    /// Each host's OSV ecosystem (`Debian:12`), when it has one.
    ecosystems: HashMap<u32, String>,
    /// The source package of each binary package the fleet has seen whose
    /// source has another name, per package manager (by `Manager as
    /// usize`): what groups an update under its source, and what a
    /// source's decision reaches. One entry per package name, however many
    /// hosts have it; a binary with no entry is its own source.
    sources: [HashMap<String, String>; 3],
    /// Counts changes, so a reader can tell whether anything moved since
    /// it last looked.
    generation: u64,
    offers: Offers,
}

/// The updates hosts are offered, per (manager, name, candidate).
#[derive(Debug, Default)]
struct Offers {
    /// Each host's offers: the title (its position in `titles`), whether
    /// from a security suite, the suite, and the version it replaces on the
    /// host's ecosystem; each title once.
    by_host: HashMap<u32, Vec<(u32, bool, String, Variant)>>,
    titles: Vec<Offered>,
    positions: HashMap<(protocol::Manager, String, String), u32>,
}

/// One offered `name=version` and the hosts it is offered to.
#[derive(Debug)]
struct Offered {
    manager: protocol::Manager,
    name: String,
    candidate: String,
    /// Hosts offered it.
    hosts: u64,
    /// Of those, hosts offered it from a security suite.
    security: u64,
    /// The suites offering it, with how many hosts each.
    suites: BTreeMap<String, u64>,
    /// The versions it replaces, per ecosystem, with how many hosts each:
    /// what decides the advisories it fixes.
    replaces: BTreeMap<Variant, u64>,
}

/// A host's OSV ecosystem (empty: none) and the version an update replaces.
type Variant = (String, String);

/// What decides which decisions reach an offered update.
#[derive(Debug, Clone, Default)]
pub struct UpdateFacts {
    /// The source package its binary is built from, when known.
    pub source: Option<String>,
    /// The advisories (positions in the index) it fixes on some host
    /// offered it.
    pub advisories: Vec<u32>,
}

impl Offers {
    /// Sets what a host (of OSV ecosystem `ecosystem`, empty when none) is
    /// offered now (nothing, to forget it).
    fn set(&mut self, host: u32, ecosystem: &str, updates: &[protocol::AvailableUpdate]) {
        for (t, security, suite, variant) in self.by_host.remove(&host).unwrap_or_default() {
            let o = &mut self.titles[t as usize];
            o.hosts -= 1;
            o.security -= u64::from(security);
            if let Some(n) = o.suites.get_mut(&suite) {
                *n -= 1;
                if *n == 0 {
                    o.suites.remove(&suite);
                }
            }
            if let Some(n) = o.replaces.get_mut(&variant) {
                *n -= 1;
                if *n == 0 {
                    o.replaces.remove(&variant);
                }
            }
        }
        if updates.is_empty() {
            return;
        }
        // A title offered for two architectures counts the host once, as
        // security when either is, with the greater suite.
        let mut mine: BTreeMap<u32, (bool, String, String)> = BTreeMap::new();
        for u in updates {
            let key = (u.manager, u.name.clone(), u.candidate.clone());
            let t = match self.positions.get(&key) {
                Some(&t) => t,
                None => {
                    let t = self.titles.len() as u32;
                    self.titles.push(Offered {
                        manager: u.manager,
                        name: u.name.clone(),
                        candidate: u.candidate.clone(),
                        hosts: 0,
                        security: 0,
                        suites: BTreeMap::new(),
                        replaces: BTreeMap::new(),
                    });
                    self.positions.insert(key, t);
                    t
                }
            };
            let suite = u.suite.clone().unwrap_or_default();
            let entry = mine
                .entry(t)
                .or_insert((false, String::new(), u.installed.clone()));
            entry.0 |= u.security;
            if suite > entry.1 {
                entry.1 = suite;
            }
        }
        let mut kept = Vec::with_capacity(mine.len());
        for (t, (security, suite, installed)) in mine {
            let o = &mut self.titles[t as usize];
            o.hosts += 1;
            o.security += u64::from(security);
            *o.suites.entry(suite.clone()).or_default() += 1;
            let variant = (ecosystem.to_owned(), installed);
            *o.replaces.entry(variant.clone()).or_default() += 1;
            kept.push((t, security, suite, variant));
        }
        self.by_host.insert(host, kept);
    }

    /// Drops the titles no host is offered any more; how many went.
    fn compact(&mut self) -> usize {
        let unused = self.titles.iter().filter(|o| o.hosts == 0).count();
        if unused == 0 {
            return 0;
        }
        let mut ids = vec![u32::MAX; self.titles.len()];
        let mut titles = Vec::with_capacity(self.titles.len() - unused);
        for (old, o) in std::mem::take(&mut self.titles).into_iter().enumerate() {
            if o.hosts > 0 {
                ids[old] = titles.len() as u32;
                titles.push(o);
            }
        }
        self.positions = titles
            .iter()
            .enumerate()
            .map(|(t, o)| ((o.manager, o.name.clone(), o.candidate.clone()), t as u32))
            .collect();
        for offers in self.by_host.values_mut() {
            for (t, _, _, _) in offers {
                *t = ids[*t as usize];
            }
        }
        self.titles = titles;
        unused
    }

    /// Every title offered to some host: security first, then by hosts,
    /// name and version.
    fn list(&self) -> Vec<store::OfferedUpdate> {
        let mut rows: Vec<store::OfferedUpdate> = self
            .titles
            .iter()
            .filter(|o| o.hosts > 0)
            .map(|o| store::OfferedUpdate {
                manager: o.manager,
                name: o.name.clone(),
                candidate: o.candidate.clone(),
                security: o.security > 0,
                suites: o.suites.keys().next_back().cloned().unwrap_or_default(),
                hosts: o.hosts,
            })
            .collect();
        rows.sort_by(|a, b| {
            (b.security, b.hosts)
                .cmp(&(a.security, a.hosts))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.candidate.cmp(&b.candidate))
        });
        rows
    }
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

    /// Records a stored host with its offers, unless an inventory put it
    /// in meanwhile (the loader's copy is older) or it was revoked
    /// meanwhile.
    fn set_loaded_host(&self, host: &str, view: &HostView, updates: &[protocol::AvailableUpdate]) {
        let mut state = self.lock();
        if state.ids.contains_key(host) {
            return;
        }
        set_locked(&mut state, host, view);
        let id = intern(&mut state, host);
        set_offers_locked(&mut state, id, updates);
    }

    /// Records what a host has now, and says which way its findings moved.
    pub fn set_host(&self, host: &str, view: &HostView) -> Moved {
        set_locked(&mut self.lock(), host, view)
    }

    /// Applies a delta to a host the fleet holds: the packages it replaced
    /// (as they were) and those it brought, of any package manager; only
    /// those of the host's main one count. None when it holds no such
    /// host; else which way its findings moved.
    pub fn update_host(
        &self,
        host: &str,
        replaced: &[protocol::Package],
        brought: &[protocol::Package],
    ) -> Option<Moved> {
        let mut state = self.lock();
        let &id = state.ids.get(host)?;
        let &manager = state.managers.get(&id)?;
        let of_main = |packages: &[protocol::Package]| -> Vec<InstalledPackage> {
            packages
                .iter()
                .filter(|p| p.manager == manager)
                .map(crate::catalog::installed_package)
                .collect()
        };
        let (removed, added) = (of_main(replaced), of_main(brought));
        learn_sources(&mut state, manager, &added);
        state.generation += 1;
        state
            .fleet
            .update_host(id, &removed, &added)
            .map(|change| Moved::of(&change))
    }

    /// Forgets a host (revoked). Its id stays known, so the loader does not
    /// bring it back.
    pub fn remove_host(&self, host: &str) {
        let mut state = self.lock();
        let id = intern(&mut state, host);
        state.generation += 1;
        state.fleet.remove_host(id);
        state.offers.set(id, "", &[]);
    }

    /// Drops what no host has any more (package version keys, offered
    /// titles) once it is an eighth or more of what is held: hosts moved
    /// off old versions, or one listed many packages and then few. Answers
    /// stay as they were. Returns how many entries went.
    pub fn compact(&self) -> usize {
        let mut state = self.lock();
        let mut gone = 0;
        if state.fleet.unused_keys() * 8 >= state.fleet.key_count().max(1) {
            gone += state.fleet.compact();
        }
        let titles = state.offers.titles.len();
        let unused = state.offers.titles.iter().filter(|o| o.hosts == 0).count();
        if unused * 8 >= titles.max(1) {
            gone += state.offers.compact();
        }
        gone
    }

    /// Records the updates a host's package managers offer now.
    pub fn set_offers(&self, host: &str, updates: &[protocol::AvailableUpdate]) {
        let mut state = self.lock();
        let id = intern(&mut state, host);
        state.generation += 1;
        set_offers_locked(&mut state, id, updates);
    }

    /// The source package of a binary package (itself when the fleet
    /// knows no other).
    pub fn source_of(&self, manager: protocol::Manager, name: &str) -> String {
        self.lock().sources[manager as usize]
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }

    /// What decides which decisions reach each offered update, by
    /// (manager, name, version): its source package, and the advisories of
    /// `index` it fixes on the hosts offered it (counted by the version each
    /// replaces, so each distinct one is checked once). An advisory the
    /// update fixes on one host is one it fixes. `None` until the fleet is
    /// loaded.
    pub fn update_facts(
        &self,
        index: &Index,
    ) -> Option<HashMap<(protocol::Manager, String, String), UpdateFacts>> {
        let state = self.lock();
        if !state.loaded {
            return None;
        }
        let mut out = HashMap::new();
        for o in state.offers.titles.iter().filter(|o| o.hosts > 0) {
            let source = state.sources[o.manager as usize]
                .get(&o.name)
                .cloned()
                .unwrap_or_else(|| o.name.clone());
            let scheme = crate::catalog::scheme_of(o.manager);
            let mut advisories = Vec::new();
            for (ecosystem, installed) in o.replaces.keys() {
                let package = InstalledPackage {
                    name: o.name.clone(),
                    version: installed.clone(),
                    arch: String::new(),
                    source: source.clone(),
                    // The source's version of the installed binary is not
                    // among the offer's facts; offers compare the binary's
                    // version with a source's fix, and so does this.
                    source_version: installed.clone(),
                    installed: true,
                };
                let eco = (!ecosystem.is_empty()).then_some(ecosystem.as_str());
                advisories.extend(index.fixed_by(eco, scheme, &package, &o.candidate));
            }
            advisories.sort_unstable();
            advisories.dedup();
            out.insert(
                (o.manager, o.name.clone(), o.candidate.clone()),
                UpdateFacts {
                    source: Some(source),
                    advisories,
                },
            );
        }
        Some(out)
    }

    /// Every update offered to some host, tallied: security first, then by
    /// hosts. `None` until the fleet is loaded.
    pub fn offered_updates(&self) -> Option<Vec<store::OfferedUpdate>> {
        let state = self.lock();
        state.loaded.then(|| state.offers.list())
    }

    /// Checks the fleet against a new catalog.
    /// Whether the fleet's findings are positions in `index` (a catalog
    /// being put in force points the fleet at its index first).
    pub fn uses_index(&self, index: &Index) -> bool {
        std::ptr::eq(self.lock().fleet.index(), index)
    }

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

/// Which way a host's findings moved with what it reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// An advisory applies that did not before.
    pub found: bool,
    /// An advisory that applied no longer does (a fix was installed).
    pub fixed: bool,
}

impl Moved {
    fn of(change: &patchwell_core::fleet::HostChange) -> Moved {
        Moved {
            found: !change.added.is_empty(),
            fixed: !change.removed.is_empty(),
        }
    }
}

fn set_locked(state: &mut State, host: &str, view: &HostView) -> Moved {
    let id = intern(state, host);
    state.generation += 1;
    let manager = crate::catalog::manager_of(view.scheme);
    state.managers.insert(id, manager);
    match view.ecosystem() {
        Some(e) => state.ecosystems.insert(id, e.name().to_owned()),
        None => state.ecosystems.remove(&id),
    };
    learn_sources(state, manager, &view.packages);
    Moved::of(&state.fleet.set_host(id, view))
}

/// Records what a host is offered, with the host's ecosystem.
fn set_offers_locked(state: &mut State, id: u32, updates: &[protocol::AvailableUpdate]) {
    let ecosystem = state.ecosystems.get(&id).cloned().unwrap_or_default();
    state.offers.set(id, &ecosystem, updates);
}

/// Remembers the source package of each binary package seen.
fn learn_sources(state: &mut State, manager: protocol::Manager, packages: &[InstalledPackage]) {
    let sources = &mut state.sources[manager as usize];
    for p in packages {
        if p.source == p.name {
            if sources.contains_key(&p.name) {
                sources.remove(&p.name);
            }
        } else if sources.get(&p.name) != Some(&p.source) {
            sources.insert(p.name.clone(), p.source.clone());
        }
    }
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
        let updates = store.updates(&host.id).await?;
        let os = crate::catalog::os_of(host);
        let kernel = host.kernel.as_deref().unwrap_or("");
        let view = host_view(&os, kernel, &packages, &[]);
        views.push((host.id.clone(), view, updates));
    }
    let loader = Arc::clone(fleet);
    tokio::task::spawn_blocking(move || {
        for (id, view, updates) in &views {
            loader.set_loaded_host(id, view, updates);
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

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{AvailableUpdate, Manager};

    fn offer(name: &str, arch: &str, candidate: &str, suite: &str) -> AvailableUpdate {
        AvailableUpdate {
            manager: Manager::Dpkg,
            name: name.into(),
            arch: arch.into(),
            installed: "1".into(),
            candidate: candidate.into(),
            suite: Some(suite.into()),
            codename: None,
            origin: None,
            security: suite.ends_with("-security"),
        }
    }

    fn tally(fleet: &FleetHandle) -> Vec<(String, bool, String, u64)> {
        fleet
            .offered_updates()
            .expect("loaded")
            .into_iter()
            .map(|o| {
                (
                    format!("{}={}", o.name, o.candidate),
                    o.security,
                    o.suites,
                    o.hosts,
                )
            })
            .collect()
    }

    #[test]
    fn offers_are_tallied_per_title_and_move_with_each_host() {
        let fleet = FleetHandle::default();
        fleet.lock().loaded = true;
        // Two architectures of one title count the host once.
        fleet.set_offers(
            "a",
            &[
                offer("libssl3", "amd64", "3.0.17", "bookworm-security"),
                offer("libssl3", "i386", "3.0.17", "bookworm-security"),
                offer("tzdata", "all", "2025b", "bookworm-updates"),
            ],
        );
        fleet.set_offers("b", &[offer("tzdata", "all", "2025b", "bookworm")]);
        assert_eq!(
            tally(&fleet),
            [
                ("libssl3=3.0.17".into(), true, "bookworm-security".into(), 1),
                ("tzdata=2025b".into(), false, "bookworm-updates".into(), 2),
            ]
        );
        // Host a installed libssl3; b was revoked.
        fleet.set_offers("a", &[offer("tzdata", "all", "2025b", "bookworm-updates")]);
        fleet.remove_host("b");
        assert_eq!(
            tally(&fleet),
            [("tzdata=2025b".into(), false, "bookworm-updates".into(), 1)]
        );
        fleet.set_offers("a", &[]);
        assert!(tally(&fleet).is_empty());
        // What no host is offered any more is dropped; the rest is kept.
        let many: Vec<AvailableUpdate> = (0..100)
            .map(|i| offer(&format!("p{i}"), "all", "2", "bookworm"))
            .collect();
        fleet.set_offers("a", &many);
        fleet.set_offers("b", &many[..1]);
        fleet.set_offers("a", &many[50..51]);
        assert_eq!(fleet.compact(), 100);
        assert_eq!(fleet.lock().offers.titles.len(), 2);
        assert_eq!(
            tally(&fleet),
            [
                ("p0=2".into(), false, "bookworm".into(), 1),
                ("p50=2".into(), false, "bookworm".into(), 1),
            ]
        );
        fleet.set_offers("b", &many[50..51]);
        fleet.set_offers("c", &many[7..8]);
        assert_eq!(
            tally(&fleet),
            [
                ("p50=2".into(), false, "bookworm".into(), 2),
                ("p7=2".into(), false, "bookworm".into(), 1),
            ]
        );
        // Not answered from memory before the fleet is loaded.
        assert!(FleetHandle::default().offered_updates().is_none());
    }

    #[test]
    fn each_offer_knows_its_source_and_the_advisories_it_fixes_on_some_host() {
        use patchwell_core::advisory::{
            Advisory, Affected, Ecosystem, Event, PackageKind, UpdateType,
        };
        let mut index = Index::new();
        let mut a = Advisory::new("DSA-1", UpdateType::SecurityUpdate);
        a.affected.push(Affected {
            ecosystem: Ecosystem::parse("Debian:12").unwrap(),
            package: "openssl".into(),
            kind: PackageKind::Source,
            ranges: vec![vec![
                Event::Introduced("0".into()),
                Event::Fixed("3.0.16".into()),
            ]],
            versions: vec![],
            binaries: vec![],
        });
        let dsa = index.insert(a);
        let fleet = FleetHandle::default();
        fleet.lock().loaded = true;
        let view = |installed: &str| HostView {
            os_id: "debian".into(),
            os_version: Some("12".into()),
            scheme: versions::Ecosystem::Deb,
            kernel_release: "6.1.0-18-amd64".into(),
            packages: vec![InstalledPackage {
                name: "libssl3".into(),
                version: installed.into(),
                arch: "amd64".into(),
                source: "openssl".into(),
                source_version: installed.into(),
                installed: true,
            }],
            updates: vec![],
        };
        let offers = |installed: &str| {
            let mut o = offer("libssl3", "amd64", "3.0.17", "bookworm-security");
            o.installed = installed.into();
            vec![o]
        };
        // One host already past the advisory's fix, one below it: the
        // update fixes it on the second, so it fixes it.
        fleet.set_host("a", &view("3.0.16"));
        fleet.set_offers("a", &offers("3.0.16"));
        let key = (Manager::Dpkg, "libssl3".to_owned(), "3.0.17".to_owned());
        let facts = fleet.update_facts(&index).unwrap();
        assert_eq!(facts[&key].source.as_deref(), Some("openssl"));
        assert!(facts[&key].advisories.is_empty());
        fleet.set_host("b", &view("3.0.15"));
        fleet.set_offers("b", &offers("3.0.15"));
        assert_eq!(fleet.update_facts(&index).unwrap()[&key].advisories, [dsa]);
        assert_eq!(fleet.source_of(Manager::Dpkg, "libssl3"), "openssl");
        assert_eq!(fleet.source_of(Manager::Dpkg, "bash"), "bash");
        // Host b moves on: only a is offered it, past the fix.
        fleet.set_offers("b", &[]);
        assert!(fleet.update_facts(&index).unwrap()[&key]
            .advisories
            .is_empty());
    }
}
