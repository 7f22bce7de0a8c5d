//! Small charts, drawn by the server as inline SVG: no script, no
//! outside image, styled by the page's stylesheet through classes.

use std::fmt::Write;

use maud::{Markup, html};

const WIDTH: f64 = 300.0;
const HEIGHT: f64 = 60.0;
/// Room above the highest point.
const HEADROOM: f64 = 6.0;

/// A line chart of `values` (oldest first) with `caption` above it and
/// `peak` (the largest value, as the caller formats it) in its title.
/// Every value is drawn at the same spacing; an empty or all-zero series
/// is a flat line at the bottom.
pub fn sparkline(caption: Markup, values: &[f64], peak: &str) -> Markup {
    let points = points(values);
    let area = match (points.first(), points.last()) {
        (Some(first), Some(last)) => {
            let mut d = format!("{:.1},{HEIGHT} ", first.0);
            for (x, y) in &points {
                let _ = write!(d, "{x:.1},{y:.1} ");
            }
            let _ = write!(d, "{:.1},{HEIGHT}", last.0);
            d
        }
        _ => String::new(),
    };
    let line: String = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ");
    // The SVG is built from numbers only; its one text is escaped.
    html! {
        figure.chart {
            figcaption { (caption) }
            svg.spark viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) preserveAspectRatio="none"
                role="img" aria-label=(format!("peak {peak}")) {
                title { "peak " (peak) }
                line.axis x1="0" y1=(HEIGHT - 0.5) x2=(WIDTH) y2=(HEIGHT - 0.5) {}
                polygon.area points=(area) {}
                polyline.line points=(line) {}
            }
        }
    }
}

/// The chart coordinates of `values`: x spread over the width, y scaled so
/// the largest value reaches just under the top.
fn points(values: &[f64]) -> Vec<(f64, f64)> {
    let max = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let step = if values.len() > 1 {
        WIDTH / (values.len() - 1) as f64
    } else {
        0.0
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
            let scaled = if max > 0.0 { v / max } else { 0.0 };
            (
                (i as f64 * step).min(WIDTH),
                HEIGHT - scaled * (HEIGHT - HEADROOM),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_peak_reaches_the_top_and_zero_the_bottom() {
        let p = points(&[0.0, 5.0, 10.0]);
        assert_eq!(p[0], (0.0, HEIGHT));
        assert_eq!(p[2], (WIDTH, HEADROOM));
        assert_eq!(p[1].1, HEIGHT - (HEIGHT - HEADROOM) / 2.0);
    }

    #[test]
    fn a_chart_is_svg_with_its_caption() {
        let svg = sparkline(html! { "PUT " b { "3/s" } }, &[1.0, 2.0], "2/s").into_string();
        assert!(svg.contains("<svg") && svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("PUT <b>3/s</b>"));
        assert!(
            !svg.contains("style="),
            "styled by classes: the policy allows no inline style"
        );
    }

    proptest! {
        #[test]
        fn every_point_stays_inside_the_box(values in proptest::collection::vec(any::<f64>(), 0..80)) {
            for (x, y) in points(&values) {
                prop_assert!((0.0..=WIDTH).contains(&x), "x {x}");
                prop_assert!((0.0..=HEIGHT).contains(&y), "y {y}");
            }
        }
    }
}
