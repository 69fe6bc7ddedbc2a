//! `nook eval --report DIR`: `report.md` plus PNG plots drawn with plotters (SVG, rasterised by
//! resvg with the system's fonts): fine-tuning loss by step, Recall@K and NDCG@K by K per model,
//! and warm vs cold NDCG@10. Built without the default feature `png` (resvg and its font stack are
//! an eighth of the native build; `scripts/demo.sh` leaves them out), the plots are the SVG files.

use crate::eval::results::EvalReport;
use anyhow::{Context, Result};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// Cut-offs the by-K curves are drawn at.
pub const CURVE_KS: [usize; 7] = [1, 3, 5, 10, 20, 30, 50];

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The asked-for cut-offs plus those the report's curves need.
pub fn with_curve_ks(k: &[usize]) -> Vec<usize> {
    let mut all: Vec<usize> = k.iter().copied().chain(CURVE_KS).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Fine-tuning losses saved in a model directory (`finetune.json`), if any.
pub fn read_losses(model_dir: &Path) -> Option<Vec<f32>> {
    let bytes = std::fs::read(model_dir.join("finetune.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["losses"].as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).map(|x| x as f32).collect())
}

/// Writes `report.md` and the plots into `dir` (created if needed).
pub fn write(dir: &Path, report: &EvalReport, losses: Option<&[f32]>, notes: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut plots: Vec<(&str, String)> = Vec::new();
    if let Some(losses) = losses.filter(|l| !l.is_empty()) {
        plots.push(("Fine-tuning loss by step", save_plot(dir, "finetune_loss", &loss_svg(losses)?)?));
    }
    plots.push(("Recall@K, warm split", save_plot(dir, "recall_at_k", &by_k_svg(report, "recall")?)?));
    plots.push(("NDCG@K, warm split", save_plot(dir, "ndcg_at_k", &by_k_svg(report, "ndcg")?)?));
    plots.push(("NDCG@10, warm vs cold items", save_plot(dir, "warm_vs_cold", &warm_cold_svg(report)?)?));
    crate::atomic::write_file(&dir.join("report.md"), markdown(report, losses, notes, &plots).as_bytes())
}

fn models(report: &EvalReport) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &report.results {
        if !out.contains(&r.model) {
            out.push(r.model.clone());
        }
    }
    out
}

fn markdown(report: &EvalReport, losses: Option<&[f32]>, notes: &str, plots: &[(&str, String)]) -> String {
    let mut md = String::new();
    let p = &report.protocol;
    let _ = writeln!(md, "# nook evaluation: {}\n", report.dataset);
    let _ = writeln!(
        md,
        "Protocol: {:?} split {:?} per user, positives rating ≥ {}, {:.0}% of items held out cold, seed {}. \
         {} Full-sort ranking over all candidate items, each user's training items excluded.\n",
        p.protocol,
        p.ratios,
        p.min_rating,
        p.cold_fraction * 100.0,
        report.seed,
        match p.refit {
            true => "Settings chosen on the validation part; final models refitted on train + validation.",
            false => "Final models fitted on the training part alone (no refit).",
        }
    );
    if let Some(encoder) = &report.encoder {
        let _ = writeln!(md, "{}\n", encoder.describe());
    }
    for (split, size) in &report.splits {
        let _ = writeln!(
            md,
            "- `{split}`: {} users, {} positives, {} candidate items",
            size.users, size.positives, size.candidates
        );
    }
    if let Some(rows) = report.data_rows.as_ref().filter(|r| r.skipped > 0) {
        let _ = writeln!(
            md,
            "\n**Skipped rows** (`--skip-bad-rows`): {} of {} rows read ({:.2}%).\n",
            rows.skipped,
            rows.rows,
            100.0 * rows.skipped as f64 / rows.rows.max(1) as f64
        );
        for (reason, n) in &rows.by_reason {
            let _ = writeln!(md, "- {reason}: {n}");
        }
        for first in &rows.first {
            let _ = writeln!(md, "- e.g. `{first}`");
        }
    }
    let _ = writeln!(md);
    let metrics = ["recall@10", "ndcg@10", "map@10", "recall@20", "ndcg@20", "auc", "coverage@10"];
    for split in ["warm", "cold"] {
        if !report.results.iter().any(|r| r.split == split) {
            continue;
        }
        let _ = writeln!(md, "## {split}\n");
        let _ = writeln!(md, "| model | {} |", metrics.join(" | "));
        let _ = writeln!(md, "|---|{}", "---:|".repeat(metrics.len()));
        for m in models(report) {
            let cells: Vec<String> =
                metrics.iter().map(|k| report.get(&m, split, k).map_or("-".into(), |v| format!("{v:.4}"))).collect();
            let _ = writeln!(md, "| {m} | {} |", cells.join(" | "));
        }
        let _ = writeln!(md);
    }
    if !report.differences.is_empty() {
        let _ = writeln!(md, "## Differences with 95% intervals\n");
        let _ = writeln!(
            md,
            "Each model against `ease` and against its ablation (`als-recency` is the fused models without text; \
             `content` is `content-ft` before fine-tuning; `fused-sr` is `fused-ft` plus the order of likes, `sr`): the mean per-user difference and its 95% paired-bootstrap \
             interval ({} resamples of the test users). **Bold**: the interval excludes zero.\n",
            report.differences[0].resamples
        );
        let _ = writeln!(md, "| model | vs | split | metric | model | vs | difference | 95% interval | ratio |");
        let _ = writeln!(md, "|---|---|---|---|---:|---:|---:|---|---:|");
        for d in &report.differences {
            let diff = match d.significant() {
                true => format!("**{:+.4}**", d.difference),
                false => format!("{:+.4}", d.difference),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.4} | {:.4} | {diff} | [{:+.4}, {:+.4}] | {:.3} |",
                d.model,
                d.baseline,
                d.split,
                d.metric,
                d.model_value,
                d.baseline_value,
                d.low,
                d.high,
                d.model_value / d.baseline_value
            );
        }
        let _ = writeln!(md);
    }
    if let Some(q) = &report.queries {
        let _ = writeln!(md, "## What a person types (query benchmark)\n");
        let _ = writeln!(
            md,
            "Queries are the item field `{:?}`, held out of the text the encoder saw; a case is a person and a query \
             some of their test positives match (the targets). `ndcg@10-all` scores the same list against all their \
             test positives: what typing costs the rest of their taste. {} queries, {} cases.\n",
            q.field, q.queries, q.pairs
        );
        let _ = writeln!(md, "| model | ranking | query weight | recall@10 | ndcg@10 | ndcg@10-all |");
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|");
        for (model, r) in &q.models {
            for (name, s) in [("history", r.test.history), ("query", r.test.query), ("blend", r.test.blend)] {
                let w = if name == "blend" { format!("{}", r.query_weight) } else { "-".into() };
                let _ = writeln!(
                    md,
                    "| {model} | {name} | {w} | {:.4} | {:.4} | {:.4} |",
                    s.recall10, s.ndcg10, s.ndcg10_all
                );
            }
        }
        let _ = writeln!(md);
    }
    if let Some(sim) = &report.similar {
        let _ = writeln!(md, "## More like this (item to item)\n");
        let _ = writeln!(
            md,
            "Every candidate ranked by its similarity to the person's last liked item alone, scored against their \
             test positives ({} people). `content` is pure text similarity; the `cf part` / `text part` rows are the \
             fused catalogue's two halves alone.\n",
            sim.users
        );
        let _ = writeln!(md, "| ranker | recall@10 | ndcg@10 |\n|---|---:|---:|");
        for r in &sim.rows {
            let _ = writeln!(md, "| {} | {:.4} | {:.4} |", r.ranker, r.recall10, r.ndcg10);
        }
        let _ = writeln!(md);
    }
    if !report.fit_seconds.is_empty() {
        let _ = writeln!(md, "## Time and memory\n");
        for (what, secs) in &report.fit_seconds {
            let peak = report.peak_rss_mb.get(what).map(|mb| format!(" (peak memory so far {mb:.0} MB)"));
            let _ = writeln!(md, "- {what}: {secs:.1} s{}", peak.unwrap_or_default());
        }
        let _ = writeln!(md);
    }
    if let Some(l) = losses.filter(|l| !l.is_empty()) {
        let tail = &l[l.len().saturating_sub(20)..];
        let _ = writeln!(
            md,
            "## Fine-tuning\n\n{} steps; loss {:.3} at the first step, {:.3} averaged over the last {}.\n",
            l.len(),
            l[0],
            tail.iter().sum::<f32>() / tail.len() as f32,
            tail.len()
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "## Choices made on the validation split\n\n{notes}\n");
    }
    let _ = writeln!(md, "## Plots\n");
    for (title, file) in plots {
        let _ = writeln!(md, "### {title}\n\n![{title}]({file})\n");
    }
    md
}

fn svg_area(
    width: u32,
    height: u32,
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        draw(root.clone())?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(svg)
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing: {e}")
}

fn loss_svg(losses: &[f32]) -> Result<String> {
    let max = losses.iter().copied().fold(0f32, f32::max).max(1e-3) * 1.05;
    let window = (losses.len() / 20).max(1);
    let smooth: Vec<(usize, f32)> = (0..losses.len())
        .map(|i| {
            let lo = i.saturating_sub(window - 1);
            (i + 1, losses[lo..=i].iter().sum::<f32>() / (i - lo + 1) as f32)
        })
        .collect();
    svg_area(900, 500, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("Fine-tuning loss (InfoNCE)", ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1usize..losses.len().max(2), 0f32..max)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("step").y_desc("loss").draw().map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(losses.iter().enumerate().map(|(i, &l)| (i + 1, l)), PALETTE[0].mix(0.35)))
            .map_err(plot_err)?
            .label("per step")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], PALETTE[0].mix(0.35)));
        chart
            .draw_series(LineSeries::new(smooth, PALETTE[1].stroke_width(2)))
            .map_err(plot_err)?
            .label(format!("moving average ({window} steps)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], PALETTE[1].stroke_width(2)));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(plot_err)?;
        Ok(())
    })
}

fn by_k_svg(report: &EvalReport, metric: &str) -> Result<String> {
    let ks: Vec<usize> = report.ks.clone();
    let series: Vec<(String, Vec<(usize, f64)>)> = models(report)
        .into_iter()
        .map(|m| {
            let points =
                ks.iter().filter_map(|&k| report.get(&m, "warm", &format!("{metric}@{k}")).map(|v| (k, v))).collect();
            (m, points)
        })
        .collect();
    let max = series.iter().flat_map(|(_, p)| p.iter().map(|x| x.1)).fold(0f64, f64::max).max(1e-3) * 1.1;
    let kmax = ks.iter().copied().max().unwrap_or(10);
    svg_area(900, 550, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{}@K by K (warm)", metric.to_uppercase()), ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0usize..kmax + 1, 0f64..max)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("K").y_desc(format!("{metric}@K")).draw().map_err(plot_err)?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(plot_err)?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(plot_err)?;
        }
        upper_left_legend(&mut chart)
    })
}

fn warm_cold_svg(report: &EvalReport) -> Result<String> {
    let names = models(report);
    let value = |m: &str, s: &str| report.get(m, s, "ndcg@10").unwrap_or(0.0);
    let max = names.iter().flat_map(|m| [value(m, "warm"), value(m, "cold")]).fold(0f64, f64::max).max(1e-3) * 1.15;
    let n = names.len().max(1);
    svg_area(900, 500, |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("NDCG@10: warm test split vs cold items", ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n as f64, 0f64..max)
            .map_err(plot_err)?;
        let labels = names.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 0.26 {
                    labels.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("ndcg@10")
            .draw()
            .map_err(plot_err)?;
        for (s, (split, color)) in [("warm", PALETTE[0]), ("cold", PALETTE[1])].into_iter().enumerate() {
            chart
                .draw_series(names.iter().enumerate().map(|(i, m)| {
                    let x0 = i as f64 + 0.1 + 0.4 * s as f64;
                    Rectangle::new([(x0, 0.0), (x0 + 0.38, value(m, split))], color.filled())
                }))
                .map_err(plot_err)?
                .label(split)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled()));
        }
        upper_left_legend(&mut chart)
    })
}

/// The legend of the bar and curve charts: upper left, framed, on a translucent white.
fn upper_left_legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(plot_err)
}

/// Writes a plot as `dir/stem.png` (or `.svg` without the `png` feature); returns the file name.
fn save_plot(dir: &Path, stem: &str, svg: &str) -> Result<String> {
    #[cfg(feature = "png")]
    let (name, bytes) = (format!("{stem}.png"), rasterise(svg)?);
    #[cfg(not(feature = "png"))]
    let (name, bytes) = (format!("{stem}.svg"), svg.as_bytes().to_vec());
    crate::atomic::write_file(&dir.join(&name), &bytes)?;
    Ok(name)
}

/// Rasterises an SVG to PNG with the system's fonts.
#[cfg(feature = "png")]
fn rasterise(svg: &str) -> Result<Vec<u8>> {
    let mut options = resvg::usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    // Plotters asks for the generic "sans-serif"; point it at a font this machine has.
    let families: Vec<String> =
        options.fontdb.faces().flat_map(|f| f.families.iter().map(|(name, _)| name.clone())).collect();
    let family = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"]
        .iter()
        .map(|s| s.to_string())
        .find(|f| families.contains(f))
        .or_else(|| families.first().cloned())
        .context("no system fonts for the plots' text (install fonts-dejavu-core)")?;
    options.fontdb_mut().set_sans_serif_family(family);
    let tree = resvg::usvg::Tree::from_str(svg, &options).context("parsing the plot SVG")?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).context("allocating the plot image")?;
    resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().context("encoding PNG")
}
