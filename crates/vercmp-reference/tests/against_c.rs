//! Patchwell against libdpkg and librpm in-process: no process per comparison,
//! so millions of cases, including random strings that reach the corners of
//! the parsers (white space before an epoch, signs, separators of every kind).
// Tests read the apt lists and run programs, which the libraries never do.
#![allow(clippy::disallowed_methods)]

use std::ffi::CString;
use std::process::Command;

use vercmp_reference::{dpkg, rpm};

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

    fn string(&mut self, alphabet: &[char], max_len: usize) -> String {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn apt_versions(limit: usize) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/var/lib/apt/lists") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let path = entry.path();
        if !path.to_string_lossy().contains("_Packages") {
            continue;
        }
        let Ok(o) = Command::new("/usr/lib/apt/apt-helper")
            .arg("cat-file")
            .arg(&path)
            .output()
        else {
            continue;
        };
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if let Some(v) = line.strip_prefix("Version: ") {
                out.insert(v.to_owned());
            }
        }
    }
    // Every n-th, so the sample spans the whole range of versions.
    let step = (out.len() / limit).max(1);
    out.into_iter().step_by(step).take(limit).collect()
}

#[test]
fn deb_all_pairs_of_real_versions_match_libdpkg() {
    let versions = apt_versions(2_000);
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if versions.len() < 1_000 {
        assert!(
            !in_ci,
            "the apt lists are missing and CI=true: run `cargo xtask setup`"
        );
        eprintln!("skipping: the apt lists are missing (run apt-get update)");
        return;
    }
    let ours: Vec<_> = versions
        .iter()
        .map(|v| versions::deb::Version::parse(v).unwrap())
        .collect();
    let lib = dpkg::lock();
    let theirs: Vec<_> = versions.iter().map(|v| lib.parse(&c(v)).unwrap()).collect();
    drop(lib);
    let mut compared = 0usize;
    for i in 0..versions.len() {
        for j in 0..versions.len() {
            assert_eq!(
                ours[i].cmp(&ours[j]),
                theirs[i].compare(&theirs[j]),
                "{} vs {}",
                versions[i],
                versions[j]
            );
            compared += 1;
        }
    }
    eprintln!("{compared} pairs of real versions, all as libdpkg");
}

#[test]
fn deb_random_strings_match_libdpkg_validity_and_order() {
    let alphabet: Vec<char> = "0123456789aZz:~-+.  \t_\n\u{b}!é".chars().collect();
    let mut rng = Rng(0x0dd_ba11);
    let lib = dpkg::lock();
    let mut valid = Vec::new();
    for _ in 0..200_000 {
        let s = rng.string(&alphabet, 10);
        let theirs = lib.is_valid(&c(&s));
        let ours = versions::deb::validate(&s);
        assert_eq!(
            theirs,
            ours.is_ok(),
            "{s:?}: libdpkg valid={theirs}, Patchwell {ours:?}"
        );
        if theirs {
            valid.push(s);
        }
    }
    assert!(
        valid.len() > 1_000,
        "too few valid strings ({}) to compare",
        valid.len()
    );
    for _ in 0..200_000 {
        let a = &valid[rng.below(valid.len())];
        let b = &valid[rng.below(valid.len())];
        let ours = versions::deb::compare_str(a, b).unwrap();
        assert_eq!(lib.compare(&c(a), &c(b)), Some(ours), "{a:?} vs {b:?}");
    }
}

#[test]
fn rpm_vercmp_matches_rpmvercmp_on_any_string() {
    let alphabet: Vec<char> = "0019aAzZ~^._-+:% é".chars().collect();
    let mut rng = Rng(0xbee5);
    for _ in 0..300_000 {
        let a = rng.string(&alphabet, 8);
        let b = rng.string(&alphabet, 8);
        assert_eq!(
            versions::rpm::vercmp(&a, &b),
            rpm::vercmp(&c(&a), &c(&b)),
            "{a:?} vs {b:?}"
        );
    }
}

#[test]
fn rpm_evr_order_matches_rpmvercmp_on_random_valid_evrs() {
    let alphabet: Vec<char> = "00129aZ~^._+".chars().collect();
    let mut rng = Rng(0xfeed);
    let mut evrs = Vec::new();
    while evrs.len() < 5_000 {
        let epoch = ["", "0:", "1:", "01:", ":"][rng.below(5)];
        let release = if rng.below(4) == 0 {
            String::new()
        } else {
            format!("-{}", rng.string(&alphabet, 4))
        };
        let evr = format!("{epoch}{}{release}", rng.string(&alphabet, 6));
        if versions::rpm::validate(&evr).is_ok() {
            evrs.push(evr);
        }
    }
    for _ in 0..300_000 {
        let a = &evrs[rng.below(evrs.len())];
        let b = &evrs[rng.below(evrs.len())];
        let ours = versions::rpm::compare_str(a, b).unwrap();
        assert_eq!(rpm::compare_evr(&c(a), &c(b)), Some(ours), "{a:?} vs {b:?}");
        let keyed = versions::rpm::Version::parse(a)
            .unwrap()
            .cmp(&versions::rpm::Version::parse(b).unwrap());
        assert_eq!(keyed, ours, "key and direct disagree on {a:?} vs {b:?}");
    }
}
