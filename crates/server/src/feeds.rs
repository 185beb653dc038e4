//! Advisory feeds on the server: configured sources, fetched, verified,
//! parsed, stored, and merged into the catalog that applicability uses.
//!
//! A key design decision made here is that the store keeps each feed's last
//! *verified documents*, byte for byte, rather than what was parsed from
//! them. An import fetches, verifies (pinned SHA-256, ed25519 or OpenPGP)
//! and parses the whole feed before anything is stored; any failure leaves
//! the documents in force untouched and is recorded on the feed. At start
//! the server parses what the store holds, so the catalog is always what
//! verified documents say.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use feeds::FeedError;
use jiff::Timestamp;
use patchwell_core::advisory::{
    Advisory, Affected, Ecosystem, Epss, Event, KevEntry, Origin, PackageKind, Rejected, UpdateType,
};
use patchwell_core::applicability::Index;
use patchwell_core::lifecycle::Lifecycle;
use sha2::{Digest, Sha256};
use store::{CatalogStore, FeedDocument, FeedRecord, Store};

use crate::fleet::FleetHandle;

/// The formats a feed can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// OSV records: a file, a directory or a zip.
    Osv,
    /// The Debian security tracker's DSA or DLA list.
    DebianTracker,
    /// The Debian security tracker's JSON: per CVE and release, status,
    /// fixed version and urgency.
    DebianTrackerJson,
    /// Alpine secdb YAML.
    AlpineSecdb,
    /// CISA's Known Exploited Vulnerabilities JSON.
    Kev,
    /// FIRST's EPSS CSV.
    Epss,
    /// endoflife.date product files.
    Endoflife,
    /// A Patchwell vendor feed, signed with ed25519.
    Vendor,
    /// An apt repository's signed `InRelease` with its Packages index.
    Apt,
}

impl FeedKind {
    /// Every kind.
    pub const ALL: [FeedKind; 9] = [
        FeedKind::Osv,
        FeedKind::DebianTracker,
        FeedKind::DebianTrackerJson,
        FeedKind::AlpineSecdb,
        FeedKind::Kev,
        FeedKind::Epss,
        FeedKind::Endoflife,
        FeedKind::Vendor,
        FeedKind::Apt,
    ];

    /// The name used in the API and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Osv => "osv",
            FeedKind::DebianTracker => "debian-tracker",
            FeedKind::DebianTrackerJson => "debian-tracker-json",
            FeedKind::AlpineSecdb => "alpine-secdb",
            FeedKind::Kev => "kev",
            FeedKind::Epss => "epss",
            FeedKind::Endoflife => "endoflife",
            FeedKind::Vendor => "vendor",
            FeedKind::Apt => "apt",
        }
    }

    /// Reads a name.
    pub fn parse(name: &str) -> Result<FeedKind, String> {
        FeedKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = FeedKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown feed kind {name:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// How a feed is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The documents' digest (see [`digest`]) must be this, in hex.
    Sha256(String),
    /// A vendor feed's detached signature (`LOCATION.sig`) must verify with
    /// this ed25519 public key.
    Ed25519(String),
    /// An `InRelease` must be signed by a key in this keyring file.
    OpenPgp(PathBuf),
}

impl Verification {
    /// Reads `sha256:HEX`, `ed25519:KEY` or `openpgp:KEYRING-FILE`.
    pub fn parse(text: &str) -> Result<Verification, String> {
        let text = text.trim();
        if let Some(hex) = text.strip_prefix("sha256:") {
            let hex = hex.to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("{text:?}: a SHA-256 pin is 64 hexadecimal digits"));
            }
            return Ok(Verification::Sha256(hex));
        }
        if text.starts_with("ed25519:") {
            return Ok(Verification::Ed25519(text.to_owned()));
        }
        if let Some(path) = text.strip_prefix("openpgp:") {
            if path.is_empty() {
                return Err("openpgp: needs the path of a keyring file".into());
            }
            return Ok(Verification::OpenPgp(PathBuf::from(path)));
        }
        Err(format!(
            "{text:?}: expected sha256:HEX (a pinned digest), ed25519:KEY (a vendor feed's public key) \
             or openpgp:KEYRING-FILE (for apt InRelease)"
        ))
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        match self {
            Verification::Sha256(hex) => format!("sha256:{hex}"),
            Verification::Ed25519(key) => key.clone(),
            Verification::OpenPgp(path) => format!("openpgp:{}", path.display()),
        }
    }
}

/// Checks that a kind can be verified the way given.
pub fn check_config(kind: FeedKind, verification: &Verification) -> Result<(), String> {
    match (kind, verification) {
        (FeedKind::Vendor, Verification::Sha256(_) | Verification::Ed25519(_)) => Ok(()),
        (_, Verification::Ed25519(_)) => {
            Err("ed25519 signatures are for Patchwell vendor feeds (kind vendor)".into())
        }
        (FeedKind::Apt, Verification::OpenPgp(_)) => Ok(()),
        (FeedKind::Apt, _) => {
            Err("an apt feed is verified by OpenPGP: openpgp:KEYRING-FILE".into())
        }
        (_, Verification::OpenPgp(_)) => {
            Err("OpenPGP verification is for apt InRelease files (kind apt)".into())
        }
        (_, Verification::Sha256(_)) => Ok(()),
    }
}

/// The digest of a set of documents: the SHA-256 of the single document,
/// or of a manifest (`sha256  name` lines, sorted by name) when there are
/// several. `patchwell feeds digest PATH` prints it, to pin.
pub fn digest(documents: &[FeedDocument]) -> String {
    let hex = |bytes: &[u8]| -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    match documents {
        [one] => hex(&one.content),
        many => {
            let mut lines: Vec<String> = many
                .iter()
                .map(|d| format!("{}  {}\n", hex(&d.content), d.name))
                .collect();
            lines.sort();
            hex(lines.concat().as_bytes())
        }
    }
}

fn read_error(location: &str, reason: impl std::fmt::Display) -> FeedError {
    FeedError::Read {
        location: location.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads a feed's documents from a file, a directory or an http(s) URL.
pub async fn fetch(kind: FeedKind, location: &str) -> Result<Vec<FeedDocument>, FeedError> {
    let mut documents = Vec::new();
    let is_url = location.starts_with("https://") || location.starts_with("http://");
    let main_name = location.rsplit('/').next().unwrap_or(location).to_owned();
    if is_url {
        if kind == FeedKind::Apt {
            return Err(read_error(
                location,
                "an apt feed reads a local InRelease file from apt's lists (/var/lib/apt/lists/..._InRelease)",
            ));
        }
        documents.push(FeedDocument {
            name: main_name.clone(),
            content: get(location).await?,
        });
        if kind == FeedKind::Vendor {
            documents.push(FeedDocument {
                name: format!("{main_name}.sig"),
                content: get(&format!("{location}.sig")).await?,
            });
        }
        return Ok(documents);
    }
    let location_owned = location.to_owned();
    tokio::task::spawn_blocking(move || read_local(kind, Path::new(&location_owned)))
        .await
        .map_err(|e| read_error(location, e))?
}

async fn get(url: &str) -> Result<Vec<u8>, FeedError> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| read_error(url, e))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| read_error(url, e))?;
    if !response.status().is_success() {
        return Err(read_error(url, format!("HTTP {}", response.status())));
    }
    Ok(response
        .bytes()
        .await
        .map_err(|e| read_error(url, e))?
        .to_vec())
}

fn read_local(kind: FeedKind, path: &Path) -> Result<Vec<FeedDocument>, FeedError> {
    let location = path.display().to_string();
    let read = |p: &Path| std::fs::read(p).map_err(|e| read_error(&p.display().to_string(), e));
    let meta = std::fs::metadata(path).map_err(|e| read_error(&location, e))?;
    let name_of = |p: &Path| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    if meta.is_dir() {
        let wanted = match kind {
            FeedKind::Osv => "json",
            FeedKind::Endoflife => "md",
            FeedKind::AlpineSecdb => "yaml",
            _ => {
                return Err(read_error(
                    &location,
                    format!("a {} feed is one file, not a directory", kind.as_str()),
                ))
            }
        };
        let mut files = Vec::new();
        walk(path, &mut files).map_err(|e| read_error(&location, e))?;
        files.retain(|p| p.extension().is_some_and(|e| e == wanted));
        files.sort();
        if files.is_empty() {
            return Err(read_error(
                &location,
                format!("no *.{wanted} file in the directory"),
            ));
        }
        return files
            .iter()
            .map(|f| {
                Ok(FeedDocument {
                    name: f.strip_prefix(path).unwrap_or(f).display().to_string(),
                    content: read(f)?,
                })
            })
            .collect();
    }
    let mut documents = vec![FeedDocument {
        name: name_of(path),
        content: read(path)?,
    }];
    match kind {
        FeedKind::Vendor => {
            let sig = PathBuf::from(format!("{location}.sig"));
            if sig.exists() {
                documents.push(FeedDocument {
                    name: name_of(&sig),
                    content: read(&sig)?,
                });
            }
        }
        FeedKind::Apt => {
            // apt names its lists after the release file: the Packages
            // index of `..._InRelease` is `..._main_binary-ARCH_Packages[.lz4]`.
            let prefix = location.strip_suffix("InRelease").ok_or_else(|| {
                read_error(
                    &location,
                    "an apt feed is the path of an apt lists *_InRelease file",
                )
            })?;
            let dir = path.parent().unwrap_or(Path::new("."));
            let base = Path::new(prefix)
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let mut indexes: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| read_error(&location, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = name_of(p);
                    n.starts_with(&base)
                        && n.contains("_binary-")
                        && (n.ends_with("_Packages") || n.ends_with("_Packages.lz4"))
                })
                .collect();
            indexes.sort();
            if indexes.is_empty() {
                return Err(read_error(
                    &location,
                    "no Packages index beside the InRelease file",
                ));
            }
            for p in indexes {
                documents.push(FeedDocument {
                    name: name_of(&p),
                    content: read(&p)?,
                });
            }
        }
        _ => {}
    }
    Ok(documents)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// What one feed contributes to the catalog.
#[derive(Debug, Default, Clone)]
pub struct FeedContent {
    /// Advisories.
    pub advisories: Vec<Advisory>,
    /// KEV entries.
    pub kev: Vec<KevEntry>,
    /// EPSS scores.
    pub epss: Vec<(String, Epss)>,
    /// Release lifecycles.
    pub lifecycles: Vec<Lifecycle>,
    /// Records skipped, with reasons.
    pub rejected: Vec<Rejected>,
}

impl FeedContent {
    /// How many records it holds.
    pub fn records(&self) -> usize {
        self.advisories.len() + self.kev.len() + self.epss.len() + self.lifecycles.len()
    }
}

/// Verifies documents as the feed's configuration says.
pub fn verify(
    kind: FeedKind,
    verification: &Verification,
    location: &str,
    documents: &[FeedDocument],
) -> Result<(), FeedError> {
    let refuse = |reason: String| FeedError::Verification {
        location: location.to_owned(),
        reason,
    };
    check_config(kind, verification).map_err(&refuse)?;
    match verification {
        Verification::Sha256(pin) => {
            let found = digest(documents);
            if &found != pin {
                return Err(refuse(format!("digest {found} is not the pinned {pin}")));
            }
            Ok(())
        }
        Verification::Ed25519(key) => {
            let (feed, sig) = match documents {
                [feed, sig] if sig.name.ends_with(".sig") => (feed, sig),
                _ => {
                    return Err(refuse(
                        "no detached signature (LOCATION.sig) beside the feed".into(),
                    ))
                }
            };
            let sig = String::from_utf8_lossy(&sig.content);
            feeds::vendor::verify(location, &feed.content, sig.trim(), key)
        }
        Verification::OpenPgp(keyring) => {
            let keyring = std::fs::read(keyring)
                .map_err(|e| refuse(format!("keyring {}: {e}", keyring.display())))?;
            let inrelease = documents
                .first()
                .ok_or_else(|| refuse("no InRelease".into()))?;
            let release = feeds::apt::verify_inrelease(location, &inrelease.content, &keyring)?;
            for index in &documents[1..] {
                let (path, bytes) = apt_index(index).map_err(refuse)?;
                feeds::apt::check_index(
                    &release,
                    &format!("{location} {}", index.name),
                    &path,
                    &bytes,
                )?;
            }
            Ok(())
        }
    }
}

/// The release-relative path and decompressed bytes of an apt lists index
/// (`..._main_binary-amd64_Packages.lz4` is `main/binary-amd64/Packages`).
fn apt_index(document: &FeedDocument) -> Result<(String, Vec<u8>), String> {
    let name = document.name.as_str();
    let (stem, compressed) = match name.strip_suffix(".lz4") {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    let at = stem
        .find("_main_")
        .or_else(|| stem.rfind("_binary-").and_then(|b| stem[..b].rfind('_')))
        .ok_or_else(|| format!("{name}: not an apt lists Packages file name"))?;
    let path = stem[at + 1..].replace('_', "/");
    let bytes = if compressed {
        let mut out = Vec::new();
        lz4_flex::frame::FrameDecoder::new(document.content.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("{name}: {e}"))?;
        out
    } else {
        document.content.clone()
    };
    Ok((path, bytes))
}

/// Parses verified documents into catalog content. Every advisory records
/// where it came from.
pub fn parse(
    kind: FeedKind,
    feed: &str,
    location: &str,
    fetched_at: Option<Timestamp>,
    sha256: &str,
    documents: &[FeedDocument],
) -> Result<FeedContent, FeedError> {
    let mut content = FeedContent::default();
    let file_of = |d: &FeedDocument| {
        if documents.len() == 1 {
            location.to_owned()
        } else {
            format!("{location}/{}", d.name)
        }
    };
    let text_of = |d: &FeedDocument| -> Result<String, FeedError> {
        String::from_utf8(d.content.clone()).map_err(|_| FeedError::Format {
            file: file_of(d),
            format: kind.as_str(),
            reason: "not UTF-8 text".into(),
        })
    };
    match kind {
        FeedKind::Osv => {
            for d in documents {
                let parsed = if d.content.starts_with(b"PK\x03\x04") {
                    feeds::osv::read_zip(&file_of(d), &d.content)
                } else {
                    feeds::osv::parse(&file_of(d), &d.content)
                };
                match parsed {
                    Ok(p) => {
                        content.advisories.extend(p.items);
                        content.rejected.extend(p.rejected);
                    }
                    // One bad file among many is a skipped record; a feed of
                    // one file that is not OSV is refused whole.
                    Err(e) if documents.len() > 1 => content.rejected.push(Rejected {
                        file: file_of(d),
                        record: "(file)".into(),
                        reason: e.to_string(),
                    }),
                    Err(e) => return Err(e),
                }
            }
        }
        FeedKind::DebianTracker | FeedKind::AlpineSecdb => {
            for d in documents {
                let text = text_of(d)?;
                let p = if kind == FeedKind::DebianTracker {
                    feeds::debian_tracker::parse(&file_of(d), &text)?
                } else {
                    feeds::alpine_secdb::parse(&file_of(d), &text)?
                };
                content.advisories.extend(p.items);
                content.rejected.extend(p.rejected);
            }
        }
        FeedKind::DebianTrackerJson => {
            for d in documents {
                let p = feeds::debian_tracker_json::parse(&file_of(d), &d.content)?;
                content.advisories.extend(p.items);
                content.rejected.extend(p.rejected);
            }
        }
        FeedKind::Kev => {
            for d in documents {
                let kev = feeds::kev::parse(&file_of(d), &d.content)?;
                content.kev.extend(kev.entries.items);
                content.rejected.extend(kev.entries.rejected);
            }
        }
        FeedKind::Epss => {
            for d in documents {
                let scores = feeds::epss::parse(&file_of(d), &text_of(d)?)?;
                content.epss.extend(scores.scores.items);
                content.rejected.extend(scores.scores.rejected);
            }
        }
        FeedKind::Endoflife => {
            for d in documents {
                match feeds::endoflife::parse(&file_of(d), &text_of(d)?) {
                    Ok(l) => content.lifecycles.push(l),
                    Err(e) if documents.len() > 1 => content.rejected.push(Rejected {
                        file: file_of(d),
                        record: "(file)".into(),
                        reason: e.to_string(),
                    }),
                    Err(e) => return Err(e),
                }
            }
        }
        FeedKind::Vendor => {
            let d = documents
                .first()
                .ok_or_else(|| read_error(location, "no document"))?;
            let p = feeds::vendor::parse(&file_of(d), &d.content)?;
            content.advisories.extend(p.items);
            content.rejected.extend(p.rejected);
        }
        FeedKind::Apt => {
            let inrelease = documents
                .first()
                .ok_or_else(|| read_error(location, "no InRelease"))?;
            // Verified before parsing; here only its signed text is read.
            let release = feeds::apt::signed_release(location, &inrelease.content)?;
            for d in &documents[1..] {
                let (_, bytes) = apt_index(d).map_err(|reason| FeedError::Format {
                    file: file_of(d),
                    format: "apt Packages",
                    reason,
                })?;
                let text = String::from_utf8_lossy(&bytes);
                let parsed = feeds::apt::parse_packages(&file_of(d), &text);
                content.rejected.extend(parsed.rejected);
                content
                    .advisories
                    .extend(apt_advisories(&release, &parsed.items));
            }
        }
    }
    let origin = Origin {
        feed: feed.to_owned(),
        location: location.to_owned(),
        fetched_at,
        sha256: sha256.to_owned(),
    };
    for a in &mut content.advisories {
        a.origin = origin.clone();
    }
    Ok(content)
}

/// Every (source, version) a suite offers is the fix of its earlier
/// versions: a host below it lacks an update of that suite. Security
/// suites give security updates, the others plain updates.
fn apt_advisories(
    suite: &feeds::apt::Release,
    packages: &[feeds::apt::IndexPackage],
) -> Vec<Advisory> {
    let Some(codename) = suite.codename.as_deref().or(suite.suite.as_deref()) else {
        return Vec::new();
    };
    let release = codename.split('-').next().unwrap_or(codename);
    let Some(ecosystem) = feeds::debian_tracker::ecosystem_of_codename(release)
        .and_then(|name| Ecosystem::parse(&name).ok())
    else {
        return Vec::new();
    };
    let security = suite.is_security();
    let mut by_source: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for p in packages {
        by_source
            .entry((p.source.as_str(), p.source_version.as_str()))
            .or_default()
            .push(p.name.as_str());
    }
    by_source
        .into_iter()
        .map(|((source, version), mut binaries)| {
            binaries.sort_unstable();
            binaries.dedup();
            let mut a = Advisory::new(
                format!("{codename}:{source}:{version}"),
                if security {
                    UpdateType::SecurityUpdate
                } else {
                    UpdateType::Update
                },
            );
            a.title = format!("{source} {version} in {codename}");
            a.affected.push(Affected {
                ecosystem: ecosystem.clone(),
                package: source.to_owned(),
                kind: PackageKind::Source,
                ranges: vec![vec![
                    Event::Introduced("0".into()),
                    Event::Fixed(version.to_owned()),
                ]],
                versions: Vec::new(),
                binaries: binaries.into_iter().map(str::to_owned).collect(),
            });
            a
        })
        .collect()
}

/// The catalog in force: every feed's content and the index built from it.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Per feed, what its last verified documents say.
    pub feeds: BTreeMap<String, Arc<FeedContent>>,
    /// The index over all of them.
    pub index: Arc<Index>,
}

impl Catalog {
    /// Builds the index over the feeds' contents. An advisory id given by
    /// two feeds is the later feed's (by name).
    pub fn build(feeds: BTreeMap<String, Arc<FeedContent>>) -> Catalog {
        let mut index = Index::new();
        let mut kev = Vec::new();
        let mut epss = Vec::new();
        for content in feeds.values() {
            for a in &content.advisories {
                index.insert(a.clone());
            }
            kev.extend(content.kev.iter().cloned());
            epss.extend(content.epss.iter().cloned());
            for l in &content.lifecycles {
                index.add_lifecycle(l.clone());
            }
        }
        index.set_kev(kev);
        index.set_epss(epss);
        Catalog {
            feeds,
            index: Arc::new(index),
        }
    }
}

/// The catalog in force, shared by the handlers and swapped whole after an
/// import. Imports take turns, so two at once cannot lose one another.
#[derive(Debug, Default)]
pub struct CatalogHandle {
    current: std::sync::RwLock<Arc<Catalog>>,
    imports: tokio::sync::Mutex<()>,
}

impl CatalogHandle {
    /// The catalog in force now.
    pub fn get(&self) -> Arc<Catalog> {
        match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts a catalog in force.
    pub fn set(&self, catalog: Catalog) {
        let catalog = Arc::new(catalog);
        match self.current.write() {
            Ok(mut c) => *c = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
    }
}

/// The shared handle.
pub type SharedCatalog = Arc<CatalogHandle>;

/// Parses what the store holds for every feed. A feed whose stored
/// documents no longer parse (a newer server reading an old format) is
/// logged and left out, and the others load.
pub async fn load(store: &Store) -> anyhow::Result<Catalog> {
    let mut contents = BTreeMap::new();
    for feed in store.feeds().await? {
        if feed.imported_at.is_none() {
            continue;
        }
        let documents = store.feed_documents(&feed.name).await?;
        let kind = match FeedKind::parse(&feed.kind) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(feed = %feed.name, "{e}");
                continue;
            }
        };
        let sha = feed.sha256.clone().unwrap_or_default();
        let parsed = tokio::task::spawn_blocking(move || {
            parse(
                kind,
                &feed.name,
                &feed.location,
                feed.imported_at,
                &sha,
                &documents,
            )
            .map(|c| (feed.name, c))
        })
        .await?;
        match parsed {
            Ok((name, content)) => {
                contents.insert(name, Arc::new(content));
            }
            Err(e) => tracing::warn!("stored feed no longer parses: {e}"),
        }
    }
    Ok(tokio::task::spawn_blocking(move || Catalog::build(contents)).await?)
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    /// The digest verified.
    pub sha256: String,
    /// Records imported.
    pub records: usize,
    /// Records skipped, with reasons.
    pub rejected: Vec<Rejected>,
}

/// What to import.
#[derive(Debug, Clone, Copy)]
pub enum ImportOf<'a> {
    /// A configured feed, by name: its definition is read under the
    /// imports' turn, so a refresh never stores documents under a
    /// definition that changed meanwhile.
    Stored(&'a str),
    /// A new definition of a feed whose row exists: it replaces the stored
    /// definition only if the import succeeds.
    Definition(&'a FeedRecord),
}

/// Fetches, verifies, parses and stores one feed, and puts it in force:
/// the catalog is swapped and the fleet checked against it, in the
/// imports' turn. On any failure nothing changes but the feed's recorded
/// error.
pub async fn import(
    store: &Store,
    catalog: &SharedCatalog,
    fleet: &Arc<FleetHandle>,
    what: ImportOf<'_>,
    now: Timestamp,
) -> Result<ImportOutcome, FeedError> {
    let _turn = catalog.imports.lock().await;
    let feed = match what {
        ImportOf::Definition(feed) => feed.clone(),
        ImportOf::Stored(name) => match store.feed(name).await {
            Ok(Some(feed)) => feed,
            Ok(None) => {
                return Err(read_error(name, "no such feed"));
            }
            Err(e) => return Err(read_error(name, format!("reading its definition: {e}"))),
        },
    };
    let result = import_inner(store, catalog, fleet, &feed, now).await;
    if let Err(e) = &result {
        if let Err(store_error) = store
            .record_feed_error(&feed.name, &e.to_string(), now)
            .await
        {
            tracing::error!("recording the failure of feed {}: {store_error}", feed.name);
        }
    }
    result
}

async fn import_inner(
    store: &Store,
    catalog: &SharedCatalog,
    fleet: &Arc<FleetHandle>,
    feed: &FeedRecord,
    now: Timestamp,
) -> Result<ImportOutcome, FeedError> {
    let config_error = |reason: String| FeedError::Read {
        location: feed.location.clone(),
        reason,
    };
    let kind = FeedKind::parse(&feed.kind).map_err(config_error)?;
    let verification = Verification::parse(&feed.verification).map_err(config_error)?;
    let documents = fetch(kind, &feed.location).await?;
    let location = feed.location.clone();
    let name = feed.name.clone();
    let (documents, content, sha) = tokio::task::spawn_blocking(move || {
        verify(kind, &verification, &location, &documents)?;
        let sha = digest(&documents);
        let content = parse(kind, &name, &location, Some(now), &sha, &documents)?;
        Ok::<_, FeedError>((documents, content, sha))
    })
    .await
    .map_err(|e| config_error(e.to_string()))??;
    let outcome = ImportOutcome {
        sha256: sha.clone(),
        records: content.records(),
        rejected: content.rejected.clone(),
    };
    // The same documents under the same definition: what is in force stays.
    let stored = store
        .feed(&feed.name)
        .await
        .map_err(|e| config_error(format!("reading the feed: {e}")))?;
    let unchanged = stored.as_ref().is_some_and(|s| {
        s.imported_at.is_some()
            && s.sha256.as_deref() == Some(sha.as_str())
            && (&s.kind, &s.location, &s.verification)
                == (&feed.kind, &feed.location, &feed.verification)
    });
    if unchanged && catalog.get().feeds.contains_key(&feed.name) {
        store
            .feed_unchanged(&feed.name)
            .await
            .map_err(|e| config_error(format!("storing the check: {e}")))?;
        return Ok(outcome);
    }
    store
        .store_feed_import(
            feed,
            &documents,
            &sha,
            content.records() as u64,
            content.rejected.len() as u64,
            now,
        )
        .await
        .map_err(|e| config_error(format!("storing the import: {e}")))?;
    let mut feeds = catalog.get().feeds.clone();
    feeds.insert(feed.name.clone(), Arc::new(content));
    put_in_force(catalog, fleet, feeds).await;
    Ok(outcome)
}

/// Builds and swaps in the catalog over `feeds`, then checks the fleet
/// against it. Called in the imports' turn, so the fleet always ends with
/// the catalog in force.
async fn put_in_force(
    catalog: &SharedCatalog,
    fleet: &Arc<FleetHandle>,
    feeds: BTreeMap<String, Arc<FeedContent>>,
) {
    let fleet = Arc::clone(fleet);
    let built = tokio::task::spawn_blocking(move || {
        let catalog = Catalog::build(feeds);
        fleet.set_index(Arc::clone(&catalog.index));
        catalog
    })
    .await;
    match built {
        Ok(rebuilt) => catalog.set(rebuilt),
        Err(e) => tracing::error!("building the catalog: {e}"),
    }
}

/// Takes a removed feed's content out of force.
pub async fn forget(catalog: &SharedCatalog, fleet: &Arc<FleetHandle>, name: &str) {
    let _turn = catalog.imports.lock().await;
    let mut feeds = catalog.get().feeds.clone();
    if feeds.remove(name).is_some() {
        put_in_force(catalog, fleet, feeds).await;
    }
}

/// Checks the fleet against the catalog in force, in the imports' turn
/// (the fleet's loader calls it once every host is in).
pub async fn check_fleet(catalog: &SharedCatalog, fleet: &Arc<FleetHandle>) {
    let _turn = catalog.imports.lock().await;
    let (fleet, index) = (Arc::clone(fleet), Arc::clone(&catalog.get().index));
    if let Err(e) = tokio::task::spawn_blocking(move || fleet.set_index(index)).await {
        tracing::error!("checking the fleet against the catalog: {e}");
    }
}
