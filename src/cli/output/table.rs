//! The one table writer of the CLI: columns padded to their widest cell (or a
//! minimum width), left- or right-aligned, with an optional header row.
//!
//! Widths are counted in bytes and padding in characters, as `{:<w$}` does.

use std::fmt::Write as _;

/// How a column's cells are padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Counts: padded on the left.
    Right,
}

/// A table of text cells, rendered with [`Table::render`].
#[derive(Clone, Debug)]
pub struct Table {
    head: Option<Vec<String>>,
    align: Vec<Align>,
    min_width: Vec<usize>,
    rows: Vec<Vec<String>>,
    indent: &'static str,
    gap: &'static str,
    trim: bool,
}

impl Table {
    /// A table whose columns are aligned as `align` says, separated by two spaces.
    pub fn new(align: &[Align]) -> Table {
        Table {
            head: None,
            align: align.to_vec(),
            min_width: vec![0; align.len()],
            rows: Vec::new(),
            indent: "",
            gap: "  ",
            trim: false,
        }
    }

    /// A header row (its cells count for the widths).
    pub fn head(mut self, head: &[&str]) -> Table {
        self.head = Some(head.iter().map(|h| h.to_string()).collect());
        self
    }

    /// Text before every line.
    pub fn indent(mut self, indent: &'static str) -> Table {
        self.indent = indent;
        self
    }

    /// Text between two columns.
    pub fn gap(mut self, gap: &'static str) -> Table {
        self.gap = gap;
        self
    }

    /// Columns at least this wide.
    pub fn min_widths(mut self, widths: &[usize]) -> Table {
        for (m, w) in self.min_width.iter_mut().zip(widths) {
            *m = *w;
        }
        self
    }

    /// Pad every cell, the last too, followed by the gap, and trim each line's
    /// end (the layout of `keys` tables).
    pub fn trim_lines(mut self) -> Table {
        self.trim = true;
        self
    }

    /// Add a row (missing cells are empty).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as text, one line per row, each ending in `\n`. Without
    /// [`Table::trim_lines`], a left-aligned last column is not padded.
    pub fn render(&self) -> String {
        let n = self.align.len();
        let mut w = self.min_width.clone();
        for r in self.head.iter().chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.len());
            }
        }
        let mut t = String::new();
        for r in self.head.iter().chain(&self.rows) {
            let mut line = String::from(self.indent);
            for (i, (&align, &width)) in self.align.iter().zip(&w).enumerate() {
                let c = r.get(i).map_or("", String::as_str);
                let last = i + 1 == n;
                if i > 0 && !self.trim {
                    line.push_str(self.gap);
                }
                match align {
                    Align::Right => {
                        let _ = write!(line, "{c:>width$}");
                    }
                    Align::Left if last && !self.trim => line.push_str(c),
                    Align::Left => {
                        let _ = write!(line, "{c:<width$}");
                    }
                }
                if self.trim {
                    line.push_str(self.gap);
                }
            }
            let line = if self.trim { line.trim_end() } else { &line };
            t.push_str(line);
            t.push('\n');
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_pad_to_the_widest_cell_and_counts_align_right() {
        let mut t =
            Table::new(&[Align::Left, Align::Left, Align::Right]).head(&["RESOURCE", "P", "N"]);
        t.row(["secrets", "aescbc/key1", "12"]);
        t.row(["configmaps", "identity", "3"]);
        assert_eq!(
            t.render(),
            "RESOURCE    P             N\n\
             secrets     aescbc/key1  12\n\
             configmaps  identity      3\n"
        );
    }

    #[test]
    fn trimmed_lines_lose_the_padding_of_short_last_cells() {
        let mut t = Table::new(&[Align::Left, Align::Left])
            .head(&["KEY", "FILES"])
            .trim_lines();
        t.row(["k1", ""]);
        t.row(["longer-key", "a.yaml"]);
        assert_eq!(t.render(), "KEY         FILES\nk1\nlonger-key  a.yaml\n");
    }

    #[test]
    fn minimum_widths_gap_and_indent() {
        let mut t = Table::new(&[Align::Left, Align::Right])
            .indent("  ")
            .gap(" ")
            .min_widths(&[6, 4]);
        t.row(["a", "1"]);
        t.row(["scanned", "12345"]);
        assert_eq!(
            t.render(),
            concat!("  a", "           ", "1\n", "  scanned 12345\n")
        );
    }

    #[test]
    fn a_left_last_column_is_not_padded_and_no_head_means_rows_only() {
        let mut t = Table::new(&[Align::Left, Align::Left]).gap("");
        t.row(["file", "x "]);
        t.row(["storage version", "3.5"]);
        assert_eq!(t.render(), "file           x \nstorage version3.5\n");
    }
}
