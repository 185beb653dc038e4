//! OSV (Open Source Vulnerability format, schema 1.x): one record a file, or
//! an array of records; read from a file, a directory of files, or a zip.
//!
//! Distribution ecosystems are read; language ecosystems (npm, PyPI, ...)
//! are not host packages and their entries are left out. Debian, Ubuntu and
//! Alpine records name source packages; rpm distributions name binary
//! packages. Ubuntu's records keep their CVEs under `upstream`
//! (`UBUNTU-CVE-2014-5029`); they become aliases, so KEV and EPSS find them.
//!
//! [`to_json`] writes an advisory back as OSV, with what OSV has no field for
//! (update type, vendor install commands, origin) under
//! `database_specific.patchwell`; [`parse`] reads that back. The server keeps
//! its catalog in this form.

use std::io::Read;
use std::path::Path;

use jiff::Timestamp;
use patchwell_core::advisory::{
    Advisory, Affected, Cvss, Ecosystem, Event, Origin, PackageKind, Severity, UpdateType,
    VendorPackage,
};
use patchwell_core::cvss::base_score_v3;
use serde_json::{json, Map, Value};

use crate::{rejected, FeedError, ParsedAdvisories};

/// Parses one OSV file: a record, or an array of records.
pub fn parse(file: &str, bytes: &[u8]) -> Result<ParsedAdvisories, FeedError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| FeedError::Format {
        file: file.to_owned(),
        format: "OSV",
        reason: e.to_string(),
    })?;
    let records = match value {
        Value::Array(records) => records,
        record @ Value::Object(_) => vec![record],
        _ => {
            return Err(FeedError::Format {
                file: file.to_owned(),
                format: "OSV",
                reason: "expected a JSON object or an array of objects".into(),
            })
        }
    };
    let mut parsed = ParsedAdvisories::default();
    for (at, record) in records.iter().enumerate() {
        let label = record
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{}", at + 1), str::to_owned);
        match record_of(record) {
            Ok(advisory) => parsed.items.push(advisory),
            Err(reason) => parsed.rejected.push(rejected(file, label, reason)),
        }
    }
    Ok(parsed)
}

/// Reads OSV records from a file, a directory (every `*.json` below it) or
/// a zip (every `*.json` inside). A file that is not JSON is a rejected
/// record of its own when it is one of many, and an error when it is the
/// only one.
pub fn read_path(path: &Path) -> Result<ParsedAdvisories, FeedError> {
    read_path_where(path, &|_| true)
}

/// [`read_path`], parsing only the files whose bytes pass `wanted`: a
/// scan of one host skips, unparsed, the records that do not name its
/// ecosystem. A directory's files are read on every core.
pub fn read_path_where(
    path: &Path,
    wanted: &(dyn Fn(&[u8]) -> bool + Sync),
) -> Result<ParsedAdvisories, FeedError> {
    let location = path.display().to_string();
    let read_error = |e: std::io::Error| FeedError::Read {
        location: location.clone(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if meta.is_dir() {
        let mut files = Vec::new();
        collect_json(path, &mut files).map_err(read_error)?;
        files.sort();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let chunk = files.len().div_ceil(threads).max(1);
        let parts: Vec<ParsedAdvisories> = std::thread::scope(|s| {
            let handles: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        let mut all = ParsedAdvisories::default();
                        for file in part {
                            let name = file.display().to_string();
                            match std::fs::read(file) {
                                Ok(bytes) if wanted(&bytes) => {
                                    merge(&mut all, &name, parse(&name, &bytes))
                                }
                                Ok(_) => {}
                                Err(e) => {
                                    all.rejected.push(rejected(&name, "(file)", e.to_string()))
                                }
                            }
                        }
                        all
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        let mut lost = ParsedAdvisories::default();
                        lost.rejected.push(rejected(
                            &location,
                            "(files)",
                            "a reader thread failed; some files were not read",
                        ));
                        lost
                    })
                })
                .collect()
        });
        let mut all = ParsedAdvisories::default();
        for part in parts {
            all.items.extend(part.items);
            all.rejected.extend(part.rejected);
        }
        return Ok(all);
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    if bytes.starts_with(b"PK\x03\x04") {
        return read_zip(&location, &bytes);
    }
    parse(&location, &bytes)
}

/// The largest OSV record a zip may unpack to (real ones are kilobytes).
const MAX_RECORD_BYTES: u64 = 16 << 20;

/// Reads every `*.json` record in a zip.
pub fn read_zip(location: &str, bytes: &[u8]) -> Result<ParsedAdvisories, FeedError> {
    let format_error = |reason: String| FeedError::Format {
        file: location.to_owned(),
        format: "OSV zip",
        reason,
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format_error(e.to_string()))?;
    let mut all = ParsedAdvisories::default();
    for at in 0..archive.len() {
        let mut entry = archive
            .by_index(at)
            .map_err(|e| format_error(e.to_string()))?;
        if !entry.is_file() || !entry.name().ends_with(".json") {
            continue;
        }
        let name = format!("{location}!{}", entry.name());
        // The size in the header is a claim: the record is read up to a
        // limit, never pre-sized from it.
        let mut content = Vec::new();
        (&mut entry)
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut content)
            .map_err(|e| format_error(format!("{name}: {e}")))?;
        if content.len() as u64 > MAX_RECORD_BYTES {
            all.rejected.push(rejected(
                &name,
                "(file)",
                format!("larger than {MAX_RECORD_BYTES} bytes unpacked"),
            ));
            continue;
        }
        merge(&mut all, &name, parse(&name, &content));
    }
    Ok(all)
}

fn merge(all: &mut ParsedAdvisories, name: &str, one: Result<ParsedAdvisories, FeedError>) {
    match one {
        Ok(parsed) => {
            all.items.extend(parsed.items);
            all.rejected.extend(parsed.rejected);
        }
        Err(error) => all
            .rejected
            .push(rejected(name, "(file)", error.to_string())),
    }
}

fn collect_json(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

fn text(record: &Value, field: &str) -> Result<Option<String>, String> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("field {field:?} is not a string")),
    }
}

fn time(record: &Value, field: &str) -> Result<Option<Timestamp>, String> {
    text(record, field)?
        .map(|t| {
            t.parse::<Timestamp>()
                .map_err(|e| format!("field {field:?}: {t:?} is not an RFC 3339 time: {e}"))
        })
        .transpose()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The CVE identifier inside a related id (`UBUNTU-CVE-2014-5029`).
fn cve_in(id: &str) -> Option<&str> {
    let at = id.find("CVE-")?;
    Some(&id[at..])
}

fn record_of(record: &Value) -> Result<Advisory, String> {
    if !record.is_object() {
        return Err("not a JSON object".into());
    }
    let id = text(record, "id")?
        .filter(|s| !s.trim().is_empty())
        .ok_or("no \"id\"")?;
    let extra = record
        .pointer("/database_specific/patchwell")
        .cloned()
        .unwrap_or(Value::Null);
    let update_type = match extra.get("update_type").and_then(Value::as_str) {
        Some(name) => {
            UpdateType::parse(name).ok_or_else(|| format!("unknown update type {name:?}"))?
        }
        None => UpdateType::SecurityUpdate,
    };
    let mut advisory = Advisory::new(id, update_type);
    advisory.aliases = strings(record.get("aliases"));
    for related in strings(record.get("upstream")) {
        if let Some(cve) = cve_in(&related) {
            if cve != advisory.id && !advisory.aliases.iter().any(|a| a == cve) {
                advisory.aliases.push(cve.to_owned());
            }
        }
    }
    let summary = text(record, "summary")?.unwrap_or_default();
    advisory.summary = text(record, "details")?.unwrap_or_default();
    advisory.title = if summary.is_empty() {
        advisory.id.clone()
    } else {
        summary
    };
    advisory.published = time(record, "published")?;
    advisory.modified = time(record, "modified")?;
    advisory.withdrawn = time(record, "withdrawn")?;
    for severity in record
        .get("severity")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = severity.get("type").and_then(Value::as_str).unwrap_or("");
        let score = severity.get("score").and_then(Value::as_str).unwrap_or("");
        if kind.starts_with("CVSS_V") {
            if advisory.cvss.is_none() || kind == "CVSS_V3" {
                advisory.cvss = Some(Cvss {
                    vector: score.to_owned(),
                    score: base_score_v3(score),
                });
            }
        } else if let Some(s) = Severity::parse(score) {
            advisory.severity = Some(s);
        }
    }
    if let Some(s) = record
        .pointer("/database_specific/severity")
        .and_then(Value::as_str)
        .and_then(Severity::parse)
    {
        advisory.severity.get_or_insert(s);
    }
    if let Some(s) = extra.get("severity").and_then(Value::as_str) {
        advisory.severity =
            Some(Severity::parse(s).ok_or_else(|| format!("unknown severity {s:?}"))?);
    }
    advisory.references = record
        .get("references")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("url").and_then(Value::as_str).map(str::to_owned))
        .collect();
    for affected in record
        .get("affected")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(entry) = affected_of(affected)? {
            advisory.affected.push(entry);
        }
    }
    if let Some(vendor) = extra.get("vendor_package") {
        let field = |name: &str| -> Result<String, String> {
            vendor
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("vendor_package has no {name:?}"))
        };
        advisory.vendor_package = Some(VendorPackage {
            vendor: field("vendor")?,
            product: field("product")?,
            download_url: field("download_url")?,
            download_sha256: field("download_sha256")?,
            install: field("install")?,
            uninstall: field("uninstall")?,
        });
    }
    if let Some(origin) = extra.get("origin") {
        let field = |name: &str| {
            origin
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        advisory.origin = Origin {
            feed: field("feed"),
            location: field("location"),
            fetched_at: origin
                .get("fetched_at")
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok()),
            sha256: field("sha256"),
        };
    }
    Ok(advisory)
}

fn affected_of(affected: &Value) -> Result<Option<Affected>, String> {
    let Some(package) = affected.get("package") else {
        return Ok(None);
    };
    let (Some(ecosystem), Some(name)) = (
        package.get("ecosystem").and_then(Value::as_str),
        package.get("name").and_then(Value::as_str),
    ) else {
        return Err("an affected package without ecosystem or name".into());
    };
    // Not a host package manager's ecosystem: not for Patchwell.
    let Ok(ecosystem) = Ecosystem::parse(ecosystem) else {
        return Ok(None);
    };
    let scheme = ecosystem.scheme();
    let kind = if ecosystem.is_vendor() || scheme == versions::Ecosystem::Rpm {
        PackageKind::Binary
    } else {
        PackageKind::Source
    };
    let check = |version: &str| -> Result<(), String> {
        versions::validate(scheme, version).map_err(|e| format!("{name} in {ecosystem}: {e}"))
    };
    let mut ranges = Vec::new();
    for range in affected
        .get("ranges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = range.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "ECOSYSTEM" && kind != "SEMVER" {
            continue;
        }
        let mut events = Vec::new();
        for event in range
            .get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some((what, version)) = event.as_object().and_then(|o| o.iter().next()) else {
                return Err(format!("{name}: an empty range event"));
            };
            let Some(version) = version.as_str() else {
                return Err(format!("{name}: event {what:?} is not a string"));
            };
            check(version)?;
            events.push(match what.as_str() {
                "introduced" => Event::Introduced(version.to_owned()),
                "fixed" => Event::Fixed(version.to_owned()),
                "last_affected" => Event::LastAffected(version.to_owned()),
                "limit" => Event::Limit(version.to_owned()),
                other => return Err(format!("{name}: unknown range event {other:?}")),
            });
        }
        if !events.is_empty() {
            ranges.push(events);
        }
    }
    let versions: Vec<String> = strings(affected.get("versions"))
        .into_iter()
        .filter(|v| versions::validate(scheme, v).is_ok())
        .collect();
    let binaries = affected
        .pointer("/ecosystem_specific/binaries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| {
            b.get("binary_name")
                .or_else(|| b.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    Ok(Some(Affected {
        ecosystem,
        package: name.to_owned(),
        kind,
        ranges,
        versions,
        binaries,
    }))
}

/// Writes an advisory as an OSV record that [`parse`] reads back whole.
pub fn to_json(advisory: &Advisory) -> Value {
    let mut record = Map::new();
    record.insert("schema_version".into(), json!("1.6.0"));
    record.insert("id".into(), json!(advisory.id));
    record.insert("aliases".into(), json!(advisory.aliases));
    record.insert("summary".into(), json!(advisory.title));
    if !advisory.summary.is_empty() {
        record.insert("details".into(), json!(advisory.summary));
    }
    for (field, value) in [
        ("published", advisory.published),
        ("modified", advisory.modified),
        ("withdrawn", advisory.withdrawn),
    ] {
        if let Some(t) = value {
            record.insert(field.into(), json!(t.to_string()));
        }
    }
    if let Some(cvss) = &advisory.cvss {
        let kind = if cvss.vector.starts_with("CVSS:4") {
            "CVSS_V4"
        } else if cvss.vector.starts_with("CVSS:3") {
            "CVSS_V3"
        } else {
            "CVSS_V2"
        };
        record.insert(
            "severity".into(),
            json!([{ "type": kind, "score": cvss.vector }]),
        );
    }
    let affected: Vec<Value> = advisory
        .affected
        .iter()
        .map(|a| {
            let ranges: Vec<Value> = a
                .ranges
                .iter()
                .map(|events| {
                    let events: Vec<Value> = events
                        .iter()
                        .map(|e| match e {
                            Event::Introduced(v) => json!({ "introduced": v }),
                            Event::Fixed(v) => json!({ "fixed": v }),
                            Event::LastAffected(v) => json!({ "last_affected": v }),
                            Event::Limit(v) => json!({ "limit": v }),
                        })
                        .collect();
                    json!({ "type": "ECOSYSTEM", "events": events })
                })
                .collect();
            let mut entry = json!({
                "package": { "ecosystem": a.ecosystem.name(), "name": a.package },
                "ranges": ranges,
            });
            if !a.versions.is_empty() {
                entry["versions"] = json!(a.versions);
            }
            if !a.binaries.is_empty() {
                let binaries: Vec<Value> = a
                    .binaries
                    .iter()
                    .map(|b| json!({ "binary_name": b }))
                    .collect();
                entry["ecosystem_specific"] = json!({ "binaries": binaries });
            }
            entry
        })
        .collect();
    record.insert("affected".into(), Value::Array(affected));
    let references: Vec<Value> = advisory
        .references
        .iter()
        .map(|url| json!({ "type": "WEB", "url": url }))
        .collect();
    record.insert("references".into(), Value::Array(references));
    let mut extra = json!({
        "update_type": advisory.update_type.as_str(),
        "origin": {
            "feed": advisory.origin.feed,
            "location": advisory.origin.location,
            "fetched_at": advisory.origin.fetched_at.map(|t| t.to_string()),
            "sha256": advisory.origin.sha256,
        },
    });
    if let Some(severity) = advisory.severity {
        extra["severity"] = json!(severity.as_str());
    }
    if let Some(v) = &advisory.vendor_package {
        extra["vendor_package"] = json!({
            "vendor": v.vendor,
            "product": v.product,
            "download_url": v.download_url,
            "download_sha256": v.download_sha256,
            "install": v.install,
            "uninstall": v.uninstall,
        });
    }
    record.insert("database_specific".into(), json!({ "patchwell": extra }));
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{
      "schema_version": "1.6.0",
      "id": "DSA-9999-1",
      "aliases": ["CVE-2024-0001"],
      "upstream": ["DEBIAN-CVE-2024-0002"],
      "summary": "openssl - security update",
      "published": "2024-03-01T00:00:00Z",
      "modified": "2024-03-02T10:00:00Z",
      "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
      "affected": [
        {"package": {"ecosystem": "Debian:12", "name": "openssl"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}]},
        {"package": {"ecosystem": "npm", "name": "left-pad"},
         "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.3.0"}]}]},
        {"package": {"ecosystem": "Rocky Linux:9", "name": "openssl-libs"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-25.el9_3"}]}]}
      ],
      "references": [{"type": "ADVISORY", "url": "https://example.org/DSA-9999-1"}]
    }"#;

    #[test]
    fn a_record_becomes_an_advisory_with_its_cvss_score_and_upstream_cves() {
        let parsed = parse("dsa.json", RECORD.as_bytes()).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let a = &parsed.items[0];
        assert_eq!(a.id, "DSA-9999-1");
        assert_eq!(a.aliases, ["CVE-2024-0001", "CVE-2024-0002"]);
        assert_eq!(a.title, "openssl - security update");
        assert_eq!(a.cvss.as_ref().unwrap().score, Some(9.8));
        // npm is not a host ecosystem: left out. Rocky names binary packages.
        assert_eq!(a.affected.len(), 2);
        assert_eq!(a.affected[0].kind, PackageKind::Source);
        assert_eq!(a.affected[1].kind, PackageKind::Binary);
        assert_eq!(a.affected[1].ecosystem.scheme(), versions::Ecosystem::Rpm);
    }

    #[test]
    fn a_bad_record_is_rejected_with_its_id_and_the_rest_imports() {
        let text = format!(
            "[{RECORD}, {{\"id\": \"BAD-1\", \"affected\": [{{\"package\": {{\"ecosystem\": \"Debian:12\", \"name\": \"x\"}}, \"ranges\": [{{\"type\": \"ECOSYSTEM\", \"events\": [{{\"fixed\": \"1:\"}}]}}]}}]}}, {{\"summary\": \"no id\"}}, 7]"
        );
        let parsed = parse("many.json", text.as_bytes()).unwrap();
        assert_eq!(parsed.items.len(), 1);
        let reasons: Vec<String> = parsed.rejected.iter().map(ToString::to_string).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0]
                .starts_with("many.json: record BAD-1: x in Debian:12: invalid deb version \"1:\""),
            "{}",
            reasons[0]
        );
        assert_eq!(reasons[1], "many.json: record #3: no \"id\"");
        assert_eq!(reasons[2], "many.json: record #4: not a JSON object");
    }

    #[test]
    fn a_directory_and_a_zip_read_every_record_and_report_a_bad_file() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("patchwell-osv-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.json"), RECORD).unwrap();
        std::fs::write(
            dir.join("sub/b.json"),
            RECORD.replace("DSA-9999-1", "DSA-9999-2"),
        )
        .unwrap();
        std::fs::write(dir.join("sub/c.json"), "{broken").unwrap();
        std::fs::write(dir.join("notes.txt"), "not a record").unwrap();
        let parsed = read_path(&dir).unwrap();
        let ids: Vec<&str> = parsed.items.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["DSA-9999-1", "DSA-9999-2"]);
        assert_eq!(parsed.rejected.len(), 1);
        assert!(parsed.rejected[0].file.ends_with("sub/c.json"));

        let zip_path = dir.join("all.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in [
            ("x/a.json", RECORD.to_owned()),
            ("x/b.json", RECORD.replace("DSA-9999-1", "DSA-9999-3")),
            ("README", "hi".to_owned()),
        ] {
            zip.start_file(name, options).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        let parsed = read_path(&zip_path).unwrap();
        let ids: Vec<&str> = parsed.items.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["DSA-9999-1", "DSA-9999-3"]);
        assert!(parsed.rejected.is_empty());
        // A damaged zip is an error naming it.
        std::fs::write(&zip_path, b"PK\x03\x04 damaged").unwrap();
        let error = read_path(&zip_path).unwrap_err().to_string();
        assert!(error.contains("all.zip"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_json_is_an_error_naming_it() {
        let error = parse("notes.json", b"hello").unwrap_err().to_string();
        assert!(
            error.starts_with("notes.json: not a valid OSV feed:"),
            "{error}"
        );
    }

    #[test]
    fn writing_and_reading_back_keeps_everything() {
        let mut a = parse("dsa.json", RECORD.as_bytes())
            .unwrap()
            .items
            .remove(0);
        a.severity = Some(Severity::High);
        a.update_type = UpdateType::Hotfix;
        a.origin = Origin {
            feed: "debian".into(),
            location: "/srv/osv".into(),
            fetched_at: Some("2026-11-22T10:00:00Z".parse().unwrap()),
            sha256: "ab".repeat(32),
        };
        a.vendor_package = Some(VendorPackage {
            vendor: "V".into(),
            product: "P".into(),
            download_url: "https://example.org/p.deb".into(),
            download_sha256: "cd".repeat(32),
            install: "apt-get install -y ./p.deb".into(),
            uninstall: "apt-get remove -y p".into(),
        });
        let text = serde_json::to_vec(&to_json(&a)).unwrap();
        let back = parse("x", &text).unwrap().items.remove(0);
        assert_eq!(back, a);
    }
}
