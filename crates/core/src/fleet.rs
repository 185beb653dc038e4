//! Incremental applicability for a whole fleet.
//!
//! A key design decision made here is that the unit of work is the distinct
//! *package version key*, not the host: (ecosystem, source package, source
//! version) and (ecosystem, binary package, version). Ten thousand Debian 12
//! hosts share a few thousand such keys, so each is checked against the
//! advisories once for the whole fleet, and hosts only collect the verdicts
//! of their keys. It follows that
//! - a new advisory is checked against the keys of the packages it names, and
//!   reaches their hosts without looking at any other host;
//! - an inventory delta moves a host between keys; only keys the fleet has
//!   never seen are checked.

use std::collections::HashMap;
use std::sync::Arc;

use crate::advisory::{Advisory, Ecosystem, PackageKind};
use crate::applicability::{kernel_image_release, HostView, Index, InstalledPackage};

/// A host's number in the fleet (the caller's choice).
pub type HostId = u32;

#[derive(Debug)]
struct Key {
    place: u32,
    kind: PackageKind,
    name: u32,
    version: Box<[u8]>,
    hosts: Vec<HostId>,
    /// Advisory positions that affect this key; `None` until checked.
    hits: Option<Vec<u32>>,
}

/// (place, kind, interned package name).
type PackageAt = (u32, PackageKind, u32);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Place {
    /// The host's ecosystem name, or empty when OSV has none for it.
    ecosystem: String,
    scheme: versions::Ecosystem,
}

#[derive(Debug, Default)]
struct FleetHost {
    place: u32,
    /// The running kernel, as `uname -r` says.
    kernel: String,
    /// The host's keys, sorted, and how many of its packages give each (the
    /// binaries of one source share its source key).
    keys: Vec<u32>,
    counts: Vec<u32>,
    advisories: Vec<u32>,
}

/// What changed for one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostChange {
    /// Package version keys that the fleet had not seen and were checked now.
    pub keys_checked: usize,
    /// Advisories that apply now and did not before.
    pub added: Vec<u32>,
    /// Advisories that applied before and do not now.
    pub removed: Vec<u32>,
}

/// The fleet's applicability, kept up to date as hosts and advisories change.
#[derive(Debug, Default)]
pub struct Fleet {
    index: Arc<Index>,
    places: Vec<Place>,
    place_ids: HashMap<Place, u32>,
    names: Vec<String>,
    name_ids: HashMap<String, u32>,
    /// (place, kind, name) -> version key -> key id.
    keys_by_package: HashMap<PackageAt, HashMap<Box<[u8]>, u32>>,
    /// (place, kind, name) -> version as written -> key id: most versions
    /// are seen again, and then need no version key made.
    keys_by_text: HashMap<PackageAt, HashMap<Box<str>, u32>>,
    keys: Vec<Key>,
    hosts: HashMap<HostId, FleetHost>,
}

impl Fleet {
    /// A fleet with no hosts, checking against `index`.
    pub fn new(index: impl Into<Arc<Index>>) -> Fleet {
        Fleet {
            index: index.into(),
            ..Fleet::default()
        }
    }

    /// Checks the fleet against another catalog: every key again (a full
    /// evaluation). Returns the number of (host, advisory) pairs that apply.
    pub fn set_index(&mut self, index: Arc<Index>) -> usize {
        self.index = index;
        self.evaluate_all()
    }

    /// The advisory index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The number of distinct package version keys.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The number of places (OS releases) the fleet keeps.
    pub fn place_count(&self) -> usize {
        self.places.len()
    }

    fn place(&mut self, place: Place) -> u32 {
        if let Some(&id) = self.place_ids.get(&place) {
            return id;
        }
        let id = self.places.len() as u32;
        self.places.push(place.clone());
        self.place_ids.insert(place, id);
        id
    }

    fn name(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.name_ids.insert(name.to_owned(), id);
        id
    }

    fn key(&mut self, place: u32, kind: PackageKind, name: &str, version: &str) -> Option<u32> {
        let name = self.name(name);
        let at = (place, kind, name);
        if let Some(&id) = self.keys_by_text.get(&at).and_then(|t| t.get(version)) {
            return Some(id);
        }
        let scheme = self.places[place as usize].scheme;
        let sort_key = versions::sort_key(scheme, version).ok()?;
        let id = self.key_by_sort_key(at, sort_key);
        self.keys_by_text
            .entry(at)
            .or_default()
            .insert(version.into(), id);
        Some(id)
    }

    /// The key of a version by its sort key, made if new.
    fn key_by_sort_key(&mut self, at: PackageAt, sort_key: Vec<u8>) -> u32 {
        let (place, kind, name) = at;
        let by_version = self.keys_by_package.entry(at).or_default();
        if let Some(&id) = by_version.get(sort_key.as_slice()) {
            return id;
        }
        let id = self.keys.len() as u32;
        let version: Box<[u8]> = sort_key.into_boxed_slice();
        by_version.insert(version.clone(), id);
        self.keys.push(Key {
            place,
            kind,
            name,
            version,
            hosts: Vec::new(),
            hits: None,
        });
        id
    }

    /// Checks one key against the whole index.
    fn check_key(&self, key: &Key) -> Vec<u32> {
        let place = &self.places[key.place as usize];
        let name = &self.names[key.name as usize];
        let mut hits = Vec::new();
        if !place.ecosystem.is_empty() {
            self.index
                .check(&place.ecosystem, key.kind, name, &key.version, |h| {
                    hits.push(h.advisory)
                });
        }
        if key.kind == PackageKind::Binary {
            let vendor = Ecosystem::vendor(place.scheme);
            self.index
                .check(vendor.name(), key.kind, name, &key.version, |h| {
                    hits.push(h.advisory)
                });
        }
        hits.sort_unstable();
        hits.dedup();
        hits
    }

    /// Adds a host, or replaces what the fleet knows of it (an inventory
    /// delta is a replacement: only keys it adds that the fleet never saw
    /// are checked). Versions the host's rules refuse are skipped.
    pub fn set_host(&mut self, host: HostId, view: &HostView) -> HostChange {
        let place = self.place(Place {
            ecosystem: view
                .ecosystem()
                .map(|e| e.name().to_owned())
                .unwrap_or_default(),
            scheme: view.scheme,
        });
        let mut keys = Vec::with_capacity(view.packages.len() * 2);
        let kernel = view.kernel_release.trim().to_owned();
        for p in view
            .packages
            .iter()
            .filter(|p| counts(view.scheme, &kernel, p))
        {
            keys.extend(self.key(place, PackageKind::Source, &p.source, &p.source_version));
            keys.extend(self.key(place, PackageKind::Binary, &p.name, &p.version));
        }
        keys.sort_unstable();
        let (keys, counts) = run_lengths(keys);
        let old = self.hosts.remove(&host).unwrap_or_default();
        // Move the host between keys: only the difference is touched.
        let (mut i, mut j) = (0, 0);
        while i < old.keys.len() || j < keys.len() {
            match (old.keys.get(i), keys.get(j)) {
                (Some(a), Some(b)) if a == b => {
                    i += 1;
                    j += 1;
                }
                (Some(&a), Some(&b)) if a > b => {
                    self.keys[b as usize].hosts.push(host);
                    j += 1;
                }
                (Some(&a), _) => {
                    self.keys[a as usize].hosts.retain(|&h| h != host);
                    i += 1;
                }
                (None, Some(&b)) => {
                    self.keys[b as usize].hosts.push(host);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        let mut checked = 0;
        for &k in &keys {
            if self.keys[k as usize].hits.is_none() {
                let hits = self.check_key(&self.keys[k as usize]);
                self.keys[k as usize].hits = Some(hits);
                checked += 1;
            }
        }
        let advisories = self.collect(&keys);
        let change = HostChange {
            keys_checked: checked,
            added: difference(&advisories, &old.advisories),
            removed: difference(&old.advisories, &advisories),
        };
        self.hosts.insert(
            host,
            FleetHost {
                place,
                kernel,
                keys,
                counts,
                advisories,
            },
        );
        change
    }

    /// The key of a package version, if the fleet has it (never creates one).
    fn find_key(&self, place: u32, kind: PackageKind, name: &str, version: &str) -> Option<u32> {
        let name = *self.name_ids.get(name)?;
        if let Some(&id) = self
            .keys_by_text
            .get(&(place, kind, name))
            .and_then(|t| t.get(version))
        {
            return Some(id);
        }
        let scheme = self.places[place as usize].scheme;
        let sort_key = versions::sort_key(scheme, version).ok()?;
        self.keys_by_package
            .get(&(place, kind, name))?
            .get(sort_key.as_slice())
            .copied()
    }

    /// Applies an inventory delta to a host already in the fleet: the
    /// packages it no longer has (old versions included) and those it has
    /// now. Only their keys are touched; none of its other packages is
    /// looked at. None when the host is not in the fleet (use
    /// [`Fleet::set_host`]).
    pub fn update_host(
        &mut self,
        host: HostId,
        removed: &[InstalledPackage],
        added: &[InstalledPackage],
    ) -> Option<HostChange> {
        let mut entry = self.hosts.remove(&host)?;
        let place = entry.place;
        let (scheme, kernel) = (self.places[place as usize].scheme, entry.kernel.clone());
        for p in removed.iter().filter(|p| counts(scheme, &kernel, p)) {
            for (kind, name, version) in [
                (PackageKind::Source, &p.source, &p.source_version),
                (PackageKind::Binary, &p.name, &p.version),
            ] {
                let Some(k) = self.find_key(place, kind, name, version) else {
                    continue;
                };
                if let Ok(i) = entry.keys.binary_search(&k) {
                    entry.counts[i] -= 1;
                    if entry.counts[i] == 0 {
                        entry.keys.remove(i);
                        entry.counts.remove(i);
                        self.keys[k as usize].hosts.retain(|&h| h != host);
                    }
                }
            }
        }
        let mut checked = 0;
        for p in added.iter().filter(|p| counts(scheme, &kernel, p)) {
            for (kind, name, version) in [
                (PackageKind::Source, &p.source, &p.source_version),
                (PackageKind::Binary, &p.name, &p.version),
            ] {
                let Some(k) = self.key(place, kind, name, version) else {
                    continue;
                };
                match entry.keys.binary_search(&k) {
                    Ok(i) => entry.counts[i] += 1,
                    Err(i) => {
                        entry.keys.insert(i, k);
                        entry.counts.insert(i, 1);
                        self.keys[k as usize].hosts.push(host);
                    }
                }
                if self.keys[k as usize].hits.is_none() {
                    let hits = self.check_key(&self.keys[k as usize]);
                    self.keys[k as usize].hits = Some(hits);
                    checked += 1;
                }
            }
        }
        let advisories = self.collect(&entry.keys);
        let change = HostChange {
            keys_checked: checked,
            added: difference(&advisories, &entry.advisories),
            removed: difference(&entry.advisories, &advisories),
        };
        entry.advisories = advisories;
        self.hosts.insert(host, entry);
        Some(change)
    }

    fn collect(&self, keys: &[u32]) -> Vec<u32> {
        let mut advisories: Vec<u32> = keys
            .iter()
            .filter_map(|&k| self.keys[k as usize].hits.as_ref())
            .flatten()
            .copied()
            .collect();
        advisories.sort_unstable();
        advisories.dedup();
        advisories
    }

    /// Forgets a host.
    pub fn remove_host(&mut self, host: HostId) {
        if let Some(old) = self.hosts.remove(&host) {
            for k in old.keys {
                self.keys[k as usize].hosts.retain(|&h| h != host);
            }
        }
    }

    /// Checks every key against every advisory again, from nothing, and
    /// recomputes every host's advisories. Returns the number of (host,
    /// advisory) pairs that apply.
    pub fn evaluate_all(&mut self) -> usize {
        let verdicts: Vec<Vec<u32>> = self.keys.iter().map(|k| self.check_key(k)).collect();
        for (key, hits) in self.keys.iter_mut().zip(verdicts) {
            key.hits = Some(hits);
        }
        let recomputed: Vec<(HostId, Vec<u32>)> = self
            .hosts
            .iter()
            .map(|(&id, h)| (id, self.collect(&h.keys)))
            .collect();
        let mut pairs = 0;
        for (id, advisories) in recomputed {
            pairs += advisories.len();
            if let Some(h) = self.hosts.get_mut(&id) {
                h.advisories = advisories;
            }
        }
        pairs
    }

    /// Adds (or replaces) an advisory and returns the hosts it applies to.
    /// Only the keys of the packages it names are checked.
    pub fn add_advisory(&mut self, advisory: Advisory) -> Vec<HostId> {
        // A replaced advisory may have named other packages: their keys are
        // checked again too, and their hosts' lists rebuilt.
        let replaced = self
            .index
            .position(&advisory.id)
            .and_then(|at| self.index.advisory(at))
            .map(|old| self.candidate_keys(old));
        // The index is copied only if someone else holds it too.
        let at = Arc::make_mut(&mut self.index).insert(advisory);
        let Some(advisory) = self.index.advisory(at) else {
            return Vec::new();
        };
        let mut candidates = self.candidate_keys(advisory);
        candidates.extend(replaced.iter().flatten().copied());
        candidates.sort_unstable();
        candidates.dedup();
        let mut hosts = Vec::new();
        let mut touched = Vec::new();
        for k in candidates {
            let key = &self.keys[k as usize];
            let hits = self.check_key(key);
            let applies = hits.binary_search(&at).is_ok();
            let key = &mut self.keys[k as usize];
            key.hits = Some(hits);
            if applies {
                hosts.extend(key.hosts.iter().copied());
            }
            if replaced.is_some() {
                touched.extend(key.hosts.iter().copied());
            }
        }
        if replaced.is_some() {
            touched.sort_unstable();
            touched.dedup();
            for h in touched {
                let advisories = self.hosts.get(&h).map(|host| self.collect(&host.keys));
                if let (Some(host), Some(advisories)) = (self.hosts.get_mut(&h), advisories) {
                    host.advisories = advisories;
                }
            }
        }
        hosts.sort_unstable();
        hosts.dedup();
        for h in &hosts {
            if let Some(host) = self.hosts.get_mut(h) {
                if let Err(pos) = host.advisories.binary_search(&at) {
                    host.advisories.insert(pos, at);
                }
            }
        }
        hosts
    }

    /// How many keys no host has any more (versions hosts moved off).
    pub fn unused_keys(&self) -> usize {
        self.keys.iter().filter(|k| k.hosts.is_empty()).count()
    }

    /// Drops the keys no host has any more, and the package names and
    /// places (OS releases) only they used, so that the fleet holds what its hosts have now rather
    /// than all they ever had. The keys left keep their order, so each
    /// host's sorted keys stay sorted, and their verdicts. Returns how many
    /// keys went.
    pub fn compact(&mut self) -> usize {
        const GONE: u32 = u32::MAX;
        let unused = self.unused_keys();
        if unused == 0 {
            return 0;
        }
        let mut key_ids = vec![GONE; self.keys.len()];
        let mut keys = Vec::with_capacity(self.keys.len() - unused);
        for (old, key) in std::mem::take(&mut self.keys).into_iter().enumerate() {
            if !key.hosts.is_empty() {
                key_ids[old] = keys.len() as u32;
                keys.push(key);
            }
        }
        // The places (OS releases) no host and no key is in any more go
        // too: a host that moves to another release leaves its old one.
        let mut place_used = vec![false; self.places.len()];
        for key in &keys {
            place_used[key.place as usize] = true;
        }
        for host in self.hosts.values() {
            place_used[host.place as usize] = true;
        }
        let mut place_ids = vec![GONE; self.places.len()];
        let mut places = Vec::with_capacity(self.places.len());
        for (old, place) in std::mem::take(&mut self.places).into_iter().enumerate() {
            if place_used[old] {
                place_ids[old] = places.len() as u32;
                places.push(place);
            }
        }
        for key in &mut keys {
            key.place = place_ids[key.place as usize];
        }
        for host in self.hosts.values_mut() {
            host.place = place_ids[host.place as usize];
        }
        self.place_ids = places
            .iter()
            .enumerate()
            .map(|(id, place)| (place.clone(), id as u32))
            .collect();
        self.places = places;
        let mut used = vec![false; self.names.len()];
        for key in &keys {
            used[key.name as usize] = true;
        }
        let mut name_ids = vec![GONE; self.names.len()];
        let mut names = Vec::with_capacity(self.names.len());
        for (old, name) in std::mem::take(&mut self.names).into_iter().enumerate() {
            if used[old] {
                name_ids[old] = names.len() as u32;
                names.push(name);
            }
        }
        for key in &mut keys {
            key.name = name_ids[key.name as usize];
        }
        self.name_ids = names
            .iter()
            .enumerate()
            .map(|(id, name)| (name.clone(), id as u32))
            .collect();
        self.names = names;
        self.keys_by_package = HashMap::new();
        for (id, key) in keys.iter().enumerate() {
            self.keys_by_package
                .entry((key.place, key.kind, key.name))
                .or_default()
                .insert(key.version.clone(), id as u32);
        }
        self.keys_by_text = std::mem::take(&mut self.keys_by_text)
            .into_iter()
            .filter_map(|((place, kind, name), texts)| {
                let name = name_ids[name as usize];
                let place = place_ids[place as usize];
                let texts: HashMap<Box<str>, u32> = texts
                    .into_iter()
                    .filter_map(|(text, id)| {
                        let id = key_ids[id as usize];
                        (id != GONE).then_some((text, id))
                    })
                    .collect();
                (name != GONE && place != GONE && !texts.is_empty())
                    .then_some(((place, kind, name), texts))
            })
            .collect();
        for host in self.hosts.values_mut() {
            for key in &mut host.keys {
                *key = key_ids[*key as usize];
            }
        }
        self.keys = keys;
        unused
    }

    /// Whether the fleet holds a host.
    pub fn contains(&self, host: HostId) -> bool {
        self.hosts.contains_key(&host)
    }

    /// The keys of the packages an advisory names, in the places it names.
    fn candidate_keys(&self, advisory: &Advisory) -> Vec<u32> {
        let mut candidates: Vec<u32> = Vec::new();
        for affected in &advisory.affected {
            let Some(&name) = self.name_ids.get(&affected.package) else {
                continue;
            };
            for (place_id, place) in self.places.iter().enumerate() {
                let matches_place = if affected.ecosystem.is_vendor() {
                    affected.kind == PackageKind::Binary
                        && Ecosystem::vendor(place.scheme).name() == affected.ecosystem.name()
                } else {
                    place.ecosystem == affected.ecosystem.name()
                };
                if !matches_place {
                    continue;
                }
                if let Some(by_version) =
                    self.keys_by_package
                        .get(&(place_id as u32, affected.kind, name))
                {
                    candidates.extend(by_version.values().copied());
                }
            }
        }
        candidates
    }

    /// The advisories (positions in the index) that apply to a host.
    pub fn host_advisories(&self, host: HostId) -> &[u32] {
        self.hosts
            .get(&host)
            .map_or(&[], |h| h.advisories.as_slice())
    }

    /// The hosts an advisory applies to, found through the keys of the
    /// packages it names.
    pub fn advisory_hosts(&self, advisory: u32) -> Vec<HostId> {
        let Some(adv) = self.index.advisory(advisory) else {
            return Vec::new();
        };
        let mut hosts: Vec<HostId> = Vec::new();
        for k in self.candidate_keys(adv) {
            let key = &self.keys[k as usize];
            if key
                .hits
                .as_ref()
                .is_some_and(|h| h.binary_search(&advisory).is_ok())
            {
                hosts.extend(key.hosts.iter().copied());
            }
        }
        hosts.sort_unstable();
        hosts.dedup();
        hosts
    }
}

/// Whether a package counts for applicability: installed, and, when it is
/// a kernel image, the running kernel's (as `Index::evaluate` decides).
fn counts(scheme: versions::Ecosystem, running: &str, p: &InstalledPackage) -> bool {
    p.installed
        && (running.is_empty()
            || kernel_image_release(scheme, &p.name, &p.version, &p.arch)
                .is_none_or(|release| release == running))
}

/// Sorted values as distinct values and how often each occurs.
fn run_lengths(sorted: Vec<u32>) -> (Vec<u32>, Vec<u32>) {
    let mut distinct: Vec<u32> = Vec::with_capacity(sorted.len());
    let mut counts: Vec<u32> = Vec::with_capacity(sorted.len());
    for k in sorted {
        match (distinct.last(), counts.last_mut()) {
            (Some(&last), Some(count)) if last == k => *count += 1,
            _ => {
                distinct.push(k);
                counts.push(1);
            }
        }
    }
    (distinct, counts)
}

/// The elements of sorted `a` not in sorted `b`.
fn difference(a: &[u32], b: &[u32]) -> Vec<u32> {
    a.iter()
        .filter(|x| b.binary_search(x).is_err())
        .copied()
        .collect()
}
