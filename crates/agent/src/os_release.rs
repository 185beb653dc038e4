//! os-release(5): `/etc/os-release`, falling back to `/usr/lib/os-release`.

use protocol::OsRelease;

/// Where to look, in order, inside the root.
pub const FILES: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// Parses os-release text. `None` when it has no `ID`, which every real
/// os-release file has.
pub fn parse(text: &str) -> Option<OsRelease> {
    let mut id = None;
    let mut version_id = None;
    let mut codename = None;
    let mut pretty_name = None;
    let mut id_like = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(raw.trim());
        match key.trim() {
            "ID" => id = Some(value),
            "VERSION_ID" => version_id = Some(value),
            "VERSION_CODENAME" => codename = Some(value),
            "PRETTY_NAME" => pretty_name = Some(value),
            "ID_LIKE" => id_like = value.split_whitespace().map(str::to_owned).collect(),
            _ => {}
        }
    }
    Some(OsRelease {
        id: id?,
        version_id,
        codename,
        pretty_name,
        id_like,
    })
}

/// Shell-style quoting as os-release allows it: single or double quotes, and
/// backslash escapes inside double quotes.
fn unquote(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.to_owned();
    }
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return raw.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debian_and_ubuntu() {
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                      VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
        let os = parse(debian).unwrap();
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.codename.as_deref(), Some("bookworm"));
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );

        let ubuntu = "# comment\nID=ubuntu\nID_LIKE=debian\nVERSION_ID='22.04'\n\
                      PRETTY_NAME=\"Ubuntu \\\"Jammy\\\" 22.04\"\n";
        let os = parse(ubuntu).unwrap();
        assert_eq!(os.id_like, ["debian"]);
        assert_eq!(os.version_id.as_deref(), Some("22.04"));
        assert_eq!(os.pretty_name.as_deref(), Some("Ubuntu \"Jammy\" 22.04"));
        assert_eq!(os.codename, None);

        assert_eq!(parse("NAME=nothing\n"), None);
    }
}
