//! A streaming reader of deb822 paragraphs (the dpkg database, apt's
//! `Packages` and `Release` files), keeping only the fields asked for.
//!
//! apt's lists reach tens of megabytes, so nothing is kept but the current
//! paragraph's wanted fields, and nothing is allocated for the rest.

use std::io::{self, BufRead};

/// Reads paragraphs from `reader`, one at a time.
pub(crate) struct Paragraphs<R> {
    reader: R,
    line: String,
    line_number: usize,
}

impl<R: BufRead> Paragraphs<R> {
    pub(crate) fn new(reader: R) -> Self {
        Paragraphs {
            reader,
            line: String::new(),
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
            if self.reader.read_line(&mut self.line)? == 0 {
                return Ok(start);
            }
            self.line_number += 1;
            let line = self.line.trim_end_matches(['\n', '\r']);
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

#[cfg(test)]
mod tests {
    use super::*;

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
