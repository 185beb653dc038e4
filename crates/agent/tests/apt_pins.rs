//! The agent's choice of each package's candidate against apt's own: a root
//! with a main suite, backports (`NotAutomatic` with
//! `ButAutomaticUpgrades`), an experimental-like suite (`NotAutomatic`
//! only) and pins in `/etc/apt/preferences.d`, read by the machine's
//! `apt-cache policy` and by the agent. They must name the same candidate
//! for every package.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::Path;
use std::process::Command;

use agent::Root;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Writes `text` at `path` inside `root`, making its directories.
fn put(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

fn stanza(name: &str, version: &str) -> String {
    format!(
        "Package: {name}\nArchitecture: amd64\nVersion: {version}\n\
         Filename: pool/{name}_{version}.deb\nSize: 1\n\n"
    )
}

/// The root: what is installed, and what each suite offers.
fn build(root: &Path) {
    let installed = [
        // A stable update and a newer backport: stable's.
        ("curl", "7.88.1-10+deb12u5"),
        // Installed from backports: its newer backport.
        ("cockpit", "287-1~bpo12+1"),
        // Only experimental has a newer one: none.
        ("gimp", "2.10.34-1"),
        // Pinned to backports: the backport.
        ("golang-go", "2:1.19~1"),
        // Pinned never to be installed from stable: none.
        ("nginx", "1.22.1-9"),
        // Security over main at the same version.
        ("libssl3", "3.0.15-1~deb12u1"),
        // Only the installed version is offered: none.
        ("bash", "5.2.15-2+b7"),
        // Pinned by a bare code name, in a file with CRLF line ends: the
        // backport.
        ("htop", "3.2.2-2"),
    ];
    let status: String = installed
        .iter()
        .map(|(n, v)| {
            format!(
                "Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {v}\n\n"
            )
        })
        .collect();
    put(root, "var/lib/dpkg/status", &status);
    put(
        root,
        "etc/apt/sources.list",
        "deb [trusted=yes] http://deb.example/debian bookworm main\n\
         deb [trusted=yes] http://deb.example/debian bookworm-backports main\n\
         deb [trusted=yes] http://deb.example/debian experimental main\n\
         deb [trusted=yes] http://security.example/debian-security bookworm-security main\n",
    );
    let suites = [
        (
            "deb.example_debian_dists_bookworm",
            "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: bookworm\n",
            vec![
                ("curl", "7.88.1-10+deb12u8"),
                ("gimp", "2.10.34-1"),
                ("golang-go", "2:1.19~1"),
                ("nginx", "1.22.1-9+deb12u1"),
                ("libssl3", "3.0.16-1~deb12u1"),
                ("bash", "5.2.15-2+b7"),
                ("htop", "3.2.2-2"),
            ],
        ),
        (
            "deb.example_debian_dists_bookworm-backports",
            "Origin: Debian Backports\nLabel: Debian Backports\nSuite: stable-backports\n\
             Codename: bookworm-backports\nNotAutomatic: yes\nButAutomaticUpgrades: yes\n",
            vec![
                ("curl", "8.11.1-1~bpo12+1"),
                ("cockpit", "287-1~bpo12+1"),
                ("cockpit", "330-1~bpo12+1"),
                ("golang-go", "2:1.23~2~bpo12+1"),
                ("htop", "3.3.0-4~bpo12+1"),
            ],
        ),
        (
            "deb.example_debian_dists_experimental",
            "Origin: Debian\nLabel: Debian\nSuite: experimental\nCodename: rc-buggy\nNotAutomatic: yes\n",
            vec![("gimp", "3.0.0~rc1-1"), ("curl", "8.12.0-1")],
        ),
        (
            "security.example_debian-security_dists_bookworm-security",
            "Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\n\
             Codename: bookworm-security\n",
            vec![("libssl3", "3.0.16-1~deb12u1")],
        ),
    ];
    for (prefix, release, packages) in suites {
        put(
            root,
            &format!("var/lib/apt/lists/{prefix}_Release"),
            &format!("{release}Architectures: amd64\nComponents: main\n"),
        );
        let list: String = packages.iter().map(|(n, v)| stanza(n, v)).collect();
        put(
            root,
            &format!("var/lib/apt/lists/{prefix}_main_binary-amd64_Packages"),
            &list,
        );
    }
    put(
        root,
        "etc/apt/preferences.d/go-backports",
        "Explanation: the newer Go from backports\n\
         Package: golang-go golang-src\n\
         Pin: release n=bookworm-backports\n\
         Pin-Priority: 500\n\n\
         Package: nginx\n\
         Pin: release a=stable\n\
         Pin-Priority: -1\n",
    );
    put(
        root,
        "etc/apt/preferences.d/htop.pref",
        "# the newer htop\r\nPackage: htop\r\nPin: release bookworm-backports\r\nPin-Priority: 500\r\n\r\n\
         Package: htop-extra\r\nPin: release a=stable\r\nPin-Priority: -1\r\n",
    );
    // A line of spaces does not end a record: apt merges the two, the
    // second's fields win, and gimp is not pinned to experimental.
    put(
        root,
        "etc/apt/preferences.d/zz-merged.pref",
        "Package: gimp\nPin: release n=rc-buggy\nPin-Priority: 990\n   \n\
         Package: nothing-installed\nPin: release a=stable\nPin-Priority: 100\n",
    );
    // apt reads no file with another extension than `.pref`.
    put(
        root,
        "etc/apt/preferences.d/old.bak",
        "Package: *\nPin: release n=rc-buggy\nPin-Priority: 990\n",
    );
}

/// apt's candidate for each package, where it differs from the installed
/// version.
fn apt_candidates(root: &Path, names: &[&str]) -> BTreeMap<String, String> {
    let out = Command::new("apt-cache")
        .arg(format!("-oDir={}", root.display()))
        .arg(format!(
            "-oDir::State::status={}",
            root.join("var/lib/dpkg/status").display()
        ))
        .args([
            "-oAPT::Architecture=amd64",
            "-oAPT::Architectures=amd64",
            "policy",
        ])
        .args(names)
        .output()
        .expect("apt-cache runs (Debian's apt)");
    assert!(
        out.status.success(),
        "apt-cache policy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut found = BTreeMap::new();
    let (mut name, mut installed) = (String::new(), String::new());
    for line in text.lines() {
        if !line.starts_with(' ') {
            name = line.trim_end_matches(':').to_owned();
        } else if let Some(v) = line.trim().strip_prefix("Installed: ") {
            installed = v.to_owned();
        } else if let Some(v) = line.trim().strip_prefix("Candidate: ") {
            if v != installed && v != "(none)" {
                found.insert(name.clone(), v.to_owned());
            }
        }
    }
    found
}

#[test]
fn the_agent_names_the_candidate_apt_would_install() {
    if Command::new("apt-cache").arg("--version").output().is_err() {
        assert!(!in_ci(), "apt-cache is missing and CI=true");
        eprintln!("skipping: no apt-cache here");
        return;
    }
    let dir = std::env::temp_dir().join(format!("patchwell-apt-pins-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    build(&dir);
    let status = std::fs::File::open(dir.join("var/lib/dpkg/status")).unwrap();
    let (installed, warnings) =
        agent::dpkg::parse_status(BufReader::new(status), "status").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut warnings = Vec::new();
    let updates = agent::apt::available_updates(&Root::new(&dir), &installed, &mut warnings);
    let names: Vec<&str> = installed.iter().map(|p| p.name.as_str()).collect();
    let apt = apt_candidates(&dir, &names);
    std::fs::remove_dir_all(&dir).ok();
    assert!(warnings.is_empty(), "{warnings:?}");
    let ours: BTreeMap<String, String> = updates
        .iter()
        .map(|u| (u.name.clone(), u.candidate.clone()))
        .collect();
    assert_eq!(ours, apt, "the agent and apt disagree");
    // And what that is, so that a change in both cannot pass unnoticed.
    let expected: BTreeMap<String, String> = [
        ("cockpit", "330-1~bpo12+1"),
        ("curl", "7.88.1-10+deb12u8"),
        ("golang-go", "2:1.23~2~bpo12+1"),
        ("htop", "3.3.0-4~bpo12+1"),
        ("libssl3", "3.0.16-1~deb12u1"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(ours, expected);
    let libssl = updates.iter().find(|u| u.name == "libssl3").unwrap();
    assert!(libssl.security, "{libssl:?}");
    assert_eq!(libssl.codename.as_deref(), Some("bookworm-security"));
    let cockpit = updates.iter().find(|u| u.name == "cockpit").unwrap();
    assert_eq!(cockpit.codename.as_deref(), Some("bookworm-backports"));
}

#[test]
fn a_pin_the_agent_cannot_read_is_a_warning_not_a_silent_guess() {
    let dir = std::env::temp_dir().join(format!("patchwell-apt-badpin-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    put(
        &dir,
        "etc/apt/preferences",
        "Package: /^lib/\nPin: release a=stable\nPin-Priority: 900\n\n\
         Package: curl\nPin: release a=stable\nPin-Priority: high\n",
    );
    let mut warnings = Vec::new();
    let updates = agent::apt::available_updates(&Root::new(&dir), &[], &mut warnings);
    std::fs::remove_dir_all(&dir).ok();
    assert!(updates.is_empty());
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("regular expressions are not modelled"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("Pin-Priority \"high\" is not a number"),
        "{warnings:?}"
    );
}
