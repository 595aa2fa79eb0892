//! `--svg`: time against size, hand-written SVG (both axes logarithmic:
//! sizes double, times span decades): a line through each figure's
//! medians, a bar from its least to its greatest value at each size, the
//! disk's limit dashed. A pure function of the summaries, for the README.

use std::fmt::Write as _;

use super::{
    figures::{Spread, by_key},
    program::parse_size,
    synthetic::{FIGURES, Group},
};

/// One line of the plot: a figure's spread at each size (bytes).
pub struct Series {
    pub name: String,
    pub dashed: bool,
    pub points: Vec<(f64, Spread)>,
}

/// The figures plotted, with their names in the legend; the disk's limit
/// dashed. Durable suspend: from the process's `ready` to its image
/// durable (--exit); held cycle: suspend --hold plus its resume; disk:
/// writing and `fdatasync`ing as many bytes as the image's pages.
const PLOTTED: &[(&str, &str, bool)] = &[
    ("durable_s", "durable suspend", false),
    ("restore_s", "resume from image", false),
    ("held_cycle_s", "held cycle", false),
    ("disk_s", "disk (write + fdatasync)", true),
];

/// The plotted figures of the synthetic workload held by the first thread
/// count (one line per figure: more would not read).
pub fn series(groups: &[Group]) -> (String, Vec<Series>) {
    let threads = groups.first().map_or(1, |g| g.threads);
    let title = format!(
        "suspend: time against size ({threads} thread{}, medians, bars from least to greatest)",
        if threads == 1 { "" } else { "s" }
    );
    let series = PLOTTED
        .iter()
        .map(|&(key, name, dashed)| {
            let figure = by_key(FIGURES, key);
            let points = groups
                .iter()
                .filter(|g| g.threads == threads)
                .filter_map(|g| Some((parse_size(&g.size)? as f64, figure.spread(&g.runs)?)))
                .collect();
            Series {
                name: name.to_owned(),
                dashed,
                points,
            }
        })
        .collect();
    (title, series)
}

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 460.0;
/// The plotting area: left, top, right, bottom (the legend to its right).
const AREA: (f64, f64, f64, f64) = (80.0, 50.0, 560.0, 400.0);
const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#555555", "#9467bd", "#ff7f0e",
];

/// `16 MiB`, `1 GiB`, `512 KiB`.
fn size_label(bytes: f64) -> String {
    let units = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in units {
        let n = bytes / f64::from(1u32 << shift);
        if n >= 1.0 {
            return format!("{} {unit}", (n * 10.0).round() / 10.0);
        }
    }
    format!("{bytes} B")
}

/// `0.01 s`, `1 s`, `10 s`.
fn seconds_label(exponent: i32) -> String {
    if exponent >= 0 {
        format!("{} s", 10u64.pow(exponent as u32))
    } else {
        format!("{:.*} s", (-exponent) as usize, 10f64.powi(exponent))
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The plot of `series` under `title`, as an SVG document.
pub fn svg((title, series): &(String, Vec<Series>)) -> String {
    let (left, top, right, bottom) = AREA;
    let points = || series.iter().flat_map(|s| s.points.iter());
    // Sizes: a log2 axis padded by half a doubling.
    let sizes: Vec<f64> = points().map(|p| p.0.log2()).collect();
    let (lo, hi) = sizes
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let (x_lo, x_hi) = if sizes.is_empty() {
        (20.0, 30.0)
    } else {
        (lo - 0.5, hi.max(lo + 1.0) + 0.5)
    };
    // Times: whole decades around every value.
    let times: Vec<f64> = points()
        .flat_map(|p| [p.1.min, p.1.max])
        .filter(|t| *t > 0.0 && t.is_finite())
        .map(f64::log10)
        .collect();
    let (y_lo, y_hi) = if times.is_empty() {
        (-3, 1)
    } else {
        let lo = times.iter().copied().fold(f64::MAX, f64::min).floor() as i32;
        let hi = times.iter().copied().fold(f64::MIN, f64::max).ceil() as i32;
        (lo, hi.max(lo + 1))
    };
    let x = |bytes: f64| left + (bytes.log2() - x_lo) / (x_hi - x_lo) * (right - left);
    let y = |secs: f64| {
        let at = secs.max(10f64.powi(y_lo)).log10();
        bottom - (at - f64::from(y_lo)) / f64::from(y_hi - y_lo) * (bottom - top)
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="14">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Grid and ticks: a decade per labelled line, 2 and 5 faint.
    out.push_str("<g stroke=\"#dddddd\">\n");
    for e in y_lo..=y_hi {
        for m in [1.0, 2.0, 5.0] {
            let t = m * 10f64.powi(e);
            if e == y_hi && m > 1.0 {
                break;
            }
            let width = if m == 1.0 { 1.0 } else { 0.5 };
            let _ = writeln!(
                out,
                r#"<line x1="{left}" y1="{0:.1}" x2="{right}" y2="{0:.1}" stroke-width="{width}"/>"#,
                y(t)
            );
        }
    }
    let mut ticks: Vec<f64> = points().map(|p| p.0).collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    for &t in &ticks {
        let _ = writeln!(
            out,
            r#"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{bottom}" stroke-width="0.5"/>"#,
            x(t)
        );
    }
    out.push_str("</g>\n");
    let _ = writeln!(
        out,
        r#"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        right - left,
        bottom - top
    );
    for e in y_lo..=y_hi {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y(10f64.powi(e)) + 4.0,
            seconds_label(e)
        );
    }
    for &t in &ticks {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(t),
            bottom + 18.0,
            size_label(t)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">size (memory held, log scale)</text>"#,
        (left + right) / 2.0,
        bottom + 40.0
    );
    let _ = writeln!(
        out,
        r#"<text x="20" y="{0}" text-anchor="middle" transform="rotate(-90 20 {0})">time (s, log scale)</text>"#,
        (top + bottom) / 2.0
    );
    // The series, then the legend.
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<g stroke="{color}" fill="{color}" stroke-width="2">"#
        );
        let path: Vec<String> = s
            .points
            .iter()
            .map(|(bytes, spread)| format!("{:.1},{:.1}", x(*bytes), y(spread.median)))
            .collect();
        if path.len() > 1 {
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none"{dash}/>"#,
                path.join(" ")
            );
        }
        for (bytes, spread) in &s.points {
            let _ = writeln!(
                out,
                r#"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke-width="1"/>"#,
                x(*bytes),
                y(spread.min),
                y(spread.max)
            );
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5"><title>{}: {} median {:.3} s (min {:.3}, max {:.3})</title></circle>"#,
                x(*bytes),
                y(spread.median),
                escape(&s.name),
                size_label(*bytes),
                spread.median,
                spread.min,
                spread.max
            );
        }
        out.push_str("</g>\n");
        let ly = top + 10.0 + 22.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>"#,
            right + 16.0,
            right + 46.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            right + 54.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::tests::run;

    /// Every element opened is closed, in order (enough XML for a browser).
    fn balanced(svg: &str) -> Result<(), String> {
        let mut open = Vec::new();
        let mut rest = svg;
        while let Some(at) = rest.find('<') {
            let end = rest[at..].find('>').ok_or("a tag not closed")? + at;
            let tag = &rest[at + 1..end];
            let name = |t: &str| t.split_whitespace().next().unwrap_or("").to_owned();
            if let Some(closing) = tag.strip_prefix('/') {
                let top = open.pop().ok_or(format!("</{closing}> closes nothing"))?;
                if top != closing {
                    return Err(format!("<{top}> closed by </{closing}>"));
                }
            } else if !tag.ends_with('/') {
                open.push(name(tag));
            }
            rest = &rest[end + 1..];
        }
        if open.is_empty() {
            Ok(())
        } else {
            Err(format!("left open: {open:?}"))
        }
    }

    fn groups() -> Vec<Group> {
        ["16M", "256M", "1G"]
            .iter()
            .enumerate()
            .flat_map(|(i, size)| {
                let scale = (1u32 << (4 * i)) as f64;
                [1, 8].map(|threads| Group {
                    size: (*size).into(),
                    threads,
                    runs: vec![
                        run(0.02 * scale, 0.03 * scale),
                        run(0.01 * scale, 0.02 * scale),
                        run(0.015 * scale, 0.025 * scale),
                    ],
                })
            })
            .collect()
    }

    #[test]
    fn the_plot_has_its_axes_a_legend_and_every_point() {
        let plotted = series(&groups());
        assert!(plotted.0.contains("1 thread,"), "{}", plotted.0);
        assert_eq!(plotted.1.len(), PLOTTED.len());
        // Only the first thread count: three sizes each.
        assert!(plotted.1.iter().all(|s| s.points.len() == 3));
        let svg = svg(&plotted);
        balanced(&svg).unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        assert!(svg.contains(">size (memory held, log scale)</text>"));
        assert!(svg.contains(">time (s, log scale)</text>"));
        for label in [
            "16 MiB", "256 MiB", "1 GiB", "0.01 s", "0.1 s", "1 s", "10 s",
        ] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
        for (_, name, _) in PLOTTED {
            assert!(svg.contains(&format!(">{name}</text>")), "legend: {name}");
        }
        assert_eq!(svg.matches("<circle").count(), 3 * PLOTTED.len());
        assert_eq!(svg.matches("<polyline").count(), PLOTTED.len());
        assert_eq!(
            svg.matches("stroke-dasharray").count(),
            2,
            "the disk's line and swatch"
        );
        // The durable suspend's 1 GiB median (0.015 × 256 s), hovered.
        assert!(
            svg.contains("1 GiB median 3.840 s (min 2.560, max 5.120)"),
            "{svg}"
        );
        // No NaN or infinity leaked into a coordinate.
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn one_size_or_none_still_plots() {
        let one: Vec<Group> = groups().into_iter().take(1).collect();
        let svg1 = svg(&series(&one));
        balanced(&svg1).unwrap();
        assert_eq!(svg1.matches("<circle").count(), PLOTTED.len());
        assert!(!svg1.contains("NaN"));
        let empty = svg(&series(&[]));
        balanced(&empty).unwrap();
        assert_eq!(empty.matches("<circle").count(), 0);
    }
}
