//! Fuzz the deb parser: no input panics; parse and validate agree; the
//! direct comparison agrees with the sort keys and is antisymmetric; display
//! gives back the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use versions::deb;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The input is one version, or two separated by a tab.
    let (a, b) = text.split_once('\t').unwrap_or((text, text));
    let (pa, pb) = (deb::Version::parse(a), deb::Version::parse(b));
    assert_eq!(pa.is_ok(), deb::validate(a).is_ok());
    assert_eq!(pb.is_ok(), deb::validate(b).is_ok());
    if let (Ok(pa), Ok(pb)) = (pa, pb) {
        assert_eq!(pa.to_string(), a);
        let direct = deb::compare_str(a, b).expect("both valid");
        assert_eq!(direct, pa.cmp(&pb), "direct and keyed disagree on {a:?} {b:?}");
        assert_eq!(deb::compare_str(b, a).expect("both valid"), direct.reverse());
    }
});
