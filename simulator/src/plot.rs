//! Plots drawn by `kasim` itself, as SVG and PNG (the file's extension decides): line charts (time
//! against N per strategy, completion-time CDFs) and per-node Gantt timelines. No system font is used:
//! SVG text is left to the viewer, PNG text is drawn with a bitmap font ([`pixel_text`]).

mod pixel_text;

use pixel_text::PixelText;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing failed (the message of the plotting library).
    #[error("drawing {path}: {message}")]
    Draw {
        /// The file being drawn.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The PNG could not be encoded or written.
    #[error("writing {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The extension is neither `.svg` nor `.png`.
    #[error("{0}: a plot file must end in .svg or .png")]
    Format(String),
}

/// One named line of a line chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The legend.
    pub name: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// Title above the chart.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Logarithmic x axis (x values must be > 0).
    pub log_x: bool,
    /// Logarithmic y axis (y values must be > 0).
    pub log_y: bool,
}

/// One bar of a Gantt chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    /// Row (0 = top).
    pub row: usize,
    /// Start, in the x unit.
    pub start: f64,
    /// End.
    pub end: f64,
    /// Index into [`Gantt::phases`] (its colour and legend).
    pub phase: usize,
}

/// A Gantt chart: one row per node, one coloured bar per phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Gantt {
    /// Title.
    pub title: String,
    /// Row labels, top to bottom.
    pub rows: Vec<String>,
    /// The bars.
    pub bars: Vec<Bar>,
    /// Phase names (legend), in colour order.
    pub phases: Vec<String>,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

const SIZE: (u32, u32) = (960, 600);

/// Something drawable on any backend.
trait Drawable {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>;
}

impl Drawable for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        draw_lines(root, self)
    }
}

impl Drawable for Gantt {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        draw_gantt(root, self)
    }
}

/// Writes `chart` to `path` (`.svg` or `.png`).
pub fn line_chart(path: &Path, chart: &LineChart) -> Result<(), PlotError> {
    render(path, SIZE, chart)
}

/// Writes `gantt` to `path` (`.svg` or `.png`).
pub fn gantt(path: &Path, gantt: &Gantt) -> Result<(), PlotError> {
    let height = (gantt.rows.len() as u32 * 4 + 160).clamp(400, 4000);
    render(path, (1200, height), gantt)
}

/// Draws `what` on an SVG or PNG backend chosen by `path`'s extension.
fn render<T: Drawable>(path: &Path, size: (u32, u32), what: &T) -> Result<(), PlotError> {
    let shown = path.display().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let draw_err = |message: String| PlotError::Draw {
        path: shown.clone(),
        message,
    };
    match ext {
        "svg" => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            what.draw(root).map_err(draw_err)
        }
        "png" => {
            let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
            {
                let backend = PixelText(BitMapBackend::with_buffer(&mut buf, size));
                what.draw(DrawingArea::from(backend)).map_err(draw_err)?;
            }
            write_png(path, size, &buf).map_err(|message| PlotError::Write {
                path: shown.clone(),
                message,
            })
        }
        _ => Err(PlotError::Format(shown)),
    }
}

fn write_png(path: &Path, (w, h): (u32, u32), rgb: &[u8]) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

/// The range covering `values` with a margin (a unit range when empty or flat).
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        (0.0, 1.0)
    } else if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        let m = (hi - lo) * 0.05;
        (lo - m, hi + m)
    }
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    chart: &LineChart,
) -> Result<(), String> {
    let scale = |log: bool, v: f64| if log { v.max(1e-300).log10() } else { v };
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = span(points().map(|p| scale(chart.log_x, p.0)));
    let (ylo, y1) = span(points().map(|p| scale(chart.log_y, p.1)));
    let y0 = if chart.log_y { ylo } else { ylo.min(0.0) };
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut c = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(110)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    // Log axes are drawn in log10 units and labelled with the values.
    let label = |log: bool| {
        move |v: &f64| {
            if log {
                format!("{}", (10f64.powf(*v) * 100.0).round() / 100.0)
            } else {
                format!("{v:.2}")
            }
        }
    };
    let (x_fmt, y_fmt) = (label(chart.log_x), label(chart.log_y));
    c.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in chart.series.iter().enumerate() {
        let col = color(i);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|p| (scale(chart.log_x, p.0), scale(chart.log_y, p.1)))
            .collect();
        c.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
        c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, col.filled())))
            .map_err(|e| e.to_string())?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn draw_gantt<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, g: &Gantt) -> Result<(), String> {
    let (_, x1) = span(g.bars.iter().map(|b| b.end));
    let n = g.rows.len().max(1);
    // Row 0 at the top: row r spans y in [n − 1 − r, n − r].
    let y_of = |row: usize| (n - 1 - row.min(n - 1)) as f64;
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut c = ChartBuilder::on(&root)
        .caption(&g.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(180)
        .build_cartesian_2d(0.0..x1, 0.0..n as f64)
        .map_err(|e| e.to_string())?;
    let labels = g.rows.clone();
    c.configure_mesh()
        .disable_y_mesh()
        .x_desc("virtual seconds")
        .y_labels(n.min(20) + 1)
        .y_label_formatter(&|y: &f64| {
            let k = y.floor();
            if y.fract() != 0.0 || k < 0.0 || k >= n as f64 {
                return String::new();
            }
            labels.get(n - 1 - k as usize).cloned().unwrap_or_default()
        })
        .draw()
        .map_err(|e| e.to_string())?;
    for (p, name) in g.phases.iter().enumerate() {
        let col = color(p);
        c.draw_series(
            g.bars
                .iter()
                .filter(|b| b.phase == p && b.end.is_finite() && b.start.is_finite())
                .map(|b| {
                    let y = y_of(b.row);
                    Rectangle::new(
                        [(b.start, y + 0.1), (b.end.max(b.start), y + 0.9)],
                        col.filled(),
                    )
                }),
        )
        .map_err(|e| e.to_string())?
        .label(name.as_str())
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], col.filled()));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> LineChart {
        LineChart {
            title: "time against N".into(),
            x_label: "nodes".into(),
            y_label: "seconds".into(),
            series: vec![
                Series {
                    name: "chain".into(),
                    points: vec![(10.0, 9.0), (100.0, 9.1), (1000.0, 9.5)],
                },
                Series {
                    name: "tree(2)".into(),
                    points: vec![(10.0, 17.0), (100.0, 17.2), (1000.0, 17.3)],
                },
            ],
            log_x: true,
            log_y: true,
        }
    }

    #[test]
    fn svg_and_png_are_written_without_system_fonts() {
        let dir = std::env::temp_dir().join(format!("kasim-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        line_chart(&dir.join("a.svg"), &chart()).unwrap();
        line_chart(&dir.join("a.png"), &chart()).unwrap();
        let svg = std::fs::read_to_string(dir.join("a.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("chain") && svg.contains("<polyline"));
        let png = std::fs::read(dir.join("a.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // Text is drawn: the PNG's pixels are not only white and the line colours.
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let black = buf.chunks(3).filter(|p| p == &[0, 0, 0]).count();
        assert!(black > 500, "axis and labels drawn: {black} black pixels");
        let g = Gantt {
            title: "timeline".into(),
            rows: vec!["node-1".into(), "node-2".into()],
            bars: vec![
                Bar {
                    row: 0,
                    start: 0.0,
                    end: 10.0,
                    phase: 0,
                },
                Bar {
                    row: 1,
                    start: 1.0,
                    end: 12.0,
                    phase: 1,
                },
            ],
            phases: vec!["boot".into(), "broadcast".into()],
        };
        gantt(&dir.join("g.svg"), &g).unwrap();
        gantt(&dir.join("g.png"), &g).unwrap();
        assert!(matches!(
            gantt(&dir.join("g.jpg"), &g),
            Err(PlotError::Format(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
