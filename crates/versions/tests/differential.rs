//! Differential tests: Patchwell's answers against the package managers'
//! own, on real version strings.
//!
//! - deb: every distinct version in the machine's apt package lists (tens of
//!   thousands), sorted by Patchwell, then every neighbouring pair checked with
//!   `dpkg --compare-versions`. If dpkg agrees on each neighbour, then since its
//!   order is transitive it agrees with the whole sorted list, which is every
//!   pair. Random pairs and `dpkg --validate-version` on mutated strings too.
//! - rpm: generated `epoch:version-release` pairs, all compared in one `rpm
//!   --eval` run of rpm's own `rpm.vercmp`.
//! - Real advisory data in ../shared/data: every version it names must parse.
//!
//! A missing tool or data set fails the test when `CI=true` and skips it, with
//! the reason, elsewhere. `cargo xtask setup` installs what is needed.
// Tests read files, the environment and run programs, which the crate itself never does.
#![allow(clippy::disallowed_methods)]

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use versions::{apk, deb, rpm};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Returns normally when the prerequisite is there; otherwise fails in CI and
/// tells the caller to skip elsewhere.
fn prerequisite(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        !in_ci(),
        "{what} is missing, and CI=true: run `cargo xtask setup`"
    );
    eprintln!("skipping: {what} is missing (run `cargo xtask setup`)");
    false
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A small deterministic generator (xorshift64*), so that every run checks the
/// same cases and a failure can be reproduced.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Every distinct `Version:` and `Source: name (version)` in the apt lists.
fn apt_list_versions() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/var/lib/apt/lists") else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("_Packages"))
        })
        .collect();
    files.sort();
    let mut found = BTreeSet::new();
    for file in files {
        // apt-helper reads whatever compression apt chose for its lists.
        let output = Command::new("/usr/lib/apt/apt-helper")
            .arg("cat-file")
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("apt-helper cat-file {}: {e}", file.display()));
        assert!(
            output.status.success(),
            "apt-helper cat-file {} failed",
            file.display()
        );
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Some(v) = line.strip_prefix("Version: ") {
                found.insert(v.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("Source: ") {
                if let Some((_, v)) = rest.split_once(" (") {
                    found.insert(v.trim_end_matches(')').to_owned());
                }
            }
        }
    }
    found.into_iter().collect()
}

/// Asks dpkg whether `a op b` holds, in parallel over both cores; returns the
/// pairs where the claim fails.
fn dpkg_refutes(claims: &[(String, &'static str, String)]) -> Vec<String> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let chunk = claims.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = claims
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut wrong = Vec::new();
                    for (a, op, b) in part {
                        let status = Command::new("dpkg")
                            .args(["--compare-versions", "--", a, op, b])
                            .status()
                            .expect("run dpkg --compare-versions");
                        if !status.success() {
                            wrong.push(format!("Patchwell says {a:?} {op} {b:?}; dpkg disagrees"));
                        }
                    }
                    wrong
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("dpkg worker panicked"))
            .collect()
    })
}

fn dpkg_op(order: Ordering) -> &'static str {
    match order {
        Ordering::Less => "lt",
        Ordering::Equal => "eq",
        Ordering::Greater => "gt",
    }
}

#[test]
fn deb_order_matches_dpkg_on_every_real_version() {
    if !prerequisite(have("dpkg"), "dpkg") {
        return;
    }
    let texts = apt_list_versions();
    if !prerequisite(
        texts.len() >= 10_000,
        "the apt package lists (run apt-get update)",
    ) {
        return;
    }
    let mut parsed: Vec<deb::Version> = texts
        .iter()
        .map(|t| deb::Version::parse(t).unwrap_or_else(|e| panic!("real version rejected: {e}")))
        .collect();
    parsed.sort();

    let mut claims: Vec<(String, &'static str, String)> = parsed
        .windows(2)
        .map(|w| (w[0].to_string(), dpkg_op(w[0].cmp(&w[1])), w[1].to_string()))
        .collect();
    // Random pairs as well: a check that does not lean on transitivity.
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..3_000 {
        let (a, b) = (rng.pick(&parsed), rng.pick(&parsed));
        claims.push((a.to_string(), dpkg_op(a.cmp(b)), b.to_string()));
    }
    let wrong = dpkg_refutes(&claims);
    assert!(
        wrong.is_empty(),
        "{} of {} comparisons differ from dpkg, first: {:#?}",
        wrong.len(),
        claims.len(),
        &wrong[..wrong.len().min(10)]
    );
    eprintln!(
        "{} real versions, {} comparisons, all as dpkg",
        texts.len(),
        claims.len()
    );
}

#[test]
fn deb_validity_matches_dpkg() {
    if !prerequisite(have("dpkg"), "dpkg") {
        return;
    }
    let mut cases: Vec<String> = [
        "",
        " ",
        "1",
        " 1.0 ",
        "\t1.0",
        "1 0",
        "1.0 ",
        ":1",
        "1:",
        "a:1",
        "+1:1",
        "-0:1",
        "-1:1",
        "0x1:1",
        "2147483647:1",
        "2147483648:1",
        "99999999999999999999:1",
        "\n1:1",
        "\u{b}1:1",
        "1:1:1",
        "1.0-",
        "-1",
        "1:-1",
        "a1",
        "1a",
        "1.0_1",
        "1.0-1_1",
        "1.0-1:1",
        "1:1.0-1:1",
        "1.0é",
        "1.0-ü",
        "1~",
        "1+",
        "1-~",
        "1-a-b",
        "1.0-1-",
        "1..0",
        "1.0\u{0}",
        "1.0\r",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Real versions with one character inserted, removed or replaced.
    let seeds = [
        "1:2.36.1-8+deb12u1",
        "3.0.11-1~deb12u2",
        "1.21.22",
        "2.2.0-1+b1",
        "0.9.8~rc1-2",
    ];
    let alphabet: Vec<char> = "0a:~-+._ Z\t!é".chars().collect();
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..600 {
        let mut chars: Vec<char> = rng.pick(&seeds).chars().collect();
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 => chars.insert(at, *rng.pick(&alphabet)),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = *rng.pick(&alphabet),
            _ => chars.push(*rng.pick(&alphabet)),
        }
        cases.push(chars.into_iter().collect());
    }
    let mut wrong = Vec::new();
    for case in &cases {
        if case.contains('\0') {
            // A command-line argument cannot hold NUL; Patchwell rejects it.
            assert!(deb::validate(case).is_err());
            continue;
        }
        let dpkg_ok = Command::new("dpkg")
            .args(["--validate-version", "--", case])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run dpkg --validate-version")
            .success();
        let ours = deb::validate(case);
        if dpkg_ok != ours.is_ok() {
            wrong.push(format!(
                "{case:?}: dpkg valid={dpkg_ok}, Patchwell {ours:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "validity differs from dpkg: {wrong:#?}");
}

/// An rpm version or release from the characters that make rpmvercmp hard.
fn rpm_part(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "0", "1", "2", "9", "10", "01", "007", "123", "a", "b", "Z", "rc", "el", "fc", "git", "p",
        ".", ".", ".", "_", "+", "~", "^",
    ];
    let len = 1 + rng.below(6);
    let mut s: String = (0..len).map(|_| *rng.pick(PIECES)).collect();
    while s.contains("..") {
        s = s.replace("..", ".");
    }
    s
}

#[test]
fn rpm_order_matches_rpm_vercmp() {
    if !prerequisite(have("rpm"), "rpm (apt-get install rpm)") {
        return;
    }
    let mut rng = Rng(0x5eed_0003);
    let mut pairs = Vec::new();
    while pairs.len() < 20_000 {
        let a_epoch = ["", "0:", "1:", "2:"][rng.below(4)];
        let a = format!("{a_epoch}{}-{}", rpm_part(&mut rng), rpm_part(&mut rng));
        // Half the time b is a small change of a, so that they share a prefix
        // and the comparison has to reach the interesting part.
        let b = if rng.below(2) == 0 {
            let b_epoch = ["", "0:", "1:"][rng.below(3)];
            format!("{b_epoch}{}-{}", rpm_part(&mut rng), rpm_part(&mut rng))
        } else {
            let head = &a[..rng.below(a.len() + 1)];
            let mut b = format!("{head}{}", rpm_part(&mut rng));
            if !b.contains('-') {
                b = format!("{b}-{}", rpm_part(&mut rng));
            }
            b
        };
        // Also versions without a release, which rpmverCmp orders before any release.
        let b = if rng.below(10) == 0 {
            b.split('-').next().unwrap_or("1").to_owned()
        } else {
            b
        };
        if rpm::validate(&a).is_ok() && rpm::validate(&b).is_ok() {
            pairs.push((a, b));
        }
    }
    let dir = std::env::temp_dir().join(format!("patchwell-rpm-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("pairs.tsv");
    let script = dir.join("compare.lua");
    let lines: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    std::fs::write(
        &script,
        format!(
            "local out = {{}}\n\
             for line in io.lines({input:?}) do\n\
               local a, b = line:match('^([^\\t]*)\\t([^\\t]*)$')\n\
               out[#out + 1] = tostring(rpm.vercmp(a, b))\n\
             end\n\
             io.write(table.concat(out, '\\n'), '\\n')\n",
            input = input.display().to_string()
        ),
    )
    .unwrap();
    let output = Command::new("rpm")
        .arg("--eval")
        .arg(format!(
            "%{{lua: dofile({:?})}}",
            script.display().to_string()
        ))
        .output()
        .expect("run rpm --eval");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        output.status.success(),
        "rpm failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<i32> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.trim()
                .parse()
                .unwrap_or_else(|_| panic!("rpm printed {l:?}"))
        })
        .collect();
    assert_eq!(
        answers.len(),
        pairs.len(),
        "rpm answered a different number of pairs"
    );
    let wrong: Vec<String> = pairs
        .iter()
        .zip(&answers)
        .filter_map(|((a, b), &theirs)| {
            let ours = rpm::compare_str(a, b).unwrap();
            (ours != theirs.cmp(&0))
                .then(|| format!("{a:?} vs {b:?}: rpm {theirs}, Patchwell {ours:?}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} pairs differ from rpm, first: {:#?}",
        wrong.len(),
        pairs.len(),
        &wrong[..wrong.len().min(10)]
    );
}

fn shared_data(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(relative);
    prerequisite(path.exists(), &format!("../shared/data/{relative}")).then_some(path)
}

#[test]
fn every_alpine_secdb_fixed_version_is_a_valid_apk_version() {
    let Some(dir) = shared_data("alpine-secdb") else {
        return;
    };
    let mut seen = 0;
    let mut wrong = Vec::new();
    for release in std::fs::read_dir(&dir).unwrap() {
        for file in std::fs::read_dir(release.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // Fixed versions are the keys under `secfixes:`, eight spaces in.
            for line in text.lines() {
                let Some(key) = line
                    .strip_prefix("        ")
                    .and_then(|l| l.strip_suffix(':'))
                else {
                    continue;
                };
                let key = key.trim_matches(['"', '\'']);
                if key.starts_with(' ') || key == "0" {
                    continue; // "0" marks a CVE that never affected Alpine.
                }
                seen += 1;
                if let Err(e) = apk::validate(key) {
                    wrong.push((key.to_owned(), format!("{}: {e}", path.display())));
                }
            }
        }
    }
    assert!(
        seen > 500,
        "found only {seen} fixed versions: has the secdb format changed?"
    );
    // The 2020 secdb snapshot holds a few entries that apk itself cannot parse:
    // typos, and one (`6.6.2p1`) that only the older apk-tools grammar accepted,
    // before a digit after the letter was ruled out. Everything else must parse.
    let known_malformed = ["6.6.2p1-r0", "2.7.16-33", "4.10-1-r1", "4.8.0.-r1"];
    wrong.retain(|(version, _)| !known_malformed.contains(&version.as_str()));
    assert!(
        wrong.is_empty(),
        "real Alpine versions rejected: {wrong:#?}"
    );
    for bad in known_malformed {
        assert!(
            apk::validate(bad).is_err(),
            "{bad} is not a valid apk version"
        );
    }
}

#[test]
fn every_debian_tracker_fixed_version_is_valid_and_dpkg_agrees() {
    let Some(dir) = shared_data("debian-security-tracker") else {
        return;
    };
    let mut versions = BTreeSet::new();
    for list in ["DSA.list", "DLA.list"] {
        let text = std::fs::read_to_string(dir.join(list)).unwrap();
        // Lines such as "\t[bullseye] - openssl 1.1.1n-0+deb11u4".
        for line in text.lines().filter(|l| l.starts_with('\t')) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let [_, "-", _, version, ..] = fields.as_slice() {
                if version.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    versions.insert((*version).to_owned());
                }
            }
        }
    }
    assert!(
        versions.len() > 5_000,
        "found only {} versions in the tracker lists",
        versions.len()
    );
    let rejected: Vec<(&String, String)> = versions
        .iter()
        .filter_map(|v| deb::validate(v).err().map(|e| (v, e.to_string())))
        .collect();
    if rejected.is_empty() {
        return;
    }
    // Anything Patchwell rejects, dpkg must reject too.
    if !prerequisite(have("dpkg"), "dpkg") {
        return;
    }
    for (version, message) in &rejected {
        let dpkg_ok = Command::new("dpkg")
            .args(["--validate-version", "--", version.as_str()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(
            !dpkg_ok,
            "Patchwell rejects a version dpkg accepts: {message}"
        );
    }
}
