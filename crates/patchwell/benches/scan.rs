//! `patchwell scan` of this machine's own dpkg database against an OSV
//! directory, timed as a whole process (start, read, match, print, exit).
//!
//! The directory holds the real DSA and DLA lists written out as OSV, one
//! file a record, and, so that Debian 12 has advisories to match, one
//! synthetic record per source package of this machine's dpkg database
//! (fixed in a `+deb12u9` successor of the installed version): about 10,000
//! files in all.
//!
//! Run with `cargo bench -p patchwell --bench scan`.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use patchwell_core::advisory::{Advisory, Affected, Ecosystem, Event, PackageKind, UpdateType};

fn shared(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn osv_dir() -> (PathBuf, usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data/scan-osv");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut advisories = Vec::new();
    for file in [
        "debian-security-tracker/DSA.list",
        "debian-security-tracker/DLA.list",
    ] {
        advisories.extend(
            feeds::debian_tracker::parse(file, &shared(file))
                .unwrap()
                .items,
        );
    }
    let status = std::fs::File::open("/var/lib/dpkg/status").unwrap();
    let (packages, _) = agent::dpkg::parse_status(BufReader::new(status), "status").unwrap();
    let mut sources: Vec<(String, String)> = packages
        .into_iter()
        .map(|mut p| {
            p.fill_source();
            (
                p.source.unwrap_or_default(),
                p.source_version.unwrap_or_default(),
            )
        })
        .collect();
    sources.sort();
    sources.dedup_by(|a, b| a.0 == b.0);
    for (source, version) in &sources {
        let mut a = Advisory::new(format!("SYN-{source}"), UpdateType::SecurityUpdate);
        a.title = format!("{source}: synthetic");
        a.affected.push(Affected {
            ecosystem: Ecosystem::parse("Debian:12").unwrap(),
            package: source.clone(),
            kind: PackageKind::Source,
            ranges: vec![vec![
                Event::Introduced("0".into()),
                Event::Fixed(format!("{version}+deb12u9")),
            ]],
            versions: Vec::new(),
            binaries: Vec::new(),
        });
        advisories.push(a);
    }
    for a in &advisories {
        let body = serde_json::to_vec(&feeds::osv::to_json(a)).unwrap();
        std::fs::write(dir.join(format!("{}.json", a.id.replace('/', "_"))), body).unwrap();
    }
    (dir, advisories.len())
}

fn main() {
    if !Path::new("/var/lib/dpkg/status").exists() {
        eprintln!("no /var/lib/dpkg/status on this machine");
        return;
    }
    let (dir, files) = osv_dir();
    let run = |format: &str| {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_patchwell"))
            .args(["scan", "--osv"])
            .arg(&dir)
            .args(["--format", format])
            .output()
            .unwrap();
        let elapsed = t.elapsed().as_secs_f64() * 1e3;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (elapsed, out.stdout)
    };
    // Warm the page cache as a second scan would find it.
    let (_, table) = run("table");
    let summary = String::from_utf8_lossy(&table)
        .lines()
        .last()
        .unwrap_or("")
        .to_owned();
    for format in ["json", "table"] {
        let mut times: Vec<f64> = (0..15).map(|_| run(format).0).collect();
        times.sort_by(f64::total_cmp);
        println!(
            "patchwell scan of / against {files} OSV files, --format {format}: median {:.1} ms, best {:.1} ms, worst {:.1} ms (whole process)",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
    }
    println!("last line of the table: {summary}");
}
