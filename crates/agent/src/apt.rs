//! Available updates on apt hosts, from the host's own apt lists.
//!
//! A key design decision made here is to answer from the lists apt already
//! fetched and verified (`/var/lib/apt/lists`), not from the network: the
//! agent reports what this host's apt would install, from the repositories
//! this host trusts. Each list belongs to the `Release` file with the longest
//! matching name prefix, which says its suite (`bookworm-security`, or
//! `oldstable-security` once a newer release is out) and code name.
//! A candidate from a `-security` suite is a security update even when no
//! advisory names it.
//!
//! The candidate is chosen as apt chooses it (`apt_preferences(5)`): each
//! version offered has a pin priority, by default 500, 1 from a release
//! marked `NotAutomatic`, 100 when it is also `ButAutomaticUpgrades`
//! (backports), or what a record of `/etc/apt/preferences` and
//! `preferences.d` gives it; the installed version has at least 100. The
//! highest priority wins, then the highest version, and a version older than
//! the installed one is never chosen below priority 1000. So a backports
//! version is an update only for a package installed from backports, as
//! with apt. Pins by regular expression, and `APT::Default-Release`, are
//! not modelled (a pin the agent cannot read is a warning).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use protocol::{AvailableUpdate, Manager, Package};
use versions::deb;

use crate::root::Root;

/// Where apt keeps its lists, inside the root.
pub const LISTS_DIR: &str = "/var/lib/apt/lists";

/// What a repository's `Release` file says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// `Origin`, such as `Debian`.
    pub origin: Option<String>,
    /// `Label`, such as `Debian-Security`.
    pub label: Option<String>,
    /// `Suite`, such as `oldstable-security`.
    pub suite: Option<String>,
    /// `Codename`, such as `bookworm-security`.
    pub codename: Option<String>,
    /// `NotAutomatic: yes`: apt installs from it only when asked to.
    pub not_automatic: bool,
    /// `ButAutomaticUpgrades: yes`: it upgrades what was installed from it.
    pub but_automatic_upgrades: bool,
}

impl ReleaseInfo {
    /// Whether the repository is a security suite.
    pub fn is_security(&self) -> bool {
        let security_suite =
            |s: &Option<String>| s.as_deref().is_some_and(|s| s.ends_with("-security"));
        security_suite(&self.suite)
            || security_suite(&self.codename)
            || self
                .label
                .as_deref()
                .is_some_and(|l| l.contains("Security"))
    }
}

/// Reads the fields of a `Release` or `InRelease` file (the signed text's
/// first paragraph; apt verified the signature when it fetched it).
pub fn parse_release(text: &str) -> ReleaseInfo {
    let body = match text.strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----") {
        // The armour headers end at the first blank line.
        Some(signed) => signed.split_once("\n\n").map_or("", |(_, body)| body),
        None => text,
    };
    let mut info = ReleaseInfo::default();
    for line in body.lines() {
        if line.is_empty() || line.starts_with('-') {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let yes = value.trim().eq_ignore_ascii_case("yes");
        let slot = match name {
            "Origin" => &mut info.origin,
            "Label" => &mut info.label,
            "Suite" => &mut info.suite,
            "Codename" => &mut info.codename,
            "NotAutomatic" => {
                info.not_automatic = yes;
                continue;
            }
            "ButAutomaticUpgrades" => {
                info.but_automatic_upgrades = yes;
                continue;
            }
            _ => continue,
        };
        *slot = Some(value.trim().to_owned());
    }
    info
}

/// Opens a list, decompressing as its name says (apt may keep them as
/// `.lz4`, `.gz` or `.xz` depending on its configuration).
pub(crate) fn open_list(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let file = BufReader::new(File::open(path)?);
    let name = path.to_string_lossy();
    let reader: Box<dyn Read> = if name.ends_with(".lz4") {
        Box::new(lz4_flex::frame::FrameDecoder::new(file))
    } else if name.ends_with(".gz") {
        Box::new(flate2::bufread::MultiGzDecoder::new(file))
    } else if name.ends_with(".xz") {
        let mut out = Vec::new();
        let mut file = file;
        lzma_rs::xz_decompress(&mut file, &mut out)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Box::new(io::Cursor::new(out))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, reader)))
}

/// The `Packages` lists in a lists directory, and its release files with
/// the file-name prefix each one covers.
pub(crate) struct Lists {
    pub(crate) packages: Vec<PathBuf>,
    releases: Vec<(String, PathBuf)>,
}

pub(crate) fn lists(dir: &Path) -> io::Result<Lists> {
    let mut packages = Vec::new();
    let mut releases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let base = name
            .trim_end_matches(".lz4")
            .trim_end_matches(".gz")
            .trim_end_matches(".xz");
        if base.ends_with("_Packages") {
            packages.push(path);
        } else if let Some(prefix) = name
            .strip_suffix("InRelease")
            .or_else(|| name.strip_suffix("Release"))
        {
            releases.push((prefix.to_owned(), path));
        }
    }
    packages.sort();
    // A list belongs to the release file with the longest prefix of its
    // name; sorting makes the choice between an InRelease and a Release of
    // the same prefix (apt keeps one or the other) the same on every run.
    releases.sort();
    Ok(Lists { packages, releases })
}

/// Every version the apt lists in `dir` offer of the packages `wanted`
/// names: `visit(name, arch, version, release, list)` for each, list by
/// list.
/// A list or release file that cannot be read becomes a warning.
fn each_offer(
    dir: &Path,
    wanted: impl Fn(&str) -> bool,
    warnings: &mut Vec<String>,
    mut visit: impl FnMut(Stanza<'_>, &ListSource, &Path),
) {
    let Lists {
        packages: package_lists,
        releases: release_files,
    } = match lists(dir) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => {
            warnings.push(format!(
                "{}: {e}; no available updates reported",
                dir.display()
            ));
            return;
        }
    };
    for list in &package_lists {
        let list_name = list
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let release = release_files
            .iter()
            .filter(|(prefix, _)| list_name.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len());
        let info = release
            .and_then(|(_, path)| std::fs::read_to_string(path).ok())
            .map(|text| parse_release(&text))
            .unwrap_or_default();
        // `<site>_<path>_dists_<suite>_<component>_binary-<arch>_Packages`.
        let component = release
            .and_then(|(prefix, _)| list_name.get(prefix.len()..))
            .and_then(|rest| rest.split_once("_binary-"))
            .map(|(component, _)| component.replace('_', "/"))
            .unwrap_or_default();
        let site = list_name.split('_').next().unwrap_or_default().to_owned();
        let from = ListSource {
            release: info,
            component,
            site,
        };
        let reader = match open_list(list) {
            Ok(r) => r,
            Err(e) => {
                warnings.push(format!("{}: {e}; list skipped", list.display()));
                continue;
            }
        };
        let scanned = crate::deb822::scan(
            reader,
            ["Package", "Architecture", "Version", "Source"],
            &wanted,
            |[name, arch, version, source]| {
                if let (Some(name), Some(arch), Some(version)) = (name, arch, version) {
                    let stanza = Stanza {
                        name,
                        arch,
                        version,
                        source_version: source
                            .and_then(|s| crate::dpkg::split_source(s, version))
                            .map(|(_, v)| v)
                            .filter(|v| !v.is_empty())
                            .unwrap_or(version),
                    };
                    visit(stanza, &from, list);
                }
            },
        );
        if let Err(e) = scanned {
            warnings.push(format!("{}: {e}; rest of the list skipped", list.display()));
        }
    }
}

/// Where a list comes from: its release, component and site.
#[derive(Debug, Clone)]
struct ListSource {
    release: ReleaseInfo,
    /// `main`, `contrib`, `updates/main` ...
    component: String,
    /// The repository's host, as the list's file name begins.
    site: String,
}

/// What a pin record applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PinOf {
    /// `Pin: release a=...,n=...`: each key and value must match.
    Release(Vec<(char, String)>),
    /// `Pin: origin host`.
    Origin(String),
    /// `Pin: version 1.2*`.
    Version(String),
}

/// One record of apt's preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pin {
    /// Package names or glob patterns; `*` for every package (a general
    /// record).
    packages: Vec<String>,
    pin: PinOf,
    priority: i32,
}

impl Pin {
    fn general(&self) -> bool {
        self.packages.iter().any(|p| p == "*")
    }

    fn matches(&self, name: &str, version: &str, from: &ListSource) -> bool {
        if !self.packages.iter().any(|p| glob(p, name)) {
            return false;
        }
        match &self.pin {
            PinOf::Origin(site) => from.site == *site,
            PinOf::Version(pattern) => glob(pattern, version),
            PinOf::Release(terms) => terms.iter().all(|(key, value)| {
                let r = &from.release;
                if *key == '*' {
                    // A bare name: the archive or the code name.
                    return [r.suite.as_deref(), r.codename.as_deref()]
                        .into_iter()
                        .flatten()
                        .any(|f| glob(value, f));
                }
                let field = match key {
                    'a' => r.suite.as_deref(),
                    'n' => r.codename.as_deref(),
                    'o' => r.origin.as_deref(),
                    'l' => r.label.as_deref(),
                    'c' => Some(from.component.as_str()),
                    _ => None,
                };
                field.is_some_and(|f| glob(value, f))
            }),
        }
    }
}

/// `*` and `?` globbing, as apt's preferences allow in names and versions.
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Reads one preferences file's records; what it cannot read is a warning.
fn parse_preferences(text: &str, file: &str, warnings: &mut Vec<String>) -> Vec<Pin> {
    let mut pins = Vec::new();
    // Records end at an empty line (CRLF line ends allowed). A line of
    // spaces does not end one, as with apt: the records on both sides
    // merge, and a field given twice keeps its last value.
    let mut records: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        if line.is_empty() {
            records.push(Vec::new());
        } else if line.trim().is_empty() {
            continue;
        } else if let Some(last) = records.last_mut() {
            last.push(line);
        }
    }
    for record in records.iter().filter(|r| !r.is_empty()) {
        let mut fields: HashMap<String, String> = HashMap::new();
        for line in record {
            let line = line.trim_end();
            if line.starts_with('#') {
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                fields.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let (Some(packages), Some(pin), Some(priority)) = (
            fields.get("package"),
            fields.get("pin"),
            fields.get("pin-priority"),
        ) else {
            if fields.contains_key("package") || fields.contains_key("pin") {
                warnings.push(format!(
                    "{file}: a record without Package, Pin and Pin-Priority is ignored"
                ));
            }
            continue;
        };
        let Ok(priority) = priority.parse::<i32>() else {
            warnings.push(format!(
                "{file}: Pin-Priority {priority:?} is not a number; record ignored"
            ));
            continue;
        };
        if packages.contains('/') {
            warnings.push(format!(
                "{file}: Package {packages:?}: regular expressions are not modelled; record ignored"
            ));
            continue;
        }
        let (kind, what) = pin.split_once(' ').unwrap_or((pin.as_str(), ""));
        let what = what.trim().trim_matches('"').to_owned();
        let pin = match kind {
            "release" => {
                let mut terms = Vec::new();
                for term in what.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    match term.split_once('=') {
                        Some((k, v)) if k.len() == 1 && "anolc".contains(k) => {
                            terms.push((k.chars().next().unwrap_or('a'), v.trim().to_owned()));
                        }
                        // A bare name is the archive or the code name.
                        None => terms.push(('*', term.to_owned())),
                        Some((k, _)) => {
                            warnings.push(format!(
                                "{file}: Pin: release {k}=: not modelled; record ignored"
                            ));
                            terms.clear();
                            break;
                        }
                    }
                }
                if terms.is_empty() {
                    continue;
                }
                PinOf::Release(terms)
            }
            "origin" => PinOf::Origin(what),
            "version" => PinOf::Version(what),
            other => {
                warnings.push(format!(
                    "{file}: Pin: {other}: not modelled; record ignored"
                ));
                continue;
            }
        };
        pins.push(Pin {
            packages: packages.split_whitespace().map(str::to_owned).collect(),
            pin,
            priority,
        });
    }
    pins
}

/// The root's apt preferences: `/etc/apt/preferences`, then the files of
/// `preferences.d` apt reads (no extension, or `.pref`), in name order.
fn read_preferences(root: &Root, warnings: &mut Vec<String>) -> Vec<Pin> {
    let mut files = vec![root.path("/etc/apt/preferences")];
    if let Ok(entries) = std::fs::read_dir(root.path("/etc/apt/preferences.d")) {
        let mut more: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                let usable = name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                usable && (!name.contains('.') || name.ends_with(".pref"))
            })
            .collect();
        more.sort();
        files.extend(more);
    }
    let mut pins = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => pins.extend(parse_preferences(
                &text,
                &file.display().to_string(),
                warnings,
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warnings.push(format!("{}: {e}; its pins are not applied", file.display())),
        }
    }
    pins
}

/// The pin priority of `name` at `version` from `from`: the first specific
/// record that matches, else the first general one, else the release's
/// default.
fn priority(pins: &[Pin], name: &str, version: &str, from: &ListSource) -> i32 {
    let first = |general: bool| {
        pins.iter()
            .find(|p| p.general() == general && p.matches(name, version, from))
            .map(|p| p.priority)
    };
    first(false).or_else(|| first(true)).unwrap_or({
        let r = &from.release;
        match (r.not_automatic, r.but_automatic_upgrades) {
            (false, _) => 500,
            (true, false) => 1,
            (true, true) => 100,
        }
    })
}

/// The fields of one package stanza of an apt list that are read.
#[derive(Debug, Clone, Copy)]
struct Stanza<'a> {
    name: &'a str,
    arch: &'a str,
    version: &'a str,
    /// Its source package's version: the one in `Source: name (version)`,
    /// else the package's own (as dpkg reads it).
    source_version: &'a str,
}

/// A version an apt list offers, with the release that offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The binary package.
    pub name: String,
    /// Its architecture.
    pub arch: String,
    /// The version offered.
    pub version: String,
    /// Its source package's version.
    pub source_version: String,
    /// The release (suite) that offers it.
    pub release: ReleaseInfo,
}

/// Every version the root's apt lists offer of the named packages.
pub fn offers(root: &Root, names: &HashSet<&str>, warnings: &mut Vec<String>) -> Vec<Offer> {
    let mut out = Vec::new();
    each_offer(
        &root.path(LISTS_DIR),
        |name| names.contains(name),
        warnings,
        |stanza, source, _| {
            out.push(Offer {
                name: stanza.name.to_owned(),
                arch: stanza.arch.to_owned(),
                version: stanza.version.to_owned(),
                source_version: stanza.source_version.to_owned(),
                release: source.release.clone(),
            })
        },
    );
    out
}

/// The version apt would choose among `offers` of a package installed at
/// `installed`, with the release offering it, when it is newer: the
/// highest priority wins (the installed version has at least 100, or that
/// of a list offering it), then the highest version; a version older than
/// the installed one only at priority 1000 or more; at the same version a
/// security suite's release is the one named.
fn candidate<'a>(
    installed: &deb::Version,
    installed_priority: i32,
    offers: &'a [(i32, deb::Version, &'a ReleaseInfo)],
) -> Option<(&'a deb::Version, &'a ReleaseInfo)> {
    let best = offers
        .iter()
        .filter(|(p, v, _)| *p > 0 && (v > installed || *p >= 1000))
        .max_by(|a, b| (a.0, &a.1, a.2.is_security()).cmp(&(b.0, &b.1, b.2.is_security())))?;
    let wins = (best.0, &best.1) > (installed_priority, installed);
    (wins && best.1 > *installed).then_some((&best.1, best.2))
}

/// The version the host's apt would upgrade each installed dpkg package
/// to, where there is one (see the module's note on pins).
pub fn available_updates(
    root: &Root,
    installed: &[Package],
    warnings: &mut Vec<String>,
) -> Vec<AvailableUpdate> {
    // (name, arch) -> installed version. Packages removed but configured are
    // not installed, so they have no update.
    let mut current: Vec<(&Package, deb::Version)> = Vec::new();
    for p in installed
        .iter()
        .filter(|p| p.manager == Manager::Dpkg && p.state.is_installed())
    {
        match deb::Version::parse(&p.version) {
            Ok(v) => current.push((p, v)),
            Err(e) => warnings.push(format!("installed package {}: {e}", p.name)),
        }
    }
    let wanted: HashMap<(&str, &str), usize> = current
        .iter()
        .enumerate()
        .map(|(i, (p, _))| ((p.name.as_str(), p.arch.as_str()), i))
        .collect();
    let names: HashSet<&str> = current.iter().map(|(p, _)| p.name.as_str()).collect();
    let pins = read_preferences(root, warnings);
    // Index into `current` -> the versions offered that can be chosen (newer
    // ones, or older at priority 1000 or more): priority, version, release
    // (an index into `releases`, one a list); and the priority of the
    // installed version, the highest of the lists offering it, 100 at least.
    let mut offered: HashMap<usize, Vec<(i32, deb::Version, usize)>> = HashMap::new();
    let mut installed_priority: HashMap<usize, i32> = HashMap::new();
    let mut releases: Vec<ReleaseInfo> = Vec::new();
    let mut last_list = PathBuf::new();
    let mut failures = Vec::new();
    each_offer(
        &root.path(LISTS_DIR),
        |name| names.contains(name),
        warnings,
        |stanza, source, list| {
            let Stanza {
                name,
                arch,
                version,
                ..
            } = stanza;
            let Some(&key) = wanted.get(&(name, arch)) else {
                return;
            };
            let version = match deb::Version::parse(version) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{}: package {name}: {e}", list.display()));
                    return;
                }
            };
            let priority = priority(&pins, name, stanza.version, source);
            match version.cmp(&current[key].1) {
                std::cmp::Ordering::Equal => {
                    let p = installed_priority.entry(key).or_insert(100);
                    *p = (*p).max(priority);
                    return;
                }
                std::cmp::Ordering::Less if priority < 1000 => return,
                _ => {}
            }
            if last_list != list || releases.is_empty() {
                list.clone_into(&mut last_list);
                releases.push(source.release.clone());
            }
            offered
                .entry(key)
                .or_default()
                .push((priority, version, releases.len() - 1));
        },
    );
    warnings.extend(failures);

    let mut updates: Vec<AvailableUpdate> = offered
        .into_iter()
        .filter_map(|(key, offers)| {
            let offers: Vec<(i32, deb::Version, &ReleaseInfo)> = offers
                .into_iter()
                .map(|(p, v, r)| (p, v, &releases[r]))
                .collect();
            let at_least = installed_priority.get(&key).copied().unwrap_or(100);
            let (candidate, info) = candidate(&current[key].1, at_least, &offers)?;
            Some((key, (candidate.clone(), info.clone())))
        })
        .map(|(key, (candidate, info))| {
            let (package, installed_version) = &current[key];
            AvailableUpdate {
                manager: Manager::Dpkg,
                name: package.name.clone(),
                arch: package.arch.clone(),
                installed: installed_version.to_string(),
                candidate: candidate.to_string(),
                suite: info.suite.clone(),
                codename: info.codename.clone(),
                origin: info.origin.clone(),
                security: info.is_security(),
            }
        })
        .collect();
    updates.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    updates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_signed_release_file() {
        let text = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n\
                    Origin: Debian\nLabel: Debian-Security\nSuite: oldstable-security\n\
                    Version: 12\nCodename: bookworm-security\nDate: Sat, 21 Nov 2026\n\
                    SHA256:\n 0123 100 main/binary-amd64/Packages\n\
                    -----BEGIN PGP SIGNATURE-----\n\nxyz\n-----END PGP SIGNATURE-----\n";
        let info = parse_release(text);
        assert_eq!(info.origin.as_deref(), Some("Debian"));
        assert_eq!(info.suite.as_deref(), Some("oldstable-security"));
        assert_eq!(info.codename.as_deref(), Some("bookworm-security"));
        assert!(info.is_security());
        let plain = parse_release("Origin: Debian\nSuite: stable\nCodename: bookworm\n");
        assert!(!plain.is_security());
    }

    #[test]
    fn the_same_version_in_a_security_list_is_a_security_update_whatever_the_names() {
        // `security.example_...` sorts after `main.example_...`, so the
        // security list is read last; the order must not decide.
        let root = std::env::temp_dir().join(format!("patchwell-apt-tie-{}", std::process::id()));
        let lists = root.join("var/lib/apt/lists");
        std::fs::create_dir_all(&lists).unwrap();
        let stanza = "Package: libssl3\nArchitecture: amd64\nVersion: 3.0.17-1\n\n";
        for (prefix, codename) in [
            ("main.example_dists_bookworm-updates_", "bookworm-updates"),
            (
                "security.example_dists_bookworm-security_",
                "bookworm-security",
            ),
        ] {
            std::fs::write(
                lists.join(format!("{prefix}Release")),
                format!("Origin: Debian\nCodename: {codename}\n"),
            )
            .unwrap();
            std::fs::write(
                lists.join(format!("{prefix}main_binary-amd64_Packages")),
                stanza,
            )
            .unwrap();
        }
        let installed = [Package {
            manager: Manager::Dpkg,
            name: "libssl3".into(),
            version: "3.0.11-1".into(),
            arch: "amd64".into(),
            source: None,
            source_version: None,
            state: protocol::PackageState::Installed,
            held: false,
        }];
        let mut warnings = Vec::new();
        let updates = available_updates(&Root::new(&root), &installed, &mut warnings);
        std::fs::remove_dir_all(&root).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(updates.len(), 1);
        assert!(updates[0].security);
        assert_eq!(updates[0].codename.as_deref(), Some("bookworm-security"));
    }

    /// An offer's source version: the one `Source:` gives in parentheses
    /// (a binNMU, or a binary versioned apart), else its own.
    #[test]
    fn offers_carry_their_source_version() {
        let root = std::env::temp_dir().join(format!("patchwell-apt-src-{}", std::process::id()));
        let lists = root.join("var/lib/apt/lists");
        std::fs::create_dir_all(&lists).unwrap();
        std::fs::write(
            lists.join("deb.example_dists_bookworm_main_binary-amd64_Packages"),
            "Package: bash\nArchitecture: amd64\nVersion: 5.2.15-2+b7\nSource: bash (5.2.15-2)\n\n\
             Package: libssl3\nSource: openssl\nArchitecture: amd64\nVersion: 3.0.17-1~deb12u2\n\n\
             Package: zlib1g\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\n\n",
        )
        .unwrap();
        let names: HashSet<&str> = ["bash", "libssl3", "zlib1g"].into();
        let mut warnings = Vec::new();
        let mut found: Vec<(String, String, String)> =
            offers(&Root::new(&root), &names, &mut warnings)
                .into_iter()
                .map(|o| (o.name, o.version, o.source_version))
                .collect();
        std::fs::remove_dir_all(&root).unwrap();
        found.sort();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            found,
            [
                ("bash".into(), "5.2.15-2+b7".into(), "5.2.15-2".into()),
                (
                    "libssl3".into(),
                    "3.0.17-1~deb12u2".into(),
                    "3.0.17-1~deb12u2".into()
                ),
                (
                    "zlib1g".into(),
                    "1:1.2.13.dfsg-1".into(),
                    "1:1.2.13.dfsg-1".into()
                ),
            ]
        );
    }
}
