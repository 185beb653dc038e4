//! The agent against real systems: this machine's dpkg database, and a real
//! Debian root built by `cargo xtask setup` with mmdebstrap (out of date, with
//! the security suite in its apt lists, one package removed but configured).
//! The references are the system's own tools: `dpkg-query` and `apt`.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;

use protocol::{Inventory, PackageState};

/// A package as `dpkg-query` shows it: name, arch, version, source, source
/// version, status.
type Row = (String, String, String, String, String, String);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip_or_fail(what: &str) {
    assert!(
        !in_ci(),
        "{what} is missing and CI=true: run `cargo xtask setup`"
    );
    eprintln!("skipping: {what} is missing (run `cargo xtask setup`)");
}

/// The root that `cargo xtask setup` builds.
fn test_root() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let root = target.join("test-roots/bookworm");
    if root.join(".patchwell-ready").exists() {
        Some(root)
    } else {
        skip_or_fail("the test Debian root");
        None
    }
}

/// `dpkg-query` over a database: (name, arch, version, source, source version, status).
fn dpkg_query(admindir: &Path) -> BTreeSet<Row> {
    let out = Command::new("dpkg-query")
        .arg(format!("--admindir={}", admindir.display()))
        .args(["-W", "-f=${Package}\t${Architecture}\t${Version}\t${source:Package}\t${source:Version}\t${db:Status-Status}\n"])
        .output()
        .expect("run dpkg-query");
    assert!(
        out.status.success(),
        "dpkg-query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            // dpkg-query lists packages it only remembers; the agent leaves them out.
            (f[5] != "not-installed").then(|| {
                (
                    f[0].into(),
                    f[1].into(),
                    f[2].into(),
                    f[3].into(),
                    f[4].into(),
                    f[5].into(),
                )
            })
        })
        .collect()
}

fn as_dpkg_query_rows(
    packages: &[protocol::Package],
) -> BTreeSet<(String, String, String, String, String, String)> {
    packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.arch.clone(),
                p.version.clone(),
                p.source.clone().unwrap_or_default(),
                p.source_version.clone().unwrap_or_default(),
                p.state.as_str().to_owned(),
            )
        })
        .collect()
}

#[test]
fn this_machines_dpkg_database_reads_as_dpkg_query_reads_it() {
    let file = std::fs::File::open("/var/lib/dpkg/status").expect("this machine's dpkg database");
    let (packages, warnings) =
        agent::dpkg::parse_status(BufReader::new(file), "/var/lib/dpkg/status").unwrap();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(packages.len() > 100, "only {} packages", packages.len());
    // binNMUs are where source and binary versions differ.
    assert!(packages
        .iter()
        .any(|p| p.source_version.as_deref() != Some(p.version.as_str())));
    assert_eq!(
        as_dpkg_query_rows(&packages),
        dpkg_query(Path::new("/var/lib/dpkg"))
    );
}

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_patchwell-agent"))
        .args(args)
        .output()
        .expect("run patchwell-agent")
}

#[test]
fn inventory_of_a_real_debian_root_matches_dpkg_and_apt() {
    let Some(root) = test_root() else { return };
    let out = agent(&[
        "inventory",
        "--root",
        root.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inv: Inventory =
        serde_json::from_slice(&out.stdout).expect("the agent's JSON is an Inventory");

    assert_eq!(inv.schema, protocol::INVENTORY_SCHEMA);
    assert_eq!(inv.os.id, "debian");
    assert_eq!(inv.os.version_id.as_deref(), Some("12"));
    assert_eq!(inv.os.codename.as_deref(), Some("bookworm"));
    assert_eq!(inv.host.arch, "amd64");
    assert!(inv.warnings.is_empty(), "{:#?}", inv.warnings);

    // Every package as dpkg-query reports it, including the removed one.
    assert_eq!(
        as_dpkg_query_rows(&inv.packages),
        dpkg_query(&root.join("var/lib/dpkg"))
    );
    let cron = inv
        .packages
        .iter()
        .find(|p| p.name == "cron")
        .expect("cron is remembered");
    assert_eq!(cron.state, PackageState::ConfigFiles);
    assert!(!cron.state.is_installed());

    // Updates as the root's own apt sees them.
    let apt = Command::new("chroot")
        .arg(&root)
        .args(["apt", "list", "--upgradable"])
        .env("LC_ALL", "C")
        .output()
        .expect("run apt in the root");
    assert!(
        apt.status.success(),
        "{}",
        String::from_utf8_lossy(&apt.stderr)
    );
    // Lines like "apt/oldstable-security 2.6.2 amd64 [upgradable from: 2.6.1]".
    let expected: BTreeSet<(String, String, String, bool)> = String::from_utf8_lossy(&apt.stdout)
        .lines()
        .filter(|l| l.contains("[upgradable from: "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let (name, suites) = words[0].split_once('/').unwrap();
            let from = words.last().unwrap().trim_end_matches(']');
            (
                name.to_owned(),
                words[1].to_owned(),
                from.to_owned(),
                suites.contains("-security"),
            )
        })
        .collect();
    let ours: BTreeSet<(String, String, String, bool)> = inv
        .updates
        .iter()
        .map(|u| {
            (
                u.name.clone(),
                u.candidate.clone(),
                u.installed.clone(),
                u.security,
            )
        })
        .collect();
    assert!(!expected.is_empty(), "the test root should be out of date");
    assert_eq!(ours, expected);
    assert!(inv
        .updates
        .iter()
        .all(|u| u.codename.as_deref() == Some("bookworm-security")));

    assert!(inv.reboot.required);
    assert_eq!(inv.reboot.packages, ["libc6", "libssl3"]);
    assert!(!inv.host.kernel.is_empty());
    assert!(inv.host.memory_bytes > 0);
    assert!(inv.host.cpu.count > 0);

    // The root's own name and machine id, as its files say.
    let file = |path: &str| {
        std::fs::read_to_string(root.join(path))
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty() && t != "uninitialized")
    };
    let nodename = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    assert_eq!(inv.host.hostname, file("etc/hostname").unwrap_or(nodename));
    assert_eq!(inv.host.machine_id, file("etc/machine-id"));
    // The machine's own disks, uptime and boot time, from /proc.
    let rootfs = inv
        .host
        .disks
        .iter()
        .find(|d| d.mount_point == "/")
        .expect("the root file system is listed");
    assert!(
        rootfs.size_bytes > 0 && rootfs.available_bytes <= rootfs.size_bytes,
        "{rootfs:?}"
    );
    assert!(
        !rootfs.fs_type.is_empty() && !rootfs.device.is_empty(),
        "{rootfs:?}"
    );
    assert!(inv.host.uptime_seconds > 0);
    let booted = inv.host.boot_time.as_second() + i64::try_from(inv.host.uptime_seconds).unwrap();
    assert!(
        (booted - inv.collected_at.as_second()).abs() <= 5,
        "boot time {} plus uptime {} s is not the time of collection {}",
        inv.host.boot_time,
        inv.host.uptime_seconds,
        inv.collected_at
    );
    // Loopback, with its address, from `ip -json addr`.
    let lo = inv
        .host
        .interfaces
        .iter()
        .find(|i| i.name == "lo")
        .expect("the loopback interface");
    assert!(lo.addresses.iter().any(|a| a == "127.0.0.1/8"), "{lo:?}");
}

#[test]
fn the_text_summary_names_the_security_updates() {
    let Some(root) = test_root() else { return };
    let out = agent(&["inventory", "--root", root.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("os:       Debian GNU/Linux 12 (bookworm)"),
        "{text}"
    );
    assert!(text.contains("from security suites"), "{text}");
    assert!(text.contains("(bookworm-security)"), "{text}");
    assert!(text.contains("reboot:   required"), "{text}");
}

#[test]
fn a_root_that_is_not_a_system_gets_a_clear_error() {
    let empty = std::env::temp_dir().join(format!("patchwell-empty-root-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = agent(&["inventory", "--root", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no etc/os-release") && err.contains(empty.to_str().unwrap()),
        "{err}"
    );

    std::fs::create_dir_all(empty.join("etc")).unwrap();
    std::fs::write(empty.join("etc/os-release"), "NAME=nothing\n").unwrap();
    let out = agent(&["inventory", "--root", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ID= line"));

    let missing = empty.join("does-not-exist");
    let out = agent(&["inventory", "--root", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
    std::fs::remove_dir_all(&empty).ok();
}

#[test]
fn a_damaged_dpkg_database_is_reported_and_the_rest_still_read() {
    let root = std::env::temp_dir().join(format!("patchwell-damaged-root-{}", std::process::id()));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: good\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n\
         Package: bad\nStatus: install ok\nVersion: 1.0\n\n\
         Package: dpkg\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1.21.22\n",
    )
    .unwrap();
    let out = agent(&[
        "inventory",
        "--root",
        root.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inv: Inventory = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["good", "dpkg"]);
    assert_eq!(
        inv.host.arch, "arm64",
        "the native architecture is dpkg's own"
    );
    assert!(
        inv.warnings
            .iter()
            .any(|w| w.contains("line 6") && w.contains("package bad has a malformed Status")),
        "{:#?}",
        inv.warnings
    );
    std::fs::remove_dir_all(&root).ok();
}
