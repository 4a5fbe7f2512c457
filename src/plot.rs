//! The one look of every chart shiren draws (the training loss, the report
//! card's perplexity curve and its bars per form): a 900 × 540 PNG on white,
//! text in DejaVu Sans when the machine has it (without it a chart is drawn
//! with no text at all rather than failing), a caption, axis titles and a
//! framed legend.
//!
//! Not here: what is plotted and from which figures (`train.rs`, `cli/eval.rs`).

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

pub type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Every chart's size in pixels.
pub const SIZE: (u32, u32) = (900, 540);

/// Registers a DejaVu font with plotters once; false when none is installed,
/// in which case charts are drawn without text.
pub fn font_available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
        ];
        candidates.iter().any(|p| match std::fs::read(p) {
            // plotters keeps the bytes for the life of the program.
            Ok(bytes) => plotters::style::register_font(
                "sans-serif",
                plotters::style::FontStyle::Normal,
                Box::leak(bytes.into_boxed_slice()),
            )
            .is_ok(),
            Err(_) => false,
        })
    })
}

/// A white canvas of [`SIZE`] backed by `png`; call `present()` on it at the end.
pub fn canvas(
    png: &Path,
) -> Result<DrawingArea<BitMapBackend<'_>, Shift>, Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(png, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    Ok(root)
}

/// A builder on `root` with shiren's margin and, when there is a font, the
/// caption and label areas (`y_labels`: the width of the y axis's labels).
pub fn builder<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    caption: &str,
    y_labels: u32,
) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.margin(15);
    if font_available() {
        b.caption(caption, ("sans-serif", 20))
            .x_label_area_size(40)
            .y_label_area_size(y_labels);
    }
    b
}

/// The framed, half-transparent legend every chart uses.
pub fn legend<'a, 'b, DB, CT>(
    chart: &'b mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> PlotResult
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// One line of a [`lines`] chart.
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    /// Stroke width in pixels.
    pub width: u32,
    /// Also a dot at each point (for sparse series such as validation).
    pub dots: bool,
}

/// A line chart of `lines` over x in `0..x_max` and y in `y`, with axis
/// titles `axes` (x, y) and whole-number x labels.
pub fn lines(
    png: &Path,
    caption: &str,
    axes: (&str, &str),
    x_max: f64,
    y: Range<f64>,
    lines: &[Line],
) -> PlotResult {
    let text = font_available();
    let root = canvas(png)?;
    let mut chart = builder(&root, caption, 55).build_cartesian_2d(0f64..x_max, y)?;
    if text {
        chart
            .configure_mesh()
            .x_desc(axes.0)
            .y_desc(axes.1)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()?;
    }
    for l in lines {
        let style = l.color.stroke_width(l.width);
        let series = chart.draw_series(LineSeries::new(l.points.iter().copied(), style))?;
        if text {
            series
                .label(l.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        if l.dots {
            let dot = l.color.filled();
            chart.draw_series(l.points.iter().map(|&p| Circle::new(p, 3, dot)))?;
        }
    }
    if text {
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_is_a_png_of_the_shared_size() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("lines.png");
        let line = |label: &str, color, dots| Line {
            label: label.into(),
            points: vec![(0.0, 3.0), (10.0, 2.0), (20.0, 1.5)],
            color,
            width: 2,
            dots,
        };
        lines(
            &png,
            "test",
            ("step", "loss"),
            20.0,
            1.0..3.5,
            &[line("a", BLUE, false), line("b", RED, true)],
        )
        .unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // IHDR: width and height, big-endian, at bytes 16..24
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((w, h), SIZE);
    }
}
