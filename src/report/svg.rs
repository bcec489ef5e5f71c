//! Hand-written SVG charts: every chart is one `<svg class="chart" data-chart="NAME">` with
//! `data-marks` = the number of data marks drawn (bars, cells, points), or a
//! `<div class="nodata" data-nodata="NAME">` saying why there is nothing to draw.

use std::fmt::Write;

use crate::analyze::stats::{count_ticks, time_ticks};
use crate::analyze::{Analysis, Count};
use crate::model::FailureKind;

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// A "no data" block for chart `name`.
pub fn no_data(name: &str, why: &str) -> String {
    format!(
        "<div class=\"nodata\" data-nodata=\"{}\">No data — {}</div>",
        esc(name),
        esc(why)
    )
}

const PALETTE: [&str; 20] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#ff7f0e", "#98df8a", "#d62728", "#9467bd",
    "#8c564b", "#17becf", "#bcbd22", "#7f7f7f",
];

/// One colour per failure kind, in [`FailureKind`] order, each far from the others (the
/// shared palette repeated hues: out-of-memory and network were both blue, host memory and
/// data errors both orange).
const KIND_COLORS: [&str; 17] = [
    "#1f77b4", // oom_gpu: blue
    "#ff7f0e", // oom_host: orange
    "#8c564b", // disk_full: brown
    "#2ca02c", // cuda_error: green
    "#d62728", // gpu_hardware: red
    "#9467bd", // tpu_error: purple
    "#e377c2", // npu_error: pink
    "#17becf", // webgpu_context_lost: cyan
    "#bcbd22", // browser_crash: olive
    "#393b79", // timeout: navy
    "#637939", // network: moss
    "#e7ba52", // software_exception: gold
    "#843c39", // data_error: maroon
    "#9e9e9e", // unknown: grey
    "#7b4173", // worker_crash: plum
    "#6baed6", // worker_disconnected: sky
    "#000000", // coordinator_error: black
];

/// The colour of a kind (stable across charts).
pub fn kind_color(kind: &str) -> &'static str {
    match kind.parse::<FailureKind>() {
        Ok(k) => KIND_COLORS[k.index() % KIND_COLORS.len()],
        Err(_) => "#9e9e9e",
    }
}

/// The colour of a cluster id (-1 = noise).
pub fn cluster_color(id: i64) -> &'static str {
    if id < 0 {
        "#c8c8c8"
    } else {
        PALETTE[(id as usize) % PALETTE.len()]
    }
}

fn fmt_n(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Horizontal bars of labelled counts.
pub fn bars(name: &str, items: &[Count], color_by_kind: bool) -> String {
    if items.is_empty() {
        return no_data(name, "no failures in the history");
    }
    let row = 22.0;
    let left = 150.0;
    let width = 330.0;
    let h = 24.0 + row * items.len() as f64;
    let max = items.iter().map(|c| c.count).max().unwrap_or(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" data-chart=\"{}\" data-marks=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"100%\" style=\"max-width:{w}px\" role=\"img\">",
        esc(name),
        items.len(),
        w = left + width + 110.0
    );
    for (i, c) in items.iter().enumerate() {
        let y = 8.0 + i as f64 * row;
        let w = (c.count as f64 / max * width).max(1.0);
        let color = if color_by_kind {
            kind_color(&c.key)
        } else {
            PALETTE[i % PALETTE.len()]
        };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" class=\"lbl\" text-anchor=\"end\">{}</text><rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{color}\"><title>{}: {} ({:.1} %)</title></rect><text x=\"{}\" y=\"{}\" class=\"val\">{} · {:.1} %</text>",
            left - 6.0,
            y + 14.0,
            esc(&c.key),
            row - 6.0,
            esc(&c.key),
            c.count,
            c.share * 100.0,
            left + w + 5.0,
            y + 14.0,
            c.count,
            c.share * 100.0
        );
    }
    s.push_str("</svg>");
    s
}

/// Hardware class × kind heatmap.
pub fn heatmap(a: &Analysis) -> String {
    let name = "heatmap";
    if a.heatmap.is_empty() {
        return no_data(name, "no failures in the history");
    }
    let classes: Vec<&str> = a.by_hardware.iter().map(|c| c.key.as_str()).collect();
    let kinds: Vec<&str> = a.by_kind.iter().map(|c| c.key.as_str()).collect();
    let cell_w = 44.0;
    let cell_h = 26.0;
    let left = 90.0;
    let top = 130.0;
    let w = left + cell_w * kinds.len() as f64 + 90.0;
    let h = top + cell_h * classes.len() as f64 + 10.0;
    let max = a.heatmap.iter().map(|c| c.count).max().unwrap_or(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" data-chart=\"{name}\" data-marks=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"100%\" style=\"max-width:{w}px\" role=\"img\">",
        a.heatmap.len()
    );
    for (j, k) in kinds.iter().enumerate() {
        let x = left + cell_w * j as f64 + cell_w / 2.0;
        let _ = write!(
            s,
            "<text class=\"lbl\" transform=\"translate({x},{}) rotate(-55)\">{}</text>",
            top - 6.0,
            esc(k)
        );
    }
    for (i, c) in classes.iter().enumerate() {
        let y = top + cell_h * i as f64;
        let _ = write!(
            s,
            "<text class=\"lbl\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + cell_h / 2.0 + 4.0,
            esc(c)
        );
    }
    for cell in &a.heatmap {
        let (Some(i), Some(j)) = (
            classes.iter().position(|c| *c == cell.hardware_class),
            kinds.iter().position(|k| *k == cell.kind),
        ) else {
            continue;
        };
        // Square-root scale so that small cells stay visible beside large ones.
        let t = (cell.count as f64 / max).sqrt();
        let light = 96.0 - 62.0 * t;
        let x = left + cell_w * j as f64;
        let y = top + cell_h * i as f64;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"hsl(210,70%,{light:.0}%)\"><title>{} × {}: {}</title></rect><text x=\"{}\" y=\"{}\" class=\"cell\" text-anchor=\"middle\" fill=\"{}\">{}</text>",
            cell_w - 2.0,
            cell_h - 2.0,
            esc(&cell.hardware_class),
            esc(&cell.kind),
            cell.count,
            x + cell_w / 2.0 - 1.0,
            y + cell_h / 2.0 + 3.0,
            if light < 60.0 { "#fff" } else { "#223" },
            fmt_n(cell.count as f64)
        );
    }
    s.push_str("</svg>");
    s
}

fn time_label(us: i64, step_s: f64) -> String {
    let Some(dt) = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us) else {
        return us.to_string();
    };
    let f = if step_s >= 86_400.0 * 28.0 {
        "%Y-%m"
    } else if step_s >= 86_400.0 {
        "%m-%d"
    } else if step_s >= 60.0 {
        "%m-%d %H:%M"
    } else {
        "%H:%M:%S"
    };
    dt.format(f).to_string()
}

/// Failures over time, stacked per kind.
pub fn timeline(a: &Analysis) -> String {
    let name = "timeline";
    let t = &a.timeline;
    if a.totals.failures > 0 && a.totals.first_seen.is_none() {
        return no_data(
            name,
            "no failure has a time of its own (each was given the time it was read)",
        );
    }
    if t.counts.is_empty() || t.kinds.is_empty() {
        return no_data(name, "no failures in the history");
    }
    let left = 60.0;
    let top = 10.0;
    let pw = 800.0;
    let ph = 220.0;
    let nb = t.counts.len();
    let bw = pw / nb as f64;
    let max = t
        .counts
        .iter()
        .map(|b| b.iter().sum::<u64>())
        .max()
        .unwrap_or(1) as f64;
    let (ystep, ytop) = count_ticks(max, 5);
    let mut s = String::new();
    let mut marks = 0;
    let mut body = String::new();
    for (b, bin) in t.counts.iter().enumerate() {
        let mut y = top + ph;
        for (k, c) in bin.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let hgt = *c as f64 / ytop * ph;
            y -= hgt;
            marks += 1;
            let _ = write!(
                body,
                "<rect x=\"{:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{hgt:.2}\" fill=\"{}\"><title>{} {}: {c}</title></rect>",
                left + b as f64 * bw,
                (bw - 0.6).max(0.4),
                kind_color(&t.kinds[k]),
                esc(&time_label(t.start_us + (b as f64 * t.bin_s * 1e6) as i64, t.bin_s)),
                esc(&t.kinds[k])
            );
        }
    }
    let _ = write!(
        s,
        "<svg class=\"chart\" data-chart=\"{name}\" data-marks=\"{marks}\" viewBox=\"0 0 {} {}\" width=\"100%\" role=\"img\">",
        left + pw + 20.0,
        top + ph + 40.0
    );
    // Y axis.
    let mut v = 0.0;
    while v <= ytop + 1e-9 {
        let y = top + ph - v / ytop * ph;
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            left + pw,
            left - 4.0,
            y + 4.0,
            fmt_n(v)
        );
        v += ystep;
    }
    // The y axis's unit (an audit: unlabelled).
    let _ = write!(
        s,
        "<text class=\"tick\" transform=\"translate(12,{:.1}) rotate(-90)\" text-anchor=\"middle\">failures per bar</text>",
        top + ph / 2.0
    );
    s.push_str(&body);
    // X axis: nice ticks over the whole span.
    let end = t.start_us + (nb as f64 * t.bin_s * 1e6) as i64;
    let (ticks, step_s) = time_ticks(t.start_us, end, 8);
    for tk in ticks {
        let x = left + (tk - t.start_us) as f64 / ((end - t.start_us).max(1) as f64) * pw;
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{}\" class=\"axis\"/><text x=\"{x:.1}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
            top + ph,
            top + ph + 5.0,
            top + ph + 18.0,
            esc(&time_label(tk, step_s))
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" class=\"axis\"/><text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"end\">UTC · one bar = {}</text></svg>",
        left + pw,
        top + ph,
        top + ph,
        left + pw,
        top + ph + 34.0,
        esc(&t.bin_label)
    );
    s.push_str("<div class=\"legend\">");
    for k in &t.kinds {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{}</span>",
            kind_color(k),
            esc(k)
        );
    }
    s.push_str("</div>");
    s
}

/// Strategy success rates with 95 % intervals and counts.
pub fn strategies(a: &Analysis) -> String {
    let name = "strategies";
    if a.strategies.is_empty() {
        return no_data(
            name,
            "the history has no outcomes (analyse a simulator directory or a history with outcomes)",
        );
    }
    let row = 26.0;
    let left = 170.0;
    let pw = 280.0;
    let top = 10.0;
    let h = top + row * a.strategies.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" data-chart=\"{name}\" data-marks=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"100%\" style=\"max-width:{w}px\" role=\"img\">",
        a.strategies.len(),
        w = left + pw + 150.0
    );
    for g in 0..=4 {
        let x = left + pw * g as f64 / 4.0;
        let _ = write!(
            s,
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"{top}\" y2=\"{}\" class=\"grid\"/><text x=\"{x}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}%</text>",
            h - 24.0,
            h - 10.0,
            g * 25
        );
    }
    for (i, st) in a.strategies.iter().enumerate() {
        let y = top + i as f64 * row;
        let w = st.rate * pw;
        let (lo, hi) = (left + st.ci_low * pw, left + st.ci_high * pw);
        let cy = y + row / 2.0 - 2.0;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" class=\"lbl\" text-anchor=\"end\">{}</text><rect x=\"{left}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"#59a14f\" opacity=\"0.8\"><title>{}: {}/{} = {:.1} % (95 % CI {:.1}–{:.1} %)</title></rect><line x1=\"{lo:.1}\" x2=\"{hi:.1}\" y1=\"{cy}\" y2=\"{cy}\" class=\"ci\"/><line x1=\"{lo:.1}\" x2=\"{lo:.1}\" y1=\"{}\" y2=\"{}\" class=\"ci\"/><line x1=\"{hi:.1}\" x2=\"{hi:.1}\" y1=\"{}\" y2=\"{}\" class=\"ci\"/><text x=\"{}\" y=\"{}\" class=\"val\">{:.1} % [{:.0}–{:.0}] n={}</text>",
            left - 6.0,
            y + 15.0,
            esc(&st.strategy),
            y + 4.0,
            row - 10.0,
            esc(&st.strategy),
            st.successes,
            st.n,
            st.rate * 100.0,
            st.ci_low * 100.0,
            st.ci_high * 100.0,
            cy - 5.0,
            cy + 5.0,
            cy - 5.0,
            cy + 5.0,
            left + pw + 6.0,
            y + 15.0,
            st.rate * 100.0,
            st.ci_low * 100.0,
            st.ci_high * 100.0,
            st.n
        );
    }
    s.push_str("</svg>");
    s
}

/// Attempts-to-recovery histogram.
pub fn attempts(a: &Analysis) -> String {
    let name = "attempts";
    let at = &a.attempts_to_recovery;
    if at.unrecovered_tasks.is_none() && at.recovered_tasks == 0 {
        return no_data(
            name,
            "no outcomes in the history: recovery cannot be judged",
        );
    }
    if at.histogram.is_empty() || at.recovered_tasks == 0 {
        return no_data(name, "no task has a successful outcome in the history");
    }
    let left = 60.0;
    let top = 10.0;
    let pw = 520.0;
    let ph = 180.0;
    let nb = at.histogram.len();
    let bw = pw / nb as f64;
    let max = at.histogram.iter().map(|h| h.1).max().unwrap_or(1) as f64;
    let (ystep, ytop) = count_ticks(max, 4);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" data-chart=\"{name}\" data-marks=\"{}\" viewBox=\"0 0 {} {}\" width=\"100%\" role=\"img\">",
        at.histogram.iter().filter(|h| h.1 > 0).count(),
        left + pw + 20.0,
        top + ph + 40.0
    );
    let mut v = 0.0;
    while v <= ytop + 1e-9 {
        let y = top + ph - v / ytop * ph;
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            left + pw,
            left - 4.0,
            y + 4.0,
            fmt_n(v)
        );
        v += ystep;
    }
    for (i, (k, c)) in at.histogram.iter().enumerate() {
        let hgt = *c as f64 / ytop * ph;
        let x = left + i as f64 * bw;
        let label = if *k >= at.max_bucket {
            format!("{k}+")
        } else {
            k.to_string()
        };
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hgt:.1}\" fill=\"#4e79a7\"><title>{label} failures: {c} tasks</title></rect><text x=\"{:.1}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{label}</text>",
            x + 2.0,
            top + ph - hgt,
            bw - 4.0,
            x + bw / 2.0,
            top + ph + 16.0
        );
    }
    let _ = write!(
        s,
        "<text class=\"tick\" transform=\"translate(12,{:.1}) rotate(-90)\" text-anchor=\"middle\">tasks</text><text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">failures before the first successful recovery</text></svg>",
        top + ph / 2.0,
        left + pw / 2.0,
        top + ph + 34.0
    );
    s
}

/// The PCA scatter of clusters.
pub fn scatter(a: &Analysis) -> String {
    let name = "clusters";
    let c = &a.clusters;
    if c.pca.points.is_empty() {
        return no_data(
            name,
            c.skipped
                .as_deref()
                .unwrap_or("too few distinct failures for a projection"),
        );
    }
    let size = 420.0;
    let pad = 30.0;
    let xs = c
        .pca
        .points
        .iter()
        .map(|p| p.0)
        .chain(c.pca.centroids.iter().map(|p| p.0));
    let ys = c
        .pca
        .points
        .iter()
        .map(|p| p.1)
        .chain(c.pca.centroids.iter().map(|p| p.1));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |a, v| (a.0.min(v), a.1.max(v)));
    let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |a, v| (a.0.min(v), a.1.max(v)));
    let sx = (x1 - x0).max(1e-9);
    let sy = (y1 - y0).max(1e-9);
    let px = |x: f64| pad + (x - x0) / sx * (size - 2.0 * pad);
    let py = |y: f64| size - pad - (y - y0) / sy * (size - 2.0 * pad);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" data-chart=\"{name}\" data-marks=\"{}\" viewBox=\"0 0 {size} {size}\" width=\"100%\" style=\"max-width:460px\" role=\"img\"><rect x=\"0\" y=\"0\" width=\"{size}\" height=\"{size}\" fill=\"#fbfbfd\" stroke=\"#ddd\"/>",
        c.pca.points.len()
    );
    for (x, y, id) in &c.pca.points {
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.6\" fill=\"{}\" opacity=\"0.65\"/>",
            px(*x),
            py(*y),
            cluster_color(*id)
        );
    }
    for (x, y, id) in &c.pca.centroids {
        let _ = write!(
            s,
            "<g><circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"7\" fill=\"{}\" stroke=\"#222\" stroke-width=\"1.5\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"val\">c{id}</text></g>",
            px(*x),
            py(*y),
            cluster_color(*id),
            px(*x) + 9.0,
            py(*y) + 4.0
        );
    }
    let ex = |i: usize| c.pca.explained.get(i).copied().unwrap_or(0.0) * 100.0;
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">PC1 ({:.0} % of variance)</text><text class=\"tick\" transform=\"translate(12,{}) rotate(-90)\" text-anchor=\"middle\">PC2 ({:.0} %)</text></svg>",
        size / 2.0,
        size - 8.0,
        ex(0),
        size / 2.0,
        ex(1)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: kinds shared colours (out-of-memory and network blue, host memory and data
    /// errors orange). Every kind has its own, and unknown is grey.
    #[test]
    fn every_kind_has_a_colour_of_its_own() {
        assert_eq!(KIND_COLORS.len(), FailureKind::ALL.len());
        let colours: std::collections::HashSet<&str> = FailureKind::ALL
            .iter()
            .map(|k| kind_color(k.as_str()))
            .collect();
        assert_eq!(colours.len(), FailureKind::ALL.len());
        assert_eq!(kind_color("unknown"), "#9e9e9e");
        assert_eq!(kind_color("not-a-kind"), "#9e9e9e");
    }
}
