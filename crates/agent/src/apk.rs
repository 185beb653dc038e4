//! Alpine's installed database (`/lib/apk/db/installed`), read directly.

use protocol::{Manager, Package, PackageState};

/// Where apk keeps its database, inside the root.
pub const INSTALLED_FILE: &str = "/lib/apk/db/installed";

/// Parses apk's installed database: blocks of `X:value` lines separated by
/// blank lines; `P` name, `V` version, `A` arch, `o` origin (source) package.
pub fn parse_installed(text: &str) -> (Vec<Package>, Vec<String>) {
    let mut packages = Vec::new();
    let mut warnings = Vec::new();
    let mut fields: [Option<&str>; 4] = [None; 4];
    let mut start = 1;
    let lines: Vec<&str> = text.lines().chain(std::iter::once("")).collect();
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            let [name, version, arch, origin] = fields;
            match (name, version) {
                (Some(name), Some(version)) => packages.push(Package {
                    manager: Manager::Apk,
                    name: name.to_owned(),
                    version: version.to_owned(),
                    arch: arch.unwrap_or_default().to_owned(),
                    source: Some(origin.unwrap_or(name).to_owned()),
                    source_version: Some(version.to_owned()),
                    state: PackageState::Installed,
                    held: false,
                }),
                (None, None) => {}
                _ => warnings.push(format!(
                    "{INSTALLED_FILE} line {start}: a package without P: and V:"
                )),
            }
            fields = [None; 4];
            start = i + 2;
            continue;
        }
        let slot = match line.get(..2) {
            Some("P:") => 0,
            Some("V:") => 1,
            Some("A:") => 2,
            Some("o:") => 3,
            _ => continue,
        };
        fields[slot] = Some(&line[2..]);
    }
    (packages, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_installed_database() {
        let text = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\nT:the musl c library\n\n\
                    P:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\nF:lib\nR:libcrypto.so.3\n\n\
                    V:1.0-r0\n";
        let (packages, warnings) = parse_installed(text);
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[1].name, "libcrypto3");
        assert_eq!(packages[1].source.as_deref(), Some("openssl"));
        assert_eq!(packages[1].version, "3.1.4-r5");
        assert_eq!(
            warnings,
            ["/lib/apk/db/installed line 15: a package without P: and V:"]
        );
    }
}
