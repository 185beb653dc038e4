//! The dpkg database (`/var/lib/dpkg/status`), read directly.
//!
//! Reading the file beats running `dpkg-query`: no process, and it works on a
//! chroot whose dpkg could not run here. The source package and version follow
//! dpkg-query's rules (`${source:Package}`, `${source:Version}`): without a
//! `Source` field the source is the package itself; `Source: name (version)`
//! names a different source version, as for binNMUs.

use std::io::BufRead;

use protocol::{Manager, Package, PackageState};

use crate::deb822::Paragraphs;

/// Where dpkg keeps its database, inside the root.
pub const STATUS_FILE: &str = "/var/lib/dpkg/status";

const FIELDS: [&str; 5] = ["Package", "Status", "Architecture", "Version", "Source"];

/// Reads every package from a dpkg status file. A paragraph that cannot be
/// understood is left out and described in the warnings, with its line.
pub fn parse_status(
    reader: impl BufRead,
    file: &str,
) -> std::io::Result<(Vec<Package>, Vec<String>)> {
    let mut paragraphs = Paragraphs::new(reader);
    let mut values = vec![None; FIELDS.len()];
    let mut packages = Vec::new();
    let mut warnings = Vec::new();
    while let Some(line) = paragraphs.next_into(&FIELDS, &mut values)? {
        match package(&mut values) {
            Ok(Some(package)) => packages.push(package),
            Ok(None) => {}
            Err(why) => warnings.push(format!("{file} line {line}: {why}; paragraph skipped")),
        }
    }
    Ok((packages, warnings))
}

/// The source package and its version a `Source` field gives: `name`
/// (built at the package's own `version`) or `name (version)`. None when
/// it is neither.
pub(crate) fn split_source<'a>(field: &'a str, version: &'a str) -> Option<(&'a str, &'a str)> {
    match field.split_once(' ') {
        None => Some((field, version)),
        Some((source, rest)) => {
            let v = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some((source, v.trim()))
        }
    }
}

/// One paragraph: `Ok(None)` for a package dpkg remembers but that is not
/// installed at all (`not-installed`).
fn package(values: &mut [Option<String>]) -> Result<Option<Package>, String> {
    let [name, status, arch, version, source] = values else {
        unreachable!("one value per field")
    };
    let name = name.take().ok_or("no Package field")?;
    let status = status
        .take()
        .ok_or_else(|| format!("package {name} has no Status field"))?;
    let words: Vec<&str> = status.split_whitespace().collect();
    let [want, _flag, state] = words.as_slice() else {
        return Err(format!("package {name} has a malformed Status {status:?}"));
    };
    let state = match *state {
        "not-installed" => return Ok(None),
        "installed" => PackageState::Installed,
        "config-files" => PackageState::ConfigFiles,
        "unpacked" => PackageState::Unpacked,
        "half-configured" => PackageState::HalfConfigured,
        "half-installed" => PackageState::HalfInstalled,
        "triggers-awaited" => PackageState::TriggersAwaited,
        "triggers-pending" => PackageState::TriggersPending,
        other => return Err(format!("package {name} has an unknown state {other:?}")),
    };
    let version = version
        .take()
        .ok_or_else(|| format!("package {name} has no Version field"))?;
    let arch = arch.take().unwrap_or_default();
    let (source, source_version) = match source.take() {
        None => (name.clone(), version.clone()),
        Some(field) => {
            let (source, v) = split_source(&field, &version)
                .ok_or_else(|| format!("package {name} has a malformed Source {field:?}"))?;
            (source.to_owned(), v.to_owned())
        }
    };
    Ok(Some(Package {
        manager: Manager::Dpkg,
        name,
        version,
        arch,
        source: Some(source),
        source_version: Some(source_version),
        state,
        held: *want == "hold",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: libfoo1
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: foo (1.0.9-2)
Version: 1.0.9-2+b6
Description: a library
 with a long description
 .
 over several lines

Package: libfoo1
Status: install ok installed
Architecture: i386
Source: foo (1.0.9-2)
Version: 1.0.9-2+b6

Package: cron
Status: deinstall ok config-files
Architecture: amd64
Version: 3.0pl1-162
Conffiles:
 /etc/crontab 1234

Package: gone
Status: purge ok not-installed
Architecture: amd64

Package: pinned
Status: hold ok installed
Architecture: all
Source: pinned-src
Version: 2:1.0-1

Package: broken
Status: install reinstreq half-configured
Architecture: amd64
Version: 1.0

Package: nostatus
Version: 1.0
";

    #[test]
    fn reads_packages_as_dpkg_query_would() {
        let (packages, warnings) = parse_status(STATUS.as_bytes(), "status").unwrap();
        let summary: Vec<(&str, &str, &str, &str, PackageState, bool)> = packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.arch.as_str(),
                    p.source.as_deref().unwrap(),
                    p.source_version.as_deref().unwrap(),
                    p.state,
                    p.held,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "libfoo1",
                    "amd64",
                    "foo",
                    "1.0.9-2",
                    PackageState::Installed,
                    false
                ),
                (
                    "libfoo1",
                    "i386",
                    "foo",
                    "1.0.9-2",
                    PackageState::Installed,
                    false
                ),
                (
                    "cron",
                    "amd64",
                    "cron",
                    "3.0pl1-162",
                    PackageState::ConfigFiles,
                    false
                ),
                (
                    "pinned",
                    "all",
                    "pinned-src",
                    "2:1.0-1",
                    PackageState::Installed,
                    true
                ),
                (
                    "broken",
                    "amd64",
                    "broken",
                    "1.0",
                    PackageState::HalfConfigured,
                    false
                ),
            ]
        );
        assert_eq!(packages[0].version, "1.0.9-2+b6");
        assert_eq!(
            warnings,
            ["status line 41: package nostatus has no Status field; paragraph skipped"]
        );
    }
}
