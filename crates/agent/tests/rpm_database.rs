//! The agent against a real rpm database: a package built with rpmbuild and
//! installed with rpm into a fresh root, read back through `rpm -qa`.

use std::path::Path;
use std::process::Command;

use protocol::{Inventory, Manager};

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn packages_in_a_real_rpm_database_are_reported_with_epoch_and_source() {
    if !(have("rpm") && have("rpmbuild")) {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "rpm and rpmbuild are missing and CI=true: run `cargo xtask setup`"
        );
        eprintln!("skipping: rpm and rpmbuild are missing");
        return;
    }
    let dir = std::env::temp_dir().join(format!("patchwell-rpm-root-{}", std::process::id()));
    let (root, build) = (dir.join("root"), dir.join("build"));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=\"rocky\"\nVERSION_ID=\"9.3\"\nID_LIKE=\"rhel centos fedora\"\n",
    )
    .unwrap();
    let spec = dir.join("demo.spec");
    std::fs::write(
        &spec,
        "Name: pw-demo\nVersion: 1.2.3\nRelease: 4.el9\nEpoch: 2\nSummary: test\nLicense: MIT\n\
         BuildArch: noarch\n%description\nA package for Patchwell's tests.\n%files\n",
    )
    .unwrap();
    let topdir = format!("_topdir {}", build.display());
    run(
        "rpmbuild",
        &[
            "-bb",
            "--quiet",
            "--define",
            &topdir,
            spec.to_str().unwrap(),
        ],
    );
    let rpm_file = build.join("RPMS/noarch/pw-demo-1.2.3-4.el9.noarch.rpm");
    assert!(Path::new(&rpm_file).exists());
    let root_arg = root.to_str().unwrap();
    // Where RPM distributions keep their database.
    run(
        "rpm",
        &["--root", root_arg, "--dbpath", "/var/lib/rpm", "--initdb"],
    );
    run(
        "rpm",
        &[
            "--root",
            root_arg,
            "--dbpath",
            "/var/lib/rpm",
            "-i",
            "--nodeps",
            rpm_file.to_str().unwrap(),
        ],
    );

    let out = Command::new(env!("CARGO_BIN_EXE_patchwell-agent"))
        .args(["inventory", "--root", root_arg, "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inv: Inventory = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inv.os.id, "rocky");
    assert_eq!(inv.os.id_like, ["rhel", "centos", "fedora"]);
    let rpms: Vec<_> = inv
        .packages
        .iter()
        .filter(|p| p.manager == Manager::Rpm)
        .collect();
    assert_eq!(rpms.len(), 1, "{:#?}", inv.packages);
    let p = rpms[0];
    assert_eq!(
        (p.name.as_str(), p.version.as_str(), p.arch.as_str()),
        ("pw-demo", "2:1.2.3-4.el9", "noarch")
    );
    assert_eq!(p.source.as_deref(), Some("pw-demo"));
    assert_eq!(p.source_version.as_deref(), Some("2:1.2.3-4.el9"));
    assert!(versions::rpm::Version::parse(&p.version).is_ok());
    assert!(inv.warnings.is_empty(), "{:#?}", inv.warnings);
    std::fs::remove_dir_all(&dir).ok();
}
