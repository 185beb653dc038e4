//! The feed parsers against real published data, kept outside the repository
//! in `../shared/data` (beside the project root; see its README.md for
//! sources and dates): the Debian security tracker's DSA and DLA lists, the
//! Alpine secdb for v3.10 and v3.11, CISA's KEV catalog and every
//! endoflife.date product file.
//!
//! The assertions are facts a user of the data would notice: which version
//! fixes DSA-5380-1, how many advisories each list holds, which Alpine
//! versions apk-tools refuses, when CISA added a CVE. A missing data folder
//! fails the test when `CI=true`; elsewhere the test says why and passes.

use std::collections::BTreeSet;
use std::path::PathBuf;

use feeds::{alpine_secdb, debian_tracker, endoflife, kev};
use jiff::civil::{date, Date};
use patchwell_core::advisory::{Advisory, Event, PackageKind, UpdateType};
use patchwell_core::lifecycle::{Lifecycle, SupportEnd};

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
}

/// The real data file at `relative`, or None (after saying why) when it is
/// missing outside CI.
fn read(relative: &str) -> Option<String> {
    let path = data_dir().join(relative);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("real data {} is missing under CI: {e}", path.display())
        }
        Err(e) => {
            eprintln!(
                "skipping: real data {} cannot be read ({e}); it lives in ../shared/data beside the project root",
                path.display()
            );
            None
        }
    }
}

/// The headers of a DSA/DLA list, counted without the parser: every
/// non-blank line that is not indented. Returns each header's advisory id,
/// the fourth word of `[29 Mar 2023] DSA-5380-1 ...`.
fn header_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with([' ', '\t']))
        .map(|line| {
            line.split_whitespace()
                .nth(3)
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn find<'a>(advisories: &'a [Advisory], id: &str) -> &'a Advisory {
    advisories
        .iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("{id} not found"))
}

/// (ecosystem, package, fixed version) of each affected entry.
fn fixes(advisory: &Advisory) -> Vec<(String, String, String)> {
    advisory
        .affected
        .iter()
        .map(|a| {
            assert_eq!(a.kind, PackageKind::Source);
            assert_eq!(a.ranges.len(), 1);
            assert_eq!(a.ranges[0][0], Event::Introduced("0".into()));
            let Event::Fixed(fixed) = &a.ranges[0][1] else {
                panic!("{}: second event is not a fix", advisory.id)
            };
            (
                a.ecosystem.name().to_owned(),
                a.package.clone(),
                fixed.clone(),
            )
        })
        .collect()
}

fn triple(ecosystem: &str, package: &str, version: &str) -> (String, String, String) {
    (ecosystem.into(), package.into(), version.into())
}

#[test]
fn dsa_5380_1_fixes_xorg_server_in_bullseye() {
    let Some(text) = read("debian-security-tracker/DSA.list") else {
        return;
    };
    let parsed = debian_tracker::parse("DSA.list", &text).unwrap();
    let dsa = find(&parsed.items, "DSA-5380-1");
    assert_eq!(dsa.title, "xorg-server - security update");
    assert_eq!(dsa.aliases, ["CVE-2023-1393"]);
    assert_eq!(dsa.update_type, UpdateType::SecurityUpdate);
    assert_eq!(dsa.published, Some("2023-03-29T00:00:00Z".parse().unwrap()));
    assert_eq!(
        fixes(dsa),
        [triple("Debian:11", "xorg-server", "2:1.20.11-1+deb11u6")]
    );
    assert_eq!(
        dsa.references,
        ["https://security-tracker.debian.org/tracker/DSA-5380-1"]
    );
}

#[test]
fn every_dsa_header_becomes_an_advisory_or_a_named_rejection() {
    let Some(text) = read("debian-security-tracker/DSA.list") else {
        return;
    };
    let headers = header_ids(&text);
    assert_eq!(headers.len(), 5406);
    let parsed = debian_tracker::parse("DSA.list", &text).unwrap();
    assert_eq!(parsed.items.len(), 5405);
    // The one record the tracker itself got wrong: a package name where the
    // version belongs ("[woody] - kernel-image-2.4.17-ia64 kernel-image-2.4.17-ia64").
    let rejected: Vec<(&str, &str)> = parsed
        .rejected
        .iter()
        .map(|r| (r.record.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [(
            "DSA-423",
            "line 17244: invalid deb version \"kernel-image-2.4.17-ia64\": version number does not start with digit"
        )]
    );
    let mut seen: Vec<String> = parsed.items.iter().map(|a| a.id.clone()).collect();
    seen.extend(parsed.rejected.iter().map(|r| r.record.clone()));
    let seen: BTreeSet<String> = seen.into_iter().collect();
    let expected: BTreeSet<String> = headers.into_iter().collect();
    assert_eq!(seen, expected);

    // Every DSA is a security update except the regression fixes.
    let regressions = parsed
        .items
        .iter()
        .filter(|a| a.update_type != UpdateType::SecurityUpdate)
        .inspect(|a| assert!(a.title.contains("regression"), "{}", a.title))
        .count();
    let regression_headers = text
        .lines()
        .filter(|l| l.starts_with('[') && l.contains("regression"))
        .count();
    assert_eq!(regressions, regression_headers);
    assert!(regressions > 0);
    // DSAs back to woody (3.0), bullseye (11) the newest in this snapshot.
    let ecosystems: BTreeSet<&str> = parsed
        .items
        .iter()
        .flat_map(|a| a.affected.iter().map(|x| x.ecosystem.name()))
        .collect();
    assert_eq!(
        ecosystems.into_iter().collect::<Vec<_>>(),
        [
            "Debian:10",
            "Debian:11",
            "Debian:3.0",
            "Debian:3.1",
            "Debian:4",
            "Debian:5",
            "Debian:6",
            "Debian:7",
            "Debian:8",
            "Debian:9"
        ]
    );
}

#[test]
fn every_dla_header_becomes_an_advisory() {
    let Some(text) = read("debian-security-tracker/DLA.list") else {
        return;
    };
    let headers = header_ids(&text);
    assert_eq!(headers.len(), 3534);
    let parsed = debian_tracker::parse("DLA.list", &text).unwrap();
    assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
    let ids: Vec<String> = parsed.items.iter().map(|a| a.id.clone()).collect();
    assert_eq!(ids, headers);
    let dla = find(&parsed.items, "DLA-3372-1");
    assert_eq!(dla.aliases, ["CVE-2023-1393"]);
    assert_eq!(
        fixes(dla),
        [triple("Debian:10", "xorg-server", "2:1.20.4-1+deb10u9")]
    );
}

#[test]
fn an_advisory_for_several_releases_has_an_affected_entry_for_each() {
    let Some(text) = read("debian-security-tracker/DSA.list") else {
        return;
    };
    let parsed = debian_tracker::parse("DSA.list", &text).unwrap();
    let dsa = find(&parsed.items, "DSA-4000-1");
    assert_eq!(dsa.aliases.len(), 14);
    assert_eq!(
        fixes(dsa),
        [
            triple("Debian:8", "xorg-server", "2:1.16.4-1+deb8u2"),
            triple("Debian:9", "xorg-server", "2:1.19.2-1+deb9u2"),
        ]
    );
    let several = parsed.items.iter().filter(|a| a.affected.len() > 1).count();
    assert!(several > 100, "{several}");
}

const ALPINE_FILES: [&str; 4] = [
    "v3.10/main.yaml",
    "v3.10/community.yaml",
    "v3.11/main.yaml",
    "v3.11/community.yaml",
];

#[test]
fn alpine_rejects_exactly_the_four_versions_apk_refuses() {
    let mut rejected = Vec::new();
    let mut counts = Vec::new();
    for name in ALPINE_FILES {
        let Some(text) = read(&format!("alpine-secdb/{name}")) else {
            return;
        };
        let parsed = alpine_secdb::parse(name, &text).unwrap();
        counts.push(parsed.items.len());
        for r in parsed.rejected {
            assert!(r.reason.starts_with("invalid apk version"), "{r}");
            rejected.push(r.record);
        }
    }
    assert_eq!(counts, [460, 202, 499, 238]);
    assert_eq!(
        rejected,
        [
            "ALPINE-v3.10-phpmyadmin-4.8.0.-r1",
            "ALPINE-v3.11-opensmtpd-6.6.2p1-r0",
            "ALPINE-v3.11-python2-2.7.16-33",
            "ALPINE-v3.11-xen-4.10-1-r1",
            "ALPINE-v3.11-phpmyadmin-4.8.0.-r1",
        ]
    );
}

#[test]
fn alpine_ansible_2_8_4_r0_fixes_cve_2019_10206_in_v3_10() {
    let Some(text) = read("alpine-secdb/v3.10/main.yaml") else {
        return;
    };
    let parsed = alpine_secdb::parse("v3.10/main.yaml", &text).unwrap();
    let a = find(&parsed.items, "ALPINE-v3.10-ansible-2.8.4-r0");
    assert_eq!(a.title, "ansible 2.8.4-r0: security fixes");
    assert_eq!(a.aliases, ["CVE-2019-10206", "CVE-2019-10217"]);
    assert_eq!(a.update_type, UpdateType::SecurityUpdate);
    assert_eq!(fixes(a), [triple("Alpine:v3.10", "ansible", "2.8.4-r0")]);
    // Xen's entries pair CVEs with Xen's own advisory ids.
    let xen = find(&parsed.items, "ALPINE-v3.10-xen-4.12.1-r0");
    assert!(
        xen.aliases.iter().any(|a| a == "XSA-295"),
        "{:?}",
        xen.aliases
    );
    assert!(
        !xen.aliases.iter().any(|a| a.contains('?')),
        "{:?}",
        xen.aliases
    );
}

#[test]
fn kev_catalog_2025_08_25_has_1404_entries() {
    let Some(text) = read("kev/known_exploited_vulnerabilities.json") else {
        return;
    };
    let catalog = kev::parse("known_exploited_vulnerabilities.json", text.as_bytes()).unwrap();
    assert_eq!(catalog.version, "2025.08.25");
    assert_eq!(
        catalog.released,
        Some("2025-08-25T17:04:19.9796Z".parse().unwrap())
    );
    assert!(
        catalog.entries.rejected.is_empty(),
        "{:?}",
        catalog.entries.rejected
    );
    assert_eq!(catalog.entries.items.len(), 1404);
    let git = catalog
        .entries
        .items
        .iter()
        .find(|e| e.cve == "CVE-2025-48384")
        .unwrap();
    assert_eq!(git.vendor_project, "Git");
    assert_eq!(git.product, "Git");
    assert_eq!(git.date_added, date(2025, 8, 25));
    assert_eq!(git.due_date, Some(date(2025, 9, 15)));
    assert!(!git.ransomware);
    let ransomware = catalog
        .entries
        .items
        .iter()
        .filter(|e| e.ransomware)
        .count();
    assert_eq!(ransomware, 293);
}

fn lifecycle(product: &str) -> Option<Lifecycle> {
    let file = format!("{product}.md");
    let text = read(&format!("endoflife/{file}"))?;
    Some(endoflife::parse(&file, &text).unwrap())
}

#[test]
fn every_endoflife_product_file_parses() {
    let dir = data_dir().join("endoflife");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("real data {} is missing under CI: {e}", dir.display())
        }
        Err(e) => {
            eprintln!("skipping: {} cannot be read ({e})", dir.display());
            return;
        }
    };
    let mut files = 0;
    let mut releases = 0;
    let mut failures = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.to_string_lossy();
        files += 1;
        match endoflife::parse(&file, &text) {
            Ok(lc) => {
                assert_eq!(
                    Some(lc.product.as_str()),
                    path.file_stem().and_then(|s| s.to_str())
                );
                releases += lc.releases.len();
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert_eq!(failures, Vec::<String>::new());
    assert_eq!(files, 462);
    assert_eq!(releases, 8340);
}

#[test]
fn debian_12_bookworm_has_lts_until_2028() {
    let Some(debian) = lifecycle("debian") else {
        return;
    };
    assert_eq!(debian.title, "Debian");
    let bookworm = debian.cycle_of("12.4").unwrap();
    assert_eq!(bookworm.cycle, "12");
    assert_eq!(bookworm.codename.as_deref(), Some("Bookworm"));
    assert_eq!(bookworm.release_date, Some(date(2023, 6, 10)));
    assert_eq!(bookworm.eol, SupportEnd::On(date(2026, 7, 11)));
    assert_eq!(bookworm.extended, Some(SupportEnd::On(date(2028, 6, 30))));
    assert_eq!(bookworm.latest.as_deref(), Some("12.15"));
}

#[test]
fn ubuntu_22_04_has_esm_until_2032() {
    let Some(ubuntu) = lifecycle("ubuntu") else {
        return;
    };
    let jammy = ubuntu.cycle_of("22.04").unwrap();
    assert_eq!(jammy.cycle, "22.04");
    assert_eq!(jammy.codename.as_deref(), Some("Jammy Jellyfish"));
    assert_eq!(jammy.release_date, Some(date(2022, 4, 21)));
    // eoas (2024-09-30, end of active support) is not the end of life.
    assert_eq!(jammy.eol, SupportEnd::On(date(2027, 4, 1)));
    assert_eq!(jammy.extended, Some(SupportEnd::On(date(2032, 4, 9))));
    assert_eq!(jammy.latest.as_deref(), Some("22.04.5"));
}

#[test]
fn alpine_3_20_and_3_10_are_not_3_2_or_3_1() {
    let Some(alpine) = lifecycle("alpine-linux") else {
        return;
    };
    assert_eq!(alpine.product, "alpine-linux");
    assert_eq!(alpine.title, "Alpine Linux");
    let r = alpine.cycle_of("3.20.3").unwrap();
    assert_eq!(r.cycle, "3.20");
    assert_eq!(r.release_date, Some(date(2024, 5, 22)));
    assert_eq!(r.eol, SupportEnd::On(date(2026, 4, 1)));
    assert_eq!(r.extended, None);
    assert_eq!(r.latest.as_deref(), Some("3.20.10"));
    let end = |v: &str| -> Option<Date> {
        match alpine.cycle_of(v)?.eol {
            SupportEnd::On(d) => Some(d),
            _ => None,
        }
    };
    assert_eq!(alpine.cycle_of("3.10.9").unwrap().cycle, "3.10");
    assert_eq!(end("3.10.9"), Some(date(2021, 5, 1)));
    assert_eq!(alpine.cycle_of("3.1.4").unwrap().cycle, "3.1");
    assert_eq!(end("3.1.4"), Some(date(2016, 11, 1)));
}
