//! The figures a run yields, named once: each with its key in the JSON,
//! its column in the printed tables and how it is read from a run; their
//! least, median and greatest values over the runs; the tables.

use std::fmt::Write as _;

/// The least, the median and the greatest value of one figure over the
/// runs (the median of an even count is the upper middle value, as the
/// bench has always taken it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no values.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut values: Vec<f64> = values.into_iter().collect();
        values.sort_by(f64::total_cmp);
        Some(Self {
            min: *values.first()?,
            median: values[values.len() / 2],
            max: *values.last()?,
        })
    }
}

/// One figure of a run of type `R`.
pub struct Figure<R> {
    /// Its name in the JSON (`durable_s`: units in the name).
    pub key: &'static str,
    /// Its column's header in the tables.
    pub header: &'static str,
    /// Decimals printed.
    pub decimals: usize,
    pub value: fn(&R) -> f64,
}

impl<R> Figure<R> {
    /// Its spread over `runs`.
    pub fn spread(&self, runs: &[R]) -> Option<Spread> {
        Spread::of(runs.iter().map(self.value))
    }
}

/// The figure keyed `key` of `figures` (a programming error if none is).
pub fn by_key<'a, R>(figures: &'a [Figure<R>], key: &str) -> &'a Figure<R> {
    figures
        .iter()
        .find(|f| f.key == key)
        .unwrap_or_else(|| panic!("no figure {key}"))
}

/// A table: label columns (`size`, `threads`), then one column per figure.
/// Each group of runs takes three lines: its medians, then its least and
/// greatest values, so a noisy figure shows as one.
pub fn table<R>(labels: &[&str], figures: &[&Figure<R>], groups: &[(Vec<String>, &[R])]) -> String {
    let label_widths: Vec<usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            groups
                .iter()
                .filter_map(|(cells, _)| cells.get(i).map(String::len))
                .chain([l.len(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let widths: Vec<usize> = figures.iter().map(|f| f.header.len().max(8)).collect();
    let mut out = String::new();
    for (label, width) in labels.iter().zip(&label_widths) {
        let _ = write!(out, "{label:>width$} ");
    }
    for (figure, width) in figures.iter().zip(&widths) {
        let _ = write!(out, "{:>width$} ", figure.header);
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    for (cells, runs) in groups {
        let spreads: Vec<Option<Spread>> = figures.iter().map(|f| f.spread(runs)).collect();
        for name in ["", "min", "max"] {
            let pick = |s: &Spread| match name {
                "min" => s.min,
                "max" => s.max,
                _ => s.median,
            };
            let mut line = String::new();
            for (i, width) in label_widths.iter().enumerate() {
                let cell = match name {
                    "" => cells.get(i).map_or("", String::as_str),
                    // The line's name in the last label column.
                    _ if i + 1 == label_widths.len() => name,
                    _ => "",
                };
                let _ = write!(line, "{cell:>width$} ");
            }
            for ((figure, width), spread) in figures.iter().zip(&widths).zip(&spreads) {
                match spread {
                    Some(s) => {
                        let _ = write!(line, "{:>width$.prec$} ", pick(s), prec = figure.decimals);
                    }
                    None => {
                        let _ = write!(line, "{:>width$} ", "-");
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_is_the_least_the_middle_and_the_greatest() {
        let s = Spread::of([3.0, 1.0, 2.0, 10.0, 0.5]).unwrap();
        assert_eq!((s.min, s.median, s.max), (0.5, 2.0, 10.0));
        // An even count takes the upper middle value.
        assert_eq!(Spread::of([4.0, 1.0]).unwrap().median, 4.0);
        assert_eq!(Spread::of([]), None);
    }

    #[test]
    fn a_table_gives_each_group_its_median_min_and_max_lines() {
        let figures = [
            Figure::<f64> {
                key: "x_s",
                header: "x s",
                decimals: 2,
                value: |r| *r,
            },
            Figure::<f64> {
                key: "double_s",
                header: "double s",
                decimals: 1,
                value: |r| 2.0 * r,
            },
        ];
        let runs = [1.0, 3.0, 2.0];
        let text = table(
            &["size", "threads"],
            &figures.iter().collect::<Vec<_>>(),
            &[(vec!["16M".into(), "8".into()], &runs[..])],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], "size threads      x s double s");
        assert_eq!(lines[1], " 16M       8     2.00      4.0");
        assert_eq!(lines[2], "         min     1.00      2.0");
        assert_eq!(lines[3], "         max     3.00      6.0");
        assert_eq!(by_key(&figures, "double_s").header, "double s");
    }
}
