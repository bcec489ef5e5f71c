//! Small statistics for the analysis: Wilson intervals, "nice" time bins and axis ticks,
//! and a two-component PCA by power iteration.

use ndarray::{Array1, Array2, Axis};

/// The 95 % Wilson score interval of `successes` out of `n` (`(0, 1)` for `n = 0`).
pub fn wilson(successes: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let n = n as f64;
    let p = (successes as f64 / n).clamp(0.0, 1.0);
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Candidate bin widths and tick steps for time axes, seconds, with their labels.
const TIME_STEPS: [(f64, &str); 27] = [
    (1.0, "1 s"),
    (2.0, "2 s"),
    (5.0, "5 s"),
    (10.0, "10 s"),
    (15.0, "15 s"),
    (30.0, "30 s"),
    (60.0, "1 min"),
    (120.0, "2 min"),
    (300.0, "5 min"),
    (600.0, "10 min"),
    (900.0, "15 min"),
    (1800.0, "30 min"),
    (3600.0, "1 h"),
    (7200.0, "2 h"),
    (10800.0, "3 h"),
    (21600.0, "6 h"),
    (43200.0, "12 h"),
    (86400.0, "1 day"),
    (172_800.0, "2 days"),
    (604_800.0, "1 week"),
    (1_209_600.0, "2 weeks"),
    (2_592_000.0, "30 days"),
    (7_776_000.0, "90 days"),
    (15_552_000.0, "180 days"),
    (31_536_000.0, "1 year"),
    (63_072_000.0, "2 years"),
    (157_680_000.0, "5 years"),
];

/// The smallest nice time step (seconds, label) that cuts `span_s` into at most `max_steps`
/// pieces; beyond the table, a whole number of years.
pub fn time_step(span_s: f64, max_steps: usize) -> (f64, String) {
    let max_steps = max_steps.max(1) as f64;
    let span = if span_s.is_finite() {
        span_s.max(0.0)
    } else {
        0.0
    };
    for (s, label) in TIME_STEPS {
        if span / s <= max_steps {
            return (s, label.to_string());
        }
    }
    let years = (span / max_steps / 31_536_000.0).ceil().max(1.0);
    (years * 31_536_000.0, format!("{years:.0} years"))
}

/// Tick positions (µs) for a time axis over `[start_us, end_us]`: multiples of a nice step
/// (aligned to the epoch, so days start at midnight UTC), at most `max_ticks` of them.
pub fn time_ticks(start_us: i64, end_us: i64, max_ticks: usize) -> (Vec<i64>, f64) {
    let span = (end_us.saturating_sub(start_us)).max(0) as f64 / 1e6;
    let (step_s, _) = time_step(span, max_ticks.max(1));
    let step = (step_s * 1e6) as i64;
    let mut out = Vec::new();
    if step <= 0 {
        return (out, step_s);
    }
    let mut t = start_us.div_euclid(step) * step;
    if t < start_us {
        t += step;
    }
    while t <= end_us && out.len() < max_ticks.max(1) {
        out.push(t);
        t += step;
    }
    (out, step_s)
}

/// Nice ticks for a count axis from 0 to at least `max`: (step, top).
pub fn count_ticks(max: f64, max_ticks: usize) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / max_ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
        .max(1.0);
    (step, (max / step).ceil() * step)
}

/// A two-component PCA of the rows of `x`: (components 2 × d, explained variance shares).
/// Power iteration on the covariance with deflation; columns are centred first. Returns
/// `None` for fewer than two rows or zero variance.
pub fn pca2(x: &Array2<f64>) -> Option<(Array2<f64>, Vec<f64>)> {
    let (n, d) = x.dim();
    if n < 2 || d == 0 {
        return None;
    }
    let mean = x.mean_axis(Axis(0))?;
    let c = x - &mean;
    let mut cov = c.t().dot(&c) / (n as f64 - 1.0);
    let total: f64 = cov.diag().sum();
    if !(total > 0.0 && total.is_finite()) {
        return None;
    }
    let mut comps = Array2::zeros((2, d));
    let mut shares = Vec::new();
    for k in 0..2 {
        // A deterministic start that is not orthogonal to the leading eigenvector in practice.
        let mut v = Array1::from_shape_fn(d, |j| 1.0 + (j as f64 * 0.618_033_988_7).fract());
        let mut lambda = 0.0;
        for _ in 0..300 {
            let w = cov.dot(&v);
            let norm = w.dot(&w).sqrt();
            if norm <= 1e-12 {
                lambda = 0.0;
                break;
            }
            let next = &w / norm;
            let diff = (&next - &v).mapv(f64::abs).sum();
            v = next;
            lambda = norm;
            if diff < 1e-10 {
                break;
            }
        }
        comps.row_mut(k).assign(&v);
        shares.push((lambda / total).clamp(0.0, 1.0));
        // Deflate: remove the found direction.
        let outer = v
            .view()
            .insert_axis(Axis(1))
            .dot(&v.view().insert_axis(Axis(0)));
        cov = cov - outer * lambda;
    }
    Some((comps, shares))
}

/// Projects rows of `x` (centred with `mean`) onto `comps` (2 × d).
pub fn project(x: &Array2<f64>, mean: &Array1<f64>, comps: &Array2<f64>) -> Array2<f64> {
    (x - mean).dot(&comps.t())
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    #[test]
    fn wilson_matches_known_values() {
        let (lo, hi) = wilson(8, 10);
        assert_abs_diff_eq!(lo, 0.4902, epsilon = 1e-3);
        assert_abs_diff_eq!(hi, 0.9433, epsilon = 1e-3);
        assert_eq!(wilson(0, 0), (0.0, 1.0));
        let (lo, hi) = wilson(0, 5);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.4 && hi < 0.5);
    }

    #[test]
    fn time_steps_stay_few_at_any_span() {
        for span in [0.0, 0.5, 3.0, 59.0, 3600.0, 86_400.0 * 40.0, 3.15e8, 1e12] {
            let (step, _) = time_step(span, 12);
            assert!(span / step <= 12.0, "span {span} step {step}");
            let (ticks, _) = time_ticks(
                1_700_000_000_000_000,
                1_700_000_000_000_000 + (span * 1e6) as i64,
                12,
            );
            assert!(ticks.len() <= 12);
        }
    }

    #[test]
    fn count_ticks_cover_the_max() {
        let (step, top) = count_ticks(937.0, 5);
        assert!(top >= 937.0 && top / step <= 6.0);
        assert_eq!(count_ticks(0.0, 5), (1.0, 1.0));
    }

    #[test]
    fn pca_finds_the_long_axis() {
        let x = array![[0.0, 0.0], [1.0, 0.1], [2.0, -0.1], [3.0, 0.0], [4.0, 0.05]];
        let (c, shares) = pca2(&x).unwrap();
        assert!(c[[0, 0]].abs() > 0.99);
        assert!(shares[0] > 0.99);
        assert!(pca2(&array![[1.0, 1.0]]).is_none());
        assert!(pca2(&array![[1.0, 1.0], [1.0, 1.0]]).is_none());
    }
}
