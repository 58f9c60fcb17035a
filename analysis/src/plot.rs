//! The report's charts, drawn with plotters' SVG backend into strings that
//! the page inlines (plotters without its font features: text is SVG
//! `<text>` the browser renders, nothing is rasterised or fetched).

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One series of a [`line_chart`]: name (empty: no legend entry), colour
/// (`#rrggbb`), dashed, points.
pub type Series = (String, &'static str, bool, Vec<(f64, f64)>);

const WIDTH: u32 = 900;
const FONT: &str = "sans-serif";
/// 11 px: plotters writes a font size of size / 1.24.
const FONT_SIZE: f64 = 11.0 * 1.24;
const GRID: RGBColor = RGBColor(0xee, 0xee, 0xee);
const AXIS: RGBColor = RGBColor(0xcc, 0xcc, 0xcc);
const NOTE: RGBColor = RGBColor(0x77, 0x77, 0x77);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// `#rrggbb` as a colour (black when malformed).
pub fn rgb(hex: &str) -> RGBColor {
    let c = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|s| u8::from_str_radix(s, 16).ok())
    };
    match (hex.len(), hex.starts_with('#'), c(1), c(3), c(5)) {
        (7, true, Some(r), Some(g), Some(b)) => RGBColor(r, g, b),
        _ => BLACK,
    }
}

fn text(color: RGBColor) -> TextStyle<'static> {
    (FONT, FONT_SIZE).into_font().color(&color)
}

/// Runs a drawing into an SVG string; a drawing that fails becomes a line
/// of text saying so, not a broken page.
fn svg(height: u32, draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>) -> String {
    let mut buf = String::new();
    let res = {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
        draw(&root).and_then(|()| Ok(root.present()?))
    };
    match res {
        Ok(()) => buf,
        Err(e) => format!("<p class=\"note\">(this plot could not be drawn: {e})</p>"),
    }
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A white chart area with `top` px above it, x labels (`xunit` after
/// them; none: signed numbers) and no y labels (the callers place theirs).
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    top: u32,
    x: (f64, f64),
    y: std::ops::Range<f64>,
    xunit: &str,
) -> Result<Chart<'a, 'b>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .margin_top(top)
        .margin_right(24)
        .x_label_area_size(22)
        .y_label_area_size(48)
        .build_cartesian_2d(x.0..x.1, y)?;
    let xfmt = |v: &f64| {
        if xunit.is_empty() {
            format!("{v:+.0}")
        } else {
            format!("{v:.0} {xunit}")
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .axis_style(AXIS)
        .x_labels(5)
        .y_labels(0)
        .x_label_formatter(&xfmt)
        .label_style(text(BLACK))
        .draw()?;
    Ok(chart)
}

/// A line chart over the `x` and `y` ranges, `xunit` after the x labels,
/// with horizontal reference lines (value, label). Points and reference
/// lines outside `y` are drawn at its edge; non-finite points are left out.
pub fn line_chart(
    series: &[Series],
    x: (f64, f64),
    y: (f64, f64),
    xunit: &str,
    hlines: &[(f64, String)],
    height: u32,
) -> String {
    let x = (x.0, if x.1 > x.0 { x.1 } else { x.0 + 1.0 });
    let y = (y.0, if y.1 > y.0 { y.1 } else { y.0 + 1.0 });
    svg(height, |root| {
        let mut chart = frame(root, 24, x, y.0..y.1, xunit)?;
        // Small ranges (IPC, GHz) need decimals on their labels.
        let ydec = if y.1 - y.0 < 10.0 { 2 } else { 0 };
        // Five y levels at quarters of the range (0, 256, … 1024 for
        // utilisation), not plotters' round numbers.
        for k in 0..=4 {
            let v = y.0 + (y.1 - y.0) * k as f64 / 4.0;
            chart.draw_series(LineSeries::new([(x.0, v), (x.1, v)], GRID))?;
            let (_, py) = chart.backend_coord(&(x.0, v));
            root.draw(&Text::new(
                format!("{v:.ydec$}"),
                (44, py),
                text(BLACK).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        for (v, label) in hlines {
            let v = &v.clamp(y.0, y.1);
            let style = ShapeStyle::from(RGBColor(0x99, 0x99, 0x99)).stroke_width(1);
            chart.draw_series(DashedLineSeries::new([(x.0, *v), (x.1, *v)], 2, 3, style))?;
            if !label.is_empty() {
                chart.draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (x.1, *v),
                    text(NOTE).pos(Pos::new(HPos::Right, VPos::Bottom)),
                )))?;
            }
        }
        let mut named = 0;
        for (name, color, dashed, pts) in series {
            let color = rgb(color);
            let pts: Vec<(f64, f64)> = pts
                .iter()
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .map(|&(a, b)| (a, b.clamp(y.0, y.1)))
                .collect();
            let style = ShapeStyle::from(color).stroke_width(1);
            if *dashed {
                chart.draw_series(DashedLineSeries::new(pts, 6, 4, style))?;
            } else {
                chart.draw_series(LineSeries::new(pts, style))?;
            }
            if !name.is_empty() {
                root.draw(&Text::new(
                    name.clone(),
                    (56 + 150 * named, 6),
                    text(color).pos(Pos::new(HPos::Left, VPos::Top)),
                ))?;
                named += 1;
            }
        }
        Ok(())
    })
}

/// One bar of a [`timeline`]: row, from, to (x units), colour.
pub type Span = (usize, f64, f64, &'static str);

/// Rows of bars over the `x` range (`xunit` after the x labels), each row
/// labelled.
pub fn timeline(rows: &[String], spans: &[Span], x: (f64, f64), xunit: &str) -> String {
    let x = (x.0, if x.1 > x.0 { x.1 } else { x.0 + 1.0 });
    let n = rows.len().max(1) as f64;
    let height = 22 * rows.len().max(1) as u32 + 30;
    svg(height, |root| {
        let mut chart = frame(root, 4, x, n..0.0, xunit)?;
        // Bars at least 0.3 px wide: a short slice stays visible.
        let (px, _) = chart.plotting_area().get_pixel_range();
        let min_w = 0.3 * (x.1 - x.0) / (px.end - px.start).max(1) as f64;
        chart.draw_series(spans.iter().map(|&(row, a, b, color)| {
            let (a, b) = (a.max(x.0), b.min(x.1).max(a.max(x.0) + min_w));
            let r = row as f64;
            Rectangle::new([(a, r + 0.18), (b, r + 0.82)], rgb(color).filled())
        }))?;
        for (i, label) in rows.iter().enumerate() {
            let (_, py) = chart.backend_coord(&(x.0, i as f64 + 0.5));
            root.draw(&Text::new(
                label.clone(),
                (44, py),
                text(BLACK).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_standalone_svg_with_their_labels() {
        let s = line_chart(
            &[
                (
                    "util".into(),
                    "#1f77b4",
                    false,
                    vec![(0.0, 1.0), (5.0, 2000.0)],
                ),
                (
                    "model".into(),
                    "#d62728",
                    true,
                    vec![(0.0, 3.0), (f64::NAN, 1.0)],
                ),
            ],
            (0.0, 10.0),
            (0.0, 1024.0),
            "ms",
            &[(80.0, "80 %".into())],
            240,
        );
        assert!(
            s.starts_with("<svg") && s.trim_end().ends_with("</svg>"),
            "{s}"
        );
        for want in ["util", "model", "80 %", "10 ms", "1024", "#1F77B4"] {
            assert!(
                s.to_uppercase().contains(&want.to_uppercase()),
                "{want} missing"
            );
        }
        assert!(!s.contains("NaN") && !s.contains("inf"));
        let t = timeline(
            &["CPU 0".into(), "CPU 1".into()],
            &[(0, 0.0, 5.0, "#2ca02c"), (1, 5.0, 5.0, "#bbbbbb")],
            (0.0, 200.0),
            "ms",
        );
        assert!(t.contains("CPU 1") && t.contains("200 ms"));
        assert_eq!(
            t.matches("<rect").count(),
            3,
            "background and two bars: {t}"
        );
    }

    #[test]
    fn colours_parse_and_bad_ones_are_black() {
        assert_eq!(rgb("#1f77b4"), RGBColor(0x1f, 0x77, 0xb4));
        for bad in ["bad", "#bbb", "#12345g", "#1f77b4ff"] {
            assert_eq!(rgb(bad), BLACK, "{bad}");
        }
    }
}
