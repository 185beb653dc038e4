//! Alpine's security database (`secdb`): one YAML file per release and
//! repository (`v3.10/main.yaml`), listing for each source package the
//! versions that fixed security problems.
//!
//! ```yaml
//! distroversion: v3.10
//! reponame: main
//! packages:
//!   - pkg:
//!       name: ansible
//!       secfixes:
//!         2.8.4-r0:
//!           - CVE-2019-10206
//!         0:
//!           - CVE-2019-0001   # never affected Alpine
//! ```
//!
//! A key design decision made in this module is that version keys are read
//! as the text written, never as YAML numbers: a key such as `1.0` or `2.10`
//! is a float to a YAML parser, which would print it back as `1` or `2.1`, a
//! different apk version. Every scalar is therefore deserialised through
//! `String`, which serde-saphyr fills with the scalar's source text.
//!
//! Each (package, fixed version) pair becomes one advisory, because that is
//! the unit Alpine publishes: "upgrade to this version to get these fixes".
//! The version key `0` lists problems that never affected Alpine and yields
//! no advisory.

use std::fmt;
use std::marker::PhantomData;

use patchwell_core::advisory::{
    Advisory, Affected, Ecosystem, Event, Origin, PackageKind, UpdateType,
};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::{rejected, FeedError, Parsed, ParsedAdvisories};

/// The format's name in errors.
const FORMAT: &str = "Alpine secdb";

/// The top of a secdb file; the fields Patchwell does not use (`archs`,
/// `urlprefix`, ...) are skipped.
#[derive(Deserialize)]
struct SecDb {
    distroversion: Option<String>,
    packages: Option<Vec<PackageEntry>>,
}

#[derive(Deserialize)]
struct PackageEntry {
    pkg: Option<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: Option<String>,
    secfixes: Option<Ordered<Option<Vec<Option<String>>>>>,
}

/// A YAML mapping with string keys, in the order written (a `BTreeMap` would
/// sort the versions as text).
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of versions to lists of ids")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, V>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }

        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}

/// Parses one secdb file.
///
/// A fixed version that apk-tools would refuse is a rejected record (its
/// would-be advisory id, and the rule it breaks), as is a package without a
/// name. A text that is not YAML, or lacks `distroversion` or `packages`, is
/// [`FeedError::Format`].
pub fn parse(file: &str, text: &str) -> Result<ParsedAdvisories, FeedError> {
    let format_error = |reason: String| FeedError::Format {
        file: file.to_owned(),
        format: FORMAT,
        reason,
    };
    let options = serde_saphyr::options! { with_snippet: false };
    let db: SecDb = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| format_error(e.to_string()))?;
    let distroversion = db
        .distroversion
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format_error("no distroversion".to_owned()))?;
    // OSV and the secdb both write the release with its "v"; accept it without.
    let release = if distroversion.starts_with('v') {
        distroversion
    } else {
        format!("v{distroversion}")
    };
    let ecosystem =
        Ecosystem::parse(&format!("Alpine:{release}")).map_err(|e| format_error(e.to_string()))?;
    let packages = db
        .packages
        .ok_or_else(|| format_error("no packages".to_owned()))?;

    let mut parsed = Parsed {
        items: Vec::new(),
        rejected: Vec::new(),
    };
    for (index, entry) in packages.into_iter().enumerate() {
        let Some(package) = entry.pkg else {
            parsed.rejected.push(rejected(
                file,
                format!("package #{}", index + 1),
                "entry has no pkg",
            ));
            continue;
        };
        let Some(name) = package
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
        else {
            parsed.rejected.push(rejected(
                file,
                format!("package #{}", index + 1),
                "package has no name",
            ));
            continue;
        };
        let Some(Ordered(secfixes)) = package.secfixes else {
            continue;
        };
        for (version, ids) in secfixes {
            let version = version.trim();
            // Listed under "0": never affected Alpine.
            if version == "0" {
                continue;
            }
            let id = format!("ALPINE-{release}-{name}-{version}");
            if let Err(e) = versions::validate(versions::Ecosystem::Apk, version) {
                parsed.rejected.push(rejected(file, id, e.to_string()));
                continue;
            }
            let mut advisory = Advisory::new(id, UpdateType::SecurityUpdate);
            advisory.title = format!("{name} {version}: security fixes");
            for entry in ids.into_iter().flatten().flatten() {
                for alias in ids_in(&entry) {
                    if !advisory.aliases.contains(&alias) {
                        advisory.aliases.push(alias);
                    }
                }
            }
            advisory.affected = vec![Affected {
                ecosystem: ecosystem.clone(),
                package: name.clone(),
                kind: PackageKind::Source,
                ranges: vec![vec![
                    Event::Introduced("0".to_owned()),
                    Event::Fixed(version.to_owned()),
                ]],
                versions: Vec::new(),
                binaries: Vec::new(),
            }];
            advisory.origin = Origin {
                location: file.to_owned(),
                ..Origin::default()
            };
            parsed.items.push(advisory);
        }
    }
    Ok(parsed)
}

/// The identifiers in one secfixes entry.
///
/// The real entries are mostly one CVE each, but some carry several ids
/// (`CVE-2018-12126  XSA-297`), a comment in parentheses (`CVE-2018-14461
/// (LDP)`), a placeholder (`CVE-????-?????`) or a typo (`CVE_2019-2426`,
/// `CVE-2019-19451.patch`, `CVE-2017-17434-1`). Every whitespace-separated
/// word before a `(` that looks like an id is kept; a word that begins with
/// a CVE id is reduced to that id, in its canonical spelling, so that it
/// joins the KEV and EPSS data.
fn ids_in(entry: &str) -> Vec<String> {
    let entry = entry.split('(').next().unwrap_or(entry);
    entry
        .split_whitespace()
        .filter_map(|word| {
            if let Some(cve) = cve_prefix(word) {
                Some(cve)
            } else if looks_like_id(word) {
                Some(word.to_owned())
            } else {
                None
            }
        })
        .collect()
}

/// `CVE-YYYY-NNNN...` at the start of `word` (also written `CVE_`), in
/// canonical form.
fn cve_prefix(word: &str) -> Option<String> {
    let rest = word
        .strip_prefix("CVE-")
        .or_else(|| word.strip_prefix("CVE_"))?;
    let (year, rest) = rest.split_at_checked(4)?;
    let number_text = rest.strip_prefix('-')?;
    let digits = number_text.bytes().take_while(u8::is_ascii_digit).count();
    let number = number_text.get(..digits)?;
    (year.bytes().all(|b| b.is_ascii_digit()) && digits > 0).then(|| format!("CVE-{year}-{number}"))
}

/// `XSA-297`, `TALOS-2017-0488`: letters, a dash, then a number.
fn looks_like_id(word: &str) -> bool {
    let Some((prefix, rest)) = word.split_once('-') else {
        return false;
    };
    !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_uppercase())
        && rest.starts_with(|c: char| c.is_ascii_digit())
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
---
distroversion: v3.10
reponame: main
archs:
  - x86_64
urlprefix: http://dl-cdn.alpinelinux.org/alpine
apkurl: \"{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk\"
packages:
  - pkg:
      name: ansible
      secfixes:
        2.8.4-r0:
          - CVE-2019-10206
          - CVE-2019-10217
        2.8.2-r0:
          - CVE-2019-10156
        0:
          - CVE-2019-0001
  - pkg:
      name: numbers
      secfixes:
        2.10-r0:
          - CVE-2020-0002
        1.0:
        - CVE_2020-0001
        2.10:
          - 20201234
  - pkg:
      name: xen
      secfixes:
        4.12.1-r0:
          - CVE-2018-12126  XSA-297
          - CVE-????-?????  XSA-295
          - CVE-2018-14461 (LDP - partially fixed)
          - CVE-2017-17434-1
          - CVE-2017-17434-2
          - CVE-2019-19451.patch
  - pkg:
      name: broken
      secfixes:
        4.8.0.-r1:
          - CVE-2020-1111
        6.6.2p1-r0:
          - CVE-2020-2222
        1.1-r0:
  - pkg:
      name: nofixes
";

    fn sample() -> ParsedAdvisories {
        parse("v3.10/main.yaml", SAMPLE).unwrap()
    }

    #[test]
    fn each_fixed_version_is_an_advisory() {
        let parsed = sample();
        let a = &parsed.items[0];
        assert_eq!(a.id, "ALPINE-v3.10-ansible-2.8.4-r0");
        assert_eq!(a.title, "ansible 2.8.4-r0: security fixes");
        assert_eq!(a.aliases, ["CVE-2019-10206", "CVE-2019-10217"]);
        assert_eq!(a.update_type, UpdateType::SecurityUpdate);
        assert_eq!(a.origin.location, "v3.10/main.yaml");
        let affected = &a.affected[0];
        assert_eq!(affected.ecosystem.name(), "Alpine:v3.10");
        assert_eq!(affected.package, "ansible");
        assert_eq!(affected.kind, PackageKind::Source);
        assert_eq!(
            affected.ranges,
            [vec![
                Event::Introduced("0".into()),
                Event::Fixed("2.8.4-r0".into())
            ]]
        );
        assert_eq!(parsed.items[1].id, "ALPINE-v3.10-ansible-2.8.2-r0");
    }

    #[test]
    fn version_zero_is_not_an_advisory() {
        let parsed = sample();
        assert!(parsed.items.iter().all(|a| !a.id.ends_with("-0")));
        assert!(parsed
            .items
            .iter()
            .all(|a| !a.aliases.iter().any(|c| c == "CVE-2019-0001")));
    }

    #[test]
    fn numeric_looking_keys_and_values_keep_their_text() {
        let parsed = sample();
        let versions: Vec<&str> = parsed
            .items
            .iter()
            .filter(|a| a.affected[0].package == "numbers")
            .map(|a| a.affected[0].ranges[0][1].version())
            .collect();
        assert_eq!(versions, ["2.10-r0", "1.0", "2.10"]);
        let one = parsed
            .items
            .iter()
            .find(|a| a.id == "ALPINE-v3.10-numbers-1.0")
            .unwrap();
        assert_eq!(one.aliases, ["CVE-2020-0001"]);
    }

    #[test]
    fn entries_with_several_ids_comments_and_typos_give_their_ids() {
        let parsed = sample();
        let xen = parsed
            .items
            .iter()
            .find(|a| a.id.contains("-xen-"))
            .unwrap();
        assert_eq!(
            xen.aliases,
            [
                "CVE-2018-12126",
                "XSA-297",
                "XSA-295",
                "CVE-2018-14461",
                "CVE-2017-17434",
                "CVE-2019-19451"
            ]
        );
    }

    #[test]
    fn invalid_versions_are_rejected_by_name() {
        let parsed = sample();
        let rejected: Vec<&str> = parsed.rejected.iter().map(|r| r.record.as_str()).collect();
        assert_eq!(
            rejected,
            [
                "ALPINE-v3.10-broken-4.8.0.-r1",
                "ALPINE-v3.10-broken-6.6.2p1-r0"
            ]
        );
        assert!(parsed.rejected[0].reason.contains("invalid apk version"));
        // A version with no ids is still a fix.
        assert!(parsed
            .items
            .iter()
            .any(|a| a.id == "ALPINE-v3.10-broken-1.1-r0" && a.aliases.is_empty()));
        assert!(!parsed.items.iter().any(|a| a.id.contains("nofixes")));
    }

    #[test]
    fn a_package_without_name_is_rejected() {
        let text = "distroversion: v3.11\npackages:\n  - pkg:\n      secfixes:\n        1.0-r0:\n          - CVE-2020-0001\n  - pkg:\n      name: ok\n      secfixes:\n        1.0-r0:\n          - CVE-2020-0001\n";
        let parsed = parse("x.yaml", text).unwrap();
        assert_eq!(parsed.items.len(), 1);
        assert_eq!(parsed.items[0].id, "ALPINE-v3.11-ok-1.0-r0");
        assert_eq!(parsed.rejected[0].record, "package #1");
    }

    #[test]
    fn not_a_secdb_is_a_format_error() {
        for text in [
            "",
            "just a string",
            "- a\n- list\n",
            "distroversion: v3.10\n",
            "packages: []\n",
            "distroversion: v3.10\npackages: [\n",
            "{\"distroversion\": \"v3.10\", \"packages\": 3}",
            "distroversion: v3.10\npackages:\n  - pkg:\n      name: x\n      secfixes: [1, 2]\n",
        ] {
            let error = parse("x.yaml", text).unwrap_err();
            assert!(
                matches!(error, FeedError::Format { .. }),
                "{text:?}: {error}"
            );
        }
    }

    #[test]
    fn a_release_without_v_is_read_with_it() {
        let parsed = parse("x.yaml", "distroversion: 3.10\npackages: []\n").unwrap();
        assert!(parsed.items.is_empty());
        let text = "distroversion: 3.10\npackages:\n  - pkg:\n      name: a\n      secfixes:\n        1-r0: [CVE-2020-0001]\n";
        let parsed = parse("x.yaml", text).unwrap();
        assert_eq!(parsed.items[0].id, "ALPINE-v3.10-a-1-r0");
        assert_eq!(parsed.items[0].affected[0].ecosystem.name(), "Alpine:v3.10");
    }

    #[test]
    fn the_json_edition_of_the_secdb_reads_the_same() {
        // secdb.alpinelinux.org serves the same data as JSON, which is YAML.
        let text = r#"{"distroversion": "v3.11", "reponame": "main", "packages": [
            {"pkg": {"name": "curl", "secfixes": {"7.66.0-r0": ["CVE-2019-5481", "CVE-2019-5482"]}}}
        ]}"#;
        let parsed = parse("v3.11/main.json", text).unwrap();
        assert_eq!(parsed.items[0].id, "ALPINE-v3.11-curl-7.66.0-r0");
        assert_eq!(parsed.items[0].aliases, ["CVE-2019-5481", "CVE-2019-5482"]);
    }

    #[test]
    fn ids_are_found_in_entries() {
        assert_eq!(
            ids_in("CVE-2019-1 CVE-2019-2"),
            ["CVE-2019-1", "CVE-2019-2"]
        );
        assert_eq!(
            ids_in("CVE-2019-1234 CVE-2019-23456"),
            ["CVE-2019-1234", "CVE-2019-23456"]
        );
        assert_eq!(ids_in("XSA-123"), ["XSA-123"]);
        assert_eq!(ids_in("TALOS-2017-0488"), ["TALOS-2017-0488"]);
        assert_eq!(ids_in("- (SMB)"), Vec::<String>::new());
        assert_eq!(
            ids_in("CVE-\u{e9}\u{e9}\u{e9}\u{e9}-1"),
            Vec::<String>::new()
        );
    }
}
