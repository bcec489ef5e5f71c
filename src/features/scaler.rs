//! Scaling fitted on training data and applied to new rows: standardized measures, raw
//! indicators, block weights.

use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};

use super::schema::Block;
use super::{FeatureError, FeatureMatrix, FeatureSchema};

/// Weight of each block of columns in a distance: after scaling, a block's columns are
/// multiplied by its weight (weights are folded into [`Scaler::factor`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureWeights {
    /// One-hot hardware class (two classes differ by `hardware × √2`).
    pub hardware: f64,
    /// One-hot failure kind.
    pub kind: f64,
    /// Hashed template.
    pub template: f64,
    /// Batch size, precision, memory (standardized).
    pub config: f64,
    /// Attempt, worker gap, worker rate, task's recent failures (standardized).
    pub history: f64,
    /// Hour of day (sin, cos; standardized).
    pub hour: f64,
}

impl Default for FeatureWeights {
    /// What a failure is (kind 2, hardware 1.5, template 1.5) weighs more than its
    /// circumstances (configuration 1, history 0.5, hour 0.25): clusters group failures of a
    /// kind, split by hardware, template and context.
    fn default() -> Self {
        FeatureWeights {
            hardware: 1.5,
            kind: 2.0,
            template: 1.5,
            config: 1.0,
            history: 0.5,
            hour: 0.25,
        }
    }
}

impl FeatureWeights {
    /// Validates the weights (finite, ≥ 0); the error names the field.
    pub fn check(&self) -> Result<(), FeatureError> {
        for (name, w) in [
            ("hardware", self.hardware),
            ("kind", self.kind),
            ("template", self.template),
            ("config", self.config),
            ("history", self.history),
            ("hour", self.hour),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return Err(FeatureError::InvalidParam {
                    field: format!("weights.{name}"),
                    detail: format!("{w} is not a finite number >= 0"),
                });
            }
        }
        Ok(())
    }

    /// The weight of a block.
    pub fn of(&self, block: Block) -> f64 {
        match block {
            Block::Hardware => self.hardware,
            Block::Kind => self.kind,
            Block::Template => self.template,
            Block::Config => self.config,
            Block::History => self.history,
            Block::Hour => self.hour,
        }
    }
}

/// Scaling fitted on training data. A measure is standardized with its mean and population
/// standard deviation (a constant column gets 1, as in scikit-learn's `StandardScaler`); an
/// indicator keeps its 0/±1 values (mean 0, standard deviation taken as 1), so that any two
/// categories stand equally far apart, however frequent. The hour of day (sine and cosine)
/// keeps its scale: mean 0 and standard deviation 1/√2, as over a whole day, whatever span the
/// training data covered. Then every column is multiplied by its
/// block's weight: a column becomes `(x − mean) × factor` with `factor = weight / sd` (a zero
/// weight drops the block: its values become 0).
///
/// Serializable with the schema it was fitted on; applying it to another schema is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scaler {
    /// The schema of the training matrix.
    pub schema: FeatureSchema,
    /// The weights applied.
    pub weights: FeatureWeights,
    /// Column offsets.
    pub mean: Vec<f64>,
    /// Column multipliers (weight / standard deviation).
    pub factor: Vec<f64>,
}

impl Scaler {
    /// Fits on a raw feature matrix.
    pub fn fit(m: &FeatureMatrix, weights: &FeatureWeights) -> Result<Scaler, FeatureError> {
        weights.check()?;
        let (n, d) = m.x.dim();
        if d != m.schema.width() {
            return Err(FeatureError::Width {
                expected: m.schema.width(),
                got: d,
            });
        }
        if n == 0 {
            return Err(FeatureError::Empty);
        }
        let mut mean = vec![0.0; d];
        for row in m.x.axis_iter(Axis(0)) {
            for (acc, v) in mean.iter_mut().zip(row) {
                *acc += v;
            }
        }
        mean.iter_mut().for_each(|v| *v /= n as f64);
        let mut var = vec![0.0; d];
        for row in m.x.axis_iter(Axis(0)) {
            for ((acc, v), mu) in var.iter_mut().zip(row).zip(&mean) {
                *acc += (v - mu) * (v - mu);
            }
        }
        let mut factor = vec![1.0; d];
        for j in 0..d {
            let w = m.schema.block(j).map_or(1.0, |b| weights.of(b));
            let mut sd = 1.0;
            if m.schema.is_indicator(j) {
                mean[j] = 0.0;
            } else if m.schema.block(j) == Some(Block::Hour) {
                // Already on the unit circle: scaled as over a whole day (mean 0, standard
                // deviation 1/√2), not by the training window's own spread — fitted on a
                // few hours, that spread is tiny and the same failure at another hour of the
                // day landed far from every cluster.
                mean[j] = 0.0;
                sd = std::f64::consts::FRAC_1_SQRT_2;
            } else {
                let s = (var[j] / n as f64).sqrt();
                if s.is_finite() && s > 1e-12 {
                    sd = s;
                }
            }
            factor[j] = w / sd;
        }
        Ok(Scaler {
            schema: m.schema.clone(),
            weights: weights.clone(),
            mean,
            factor,
        })
    }

    /// Checks that this scaler was fitted on `schema` (same version and columns).
    pub fn check_schema(&self, schema: &FeatureSchema) -> Result<(), FeatureError> {
        schema.check_compatible(&self.schema)?;
        if self.mean.len() != schema.width() || self.factor.len() != schema.width() {
            return Err(FeatureError::Width {
                expected: schema.width(),
                got: self.mean.len().min(self.factor.len()),
            });
        }
        Ok(())
    }

    /// Scales a raw matrix of the scaler's schema.
    pub fn transform(&self, m: &FeatureMatrix) -> Result<Array2<f64>, FeatureError> {
        self.check_schema(&m.schema)?;
        let mut x = m.x.clone();
        for mut row in x.axis_iter_mut(Axis(0)) {
            for ((v, mu), f) in row.iter_mut().zip(&self.mean).zip(&self.factor) {
                *v = (*v - mu) * f;
            }
        }
        Ok(x)
    }

    /// Scales one raw row in place (the online path).
    pub fn transform_row(&self, row: &mut [f64]) -> Result<(), FeatureError> {
        if row.len() != self.mean.len() {
            return Err(FeatureError::Width {
                expected: self.mean.len(),
                got: row.len(),
            });
        }
        for ((v, mu), f) in row.iter_mut().zip(&self.mean).zip(&self.factor) {
            *v = (*v - mu) * f;
        }
        Ok(())
    }

    /// Undoes the scaling of a matrix (e.g. to read centroids in raw units). Columns of a
    /// zero-weight block cannot be recovered and come back as their mean.
    pub fn inverse_transform(&self, x: &Array2<f64>) -> Result<Array2<f64>, FeatureError> {
        if x.ncols() != self.mean.len() {
            return Err(FeatureError::Width {
                expected: self.mean.len(),
                got: x.ncols(),
            });
        }
        let mut out = x.clone();
        for mut row in out.axis_iter_mut(Axis(0)) {
            for ((v, mu), f) in row.iter_mut().zip(&self.mean).zip(&self.factor) {
                *v = if *f != 0.0 { *v / f + mu } else { *mu };
            }
        }
        Ok(out)
    }
}
