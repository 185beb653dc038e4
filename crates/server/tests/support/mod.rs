//! What the server's test files share: a scratch directory removed when
//! dropped, and a host's inventory as an agent sends it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use protocol::{
    Cpu, HostFacts, Interface, Inventory, Manager, OsRelease, Package, PackageState, RebootStatus,
};

/// The test clock's start, and the hosts' boot five seconds before.
pub(crate) const T0: i64 = 1_780_000_000;

/// A directory under the system's temporary one, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    /// A fresh path named for the test (`what`), the process and a count;
    /// nothing is created.
    pub(crate) fn new(what: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        TempDir(std::env::temp_dir().join(format!(
            "patchwell-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// An installed dpkg package for amd64, its own source.
pub(crate) fn package(name: &str, version: &str) -> Package {
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

/// A Debian 12 host's inventory with these packages and nothing offered.
pub(crate) fn inventory(
    hostname: &str,
    collected_at: Timestamp,
    packages: Vec<Package>,
) -> Inventory {
    Inventory {
        schema: protocol::INVENTORY_SCHEMA,
        collected_at,
        host: HostFacts {
            hostname: hostname.into(),
            machine_id: None,
            kernel: "6.1.0-18-amd64".into(),
            arch: "amd64".into(),
            cpu: Cpu {
                model: "EPYC".into(),
                count: 2,
            },
            model: None,
            memory_bytes: 1 << 30,
            disks: vec![],
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some(format!("02:00:00:00:00:{:02x}", hostname.len())),
                addresses: vec![],
            }],
            uptime_seconds: 5,
            boot_time: Timestamp::from_second(T0 - 5).unwrap(),
        },
        os: OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            codename: Some("bookworm".into()),
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
