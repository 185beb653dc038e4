//! A streaming reader of deb822 paragraphs (the dpkg database, apt's
//! `Packages` and `Release` files), keeping only the fields asked for.
//!
//! apt's lists reach tens of megabytes, so nothing is kept but the current
//! paragraph's wanted fields, and nothing is allocated for the rest.

use std::io::{self, BufRead, Read};

/// Reads paragraphs from `reader`, one at a time.
pub(crate) struct Paragraphs<R> {
    reader: R,
    line: Vec<u8>,
    line_number: usize,
}

impl<R: BufRead> Paragraphs<R> {
    pub(crate) fn new(reader: R) -> Self {
        Paragraphs {
            reader,
            line: Vec::new(),
            line_number: 0,
        }
    }

    /// Fills `values[i]` with the value of field `fields[i]` of the next
    /// paragraph (or `None` when it has no such field), and returns the line
    /// number the paragraph starts on; `None` at the end of the input.
    /// Continuation lines belong to multi-line fields, which are never wanted.
    pub(crate) fn next_into(
        &mut self,
        fields: &[&str],
        values: &mut [Option<String>],
    ) -> io::Result<Option<usize>> {
        values.iter_mut().for_each(|v| *v = None);
        let mut start = None;
        loop {
            self.line.clear();
            if self.reader.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(start);
            }
            self.line_number += 1;
            // Bytes that are not UTF-8 (a Latin-1 description) must not
            // stop the reading: they are replaced, and the fields wanted are
            // ASCII anyway.
            let text = String::from_utf8_lossy(&self.line);
            let line = text.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                if start.is_some() {
                    return Ok(start);
                }
                continue;
            }
            start.get_or_insert(self.line_number);
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if let Some(i) = fields.iter().position(|f| f.eq_ignore_ascii_case(name)) {
                values[i] = Some(value.trim().to_owned());
            }
        }
    }
}

/// Reads paragraphs fast, for apt's lists of tens of megabytes: the input
/// is read in large blocks and scanned as bytes, and a paragraph whose
/// first wanted field fails `keep` (a package nobody has installed) is
/// skipped to its end without looking at its other lines. `each` gets the
/// paragraph's wanted fields. (Lines are not counted: that alone would
/// cost as much as the rest of the scan; messages name the package.)
pub(crate) fn scan<R: Read, const N: usize>(
    mut reader: R,
    fields: [&str; N],
    keep: impl Fn(&str) -> bool,
    mut each: impl FnMut([Option<&str>; N]),
) -> io::Result<()> {
    const BLOCK: usize = 1 << 20;
    let mut buf: Vec<u8> = Vec::with_capacity(2 * BLOCK);
    let mut eof = false;
    while !eof {
        // Appends up to a block, without zeroing memory first.
        let n = reader.by_ref().take(BLOCK as u64).read_to_end(&mut buf)?;
        eof = n == 0;
        // Whole paragraphs only, unless the input has ended.
        let end = if eof {
            buf.len()
        } else {
            match memchr::memmem::rfind(&buf, b"\n\n") {
                Some(at) => at + 2,
                None => continue,
            }
        };
        let mut at = 0;
        while at < end {
            let para_end = memchr::memmem::find(&buf[at..end], b"\n\n").map_or(end, |i| at + i + 1);
            let paragraph = &buf[at..para_end];
            let mut values: [Option<&str>; N] = [None; N];
            let mut skipped = false;
            for line in paragraph.split(|&b| b == b'\n') {
                if line.first().is_none_or(|b| *b == b' ' || *b == b'\t') {
                    continue;
                }
                let Some(colon) = memchr::memchr(b':', line) else {
                    continue;
                };
                let (name, value) = (&line[..colon], &line[colon + 1..]);
                let Some(i) = fields
                    .iter()
                    .position(|f| f.as_bytes().eq_ignore_ascii_case(name))
                else {
                    continue;
                };
                let value = std::str::from_utf8(value).unwrap_or("").trim();
                if i == 0 && !keep(value) {
                    skipped = true;
                    break;
                }
                values[i] = Some(value);
            }
            let blank = paragraph.iter().all(|b| b.is_ascii_whitespace());
            if !skipped && !blank {
                each(values);
            }
            at = para_end;
            while at < end && buf[at] == b'\n' {
                at += 1;
            }
        }
        buf.drain(..end);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_scan_reads_wanted_fields_and_skips_unwanted_packages() {
        let text = "\n\nPackage: a\nDescription: x\n more\nVersion: 1\n\n\n\
                    Package: skip-me\nVersion: 9\n\nPackage: b\r\nversion: 2\n";
        let mut seen = Vec::new();
        scan(
            text.as_bytes(),
            ["Package", "Version"],
            |p| p != "skip-me",
            |v| seen.push(v.map(|x| x.map(str::to_owned))),
        )
        .unwrap();
        assert_eq!(
            seen,
            [
                [Some("a".to_owned()), Some("1".to_owned())],
                [Some("b".to_owned()), Some("2".to_owned())],
            ]
        );
        // Paragraphs that straddle the reader's blocks come out whole.
        let big: String = (0..200_000)
            .map(|i| format!("Package: p{i}\nVersion: {i}\n\n"))
            .collect();
        let mut count = 0;
        let mut last = None;
        scan(
            big.as_bytes(),
            ["Package", "Version"],
            |_| true,
            |v| {
                count += 1;
                last = v[1].map(str::to_owned);
            },
        )
        .unwrap();
        assert_eq!(count, 200_000);
        assert_eq!(last.as_deref(), Some("199999"));
    }

    #[test]
    fn a_line_that_is_not_utf8_does_not_stop_the_reader() {
        let text: &[u8] =
            b"Package: a\nDescription: caf\xe9\nVersion: 1\n\nPackage: b\nVersion: 2\n";
        let mut p = Paragraphs::new(text);
        let mut v = vec![None, None];
        p.next_into(&["Package", "Version"], &mut v).unwrap();
        assert_eq!(v, [Some("a".into()), Some("1".into())]);
        p.next_into(&["Package", "Version"], &mut v).unwrap();
        assert_eq!(v, [Some("b".into()), Some("2".into())]);
    }

    #[test]
    fn reads_wanted_fields_and_skips_continuations() {
        let text = "Package: a\nDescription: x\n more\n .\nVersion: 1\n\n\n\
                    Package: b\nversion: 2\r\n";
        let mut p = Paragraphs::new(text.as_bytes());
        let mut v = vec![None, None];
        assert_eq!(
            p.next_into(&["Package", "Version"], &mut v).unwrap(),
            Some(1)
        );
        assert_eq!(v, [Some("a".into()), Some("1".into())]);
        assert_eq!(
            p.next_into(&["Package", "Version"], &mut v).unwrap(),
            Some(8)
        );
        assert_eq!(v, [Some("b".into()), Some("2".into())]);
        assert_eq!(p.next_into(&["Package", "Version"], &mut v).unwrap(), None);
    }
}
