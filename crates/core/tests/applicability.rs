//! Applicability on hand-made hosts and advisories: every rule the reason
//! text promises, checked one at a time.

use jiff::civil::date;
use patchwell_core::advisory::{Advisory, Affected, Ecosystem, Event, PackageKind, UpdateType};
use patchwell_core::applicability::{
    Exposure, HostView, Index, InstalledPackage, MatchedBy, Offer, OfferedUpdate,
};
use patchwell_core::fleet::Fleet;
use patchwell_core::lifecycle::{Lifecycle, ReleaseCycle, SupportEnd};

fn pkg(name: &str, version: &str, source: &str, source_version: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source: source.into(),
        source_version: source_version.into(),
        installed: true,
    }
}

fn host(os_version: &str, packages: Vec<InstalledPackage>) -> HostView {
    HostView {
        os_id: "debian".into(),
        os_version: Some(os_version.into()),
        scheme: versions::Ecosystem::Deb,
        kernel_release: "6.1.0-17-amd64".into(),
        packages,
        updates: Vec::new(),
    }
}

fn advisory(id: &str, ecosystem: &str, package: &str, events: Vec<Event>) -> Advisory {
    let mut a = Advisory::new(id, UpdateType::SecurityUpdate);
    a.aliases = vec![format!("CVE-2024-{}", id.len())];
    a.affected.push(Affected {
        ecosystem: Ecosystem::parse(ecosystem).unwrap(),
        package: package.into(),
        kind: if ecosystem.starts_with("Vendor:") {
            PackageKind::Binary
        } else {
            PackageKind::Source
        },
        ranges: vec![events],
        versions: Vec::new(),
        binaries: Vec::new(),
    });
    a
}

fn fixed(v: &str) -> Vec<Event> {
    vec![Event::Introduced("0".into()), Event::Fixed(v.into())]
}

const TODAY: jiff::civil::Date = date(2026, 11, 22);

#[test]
fn a_binnmu_is_compared_by_its_source_version_and_the_reason_says_so() {
    let mut index = Index::new();
    index.insert(advisory("DSA-1", "Debian:12", "libfoo", fixed("1.0.9-3")));
    let h = host(
        "12",
        vec![pkg("libfoo1", "1.0.9-2+b6", "libfoo", "1.0.9-2")],
    );
    let report = index.evaluate(&h, TODAY);
    assert_eq!(report.findings.len(), 1);
    let f = &report.findings[0];
    assert_eq!(f.matched_by, MatchedBy::Source);
    assert_eq!(f.fixed, Some("1.0.9-3"));
    assert_eq!(
        f.reason(),
        "libfoo1 1.0.9-2+b6 (from source libfoo 1.0.9-2) is below 1.0.9-3, which fixes DSA-1 for \
         Debian:12; the package manager does not offer the fix yet"
    );
    // The binNMU of the fixed source is not affected, though its binary
    // version sorts above the fix's.
    let h = host(
        "12",
        vec![pkg("libfoo1", "1.0.9-3+b1", "libfoo", "1.0.9-3")],
    );
    assert!(index.evaluate(&h, TODAY).findings.is_empty());
}

#[test]
fn a_release_never_matches_another_release_or_distribution() {
    let mut index = Index::new();
    for eco in ["Debian:11", "Ubuntu:22.04:LTS", "Alpine:v3.20", "Debian"] {
        index.insert(advisory(&format!("A-{eco}"), eco, "openssl", fixed("9.9")));
    }
    let h = host(
        "12",
        vec![pkg("openssl", "3.0.11-1", "openssl", "3.0.11-1")],
    );
    assert!(index.evaluate(&h, TODAY).findings.is_empty());
    index.insert(advisory("A-12", "Debian:12", "openssl", fixed("9.9")));
    let ids: Vec<&str> = index
        .evaluate(&h, TODAY)
        .findings
        .iter()
        .map(|f| f.advisory.id.as_str())
        .collect();
    assert_eq!(ids, ["A-12"]);
}

#[test]
fn removed_but_configured_packages_are_not_installed() {
    let mut index = Index::new();
    index.insert(advisory("DSA-2", "Debian:12", "cron", fixed("3.0pl1-163")));
    let mut cron = pkg("cron", "3.0pl1-162", "cron", "3.0pl1-162");
    cron.installed = false;
    assert!(index
        .evaluate(&host("12", vec![cron]), TODAY)
        .findings
        .is_empty());
}

#[test]
fn ranges_follow_osv_introduced_fixed_last_affected_and_several_ranges() {
    let mut index = Index::new();
    index.insert(advisory(
        "R-1",
        "Debian:12",
        "p",
        vec![
            Event::Introduced("1.0".into()),
            Event::Fixed("1.5".into()),
            Event::Introduced("2.0".into()),
            Event::LastAffected("2.3".into()),
        ],
    ));
    let verdict = |v: &str| {
        let h = host("12", vec![pkg("p", v, "p", v)]);
        index.evaluate(&h, TODAY).findings.first().map(|f| {
            (
                f.fixed.map(str::to_owned),
                f.last_affected.map(str::to_owned),
            )
        })
    };
    assert_eq!(verdict("0.9"), None);
    assert_eq!(verdict("1.0"), Some((Some("1.5".into()), None)));
    assert_eq!(verdict("1.4"), Some((Some("1.5".into()), None)));
    assert_eq!(verdict("1.5"), None);
    assert_eq!(verdict("1.9"), None);
    // Only the last affected version is known: no fix to name.
    assert_eq!(verdict("2.3"), Some((None, Some("2.3".into()))));
    assert_eq!(verdict("2.3.1"), None);
}

#[test]
fn the_offer_of_the_package_manager_is_compared_with_the_fix() {
    let mut index = Index::new();
    index.insert(advisory(
        "DSA-3",
        "Debian:12",
        "openssl",
        fixed("3.0.15-1~deb12u1"),
    ));
    let mut h = host(
        "12",
        vec![pkg(
            "libssl3",
            "3.0.11-1~deb12u2",
            "openssl",
            "3.0.11-1~deb12u2",
        )],
    );
    h.updates.push(OfferedUpdate {
        name: "libssl3".into(),
        installed: "3.0.11-1~deb12u2".into(),
        candidate: "3.0.17-1~deb12u2".into(),
        suite: Some("bookworm-security".into()),
        security: true,
    });
    let report = index.evaluate(&h, TODAY);
    assert_eq!(
        report.findings[0].offer,
        Offer::Offered {
            candidate: "3.0.17-1~deb12u2".into(),
            suite: Some("bookworm-security".into())
        }
    );
    assert!(report.findings[0]
        .reason()
        .ends_with("the package manager offers 3.0.17-1~deb12u2 from bookworm-security"));
    // The apt metadata alone is a finding too, and names the advisory it brings.
    assert_eq!(report.security_updates.len(), 1);
    assert_eq!(report.security_updates[0].advisories, ["DSA-3"]);
    h.updates[0].candidate = "3.0.13-1".into();
    let report = index.evaluate(&h, TODAY);
    assert_eq!(
        report.findings[0].offer,
        Offer::TooOld {
            candidate: "3.0.13-1".into()
        }
    );
    assert!(report.security_updates[0].advisories.is_empty());
}

#[test]
fn only_the_running_kernel_counts_and_an_installed_fix_waits_for_reboot() {
    let mut index = Index::new();
    index.insert(advisory("DSA-4", "Debian:12", "linux", fixed("6.1.76-1")));
    let running = pkg(
        "linux-image-6.1.0-17-amd64",
        "6.1.69-1",
        "linux",
        "6.1.69-1",
    );
    let newer = pkg(
        "linux-image-6.1.0-18-amd64",
        "6.1.76-1",
        "linux",
        "6.1.76-1",
    );
    let old = pkg(
        "linux-image-6.1.0-16-amd64",
        "6.1.67-1",
        "linux",
        "6.1.67-1",
    );
    let report = index.evaluate(&host("12", vec![running.clone()]), TODAY);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].exposure, Exposure::Exposed);
    let report = index.evaluate(
        &host("12", vec![running.clone(), newer.clone(), old.clone()]),
        TODAY,
    );
    // The old image does not run: no finding for it.
    assert_eq!(report.findings.len(), 1);
    assert_eq!(
        report.findings[0].exposure,
        Exposure::FixedAwaitingReboot {
            running: "linux-image-6.1.0-17-amd64".into(),
            fixed_package: "linux-image-6.1.0-18-amd64".into(),
            fixed_version: "6.1.76-1".into(),
        }
    );
    assert!(report.findings[0].reason().contains("exposed until reboot"));
    // After the reboot into the fixed kernel: nothing.
    let mut rebooted = host("12", vec![running, newer, old]);
    rebooted.kernel_release = "6.1.0-18-amd64".into();
    assert!(index.evaluate(&rebooted, TODAY).findings.is_empty());
}

#[test]
fn a_newer_fix_of_the_same_package_supersedes_the_older_advisory() {
    let mut index = Index::new();
    let mut older = advisory("DSA-10", "Debian:12", "curl", fixed("7.88.1-10+deb12u5"));
    older.published = Some("2024-01-01T00:00:00Z".parse().unwrap());
    let mut newer = advisory("DSA-20", "Debian:12", "curl", fixed("7.88.1-10+deb12u8"));
    newer.published = Some("2024-06-01T00:00:00Z".parse().unwrap());
    index.insert(older);
    index.insert(newer);
    let h = host(
        "12",
        vec![pkg(
            "curl",
            "7.88.1-10+deb12u4",
            "curl",
            "7.88.1-10+deb12u4",
        )],
    );
    let report = index.evaluate(&h, TODAY);
    let by_id = |id: &str| {
        report
            .findings
            .iter()
            .find(|f| f.advisory.id == id)
            .unwrap()
    };
    assert_eq!(by_id("DSA-10").superseded_by, Some("DSA-20"));
    assert_eq!(by_id("DSA-20").superseded_by, None);
    let ids: Vec<&str> = index
        .superseded_by("DSA-10")
        .iter()
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(ids, ["DSA-20"]);
    assert!(index.superseded_by("DSA-20").is_empty());
}

#[test]
fn vendor_feeds_match_binary_packages_in_any_release_and_withdrawn_advisories_never() {
    let mut index = Index::new();
    index.insert(advisory("PWV-1", "Vendor:dpkg", "zoom", fixed("6.2.0")));
    let mut gone = advisory("W-1", "Debian:12", "zoom", fixed("9"));
    gone.withdrawn = Some("2024-01-01T00:00:00Z".parse().unwrap());
    index.insert(gone);
    let report = index.evaluate(
        &host("11", vec![pkg("zoom", "6.1.1", "zoom", "6.1.1")]),
        TODAY,
    );
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].matched_by, MatchedBy::Vendor);
    assert_eq!(report.findings[0].advisory.id, "PWV-1");
}

#[test]
fn an_os_release_in_extended_support_is_a_finding() {
    let mut index = Index::new();
    index.add_lifecycle(Lifecycle {
        product: "debian".into(),
        title: "Debian".into(),
        releases: vec![ReleaseCycle {
            cycle: "12".into(),
            codename: Some("Bookworm".into()),
            release_date: None,
            eol: SupportEnd::On(date(2026, 7, 11)),
            extended: Some(SupportEnd::On(date(2028, 6, 30))),
            latest: None,
        }],
    });
    let report = index.evaluate(&host("12", Vec::new()), TODAY);
    let lc = report.lifecycle.expect("a finding");
    assert_eq!(lc.support.as_str(), "extended-support");
    assert!(index
        .evaluate(&host("12", Vec::new()), date(2025, 1, 1))
        .lifecycle
        .is_none());
}

#[test]
fn the_fleet_checks_each_distinct_version_once_and_follows_deltas_and_new_advisories() {
    let mut index = Index::new();
    index.insert(advisory("DSA-1", "Debian:12", "openssl", fixed("3.0.15-1")));
    let mut fleet = Fleet::new(index);
    let vulnerable = || {
        host(
            "12",
            vec![
                pkg("libssl3", "3.0.11-1", "openssl", "3.0.11-1"),
                pkg("openssl", "3.0.11-1", "openssl", "3.0.11-1"),
                pkg("bash", "5.2.15-2+b2", "bash", "5.2.15-2"),
            ],
        )
    };
    let first = fleet.set_host(1, &vulnerable());
    // openssl source key, bash source key, three binary keys.
    assert_eq!(first.keys_checked, 5);
    assert_eq!(first.added, [0]);
    // A second host with the same versions checks nothing new.
    assert_eq!(fleet.set_host(2, &vulnerable()).keys_checked, 0);
    let mut other = vulnerable();
    other.os_version = Some("11".into());
    fleet.set_host(3, &other);
    assert_eq!(fleet.advisory_hosts(0), [1, 2]);
    // A delta: host 2 upgrades openssl; only the new versions are checked.
    let mut upgraded = vulnerable();
    for p in &mut upgraded.packages[..2] {
        p.version = "3.0.15-1".into();
        p.source_version = "3.0.15-1".into();
    }
    let change = fleet.set_host(2, &upgraded);
    assert_eq!(change.keys_checked, 3);
    assert_eq!(change.removed, [0]);
    assert_eq!(fleet.advisory_hosts(0), [1]);
    // A new advisory for bash reaches hosts 1 and 2 (Debian 12), not 3.
    let hosts = fleet.add_advisory(advisory(
        "DSA-2",
        "Debian:12",
        "bash",
        fixed("5.2.15-2+deb12u1"),
    ));
    assert_eq!(hosts, [1, 2]);
    assert_eq!(fleet.host_advisories(1), [0, 1]);
    // Full evaluation agrees with checking each host on its own.
    assert_eq!(fleet.evaluate_all(), 3);
    for (id, view) in [(1, vulnerable()), (2, upgraded), (3, other)] {
        let mut alone: Vec<u32> = fleet
            .index()
            .evaluate(&view, TODAY)
            .findings
            .iter()
            .map(|f| fleet.index().position(&f.advisory.id).unwrap())
            .collect();
        alone.dedup();
        assert_eq!(fleet.host_advisories(id), alone.as_slice(), "host {id}");
    }
}

#[test]
fn a_delta_applied_to_the_fleet_equals_the_whole_inventory_replaced() {
    let mut index = Index::new();
    index.insert(advisory("DSA-1", "Debian:12", "openssl", fixed("3.0.15-1")));
    index.insert(advisory(
        "DSA-2",
        "Debian:12",
        "bash",
        fixed("5.2.15-2+deb12u1"),
    ));
    let before = host(
        "12",
        vec![
            pkg("libssl3", "3.0.11-1", "openssl", "3.0.11-1"),
            pkg("openssl", "3.0.11-1", "openssl", "3.0.11-1"),
            pkg("bash", "5.2.15-2+b2", "bash", "5.2.15-2"),
        ],
    );
    let mut by_delta = Fleet::new(index.clone());
    let mut by_replacing = Fleet::new(index);
    by_delta.set_host(7, &before);
    by_replacing.set_host(7, &before);

    // libssl3 goes; the openssl binary stays, so the openssl source key
    // (and DSA-1) stays too.
    let removed = vec![before.packages[0].clone()];
    let change = by_delta.update_host(7, &removed, &[]).unwrap();
    assert!(change.removed.is_empty());
    assert_eq!(by_delta.host_advisories(7), [0, 1]);

    // bash is upgraded to the fix: DSA-2 goes.
    let upgraded = pkg("bash", "5.2.15-2+deb12u1", "bash", "5.2.15-2+deb12u1");
    let change = by_delta
        .update_host(
            7,
            &[before.packages[2].clone()],
            std::slice::from_ref(&upgraded),
        )
        .unwrap();
    assert_eq!(change.removed, [1]);
    assert_eq!(change.keys_checked, 2);

    let after = host("12", vec![before.packages[1].clone(), upgraded]);
    by_replacing.set_host(7, &after);
    assert_eq!(by_delta.host_advisories(7), by_replacing.host_advisories(7));
    assert_eq!(by_delta.advisory_hosts(0), by_replacing.advisory_hosts(0));
    assert_eq!(by_delta.advisory_hosts(1), by_replacing.advisory_hosts(1));
    // A host the fleet does not hold is for set_host.
    assert!(by_delta.update_host(8, &[], &[]).is_none());
}

#[test]
fn a_compacted_fleet_forgets_what_no_host_has_and_answers_as_before() {
    let mut index = Index::new();
    index.insert(advisory("DSA-1", "Debian:12", "openssl", fixed("3.0.15-1")));
    let mut fleet = Fleet::new(index);
    // A host that listed a thousand packages once, and then a few.
    let many: Vec<_> = (0..1000)
        .map(|i| pkg(&format!("junk{i}"), "1.0-1", &format!("junk{i}"), "1.0-1"))
        .collect();
    fleet.set_host(1, &host("12", many));
    let few = || {
        host(
            "12",
            vec![
                pkg("libssl3", "3.0.11-1", "openssl", "3.0.11-1"),
                pkg("bash", "5.2.15-2+b2", "bash", "5.2.15-2"),
            ],
        )
    };
    fleet.set_host(1, &few());
    fleet.set_host(2, &few());
    assert_eq!(fleet.key_count(), 2004);
    assert_eq!(fleet.unused_keys(), 2000);
    assert_eq!(fleet.compact(), 2000);
    assert_eq!((fleet.key_count(), fleet.unused_keys()), (4, 0));
    assert_eq!(fleet.compact(), 0);
    // A host that moves to another release leaves its old place behind,
    // and compacting forgets it.
    fleet.set_host(3, &host("11", vec![pkg("bash", "5.1-2", "bash", "5.1-2")]));
    fleet.set_host(3, &host("13", vec![pkg("bash", "5.2-1", "bash", "5.2-1")]));
    assert_eq!(fleet.place_count(), 3);
    assert_eq!(fleet.compact(), 2);
    assert_eq!(fleet.place_count(), 2);

    // The same answers, and deltas and new advisories work on.
    assert_eq!(fleet.advisory_hosts(0), [1, 2]);
    assert_eq!(fleet.host_advisories(2), [0]);
    let upgraded = pkg("libssl3", "3.0.15-1", "openssl", "3.0.15-1");
    let change = fleet
        .update_host(2, &[few().packages[0].clone()], &[upgraded])
        .unwrap();
    assert_eq!(change.removed, [0]);
    assert_eq!(fleet.advisory_hosts(0), [1]);
    let hosts = fleet.add_advisory(advisory(
        "DSA-2",
        "Debian:12",
        "bash",
        fixed("5.2.15-2+deb12u1"),
    ));
    assert_eq!(hosts, [1, 2]);
    // A version seen again after it was dropped is checked again.
    assert_eq!(
        fleet
            .set_host(
                3,
                &host("12", vec![pkg("junk7", "1.0-1", "junk7", "1.0-1")])
            )
            .keys_checked,
        2
    );
    assert_eq!(fleet.evaluate_all(), 3);
}

#[test]
fn rpm_distributions_match_binary_packages_and_the_running_kernel() {
    let mut index = Index::new();
    let mut a = Advisory::new("RLSA-2024:0001", UpdateType::SecurityUpdate);
    for (package, fix) in [
        ("openssl-libs", "1:3.0.7-25.el9_3"),
        ("kernel-core", "5.14.0-362.18.1.el9_3"),
    ] {
        a.affected.push(Affected {
            ecosystem: Ecosystem::parse("Rocky Linux:9").unwrap(),
            package: package.into(),
            kind: PackageKind::Binary,
            ranges: vec![fixed(fix)],
            versions: Vec::new(),
            binaries: Vec::new(),
        });
    }
    index.insert(a);
    let rpm = |name: &str, version: &str| InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "x86_64".into(),
        source: format!("{name}-src"),
        source_version: version.into(),
        installed: true,
    };
    let rocky = HostView {
        os_id: "rocky".into(),
        os_version: Some("9.3".into()),
        scheme: versions::Ecosystem::Rpm,
        kernel_release: "5.14.0-362.8.1.el9_3.x86_64".into(),
        packages: vec![
            rpm("openssl-libs", "1:3.0.7-24.el9"),
            rpm("kernel-core", "5.14.0-362.8.1.el9_3"),
            rpm("kernel-core", "5.14.0-362.18.1.el9_3"),
        ],
        updates: Vec::new(),
    };
    assert_eq!(rocky.ecosystem().unwrap().name(), "Rocky Linux:9");
    let report = index.evaluate(&rocky, TODAY);
    let found: Vec<(&str, &str, &Exposure)> = report
        .findings
        .iter()
        .map(|f| (f.package.as_str(), f.installed.as_str(), &f.exposure))
        .collect();
    assert_eq!(
        found,
        [
            ("openssl-libs", "1:3.0.7-24.el9", &Exposure::Exposed),
            (
                "kernel-core",
                "5.14.0-362.8.1.el9_3",
                &Exposure::FixedAwaitingReboot {
                    running: "kernel-core".into(),
                    fixed_package: "kernel-core".into(),
                    fixed_version: "5.14.0-362.18.1.el9_3".into(),
                }
            ),
        ]
    );
    assert_eq!(report.findings[0].matched_by, MatchedBy::Binary);
    // The same host on AlmaLinux 9 is another ecosystem.
    let alma = HostView {
        os_id: "almalinux".into(),
        ..rocky
    };
    assert!(index.evaluate(&alma, TODAY).findings.is_empty());
}

#[test]
fn the_last_affected_version_named_is_the_one_above_the_installed_version() {
    let mut index = Index::new();
    index.insert(advisory(
        "R-2",
        "Debian:12",
        "p",
        vec![
            Event::Introduced("1.0".into()),
            Event::LastAffected("2.0".into()),
            Event::Introduced("3.0".into()),
            Event::LastAffected("4.0".into()),
        ],
    ));
    let last = |v: &str| {
        index
            .evaluate(&host("12", vec![pkg("p", v, "p", v)]), TODAY)
            .findings[0]
            .last_affected
            .map(str::to_owned)
    };
    assert_eq!(last("1.5"), Some("2.0".to_owned()));
    assert_eq!(last("3.5"), Some("4.0".to_owned()));
}

#[test]
fn the_fleet_counts_only_the_running_kernel_and_follows_a_replaced_advisory() {
    let mut index = Index::new();
    index.insert(advisory("DSA-4", "Debian:12", "linux", fixed("6.1.76-1")));
    index.insert(advisory(
        "DSA-5",
        "Debian:12",
        "curl",
        fixed("7.88.1-10+deb12u5"),
    ));
    let mut fleet = Fleet::new(index);
    // An old, vulnerable image lies around; the fixed one runs.
    let mut view = host(
        "12",
        vec![
            pkg(
                "linux-image-6.1.0-16-amd64",
                "6.1.67-1",
                "linux",
                "6.1.67-1",
            ),
            pkg(
                "linux-image-6.1.0-18-amd64",
                "6.1.76-1",
                "linux",
                "6.1.76-1",
            ),
            pkg("curl", "7.88.1-10+deb12u4", "curl", "7.88.1-10+deb12u4"),
        ],
    );
    view.kernel_release = "6.1.0-18-amd64".into();
    fleet.set_host(1, &view);
    let alone: Vec<u32> = fleet
        .index()
        .evaluate(&view, TODAY)
        .findings
        .iter()
        .map(|f| fleet.index().position(&f.advisory.id).unwrap())
        .collect();
    assert_eq!(alone, [1]);
    assert_eq!(fleet.host_advisories(1), alone.as_slice());
    // DSA-5 is re-issued with a lower fix: the host no longer has it.
    let hosts = fleet.add_advisory(advisory(
        "DSA-5",
        "Debian:12",
        "curl",
        fixed("7.88.1-10+deb12u3"),
    ));
    assert!(hosts.is_empty());
    assert!(fleet.host_advisories(1).is_empty());
    assert!(fleet.advisory_hosts(1).is_empty());
}

#[test]
fn an_update_fixes_the_advisories_of_its_installed_version_whose_fix_it_reaches() {
    let mut index = Index::new();
    let old = index.insert(advisory("DSA-1", "Debian:12", "dpkg", fixed("1.21.20")));
    let now = index.insert(advisory("DSA-2", "Debian:12", "dpkg", fixed("1.21.22")));
    index.insert(advisory("DSA-3", "Debian:12", "dpkg", fixed("1.21.30")));
    index.insert(advisory("DSA-4", "Debian:11", "dpkg", fixed("1.21.22")));
    let dev = pkg("dpkg-dev", "1.21.19", "dpkg", "1.21.19");
    let scheme = versions::Ecosystem::Deb;
    // DSA-3's fix is beyond the candidate, DSA-4 is another release's.
    assert_eq!(
        index.fixed_by(Some("Debian:12"), scheme, &dev, "1.21.22"),
        [old, now]
    );
    // Installed past DSA-1's fix already: only DSA-2.
    let newer = pkg("libdpkg-perl", "1.21.21", "dpkg", "1.21.21");
    assert_eq!(
        index.fixed_by(Some("Debian:12"), scheme, &newer, "1.21.22"),
        [now]
    );
    assert!(index.fixed_by(None, scheme, &newer, "1.21.22").is_empty());
    assert!(index
        .fixed_by(Some("Debian:12"), scheme, &newer, "not a version!")
        .is_empty());
}
