//! The Patchwell vendor feed: updates for third-party software that no
//! distribution ships (a browser, a VPN client, an agent), published as a
//! JSON file with a detached ed25519 signature.
//!
//! A key design decision made in this module is that the signature covers
//! the exact bytes of the feed file, not a re-serialisation of its JSON: the
//! publisher signs the file it serves, the fleet verifies the file it
//! fetched, and no canonical JSON form has to be agreed on. [`read_signed`]
//! verifies, then parses; [`verify`] and [`parse`] are its two halves.
//!
//! # The feed file
//!
//! One JSON object, schema 1:
//!
//! ```json
//! {
//!   "schema": 1,
//!   "publisher": "Example Corp IT",
//!   "generated": "2026-03-02T08:00:00Z",
//!   "entries": [
//!     {
//!       "id": "PWV-2026-0001",
//!       "title": "Example Browser 122.0.6261.94: security fixes",
//!       "vendor": "Example Inc.",
//!       "product": "Example Browser",
//!       "fixed_version": "122.0.6261.94-1",
//!       "severity": "high",
//!       "cves": ["CVE-2024-1938", "CVE-2024-1939"],
//!       "released": "2026-03-01",
//!       "update_type": "security-update",
//!       "summary": "Fixes a type confusion in the JavaScript engine.",
//!       "download": {
//!         "url": "https://downloads.example.com/browser/example-browser_122.0.6261.94-1_amd64.deb",
//!         "sha256": "9f2c6a4d1e0b7c3a8d5f4e2b1a0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
//!       },
//!       "install": "apt-get install -y ./example-browser_122.0.6261.94-1_amd64.deb",
//!       "uninstall": "apt-get remove -y example-browser",
//!       "detect": { "manager": "dpkg", "package": "example-browser" }
//!     },
//!     {
//!       "id": "PWV-2026-0002",
//!       "title": "Example VPN 5.2.1: connection stability",
//!       "vendor": "Example Inc.",
//!       "product": "Example VPN",
//!       "fixed_version": "5.2.1-1.el9",
//!       "released": "2026-03-01T14:30:00+01:00",
//!       "download": {
//!         "url": "https://downloads.example.com/vpn/example-vpn-5.2.1-1.el9.x86_64.rpm",
//!         "sha256": "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
//!       },
//!       "install": "dnf install -y ./example-vpn-5.2.1-1.el9.x86_64.rpm",
//!       "uninstall": "dnf remove -y example-vpn",
//!       "detect": { "manager": "rpm", "package": "example-vpn" }
//!     }
//!   ]
//! }
//! ```
//!
//! The top level: `schema` (the number 1; a feed of another schema is
//! refused whole, so a format change is a new number), `publisher` (who
//! publishes the feed, non-empty), `generated` (RFC 3339: a consumer that
//! keeps the last value can refuse an older feed replayed to it), `entries`.
//! Unknown fields are refused, at the top level and in entries, so that a
//! misspelt optional field is reported instead of silently ignored.
//!
//! Each entry becomes one [`Advisory`] with one [`Affected`] of ecosystem
//! `Vendor:<manager>`, kind [`PackageKind::Binary`], package
//! `detect.package`, and the range `introduced 0, fixed <fixed_version>`:
//!
//! | field | required | meaning |
//! |---|---|---|
//! | `id` | yes | unique in the feed, no white space (`PWV-2026-0001`) |
//! | `title` | yes | one line |
//! | `vendor`, `product` | yes | who makes what |
//! | `fixed_version` | yes | the first good version, valid for the manager's version rules |
//! | `severity` | no | `negligible`, `low`, `medium`, `high`, `critical` (`moderate`, `important` accepted) |
//! | `cves` | no | CVE ids, the advisory's aliases |
//! | `released` | yes | a date (`2026-03-01`, midnight UTC) or an RFC 3339 time |
//! | `update_type` | no | `security-update`, `critical-update`, `update`, `hotfix`, `update-rollup`, `service-pack`, `feature-pack`; default `security-update` when `cves` is non-empty, else `update` |
//! | `summary` | no | longer text |
//! | `download.url` | yes | `http://` or `https://`; the SHA-256 protects it either way |
//! | `download.sha256` | yes | 64 hex digits, checked before the installer runs |
//! | `install`, `uninstall` | yes | silent commands |
//! | `detect.manager` | yes | `dpkg`, `rpm` or `apk`: where the agent looks for the package |
//! | `detect.package` | yes | the package name in that manager's database |
//!
//! An entry that breaks a rule is [`Rejected`](patchwell_core::advisory::Rejected)
//! (named by its id, or `entries[<index>]` when it has none) and the others
//! are imported; every entry sharing a duplicated id is rejected, since
//! which one is meant cannot be known.
//!
//! # Keys and signatures
//!
//! Keys and signatures are text: an algorithm prefix, then the standard
//! base64 (with padding) of the raw bytes. Surrounding white space, such as
//! a file's final newline, is ignored. The prefix is required; it keeps a
//! secret key from being mistaken for a public one, which has the same length.
//!
//! | what | text |
//! |---|---|
//! | public key (32 bytes) | `ed25519:<base64>` |
//! | signature (64 bytes) | `ed25519:<base64>` |
//! | secret seed (32 bytes) | `ed25519-secret:<base64>` |
//!
//! The signature is published alongside the feed. Verification uses
//! `verify_strict`, which also refuses small-order public keys and
//! non-canonical signatures: the plain check accepts, for example, a forged
//! signature under the identity point as public key, for any feed.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use jiff::Timestamp;
use patchwell_core::advisory::{
    Advisory, Affected, Ecosystem, Event, Origin, PackageKind, Severity, UpdateType, VendorPackage,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::kev::is_cve_id;
use crate::{hex, rejected, FeedError, ParsedAdvisories};

/// The schema this module reads.
pub const SCHEMA: u64 = 1;

const PUBLIC_PREFIX: &str = "ed25519:";
const SIGNATURE_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";

/// A parsed vendor feed.
#[derive(Debug)]
pub struct VendorFeed {
    /// Who publishes it.
    pub publisher: String,
    /// When it was generated; a consumer refuses one older than the last it read.
    pub generated: Timestamp,
    /// Its advisories, and the entries it rejected.
    pub advisories: ParsedAdvisories,
}

/// Makes a new key pair from the operating system's random source: the
/// secret (`ed25519-secret:...`, for the publisher only) and the public key
/// (`ed25519:...`, for every consumer).
pub fn generate_key() -> Result<(String, String), FeedError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| FeedError::Read {
        location: "the operating system's random source".to_owned(),
        reason: e.to_string(),
    })?;
    let key = SigningKey::from_bytes(&seed);
    let secret = format!("{SECRET_PREFIX}{}", BASE64.encode(seed));
    let public = format!(
        "{PUBLIC_PREFIX}{}",
        BASE64.encode(key.verifying_key().to_bytes())
    );
    Ok((secret, public))
}

/// Signs the exact bytes of a feed file with a secret written by
/// [`generate_key`]. Returns the signature text (`ed25519:...`).
pub fn sign(feed: &[u8], secret: &str) -> Result<String, FeedError> {
    let seed: [u8; 32] =
        decode(secret, SECRET_PREFIX, "secret key").map_err(|reason| FeedError::Format {
            file: "the signing key".to_owned(),
            format: "Patchwell ed25519 secret key",
            reason,
        })?;
    let key = SigningKey::from_bytes(&seed);
    let signature = key.sign(feed);
    Ok(format!(
        "{SIGNATURE_PREFIX}{}",
        BASE64.encode(signature.to_bytes())
    ))
}

/// Verifies a detached signature over the exact bytes of a feed file.
///
/// `location` names the feed in errors. The reason says whether the public
/// key or signature text is malformed, or the signature does not match.
pub fn verify(
    location: &str,
    feed: &[u8],
    signature: &str,
    public_key: &str,
) -> Result<(), FeedError> {
    let refuse = |reason: String| FeedError::Verification {
        location: location.to_owned(),
        reason,
    };
    if public_key.trim_start().starts_with(SECRET_PREFIX) {
        return Err(refuse(
            "the public key given is a secret key: give its public key, and keep the secret with the publisher"
                .to_owned(),
        ));
    }
    let key: [u8; 32] = decode(public_key, PUBLIC_PREFIX, "public key").map_err(&refuse)?;
    let key = VerifyingKey::from_bytes(&key)
        .map_err(|_| refuse("the public key is not a point of the ed25519 curve".to_owned()))?;
    let signature: [u8; 64] = decode(signature, SIGNATURE_PREFIX, "signature").map_err(&refuse)?;
    let signature = Signature::from_bytes(&signature);
    key.verify_strict(feed, &signature)
        .map_err(|_| refuse("the signature does not match the feed and the public key".to_owned()))
}

/// Verifies a feed file's signature, then parses it.
pub fn read_signed(
    location: &str,
    feed: &[u8],
    signature: &str,
    public_key: &str,
) -> Result<VendorFeed, FeedError> {
    verify(location, feed, signature, public_key)?;
    parse_feed(location, feed)
}

/// Parses a feed file into advisories. It does not verify: see [`read_signed`].
///
/// Each advisory's [`Origin`] has `file` as its location and the SHA-256 of
/// `bytes`; its feed name and fetch time are the caller's to fill in.
pub fn parse(file: &str, bytes: &[u8]) -> Result<ParsedAdvisories, FeedError> {
    parse_feed(file, bytes).map(|feed| feed.advisories)
}

/// Parses a feed file, keeping its publisher and generation time.
pub fn parse_feed(file: &str, bytes: &[u8]) -> Result<VendorFeed, FeedError> {
    let malformed = |reason: String| FeedError::Format {
        file: file.to_owned(),
        format: "Patchwell vendor",
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
    // The schema is checked before anything else, so that a feed of a newer
    // schema says so instead of failing on its first unfamiliar field.
    match value.get("schema") {
        Some(schema) if schema.as_u64() == Some(SCHEMA) => {}
        Some(schema) => {
            return Err(malformed(format!(
                "schema {schema} is not supported: this version reads schema {SCHEMA}"
            )))
        }
        None => {
            return Err(malformed(
                "no \"schema\" field: not a vendor feed".to_owned(),
            ))
        }
    }
    let header: FeedFile = serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
    if header.publisher.trim().is_empty() {
        return Err(malformed("\"publisher\" is empty".to_owned()));
    }
    let generated: Timestamp = header.generated.parse().map_err(|e| {
        malformed(format!(
            "\"generated\" {:?} is not an RFC 3339 time: {e}",
            header.generated
        ))
    })?;

    let origin = Origin {
        feed: String::new(),
        location: file.to_owned(),
        fetched_at: None,
        sha256: hex(&Sha256::digest(bytes)),
    };
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for entry in &header.entries {
        if let Some(id) = entry.get("id").and_then(|id| id.as_str()) {
            *uses.entry(id).or_default() += 1;
        }
    }
    let mut advisories = ParsedAdvisories::default();
    for (index, entry) in header.entries.iter().enumerate() {
        let record = match entry.get("id").and_then(|id| id.as_str()) {
            Some(id) if !id.trim().is_empty() => id.to_owned(),
            _ => format!("entries[{index}]"),
        };
        let id_uses = entry
            .get("id")
            .and_then(|id| id.as_str())
            .and_then(|id| uses.get(id))
            .copied()
            .unwrap_or(0);
        let result = if id_uses > 1 {
            Err(format!("the id is used by {id_uses} entries"))
        } else {
            read_entry(entry, &origin)
        };
        match result {
            Ok(advisory) => advisories.items.push(advisory),
            Err(reason) => advisories.rejected.push(rejected(file, record, reason)),
        }
    }
    Ok(VendorFeed {
        publisher: header.publisher,
        generated,
        advisories,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedFile {
    #[allow(dead_code, reason = "checked before the rest is read")]
    schema: u64,
    publisher: String,
    generated: String,
    entries: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    title: String,
    vendor: String,
    product: String,
    fixed_version: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    cves: Vec<String>,
    released: String,
    #[serde(default)]
    update_type: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    download: Download,
    install: String,
    uninstall: String,
    detect: Detect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Download {
    url: String,
    sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Detect {
    manager: String,
    package: String,
}

/// Reads and checks one entry, or says what is wrong with it.
fn read_entry(value: &serde_json::Value, origin: &Origin) -> Result<Advisory, String> {
    let entry = Entry::deserialize(value).map_err(|e| e.to_string())?;
    if entry.id.is_empty()
        || entry
            .id
            .contains(|c: char| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "id {:?} is empty or has white space in it",
            entry.id
        ));
    }
    for (name, text) in [
        ("title", &entry.title),
        ("vendor", &entry.vendor),
        ("product", &entry.product),
        ("install", &entry.install),
        ("uninstall", &entry.uninstall),
        ("detect.package", &entry.detect.package),
    ] {
        if text.trim().is_empty() {
            return Err(format!("\"{name}\" is empty"));
        }
    }
    if entry.detect.package.contains(char::is_whitespace) {
        return Err(format!(
            "detect.package {:?} has white space in it",
            entry.detect.package
        ));
    }
    let scheme = match entry.detect.manager.as_str() {
        "dpkg" => versions::Ecosystem::Deb,
        "rpm" => versions::Ecosystem::Rpm,
        "apk" => versions::Ecosystem::Apk,
        other => {
            return Err(format!(
                "detect.manager {other:?} is not one of dpkg, rpm, apk"
            ))
        }
    };
    versions::validate(scheme, &entry.fixed_version).map_err(|e| format!("fixed_version: {e}"))?;
    let severity = match &entry.severity {
        None => None,
        Some(word) => Some(Severity::parse(word).ok_or_else(|| {
            format!("severity {word:?} is not one of negligible, low, medium, high, critical")
        })?),
    };
    if let Some(cve) = entry.cves.iter().find(|cve| !is_cve_id(cve)) {
        return Err(format!("{cve:?} in cves is not a CVE id (CVE-YYYY-NNNN)"));
    }
    let update_type = match &entry.update_type {
        Some(name) => UpdateType::parse(name).ok_or_else(|| {
            let names: Vec<&str> = UpdateType::ALL.iter().map(|t| t.as_str()).collect();
            format!("update_type {name:?} is not one of {}", names.join(", "))
        })?,
        None if entry.cves.is_empty() => UpdateType::Update,
        None => UpdateType::SecurityUpdate,
    };
    let published = read_time(&entry.released).ok_or_else(|| {
        format!(
            "released {:?} is not a date (YYYY-MM-DD) or an RFC 3339 time",
            entry.released
        )
    })?;
    check_url(&entry.download.url)?;
    let sha256 = &entry.download.sha256;
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("download.sha256 {sha256:?} is not 64 hex digits"));
    }

    let mut advisory = Advisory::new(entry.id, update_type);
    advisory.aliases = entry.cves;
    advisory.title = entry.title;
    advisory.summary = entry.summary.unwrap_or_default();
    advisory.severity = severity;
    advisory.published = Some(published);
    advisory.affected = vec![Affected {
        ecosystem: Ecosystem::vendor(scheme),
        package: entry.detect.package,
        kind: PackageKind::Binary,
        ranges: vec![vec![
            Event::Introduced("0".to_owned()),
            Event::Fixed(entry.fixed_version),
        ]],
        versions: Vec::new(),
        binaries: Vec::new(),
    }];
    advisory.vendor_package = Some(VendorPackage {
        vendor: entry.vendor,
        product: entry.product,
        download_url: entry.download.url,
        download_sha256: entry.download.sha256.to_ascii_lowercase(),
        install: entry.install,
        uninstall: entry.uninstall,
    });
    advisory.origin = origin.clone();
    Ok(advisory)
}

/// A date (midnight UTC) or an RFC 3339 time.
fn read_time(text: &str) -> Option<Timestamp> {
    if let Ok(time) = text.parse::<Timestamp>() {
        return Some(time);
    }
    let date: jiff::civil::Date = text.parse().ok()?;
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// An `http://` or `https://` URL with a host and no white space.
fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = ["https://", "http://"]
        .into_iter()
        .find_map(|scheme| lower.strip_prefix(scheme))
        .ok_or_else(|| format!("download.url {url:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err(format!("download.url {url:?} has no host"));
    }
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("download.url {url:?} has white space in it"));
    }
    Ok(())
}

/// Decodes `<prefix><base64 of N bytes>`, saying what is wrong otherwise.
fn decode<const N: usize>(text: &str, prefix: &str, what: &str) -> Result<[u8; N], String> {
    let text = text.trim();
    // The text is never quoted back: it may be a secret.
    let Some(encoded) = text.strip_prefix(prefix) else {
        return Err(format!("the {what} does not start with {prefix:?}"));
    };
    let bytes = BASE64
        .decode(encoded)
        .map_err(|e| format!("the {what} is not base64 after {prefix:?}: {e}"))?;
    let length = bytes.len();
    bytes
        .try_into()
        .map_err(|_| format!("the {what} is {length} bytes, an ed25519 {what} is {N}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the module documentation, so that it stays true.
    fn documented_example() -> String {
        let source = include_str!("vendor.rs");
        let start = source
            .find("//! ```json\n")
            .expect("the docs have a JSON example")
            + 12;
        let end = start + source[start..].find("//! ```\n").expect("the example ends");
        source[start..end]
            .lines()
            .map(|line| {
                line.strip_prefix("//!")
                    .unwrap_or(line)
                    .strip_prefix(' ')
                    .unwrap_or("")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A feed with one good entry and these entries.
    fn feed_with(entries: &[serde_json::Value]) -> Vec<u8> {
        let mut all = vec![good_entry("PWV-GOOD")];
        all.extend_from_slice(entries);
        serde_json::to_vec(&serde_json::json!({
            "schema": 1,
            "publisher": "Example Corp IT",
            "generated": "2026-03-02T08:00:00Z",
            "entries": all,
        }))
        .unwrap()
    }

    fn good_entry(id: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id,
            "title": "Example Agent 2.0.1",
            "vendor": "Example Inc.",
            "product": "Example Agent",
            "fixed_version": "2.0.1-r0",
            "severity": "medium",
            "cves": ["CVE-2026-12345"],
            "released": "2026-02-28",
            "download": {
                "url": "https://downloads.example.com/agent-2.0.1-r0.apk",
                "sha256": "AB".repeat(32),
            },
            "install": "apk add --allow-untrusted ./agent-2.0.1-r0.apk",
            "uninstall": "apk del example-agent",
            "detect": {"manager": "apk", "package": "example-agent"},
        })
    }

    /// `good_entry` with one field set (or removed, for null).
    fn entry_with(id: &str, path: &[&str], value: serde_json::Value) -> serde_json::Value {
        let mut entry = good_entry(id);
        let (last, parents) = path.split_last().unwrap();
        let mut target = &mut entry;
        for parent in parents {
            target = target.get_mut(*parent).unwrap();
        }
        let object = target.as_object_mut().unwrap();
        if value.is_null() {
            object.remove(*last);
        } else {
            object.insert((*last).to_owned(), value);
        }
        entry
    }

    #[test]
    fn documented_example_parses_into_advisories() {
        let example = documented_example();
        let feed = parse_feed("vendor.json", example.as_bytes()).unwrap();
        assert_eq!(feed.publisher, "Example Corp IT");
        assert_eq!(
            feed.generated,
            "2026-03-02T08:00:00Z".parse::<Timestamp>().unwrap()
        );
        let parsed = feed.advisories;
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(parsed.items.len(), 2);

        let browser = &parsed.items[0];
        assert_eq!(browser.id, "PWV-2026-0001");
        assert_eq!(browser.aliases, ["CVE-2024-1938", "CVE-2024-1939"]);
        assert_eq!(
            browser.title,
            "Example Browser 122.0.6261.94: security fixes"
        );
        assert_eq!(
            browser.summary,
            "Fixes a type confusion in the JavaScript engine."
        );
        assert_eq!(browser.severity, Some(Severity::High));
        assert_eq!(browser.update_type, UpdateType::SecurityUpdate);
        assert_eq!(
            browser.published,
            Some("2026-03-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(
            browser.affected,
            [Affected {
                ecosystem: Ecosystem::vendor(versions::Ecosystem::Deb),
                package: "example-browser".into(),
                kind: PackageKind::Binary,
                ranges: vec![vec![
                    Event::Introduced("0".into()),
                    Event::Fixed("122.0.6261.94-1".into())
                ]],
                versions: vec![],
                binaries: vec![],
            }]
        );
        assert_eq!(browser.affected[0].ecosystem.name(), "Vendor:dpkg");
        let package = browser.vendor_package.as_ref().unwrap();
        assert_eq!(package.vendor, "Example Inc.");
        assert_eq!(package.product, "Example Browser");
        assert!(package.download_url.ends_with("_amd64.deb"));
        assert_eq!(package.download_sha256.len(), 64);
        assert_eq!(package.uninstall, "apt-get remove -y example-browser");
        assert_eq!(browser.origin.location, "vendor.json");
        assert_eq!(
            browser.origin.sha256,
            hex(&Sha256::digest(example.as_bytes()))
        );

        // No CVEs and no update_type: a plain update; the time keeps its offset.
        let vpn = &parsed.items[1];
        assert_eq!(vpn.update_type, UpdateType::Update);
        assert_eq!(vpn.severity, None);
        assert!(vpn.aliases.is_empty());
        assert_eq!(vpn.published, Some("2026-03-01T13:30:00Z".parse().unwrap()));
        assert_eq!(vpn.affected[0].ecosystem.name(), "Vendor:rpm");
    }

    #[test]
    fn signature_round_trip() {
        let (secret, public) = generate_key().unwrap();
        assert!(secret.starts_with("ed25519-secret:"), "{secret}");
        assert!(public.starts_with("ed25519:"), "{public}");
        assert_ne!(generate_key().unwrap().0, secret, "each key is new");

        let feed = documented_example().into_bytes();
        let signature = sign(&feed, &secret).unwrap();
        assert!(signature.starts_with("ed25519:"));
        verify("vendor.json", &feed, &signature, &public).unwrap();
        // Files end with a newline; it does not matter.
        verify(
            "vendor.json",
            &feed,
            &format!("{signature}\n"),
            &format!("{public}\n"),
        )
        .unwrap();
        let read = read_signed("vendor.json", &feed, &signature, &public).unwrap();
        assert_eq!(read.advisories.items.len(), 2);
    }

    fn verification_reason(result: Result<(), FeedError>) -> String {
        match result {
            Err(FeedError::Verification { location, reason }) => {
                assert_eq!(location, "vendor.json");
                reason
            }
            other => panic!("expected a verification error, got {other:?}"),
        }
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let (secret, public) = generate_key().unwrap();
        let feed = documented_example().into_bytes();
        let signature = sign(&feed, &secret).unwrap();

        for index in [0, feed.len() / 2, feed.len() - 1] {
            let mut changed = feed.clone();
            changed[index] ^= 0x01;
            let reason = verification_reason(verify("vendor.json", &changed, &signature, &public));
            assert!(reason.contains("does not match"), "{reason}");
        }
        let mut appended = feed.clone();
        appended.push(b'\n');
        verification_reason(verify("vendor.json", &appended, &signature, &public));

        let bytes: [u8; 64] = decode(&signature, SIGNATURE_PREFIX, "signature").unwrap();
        for index in [0, 31, 32, 63] {
            let mut changed = bytes;
            changed[index] ^= 0x01;
            let changed = format!("ed25519:{}", BASE64.encode(changed));
            let reason = verification_reason(verify("vendor.json", &feed, &changed, &public));
            assert!(reason.contains("does not match"), "{reason}");
        }
        // read_signed parses nothing of a feed that does not verify.
        let mut changed = feed.clone();
        changed[10] ^= 0x01;
        assert!(matches!(
            read_signed("vendor.json", &changed, &signature, &public),
            Err(FeedError::Verification { .. })
        ));
    }

    #[test]
    fn wrong_key_is_refused() {
        let (secret, _) = generate_key().unwrap();
        let (_, other_public) = generate_key().unwrap();
        let feed = documented_example().into_bytes();
        let signature = sign(&feed, &secret).unwrap();
        let reason = verification_reason(verify("vendor.json", &feed, &signature, &other_public));
        assert!(reason.contains("does not match"), "{reason}");
    }

    #[test]
    fn malformed_key_and_signature_texts_say_what_is_wrong() {
        let (secret, public) = generate_key().unwrap();
        let feed = b"{}";
        let signature = sign(feed, &secret).unwrap();
        let bare_public = public.trim_start_matches("ed25519:");
        for (public_key, signature, expected) in [
            (
                bare_public,
                signature.as_str(),
                "public key does not start with \"ed25519:\"",
            ),
            (
                "ed25519:not base64!",
                signature.as_str(),
                "public key is not base64",
            ),
            (
                "ed25519:AAAA",
                signature.as_str(),
                "public key is 3 bytes, an ed25519 public key is 32",
            ),
            (secret.as_str(), signature.as_str(), "is a secret key"),
            (
                public.as_str(),
                "",
                "signature does not start with \"ed25519:\"",
            ),
            (public.as_str(), "ed25519:%%%%", "signature is not base64"),
            (
                public.as_str(),
                &public,
                "signature is 32 bytes, an ed25519 signature is 64",
            ),
        ] {
            let reason = verification_reason(verify("vendor.json", feed, signature, public_key));
            assert!(reason.contains(expected), "{expected:?} not in {reason:?}");
        }
        assert!(matches!(sign(feed, &public), Err(FeedError::Format { .. })));
        assert!(matches!(
            sign(feed, "ed25519-secret:AAAA"),
            Err(FeedError::Format { .. })
        ));
    }

    #[test]
    fn verification_is_strict() {
        // The identity point as public key, and the signature (R = identity,
        // s = 0), satisfy the plain ed25519 equation for every message.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = [0u8; 64];
        forged[0] = 1;
        let feed = b"{\"schema\": 1, \"entries\": \"anything at all\"}";
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        assert!(weak
            .verify_strict(feed, &Signature::from_bytes(&forged))
            .is_err());
        assert!(
            ed25519_dalek::Verifier::verify(&weak, feed, &Signature::from_bytes(&forged)).is_ok(),
            "the lenient check accepts the forgery: this is why verify_strict is used"
        );
        let public = format!("ed25519:{}", BASE64.encode(identity));
        let forged = format!("ed25519:{}", BASE64.encode(forged));
        let reason = verification_reason(verify("vendor.json", feed, &forged, &public));
        assert!(reason.contains("does not match"), "{reason}");

        // A signature whose s is not reduced (s + L) is the same signature
        // written differently; it is refused.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let (secret, public) = generate_key().unwrap();
        let signature = sign(feed, &secret).unwrap();
        let mut bytes: [u8; 64] = decode(&signature, SIGNATURE_PREFIX, "signature").unwrap();
        let mut carry = 0u16;
        for (s, l) in bytes[32..].iter_mut().zip(L) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = sum as u8;
            carry = sum >> 8;
        }
        let malleated = format!("ed25519:{}", BASE64.encode(bytes));
        verification_reason(verify("vendor.json", feed, &malleated, &public));
    }

    #[test]
    fn malformed_entries_are_rejected_and_the_rest_imported() {
        let cases: Vec<(serde_json::Value, &str, &str)> = vec![
            (
                entry_with("PWV-A", &["fixed_version"], "1.0 beta".into()),
                "PWV-A",
                "fixed_version: invalid apk version",
            ),
            (
                entry_with("PWV-B", &["download", "sha256"], "abc".into()),
                "PWV-B",
                "not 64 hex digits",
            ),
            (
                entry_with("PWV-C", &["download", "sha256"], "g".repeat(64).into()),
                "PWV-C",
                "not 64 hex digits",
            ),
            (
                entry_with(
                    "PWV-D",
                    &["download", "url"],
                    "ftp://example.com/a.apk".into(),
                ),
                "PWV-D",
                "not an http:// or https:// URL",
            ),
            (
                entry_with("PWV-E", &["download", "url"], "https:///a.apk".into()),
                "PWV-E",
                "has no host",
            ),
            (
                entry_with("PWV-F", &["severity"], "severe".into()),
                "PWV-F",
                "severity \"severe\" is not one of",
            ),
            (
                entry_with("PWV-G", &["update_type"], "patch".into()),
                "PWV-G",
                "update_type \"patch\" is not one of",
            ),
            (
                entry_with("PWV-H", &["detect", "manager"], "pacman".into()),
                "PWV-H",
                "detect.manager \"pacman\"",
            ),
            (
                entry_with("PWV-I", &["released"], "March 1st".into()),
                "PWV-I",
                "released \"March 1st\"",
            ),
            (
                entry_with("PWV-J", &["cves"], serde_json::json!(["CVE-2026-1"])),
                "PWV-J",
                "is not a CVE id",
            ),
            (
                entry_with("PWV-K", &["title"], serde_json::Value::Null),
                "PWV-K",
                "missing field `title`",
            ),
            (
                entry_with("PWV-L", &["fixed_verison"], "2.0".into()),
                "PWV-L",
                "unknown field `fixed_verison`",
            ),
            (
                entry_with("PWV-M", &["install"], " ".into()),
                "PWV-M",
                "\"install\" is empty",
            ),
            (
                entry_with("", &["title"], "x".into()),
                "entries[14]",
                "id \"\" is empty",
            ),
            (
                entry_with("PWV-O", &["id"], 7.into()),
                "entries[15]",
                "invalid type",
            ),
            (
                serde_json::json!("not an object"),
                "entries[16]",
                "invalid type",
            ),
            (
                good_entry("PWV-DUP"),
                "PWV-DUP",
                "the id is used by 2 entries",
            ),
            (
                good_entry("PWV-DUP"),
                "PWV-DUP",
                "the id is used by 2 entries",
            ),
        ];
        let entries: Vec<_> = cases.iter().map(|(entry, _, _)| entry.clone()).collect();
        let mut entries = entries;
        entries.push(good_entry("PWV-GOOD-2"));
        let feed = feed_with(&entries);
        let parsed = parse("vendor.json", &feed).unwrap();

        let ids: Vec<&str> = parsed.items.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["PWV-GOOD", "PWV-GOOD-2"]);
        assert_eq!(parsed.rejected.len(), cases.len(), "{:#?}", parsed.rejected);
        for (rejected, (_, record, reason)) in parsed.rejected.iter().zip(&cases) {
            assert_eq!(rejected.file, "vendor.json");
            assert_eq!(rejected.record, *record, "{rejected}");
            assert!(
                rejected.reason.contains(reason),
                "{reason:?} not in {rejected}"
            );
        }
        let good = &parsed.items[0];
        assert_eq!(good.affected[0].ecosystem.name(), "Vendor:apk");
        assert_eq!(good.update_type, UpdateType::SecurityUpdate);
        assert_eq!(
            good.vendor_package.as_ref().unwrap().download_sha256,
            "ab".repeat(32),
            "the sum is kept in lower case"
        );
    }

    #[test]
    fn a_feed_that_is_not_one_is_an_error() {
        let good = String::from_utf8(feed_with(&[])).unwrap();
        for (text, expected) in [
            ("not json".to_owned(), "not JSON"),
            ("[]".to_owned(), "no \"schema\" field"),
            (
                good.replace("\"schema\":1", "\"schema\":2"),
                "schema 2 is not supported",
            ),
            (
                good.replace("\"schema\":1", "\"schema\":\"1\""),
                "schema \"1\" is not supported",
            ),
            (
                good.replace("2026-03-02T08:00:00Z", "yesterday"),
                "\"generated\" \"yesterday\"",
            ),
            (
                good.replace("Example Corp IT", " "),
                "\"publisher\" is empty",
            ),
            (
                good.replace("\"publisher\"", "\"publsher\""),
                "unknown field `publsher`",
            ),
            (
                serde_json::json!({
                    "schema": 1, "publisher": "p", "generated": "2026-03-02T08:00:00Z", "entries": {}
                })
                .to_string(),
                "invalid type",
            ),
        ] {
            assert_ne!(text, good, "the replacement for {expected:?} applies");
            match parse("vendor.json", text.as_bytes()) {
                Err(FeedError::Format { file, reason, .. }) => {
                    assert_eq!(file, "vendor.json");
                    assert!(reason.contains(expected), "{expected:?} not in {reason:?}");
                }
                other => panic!("{expected}: {other:?}"),
            }
        }
    }
}
