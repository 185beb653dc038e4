//! How long the agent takes to read what it reports, on real data: this
//! machine's dpkg database, and a whole inventory of the test Debian root
//! (whose apt lists hold the full bookworm and bookworm-security indexes).
// A benchmark reads files and the environment.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::hint::black_box;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Duration;

use agent::{inventory, Root, SystemRunner};
use criterion::Criterion;

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();

    let status = std::fs::read("/var/lib/dpkg/status").expect("this machine's dpkg database");
    let (packages, _) = agent::dpkg::parse_status(status.as_slice(), "status").unwrap();
    println!(
        "dpkg database: {} packages, {} KiB",
        packages.len(),
        status.len() / 1024
    );
    c.bench_function("dpkg status/parse from memory", |b| {
        b.iter(|| agent::dpkg::parse_status(black_box(status.as_slice()), "status").unwrap())
    });
    c.bench_function("dpkg status/read and parse file", |b| {
        b.iter(|| {
            let file = std::fs::File::open("/var/lib/dpkg/status").unwrap();
            agent::dpkg::parse_status(BufReader::new(file), "status").unwrap()
        })
    });

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let root = target.join("test-roots/bookworm");
    if root.join(".patchwell-ready").exists() {
        let root = Root::new(root);
        let now = jiff::Timestamp::UNIX_EPOCH;
        let inv = inventory::collect(&root, &SystemRunner, now).unwrap();
        println!(
            "test root: {} packages, {} updates from its apt lists",
            inv.packages.len(),
            inv.updates.len()
        );
        c.bench_function("inventory/whole test root", |b| {
            b.iter(|| inventory::collect(&root, &SystemRunner, now).unwrap())
        });
    } else {
        println!("test root missing (cargo xtask setup): whole-inventory figure skipped");
    }
    c.final_summary();
}
