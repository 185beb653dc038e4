//! CISA's Known Exploited Vulnerabilities catalog
//! (`known_exploited_vulnerabilities.json`): the CVEs known to be exploited
//! in the wild, each with the date CISA added it and the deadline it set.
//!
//! A key design decision made in this module is that the catalog is read
//! entry by entry from an untyped JSON tree rather than through one derived
//! struct: a single entry with a missing CVE id or a malformed date is then a
//! rejected record, and the other fourteen hundred still enrich the catalog.

use jiff::civil::Date;
use jiff::Timestamp;
use patchwell_core::advisory::KevEntry;
use serde_json::{Map, Value};

use crate::{rejected, FeedError, Parsed};

/// The format's name in errors.
const FORMAT: &str = "CISA KEV";

/// A KEV catalog as published.
#[derive(Debug)]
pub struct KevCatalog {
    /// `catalogVersion` (`2025.08.25`); empty when the file gives none.
    pub version: String,
    /// `dateReleased`, when given.
    pub released: Option<Timestamp>,
    /// The entries, and the ones rejected.
    pub entries: Parsed<KevEntry>,
}

/// Parses a KEV catalog.
///
/// Not JSON, not an object, or no `vulnerabilities` array:
/// [`FeedError::Format`]; so is a `dateReleased` that is not a timestamp,
/// since it dates the whole file. An entry without a valid `cveID` or
/// `dateAdded`, or with an unreadable `dueDate`, is rejected under its CVE
/// id, or under its position (`vulnerabilities[7]`) when it has none.
pub fn parse(file: &str, bytes: &[u8]) -> Result<KevCatalog, FeedError> {
    let format_error = |reason: String| FeedError::Format {
        file: file.to_owned(),
        format: FORMAT,
        reason,
    };
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format_error(format!("not JSON: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(format_error("not a JSON object".to_owned()));
    };
    let Some(Value::Array(vulnerabilities)) = top.remove("vulnerabilities") else {
        return Err(format_error("no \"vulnerabilities\" array".to_owned()));
    };
    let version = match top.get("catalogVersion") {
        Some(Value::String(v)) => v.trim().to_owned(),
        _ => String::new(),
    };
    let released =
        match top.get("dateReleased") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().parse::<Timestamp>().map_err(|e| {
                format_error(format!("dateReleased {s:?} is not a timestamp: {e}"))
            })?),
            Some(other) => {
                return Err(format_error(format!(
                    "dateReleased is not a string: {other}"
                )))
            }
        };

    let mut entries = Parsed {
        items: Vec::new(),
        rejected: Vec::new(),
    };
    for (index, item) in vulnerabilities.into_iter().enumerate() {
        let position = format!("vulnerabilities[{index}]");
        let Value::Object(item) = item else {
            entries
                .rejected
                .push(rejected(file, position, "entry is not a JSON object"));
            continue;
        };
        let cve = text(&item, "cveID");
        let record = if cve.is_empty() {
            position
        } else {
            cve.clone()
        };
        match read_entry(&item, cve) {
            Ok(entry) => entries.items.push(entry),
            Err(reason) => entries.rejected.push(rejected(file, record, reason)),
        }
    }
    Ok(KevCatalog {
        version,
        released,
        entries,
    })
}

/// A string field, trimmed; empty when absent or not a string.
fn text(item: &Map<String, Value>, key: &str) -> String {
    match item.get(key) {
        Some(Value::String(s)) => s.trim().to_owned(),
        _ => String::new(),
    }
}

fn read_entry(item: &Map<String, Value>, cve: String) -> Result<KevEntry, String> {
    if cve.is_empty() {
        return Err("no cveID".to_owned());
    }
    if !is_cve_id(&cve) {
        return Err(format!(
            "cveID {cve:?} is not a CVE id such as CVE-2025-48384"
        ));
    }
    let date = |key: &str| -> Result<Option<Date>, String> {
        match item.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse::<Date>()
                .map(Some)
                .map_err(|e| format!("{key} {s:?} is not a date: {e}")),
            Some(other) => Err(format!("{key} is not a string: {other}")),
        }
    };
    let date_added = date("dateAdded")?.ok_or_else(|| "no dateAdded".to_owned())?;
    let due_date = date("dueDate")?;
    Ok(KevEntry {
        vendor_project: text(item, "vendorProject"),
        product: text(item, "product"),
        name: text(item, "vulnerabilityName"),
        date_added,
        due_date,
        ransomware: text(item, "knownRansomwareCampaignUse").eq_ignore_ascii_case("known"),
        cve,
    })
}

/// Whether `id` is a CVE id: `CVE-`, a four-digit year, `-`, and four or
/// more digits (the pattern of CISA's schema and of EPSS).
pub(crate) fn is_cve_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, number)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && number.len() >= 4
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const SAMPLE: &str = r#"{
    "title": "CISA Catalog of Known Exploited Vulnerabilities",
    "catalogVersion": "2025.08.25",
    "dateReleased": "2025-08-25T17:04:19.9796Z",
    "count": 6,
    "vulnerabilities": [
        {
            "cveID": "CVE-2025-48384",
            "vendorProject": "Git",
            "product": "Git",
            "vulnerabilityName": "Git Link Following Vulnerability",
            "dateAdded": "2025-08-25",
            "shortDescription": "Git contains a link following vulnerability.",
            "requiredAction": "Apply mitigations per vendor instructions.",
            "dueDate": "2025-09-15",
            "knownRansomwareCampaignUse": "Unknown",
            "notes": "https://nvd.nist.gov/vuln/detail/CVE-2025-48384",
            "cwes": ["CWE-59", "CWE-436"]
        },
        {
            "cveID": "CVE-2021-44228",
            "vendorProject": "Apache",
            "product": "Log4j2",
            "vulnerabilityName": "Apache Log4j2 Remote Code Execution Vulnerability",
            "dateAdded": "2021-12-10",
            "dueDate": "2021-12-24",
            "knownRansomwareCampaignUse": "Known",
            "cwes": []
        },
        {
            "vendorProject": "Nobody",
            "dateAdded": "2021-12-10"
        },
        {
            "cveID": "CVE-2020-0001",
            "dateAdded": "2020-13-01"
        },
        {
            "cveID": "CVE-2020-0002",
            "dateAdded": "2020-01-01",
            "dueDate": "soon"
        },
        "not an object",
        {
            "cveID": "CVE-2020-0003",
            "dateAdded": "2020-01-01"
        }
    ]
}"#;

    #[test]
    fn entries_are_read() {
        let catalog = parse("kev.json", SAMPLE.as_bytes()).unwrap();
        assert_eq!(catalog.version, "2025.08.25");
        assert_eq!(
            catalog.released,
            Some("2025-08-25T17:04:19.9796Z".parse().unwrap())
        );
        let git = &catalog.entries.items[0];
        assert_eq!(
            git,
            &KevEntry {
                cve: "CVE-2025-48384".into(),
                vendor_project: "Git".into(),
                product: "Git".into(),
                name: "Git Link Following Vulnerability".into(),
                date_added: date(2025, 8, 25),
                due_date: Some(date(2025, 9, 15)),
                ransomware: false,
            }
        );
        assert!(catalog.entries.items[1].ransomware);
        // Only the id and the date added are required.
        let bare = &catalog.entries.items[2];
        assert_eq!(bare.cve, "CVE-2020-0003");
        assert_eq!(bare.due_date, None);
        assert_eq!(bare.product, "");
    }

    #[test]
    fn bad_entries_are_rejected_by_id_or_position() {
        let catalog = parse("kev.json", SAMPLE.as_bytes()).unwrap();
        assert_eq!(catalog.entries.items.len(), 3);
        let rejected: Vec<(&str, &str)> = catalog
            .entries
            .rejected
            .iter()
            .map(|r| (r.record.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(rejected.len(), 4, "{rejected:?}");
        assert_eq!(rejected[0], ("vulnerabilities[2]", "no cveID"));
        assert_eq!(rejected[1].0, "CVE-2020-0001");
        assert!(
            rejected[1].1.starts_with("dateAdded \"2020-13-01\""),
            "{}",
            rejected[1].1
        );
        assert_eq!(rejected[2].0, "CVE-2020-0002");
        assert!(
            rejected[2].1.starts_with("dueDate \"soon\""),
            "{}",
            rejected[2].1
        );
        assert_eq!(rejected[3].0, "vulnerabilities[5]");
    }

    #[test]
    fn a_malformed_cve_id_is_rejected() {
        let text = r#"{"vulnerabilities": [{"cveID": "CVE-21-1", "dateAdded": "2021-01-01"}]}"#;
        let catalog = parse("kev.json", text.as_bytes()).unwrap();
        assert!(catalog.entries.items.is_empty());
        assert_eq!(catalog.entries.rejected[0].record, "CVE-21-1");
        assert_eq!(catalog.version, "");
        assert_eq!(catalog.released, None);
    }

    #[test]
    fn not_a_catalog_is_a_format_error() {
        for text in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"vulnerabilities": {}}"#,
            r#"{"vulnerabilities": [], "dateReleased": "yesterday"}"#,
            "\u{ff}\u{fe}",
        ] {
            let error = parse("kev.json", text.as_bytes()).unwrap_err();
            assert!(
                matches!(error, FeedError::Format { .. }),
                "{text:?}: {error}"
            );
        }
        let error = parse("kev.json", &[0xff, 0x00, 0x7b]).unwrap_err();
        assert!(matches!(error, FeedError::Format { .. }));
    }

    #[test]
    fn cve_ids_follow_the_schema_pattern() {
        assert!(is_cve_id("CVE-2025-48384"));
        assert!(is_cve_id("CVE-2021-1234567"));
        assert!(!is_cve_id("CVE-2021-123"));
        assert!(!is_cve_id("CVE-21-1234"));
        assert!(!is_cve_id("cve-2021-1234"));
        assert!(!is_cve_id("CVE-2021-1234 "));
        assert!(!is_cve_id("CVE-\u{e9}\u{e9}-1234"));
    }
}
