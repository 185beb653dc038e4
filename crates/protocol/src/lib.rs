//! The wire types between `patchwell-agent` and the server, and the JSON they
//! travel as.
//!
//! A key design decision made in this crate is that it is the only place that
//! decides what the JSON looks like: collectors fill these types, the server
//! reads them, and neither derives serde on its own domain types. Every
//! document carries a schema number, so that a server can refuse a document
//! from an agent it does not understand instead of misreading it.
//!
//! Versions travel as the strings the package manager printed. The receiver
//! parses them with the `versions` crate at its boundary, where a bad one can
//! be refused with a message.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub mod job;

/// The inventory schema this crate writes and reads.
pub const INVENTORY_SCHEMA: u32 = 1;

/// Everything an agent knows about its host at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// [`INVENTORY_SCHEMA`] when written by this version.
    pub schema: u32,
    /// When the agent collected it, by the agent's clock.
    pub collected_at: Timestamp,
    /// Identity and hardware.
    pub host: HostFacts,
    /// The operating system, from os-release.
    pub os: OsRelease,
    /// Whether the host needs a reboot, and for which packages.
    pub reboot: RebootStatus,
    /// Installed (and half-installed, and removed-but-configured) packages of
    /// every package manager found on the host.
    pub packages: Vec<Package>,
    /// Newer versions the host's own package manager offers, with where from.
    pub updates: Vec<AvailableUpdate>,
    /// Other devices the host sees on its links (its neighbour table).
    pub neighbours: Vec<Neighbour>,
    /// Things the agent could not read or understand, each saying what and why;
    /// the rest of the inventory is still complete.
    pub warnings: Vec<String>,
}

/// Identity and hardware of a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFacts {
    /// The host name.
    pub hostname: String,
    /// `/etc/machine-id`, when the host has one.
    pub machine_id: Option<String>,
    /// The running kernel's release (`uname -r`).
    pub kernel: String,
    /// The machine architecture as the package manager names it (`amd64`).
    pub arch: String,
    /// Processor model and count.
    pub cpu: Cpu,
    /// The hardware model, vendor first (from DMI: `LENOVO 20XWCTO1WW`),
    /// when the firmware names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// Mounted file systems backed by storage.
    pub disks: Vec<Disk>,
    /// Network interfaces with their addresses.
    pub interfaces: Vec<Interface>,
    /// Seconds since boot.
    pub uptime_seconds: u64,
    /// When the host last booted.
    pub boot_time: Timestamp,
}

/// Processor model and count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// The model name the processor reports.
    pub model: String,
    /// Logical processors.
    pub count: u32,
}

/// A mounted file system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// Where it is mounted.
    pub mount_point: String,
    /// The device or source.
    pub device: String,
    /// The file system type.
    pub fs_type: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Free bytes available to unprivileged users.
    pub available_bytes: u64,
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// The interface name.
    pub name: String,
    /// The link-layer address, when it has one.
    pub mac: Option<String>,
    /// Addresses with prefix length, such as `192.0.2.7/24`.
    pub addresses: Vec<String>,
}

/// The operating system as os-release describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsRelease {
    /// `ID`, such as `debian`.
    pub id: String,
    /// `VERSION_ID`, such as `12`; absent on rolling releases.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, such as `bookworm`.
    pub codename: Option<String>,
    /// `PRETTY_NAME`, for people.
    pub pretty_name: Option<String>,
    /// `ID_LIKE`, such as `["debian"]` for Ubuntu.
    pub id_like: Vec<String>,
}

/// Whether a reboot is pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebootStatus {
    /// True when the system says a reboot is required.
    pub required: bool,
    /// The packages that asked for it, when the system says.
    pub packages: Vec<String>,
}

/// The package manager a package belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// dpkg, on Debian and its derivatives.
    Dpkg,
    /// rpm, on Red Hat, SUSE and their derivatives.
    Rpm,
    /// apk, on Alpine.
    Apk,
}

/// The state of a package in its package manager's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageState {
    /// Fully installed and configured.
    Installed,
    /// Removed, but its configuration files are still on disk: not installed.
    ConfigFiles,
    /// Unpacked but not yet configured.
    Unpacked,
    /// Configuration was started but did not finish.
    HalfConfigured,
    /// Installation was started but did not finish.
    HalfInstalled,
    /// Waiting for another package's trigger processing.
    TriggersAwaited,
    /// Its own triggers are still to run.
    TriggersPending,
}

/// A name that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What was named.
    pub kind: &'static str,
    /// The name given.
    pub name: String,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} {:?}", self.kind, self.name)
    }
}

impl std::error::Error for UnknownName {}

/// Names as the JSON writes them, for the places that store or read them
/// outside JSON (the database, query strings). A test holds them to serde's.
macro_rules! names {
    ($ty:ident, $kind:literal, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// Every value.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name, as in the JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = UnknownName;

            fn from_str(name: &str) -> Result<Self, UnknownName> {
                match name {
                    $($name => Ok($ty::$variant),)+
                    other => Err(UnknownName { kind: $kind, name: other.to_owned() }),
                }
            }
        }
    };
}

names!(Manager, "package manager", Dpkg => "dpkg", Rpm => "rpm", Apk => "apk");
names!(
    PackageState, "package state",
    Installed => "installed",
    ConfigFiles => "config-files",
    Unpacked => "unpacked",
    HalfConfigured => "half-configured",
    HalfInstalled => "half-installed",
    TriggersAwaited => "triggers-awaited",
    TriggersPending => "triggers-pending",
);

impl PackageState {
    /// Whether the package's files are on the host. A package in
    /// [`PackageState::ConfigFiles`] is not installed, whatever its version.
    pub fn is_installed(self) -> bool {
        self != PackageState::ConfigFiles
    }
}

/// One package in a package manager's database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Whose database it is in.
    pub manager: Manager,
    /// The binary package name.
    pub name: String,
    /// The version as the package manager prints it.
    pub version: String,
    /// The architecture (`amd64`, `all`, `x86_64`, `noarch`).
    pub arch: String,
    /// The source package it was built from.
    pub source: Option<String>,
    /// The source package's version; differs from `version` for binNMUs
    /// (`1.0.9-2+b6` comes from source `1.0.9-2`).
    pub source_version: Option<String>,
    /// Its state.
    pub state: PackageState,
    /// Whether the administrator put it on hold.
    pub held: bool,
}

/// A newer version of an installed package that the host's repositories offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailableUpdate {
    /// Whose update it is.
    pub manager: Manager,
    /// The binary package name.
    pub name: String,
    /// The architecture.
    pub arch: String,
    /// The installed version.
    pub installed: String,
    /// The newest version offered.
    pub candidate: String,
    /// The suite that offers it (`bookworm-security`, or `oldstable-security`).
    pub suite: Option<String>,
    /// The suite's code name (`bookworm-security`).
    pub codename: Option<String>,
    /// The repository's origin (`Debian`).
    pub origin: Option<String>,
    /// True when it comes from a security suite: a security update even when
    /// no advisory names it.
    pub security: bool,
}

/// A device in the host's neighbour table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbour {
    /// Its IP address.
    pub address: String,
    /// Its link-layer address, when known.
    pub mac: Option<String>,
    /// The interface it was seen on.
    pub interface: String,
    /// The kernel's opinion of it (`REACHABLE`, `STALE`, `FAILED`, ...).
    pub state: String,
}

impl Inventory {
    /// A digest of what the inventory says, leaving out what changes by the
    /// second (collection time, uptime, free disk space, neighbour states), so
    /// that an agent re-sends its inventory only when something changed.
    /// Package order does not count: see [`PackageSum`].
    pub fn digest(&self) -> String {
        self.head().digest(&PackageSum::of(&self.packages))
    }

    /// Everything but the packages.
    pub fn head(&self) -> InventoryHead<'_> {
        InventoryHead {
            schema: self.schema,
            host: &self.host,
            os: &self.os,
            reboot: &self.reboot,
            updates: &self.updates,
            neighbours: &self.neighbours,
        }
    }
}

/// The parts of an inventory other than its packages, borrowed from an
/// [`Inventory`] or an [`InventoryDelta`], which carries them whole.
#[derive(Debug, Clone, Copy)]
pub struct InventoryHead<'a> {
    /// The schema.
    pub schema: u32,
    /// Host facts.
    pub host: &'a HostFacts,
    /// The OS.
    pub os: &'a OsRelease,
    /// Reboot status.
    pub reboot: &'a RebootStatus,
    /// Available updates.
    pub updates: &'a [AvailableUpdate],
    /// Neighbours.
    pub neighbours: &'a [Neighbour],
}

impl InventoryHead<'_> {
    /// The inventory digest of this head with packages whose sum is
    /// `packages`: SHA-256 of the head's stable JSON and the sum.
    pub fn digest(&self, packages: &PackageSum) -> String {
        use sha2::{Digest, Sha256};
        #[derive(Serialize)]
        struct Stable<'a> {
            schema: u32,
            host: HostFacts,
            os: &'a OsRelease,
            reboot: &'a RebootStatus,
            updates: Vec<&'a AvailableUpdate>,
            neighbours: Vec<(&'a str, &'a str, Option<&'a str>)>,
        }
        let mut host = self.host.clone();
        host.uptime_seconds = 0;
        host.disks.iter_mut().for_each(|d| d.available_bytes = 0);
        let mut updates: Vec<&AvailableUpdate> = self.updates.iter().collect();
        updates.sort_by(|a, b| (a.manager, &a.name, &a.arch).cmp(&(b.manager, &b.name, &b.arch)));
        // A neighbour's state changes by the second; who it is does not.
        let mut neighbours: Vec<(&str, &str, Option<&str>)> = self
            .neighbours
            .iter()
            .map(|n| (n.interface.as_str(), n.address.as_str(), n.mac.as_deref()))
            .collect();
        neighbours.sort();
        let stable = Stable {
            schema: self.schema,
            host,
            os: self.os,
            reboot: self.reboot,
            updates,
            neighbours,
        };
        let mut hash = Sha256::new();
        hash.update(b"patchwell inventory 2\0");
        // Serializing plain structs and vectors cannot fail.
        hash.update(serde_json::to_vec(&stable).unwrap_or_default());
        hash.update(packages.to_bytes());
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The packages of an inventory as one order-free value: the sum, modulo
/// 2^256, of each package's SHA-256. A key design decision: the sum moves
/// by a delta's packages alone (add the new, subtract the old), so the
/// server checks a delta's result against the agent's digest without
/// reading the host's other packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PackageSum([u64; 4]);

impl PackageSum {
    /// The sum of these packages.
    pub fn of<'a>(packages: impl IntoIterator<Item = &'a Package>) -> PackageSum {
        let mut sum = PackageSum::default();
        for p in packages {
            sum.add(p);
        }
        sum
    }

    /// Adds a package.
    pub fn add(&mut self, package: &Package) {
        let h = package_hash(package);
        let mut carry = 0u64;
        for (lane, x) in self.0.iter_mut().zip(h) {
            let (s1, c1) = lane.overflowing_add(x);
            let (s2, c2) = s1.overflowing_add(carry);
            *lane = s2;
            carry = u64::from(c1) + u64::from(c2);
        }
    }

    /// Takes a package away that was added.
    pub fn remove(&mut self, package: &Package) {
        let h = package_hash(package);
        let mut borrow = 0u64;
        for (lane, x) in self.0.iter_mut().zip(h) {
            let (d1, b1) = lane.overflowing_sub(x);
            let (d2, b2) = d1.overflowing_sub(borrow);
            *lane = d2;
            borrow = u64::from(b1) + u64::from(b2);
        }
    }

    /// The sum as 32 bytes, least significant first.
    pub fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, lane) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&lane.to_le_bytes());
        }
        out
    }

    /// A sum from [`PackageSum::to_bytes`]; `None` unless 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<PackageSum> {
        if bytes.len() != 32 {
            return None;
        }
        let mut lanes = [0u64; 4];
        for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *lane = u64::from_le_bytes(b);
        }
        Some(PackageSum(lanes))
    }
}

/// One package's SHA-256 as four numbers: every field, each prefixed by its
/// length, the source filled in as the server stores it.
fn package_hash(p: &Package) -> [u64; 4] {
    use sha2::{Digest, Sha256};
    let source = p.source.as_deref().unwrap_or(&p.name);
    let source_version = p.source_version.as_deref().unwrap_or(&p.version);
    let fields = [
        p.manager.as_str(),
        &p.name,
        &p.version,
        &p.arch,
        source,
        source_version,
        p.state.as_str(),
    ];
    // The bytes hashed: each field's length (8 bytes, little-endian) and
    // the field, then the hold. Gathered first and hashed at once, which
    // is much faster than feeding the hasher fifteen small pieces.
    let mut bytes = Vec::with_capacity(fields.iter().map(|f| f.len() + 8).sum::<usize>() + 1);
    for field in fields {
        bytes.extend_from_slice(&(field.len() as u64).to_le_bytes());
        bytes.extend_from_slice(field.as_bytes());
    }
    bytes.push(u8::from(p.held));
    let bytes = Sha256::digest(&bytes);
    let mut lanes = [0u64; 4];
    for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *lane = u64::from_le_bytes(b);
    }
    lanes
}

/// What identifies a package within one host: its manager, name and
/// architecture (a host has one version of each).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageKey {
    /// The package manager.
    pub manager: Manager,
    /// The package name.
    pub name: String,
    /// The architecture.
    pub arch: String,
}

impl Package {
    /// The package's key.
    pub fn key(&self) -> PackageKey {
        PackageKey {
            manager: self.manager,
            name: self.name.clone(),
            arch: self.arch.clone(),
        }
    }

    /// Fills an unknown source with the package itself, as dpkg-query does;
    /// the server stores it that way.
    pub fn fill_source(&mut self) {
        if self.source.is_none() {
            self.source = Some(self.name.clone());
        }
        if self.source_version.is_none() {
            self.source_version = Some(self.version.clone());
        }
    }
}

/// An inventory as changes to an earlier one that the server acknowledged:
/// the packages that were added or changed and those removed; the small
/// parts (host facts, OS, reboot, updates, neighbours) whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryDelta {
    /// [`INVENTORY_SCHEMA`].
    pub schema: u32,
    /// The digest of the inventory this applies to.
    pub base_digest: String,
    /// The digest of the inventory it makes; the server checks it.
    pub result_digest: String,
    /// When the new inventory was collected.
    pub collected_at: Timestamp,
    /// Host facts, whole.
    pub host: HostFacts,
    /// The OS, whole.
    pub os: OsRelease,
    /// Reboot status, whole.
    pub reboot: RebootStatus,
    /// Packages added, or changed in version or state.
    pub packages_changed: Vec<Package>,
    /// Packages no longer there.
    pub packages_removed: Vec<PackageKey>,
    /// Available updates, whole.
    pub updates: Vec<AvailableUpdate>,
    /// Neighbours, whole.
    pub neighbours: Vec<Neighbour>,
    /// Warnings, whole.
    pub warnings: Vec<String>,
}

impl InventoryDelta {
    /// Everything but the packages, which a delta carries whole.
    pub fn head(&self) -> InventoryHead<'_> {
        InventoryHead {
            schema: self.schema,
            host: &self.host,
            os: &self.os,
            reboot: &self.reboot,
            updates: &self.updates,
            neighbours: &self.neighbours,
        }
    }
}

impl Inventory {
    /// The changes from `base` (which the server acknowledged) to `self`.
    pub fn delta_from(&self, base: &Inventory) -> InventoryDelta {
        use std::collections::HashMap;
        let before: HashMap<PackageKey, &Package> =
            base.packages.iter().map(|p| (p.key(), p)).collect();
        let now: HashMap<PackageKey, &Package> =
            self.packages.iter().map(|p| (p.key(), p)).collect();
        let mut changed: Vec<Package> = self
            .packages
            .iter()
            .filter(|p| before.get(&p.key()) != Some(p))
            .cloned()
            .collect();
        changed.sort_by_key(Package::key);
        let mut removed: Vec<PackageKey> = before
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        removed.sort();
        InventoryDelta {
            schema: self.schema,
            base_digest: base.digest(),
            result_digest: self.digest(),
            collected_at: self.collected_at,
            host: self.host.clone(),
            os: self.os.clone(),
            reboot: self.reboot.clone(),
            packages_changed: changed,
            packages_removed: removed,
            updates: self.updates.clone(),
            neighbours: self.neighbours.clone(),
            warnings: self.warnings.clone(),
        }
    }

    /// The inventory a delta makes of the packages `base` had. The caller
    /// checks the result's digest against [`InventoryDelta::result_digest`].
    pub fn from_delta(base_packages: Vec<Package>, delta: &InventoryDelta) -> Inventory {
        use std::collections::BTreeMap;
        let mut packages: BTreeMap<PackageKey, Package> =
            base_packages.into_iter().map(|p| (p.key(), p)).collect();
        for key in &delta.packages_removed {
            packages.remove(key);
        }
        for p in &delta.packages_changed {
            packages.insert(p.key(), p.clone());
        }
        Inventory {
            schema: delta.schema,
            collected_at: delta.collected_at,
            host: delta.host.clone(),
            os: delta.os.clone(),
            reboot: delta.reboot.clone(),
            packages: packages.into_values().collect(),
            updates: delta.updates.clone(),
            neighbours: delta.neighbours.clone(),
            warnings: delta.warnings.clone(),
        }
    }
}

/// An agent's request to enroll, with the token an administrator gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrollment token.
    pub token: String,
    /// The host's name, until its first inventory says more.
    pub hostname: String,
}

/// The identity and credential a newly enrolled host uses from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollResponse {
    /// The host's identity.
    pub host_id: String,
    /// Its credential, sent as `Authorization: Bearer <credential>`. Shown once.
    pub credential: String,
    /// The server's public job key (`ed25519:<base64>`): the agent runs
    /// only jobs signed with it.
    pub job_key: String,
}

/// A check-in: the agent is alive, and these are the digests of its current
/// inventory and of the last one the server acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// [`Inventory::digest`] of the agent's current inventory.
    pub inventory_digest: String,
    /// The digest of the last inventory the server acknowledged, if the
    /// agent kept it (it can then send a delta against it).
    #[serde(default)]
    pub acknowledged_digest: Option<String>,
}

/// What the server wants of the agent's inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InventoryWanted {
    /// The server's copy is current: send nothing.
    None,
    /// The server holds the acknowledged inventory: send a delta against it.
    Delta,
    /// The server holds something else (or nothing): send it whole.
    Full,
}

/// The server's answer to a check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatResponse {
    /// What to send.
    pub inventory: InventoryWanted,
    /// Seconds until the next check-in, before jitter.
    pub next_checkin_seconds: u64,
    /// Jobs for the host, signed, until it reports them received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<job::SignedJob>,
}

/// The body of every error response: what went wrong, in a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The sentence.
    pub error: String,
}

#[cfg(test)]
mod tests {
    /// A package's hash is the SHA-256 of its fields, each after its length,
    /// then its hold: agents and servers of any version must agree on it.
    #[test]
    fn a_package_hash_is_of_its_length_prefixed_fields() {
        use sha2::{Digest, Sha256};
        let p = Package {
            manager: Manager::Dpkg,
            name: "libssl3".into(),
            version: "3.0.11-1~deb12u2".into(),
            arch: "amd64".into(),
            source: Some("openssl".into()),
            source_version: None,
            state: PackageState::Installed,
            held: true,
        };
        let mut hash = Sha256::new();
        for field in [
            "dpkg",
            "libssl3",
            "3.0.11-1~deb12u2",
            "amd64",
            "openssl",
            "3.0.11-1~deb12u2",
            "installed",
        ] {
            hash.update((field.len() as u64).to_le_bytes());
            hash.update(field.as_bytes());
        }
        hash.update([1u8]);
        let bytes = hash.finalize();
        let expected: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(package_hash(&p).to_vec(), expected);
    }

    use super::*;

    fn pkg(name: &str, version: &str) -> Package {
        Package {
            manager: Manager::Dpkg,
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            source: None,
            source_version: None,
            state: PackageState::Installed,
            held: false,
        }
    }

    fn inventory(packages: Vec<Package>) -> Inventory {
        Inventory {
            schema: INVENTORY_SCHEMA,
            collected_at: Timestamp::UNIX_EPOCH,
            host: HostFacts {
                hostname: "h".into(),
                machine_id: None,
                kernel: "6.1".into(),
                arch: "amd64".into(),
                cpu: Cpu {
                    model: "x".into(),
                    count: 1,
                },
                model: None,
                memory_bytes: 1,
                disks: vec![],
                interfaces: vec![],
                uptime_seconds: 1,
                boot_time: Timestamp::UNIX_EPOCH,
            },
            os: OsRelease {
                id: "debian".into(),
                version_id: None,
                codename: None,
                pretty_name: None,
                id_like: vec![],
            },
            reboot: RebootStatus {
                required: false,
                packages: vec![],
            },
            packages,
            updates: vec![],
            neighbours: vec![],
            warnings: vec![],
        }
    }

    #[test]
    fn a_delta_rebuilds_the_inventory_it_was_made_from() {
        let base = inventory(vec![pkg("a", "1"), pkg("b", "1"), pkg("c", "1")]);
        let mut held = pkg("c", "1");
        held.held = true;
        let now = inventory(vec![pkg("d", "1"), pkg("b", "2"), held]);
        let delta = now.delta_from(&base);
        assert_eq!(
            delta
                .packages_changed
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["b", "c", "d"]
        );
        assert_eq!(
            delta
                .packages_removed
                .iter()
                .map(|k| k.name.as_str())
                .collect::<Vec<_>>(),
            ["a"]
        );
        // The server holds the base's packages in its own order.
        let mut stored = base.packages.clone();
        stored.reverse();
        stored.iter_mut().for_each(Package::fill_source);
        let rebuilt = Inventory::from_delta(stored, &delta);
        assert_eq!(rebuilt.digest(), delta.result_digest);
        assert_eq!(base.digest(), delta.base_digest);
        assert_ne!(base.digest(), now.digest());
    }

    #[test]
    fn the_package_sum_moves_by_the_packages_alone() {
        let (a, b, c) = (pkg("a", "1"), pkg("b", "1"), pkg("c", "1"));
        let mut held = c.clone();
        held.held = true;
        // Order does not count; every field does.
        assert_eq!(PackageSum::of([&a, &b, &c]), PackageSum::of([&c, &a, &b]));
        assert_ne!(
            PackageSum::of([&a, &b, &c]),
            PackageSum::of([&a, &b, &held])
        );
        assert_ne!(PackageSum::of([&a, &b]), PackageSum::of([&a, &c]));
        // A missing source is the package itself, as the server stores it.
        let mut filled = a.clone();
        filled.fill_source();
        assert_eq!(PackageSum::of([&a]), PackageSum::of([&filled]));
        // Taking a package away undoes adding it, carries and all.
        let mut sum = PackageSum::of([&a, &b]);
        sum.remove(&b);
        sum.add(&c);
        assert_eq!(sum, PackageSum::of([&c, &a]));
        sum.remove(&a);
        sum.remove(&c);
        assert_eq!(sum, PackageSum::default());
        sum.remove(&a);
        sum.add(&a);
        assert_eq!(sum, PackageSum::default());
        let bytes = PackageSum::of([&a, &b]).to_bytes();
        assert_eq!(
            PackageSum::from_bytes(&bytes),
            Some(PackageSum::of([&b, &a]))
        );
        assert_eq!(PackageSum::from_bytes(&bytes[1..]), None);
    }

    #[test]
    fn the_digest_ignores_what_changes_by_the_second() {
        let base = inventory(vec![pkg("a", "1")]);
        let mut later = base.clone();
        later.collected_at = Timestamp::from_second(1_000_000).unwrap();
        later.host.uptime_seconds = 99;
        later.warnings.push("something unreadable".into());
        assert_eq!(base.digest(), later.digest());
        later.reboot.required = true;
        assert_ne!(base.digest(), later.digest());
    }

    #[test]
    fn names_are_the_json_names() {
        for m in Manager::ALL {
            assert_eq!(
                serde_json::to_string(m).unwrap(),
                format!("\"{}\"", m.as_str())
            );
            assert_eq!(m.as_str().parse::<Manager>().unwrap(), *m);
        }
        for s in PackageState::ALL {
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
            assert_eq!(s.as_str().parse::<PackageState>().unwrap(), *s);
        }
        assert_eq!(
            "msi".parse::<Manager>().unwrap_err().to_string(),
            "unknown package manager \"msi\""
        );
    }

    #[test]
    fn package_state_speaks_dpkg() {
        let json = serde_json::to_string(&PackageState::ConfigFiles).unwrap();
        assert_eq!(json, "\"config-files\"");
        assert!(!PackageState::ConfigFiles.is_installed());
        assert!(PackageState::HalfConfigured.is_installed());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = r#"{"id":"debian","version_id":"12","codename":null,"pretty_name":null,"id_like":[],"extra":1}"#;
        let err = serde_json::from_str::<OsRelease>(json).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }
}
