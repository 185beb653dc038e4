//! `patchwell scan`, run as a program against real advisory data: the
//! Debian security tracker's DSA list (written out as OSV), a real Ubuntu
//! OSV record, CISA's KEV catalog, and a real Debian root built with
//! mmdebstrap whose apt lists have pending security updates.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn patchwell() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patchwell"))
}

fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "{} is missing and CI=true",
        dir.display()
    );
    eprintln!("skipping: {} is missing", dir.display());
    None
}

fn test_root() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let root = target.join("test-roots/bookworm");
    if root.join(".patchwell-ready").exists() {
        return Some(root);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "the test Debian root is missing and CI=true"
    );
    eprintln!("skipping: the test Debian root is missing (cargo xtask setup)");
    None
}

/// The real DSA list, written out as an OSV directory, one file a record.
fn dsa_as_osv(data: &Path, dir: &Path) -> usize {
    let text = std::fs::read_to_string(data.join("debian-security-tracker/DSA.list")).unwrap();
    let parsed = feeds::debian_tracker::parse("DSA.list", &text).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for a in &parsed.items {
        let body = serde_json::to_vec(&feeds::osv::to_json(a)).unwrap();
        std::fs::write(dir.join(format!("{}.json", a.id)), body).unwrap();
    }
    parsed.items.len()
}

fn status_entry(name: &str, version: &str, source: Option<&str>, status: &str) -> String {
    let mut text = format!(
        "Package: {name}\nStatus: {status}\nPriority: optional\nArchitecture: amd64\nVersion: {version}\n"
    );
    if let Some(source) = source {
        text += &format!("Source: {source}\n");
    }
    text + "Description: test\n\n"
}

fn write_machine(dir: &Path, os_release: &str, status: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let os = dir.join("os-release");
    let db = dir.join("status");
    std::fs::write(&os, os_release).unwrap();
    std::fs::write(&db, status).unwrap();
    (os, db)
}

const BULLSEYE: &str = "PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\nID=debian\nVERSION_ID=\"11\"\nVERSION_CODENAME=bullseye\n";
const BOOKWORM: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n";

fn run(args: &[&std::ffi::OsStr]) -> Output {
    patchwell().arg("scan").args(args).output().unwrap()
}

/// Scans a copied dpkg database and os-release against an OSV path.
fn scan_copy(db: &Path, os: &Path, osv: &Path, extra: &[&std::ffi::OsStr]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--dpkg-status".as_ref(),
        db.as_os_str(),
        "--os-release".as_ref(),
        os.as_os_str(),
        "--osv".as_ref(),
        osv.as_os_str(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn json_of(out: &Output) -> Vec<Value> {
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_bullseye_machine_is_matched_against_real_dsas_with_reasons_and_kev() {
    let Some(data) = shared_data() else { return };
    let tmp = tempdir("bullseye");
    let osv = tmp.join("osv");
    assert!(dsa_as_osv(&data, &osv) > 5000);
    let status = [
        // DSA-5380-1: xorg-server fixed in 2:1.20.11-1+deb11u6; a binary of it.
        status_entry(
            "xserver-xorg-core",
            "2:1.20.11-1+deb11u5",
            Some("xorg-server"),
            "install ok installed",
        ),
        // A binNMU: binary version 2.32.1-1+b1 of source 2.32.1-1, below
        // DSA-5351-1's 2.38.5-1~deb11u1 (CVE-2023-23529 is known exploited)
        // and the fixes of several earlier webkit2gtk advisories.
        status_entry(
            "libwebkit2gtk-4.0-37",
            "2.32.1-1+b1",
            Some("webkit2gtk (2.32.1-1)"),
            "install ok installed",
        ),
        // Removed, configuration kept: not installed.
        status_entry("cacti", "1.2.16+ds1-2", None, "deinstall ok config-files"),
        // Already fixed.
        status_entry("apache2", "2.4.56-1~deb11u1", None, "install ok installed"),
    ]
    .concat();
    let (os, db) = write_machine(&tmp.join("m"), BULLSEYE, &status);
    let kev = data.join("kev/known_exploited_vulnerabilities.json");
    let out = scan_copy(
        &db,
        &os,
        &osv,
        &[
            "--kev".as_ref(),
            kev.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = json_of(&out);
    let find = |id: &str| {
        findings
            .iter()
            .find(|f| f["advisory"] == id)
            .unwrap_or_else(|| panic!("no {id} in {findings:#?}"))
    };
    let xorg = find("DSA-5380-1");
    assert_eq!(xorg["package"], "xserver-xorg-core");
    assert_eq!(xorg["source"], "xorg-server");
    assert_eq!(xorg["fixed"], "2:1.20.11-1+deb11u6");
    assert_eq!(xorg["aliases"][0], "CVE-2023-1393");
    assert_eq!(xorg["kev"], false);
    let webkit = find("DSA-5351-1");
    assert_eq!(webkit["installed"], "2.32.1-1+b1");
    assert_eq!(webkit["source_version"], "2.32.1-1");
    assert_eq!(webkit["kev"], true);
    assert!(webkit["reason"]
        .as_str()
        .unwrap()
        .starts_with("libwebkit2gtk-4.0-37 2.32.1-1+b1 (from source webkit2gtk 2.32.1-1) is below 2.38.5-1~deb11u1"));
    // Older webkit2gtk advisories are covered by the newest fix: one
    // finding stands, the others name it.
    let webkit: Vec<&Value> = findings
        .iter()
        .filter(|f| f["source"] == "webkit2gtk")
        .collect();
    assert!(webkit.len() > 5, "{webkit:#?}");
    let standing: Vec<&&Value> = webkit
        .iter()
        .filter(|f| f["superseded_by"].is_null())
        .collect();
    assert_eq!(standing.len(), 1);
    let top = standing[0]["advisory"].as_str().unwrap();
    assert!(webkit
        .iter()
        .filter(|f| f["advisory"] != top)
        .all(|f| f["superseded_by"] == top));
    assert!(!findings
        .iter()
        .any(|f| f["package"] == "cacti" || f["package"] == "apache2"));

    // The known exploited finding counts as critical for --fail-on.
    let fail_on: [&std::ffi::OsStr; 2] = ["--fail-on".as_ref(), "critical".as_ref()];
    // Without KEV nothing is rated: the exit status is 0.
    assert_eq!(scan_copy(&db, &os, &osv, &fail_on).status.code(), Some(0));
    let out = scan_copy(
        &db,
        &os,
        &osv,
        &[fail_on[0], fail_on[1], "--kev".as_ref(), kev.as_os_str()],
    );
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8(out.stdout).unwrap();
    let last = table.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "{} findings on debian 11 (Debian:11",
            findings.len()
        )),
        "{last}"
    );
    assert!(last.contains("known exploited"), "{last}");

    // The same packages on Debian 12 match no bullseye advisory.
    let (os12, _) = write_machine(&tmp.join("m12"), BOOKWORM, &status);
    let out = scan_copy(&db, &os12, &osv, &["--format".as_ref(), "json".as_ref()]);
    assert_eq!(json_of(&out), Vec::<Value>::new());
}

#[test]
fn the_real_ubuntu_notice_matches_its_binaries_on_ubuntu_14_04_only() {
    let Some(data) = shared_data() else { return };
    let tmp = tempdir("ubuntu");
    let osv = data.join("ubuntu-osv/USN-2341-1.json");
    let trusty = "NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"14.04\"\nVERSION_CODENAME=trusty\n";
    let status = [
        status_entry(
            "libcups2",
            "1.7.2-0ubuntu1.1",
            Some("cups"),
            "install ok installed",
        ),
        status_entry(
            "cups-client",
            "1.7.2-0ubuntu1.2",
            Some("cups"),
            "install ok installed",
        ),
    ]
    .concat();
    let (os, db) = write_machine(&tmp.join("m"), trusty, &status);
    let out = scan_copy(&db, &os, &osv, &["--format".as_ref(), "json".as_ref()]);
    let findings = json_of(&out);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0]["package"], "libcups2");
    assert_eq!(findings[0]["advisory"], "USN-2341-1");
    assert_eq!(findings[0]["fixed"], "1.7.2-0ubuntu1.2");
    assert_eq!(findings[0]["ecosystem"], "Ubuntu:14.04:LTS");
    let aliases: Vec<&str> = findings[0]["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["CVE-2014-5029", "CVE-2014-5030", "CVE-2014-5031"]);
    // Ubuntu 16.04 is another release.
    let xenial = "ID=ubuntu\nVERSION_ID=\"16.04\"\n";
    let (os, db) = write_machine(&tmp.join("x"), xenial, &status);
    let out = scan_copy(&db, &os, &osv, &["--format".as_ref(), "json".as_ref()]);
    assert!(json_of(&out).is_empty());
}

#[test]
fn a_real_bookworm_root_reports_its_pending_security_updates_and_extended_support() {
    let Some(root) = test_root() else { return };
    let Some(data) = shared_data() else { return };
    // An OSV directory with nothing for bookworm: the findings come from the
    // root's own apt lists and from endoflife.date.
    let osv = data.join("ubuntu-osv");
    let out = run(&[
        "--root".as_ref(),
        root.as_os_str(),
        "--osv".as_ref(),
        osv.as_os_str(),
        "--endoflife".as_ref(),
        data.join("endoflife/debian.md").as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let findings = json_of(&out);
    let updates: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "security-update")
        .collect();
    // The root is bookworm without its security suite's updates applied:
    // apt, perl and others have some waiting.
    assert!(!updates.is_empty(), "no security update in {findings:#?}");
    for u in &updates {
        let suite = u["offered_suite"].as_str().unwrap();
        assert!(suite.ends_with("-security"), "{suite}");
        let (installed, offered) = (
            u["installed"].as_str().unwrap(),
            u["offered"].as_str().unwrap(),
        );
        assert_eq!(
            versions::compare(versions::Ecosystem::Deb, installed, offered).unwrap(),
            std::cmp::Ordering::Less
        );
    }
    // Debian 12's security support ended 2026-07-11; LTS goes on to 2028.
    let eol: Vec<&Value> = findings
        .iter()
        .filter(|f| f["kind"] == "end-of-life")
        .collect();
    assert_eq!(eol.len(), 1);
    assert!(eol[0]["reason"]
        .as_str()
        .unwrap()
        .contains("extended support only, until 2028-06-30"));
}

#[test]
fn bad_input_exits_2_and_names_it() {
    let tmp = tempdir("bad");
    let (os, db) = write_machine(&tmp.join("m"), BOOKWORM, "Package: x\nVersion: 1\n\n");
    let missing = tmp.join("no-such-dir");
    let out = scan_copy(&db, &os, &missing, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    // A file that is not OSV at all.
    let junk = tmp.join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let out = scan_copy(&db, &os, &junk, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid OSV feed"));
    // A severity that does not exist.
    let out = run(&[
        "--osv".as_ref(),
        junk.as_os_str(),
        "--fail-on".as_ref(),
        "urgent".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"urgent\" is not a severity"));
}

fn tempdir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("patchwell-scan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
