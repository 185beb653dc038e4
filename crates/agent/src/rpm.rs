//! The rpm database, through `rpm -qa` with a query format, so that every
//! rpm database format (BerkeleyDB, NDB, SQLite) is read by rpm itself.

use protocol::{Manager, Package, PackageState};

use crate::root::Root;
use crate::runner::{stdout_of, CommandRunner};

/// One line per package: name, epoch (0 when none), version, release, arch
/// and the source rpm's file name.
pub const QUERY_FORMAT: &str =
    "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n";

/// Where rpm databases live, inside the root.
pub const DATABASES: [&str; 2] = ["/var/lib/rpm", "/usr/lib/sysimage/rpm"];

/// Lists the packages of the root's rpm database, if it has one.
pub fn collect(
    root: &Root,
    runner: &dyn CommandRunner,
    warnings: &mut Vec<String>,
) -> Vec<Package> {
    let Some(dbpath) = DATABASES.iter().find(|d| {
        std::fs::read_dir(root.path(d)).is_ok_and(|mut entries| entries.next().is_some())
    }) else {
        return Vec::new();
    };
    let root_dir = root.dir().to_string_lossy().into_owned();
    // Name the database found rather than trust the rpm binary's compiled-in
    // path, which differs between distributions (and is ~/.rpmdb on Debian).
    let args = [
        "--root",
        &root_dir,
        "--dbpath",
        dbpath,
        "-qa",
        "--queryformat",
        QUERY_FORMAT,
    ];
    match stdout_of(runner, "rpm", &args) {
        Ok(out) => {
            let (packages, problems) = parse_query(&out);
            warnings.extend(problems);
            packages
        }
        Err(why) => {
            warnings.push(format!("rpm database found but not read: {why}"));
            Vec::new()
        }
    }
}

/// Parses the output of `rpm -qa --queryformat QUERY_FORMAT`.
pub fn parse_query(out: &str) -> (Vec<Package>, Vec<String>) {
    let mut packages = Vec::new();
    let mut warnings = Vec::new();
    for (i, line) in out.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, epoch, version, release, arch, source_rpm] = fields.as_slice() else {
            warnings.push(format!(
                "rpm output line {}: expected 6 fields, got {}",
                i + 1,
                fields.len()
            ));
            continue;
        };
        // Imported signing keys are listed as packages; they are not software.
        if *name == "gpg-pubkey" {
            continue;
        }
        let evr = |epoch: &str, v: &str| match epoch {
            "0" | "" | "(none)" => v.to_owned(),
            e => format!("{e}:{v}"),
        };
        let version = evr(epoch, &format!("{version}-{release}"));
        // `foo-1.2-3.el9.src.rpm`: the source name is all but the last two
        // dash-separated parts.
        let source = source_rpm.strip_suffix(".src.rpm").and_then(|nvr| {
            let (nv, release) = nvr.rsplit_once('-')?;
            let (name, version) = nv.rsplit_once('-')?;
            Some((name.to_owned(), evr(epoch, &format!("{version}-{release}"))))
        });
        packages.push(Package {
            manager: Manager::Rpm,
            name: (*name).to_owned(),
            version,
            arch: (*arch).to_owned(),
            source: source.as_ref().map(|(n, _)| n.clone()),
            source_version: source.map(|(_, v)| v),
            state: PackageState::Installed,
            held: false,
        });
    }
    (packages, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query_output() {
        let out = "openssl-libs\t1\t3.0.7\t27.el9\tx86_64\topenssl-3.0.7-27.el9.src.rpm\n\
                   gpg-pubkey\t0\tfd431d51\t4ae0493b\t(none)\t(none)\n\
                   tzdata\t0\t2024a\t1.el9\tnoarch\ttzdata-2024a-1.el9.src.rpm\n\
                   broken line\n";
        let (packages, warnings) = parse_query(out);
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].version, "1:3.0.7-27.el9");
        assert_eq!(packages[0].source.as_deref(), Some("openssl"));
        assert_eq!(
            packages[0].source_version.as_deref(),
            Some("1:3.0.7-27.el9")
        );
        assert_eq!(packages[1].version, "2024a-1.el9");
        assert_eq!(packages[1].arch, "noarch");
        assert_eq!(warnings, ["rpm output line 4: expected 6 fields, got 1"]);
    }
}
