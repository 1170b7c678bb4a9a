//! A report's table as a chart (`format=svg`, or `Accept: image/svg+xml`),
//! drawn with plotters' SVG backend from the cells of the answer, so it shows exactly the release
//! the JSON and CSV give (from the ledger when asked again: no new cost). The chart follows the
//! table's shape: bars for one category, lines over time, a matrix for two or more categories
//! (citizenship by country of exploitation, a corridor by its end). Margins are error bars or
//! `±` labels; a withheld cell is drawn as the word "withheld", never as a zero, and withheld
//! cells a chart has no room for are counted in a note under it. Every mark (a bar,
//! a point, a matrix cell) is filled with [`MARK`] and nothing else is, so a test can count them.

use std::collections::HashMap;

use plotters::element::ErrorBar;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::catalogue::Dimension;
use super::output::{Cell, ReportResult, TOTAL};

/// The fill of every mark, and of nothing else.
pub const MARK: RGBColor = RGBColor(31, 119, 180);
const INK: RGBColor = RGBColor(33, 33, 33);
const MUTED: RGBColor = RGBColor(90, 90, 90);
const RULE: RGBColor = RGBColor(200, 200, 200);
/// Line colours of the series of a line chart (their points are marks, in [`MARK`]); dark enough
/// for their names, written in them, to read at 4.5:1 on white.
const SERIES: [RGBColor; 8] = [
    RGBColor(31, 95, 153),
    RGBColor(178, 34, 34),
    RGBColor(46, 125, 50),
    RGBColor(106, 61, 154),
    RGBColor(140, 86, 75),
    RGBColor(173, 20, 87),
    RGBColor(85, 85, 85),
    RGBColor(122, 96, 0),
];
/// The largest matrix drawn; a country-by-country table beyond it is in the table only.
const MAX_ROWS: usize = 120;
const MAX_COLS: usize = 40;
const FONT: &str = "sans-serif";
const WIDTH: u32 = 960;
const TOP: i32 = 84;
/// Categories a bar chart lists one by one, withheld ones included; beyond it, only released ones.
const MAX_BARS: usize = 40;

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;

/// A cell's released count and margin, or `None` when withheld.
fn released(cell: &Cell) -> Option<(i64, i64)> {
    cell.victims.filter(|_| !cell.withheld).map(|v| (v, cell.margin))
}

fn label(value: &str) -> String {
    shortened(value, 30)
}

/// `value` as words, at most `max` characters.
fn shortened(value: &str, max: usize) -> String {
    let text = value.replace('_', " ");
    match text.chars().count() > max {
        true => format!("{}…", text.chars().take(max - 1).collect::<String>()),
        false => text,
    }
}

fn font(size: u32, color: &RGBColor) -> TextStyle<'static> {
    (FONT, size).into_font().color(color)
}

fn anchored(size: u32, color: &RGBColor, h: HPos) -> TextStyle<'static> {
    font(size, color).pos(Pos::new(h, VPos::Center))
}

/// The distinct values of dimension `d` in table order, totals left out.
fn values(cells: &[Cell], d: usize) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for cell in cells {
        let v = &cell.key[d];
        if v != TOTAL && !seen.contains(v) {
            seen.push(v.clone());
        }
    }
    seen
}

/// Axis steps: four even integer steps up to at least `max`.
fn ticks(max: i64) -> Vec<i64> {
    let step = ((max.max(1) + 3) / 4).max(1);
    (0..=4).map(|k| k * step).collect()
}

/// The chart of `result`, as an SVG document with a title and a description for screen readers.
pub fn svg(result: &ReportResult) -> Result<String, String> {
    let dims = &result.dimensions;
    let mut whole: Vec<Cell> = result.cells.to_vec();
    // A table without dimensions is its total: one bar. Otherwise the totals are not drawn.
    if !dims.is_empty() {
        whole.retain(|c| !c.key.iter().any(|k| k == TOTAL));
    }
    let time = dims.first().and_then(|d| d.time_grain()).is_some();
    let (kind, height) = match (dims.len(), time) {
        (0 | 1, false) => ("Bar chart", bars_height(&whole)),
        (1 | 2, true) => ("Line chart", TOP as u32 + 420),
        _ => ("Matrix", matrix_height(&whole, dims.len())),
    };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (matrix_width(&whole, dims, kind), height)).into_drawing_area();
        let drawn = header(&root, result).and_then(|_| match kind {
            "Bar chart" => bars(&root, &whole, dims.first()),
            "Line chart" => lines(&root, &whole, dims.len()),
            _ => matrix(&root, &whole, dims.len()),
        });
        drawn.and_then(|_| root.present().map_err(Into::into)).map_err(|e| e.to_string())?;
    }
    let drawn = match kind {
        "Matrix" => {
            let (rows, cols) = matrix_axes(&whole, dims.len());
            whole
                .iter()
                .filter(|c| {
                    released(c).is_some()
                        && rows.contains(&c.key[..dims.len() - 1].to_vec())
                        && cols.contains(&c.key[dims.len() - 1])
                })
                .count()
        }
        _ => whole.iter().filter(|c| released(c).is_some()).count(),
    };
    Ok(accessible(out, result, kind, &whole, drawn))
}

fn period(result: &ReportResult) -> String {
    match (&result.from, &result.to) {
        (Some(from), Some(to)) => format!("{from} to {to}"),
        (Some(from), None) => format!("from {from}"),
        (None, Some(to)) => format!("to {to}"),
        (None, None) => "all periods".into(),
    }
}

fn counts(result: &ReportResult) -> &'static str {
    if result.privacy.guarded { "noisy counts, 95% margins" } else { "exact counts" }
}

fn header(root: &Area, result: &ReportResult) -> Drawn {
    root.fill(&WHITE)?;
    root.draw(&Text::new(result.title.clone(), (20, 30), font(20, &INK)))?;
    let line = format!("{} · {} · {}", period(result), result.privacy.population, counts(result));
    root.draw(&Text::new(line, (20, 56), font(13, &MUTED)))?;
    Ok(())
}

fn bars_height(cells: &[Cell]) -> u32 {
    let rows = shown_bars(cells).0.len().max(1);
    (TOP + 30 + rows as i32 * 26 + 70) as u32
}

/// The bars listed, and how many withheld categories are left out.
fn shown_bars(cells: &[Cell]) -> (Vec<&Cell>, usize) {
    if cells.len() <= MAX_BARS {
        return (cells.iter().collect(), 0);
    }
    let shown: Vec<&Cell> = cells.iter().filter(|c| released(c).is_some()).collect();
    let left_out = cells.len() - shown.len();
    (shown, left_out)
}

fn bars(root: &Area, cells: &[Cell], dim: Option<&Dimension>) -> Drawn {
    let (shown, left_out) = shown_bars(cells);
    let (left, right) = (240, WIDTH as i32 - 110);
    let top = TOP + 30;
    let steps = ticks(shown.iter().filter_map(|c| released(c)).map(|(v, m)| v + m).max().unwrap_or(1));
    let max = steps[4] as f64;
    let x = |v: i64| left + ((v.max(0) as f64 / max) * f64::from(right - left)) as i32;
    if let Some(dim) = dim {
        root.draw(&Text::new(label(&dim.to_string()), (20, top - 14), font(12, &MUTED)))?;
    }
    for (i, cell) in shown.iter().enumerate() {
        let y = top + i as i32 * 26;
        let name = cell.key.first().map(|k| label(k)).unwrap_or_else(|| "all".into());
        root.draw(&Text::new(name, (left - 8, y + 13), anchored(12, &INK, HPos::Right)))?;
        match released(cell) {
            Some((v, m)) => {
                root.draw(&Rectangle::new([(left, y + 5), (x(v).max(left + 1), y + 21)], MARK.filled()))?;
                root.draw(&ErrorBar::new_horizontal(y + 13, x(v - m), x(v), x(v + m), MUTED.stroke_width(1), 8))?;
                root.draw(&Text::new(format!("{v} ±{m}"), (x(v + m) + 6, y + 13), anchored(12, &INK, HPos::Left)))?;
            }
            None => root.draw(&Text::new("withheld", (left + 4, y + 13), anchored(12, &MUTED, HPos::Left)))?,
        }
    }
    let base = top + shown.len() as i32 * 26 + 6;
    root.draw(&PathElement::new(vec![(left, base), (right, base)], RULE.stroke_width(1)))?;
    for v in steps {
        root.draw(&Text::new(v.to_string(), (x(v), base + 14), anchored(11, &MUTED, HPos::Center)))?;
    }
    if left_out > 0 {
        let note = format!("{left_out} further values withheld (counts below k) are not listed.");
        root.draw(&Text::new(note, (left, base + 38), font(12, &MUTED)))?;
    }
    Ok(())
}

fn lines(root: &Area, cells: &[Cell], dims: usize) -> Drawn {
    let periods = values(cells, 0);
    let series: Vec<String> = if dims == 2 { values(cells, 1) } else { vec![String::new()] };
    let (left, right, top, bottom) = (70, WIDTH as i32 - 210, TOP + 20, TOP + 340);
    let steps = ticks(cells.iter().filter_map(released).map(|(v, m)| v + m).max().unwrap_or(1));
    let max = steps[4] as f64;
    let step = f64::from(right - left) / (periods.len().max(2) - 1) as f64;
    let by_key: HashMap<&[String], &Cell> = cells.iter().map(|c| (c.key.as_slice(), c)).collect();
    let x = |i: usize| left + (i as f64 * step) as i32;
    let y = |v: i64| bottom - ((v.max(0) as f64 / max) * f64::from(bottom - top)) as i32;
    root.draw(&PathElement::new(vec![(left, bottom), (right, bottom)], RULE.stroke_width(1)))?;
    root.draw(&PathElement::new(vec![(left, top), (left, bottom)], RULE.stroke_width(1)))?;
    for v in steps {
        root.draw(&Text::new(v.to_string(), (left - 6, y(v)), anchored(11, &MUTED, HPos::Right)))?;
    }
    let every = periods.len().div_ceil(12).max(1);
    for (i, p) in periods.iter().enumerate().filter(|(i, _)| i % every == 0) {
        root.draw(&Text::new(p.clone(), (x(i), bottom + 14), anchored(11, &MUTED, HPos::Center)))?;
    }
    root.draw(&Text::new("withheld:", (left - 6, bottom + 34), anchored(11, &MUTED, HPos::Right)))?;
    let mut ends: Vec<(i32, String, RGBColor)> = Vec::new();
    for (s, name) in series.iter().enumerate() {
        let color = SERIES[s % SERIES.len()];
        let point = |i: usize| {
            let key: Vec<String> =
                if dims == 1 { vec![periods[i].clone()] } else { vec![periods[i].clone(), name.clone()] };
            by_key.get(key.as_slice()).copied()
        };
        let mut run: Vec<(i32, i32)> = Vec::new();
        let mut last = None;
        for i in 0..periods.len() {
            match point(i).and_then(released) {
                Some((v, m)) => {
                    run.push((x(i), y(v)));
                    root.draw(&ErrorBar::new_vertical(x(i), y(v + m), y(v), y(v - m), color.stroke_width(1), 6))?;
                    last = Some((x(i), y(v)));
                }
                None => {
                    if point(i).is_some() {
                        root.draw(&Text::new("×", (x(i), bottom + 34), anchored(11, &color, HPos::Center)))?;
                    }
                    if run.len() > 1 {
                        root.draw(&PathElement::new(std::mem::take(&mut run), color.stroke_width(2)))?;
                    }
                    run.clear();
                }
            }
        }
        if run.len() > 1 {
            root.draw(&PathElement::new(run, color.stroke_width(2)))?;
        }
        for i in 0..periods.len() {
            if let Some((v, _)) = point(i).and_then(released) {
                root.draw(&Circle::new((x(i), y(v)), 3, MARK.filled()))?;
            }
        }
        if let Some((_, ly)) = last.filter(|_| !name.is_empty()) {
            ends.push((ly, label(name), color));
        }
    }
    // Each series is named at the height of its last point, moved apart where they would overlap.
    ends.sort_by_key(|(y, _, _)| *y);
    let mut floor = i32::MIN;
    for (y, name, color) in ends {
        let y = y.max(floor);
        root.draw(&Text::new(name, (right + 12, y), anchored(11, &color, HPos::Left)))?;
        floor = y + 14;
    }
    Ok(())
}

/// Rows (the values of every dimension but the last, with at least one released cell) and
/// columns (the last dimension's values with at least one).
fn matrix_axes(cells: &[Cell], dims: usize) -> (Vec<Vec<String>>, Vec<String>) {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut cols: Vec<String> = Vec::new();
    let (mut seen_rows, mut seen_cols) = (std::collections::HashSet::new(), std::collections::HashSet::new());
    for cell in cells.iter().filter(|c| released(c).is_some()) {
        let row = cell.key[..dims - 1].to_vec();
        if seen_rows.insert(row.clone()) {
            rows.push(row);
        }
        if seen_cols.insert(cell.key[dims - 1].clone()) {
            cols.push(cell.key[dims - 1].clone());
        }
    }
    // The first rows and columns in table order, up to the largest matrix drawn.
    rows.truncate(MAX_ROWS);
    cols.truncate(MAX_COLS);
    (rows, cols)
}

fn matrix_height(cells: &[Cell], dims: usize) -> u32 {
    let rows = if dims < 2 { 1 } else { matrix_axes(cells, dims).0.len().max(1) };
    (TOP + 60 + rows as i32 * 26 + 60) as u32
}

fn matrix_width(cells: &[Cell], dims: &[Dimension], kind: &str) -> u32 {
    match kind {
        "Matrix" => (280 + matrix_axes(cells, dims.len()).1.len() as u32 * 110).max(WIDTH),
        _ => WIDTH,
    }
}

fn matrix(root: &Area, cells: &[Cell], dims: usize) -> Drawn {
    let (rows, cols) = matrix_axes(cells, dims);
    let mut withheld_drawn = 0;
    let by_key: HashMap<&[String], &Cell> = cells.iter().map(|c| (c.key.as_slice(), c)).collect();
    let (left, top, w, h) = (260, TOP + 50, 110, 26);
    let max = cells.iter().filter_map(released).map(|(v, _)| v).max().unwrap_or(1).max(1) as f64;
    for (j, col) in cols.iter().enumerate() {
        let cx = left + j as i32 * w + w / 2;
        root.draw(&Text::new(shortened(col, 17), (cx, top - 12), anchored(11, &INK, HPos::Center)))?;
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + i as i32 * h;
        let name = row.iter().map(|v| label(v)).collect::<Vec<_>>().join(" · ");
        root.draw(&Text::new(name, (left - 8, y + h / 2), anchored(11, &INK, HPos::Right)))?;
        for (j, col) in cols.iter().enumerate() {
            let x = left + j as i32 * w;
            let mut key = row.clone();
            key.push(col.clone());
            let Some(cell) = by_key.get(key.as_slice()).copied() else { continue };
            let centre = (x + w / 2, y + h / 2);
            match released(cell) {
                Some((v, m)) => {
                    // At most 0.6 of the mark's colour, so dark text reads on every cell.
                    let strength = 0.1 + 0.5 * (v.max(0) as f64 / max);
                    root.draw(&Rectangle::new([(x + 1, y + 1), (x + w - 1, y + h - 1)], MARK.mix(strength).filled()))?;
                    root.draw(&Text::new(format!("{v} ±{m}"), centre, anchored(11, &INK, HPos::Center)))?;
                }
                None => {
                    withheld_drawn += 1;
                    root.draw(&Text::new("withheld", centre, anchored(10, &MUTED, HPos::Center)))?
                }
            }
        }
    }
    // Withheld cells outside the rows and columns drawn are said to exist, never left unsaid.
    let withheld = cells.iter().filter(|c| released(c).is_none()).count();
    if withheld > withheld_drawn {
        let note = format!("{} further values withheld (counts below k) are not drawn.", withheld - withheld_drawn);
        root.draw(&Text::new(note, (left, top + rows.len() as i32 * h + 24), font(12, &MUTED)))?;
    }
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Adds what assistive technology reads: `role="img"`, a `<title>` and a `<desc>` that says what
/// the chart shows in words, the largest released values with their margins among them.
fn accessible(mut svg: String, result: &ReportResult, kind: &str, cells: &[Cell], drawn: usize) -> String {
    let released_cells: Vec<(&Cell, i64, i64)> =
        cells.iter().filter_map(|c| released(c).map(|(v, m)| (c, v, m))).collect();
    let withheld = cells.len() - released_cells.len();
    let mut largest = released_cells.clone();
    largest.sort_by_key(|(_, v, _)| std::cmp::Reverse(*v));
    let named: Vec<String> = largest
        .iter()
        .take(5)
        .map(|(c, v, m)| {
            let key = if c.key.is_empty() {
                "all".into()
            } else {
                c.key.iter().map(|k| label(k)).collect::<Vec<_>>().join(", ")
            };
            format!("{key}: {v} ±{m}")
        })
        .collect();
    let dims: Vec<String> = result.dimensions.iter().map(|d| label(&d.to_string())).collect();
    let desc = format!(
        "{kind} of {} by {}; {}; {}; {}. {} values released, {} withheld (counts below k){}. Largest: {}.",
        result.title,
        if dims.is_empty() { "nothing".into() } else { dims.join(" and ") },
        period(result),
        result.privacy.population,
        counts(result),
        released_cells.len(),
        withheld,
        if drawn < released_cells.len() {
            format!("; {drawn} drawn, the rest in the table only")
        } else {
            String::new()
        },
        if named.is_empty() { "none".into() } else { named.join("; ") },
    );
    let id = result.report.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let Some(start) = svg.find("<svg") else { return svg };
    let Some(end) = svg[start..].find('>').map(|e| start + e) else { return svg };
    let accessible = format!(
        "<title id=\"chart-{id}-title\">{}</title><desc id=\"chart-{id}-desc\">{}</desc>",
        escape(&format!("{}, {}", result.title, period(result))),
        escape(&desc)
    );
    svg.insert_str(end + 1, &accessible);
    svg.replace_range(
        start..start + 4,
        &format!("<svg role=\"img\" aria-labelledby=\"chart-{id}-title chart-{id}-desc\""),
    );
    svg
}
