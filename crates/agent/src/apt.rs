//! Available updates on apt hosts, from the host's own apt lists.
//!
//! A key design decision made here is to answer from the lists apt already
//! fetched and verified (`/var/lib/apt/lists`), not from the network: the
//! agent reports what this host's apt would install, from the repositories
//! this host trusts. Each list belongs to the `Release` file with the longest
//! matching name prefix, which says its suite (`bookworm-security`, or
//! `oldstable-security` once a newer release is out) and code name.
//! A candidate from a `-security` suite is a security update even when no
//! advisory names it. Pinning is not modelled: the candidate is the highest
//! version offered for the package's name and architecture.

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
        let slot = match name {
            "Origin" => &mut info.origin,
            "Label" => &mut info.label,
            "Suite" => &mut info.suite,
            "Codename" => &mut info.codename,
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
    mut visit: impl FnMut(Stanza<'_>, &ReleaseInfo, &Path),
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
        let info = release_files
            .iter()
            .filter(|(prefix, _)| list_name.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .and_then(|(_, path)| std::fs::read_to_string(path).ok())
            .map(|text| parse_release(&text))
            .unwrap_or_default();
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
                    visit(stanza, &info, list);
                }
            },
        );
        if let Err(e) = scanned {
            warnings.push(format!("{}: {e}; rest of the list skipped", list.display()));
        }
    }
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
        |stanza, release, _| {
            out.push(Offer {
                name: stanza.name.to_owned(),
                arch: stanza.arch.to_owned(),
                version: stanza.version.to_owned(),
                source_version: stanza.source_version.to_owned(),
                release: release.clone(),
            })
        },
    );
    out
}

/// The newest version the host's apt lists offer for each installed dpkg
/// package, where it is newer than the installed one.
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
    // Index into `current` -> the best candidate so far and its release.
    let mut best: HashMap<usize, (deb::Version, ReleaseInfo)> = HashMap::new();
    let mut failures = Vec::new();
    each_offer(
        &root.path(LISTS_DIR),
        |name| names.contains(name),
        warnings,
        |stanza, info, list| {
            let Stanza {
                name,
                arch,
                version,
                ..
            } = stanza;
            let Some(&key) = wanted.get(&(name, arch)) else {
                return;
            };
            let installed_version = &current[key].1;
            let candidate = match deb::Version::parse(version) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{}: package {name}: {e}", list.display()));
                    return;
                }
            };
            if candidate <= *installed_version {
                return;
            }
            // The newest wins; at the same version, a security suite's
            // (the same version in both lists is the security update,
            // whatever the lists' file names sort as).
            let security = info.is_security();
            match best.get(&key) {
                Some((current, _)) if *current > candidate => {}
                Some((current, at)) if *current == candidate && (at.is_security() || !security) => {
                }
                _ => {
                    best.insert(key, (candidate, info.clone()));
                }
            }
        },
    );
    warnings.extend(failures);

    let mut updates: Vec<AvailableUpdate> = best
        .into_iter()
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
