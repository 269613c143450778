//! Line charts as standalone SVG: no script, no fonts to fetch, the same drawing for the HTML
//! report and for the SVG files beside the results report.

use std::fmt::Write;

/// One line of a chart.
pub struct Series {
    /// Legend text.
    pub label: String,
    /// CSS colour.
    pub color: &'static str,
    /// (x, y) points in data units.
    pub points: Vec<(f64, f64)>,
}

/// How the x axis is scaled.
#[derive(Clone, Copy, PartialEq)]
pub enum XAxis {
    /// Linear, e.g. seconds.
    Linear,
    /// Percentiles on a log scale of 1 / (1 - p), as HdrHistogram plots them: 90%, 99%, 99.9%
    /// are equally spaced, so the tail gets room.
    Percentile,
}

/// A chart to draw.
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// x axis label.
    pub x_label: String,
    /// y axis label.
    pub y_label: String,
    /// x scale.
    pub x_axis: XAxis,
    /// The lines.
    pub series: Vec<Series>,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// The percentile axis ends at 99.9999% (six nines).
const MAX_NINES: f64 = 6.0;

/// Draws the chart; an empty chart says so instead of drawing empty axes.
pub fn render(chart: &Chart) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12" role="img" aria-label="{}">"#,
        escape(&chart.title)
    );
    let _ = write!(
        out,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/><text x="{LEFT}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        escape(&chart.title)
    );
    let x_of = |x: f64| match chart.x_axis {
        XAxis::Linear => x,
        XAxis::Percentile => nines(x),
    };
    let points: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(x, y)| (x_of(x), y)))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if points.is_empty() {
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#666">no data</text></svg>"##,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return out;
    }
    let (x_min, x_max, x_step) = match chart.x_axis {
        XAxis::Linear => {
            let (lo, hi) = bounds(points.iter().map(|p| p.0));
            // Time axes start at zero when the data does not go below it.
            let lo = if lo >= 0.0 { 0.0 } else { lo };
            let step = nice_step(hi - lo);
            (lo, (hi / step).ceil() * step, step)
        }
        XAxis::Percentile => (0.0, MAX_NINES, 1.0),
    };
    let y_step = nice_step(points.iter().map(|p| p.1).fold(0.0, f64::max));
    let y_max = (points.iter().map(|p| p.1).fold(0.0, f64::max) / y_step)
        .ceil()
        .max(1.0)
        * y_step;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x - x_min) / (x_max - x_min).max(1e-12) * plot_w;
    let sy = |y: f64| TOP + plot_h - y / y_max.max(1e-12) * plot_h;

    // Grid and y ticks.
    for i in 0..=(y_max / y_step).round() as u32 {
        let y = y_step * f64::from(i);
        let py = sy(y);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            number(y)
        );
    }
    // x ticks.
    let ticks: Vec<(f64, String)> = match chart.x_axis {
        XAxis::Linear => (0..=((x_max - x_min) / x_step).round() as u32)
            .map(|i| {
                let x = x_min + x_step * f64::from(i);
                (x, number(x))
            })
            .collect(),
        XAxis::Percentile => (0..=MAX_NINES as u32)
            .map(|n| {
                let label = match n {
                    0 => "0%".to_string(),
                    n => format!("{}%", 100.0 - 100.0 / 10f64.powi(n as i32)),
                };
                (f64::from(n), label)
            })
            .collect(),
    };
    for (x, label) in ticks {
        let px = sx(x);
        let _ = write!(
            out,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="#f0f0f0"/><text x="{px:.1}" y="{}" text-anchor="middle" fill="#444">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 16.0
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#888"/><line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#888"/>"##,
        WIDTH - RIGHT,
        TOP + plot_h,
        TOP + plot_h,
        TOP + plot_h
    );
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#222">{}</text><text transform="translate(16 {}) rotate(-90)" text-anchor="middle" fill="#222">{}</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0,
        escape(&chart.x_label),
        TOP + plot_h / 2.0,
        escape(&chart.y_label)
    );

    // Lines and legend.
    let mut legend_x = WIDTH - RIGHT;
    // Lines of one kind (say, several runs of one side) share a label: one legend entry.
    let mut shown: Vec<&str> = Vec::new();
    for series in chart.series.iter().rev() {
        let path: Vec<String> = series
            .points
            .iter()
            .map(|&(x, y)| (x_of(x), y))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="series" fill="none" stroke="{}" stroke-width="1.8" points="{}"><title>{}</title></polyline>"#,
            series.color,
            path.join(" "),
            escape(&series.label)
        );
        if shown.contains(&series.label.as_str()) {
            continue;
        }
        shown.push(&series.label);
        let width = 22.0 + 7.0 * series.label.len() as f64;
        legend_x -= width;
        let _ = write!(
            out,
            r#"<rect x="{legend_x:.1}" y="10" width="12" height="3" fill="{}"/><text x="{:.1}" y="16">{}</text>"#,
            series.color,
            legend_x + 16.0,
            escape(&series.label)
        );
    }
    out.push_str("</svg>");
    out
}

/// How many nines a percentile has: 90% → 1, 99% → 2, capped at [`MAX_NINES`].
fn nines(percentile: f64) -> f64 {
    let left = 1.0 - percentile / 100.0;
    if left <= 0.0 {
        MAX_NINES
    } else {
        (-left.log10()).clamp(0.0, MAX_NINES)
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    }
}

/// A round tick step (1, 2, 2.5 or 5 × 10^k) that cuts `span` into at most 6 parts.
fn nice_step(span: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let rough = span / 6.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= rough)
        .unwrap_or(10.0 * magnitude)
}

/// A tick label: `12k`, `1.5`, `0.25`.
fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        format!("{}k", trim(v / 1000.0))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Escapes text for SVG and HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers_and_the_tail_gets_room() {
        assert_eq!(nice_step(7.3), 2.0);
        assert_eq!(nice_step(0.21), 0.05);
        assert_eq!(nice_step(28_835.0), 5_000.0);
        assert_eq!(nice_step(240.0), 50.0);
        assert!((nines(99.0) - 2.0).abs() < 1e-9);
        assert_eq!(nines(100.0), MAX_NINES);
        assert_eq!(number(25_000.0), "25k");
        assert_eq!(number(0.5), "0.5");
    }

    #[test]
    fn charts_are_svg_with_one_line_per_series() {
        let chart = Chart {
            title: "a <b>".into(),
            x_label: "s".into(),
            y_label: "ms".into(),
            x_axis: XAxis::Linear,
            series: vec![
                Series {
                    label: "p50".into(),
                    color: "#1f77b4",
                    points: vec![(0.0, 1.0), (1.0, 2.0)],
                },
                Series {
                    label: "p99".into(),
                    color: "#d62728",
                    points: vec![(0.0, 3.0), (1.0, f64::NAN)],
                },
            ],
        };
        let svg = render(&chart);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt;b&gt;"));
        let empty = Chart {
            series: vec![],
            ..chart
        };
        assert!(render(&empty).contains("no data"));
    }
}
