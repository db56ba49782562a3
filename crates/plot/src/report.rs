//! Writes the figures (SVG and PNG), the data behind them (`figures.json`) and one
//! self-contained `report.html`: figures embedded as PNG data, the fitted laws with
//! intervals, allocations for the study's budgets and a target budget, diagnostics and
//! warnings, and the command and versions that produced it. No network is needed to open it.

use crate::render::{self, Figure};
use crate::spec::{self, Figures};
use isoflop_core::RunTable;
use isoflop_fit::allocate::{allocate, Allocation, Target};
use isoflop_fit::report::{FitReport, Outcome};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why the outputs could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// plotters failed.
    #[error("{figure}: {message}")]
    Draw {
        /// Which figure.
        figure: String,
        /// What failed.
        message: String,
    },
    /// The output folder holds files that a plot did not write.
    #[error("{path} holds files that isoflop's plot did not write ({names}); choose an empty or new folder, or pass --force to write beside them")]
    Foreign {
        /// The folder.
        path: PathBuf,
        /// Some of the files, quoted.
        names: String,
    },
}

/// Every file name [`write_all`] writes (every figure's SVG and PNG, the figure data and
/// the report).
pub fn file_names() -> Vec<String> {
    let mut v: Vec<String> = FIGURES
        .iter()
        .flat_map(|f| [format!("{}.svg", f.name), format!("{}.png", f.name)])
        .collect();
    v.push(isoflop_core::study_dir::FIGURES_INDEX.into());
    v.push(isoflop_core::study_dir::REPORT_FILE.into());
    v
}

/// Refuses a folder that holds anything [`write_all`] would not have written (so a plot
/// never mixes its figures with another tool's files); a missing or empty folder is fine.
///
/// # Errors
/// [`PlotError::Foreign`] naming up to five of the other entries.
pub fn check_folder(dir: &Path) -> Result<(), PlotError> {
    let ours = file_names();
    let manifest = isoflop_core::manifest::MANIFEST_FILE;
    let mut other: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != manifest && !(n.starts_with('.') && n.contains(".tmp")))
        // A file of a plot's name that a plot did not write (or that changed since) is
        // the user's too: the manifest says which files a plot wrote.
        .filter(|n| !ours.contains(n) || isoflop_core::manifest::foreign(&dir.join(n)))
        .collect();
    if other.is_empty() {
        return Ok(());
    }
    other.sort();
    Err(PlotError::Foreign {
        path: dir.to_path_buf(),
        names: isoflop_core::error::list(other.iter().map(|n| format!("'{n}'")), ", "),
    })
}

/// What was written, and what could not be drawn.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Written {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Figures not drawn, with the reason.
    pub skipped: Vec<String>,
}

/// How the report was made (shown at its end).
#[derive(Clone, Debug)]
pub struct Provenance {
    /// The command line.
    pub command: String,
    /// Versions of the tool and its parts.
    pub versions: String,
}

/// One figure of the report, everything about it in one entry: its files' name, its
/// caption and place in `report.html` (figures appear in this list's order), and where its
/// spec is (built by `spec::figures`, drawn by `render` through [`Figure`]).
pub struct FigureDef {
    /// The files' name: NAME.svg and NAME.png.
    pub name: &'static str,
    /// The caption in the report.
    pub caption: &'static str,
    /// The figure's spec, or why it cannot be drawn.
    pub get: for<'a> fn(&'a Figures) -> Result<Figure<'a>, &'a String>,
    /// A figure of what only some fits have (another law form): where the fit has none,
    /// it is left out without a word rather than reported as not drawn.
    pub optional: bool,
}

/// The figures, in the report's order. Adding one: its spec type and builder in `spec.rs`
/// (a field of [`Figures`]), its renderer in `render.rs` (a variant of [`Figure`]), and an
/// entry here; `write_all`, the report and the plot folder's check all read this list.
pub const FIGURES: [FigureDef; 6] = [
    FigureDef {
        name: "fig1_training_curves",
        caption: "Figure 1. Training curves, the minimum-loss envelope, and the loss each approach predicts along its frontier.",
        get: |f| f.training_curves.as_ref().map(Figure::TrainingCurves),
        optional: false,
    },
    FigureDef {
        name: "fig2_projections",
        caption: "Figure 2. Training curves and the optimal parameters and tokens projected to the target budget.",
        get: |f| f.projections.as_ref().map(Figure::Projections),
        optional: false,
    },
    FigureDef {
        name: "fig3_isoloss",
        caption: "Figure 3. IsoLoss contours of the parametric law, the efficient frontier, the runs, and the IsoFLOP slices.",
        get: |f| f.isoloss.as_ref().map(Figure::IsoLoss),
        optional: false,
    },
    FigureDef {
        name: "fig4_isoflop_slices",
        caption: "Figure 4. Loss against parameters at each budget: Approach 2 parabolas (solid), the Approach 3 law (dashed), vertices (x), the target (triangle).",
        get: |f| f.isoflop_slices.as_ref().map(Figure::IsoFlopSlices),
        optional: false,
    },
    FigureDef {
        name: "fig5_law_forms",
        caption: "Figure 5. Observed final loss against each fitted law form's prediction (coloured by FLOPs; dashed: equality).",
        get: |f| f.forms.as_ref().map(Figure::Forms),
        optional: true,
    },
    FigureDef {
        name: "fig6_repetition",
        caption: "Figure 6. The data-constrained law: what repeated tokens (left) and excess parameters (right) are worth in unique ones, fitted (band: 95% interval of R*) and as Muennighoff et al. 2023 released it (dashed); ticks: the runs.",
        get: |f| f.repetition.as_ref().map(Figure::Repetition),
        optional: true,
    },
];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PlotError + '_ {
    move |source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Standard base64 (RFC 4648) with padding.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Budgets for the allocation table: the study's IsoFLOP budgets, else five log-spaced
/// budgets over its FLOPs.
fn study_budgets(r: &FitReport, table: &RunTable) -> Vec<f64> {
    if let Some(a2) = r.approach2.fitted() {
        return a2.budgets.iter().map(|b| b.budget).collect();
    }
    let lo = table
        .rows
        .iter()
        .map(|o| o.flops)
        .fold(f64::INFINITY, f64::min);
    let hi = table.rows.iter().map(|o| o.flops).fold(0.0, f64::max);
    spec::logspace(lo, hi, 5)
}

/// Writes every figure that the fit supports, `figures.json` and `report.html` into `dir`.
///
/// # Errors
/// [`PlotError`] when a file cannot be written or a figure cannot be drawn.
pub fn write_all(
    dir: &Path,
    r: &FitReport,
    table: &RunTable,
    target_flops: f64,
    prov: &Provenance,
) -> Result<Written, PlotError> {
    write_all_with(dir, r, table, target_flops, prov, &[])
}

/// A section of `report.html` beyond the fit's: a title and its HTML (escaped by its maker).
#[derive(Clone, Debug)]
pub struct Section {
    /// The heading.
    pub title: String,
    /// The body.
    pub html: String,
}

/// [`write_all`], with `sections` added to the report after the fit's tables.
///
/// # Errors
/// As [`write_all`].
pub fn write_all_with(
    dir: &Path,
    r: &FitReport,
    table: &RunTable,
    target_flops: f64,
    prov: &Provenance,
    sections: &[Section],
) -> Result<Written, PlotError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let figs = spec::figures(r, table, target_flops);
    let mut written = Written::default();
    let list = FIGURES
        .iter()
        .enumerate()
        .map(|(i, def)| (i, (def.get)(&figs)));
    let mut embedded: Vec<(usize, Option<String>, Option<String>)> = Vec::new();
    for (i, f) in list {
        let name = FIGURES[i].name;
        match f {
            Ok(fig) => {
                let svg = render::svg(fig).map_err(|message| PlotError::Draw {
                    figure: name.into(),
                    message,
                })?;
                let svg_path = dir.join(format!("{name}.svg"));
                isoflop_core::manifest::write(&svg_path, svg.as_bytes()).map_err(io(&svg_path))?;
                let png_path = dir.join(format!("{name}.png"));
                render::png(fig, &png_path).map_err(|message| PlotError::Draw {
                    figure: name.into(),
                    message,
                })?;
                isoflop_core::manifest::record(&png_path).map_err(io(&png_path))?;
                let png = std::fs::read(&png_path).map_err(io(&png_path))?;
                written.files.push(svg_path);
                written.files.push(png_path);
                embedded.push((i, Some(base64(&png)), None));
            }
            Err(why) if FIGURES[i].optional && why == spec::NOT_FITTED => {
                remove_figure(dir, name)?;
                embedded.push((i, None, None));
            }
            Err(why) => {
                remove_figure(dir, name)?;
                written.skipped.push(format!("{name}: {why}"));
                embedded.push((i, None, Some(why.clone())));
            }
        }
    }
    let json_path = dir.join(isoflop_core::study_dir::FIGURES_INDEX);
    isoflop_core::manifest::write(
        &json_path,
        serde_json::to_string_pretty(&figs)
            .expect("specs serialise")
            .as_bytes(),
    )
    .map_err(io(&json_path))?;
    written.files.push(json_path);
    let html = html(
        r,
        table,
        &figs,
        &embedded,
        target_flops,
        prov,
        &written.skipped,
        sections,
    );
    let html_path = dir.join(isoflop_core::study_dir::REPORT_FILE);
    isoflop_core::manifest::write(&html_path, html.as_bytes()).map_err(io(&html_path))?;
    written.files.push(html_path);
    Ok(written)
}

/// Removes an earlier plot's files of a figure this plot does not draw: the folder would
/// otherwise mix two data sets.
fn remove_figure(dir: &Path, name: &str) -> Result<(), PlotError> {
    for ext in ["svg", "png"] {
        let old = dir.join(format!("{name}.{ext}"));
        if old.exists() {
            std::fs::remove_file(&old).map_err(io(&old))?;
            isoflop_core::manifest::forget(&old);
        }
    }
    Ok(())
}

fn iv(i: Option<&isoflop_fit::stats::Interval>, digits: usize) -> String {
    i.map(|i| format!("[{:.*}, {:.*}]", digits, i.lo, digits, i.hi))
        .unwrap_or_default()
}

fn alloc_rows(out: &mut String, allocs: &[Allocation]) {
    for a in allocs {
        let i = a.intervals.as_ref();
        let ci = |x: Option<&isoflop_fit::stats::Interval>| {
            x.map(|x| {
                format!(
                    " [{}, {}]",
                    spec::short_count(x.lo),
                    spec::short_count(x.hi)
                )
            })
            .unwrap_or_default()
        };
        let _ = writeln!(
            out,
            "<tr><td>{:.3e}</td><td>{}</td><td>{}{}</td><td>{}{}</td><td>{:.1}</td><td>{}</td></tr>",
            a.flops,
            a.approach,
            spec::short_count(a.params),
            ci(i.map(|i| &i.params)),
            spec::short_count(a.tokens),
            ci(i.map(|i| &i.tokens)),
            a.tokens_per_param,
            a.loss.map(|l| format!("{l:.3}")).unwrap_or_else(|| "-".into())
        );
    }
}

fn html(
    r: &FitReport,
    table: &RunTable,
    _figs: &Figures,
    embedded: &[(usize, Option<String>, Option<String>)],
    target: f64,
    prov: &Provenance,
    skipped: &[String],
    sections: &[Section],
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>isoflop report: {}</title>\n<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}img.figure{{max-width:100%;border:1px solid #ddd}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}.warn{{color:#8a4b00}}code{{background:#f5f5f5;padding:1px 4px}}</style></head><body>\n",
        esc(&r.source)
    );
    let _ = writeln!(h, "<h1>Compute-optimal scaling: {}</h1>", esc(&r.source));
    let _ = writeln!(
        h,
        "<p>{} rows, {} runs{}. Counted: N from column <code>{}</code>, C from <code>{}</code>; losses in {}.</p>",
        r.rows,
        r.runs,
        if r.dropped > 0 {
            format!(
                "; the {} highest-loss runs dropped before Approaches 2 and 3",
                r.dropped
            )
        } else {
            String::new()
        },
        esc(&r.counted.params),
        esc(&r.counted.flops),
        esc(&r.counted.loss_unit)
    );
    for n in &r.notes {
        let _ = writeln!(h, "<p class=\"note\">Note: {}</p>", esc(n));
    }
    figures_html(&mut h, embedded);
    laws_html(&mut h, r);
    approach3_html(&mut h, r);
    h.push_str("<h2>Allocations</h2>\n<table><tr><th>FLOPs</th><th>approach</th><th>parameters [95%]</th><th>tokens [95%]</th><th>D/N</th><th>loss</th></tr>\n");
    let laws = r.laws();
    for c in study_budgets(r, table).into_iter().chain([target]) {
        if let Ok(a) = allocate(&laws, Target::Flops(c), 0.95) {
            alloc_rows(&mut h, &a);
        }
    }
    h.push_str("</table>\n");
    let mut warnings = r.warnings();
    for sec in sections {
        let _ = writeln!(h, "<h2>{}</h2>\n{}", esc(&sec.title), sec.html);
    }
    warnings.extend(skipped.iter().map(|s| format!("not drawn: {s}")));
    if !warnings.is_empty() {
        h.push_str("<h2>Warnings</h2>\n<ul>\n");
        for w in warnings {
            let _ = writeln!(h, "<li class=\"warn\">{}</li>", esc(&w));
        }
        h.push_str("</ul>\n");
    }
    let _ = writeln!(
        h,
        "<h2>Provenance</h2>\n<p><code>{}</code></p>\n<p>{}</p>",
        esc(&prov.command),
        esc(&prov.versions)
    );
    h.push_str("<script>window.addEventListener('load',function(){var imgs=Array.prototype.slice.call(document.querySelectorAll('img.figure'));var ok=imgs.filter(function(i){return i.complete&&i.naturalWidth>0;}).length;document.body.setAttribute('data-figures-loaded',ok+'/'+imgs.length);});</script>\n</body></html>\n");
    h
}

/// The figures, embedded as PNG, or why each was not drawn.
fn figures_html(h: &mut String, embedded: &[(usize, Option<String>, Option<String>)]) {
    h.push_str("<h2>Figures</h2>\n");
    for (i, png, why) in embedded {
        let (name, caption) = (FIGURES[*i].name, FIGURES[*i].caption);
        match (png, why) {
            (Some(b64), _) => {
                let _ = writeln!(h, "<figure><img class=\"figure\" id=\"{name}\" alt=\"{}\" src=\"data:image/png;base64,{b64}\"><figcaption>{}</figcaption></figure>", esc(caption), esc(caption));
            }
            (None, Some(why)) => {
                let _ = writeln!(
                    h,
                    "<p class=\"warn\">{}: not drawn: {}</p>",
                    esc(caption.split('.').next().unwrap_or(name)),
                    esc(why)
                );
            }
            _ => {}
        }
    }
}

/// Approaches 1 and 2: each frontier with its intervals, or why it was not fitted.
fn laws_html(h: &mut String, r: &FitReport) {
    h.push_str("<h2>Fitted laws</h2>\n");
    match &r.approach1 {
        Outcome::Fitted(f) => {
            let i = f.intervals.as_ref();
            let _ = writeln!(h, "<p>Approach 1 (envelope of {} curves): N<sub>opt</sub> = {:.4e} C<sup>{:.4}</sup> {}, D<sub>opt</sub> = {:.4e} C<sup>{:.4}</sup> {}</p>", f.runs, f.frontier.params_coef, f.frontier.params_exponent, iv(i.map(|i| &i.params_exponent), 4), f.frontier.tokens_coef, f.frontier.tokens_exponent, iv(i.map(|i| &i.tokens_exponent), 4));
        }
        Outcome::Skipped(why) => {
            let _ = writeln!(
                h,
                "<p class=\"warn\">Approach 1 not fitted: {}</p>",
                esc(why)
            );
        }
        Outcome::NotRequested => {}
    }
    match &r.approach2 {
        Outcome::Fitted(f) => {
            let i = f.intervals.as_ref();
            let _ = writeln!(h, "<p>Approach 2 ({} budgets, {} usable): N<sub>opt</sub> = {:.4e} C<sup>{:.4}</sup> {}, D<sub>opt</sub> = {:.4e} C<sup>{:.4}</sup> {}</p>", f.budgets.len(), f.budgets.iter().filter(|b| b.refused.is_none()).count(), f.frontier.params_coef, f.frontier.params_exponent, iv(i.map(|i| &i.params_exponent), 4), f.frontier.tokens_coef, f.frontier.tokens_exponent, iv(i.map(|i| &i.tokens_exponent), 4));
        }
        Outcome::Skipped(why) => {
            let _ = writeln!(
                h,
                "<p class=\"warn\">Approach 2 not fitted: {}</p>",
                esc(why)
            );
        }
        Outcome::NotRequested => {}
    }
}

/// Approach 3: the law's parameters with their intervals, and its convergence.
fn approach3_html(h: &mut String, r: &FitReport) {
    match &r.approach3 {
        Outcome::Fitted(f) => {
            let i = f.intervals.as_ref();
            let d = &f.diagnostics;
            let _ = writeln!(
                h,
                "<p>Approach 3: L(N, D) = E + A/N<sup>&alpha;</sup> + B/D<sup>&beta;</sup>{}</p>",
                if d.converged {
                    ""
                } else {
                    " <b class=\"warn\">(did not converge: not a result)</b>"
                }
            );
            h.push_str(
                "<table><tr><th>parameter</th><th>estimate</th><th>95% interval</th></tr>\n",
            );
            for (name, v, int, dg) in [
                ("E", f.law.e, i.map(|i| &i.e), 4),
                ("A", f.law.a, i.map(|i| &i.a), 1),
                ("B", f.law.b, i.map(|i| &i.b), 1),
                ("&alpha;", f.law.alpha, i.map(|i| &i.alpha), 4),
                ("&beta;", f.law.beta, i.map(|i| &i.beta), 4),
                (
                    "a = &beta;/(&alpha;+&beta;)",
                    f.params_exponent,
                    i.map(|i| &i.params_exponent),
                    4,
                ),
                (
                    "b = &alpha;/(&alpha;+&beta;)",
                    f.tokens_exponent,
                    i.map(|i| &i.tokens_exponent),
                    4,
                ),
                ("G", f.g, i.map(|i| &i.g), 4),
            ] {
                let _ = writeln!(
                    h,
                    "<tr><td>{name}</td><td>{v:.dg$}</td><td>{}</td></tr>",
                    iv(int, dg)
                );
            }
            h.push_str("</table>\n");
            let search = d.search_words();
            let _ = writeln!(h, "<p>Convergence: objective {:.9e}; {search}; the best stopped by the {:?} rule (largest gradient component {:.1e}).{}</p>", f.objective, d.termination, d.grad_max, i.map(|i| format!(" Intervals: {} of {} bootstrap resamples usable, seed {}.", i.usable, i.resamples, i.seed)).unwrap_or_default());
        }
        Outcome::Skipped(why) => {
            let _ = writeln!(
                h,
                "<p class=\"warn\">Approach 3 not fitted: {}</p>",
                esc(why)
            );
        }
        Outcome::NotRequested => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}

/// The report's section for a validation: the split, the summary per approach and the
/// held-out runs.
pub fn validation_section(v: &isoflop_fit::validate::Validation) -> Section {
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<p>Held out: {} ({} runs); fitted on the other {} runs, up to {:.3e} FLOPs. Each held-out run's loss is predicted by Approach 3's law with a 95% prediction interval (bootstrap laws plus the fitted runs' scatter); N_opt by each approach against the held-out runs' own parabola.</p>",
        esc(&v.split),
        v.held_runs,
        v.fitted_runs,
        v.max_fitted_flops
    );
    h.push_str("<table><tr>");
    for head in isoflop_fit::validate::Summary::HEADERS {
        let _ = write!(h, "<th>{}</th>", esc(head));
    }
    h.push_str("</tr>\n");
    for s in &v.summary {
        h.push_str("<tr>");
        for c in s.cells() {
            let _ = write!(h, "<td>{}</td>", esc(&c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n<table><tr><th>run</th><th>params</th><th>tokens</th><th>observed</th><th>predicted</th><th>95% prediction interval</th><th>error</th></tr>\n");
    for r in &v.runs {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td><td>{:.2}%</td></tr>",
            esc(&r.run),
            spec::short_count(r.params),
            spec::short_count(r.tokens),
            r.observed,
            r.predicted,
            iv(r.interval.as_ref(), 4),
            100.0 * r.rel_error
        );
    }
    h.push_str("</table>\n");
    Section {
        title: "Validation: predictions of runs the fit did not see".into(),
        html: h,
    }
}
