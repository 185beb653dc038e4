//! Building blocks of the sort keys: order-preserving, prefix-free encodings.
//!
//! Each piece of a key is *prefix-free* (no encoding is a proper prefix of
//! another), so comparing two concatenations byte by byte compares them piece by
//! piece: that is what lets a whole version's key be one `memcmp`.

/// Appends a run of ASCII digits as a number of unbounded size: the count of
/// significant digits, then the digits. Leading zeros are dropped, so `007` and
/// `7` encode the same; a shorter number (fewer significant digits) is smaller.
pub(crate) fn push_decimal(out: &mut Vec<u8>, digits: &[u8]) {
    let start = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    let significant = &digits[start..];
    match u8::try_from(significant.len()) {
        Ok(len) if len < u8::MAX => out.push(len),
        _ => {
            // A number of 255 digits or more: a marker above every short length,
            // then the length itself, wide enough for any string that fits in memory.
            out.push(u8::MAX);
            out.extend_from_slice(&(significant.len() as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(significant);
}

/// Compares two runs of ASCII digits as unbounded numbers, as dpkg and rpm do:
/// leading zeros do not count, more significant digits win, then digit by digit.
pub(crate) fn cmp_decimal(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let a = &a[a.iter().position(|&d| d != b'0').unwrap_or(a.len())..];
    let b = &b[b.iter().position(|&d| d != b'0').unwrap_or(b.len())..];
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(d: &str) -> Vec<u8> {
        let mut v = Vec::new();
        push_decimal(&mut v, d.as_bytes());
        v
    }

    #[test]
    fn decimal_keys_order_as_numbers() {
        let numbers = [
            "",
            "0",
            "00",
            "1",
            "01",
            "9",
            "10",
            "099",
            "100",
            "18446744073709551616",
        ];
        for a in numbers {
            for b in numbers {
                assert_eq!(
                    enc(a).cmp(&enc(b)),
                    cmp_decimal(a.as_bytes(), b.as_bytes()),
                    "{a} vs {b}"
                );
            }
        }
        let long_a = "1".repeat(300);
        let long_b = format!("2{}", "0".repeat(299));
        assert!(enc(&long_a) < enc(&long_b));
        assert!(enc(&"9".repeat(254)) < enc(&long_a));
    }
}
