//! FIRST's Exploit Prediction Scoring System scores (`epss_scores-*.csv`,
//! after decompression): the probability that each CVE is exploited in the
//! next 30 days, and its percentile.
//!
//! ```text
//! #model_version:v2023.03.01,score_date:2023-03-14T00:00:00+0000
//! cve,epss,percentile
//! CVE-2023-0001,0.00045,0.12345
//! ```
//!
//! A key design decision made in this module is that the header is checked
//! and every value is range-checked: a file whose columns are not `cve`,
//! `epss`, `percentile` is not trusted at all ([`FeedError::Format`]), and a
//! row with a probability outside 0..=1 (or `NaN`) is rejected rather than
//! clamped, since a wrong score would silently reorder a remediation queue.

use std::collections::HashMap;

use patchwell_core::advisory::Epss;

use crate::kev::is_cve_id;
use crate::{rejected, FeedError, Parsed};

/// The format's name in errors.
const FORMAT: &str = "EPSS CSV";

/// The columns, in order.
const HEADER: [&str; 3] = ["cve", "epss", "percentile"];

/// An EPSS scores file.
#[derive(Debug)]
pub struct EpssScores {
    /// The model that produced the scores (`v2023.03.01`), from the comment
    /// line, when present.
    pub model_version: Option<String>,
    /// The day scored (`2023-03-14T00:00:00+0000`), as written, when present.
    pub score_date: Option<String>,
    /// The scores by CVE, and the rows rejected.
    pub scores: Parsed<(String, Epss)>,
}

/// Parses an EPSS CSV file.
///
/// Comment lines (`#...`) before the header are read for the model version
/// and score date. A missing or different header is [`FeedError::Format`].
/// A row is rejected, as `line N: CVE-...`, when it does not have three
/// fields, its CVE id is malformed, a value is not a number within 0..=1, or
/// its CVE was already scored in the file.
pub fn parse(file: &str, text: &str) -> Result<EpssScores, FeedError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let format_error = |reason: String| FeedError::Format {
        file: file.to_owned(),
        format: FORMAT,
        reason,
    };
    let mut model_version = None;
    let mut score_date = None;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty());

    let header = loop {
        match lines.next() {
            Some((_, line)) if line.starts_with('#') => {
                let comment = line.trim_start_matches('#');
                for pair in comment.split(',') {
                    if let Some((key, value)) = pair.split_once(':') {
                        let value = Some(value.trim().to_owned());
                        match key.trim() {
                            "model_version" => model_version = value,
                            "score_date" => score_date = value,
                            _ => {}
                        }
                    }
                }
            }
            Some((_, line)) => break line,
            None => return Err(format_error("no header line".to_owned())),
        }
    };
    let columns: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    if columns != HEADER {
        return Err(format_error(format!(
            "header is {header:?}, expected \"cve,epss,percentile\""
        )));
    }

    let mut scores = Parsed {
        items: Vec::new(),
        rejected: Vec::new(),
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (number, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let cve = fields.first().copied().unwrap_or_default();
        let record = format!("line {number}: {cve}");
        match read_row(&fields) {
            Ok(epss) => {
                if let Some(first) = seen.get(cve) {
                    scores.rejected.push(rejected(
                        file,
                        record,
                        format!("{cve} is scored twice, first on line {first}"),
                    ));
                } else {
                    seen.insert(cve.to_owned(), number);
                    scores.items.push((cve.to_owned(), epss));
                }
            }
            Err(reason) => scores.rejected.push(rejected(file, record, reason)),
        }
    }
    Ok(EpssScores {
        model_version,
        score_date,
        scores,
    })
}

/// Reads `CVE-2023-0001`, `0.00045`, `0.12345`.
fn read_row(fields: &[&str]) -> Result<Epss, String> {
    let [cve, score, percentile] = fields else {
        return Err(format!("{} fields, expected 3", fields.len()));
    };
    if !is_cve_id(cve) {
        return Err(format!("{cve:?} is not a CVE id such as CVE-2023-0001"));
    }
    let probability = |name: &str, text: &str| -> Result<f64, String> {
        let value: f64 = text
            .parse()
            .map_err(|_| format!("{name} {text:?} is not a number"))?;
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(format!("{name} {text} is not within 0 to 1"))
        }
    };
    Ok(Epss {
        score: probability("epss", score)?,
        percentile: probability("percentile", percentile)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
#model_version:v2023.03.01,score_date:2023-03-14T00:00:00+0000
cve,epss,percentile
CVE-2023-0001,0.00045,0.12345
CVE-1999-0001,0.0109,0.83194
CVE-2021-44228,0.97565,0.99996
";

    #[test]
    fn scores_are_read_with_the_model_and_date() {
        let scores = parse("epss.csv", SAMPLE).unwrap();
        assert_eq!(scores.model_version.as_deref(), Some("v2023.03.01"));
        assert_eq!(
            scores.score_date.as_deref(),
            Some("2023-03-14T00:00:00+0000")
        );
        assert!(scores.scores.rejected.is_empty());
        assert_eq!(scores.scores.items.len(), 3);
        assert_eq!(
            scores.scores.items[0],
            (
                "CVE-2023-0001".to_owned(),
                Epss {
                    score: 0.00045,
                    percentile: 0.12345
                }
            )
        );
        assert_eq!(scores.scores.items[2].1.score, 0.97565);
    }

    #[test]
    fn the_comment_line_is_optional_and_crlf_is_fine() {
        let scores = parse("epss.csv", "cve,epss,percentile\r\nCVE-2023-0001,0,1\r\n").unwrap();
        assert_eq!(scores.model_version, None);
        assert_eq!(scores.score_date, None);
        assert_eq!(
            scores.scores.items[0].1,
            Epss {
                score: 0.0,
                percentile: 1.0
            }
        );
    }

    #[test]
    fn bad_rows_are_rejected_with_line_and_cve() {
        let text = "\
cve,epss,percentile
CVE-2023-0001,0.5,0.5
CVE-2023-0002,1.5,0.5
CVE-2023-0003,0.5,-0.1
CVE-2023-0004,NaN,0.5
CVE-2023-0005,abc,0.5
CVE-23-0006,0.5,0.5
CVE-2023-0007,0.5
CVE-2023-0001,0.4,0.4

CVE-2023-0008,0.25,0.75,extra
CVE-2023-0009,0.25,0.75
";
        let scores = parse("epss.csv", text).unwrap();
        let good: Vec<&str> = scores
            .scores
            .items
            .iter()
            .map(|(c, _)| c.as_str())
            .collect();
        assert_eq!(good, ["CVE-2023-0001", "CVE-2023-0009"]);
        let rejected: Vec<&str> = scores
            .scores
            .rejected
            .iter()
            .map(|r| r.record.as_str())
            .collect();
        assert_eq!(
            rejected,
            [
                "line 3: CVE-2023-0002",
                "line 4: CVE-2023-0003",
                "line 5: CVE-2023-0004",
                "line 6: CVE-2023-0005",
                "line 7: CVE-23-0006",
                "line 8: CVE-2023-0007",
                "line 9: CVE-2023-0001",
                "line 11: CVE-2023-0008",
            ]
        );
        assert!(scores.scores.rejected[6].reason.contains("first on line 2"));
    }

    #[test]
    fn a_wrong_header_is_a_format_error() {
        for text in [
            "",
            "#model_version:v1\n",
            "cve,score,percentile\nCVE-2023-0001,0.5,0.5\n",
            "CVE-2023-0001,0.5,0.5\n",
            "cve,epss\n",
            "{\"cve\": 1}",
        ] {
            let error = parse("epss.csv", text).unwrap_err();
            assert!(
                matches!(error, FeedError::Format { .. }),
                "{text:?}: {error}"
            );
        }
    }

    #[test]
    fn a_header_alone_is_an_empty_file() {
        let scores = parse("epss.csv", "cve,epss,percentile\n").unwrap();
        assert!(scores.scores.items.is_empty());
        assert!(scores.scores.rejected.is_empty());
    }
}
