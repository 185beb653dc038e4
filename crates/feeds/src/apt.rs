//! Apt repository metadata: the OpenPGP-signed `InRelease` file, the index
//! files it vouches for, and the `Packages` index.
//!
//! A key design decision made in this module is that nothing is read from an
//! `InRelease` file except the text its signature covers: the file is parsed
//! as an OpenPGP cleartext-signed message (by the `pgp` crate, which refuses
//! text before the message and after its signature block), the signatures
//! are checked against the keyring the caller trusts, and only then is the
//! signed text parsed into a [`Release`]. Index files are trusted only
//! through that release: [`check_index`] compares an index's size and
//! SHA-256 with the line the signed release gives for its path.
//!
//! # How signatures and keys are checked
//!
//! The keyring is a binary OpenPGP keyring (concatenated transferable public
//! keys, as in `/usr/share/keyrings/*.gpg`) or one or more ASCII-armored
//! public key blocks (as in `/etc/apt/keyrings/*.asc`). Each signature of
//! the `InRelease` file is matched to a key of the keyring, primary key or
//! subkey, by its issuer fingerprint (or, for older signatures, its issuer
//! key id). Like apt with `gpgv`:
//!
//! - The release is accepted when at least one signature verifies with a
//!   usable key of the keyring. Archives sign with two keys across a key
//!   rotation, so signatures by keys that are not in the keyring are skipped.
//! - A signature by a key of the keyring that does not verify is fatal, even
//!   when another one verifies: the text or the signature was altered.
//! - Signatures with a weak digest (MD5, SHA-1, RIPEMD-160) are skipped, as
//!   are signatures by a key that was revoked, expired, not (validly) bound
//!   to its primary key, or not marked for signing.
//!
//! A key's expiry is taken from its newest valid self-signature (for a
//! subkey: its newest valid binding signature, which must carry the subkey's
//! back signature) and compared with the signature's creation time. This
//! module never reads the clock: whether the release is still fresh is the
//! caller's question, answered by [`Release::valid_until`] and its own `now`.
//! Third-party revocations (designated revokers) are not honoured.

use std::collections::HashSet;

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag, Timestamp};
use sha2::{Digest, Sha256};

use crate::{hex, rejected, FeedError, Parsed};

/// The signed part of an apt `InRelease` file: which archive and suite it
/// describes, and the sums of its index files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Release {
    /// `Origin`, such as `Debian`.
    pub origin: Option<String>,
    /// `Label`, such as `Debian-Security`.
    pub label: Option<String>,
    /// `Suite`, such as `oldstable-security`: it moves between releases.
    pub suite: Option<String>,
    /// `Codename`, such as `bookworm-security`: it stays with its release.
    pub codename: Option<String>,
    /// `Date`, as written (RFC 2822).
    pub date: Option<String>,
    /// `Valid-Until`, as written (RFC 2822): after it, the release is stale.
    pub valid_until: Option<String>,
    /// The `SHA256` list of index files.
    pub sha256: Vec<IndexFile>,
    /// The keys whose signatures verified, in the order of the signatures.
    pub signed_by: Vec<Signer>,
}

/// One line of a release's `SHA256` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// The path below the release's directory (`main/binary-amd64/Packages`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, in lower-case hex.
    pub sha256: String,
}

/// A key that made a verified signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The fingerprint of the key that signed, in upper-case hex: a subkey's
    /// when a subkey signed. Its last 16 digits are the key id.
    pub fingerprint: String,
    /// The fingerprint of its certificate's primary key.
    pub primary_fingerprint: String,
    /// The certificate's primary (or first) user id, when it has one.
    pub user_id: Option<String>,
}

impl Release {
    /// Whether this is a security suite: its suite or codename ends with
    /// `-security`. Mirrors name suites by role (`oldstable-security`) and
    /// codenames by release (`bookworm-security`); either is enough.
    pub fn is_security(&self) -> bool {
        [&self.suite, &self.codename]
            .into_iter()
            .flatten()
            .any(|name| name.ends_with("-security"))
    }
}

/// Verifies an `InRelease` file (an OpenPGP cleartext-signed message)
/// against a keyring, and parses its signed text.
///
/// `location` names the file in errors. See the module documentation for
/// which signatures and keys count.
pub fn verify_inrelease(
    location: &str,
    inrelease: &[u8],
    keyring: &[u8],
) -> Result<Release, FeedError> {
    let refuse = |reason: String| FeedError::Verification {
        location: location.to_owned(),
        reason,
    };
    let (certs, unreadable) = read_keyring(keyring).map_err(refuse)?;
    if certs.is_empty() {
        return Err(refuse(match unreadable {
            0 => "the keyring holds no OpenPGP public key".to_owned(),
            n => format!("the keyring holds no readable OpenPGP public key ({n} unreadable)"),
        }));
    }
    let (message, _headers) = CleartextSignedMessage::from_armor(inrelease)
        .map_err(|e| refuse(format!("not an OpenPGP cleartext-signed message: {e}")))?;
    if message.signatures().is_empty() {
        return Err(refuse("the message carries no signature".to_owned()));
    }
    // This is the text that was hashed: dash-escapes removed, trailing
    // white space trimmed, line ends made CR LF. Parsing exactly this text
    // is what makes "only signed text is read" hold.
    let text = message.signed_text();

    let mut signed_by = Vec::new();
    let mut skipped = Vec::new();
    for (index, signature) in message.signatures().iter().enumerate() {
        match check_signature(&certs, signature, text.as_bytes()) {
            Outcome::Good(signer) => signed_by.push(signer),
            Outcome::Skipped(reason) => skipped.push(format!("signature {}: {reason}", index + 1)),
            Outcome::Bad(reason) => {
                return Err(refuse(format!("signature {}: {reason}", index + 1)))
            }
        }
    }
    if signed_by.is_empty() {
        return Err(refuse(format!(
            "no signature was made by a usable key of the keyring ({} keys): {}",
            certs.len(),
            skipped.join("; ")
        )));
    }
    let mut release = parse_release(location, &text)?;
    release.signed_by = signed_by;
    Ok(release)
}

/// Reads the signed text of an `InRelease` that was verified before (a
/// feed's stored document), without verifying it again: only the text the
/// signature covers is parsed.
pub fn signed_release(location: &str, inrelease: &[u8]) -> Result<Release, FeedError> {
    let (message, _headers) =
        CleartextSignedMessage::from_armor(inrelease).map_err(|e| FeedError::Format {
            file: location.to_owned(),
            format: "apt InRelease",
            reason: format!("not an OpenPGP cleartext-signed message: {e}"),
        })?;
    parse_release(location, &message.signed_text())
}

/// Checks a decompressed index file against the signed release: `path` (as
/// the release lists it, `main/binary-amd64/Packages`) must be listed with
/// exactly this size and SHA-256.
pub fn check_index(
    release: &Release,
    location: &str,
    path: &str,
    bytes: &[u8],
) -> Result<(), FeedError> {
    let refuse = |reason: String| FeedError::Verification {
        location: location.to_owned(),
        reason,
    };
    let Some(listed) = release.sha256.iter().find(|f| f.path == path) else {
        return Err(refuse(if release.sha256.is_empty() {
            format!("{path} cannot be checked: the release lists no SHA256 sums")
        } else {
            format!("{path} is not listed in the release's SHA256 sums")
        }));
    };
    let size = bytes.len() as u64;
    if size != listed.size {
        return Err(refuse(format!(
            "{path} is {size} bytes, the release lists {} bytes",
            listed.size
        )));
    }
    let sha256 = hex(&Sha256::digest(bytes));
    if sha256 != listed.sha256 {
        return Err(refuse(format!(
            "{path} has SHA-256 {sha256}, the release lists {}",
            listed.sha256
        )));
    }
    Ok(())
}

/// A binary package of a `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPackage {
    /// `Package`.
    pub name: String,
    /// `Version`, a valid dpkg version.
    pub version: String,
    /// `Architecture` (`amd64`, `all`).
    pub arch: String,
    /// The source package: `Source`'s name, else the package's own name.
    pub source: String,
    /// The source version: the one in `Source: name (version)` when the
    /// binary was rebuilt on its own (a binNMU, `+b1`), else `version`.
    pub source_version: String,
}

/// Reads a Debian `Packages` index: one stanza per binary package.
///
/// A stanza without `Package`, `Version` or `Architecture`, with an invalid
/// dpkg version, or with a line that is not a field, is rejected with its
/// reason; the others are read.
pub fn parse_packages(file: &str, text: &str) -> Parsed<IndexPackage> {
    let mut parsed = Parsed::default();
    let mut stanza: Vec<(usize, &str)> = Vec::new();
    let lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
    for (number, line) in lines.chain(std::iter::once((0, ""))) {
        if line.trim().is_empty() {
            if !stanza.is_empty() {
                match read_package(&stanza) {
                    Ok(package) => parsed.items.push(package),
                    Err((record, reason)) => parsed.rejected.push(rejected(file, record, reason)),
                }
                stanza.clear();
            }
        } else {
            stanza.push((number, line));
        }
    }
    parsed
}

/// Reads one stanza, or says which record it was and why it is refused.
fn read_package(stanza: &[(usize, &str)]) -> Result<IndexPackage, (String, String)> {
    let first_line = stanza.first().map_or(0, |&(n, _)| n);
    let mut name = None;
    let mut version = None;
    let mut arch = None;
    let mut source = None;
    let mut malformed = None;
    for &(number, line) in stanza {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((field, value)) = line.split_once(':') else {
            malformed.get_or_insert(format!("line {number} is not a field: {line:?}"));
            continue;
        };
        let value = value.trim();
        match field.to_ascii_lowercase().as_str() {
            "package" => name = Some(value),
            "version" => version = Some(value),
            "architecture" => arch = Some(value),
            "source" => source = Some(value),
            _ => {}
        }
    }
    let name = name.filter(|n| !n.is_empty());
    let record = match name {
        Some(name) => name.to_owned(),
        None => format!("stanza at line {first_line}"),
    };
    let refuse = |reason: String| (record.clone(), reason);
    if let Some(reason) = malformed {
        return Err(refuse(reason));
    }
    let Some(name) = name else {
        return Err(refuse("no Package field".to_owned()));
    };
    if name.contains(char::is_whitespace) {
        return Err(refuse(format!("Package {name:?} has white space in it")));
    }
    let Some(version) = version else {
        return Err(refuse("no Version field".to_owned()));
    };
    versions::validate(versions::Ecosystem::Deb, version).map_err(|e| refuse(e.to_string()))?;
    let Some(arch) = arch.filter(|a| !a.is_empty()) else {
        return Err(refuse("no Architecture field".to_owned()));
    };
    let (source, source_version) = match source {
        None => (name, version),
        Some(source) => match source.split_once('(') {
            None => (source, version),
            Some((source_name, rest)) => {
                let Some(source_version) = rest.trim().strip_suffix(')') else {
                    return Err(refuse(format!(
                        "Source {source:?} is not \"name\" or \"name (version)\""
                    )));
                };
                let source_version = source_version.trim();
                versions::validate(versions::Ecosystem::Deb, source_version)
                    .map_err(|e| refuse(format!("Source: {e}")))?;
                (source_name.trim(), source_version)
            }
        },
    };
    if source.is_empty() || source.contains(char::is_whitespace) {
        return Err(refuse(format!("Source {source:?} is not a package name")));
    }
    Ok(IndexPackage {
        name: name.to_owned(),
        version: version.to_owned(),
        arch: arch.to_owned(),
        source: source.to_owned(),
        source_version: source_version.to_owned(),
    })
}

/// Reads a binary or armored keyring. Returns the certificates it could
/// read and how many it could not (a key of an algorithm the `pgp` crate
/// does not support is skipped rather than failing the whole keyring).
fn read_keyring(keyring: &[u8]) -> Result<(Vec<SignedPublicKey>, usize), String> {
    let mut certs = Vec::new();
    let mut unreadable = 0;
    let start = keyring.iter().position(|b| !b.is_ascii_whitespace());
    let armored = start.is_some_and(|s| keyring[s..].starts_with(b"-----BEGIN PGP"));
    if armored {
        // An `.asc` file may hold several armored blocks one after the other;
        // the armor reader reads one, so each block is handed over on its own.
        let text = std::str::from_utf8(keyring)
            .map_err(|_| "the armored keyring is not UTF-8 text".to_owned())?;
        const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
        let starts: Vec<usize> = text.match_indices(BEGIN).map(|(i, _)| i).collect();
        if starts.is_empty() {
            return Err("the armored keyring holds no public key block".to_owned());
        }
        for (n, &begin) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(text.len());
            let (keys, _headers) =
                SignedPublicKey::from_armor_many(&text.as_bytes()[begin..end])
                    .map_err(|e| format!("armored key block {} is unreadable: {e}", n + 1))?;
            for key in keys {
                match key {
                    Ok(key) => certs.push(key),
                    Err(_) => unreadable += 1,
                }
            }
        }
    } else {
        let keys = SignedPublicKey::from_bytes_many(keyring)
            .map_err(|e| format!("the keyring is unreadable: {e}"))?;
        for key in keys {
            match key {
                Ok(key) => certs.push(key),
                Err(_) => unreadable += 1,
            }
        }
    }
    Ok((certs, unreadable))
}

/// What one signature of an `InRelease` file amounts to.
enum Outcome {
    /// It verified with a usable key.
    Good(Signer),
    /// It does not count: unknown key, weak digest, unusable key.
    Skipped(String),
    /// A key of the keyring says the text is not what it signed.
    Bad(String),
}

/// A key of the keyring that can make signatures: a primary key or a subkey.
#[derive(Clone, Copy)]
enum Component<'a> {
    Primary(&'a SignedPublicKey),
    Subkey(&'a SignedPublicKey, &'a SignedPublicSubKey),
}

impl<'a> Component<'a> {
    fn cert(self) -> &'a SignedPublicKey {
        match self {
            Component::Primary(cert) | Component::Subkey(cert, _) => cert,
        }
    }

    fn fingerprint(self) -> pgp::types::Fingerprint {
        match self {
            Component::Primary(cert) => cert.primary_key.fingerprint(),
            Component::Subkey(_, sub) => sub.key.fingerprint(),
        }
    }

    fn key_id(self) -> pgp::types::KeyId {
        match self {
            Component::Primary(cert) => cert.primary_key.legacy_key_id(),
            Component::Subkey(_, sub) => sub.key.legacy_key_id(),
        }
    }

    fn created_at(self) -> Timestamp {
        match self {
            Component::Primary(cert) => cert.primary_key.created_at(),
            Component::Subkey(_, sub) => sub.key.created_at(),
        }
    }

    fn verify(self, signature: &Signature, text: &[u8]) -> bool {
        match self {
            Component::Primary(cert) => signature.verify(&cert.primary_key, text).is_ok(),
            Component::Subkey(_, sub) => signature.verify(&sub.key, text).is_ok(),
        }
    }
}

/// Checks one document signature against the keyring.
fn check_signature(certs: &[SignedPublicKey], signature: &Signature, text: &[u8]) -> Outcome {
    let issuer = describe_issuer(signature);
    match signature.typ() {
        Some(SignatureType::Text | SignatureType::Binary) => {}
        other => {
            return Outcome::Skipped(format!(
                "by {issuer}: not a document signature (type {other:?})"
            ))
        }
    }
    match signature.hash_alg() {
        Some(
            HashAlgorithm::Sha256
            | HashAlgorithm::Sha384
            | HashAlgorithm::Sha512
            | HashAlgorithm::Sha224
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Sha3_512,
        ) => {}
        Some(weak) => {
            return Outcome::Skipped(format!("by {issuer}: the digest {weak} is too weak"))
        }
        None => return Outcome::Skipped(format!("by {issuer}: unsupported signature version")),
    }
    let Some(created) = signature.created() else {
        return Outcome::Skipped(format!("by {issuer}: the signature has no creation time"));
    };

    let candidates: Vec<Component<'_>> = certs
        .iter()
        .flat_map(|cert| {
            std::iter::once(Component::Primary(cert)).chain(
                cert.public_subkeys
                    .iter()
                    .map(move |sub| Component::Subkey(cert, sub)),
            )
        })
        .filter(|c| issued_by(signature, *c))
        .collect();
    if candidates.is_empty() {
        return Outcome::Skipped(format!("by {issuer}: no such key in the keyring"));
    }
    // A 64-bit key id can collide, so every candidate is tried before the
    // signature is called bad.
    let Some(component) = candidates.into_iter().find(|c| c.verify(signature, text)) else {
        // A signature that names no issuer was tried with every key; that
        // none of them made it says nothing about the text.
        if signature.issuer_fingerprint().is_empty() && signature.issuer_key_id().is_empty() {
            return Outcome::Skipped("names no key, and no key of the keyring made it".to_owned());
        }
        return Outcome::Bad(format!(
            "the signature by {issuer} does not match the signed text"
        ));
    };
    let fingerprint = format!("{:X}", component.fingerprint());
    if let Err(reason) = usable(component, created) {
        return Outcome::Skipped(format!("by {fingerprint}: {reason}"));
    }
    let cert = component.cert();
    let user_id = cert
        .details
        .users
        .iter()
        .find(|u| u.is_primary())
        .or_else(|| cert.details.users.first())
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned());
    Outcome::Good(Signer {
        fingerprint,
        primary_fingerprint: format!("{:X}", cert.primary_key.fingerprint()),
        user_id,
    })
}

/// The issuer a signature names, for messages: its fingerprint, else its key id.
fn describe_issuer(signature: &Signature) -> String {
    if let Some(fp) = signature.issuer_fingerprint().first() {
        format!("key {fp:X}")
    } else if let Some(id) = signature.issuer_key_id().first() {
        format!("key id {}", id.to_string().to_ascii_uppercase())
    } else {
        "an unnamed key".to_owned()
    }
}

/// Whether the signature names this key as its issuer. A signature that
/// names none could be anyone's, and every key is tried.
fn issued_by(signature: &Signature, component: Component<'_>) -> bool {
    let fingerprints = signature.issuer_fingerprint();
    if !fingerprints.is_empty() {
        let fingerprint = component.fingerprint();
        return fingerprints.iter().any(|fp| **fp == fingerprint);
    }
    let ids = signature.issuer_key_id();
    ids.is_empty() || ids.iter().any(|id| **id == component.key_id())
}

/// Whether a key that made a signature at `at` could make it: bound to its
/// certificate, marked for signing, not revoked, not expired at `at`.
fn usable(component: Component<'_>, at: Timestamp) -> Result<(), String> {
    let cert = component.cert();
    let primary = &cert.primary_key;
    if at.as_secs() < component.created_at().as_secs() {
        return Err("the signature is older than the key".to_owned());
    }

    let revoked = cert.details.revocation_signatures.iter().any(|sig| {
        sig.typ() == Some(SignatureType::KeyRevocation) && sig.verify_key(primary).is_ok()
    });
    if revoked {
        return Err("the key is revoked".to_owned());
    }
    // The primary key's newest self-signature carries its expiry and, when
    // the primary key itself signs, its key flags.
    let self_signature =
        cert.details
            .users
            .iter()
            .flat_map(|user| {
                user.signatures.iter().filter(move |sig| {
                    // Certifications by other keys are not self-signatures,
                    // and are not worth a verification each.
                    sig.is_certification()
                        && sig.typ() != Some(SignatureType::CertRevocation)
                        && issued_by(sig, Component::Primary(cert))
                        && sig
                            .verify_certification(primary, Tag::UserId, &user.id)
                            .is_ok()
                })
            })
            .chain(cert.details.direct_signatures.iter().filter(|sig| {
                sig.typ() == Some(SignatureType::Key) && sig.verify_key(primary).is_ok()
            }))
            .max_by_key(|sig| sig.created().map_or(0, Timestamp::as_secs))
            .ok_or_else(|| "the key has no valid self-signature".to_owned())?;
    check_expiry("the primary key", primary.created_at(), self_signature, at)?;

    match component {
        Component::Primary(_) => {
            if !self_signature.key_flags().sign() {
                return Err("the primary key is not marked for signing".to_owned());
            }
        }
        Component::Subkey(_, sub) => {
            let subkey_revoked = sub.signatures.iter().any(|sig| {
                sig.typ() == Some(SignatureType::SubkeyRevocation)
                    && sig.verify_subkey_binding(primary, &sub.key).is_ok()
            });
            if subkey_revoked {
                return Err("the subkey is revoked".to_owned());
            }
            let binding = sub
                .signatures
                .iter()
                .filter(|sig| {
                    sig.typ() == Some(SignatureType::SubkeyBinding)
                        && sig.verify_subkey_binding(primary, &sub.key).is_ok()
                })
                .max_by_key(|sig| sig.created().map_or(0, Timestamp::as_secs))
                .ok_or_else(|| "the subkey has no valid binding signature".to_owned())?;
            if !binding.key_flags().sign() {
                return Err("the subkey is not marked for signing".to_owned());
            }
            // Without the subkey's own signature over the binding, anyone
            // could bind someone else's signing key to their certificate.
            let back_signed = binding
                .embedded_signature()
                .is_some_and(|back| back.verify_primary_key_binding(&sub.key, primary).is_ok());
            if !back_signed {
                return Err("the subkey's binding has no valid back signature".to_owned());
            }
            check_expiry("the subkey", sub.key.created_at(), binding, at)?;
        }
    }
    Ok(())
}

/// Refuses a key whose self-signature says it had expired by `at`.
fn check_expiry(
    what: &str,
    created: Timestamp,
    self_signature: &Signature,
    at: Timestamp,
) -> Result<(), String> {
    let Some(lifetime) = self_signature.key_expiration_time() else {
        return Ok(());
    };
    // A lifetime of zero means the key does not expire.
    if lifetime.as_secs() == 0 {
        return Ok(());
    }
    let expiry = u64::from(created.as_secs()) + u64::from(lifetime.as_secs());
    if u64::from(at.as_secs()) >= expiry {
        let when = jiff::Timestamp::from_second(expiry as i64)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| format!("{expiry} s after 1970"));
        return Err(format!(
            "{what} expired at {when}, before the signature was made"
        ));
    }
    Ok(())
}

/// Parses the signed text of a release: one deb822 paragraph.
fn parse_release(location: &str, text: &str) -> Result<Release, FeedError> {
    let malformed = |reason: String| FeedError::Format {
        file: location.to_owned(),
        format: "apt Release",
        reason,
    };
    let mut release = Release::default();
    let mut seen_fields = HashSet::new();
    let mut seen_paths = HashSet::new();
    let mut field = String::new();
    let mut ended = false;
    for (index, line) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            ended = !seen_fields.is_empty();
            continue;
        }
        if ended {
            return Err(malformed(format!("line {number}: more than one paragraph")));
        }
        if line.starts_with([' ', '\t']) {
            if field.is_empty() {
                return Err(malformed(format!(
                    "line {number}: continuation line before any field"
                )));
            }
            if field == "sha256" {
                let entry =
                    read_sum_line(line).map_err(|e| malformed(format!("line {number}: {e}")))?;
                if !seen_paths.insert(entry.path.clone()) {
                    return Err(malformed(format!(
                        "line {number}: {} is listed twice",
                        entry.path
                    )));
                }
                release.sha256.push(entry);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(malformed(format!("line {number} is not a field: {line:?}")));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(malformed(format!(
                "line {number}: {name:?} is not a field name"
            )));
        }
        field = name.to_ascii_lowercase();
        if !seen_fields.insert(field.clone()) {
            return Err(malformed(format!(
                "line {number}: field {name} appears twice"
            )));
        }
        let value = value.trim();
        let value = (!value.is_empty()).then(|| value.to_owned());
        match field.as_str() {
            "origin" => release.origin = value,
            "label" => release.label = value,
            "suite" => release.suite = value,
            "codename" => release.codename = value,
            "date" => release.date = value,
            "valid-until" => release.valid_until = value,
            "sha256" if value.is_some() => {
                return Err(malformed(format!(
                    "line {number}: SHA256 sums belong on the lines after the field name"
                )))
            }
            _ => {}
        }
    }
    if seen_fields.is_empty() {
        return Err(malformed("the signed text is empty".to_owned()));
    }
    Ok(release)
}

/// Reads ` <sha256> <size> <path>`.
fn read_sum_line(line: &str) -> Result<IndexFile, String> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let &[sha256, size, path] = parts.as_slice() else {
        return Err(format!(
            "{:?} is not \"<sha256> <size> <path>\"",
            line.trim()
        ));
    };
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{sha256:?} is not a SHA-256 in hex"));
    }
    let size = size
        .parse::<u64>()
        .map_err(|_| format!("{size:?} is not a size in bytes"))?;
    Ok(IndexFile {
        path: path.to_owned(),
        size,
        sha256: sha256.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    //! The fixtures were made with GnuPG 2.2 for these tests: ed25519 keys
    //! created 2025-01-01, signatures made 2026-03-01. Key A signs with its
    //! primary key; key B only certifies and signs with a subkey; key C's
    //! expiry was later set to 2025-06-01; key D was revoked.

    use super::*;
    use base64::Engine as _;

    const RELEASE: &str = concat!(
        "Origin: Patchwell Test\n",
        "Label: Patchwell Test-Security\n",
        "Suite: oldstable-security\n",
        "Version: 12\n",
        "Codename: bookworm-security\n",
        "Date: Sun, 01 Mar 2026 00:00:00 UTC\n",
        "Valid-Until: Sun, 08 Mar 2026 00:00:00 UTC\n",
        "Architectures: amd64\n",
        "Components: main\n",
        "Description: Patchwell test archive\n",
        "MD5Sum:\n",
        " 4be48f450813ead56234ead8a376dc08      562 main/binary-amd64/Packages\n",
        "SHA256:\n",
        " 421b54c40d090ddd10d0403b39b8a371e65fe405bb8e7404fb4691bf5a282284      562 main/binary-amd64/Packages\n",
        " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 main/binary-all/Packages\n",
    );

    /// A `Packages` index.
    const PACKAGES: &str = concat!(
        "Package: hello\n",
        "Version: 2.10-3\n",
        "Architecture: amd64\n",
        "Maintainer: Example Maintainer <maintainer@example.org>\n",
        "Installed-Size: 280\n",
        "Depends: libc6 (>= 2.34)\n",
        "Description: example package based on GNU hello\n",
        " The GNU hello program produces a familiar, friendly greeting.\n",
        " .\n",
        " It allows non-programmers to use a classic computer science tool.\n",
        "\n",
        "Package: libssl3\n",
        "Source: openssl (3.0.15-1~deb12u1)\n",
        "Version: 3.0.15-1~deb12u1+b1\n",
        "Architecture: amd64\n",
        "Description: Secure Sockets Layer toolkit - shared libraries\n",
        "\n",
        "Package: tzdata\n",
        "Source: tzdata\n",
        "Version: 2025b-0+deb12u1\n",
        "Architecture: all\n",
    );

    const KEY_A: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEZ3SFgBYJKwYBBAHaRw8BAQdAtRWNwIST/8RNEfP/neVi6fOhc2Q1SuD5jgiW
4WQXb3m0KFBhdGNod2VsbCBUZXN0IEFyY2hpdmUgQSA8YUBleGFtcGxlLm9yZz6I
kAQTFggAOBYhBKACoXvq0uYsEPQygVB14Z8YQtnpBQJndIWAAhsDBQsJCAcCBhUK
CQgLAgQWAgMBAh4BAheAAAoJEFB14Z8YQtnpTSoBAPTeuSTK55fe7qzasaMqykGG
RpcYWB64ZgC/TAbIM6PyAQC/LtrGCHvd+1lOjSDwHdxQJKS7dcrnQ/xomx3840fH
CA==
=Vhxq
-----END PGP PUBLIC KEY BLOCK-----
";
    const FPR_A: &str = "A002A17BEAD2E62C10F432815075E19F1842D9E9";

    const KEY_B: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEZ3SFgBYJKwYBBAHaRw8BAQdA+te9t59Kn67pH1vtMlkh0cYfQQbvrZUjrc3z
m+up6JC0KFBhdGNod2VsbCBUZXN0IEFyY2hpdmUgQiA8YkBleGFtcGxlLm9yZz6I
kAQTFggAOBYhBMaZwS3gVA42PP9zmnfAZ4mB6CvLBQJndIWAAhsBBQsJCAcCBhUK
CQgLAgQWAgMBAh4BAheAAAoJEHfAZ4mB6CvLNR4BAIM9o9SJem21RRM7fubY2NfG
DKLkBhifDiZEJlLkn0vxAP9yiL0lUqfa2KovnG0a0VF1+4+HYrhugc53Bea+8GhU
CbgzBGd0hYAWCSsGAQQB2kcPAQEHQIC/db20+0kn1I1nSkuLWUybTL1ebsZ8DenS
g4lG95suiO8EGBYIACAWIQTGmcEt4FQONjz/c5p3wGeJgegrywUCZ3SFgAIbAgCB
CRB3wGeJgegry3YgBBkWCAAdFiEEsLgSKiIVAc1LtyvcvuwfWEX1UAoFAmd0hYAA
CgkQvuwfWEX1UAoG4gEA2miArLFhWrNpM3Q8WuNuMn8fyEmUbWTBwCMg/I9PIvkB
ANEuQjehGF1O06PJsSTGwLLBlf2pzge0ls0zAVmKw3ACNn4A/1smt1d/8mlv67pm
eHwulj68z5yWQRrd65Olo+S+QK6tAQDlh64kuVv72qXAY8yl9Au1rwMZdkEb5bfW
ULmAUo62Dg==
=3aK4
-----END PGP PUBLIC KEY BLOCK-----
";
    const FPR_B: &str = "C699C12DE0540E363CFF739A77C0678981E82BCB";
    const FPR_B_SUBKEY: &str = "B0B8122A221501CD4BB72BDCBEEC1F5845F5500A";

    const KEY_C_EXPIRED: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEZ3SFgBYJKwYBBAHaRw8BAQdAOl90MIzXelmeZHZEHkeY2yescuNmGsTSVgz1
CeS8k2q0KVBhdGNod2VsbCBUZXN0IEV4cGlyaW5nIEMgPGNAZXhhbXBsZS5vcmc+
iJYEExYIAD4CGwMFCwkIBwIGFQoJCAsCBBYCAwECHgECF4AWIQSdFK1xTxiBs65F
xpCy5LkLpok6RAUCZ51kAAUJAMe7QAAKCRCy5LkLpok6RG7vAQCOrDQ9dVtvjBxg
oGLwp3k/v9eBocmWI631rDbbUYqhSAD9H7UzLOxEX4krnS55jOPTslGWgN69uRrv
WScBl45xwQ0=
=GnzX
-----END PGP PUBLIC KEY BLOCK-----
";

    const KEY_D_REVOKED: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEZ3SFgBYJKwYBBAHaRw8BAQdApwVb6xTzi1UsPQOnn+h77frLEEE7pj/vWtg3
XpDgpIOIeAQgFggAIBYhBFSYI/MfZwRbCKD0hykbMNoDElGwBQJndIWAAh0AAAoJ
ECkbMNoDElGw2wIA/2tpBqS3m+jRgN6zfnDdg/znD/enJoEnJ9yeEBfC55SWAP9k
ThDvqvzGJRsL/PXw5iV7yCafWc53J8pctHImTYulDrQoUGF0Y2h3ZWxsIFRlc3Qg
UmV2b2tlZCBEIDxkQGV4YW1wbGUub3JnPoiQBBMWCAA4FiEEVJgj8x9nBFsIoPSH
KRsw2gMSUbAFAmd0hYACGwMFCwkIBwIGFQoJCAsCBBYCAwECHgECF4AACgkQKRsw
2gMSUbAK0QEAuVUEbI9AdxtvxNBmiv18UZgB3PUns70wwRIBZR/L46MA/ifs9WGq
NLuzwfXoQv9L3sJMfAOvkLwwY337n8eoO3sD
=O/8d
-----END PGP PUBLIC KEY BLOCK-----
";

    /// Keys A and B as a binary keyring (`gpg --export`), in base64.
    const KEYRING_AB: &str = "mDMEZ3SFgBYJKwYBBAHaRw8BAQdAtRWNwIST/8RNEfP/neVi6fOhc2Q1SuD5jgiW4WQXb3m0KFBhdGNod2VsbCBUZXN0IEFyY2hpdmUgQSA8YUBleGFtcGxlLm9yZz6IkAQTFggAOBYhBKACoXvq0uYsEPQygVB14Z8YQtnpBQJndIWAAhsDBQsJCAcCBhUKCQgLAgQWAgMBAh4BAheAAAoJEFB14Z8YQtnpTSoBAPTeuSTK55fe7qzasaMqykGGRpcYWB64ZgC/TAbIM6PyAQC/LtrGCHvd+1lOjSDwHdxQJKS7dcrnQ/xomx3840fHCJgzBGd0hYAWCSsGAQQB2kcPAQEHQPrXvbefSp+u6R9b7TJZIdHGH0EG762VI63N85vrqeiQtChQYXRjaHdlbGwgVGVzdCBBcmNoaXZlIEIgPGJAZXhhbXBsZS5vcmc+iJAEExYIADgWIQTGmcEt4FQONjz/c5p3wGeJgegrywUCZ3SFgAIbAQULCQgHAgYVCgkICwIEFgIDAQIeAQIXgAAKCRB3wGeJgegryzUeAQCDPaPUiXpttUUTO37m2NjXxgyi5AYYnw4mRCZS5J9L8QD/coi9JVKn2tiqL5xtGtFRdfuPh2K4boHOdwXmvvBoVAm4MwRndIWAFgkrBgEEAdpHDwEBB0CAv3W9tPtJJ9SNZ0pLi1lMm0y9Xm7GfA3p0oOJRvebLojvBBgWCAAgFiEExpnBLeBUDjY8/3Oad8BniYHoK8sFAmd0hYACGwIAgQkQd8BniYHoK8t2IAQZFggAHRYhBLC4EioiFQHNS7cr3L7sH1hF9VAKBQJndIWAAAoJEL7sH1hF9VAKBuIBANpogKyxYVqzaTN0PFrjbjJ/H8hJlG1kwcAjIPyPTyL5AQDRLkI3oRhdTtOjybEkxsCywZX9qc4HtJbNMwFZisNwAjZ+AP9bJrdXf/Jpb+u6Znh8LpY+vM+clkEa3euTpaPkvkCurQEA5YeuJLlb+9qlwGPMpfQLta8DGXZBG+W31lC5gFKOtg4=";

    /// Signature blocks over [`RELEASE`], by key.
    const SIG_A: &str = "iHUEARYIAB0WIQSgAqF76tLmLBD0MoFQdeGfGELZ6QUCaaOBgAAKCRBQdeGfGELZ
6dAsAQD80W3mam3FjUS1HJyUt08bWNI9wCLhnCmv+18DrVEdhwEA9VFZ4vAFMoQz
Y34hUjNjRz4SPT/BgHz62BLlL+Aw9wo=
=ZOhc
";
    const SIG_B: &str = "iHUEARYIAB0WIQSwuBIqIhUBzUu3K9y+7B9YRfVQCgUCaaOBgAAKCRC+7B9YRfVQ
CnrPAQCCVrF25F7dE7tbfmyg0uUpVLGtzdBvWH2BMxIytIjKWQEAlNPSx7E+KiPX
ppax36UMjG9GZphoitsc5uy8RLoWDg8=
=DPgT
";
    const SIG_A_AND_B: &str = "iHUEARYIAB0WIQSgAqF76tLmLBD0MoFQdeGfGELZ6QUCaaOBgAAKCRBQdeGfGELZ
6dAsAQD80W3mam3FjUS1HJyUt08bWNI9wCLhnCmv+18DrVEdhwEA9VFZ4vAFMoQz
Y34hUjNjRz4SPT/BgHz62BLlL+Aw9wqIdQQBFggAHRYhBLC4EioiFQHNS7cr3L7s
H1hF9VAKBQJpo4GAAAoJEL7sH1hF9VAKes8BAIJWsXbkXt0Tu1t+bKDS5SlUsa3N
0G9YfYEzEjK0iMpZAQCU09LHsT4qI9emlrHfpQyMb0ZmmGiK2xzm7LxEuhYODw==
=PFsF
";
    const SIG_C: &str = "iHUEARYIAB0WIQSdFK1xTxiBs65FxpCy5LkLpok6RAUCaaOBgAAKCRCy5LkLpok6
ROiWAP49yN/DI4OjCMX37kwgVezczlBCJbUCrcO8TsA78VZrpQEAtxyGXCz7i9/l
yVRRvvXV9knoctCR0n52IPukjLHnPwc=
=SMLE
";
    const SIG_D: &str = "iHUEARYIAB0WIQRUmCPzH2cEWwig9IcpGzDaAxJRsAUCaaOBgAAKCRApGzDaAxJR
sNwQAP9JKqEP4rre4ZwzU0d5M1m0ihT4lrrvbQmDaDdF8qjLRAEAhIoZbSxl7biP
8LZDPszwOI17JYdN/1M0CzIukA0QUQM=
=+gM4
";
    /// Key A's signature with SHA-1 as its digest.
    const SIG_A_SHA1: &str = "iHUEARYCAB0WIQSgAqF76tLmLBD0MoFQdeGfGELZ6QUCaaOBgAAKCRBQdeGfGELZ
6de5AP9ZpPu4qU/VKHxKHdqBkGJnanqX0alIk9akfoNwcSV3qwD/Vf2X3qtvjjeB
ohwdnZiOGjrzhatBKNTkzS6qovBpzgk=
=0Avr
";

    /// An `InRelease` file: `text` signed with `signature`.
    fn inrelease(hash: &str, text: &str, signature: &str) -> Vec<u8> {
        format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: {hash}\n\n{text}\
             -----BEGIN PGP SIGNATURE-----\n\n{signature}-----END PGP SIGNATURE-----\n"
        )
        .into_bytes()
    }

    fn signed(signature: &str) -> Vec<u8> {
        inrelease("SHA256", RELEASE, signature)
    }

    fn binary_keyring_ab() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(KEYRING_AB)
            .expect("fixture is base64")
    }

    fn verification_reason(result: Result<Release, FeedError>) -> String {
        match result {
            Err(FeedError::Verification { location, reason }) => {
                assert_eq!(location, "test/InRelease");
                reason
            }
            other => panic!("expected a verification error, got {other:?}"),
        }
    }

    #[test]
    fn primary_key_signature_verifies_and_the_signed_text_is_parsed() {
        let release = verify_inrelease("test/InRelease", &signed(SIG_A), KEY_A.as_bytes()).unwrap();
        assert_eq!(release.origin.as_deref(), Some("Patchwell Test"));
        assert_eq!(release.label.as_deref(), Some("Patchwell Test-Security"));
        assert_eq!(release.suite.as_deref(), Some("oldstable-security"));
        assert_eq!(release.codename.as_deref(), Some("bookworm-security"));
        assert_eq!(
            release.date.as_deref(),
            Some("Sun, 01 Mar 2026 00:00:00 UTC")
        );
        assert_eq!(
            release.valid_until.as_deref(),
            Some("Sun, 08 Mar 2026 00:00:00 UTC")
        );
        assert!(release.is_security());
        // The MD5Sum list is not read: only the SHA256 one counts.
        assert_eq!(
            release.sha256,
            vec![
                IndexFile {
                    path: "main/binary-amd64/Packages".into(),
                    size: 562,
                    sha256: "421b54c40d090ddd10d0403b39b8a371e65fe405bb8e7404fb4691bf5a282284"
                        .into(),
                },
                IndexFile {
                    path: "main/binary-all/Packages".into(),
                    size: 0,
                    sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                        .into(),
                },
            ]
        );
        assert_eq!(
            release.signed_by,
            vec![Signer {
                fingerprint: FPR_A.into(),
                primary_fingerprint: FPR_A.into(),
                user_id: Some("Patchwell Test Archive A <a@example.org>".into()),
            }]
        );
    }

    #[test]
    fn subkey_signature_verifies_and_names_the_subkey() {
        let release = verify_inrelease("test/InRelease", &signed(SIG_B), KEY_B.as_bytes()).unwrap();
        assert_eq!(release.signed_by.len(), 1);
        assert_eq!(release.signed_by[0].fingerprint, FPR_B_SUBKEY);
        assert_eq!(release.signed_by[0].primary_fingerprint, FPR_B);
    }

    #[test]
    fn binary_keyring_and_two_signatures() {
        let keyring = binary_keyring_ab();
        let release = verify_inrelease("test/InRelease", &signed(SIG_A_AND_B), &keyring).unwrap();
        let signers: Vec<&str> = release
            .signed_by
            .iter()
            .map(|s| s.fingerprint.as_str())
            .collect();
        assert_eq!(signers, [FPR_A, FPR_B_SUBKEY]);
    }

    #[test]
    fn several_armored_blocks_in_one_keyring() {
        let keyring = format!("{KEY_A}\n{KEY_B}");
        let release =
            verify_inrelease("test/InRelease", &signed(SIG_A_AND_B), keyring.as_bytes()).unwrap();
        assert_eq!(release.signed_by.len(), 2);
    }

    #[test]
    fn one_known_signer_is_enough() {
        // The archive signs with A and B; this keyring only trusts B.
        let release =
            verify_inrelease("test/InRelease", &signed(SIG_A_AND_B), KEY_B.as_bytes()).unwrap();
        let signers: Vec<&str> = release
            .signed_by
            .iter()
            .map(|s| s.fingerprint.as_str())
            .collect();
        assert_eq!(signers, [FPR_B_SUBKEY]);
    }

    #[test]
    fn unknown_key_is_refused() {
        let reason = verification_reason(verify_inrelease(
            "test/InRelease",
            &signed(SIG_A),
            KEY_B.as_bytes(),
        ));
        assert!(reason.contains("no such key in the keyring"), "{reason}");
        assert!(reason.contains(FPR_A), "{reason}");
    }

    #[test]
    fn changed_signed_text_is_refused() {
        let text = RELEASE.replace("Suite: oldstable-security", "Suite: oldstable-securitx");
        let reason = verification_reason(verify_inrelease(
            "test/InRelease",
            &inrelease("SHA256", &text, SIG_A),
            KEY_A.as_bytes(),
        ));
        assert!(
            reason.contains("does not match the signed text"),
            "{reason}"
        );
        // A known key saying no is fatal even when another signature is good.
        let text = RELEASE.replace("562 main/binary-amd64", "563 main/binary-amd64");
        let reason = verification_reason(verify_inrelease(
            "test/InRelease",
            &inrelease("SHA256", &text, SIG_A_AND_B),
            &binary_keyring_ab(),
        ));
        assert!(reason.contains("does not match"), "{reason}");
    }

    #[test]
    fn text_outside_the_signature_is_refused() {
        let mut before = b"Origin: Mallory\n\n".to_vec();
        before.extend(signed(SIG_A));
        let reason = verification_reason(verify_inrelease(
            "test/InRelease",
            &before,
            KEY_A.as_bytes(),
        ));
        assert!(
            reason.contains("not an OpenPGP cleartext-signed message"),
            "{reason}"
        );

        let mut after = signed(SIG_A);
        after.extend(b"SHA256:\n 00 1 main/binary-amd64/Packages\n");
        verification_reason(verify_inrelease("test/InRelease", &after, KEY_A.as_bytes()));
    }

    #[test]
    fn unsigned_release_and_empty_keyring_are_refused() {
        let reason = verification_reason(verify_inrelease(
            "test/InRelease",
            RELEASE.as_bytes(),
            KEY_A.as_bytes(),
        ));
        assert!(
            reason.contains("not an OpenPGP cleartext-signed message"),
            "{reason}"
        );
        let reason = verification_reason(verify_inrelease("test/InRelease", &signed(SIG_A), b""));
        assert!(reason.contains("no OpenPGP public key"), "{reason}");
        let reason = verification_reason(verify_inrelease(
            "test/InRelease",
            &signed(SIG_A),
            b"not a keyring",
        ));
        assert!(reason.contains("keyring"), "{reason}");
    }

    #[test]
    fn expired_and_revoked_keys_are_refused() {
        let reason = verification_reason(verify_inrelease(
            "test/InRelease",
            &signed(SIG_C),
            KEY_C_EXPIRED.as_bytes(),
        ));
        assert!(reason.contains("expired at 2025-06-01"), "{reason}");
        let reason = verification_reason(verify_inrelease(
            "test/InRelease",
            &signed(SIG_D),
            KEY_D_REVOKED.as_bytes(),
        ));
        assert!(reason.contains("revoked"), "{reason}");
    }

    #[test]
    fn weak_digest_is_refused() {
        let reason = verification_reason(verify_inrelease(
            "test/InRelease",
            &inrelease("SHA1", RELEASE, SIG_A_SHA1),
            KEY_A.as_bytes(),
        ));
        assert!(reason.contains("SHA1 is too weak"), "{reason}");
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error_not_a_panic() {
        let keyring = binary_keyring_ab();
        let message = signed(SIG_A_AND_B);
        for cut in (0..keyring.len()).step_by(7) {
            // A cut keyring may still hold key A whole; it must never panic.
            let _ = verify_inrelease("test/InRelease", &message, &keyring[..cut]);
        }
        for cut in (0..message.len()).step_by(5) {
            let result = verify_inrelease("test/InRelease", &message[..cut], &keyring);
            assert!(result.is_err(), "cut at {cut} of {}", message.len());
        }
        let mut noise = Vec::new();
        let mut state = 0x2545_f491_u32;
        for _ in 0..4096 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            noise.push(state as u8);
        }
        let short: &[u8] = b"\x99\x01\x0d";
        for garbage in [&noise[..], short, &[0xff; 64], &message] {
            let reason = verification_reason(verify_inrelease("test/InRelease", &message, garbage));
            assert!(reason.contains("keyring"), "{reason}");
        }
        for garbage in [&noise[..], short, &[0xff; 64], KEY_A.as_bytes()] {
            verification_reason(verify_inrelease("test/InRelease", garbage, &keyring));
        }
    }

    #[test]
    fn index_must_match_size_and_sum() {
        // The signature is not the point here: the release lists the sums
        // of PACKAGES, and the signed fixtures do not.
        let listed = format!(
            " {} {} main/binary-amd64/Packages\n",
            hex(&Sha256::digest(PACKAGES.as_bytes())),
            PACKAGES.len()
        );
        let text = RELEASE.replace(
            " 421b54c40d090ddd10d0403b39b8a371e65fe405bb8e7404fb4691bf5a282284      562 main/binary-amd64/Packages\n",
            &listed,
        );
        assert_ne!(text, RELEASE);
        let release = parse_release("Release", &text).unwrap();
        let path = "main/binary-amd64/Packages";
        check_index(&release, "test/Packages", path, PACKAGES.as_bytes()).unwrap();
        check_index(&release, "test/Packages", "main/binary-all/Packages", b"").unwrap();

        let mut changed = PACKAGES.as_bytes().to_vec();
        changed[10] ^= 1;
        let err = check_index(&release, "test/Packages", path, &changed).unwrap_err();
        assert!(err.to_string().contains("has SHA-256"), "{err}");
        let err = check_index(&release, "test/Packages", path, &changed[1..]).unwrap_err();
        let shorter = format!("{} bytes", PACKAGES.len() - 1);
        assert!(err.to_string().contains(&shorter), "{err}");
        let err =
            check_index(&release, "test/Packages", "main/binary-i386/Packages", b"").unwrap_err();
        assert!(err.to_string().contains("not listed"), "{err}");
        let err = check_index(&Release::default(), "test/Packages", path, b"").unwrap_err();
        assert!(err.to_string().contains("lists no SHA256 sums"), "{err}");
    }

    #[test]
    fn release_parsing_refuses_malformed_sums() {
        for (text, expected) in [
            ("SHA256:\n 12 34 a\n", "is not a SHA-256"),
            (
                "SHA256:\n 421b54c40d090ddd10d0403b39b8a371e65fe405bb8e7404fb4691bf5a282284 x a\n",
                "size",
            ),
            (
                "SHA256:\n 421b54c40d090ddd10d0403b39b8a371e65fe405bb8e7404fb4691bf5a282284 1\n",
                "<sha256>",
            ),
            ("Suite: a\nSuite: b\n", "appears twice"),
            ("Suite: a\n\nSuite: b\n", "more than one paragraph"),
            ("no colon here\n", "not a field"),
            ("", "empty"),
        ] {
            match parse_release("Release", text) {
                Err(FeedError::Format { reason, .. }) => {
                    assert!(reason.contains(expected), "{text:?}: {reason}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let release = parse_release("Release", "Suite: stable\r\nCodename: bookworm\r\n").unwrap();
        assert!(!release.is_security());
        assert!(release.sha256.is_empty());
    }

    #[test]
    fn packages_index() {
        let parsed = parse_packages("Packages", PACKAGES);
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let summary: Vec<_> = parsed
            .items
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.arch.as_str(),
                    p.source.as_str(),
                    p.source_version.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("hello", "2.10-3", "amd64", "hello", "2.10-3"),
                (
                    "libssl3",
                    "3.0.15-1~deb12u1+b1",
                    "amd64",
                    "openssl",
                    "3.0.15-1~deb12u1"
                ),
                (
                    "tzdata",
                    "2025b-0+deb12u1",
                    "all",
                    "tzdata",
                    "2025b-0+deb12u1"
                ),
            ]
        );
    }

    #[test]
    fn bad_stanzas_are_rejected_and_the_rest_read() {
        let text = "Version: 1.0\nArchitecture: amd64\n\n\
                    Package: bad-version\nVersion: 1.0 beta\nArchitecture: amd64\n\n\
                    Package: no-version\nArchitecture: amd64\n\n\
                    Package: bad-source\nSource: foo (1.0\nVersion: 1.0\nArchitecture: amd64\n\n\
                    Package: bad-line\nthis is not a field\nVersion: 1.0\nArchitecture: amd64\n\n\
                    Package: good\nVersion: 1:2.0-1\nArchitecture: arm64\n";
        let parsed = parse_packages("Packages", text);
        assert_eq!(parsed.items.len(), 1);
        assert_eq!(parsed.items[0].name, "good");
        let rejected: Vec<(&str, &str)> = parsed
            .rejected
            .iter()
            .map(|r| (r.record.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(rejected.len(), 5, "{rejected:?}");
        assert_eq!(rejected[0], ("stanza at line 1", "no Package field"));
        assert_eq!(rejected[1].0, "bad-version");
        assert!(
            rejected[1].1.contains("invalid deb version"),
            "{}",
            rejected[1].1
        );
        assert_eq!(rejected[2], ("no-version", "no Version field"));
        assert_eq!(rejected[3].0, "bad-source");
        assert_eq!(rejected[4].0, "bad-line");
        assert!(rejected[4].1.contains("line 17"), "{}", rejected[4].1);
        assert!(parsed.rejected.iter().all(|r| r.file == "Packages"));
    }
}
