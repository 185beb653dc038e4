//! The apt module against this machine's own apt metadata: the `InRelease`
//! files apt downloaded into `/var/lib/apt/lists`, the Debian archive
//! keyrings in `/usr/share/keyrings`, and the `Packages` indexes apt keeps
//! there recompressed with lz4.
//!
//! On a machine without them (not Debian, or apt lists cleaned) the tests
//! say so and pass, except under `CI=true`, where the image is expected to
//! have them and their absence is a failure.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use feeds::apt::{check_index, parse_packages, verify_inrelease, Release};
use feeds::FeedError;

const LISTS: &str = "/var/lib/apt/lists";
const ARCHIVE_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const INDEX: &str = "main/binary-amd64/Packages";

/// The `InRelease` files of this machine, or None (after saying why) when
/// the test cannot run here.
fn inrelease_files() -> Option<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(LISTS)
        .map(|dir| {
            dir.filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.to_string_lossy().ends_with("_InRelease"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let missing = if files.is_empty() {
        Some(format!("{LISTS} holds no InRelease file"))
    } else if !Path::new(ARCHIVE_KEYRING).exists() {
        Some(format!("{ARCHIVE_KEYRING} does not exist"))
    } else {
        None
    };
    match missing {
        None => Some(files),
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{why}, and CI=true says this machine must have apt metadata")
        }
        Some(why) => {
            println!("skipped: {why}; run `apt-get update` on a Debian machine to test this");
            None
        }
    }
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let path = path.as_ref();
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn verify(path: &Path, keyring: &[u8]) -> Result<Release, FeedError> {
    verify_inrelease(&path.display().to_string(), &read(path), keyring)
}

fn verification_reason(result: Result<Release, FeedError>) -> String {
    match result {
        Err(FeedError::Verification { reason, .. }) => reason,
        other => panic!("expected a verification error, got {other:?}"),
    }
}

#[test]
fn every_inrelease_verifies_against_the_archive_keyring() {
    let Some(files) = inrelease_files() else {
        return;
    };
    let keyring = read(ARCHIVE_KEYRING);
    let mut security = 0;
    for path in &files {
        let started = Instant::now();
        let release = verify(path, &keyring).unwrap_or_else(|e| panic!("{e}"));
        let elapsed = started.elapsed();
        println!(
            "{}: suite {:?}, codename {:?}, {} sums, verified in {elapsed:.1?} by {:?}",
            path.display(),
            release.suite,
            release.codename,
            release.sha256.len(),
            release
                .signed_by
                .iter()
                .map(|s| format!(
                    "{} ({})",
                    s.fingerprint,
                    s.user_id.as_deref().unwrap_or("-")
                ))
                .collect::<Vec<_>>()
        );
        assert!(!release.signed_by.is_empty());
        assert_eq!(release.origin.as_deref(), Some("Debian"));
        assert!(
            release.sha256.iter().any(|f| f.path == INDEX),
            "{} lists no {INDEX}",
            path.display()
        );
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        assert_eq!(
            release.is_security(),
            name.contains("-security_"),
            "{}: suite {:?} codename {:?}",
            path.display(),
            release.suite,
            release.codename
        );
        if release.is_security() {
            security += 1;
            assert!(
                release.valid_until.is_some(),
                "a security suite says until when it is fresh"
            );
        }
    }
    println!(
        "{} InRelease files verified, {security} of them security suites",
        files.len()
    );
}

#[test]
fn one_changed_byte_of_signed_text_fails() {
    let Some(files) = inrelease_files() else {
        return;
    };
    let keyring = read(ARCHIVE_KEYRING);
    for path in &files {
        let original = read(path);
        // Change a digit of the first SHA256 sum, well inside the signed text.
        let at = find(&original, b"\nSHA256:\n ").map(|i| i + b"\nSHA256:\n ".len());
        let at = at.unwrap_or_else(|| panic!("{}: no SHA256 list", path.display()));
        let mut changed = original.clone();
        changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
        let reason = verification_reason(verify_inrelease("changed", &changed, &keyring));
        assert!(
            reason.contains("does not match the signed text"),
            "{}: {reason}",
            path.display()
        );
    }
}

#[test]
fn empty_or_unrelated_keyring_fails() {
    let Some(files) = inrelease_files() else {
        return;
    };
    let unrelated = [
        "/usr/share/keyrings/nodesource.gpg",
        "/usr/share/keyrings/debian-archive-removed-keys.gpg",
    ]
    .into_iter()
    .find(|path| Path::new(path).exists())
    .map(read);
    for path in &files {
        let reason = verification_reason(verify(path, b""));
        assert!(reason.contains("no OpenPGP public key"), "{reason}");
        if let Some(unrelated) = &unrelated {
            let reason = verification_reason(verify(path, unrelated));
            assert!(
                reason.contains("no such key in the keyring"),
                "{}: {reason}",
                path.display()
            );
        }
    }
}

#[test]
fn per_release_keyrings_trust_only_their_own_archive() {
    let Some(files) = inrelease_files() else {
        return;
    };
    let security_keyring = "/usr/share/keyrings/debian-archive-bookworm-security-automatic.gpg";
    if !Path::new(security_keyring).exists() {
        println!("skipped: {security_keyring} does not exist");
        return;
    }
    let security_keyring = read(security_keyring);
    for path in &files {
        let name = path.to_string_lossy();
        if name.contains("bookworm-security_") {
            let release = verify(path, &security_keyring).unwrap_or_else(|e| panic!("{e}"));
            assert!(release.is_security());
        } else if name.contains("_bookworm_") || name.contains("_bookworm-updates_") {
            // The main archive is not signed by the security archive's key.
            verification_reason(verify(path, &security_keyring));
        }
    }
}

#[test]
fn local_packages_indexes_match_their_release() {
    let Some(files) = inrelease_files() else {
        return;
    };
    let keyring = read(ARCHIVE_KEYRING);
    let mut checked = 0;
    for path in &files {
        let lz4 = path
            .to_string_lossy()
            .replace("_InRelease", "_main_binary-amd64_Packages.lz4");
        if !Path::new(&lz4).exists() {
            println!("{}: no {lz4}", path.display());
            continue;
        }
        let release = verify(path, &keyring).unwrap_or_else(|e| panic!("{e}"));
        let mut packages = Vec::new();
        lz4_flex::frame::FrameDecoder::new(read(&lz4).as_slice())
            .read_to_end(&mut packages)
            .unwrap_or_else(|e| panic!("{lz4}: {e}"));

        let started = Instant::now();
        check_index(&release, &lz4, INDEX, &packages).unwrap_or_else(|e| panic!("{e}"));
        let checked_in = started.elapsed();

        let mut changed = packages.clone();
        let middle = changed.len() / 2;
        changed[middle] ^= 0x20;
        let err = check_index(&release, &lz4, INDEX, &changed).unwrap_err();
        assert!(err.to_string().contains("has SHA-256"), "{err}");
        changed.push(b'\n');
        let err = check_index(&release, &lz4, INDEX, &changed).unwrap_err();
        assert!(err.to_string().contains("bytes"), "{err}");

        let started = Instant::now();
        let text = String::from_utf8(packages).unwrap_or_else(|e| panic!("{lz4}: {e}"));
        let parsed = parse_packages(&lz4, &text);
        println!(
            "{lz4}: {} bytes checked in {checked_in:.1?}, {} packages read in {:.1?}",
            text.len(),
            parsed.items.len(),
            started.elapsed()
        );
        assert!(
            parsed.rejected.is_empty(),
            "{:?}",
            &parsed.rejected[..parsed.rejected.len().min(5)]
        );
        assert!(!parsed.items.is_empty());
        checked += 1;
    }
    assert!(
        checked > 0,
        "no Packages.lz4 next to any InRelease in {LISTS}"
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
