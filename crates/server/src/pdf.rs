//! A small PDF writer for reports: A4 pages in Helvetica (one of the
//! fonts every PDF reader has, so nothing is embedded), with headings,
//! wrapped paragraphs, tables whose header repeats on each page, line
//! charts drawn as vector paths, and a footer with page numbers. Objects,
//! cross references and string escaping are `pdf-writer`'s; the layout is
//! here.
//!
//! Text is written in the fonts' WinAnsi encoding: Latin-1 and the usual
//! typographic marks; any other character is shown as `?`.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;
const BODY: f32 = 9.5;
const LEADING: f32 = 13.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// A table column: its heading, its share of the text width, and whether
/// its cells are numbers (aligned right).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column<'a> {
    pub(crate) heading: &'a str,
    pub(crate) share: f32,
    pub(crate) numeric: bool,
}

impl<'a> Column<'a> {
    /// A column of text, `share` wide.
    pub(crate) fn text(heading: &'a str, share: f32) -> Column<'a> {
        Column {
            heading,
            share,
            numeric: false,
        }
    }

    /// A column of numbers, of the usual width.
    pub(crate) fn number(heading: &'a str) -> Column<'a> {
        Column {
            heading,
            share: 1.0,
            numeric: true,
        }
    }
}

/// A document being laid out.
pub(crate) struct Document {
    title: String,
    pages: Vec<Content>,
    page: Content,
    /// Where the next line's top is, from the page's bottom.
    y: f32,
}

impl Document {
    /// A document with one empty page; `title` goes into its information
    /// dictionary and every page's footer.
    pub(crate) fn new(title: &str) -> Document {
        Document {
            title: title.to_owned(),
            pages: Vec::new(),
            page: Content::new(),
            y: PAGE_H - MARGIN,
        }
    }

    fn width() -> f32 {
        PAGE_W - 2.0 * MARGIN
    }

    /// Starts a new page unless `height` more points fit on this one.
    fn room(&mut self, height: f32) {
        if self.y - height < MARGIN + 20.0 {
            let done = std::mem::replace(&mut self.page, Content::new());
            self.pages.push(done);
            self.y = PAGE_H - MARGIN;
        }
    }

    fn text(&mut self, font: Name<'_>, size: f32, x: f32, baseline: f32, s: &str) {
        let bytes = win_ansi(s);
        self.page
            .begin_text()
            .set_font(font, size)
            .next_line(x, baseline)
            .show(Str(&bytes))
            .end_text();
    }

    /// A heading: `level` 1 is the title, 2 a section.
    pub(crate) fn heading(&mut self, level: u8, s: &str) {
        let size = if level <= 1 { 18.0 } else { 13.0 };
        // A section heading is never left alone at a page's foot.
        self.room(size + 6.0 + 3.0 * LEADING);
        self.y -= size + 6.0;
        self.text(BOLD, size, MARGIN, self.y + 4.0, s);
        self.y -= 4.0;
    }

    /// A paragraph, wrapped to the text width.
    pub(crate) fn paragraph(&mut self, s: &str) {
        for line in wrap(s, BODY, false, Self::width()) {
            self.room(LEADING);
            self.y -= LEADING;
            self.text(REGULAR, BODY, MARGIN, self.y + 3.0, &line);
        }
        self.y -= 4.0;
    }

    /// Figures side by side: a large number over its label.
    pub(crate) fn figures(&mut self, figures: &[(String, &str)]) {
        if figures.is_empty() {
            return;
        }
        self.room(54.0);
        let w = Self::width() / figures.len() as f32;
        for (i, (figure, label)) in figures.iter().enumerate() {
            let x = MARGIN + w * i as f32;
            self.text(BOLD, 16.0, x, self.y - 18.0, figure);
            // A label takes two lines at most.
            let lines = wrap(label, 7.5, false, w - 6.0);
            for (n, line) in lines.iter().take(2).enumerate() {
                let line = if n == 1 && lines.len() > 2 {
                    fit(
                        &format!("{line} {}", lines[2..].join(" ")),
                        7.5,
                        false,
                        w - 6.0,
                    )
                } else {
                    line.clone()
                };
                self.text(REGULAR, 7.5, x, self.y - 31.0 - 9.0 * n as f32, &line);
            }
        }
        self.y -= 56.0;
    }

    /// A table; a cell too wide for its column is cut with an ellipsis.
    /// The header row repeats at the top of each page the table spans.
    pub(crate) fn table(&mut self, columns: &[Column<'_>], rows: &[Vec<String>]) {
        let total: f32 = columns
            .iter()
            .map(|c| c.share)
            .sum::<f32>()
            .max(f32::EPSILON);
        let widths: Vec<f32> = columns
            .iter()
            .map(|c| c.share / total * Self::width())
            .collect();
        self.room(3.0 * LEADING);
        self.header(columns, &widths);
        for row in rows {
            if self.y - LEADING < MARGIN + 20.0 {
                self.room(PAGE_H);
                self.header(columns, &widths);
            }
            self.y -= LEADING;
            self.cells(REGULAR, columns, &widths, row);
        }
        self.y -= 6.0;
    }

    /// [`Document::table`], or `none` as a paragraph when there are no rows.
    pub(crate) fn table_or(&mut self, columns: &[Column<'_>], rows: &[Vec<String>], none: &str) {
        if rows.is_empty() {
            self.paragraph(none);
        } else {
            self.table(columns, rows);
        }
    }

    fn header(&mut self, columns: &[Column<'_>], widths: &[f32]) {
        self.y -= LEADING;
        let headings: Vec<String> = columns.iter().map(|c| c.heading.to_owned()).collect();
        self.cells(BOLD, columns, widths, &headings);
        self.page
            .set_stroke_rgb(0.55, 0.58, 0.63)
            .set_line_width(0.6)
            .move_to(MARGIN, self.y)
            .line_to(PAGE_W - MARGIN, self.y)
            .stroke();
    }

    fn cells(&mut self, font: Name<'_>, columns: &[Column<'_>], widths: &[f32], row: &[String]) {
        let bold = font == BOLD;
        let mut x = MARGIN;
        for ((column, &w), cell) in columns.iter().zip(widths).zip(row) {
            let s = fit(cell, BODY, bold, w - 6.0);
            let at = if column.numeric {
                x + w - 6.0 - measure(&s, BODY, bold)
            } else {
                x
            };
            self.text(font, BODY, at, self.y + 3.5, &s);
            x += w;
        }
    }

    /// A line chart of percentages (0 to 100) against positions from 0
    /// to 1, with labels under the x axis at their positions.
    pub(crate) fn percent_chart(&mut self, points: &[(f32, f32)], x_labels: &[(f32, String)]) {
        let (h, left) = (150.0, 34.0);
        self.room(h + 24.0);
        let top = self.y - 8.0;
        let bottom = top - h;
        // The chart's colours stay in the chart: text after it is black.
        self.page.save_state();
        let (x0, x1) = (MARGIN + left, PAGE_W - MARGIN - 8.0);
        let x = |p: f32| x0 + p.clamp(0.0, 1.0) * (x1 - x0);
        let y = |pct: f32| bottom + pct.clamp(0.0, 100.0) / 100.0 * h;
        for pct in [0.0_f32, 50.0, 100.0] {
            self.page
                .set_stroke_rgb(0.85, 0.87, 0.9)
                .set_line_width(0.5)
                .move_to(x0, y(pct))
                .line_to(x1, y(pct))
                .stroke();
            self.text(REGULAR, 7.5, MARGIN, y(pct) - 2.5, &format!("{pct:.0}%"));
        }
        for (p, label) in x_labels {
            self.text(REGULAR, 7.5, x(*p) - 3.0, bottom - 12.0, label);
        }
        if let Some(((px, py), rest)) = points.split_first() {
            self.page
                .set_stroke_rgb(0.12, 0.37, 0.75)
                .set_line_width(1.5)
                .move_to(x(*px), y(*py));
            for (px, py) in rest {
                self.page.line_to(x(*px), y(*py));
            }
            self.page.stroke();
            self.page.set_fill_rgb(0.12, 0.37, 0.75);
            for (px, py) in points {
                self.page
                    .rect(x(*px) - 1.8, y(*py) - 1.8, 3.6, 3.6)
                    .fill_nonzero();
            }
        }
        self.page.restore_state();
        self.y = bottom - 22.0;
    }

    /// The finished file.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let last = std::mem::replace(&mut self.page, Content::new());
        self.pages.push(last);
        let count = self.pages.len();
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let (regular, bold, info) = (Ref::new(3), Ref::new(4), Ref::new(5));
        let page_ids: Vec<Ref> = (0..count).map(|i| Ref::new(6 + 2 * i as i32)).collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(page_ids.iter().copied())
            .count(count as i32);
        pdf.type1_font(regular)
            .base_font(Name(b"Helvetica"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold)
            .base_font(Name(b"Helvetica-Bold"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.document_info(info)
            .title(TextStr(&self.title))
            .producer(TextStr("Patchwell"));
        let title = self.title.clone();
        for (i, mut content) in std::mem::take(&mut self.pages).into_iter().enumerate() {
            let footer = win_ansi(&format!("{title}, page {} of {count}", i + 1));
            content
                .begin_text()
                .set_font(REGULAR, 7.5)
                .next_line(MARGIN, MARGIN - 18.0)
                .show(Str(&footer))
                .end_text();
            let id = page_ids[i];
            let content_id = Ref::new(id.get() + 1);
            let mut page = pdf.page(id);
            page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
                .parent(tree)
                .contents(content_id);
            let mut resources = page.resources();
            resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
            resources.finish();
            page.finish();
            pdf.stream(content_id, &content.finish());
        }
        pdf.finish()
    }
}

/// Text in the standard fonts' WinAnsi encoding.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '\u{2014}' => 0x97,
            '\u{2013}' => 0x96,
            '\u{2026}' => 0x85,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201c}' => 0x93,
            '\u{201d}' => 0x94,
            '\u{2022}' => 0x95,
            '\u{20ac}' => 0x80,
            _ => b'?',
        })
        .collect()
}

/// Helvetica's advance widths (thousandths of the size) for the printable
/// ASCII characters, from the font's published metrics.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // ' '..'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // digits
    278, 278, 584, 584, 584, 556, 1015, // ':'..'@'
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667,
    611, 722, 667, 944, 667, 667, 611, // 'A'..'Z'
    278, 278, 278, 469, 556, 333, // '['..'`'
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
    278, 556, 500, 722, 500, 500, 500, // 'a'..'z'
    334, 260, 334, 584, // '{'..'~'
];

/// The width of `s` in points; the bold face is taken as a little wider.
fn measure(s: &str, size: f32, bold: bool) -> f32 {
    let units: u32 = s
        .chars()
        .map(|c| match c {
            ' '..='~' => u32::from(HELVETICA[c as usize - 32]),
            _ => 556,
        })
        .sum();
    units as f32 / 1000.0 * size * if bold { 1.07 } else { 1.0 }
}

/// `s` cut with an ellipsis to fit `width`.
fn fit(s: &str, size: f32, bold: bool, width: f32) -> String {
    if measure(s, size, bold) <= width {
        return s.to_owned();
    }
    let mut cut: String = s.to_owned();
    while !cut.is_empty() && measure(&cut, size, bold) + measure("\u{2026}", size, bold) > width {
        cut.pop();
    }
    cut.push('\u{2026}');
    cut
}

/// `s` broken into lines no wider than `width`, at spaces; a word wider
/// than a line is cut.
fn wrap(s: &str, size: f32, bold: bool, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if measure(&candidate, size, bold) <= width || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::take(&mut line));
            line = word.to_owned();
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
        .into_iter()
        .map(|l| fit(&l, size, bold, width))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_encoded_wrapped_and_cut_to_fit() {
        assert_eq!(win_ansi("caf\u{e9} \u{2014} \u{4e2d}"), b"caf\xe9 \x97 ?");
        let lines = wrap("one two three four five six seven", BODY, false, 60.0);
        assert!(lines.len() > 2, "{lines:?}");
        assert!(
            lines.iter().all(|l| measure(l, BODY, false) <= 60.0),
            "{lines:?}"
        );
        assert_eq!(lines.join(" "), "one two three four five six seven");
        let cut = fit("a very long advisory title indeed", BODY, false, 50.0);
        assert!(
            cut.ends_with('\u{2026}') && measure(&cut, BODY, false) <= 50.0,
            "{cut}"
        );
    }

    #[test]
    fn a_long_table_spans_pages_with_its_header_on_each() {
        let mut d = Document::new("Test report");
        d.heading(1, "Test report");
        let rows: Vec<Vec<String>> = (0..120)
            .map(|i| vec![format!("row {i}"), i.to_string()])
            .collect();
        d.table(&[Column::text("Name", 3.0), Column::number("Count")], &rows);
        let bytes = d.finish();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("%PDF-"));
        assert!(text.trim_end().ends_with("%%EOF"));
        assert!(text.contains("/Count 3"), "120 rows take three pages");
        assert_eq!(
            text.matches("(Count) Tj").count(),
            3,
            "the header on every page"
        );
        assert!(text.contains("(row 119) Tj"));
        assert!(text.contains("page 3 of 3"));
    }
}
