//! Fleet applicability at the scale, with figures printed:
//! 10,000 hosts of about 700 packages sampled from this machine's real
//! bookworm package lists (mixed base and security versions) against more
//! than 20,000 advisories.
//!
//! The advisories are the real DSA and DLA lists (Debian 11 and older: they
//! must match no bookworm host, which is work the index does too) plus, for
//! Debian 12, one advisory per (source, version) the real bookworm-security
//! suite offers and synthetic ones made from real bookworm source packages
//! and versions (fixed in a `+deb12uN` successor, or only a last affected
//! version), since no Debian 12 advisory list is on this machine.
//!
//! Run with `cargo bench -p feeds --bench applicability`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use patchwell_core::advisory::{Advisory, Affected, Ecosystem, Event, PackageKind, UpdateType};
use patchwell_core::applicability::{HostView, Index, InstalledPackage};
use patchwell_core::fleet::Fleet;

const HOSTS: u32 = 10_000;
const PACKAGES_PER_HOST: usize = 700;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn lists(suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir("/var/lib/apt/lists")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(suffix))
}

fn packages(path: &Path) -> Vec<feeds::apt::IndexPackage> {
    let bytes = std::fs::read(path).expect("apt list");
    let text = if path.extension().is_some_and(|e| e == "lz4") {
        let mut out = Vec::new();
        lz4_flex::frame::FrameDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .expect("lz4");
        String::from_utf8_lossy(&out).into_owned()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    feeds::apt::parse_packages(&path.display().to_string(), &text).items
}

fn shared(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn advisory(id: String, package: &str, events: Vec<Event>) -> Advisory {
    let mut a = Advisory::new(id, UpdateType::SecurityUpdate);
    a.affected.push(Affected {
        ecosystem: Ecosystem::parse("Debian:12").expect("ecosystem"),
        package: package.to_owned(),
        kind: PackageKind::Source,
        ranges: vec![events],
        versions: Vec::new(),
        binaries: Vec::new(),
    });
    a
}

fn main() {
    let (Some(main_list), Some(security_list)) = (
        lists("_bookworm_main_binary-amd64_Packages.lz4")
            .or_else(|| lists("_bookworm_main_binary-amd64_Packages")),
        lists("bookworm-security_main_binary-amd64_Packages.lz4")
            .or_else(|| lists("bookworm-security_main_binary-amd64_Packages")),
    ) else {
        eprintln!("no bookworm and bookworm-security lists in /var/lib/apt/lists: run `cargo xtask setup`");
        return;
    };
    let t = Instant::now();
    let base = packages(&main_list);
    let security = packages(&security_list);
    let security_of: BTreeMap<&str, &feeds::apt::IndexPackage> =
        security.iter().map(|p| (p.name.as_str(), p)).collect();
    println!(
        "read {} bookworm and {} bookworm-security binary packages in {:.0} ms",
        base.len(),
        security.len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    // Advisories: real DSA and DLA lists, the real security suite, and
    // synthetic Debian 12 ones from real source packages.
    let mut advisories = Vec::new();
    for file in [
        "debian-security-tracker/DSA.list",
        "debian-security-tracker/DLA.list",
    ] {
        advisories.extend(
            feeds::debian_tracker::parse(file, &shared(file))
                .expect("tracker")
                .items,
        );
    }
    let real = advisories.len();
    let mut by_source: BTreeMap<(&str, &str), ()> = BTreeMap::new();
    for p in &security {
        by_source.insert((p.source.as_str(), p.source_version.as_str()), ());
    }
    for (n, ((source, version), ())) in by_source.iter().enumerate() {
        advisories.push(advisory(
            format!("SEC-{n}"),
            source,
            vec![
                Event::Introduced("0".into()),
                Event::Fixed((*version).to_owned()),
            ],
        ));
    }
    let mut sources: BTreeMap<&str, &str> = BTreeMap::new();
    for p in &base {
        sources.insert(p.source.as_str(), p.source_version.as_str());
    }
    let sources: Vec<(&str, &str)> = sources.into_iter().collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut n = 0;
    while advisories.len() < 21_000 {
        let (source, version) = sources[rng.below(sources.len())];
        let events = if rng.below(5) == 0 {
            vec![
                Event::Introduced("0".into()),
                Event::LastAffected(version.to_owned()),
            ]
        } else {
            vec![
                Event::Introduced("0".into()),
                Event::Fixed(format!("{version}+deb12u{}", 1 + rng.below(9))),
            ]
        };
        advisories.push(advisory(format!("SYN-{n}"), source, events));
        n += 1;
    }
    println!(
        "{} advisories: {real} real DSA/DLA, {} from the real bookworm-security suite, {n} synthetic",
        advisories.len(),
        by_source.len()
    );

    // Hosts: 300 packages every host has, 400 drawn from a pool of 4,000;
    // a package the security suite updates has its base or its security
    // version, at random.
    let mut pool: Vec<&feeds::apt::IndexPackage> = base.iter().collect();
    for i in 0..pool.len() {
        let j = i + rng.below(pool.len() - i);
        pool.swap(i, j);
    }
    pool.truncate(4_300);
    let host_view = |rng: &mut Rng| {
        let mut chosen: Vec<&feeds::apt::IndexPackage> = pool[..300].to_vec();
        while chosen.len() < PACKAGES_PER_HOST {
            chosen.push(pool[300 + rng.below(pool.len() - 300)]);
        }
        chosen.sort_by(|a, b| a.name.cmp(&b.name));
        chosen.dedup_by(|a, b| a.name == b.name);
        HostView {
            os_id: "debian".into(),
            os_version: Some("12".into()),
            scheme: versions::Ecosystem::Deb,
            kernel_release: "6.1.0-18-amd64".into(),
            packages: chosen
                .into_iter()
                .map(|p| {
                    let p = match security_of.get(p.name.as_str()) {
                        Some(s) if rng.below(2) == 0 => *s,
                        _ => p,
                    };
                    InstalledPackage {
                        name: p.name.clone(),
                        version: p.version.clone(),
                        arch: p.arch.clone(),
                        source: p.source.clone(),
                        source_version: p.source_version.clone(),
                        installed: true,
                    }
                })
                .collect(),
            updates: Vec::new(),
        }
    };

    let t = Instant::now();
    let mut index = Index::new();
    let withheld = advisories.split_off(advisories.len() - 100);
    for a in advisories {
        index.insert(a);
    }
    println!(
        "indexed {} advisories in {:.0} ms",
        index.advisories().len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut fleet = Fleet::new(index);
    let t = Instant::now();
    let mut total_packages = 0;
    for id in 0..HOSTS {
        let view = host_view(&mut rng);
        total_packages += view.packages.len();
        fleet.set_host(id, &view);
    }
    let load = t.elapsed();
    println!(
        "loaded {HOSTS} hosts ({} packages, {:.0} a host; {} distinct package version keys) in {:.0} ms, checking as they came",
        total_packages,
        total_packages as f64 / f64::from(HOSTS),
        fleet.key_count(),
        load.as_secs_f64() * 1e3
    );

    let mut times = Vec::new();
    let mut pairs = 0;
    for _ in 0..5 {
        let t = Instant::now();
        pairs = fleet.evaluate_all();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "full evaluation (every key against every advisory, every host's list rebuilt): median {:.0} ms, best {:.0} ms, worst {:.0} ms; {pairs} (host, advisory) pairs apply",
        times[2], times[0], times[4]
    );

    let mut times = Vec::new();
    let mut reached = 0;
    for a in withheld {
        let t = Instant::now();
        reached += fleet.add_advisory(a).len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "one new advisory: median {:.3} ms, p99 {:.3} ms, worst {:.3} ms over {} advisories ({reached} hosts reached in all)",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1],
        times.len()
    );

    // A whole inventory that differs in ~400 packages (set_host), and a
    // delta of five packages (update_host, what the server does on PATCH).
    let mut whole = Vec::new();
    let mut delta = Vec::new();
    for id in 0..200 {
        let view = host_view(&mut rng);
        let t = Instant::now();
        fleet.set_host(id, &view);
        whole.push(t.elapsed().as_secs_f64() * 1e3);
        let removed: Vec<InstalledPackage> = view.packages[..5].to_vec();
        let added: Vec<InstalledPackage> = removed
            .iter()
            .map(|p| InstalledPackage {
                version: format!("{}+b{id}", p.version),
                ..p.clone()
            })
            .collect();
        let t = Instant::now();
        fleet.update_host(id, &removed, &added);
        delta.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for (label, times) in [
        (
            "one host's whole inventory replaced (~400 packages differ)",
            &mut whole,
        ),
        ("one host's delta applied (5 packages changed)", &mut delta),
    ] {
        times.sort_by(f64::total_cmp);
        println!(
            "{label}: median {:.3} ms, worst {:.3} ms",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
    println!(
        "peak memory (VmHWM) of the whole benchmark: {:.0} MiB",
        peak_rss_mib()
    );
}
