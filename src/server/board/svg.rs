//! Health charts as inline SVG, drawn on the server: no script, no image request, and they
//! scale with the text. Built only from numbers (scores, times), never from job text, so the
//! markup needs no escaping and the page template inserts it as it is.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// A sparkline of health scores (0-100, oldest first): a polyline 80×20 with the last point
/// marked. `None` when there are no scores.
pub fn sparkline(scores: &[i64]) -> Option<String> {
    let last = *scores.last()?;
    let (w, h) = (80.0, 20.0);
    let points = polyline(scores, w, h, 1.5);
    let (lx, ly) = point(scores.len() - 1, last, scores.len(), w, h, 1.5);
    let mut svg = String::with_capacity(256);
    let _ = write!(
        svg,
        "<svg class=\"sparkline\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
         role=\"img\" aria-label=\"health {}\">\
         <polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" points=\"{points}\"/>\
         <circle cx=\"{lx:.1}\" cy=\"{ly:.1}\" r=\"2\" fill=\"currentColor\"/></svg>",
        describe(scores)
    );
    Some(svg)
}

/// A larger chart of health over time (`(when, score)`, oldest first) with the 0/50/100
/// grid lines and the first and last times as labels. `None` when there are no scores.
pub fn chart(points: &[(DateTime<Utc>, i64)]) -> Option<String> {
    let (first, _) = points.first()?;
    let (last, _) = points.last()?;
    let (w, h, pad) = (600.0, 160.0, 24.0);
    let span = (*last - *first).num_milliseconds().max(1) as f64;
    let mut coords = String::new();
    for (at, score) in points {
        let x = if points.len() == 1 {
            w / 2.0
        } else {
            pad + (*at - *first).num_milliseconds() as f64 / span * (w - 2.0 * pad)
        };
        let y = pad + (100 - (*score).clamp(0, 100)) as f64 / 100.0 * (h - 2.0 * pad);
        let _ = write!(coords, "{x:.1},{y:.1} ");
    }
    let scores: Vec<i64> = points.iter().map(|(_, s)| *s).collect();
    let mut svg = String::with_capacity(1024 + coords.len());
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"health over time: {}\">",
        describe(&scores)
    );
    for level in [0, 50, 100] {
        let y = pad + (100 - level) as f64 / 100.0 * (h - 2.0 * pad);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{pad}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"2\" y=\"{:.1}\">{level}</text>",
            w - pad,
            y + 4.0
        );
    }
    let _ = write!(
        svg,
        "<polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" points=\"{}\"/>\
         <text class=\"axis\" x=\"{pad}\" y=\"{}\">{}</text>\
         <text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text></svg>",
        coords.trim_end(),
        h - 4.0,
        first.format("%Y-%m-%d %H:%M"),
        w - pad,
        h - 4.0,
        last.format("%Y-%m-%d %H:%M"),
    );
    Some(svg)
}

/// `80 → 62 (12 readings)`: what a screen reader says for a chart.
fn describe(scores: &[i64]) -> String {
    match (scores.first(), scores.last()) {
        (Some(a), Some(b)) if scores.len() > 1 => {
            format!("{a} → {b} ({} readings)", scores.len())
        }
        (_, Some(b)) => format!("{b}"),
        _ => String::new(),
    }
}

fn point(i: usize, score: i64, n: usize, w: f64, h: f64, pad: f64) -> (f64, f64) {
    let x = if n <= 1 {
        w / 2.0
    } else {
        pad + i as f64 / (n - 1) as f64 * (w - 2.0 * pad)
    };
    let y = pad + (100 - score.clamp(0, 100)) as f64 / 100.0 * (h - 2.0 * pad);
    (x, y)
}

fn polyline(scores: &[i64], w: f64, h: f64, pad: f64) -> String {
    let mut out = String::with_capacity(scores.len() * 10);
    for (i, s) in scores.iter().enumerate() {
        let (x, y) = point(i, *s, scores.len(), w, h, pad);
        let _ = write!(out, "{x:.1},{y:.1} ");
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_sparkline_is_svg_of_numbers_only() {
        assert_eq!(sparkline(&[]), None);
        let svg = sparkline(&[90, 40, 120]).expect("svg");
        assert!(svg.starts_with("<svg class=\"sparkline\""), "{svg}");
        assert!(svg.contains("aria-label=\"health 90 → 120 (3 readings)\""));
        // Out-of-range scores are drawn at the edge, not outside the box.
        assert!(svg.contains("78.5,1.5\""), "{svg}");
        assert!(
            sparkline(&[70])
                .expect("one")
                .contains("aria-label=\"health 70\"")
        );
    }

    #[test]
    fn a_chart_has_its_grid_and_time_labels() {
        let t = |m: i64| Utc.timestamp_opt(1_700_000_000 + m * 60, 0).unwrap();
        let svg = chart(&[(t(0), 80), (t(30), 60)]).expect("svg");
        assert!(svg.contains("class=\"grid\""));
        assert!(svg.contains("2023-11-14 22:13"), "{svg}");
        assert_eq!(chart(&[]), None);
    }
}
