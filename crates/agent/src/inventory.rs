//! A whole inventory: every collector, run against one root.

use std::io::BufReader;
use std::path::PathBuf;

use jiff::Timestamp;
use protocol::{Inventory, Manager, RebootStatus, INVENTORY_SCHEMA};

use crate::root::Root;
use crate::runner::{stdout_of, CommandRunner};
use crate::{apk, apt, dpkg, neighbours, os_release, rpm, system};

/// Why no inventory could be made at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The root is not a directory.
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    /// Neither os-release file exists: probably not the root of a system.
    #[error("{0}: no etc/os-release or usr/lib/os-release; is this the root of a system?")]
    NoOsRelease(PathBuf),
    /// os-release exists but says nothing usable.
    #[error("{path}: no ID= line, so the operating system is unknown")]
    BadOsRelease {
        /// The file.
        path: PathBuf,
    },
    /// A file that exists could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Collects the inventory of the system at `root`, at time `now`.
///
/// Only a root without an os-release fails: every other problem (a
/// malformed package entry, a tool that is missing) is a warning in the
/// inventory, and the rest is still reported.
pub fn collect(
    root: &Root,
    runner: &dyn CommandRunner,
    now: Timestamp,
) -> Result<Inventory, Error> {
    if !root.dir().is_dir() {
        return Err(Error::NotADirectory(root.dir().to_path_buf()));
    }
    let read = |file: &str| {
        root.read_optional(file).map_err(|source| Error::Read {
            path: root.path(file),
            source,
        })
    };

    let mut os_text = None;
    for file in os_release::FILES {
        if let Some(text) = read(file)? {
            os_text = Some((file, text));
            break;
        }
    }
    let (os_file, os_text) = os_text.ok_or_else(|| Error::NoOsRelease(root.dir().to_path_buf()))?;
    let os = os_release::parse(&os_text).ok_or_else(|| Error::BadOsRelease {
        path: root.path(os_file),
    })?;

    let mut warnings = Vec::new();
    let mut packages = Vec::new();

    let status_path = root.path(dpkg::STATUS_FILE);
    match std::fs::File::open(&status_path) {
        Ok(file) => {
            let (found, problems) =
                dpkg::parse_status(BufReader::new(file), &status_path.to_string_lossy()).map_err(
                    |source| Error::Read {
                        path: status_path.clone(),
                        source,
                    },
                )?;
            packages.extend(found);
            warnings.extend(problems);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Read {
                path: status_path,
                source,
            })
        }
    }
    packages.extend(rpm::collect(root, runner, &mut warnings));
    if let Some(text) = read(apk::INSTALLED_FILE)? {
        let (found, problems) = apk::parse_installed(&text);
        packages.extend(found);
        warnings.extend(problems);
    }

    let updates = apt::available_updates(root, &packages, &mut warnings);

    // dpkg's own architecture is the system's native one.
    let arch = packages
        .iter()
        .find(|p| p.manager == Manager::Dpkg && p.name == "dpkg")
        .map(|p| p.arch.clone())
        .unwrap_or_default();

    // /var/run is usually /run; the second is read only when the first is missing.
    let either = |a: &str, b: &str| -> Result<Option<String>, Error> {
        match read(a)? {
            None => read(b),
            found => Ok(found),
        }
    };
    let reboot = match either("/run/reboot-required", "/var/run/reboot-required")? {
        None => RebootStatus {
            required: false,
            packages: Vec::new(),
        },
        Some(_) => {
            let pkgs = either("/run/reboot-required.pkgs", "/var/run/reboot-required.pkgs")?;
            let mut packages: Vec<String> = pkgs
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            packages.sort();
            packages.dedup();
            RebootStatus {
                required: true,
                packages,
            }
        }
    };

    let neighbours = match stdout_of(runner, "ip", &["-json", "neigh"]) {
        Ok(json) => neighbours::parse(&json).unwrap_or_else(|why| {
            warnings.push(why);
            Vec::new()
        }),
        Err(why) => {
            warnings.push(format!("neighbours not read: {why}"));
            Vec::new()
        }
    };

    let host = system::collect(root, runner, arch, &mut warnings);
    Ok(Inventory {
        schema: INVENTORY_SCHEMA,
        collected_at: now,
        host,
        os,
        reboot,
        packages,
        updates,
        neighbours,
        warnings,
    })
}
