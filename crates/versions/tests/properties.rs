//! Property tests: each ecosystem's order is a total order, the direct string
//! comparison agrees with the sort keys, equality agrees with hashing, and no
//! input at all makes a parser panic.

use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use proptest::prelude::*;
use versions::{apk, deb, rpm, Ecosystem};

/// Deb versions from a small alphabet, so that ties, `~` and letters meet often.
fn deb_version() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop_oneof![Just("0"), Just("1"), Just("2"), Just("00")]),
        "[0-9][0-9aZ~+.]{0,7}",
        prop::option::of("[0-9aZ~+.]{1,5}"),
    )
        .prop_map(|(epoch, upstream, revision)| {
            let mut s = String::new();
            if let Some(e) = epoch {
                s.push_str(e);
                s.push(':');
            }
            s.push_str(&upstream);
            if let Some(r) = revision {
                s.push('-');
                s.push_str(&r);
            }
            s
        })
}

/// Rpm EVRs from a small alphabet with `~`, `^` and separators.
fn rpm_version() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop_oneof![Just("0"), Just("1"), Just("01"), Just("")]),
        "[0-9aZ~^._+]{1,8}",
        prop::option::of("[0-9aZ~^._]{1,5}"),
    )
        .prop_map(|(epoch, version, release)| {
            let mut s = String::new();
            if let Some(e) = epoch {
                s.push_str(e);
                s.push(':');
            }
            s.push_str(&version);
            if let Some(r) = release {
                s.push('-');
                s.push_str(&r);
            }
            s
        })
        .prop_filter("valid rpm", |s| rpm::validate(s).is_ok())
}

/// Apk versions built from the grammar's parts.
fn apk_version() -> impl Strategy<Value = String> {
    let suffix = prop_oneof![
        Just("_alpha"),
        Just("_beta"),
        Just("_pre"),
        Just("_rc"),
        Just("_cvs"),
        Just("_svn"),
        Just("_git"),
        Just("_hg"),
        Just("_p")
    ];
    (
        "[0-9]{1,2}",
        prop::collection::vec("\\.[0-9]{1,3}", 0..3),
        prop::option::of("[a-c]"),
        prop::collection::vec((suffix, prop::option::of("[0-9]{1,2}")), 0..3),
        prop::option::of("~[0-9a-fA-F]{1,3}"),
        prop::option::of("-r[0-9]{1,2}"),
    )
        .prop_map(|(first, dots, letter, suffixes, hash, rev)| {
            let mut s = first;
            s.extend(dots);
            s.extend(letter);
            for (suffix, number) in suffixes {
                s.push_str(suffix);
                s.extend(number);
            }
            s.extend(hash);
            s.extend(rev);
            s
        })
}

fn hash_of<T: Hash>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Checks every law on a list of versions of one ecosystem: the direct
/// comparison matches the key order on every pair (so it is a total order too),
/// it is antisymmetric and reflexive, and equal versions hash equal.
fn check_laws<V: Ord + Hash + std::fmt::Display>(
    ecosystem: Ecosystem,
    texts: &[String],
    parse: impl Fn(&str) -> V,
) -> Result<(), TestCaseError> {
    let mut parsed: Vec<V> = texts.iter().map(|t| parse(t)).collect();
    parsed.sort();
    for (i, a) in parsed.iter().enumerate() {
        let a_text = a.to_string();
        prop_assert_eq!(
            versions::compare(ecosystem, &a_text, &a_text).unwrap(),
            Ordering::Equal
        );
        for b in &parsed[i..] {
            let b_text = b.to_string();
            let direct = versions::compare(ecosystem, &a_text, &b_text).unwrap();
            let reverse = versions::compare(ecosystem, &b_text, &a_text).unwrap();
            prop_assert_eq!(
                direct,
                a.cmp(b),
                "direct vs key on {} and {}",
                a_text,
                b_text
            );
            prop_assert_ne!(
                direct,
                Ordering::Greater,
                "sorted {} before {}",
                a_text,
                b_text
            );
            prop_assert_eq!(
                reverse,
                direct.reverse(),
                "antisymmetry on {} and {}",
                a_text,
                b_text
            );
            if direct == Ordering::Equal {
                prop_assert_eq!(
                    hash_of(a),
                    hash_of(b),
                    "equal but hash differently: {} {}",
                    a_text,
                    b_text
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn deb_is_a_total_order(texts in prop::collection::vec(deb_version(), 2..40)) {
        check_laws(Ecosystem::Deb, &texts, |t| deb::Version::parse(t).unwrap())?;
    }

    #[test]
    fn rpm_is_a_total_order(texts in prop::collection::vec(rpm_version(), 2..40)) {
        check_laws(Ecosystem::Rpm, &texts, |t| rpm::Version::parse(t).unwrap())?;
    }

    #[test]
    fn apk_is_a_total_order(texts in prop::collection::vec(apk_version(), 2..40)) {
        check_laws(Ecosystem::Apk, &texts, |t| apk::Version::parse(t).unwrap())?;
    }

    #[test]
    fn display_keeps_the_original_text(text in deb_version(), r in rpm_version(), a in apk_version()) {
        prop_assert_eq!(deb::Version::parse(&text).unwrap().to_string(), text);
        prop_assert_eq!(rpm::Version::parse(&r).unwrap().to_string(), r);
        prop_assert_eq!(apk::Version::parse(&a).unwrap().to_string(), a);
    }

    /// Any string at all: parsing never panics, parse and validate agree, and a
    /// rejected string's error names it.
    #[test]
    fn arbitrary_input_never_panics(text in prop_oneof!["[ -~]{0,12}", ".{0,12}", "[0-9.:~^_+-]{0,10}"]) {
        for ecosystem in Ecosystem::ALL {
            let valid = versions::validate(ecosystem, &text);
            let parsed_ok = match ecosystem {
                Ecosystem::Deb => deb::Version::parse(&text).is_ok(),
                Ecosystem::Rpm => rpm::Version::parse(&text).is_ok(),
                Ecosystem::Apk => apk::Version::parse(&text).is_ok(),
            };
            prop_assert_eq!(valid.is_ok(), parsed_ok);
            if let Err(e) = valid {
                prop_assert_eq!(&e.version, &text);
                prop_assert!(e.to_string().contains(ecosystem.name()));
            }
        }
    }
}
