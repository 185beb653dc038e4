//! Patchwell's version comparison against the package managers' own C code,
//! in the same run, on the same inputs.
//!
//! Inputs are real: the distinct versions in this machine's apt lists. Half of
//! the pairs are neighbours in sorted order (versions of one package that
//! differ late in the string, the expensive case), half are random pairs.
//! rpm is fed the apt versions that are also valid rpm EVRs, since no rpm
//! repository is reachable here; they have the same shape (`epoch:version-release`).
//!
//! After criterion's own report, a summary prints nanoseconds per comparison
//! for each side and the ratio Rust / C (below 1.0 means Rust is faster).
// A benchmark reads files and the environment, which the library crates never do.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::ffi::CString;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use vercmp_reference::{dpkg, rpm};

const PAIRS: usize = 1024;

fn apt_versions() -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("/var/lib/apt/lists")
        .expect("the apt lists: run `cargo xtask setup` (apt-get update)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("_Packages"))
        .collect();
    files.sort();
    let mut versions = std::collections::BTreeSet::new();
    for file in files {
        let out = Command::new("/usr/lib/apt/apt-helper")
            .arg("cat-file")
            .arg(&file)
            .output();
        let out = out.expect("run apt-helper cat-file");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(v) = line.strip_prefix("Version: ") {
                versions.insert(v.trim().to_owned());
            }
        }
    }
    assert!(
        versions.len() > 1000,
        "too few versions in the apt lists; run apt-get update"
    );
    versions.into_iter().collect()
}

/// Half neighbours in the package manager's order, half random pairs.
fn pairs<T: Clone>(sorted: &[T]) -> Vec<(T, T)> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % sorted.len() as u64) as usize
    };
    let mut out = Vec::with_capacity(PAIRS);
    while out.len() < PAIRS / 2 {
        let i = next() % (sorted.len() - 1);
        out.push((sorted[i].clone(), sorted[i + 1].clone()));
    }
    while out.len() < PAIRS {
        out.push((sorted[next()].clone(), sorted[next()].clone()));
    }
    out
}

fn cstrings(pairs: &[(String, String)]) -> Vec<(CString, CString)> {
    let c = |s: &String| CString::new(s.as_str()).expect("no NUL in a version");
    pairs.iter().map(|(a, b)| (c(a), c(b))).collect()
}

fn bench(c: &mut Criterion) {
    let all = apt_versions();

    let mut deb_sorted: Vec<versions::deb::Version> = all
        .iter()
        .map(|v| versions::deb::Version::parse(v).expect("real deb version"))
        .collect();
    deb_sorted.sort();
    let deb_pairs: Vec<(String, String)> = pairs(&deb_sorted)
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();

    let mut rpm_sorted: Vec<versions::rpm::Version> = all
        .iter()
        .filter_map(|v| versions::rpm::Version::parse(v).ok())
        .collect();
    rpm_sorted.sort();
    let rpm_pairs: Vec<(String, String)> = pairs(&rpm_sorted)
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    // rpmvercmp alone compares one version string, so give it the version parts.
    let rpm_plain: Vec<(String, String)> = pairs(&rpm_sorted)
        .into_iter()
        .map(|(a, b)| (a.version().to_owned(), b.version().to_owned()))
        .collect();

    let mut group = c.benchmark_group("deb");
    group.throughput(Throughput::Elements(PAIRS as u64));
    let c_pairs = cstrings(&deb_pairs);
    // libdpkg's parser is not thread-safe; hold its lock for the whole group.
    let lib = dpkg::lock();
    for (a, b) in &c_pairs {
        let ours = versions::deb::compare_str(a.to_str().unwrap(), b.to_str().unwrap()).unwrap();
        assert_eq!(
            lib.compare(a, b),
            Some(ours),
            "libdpkg and Patchwell disagree on {a:?} {b:?}"
        );
    }
    group.bench_function("strings/rust", |bench| {
        bench.iter(|| {
            for (a, b) in &deb_pairs {
                black_box(versions::deb::compare_str(black_box(a), black_box(b)).ok());
            }
        })
    });
    group.bench_function("strings/c", |bench| {
        bench.iter(|| {
            for (a, b) in &c_pairs {
                black_box(lib.compare(black_box(a), black_box(b)));
            }
        })
    });
    let rust_parsed: Vec<_> = deb_pairs
        .iter()
        .map(|(a, b)| {
            (
                versions::deb::Version::parse(a).unwrap(),
                versions::deb::Version::parse(b).unwrap(),
            )
        })
        .collect();
    let c_parsed: Vec<_> = c_pairs
        .iter()
        .map(|(a, b)| (lib.parse(a).unwrap(), lib.parse(b).unwrap()))
        .collect();
    group.bench_function("parsed/rust", |bench| {
        bench.iter(|| {
            for (a, b) in &rust_parsed {
                black_box(black_box(a).cmp(black_box(b)));
            }
        })
    });
    group.bench_function("parsed/c", |bench| {
        bench.iter(|| {
            for (a, b) in &c_parsed {
                black_box(black_box(a).compare(black_box(b)));
            }
        })
    });
    group.finish();
    drop(lib);

    let mut group = c.benchmark_group("rpm");
    group.throughput(Throughput::Elements(PAIRS as u64));
    let c_pairs = cstrings(&rpm_pairs);
    for (a, b) in &c_pairs {
        let ours = versions::rpm::compare_str(a.to_str().unwrap(), b.to_str().unwrap()).unwrap();
        assert_eq!(
            rpm::compare_evr(a, b),
            Some(ours),
            "librpm and Patchwell disagree on {a:?} {b:?}"
        );
    }
    group.bench_function("strings/rust", |bench| {
        bench.iter(|| {
            for (a, b) in &rpm_pairs {
                black_box(versions::rpm::compare_str(black_box(a), black_box(b)).ok());
            }
        })
    });
    group.bench_function("strings/c", |bench| {
        bench.iter(|| {
            for (a, b) in &c_pairs {
                black_box(rpm::compare_evr(black_box(a), black_box(b)));
            }
        })
    });
    let c_plain = cstrings(&rpm_plain);
    for (a, b) in &c_plain {
        let ours = versions::rpm::vercmp(a.to_str().unwrap(), b.to_str().unwrap());
        assert_eq!(
            rpm::vercmp(a, b),
            ours,
            "rpmvercmp and Patchwell disagree on {a:?} {b:?}"
        );
    }
    group.bench_function("rpmvercmp/rust", |bench| {
        bench.iter(|| {
            for (a, b) in &rpm_plain {
                black_box(versions::rpm::vercmp(black_box(a), black_box(b)));
            }
        })
    });
    group.bench_function("rpmvercmp/c", |bench| {
        bench.iter(|| {
            for (a, b) in &c_plain {
                black_box(rpm::vercmp(black_box(a), black_box(b)));
            }
        })
    });
    let rust_parsed: Vec<_> = rpm_pairs
        .iter()
        .map(|(a, b)| {
            (
                versions::rpm::Version::parse(a).unwrap(),
                versions::rpm::Version::parse(b).unwrap(),
            )
        })
        .collect();
    let c_parsed: Vec<_> = c_pairs
        .iter()
        .map(|(a, b)| {
            (
                rpm::Parsed::parse(a).unwrap(),
                rpm::Parsed::parse(b).unwrap(),
            )
        })
        .collect();
    group.bench_function("parsed/rust", |bench| {
        bench.iter(|| {
            for (a, b) in &rust_parsed {
                black_box(black_box(a).cmp(black_box(b)));
            }
        })
    });
    group.bench_function("parsed/c", |bench| {
        bench.iter(|| {
            for (a, b) in &c_parsed {
                black_box(black_box(a).compare(black_box(b)));
            }
        })
    });
    group.finish();
}

/// Nanoseconds per comparison from criterion's estimate for one benchmark.
fn ns_per_comparison(group: &str, name: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    // Criterion stores `kind/side` in a directory named `kind_side`.
    let dir = name.replace('/', "_");
    let path = target
        .join("criterion")
        .join(group)
        .join(dir)
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(json["mean"]["point_estimate"].as_f64()? / PAIRS as f64)
}

fn summary() {
    println!();
    println!(
        "{:<28} {:>10} {:>10} {:>12}",
        "comparison (ns each)", "Rust", "C", "Rust / C"
    );
    let rows = [
        ("deb", "strings", "two strings (libdpkg)"),
        ("deb", "parsed", "parsed (libdpkg)"),
        ("rpm", "strings", "two EVRs (rpmverCmp)"),
        ("rpm", "rpmvercmp", "two versions (rpmvercmp)"),
        ("rpm", "parsed", "parsed (rpmverCmp)"),
    ];
    for (group, kind, label) in rows {
        let rust = ns_per_comparison(group, &format!("{kind}/rust"));
        let c = ns_per_comparison(group, &format!("{kind}/c"));
        if let (Some(rust), Some(c)) = (rust, c) {
            println!(
                "{:<28} {:>10.1} {:>10.1} {:>12.3}",
                format!("{group} {label}"),
                rust,
                c,
                rust / c
            );
        }
    }
    for group in ["deb", "rpm"] {
        let parsed = ns_per_comparison(group, "parsed/rust");
        let strings = ns_per_comparison(group, "strings/c");
        if let (Some(parsed), Some(strings)) = (parsed, strings) {
            println!(
                "{group}: parsed Rust is {:.1}x faster than C comparing two strings",
                strings / parsed
            );
        }
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    summary();
}
