//! Success-rate frames from the Parquet history (polars lazy scans): outcomes grouped by
//! (hardware class, failure kind, strategy), and a ranker trained from them.

use std::path::Path;

use polars::prelude::*;

use crate::config::RankingParams;
use crate::model::{FailureKind, HardwareClass, RecoveryStrategy};
use crate::store::{scan, schema, Table};

use super::{Counts, Ranker, RankingError};

fn err(e: impl std::fmt::Display) -> RankingError {
    RankingError::History(e.to_string())
}

/// Success rates per (hardware class, kind, strategy): columns `hardware_class`, `kind`,
/// `strategy`, `successes`, `n`, `rate`, `mean_cost`; sorted by context then rate.
pub fn success_rates(root: &Path) -> Result<DataFrame, RankingError> {
    scan(root, Table::Outcomes)
        .map_err(err)?
        .filter(
            col(schema::STRATEGY)
                .is_not_null()
                .and(col(schema::KIND).is_not_null())
                .and(col(schema::HARDWARE_CLASS).is_not_null()),
        )
        .group_by([
            col(schema::HARDWARE_CLASS),
            col(schema::KIND),
            col(schema::STRATEGY),
        ])
        .agg([
            col(schema::SUCCESS)
                .cast(DataType::Float64)
                .sum()
                .alias("successes"),
            len().alias("n"),
            col(schema::COST).mean().alias("mean_cost"),
        ])
        .with_column((col("successes") / col("n").cast(DataType::Float64)).alias("rate"))
        .sort(
            [schema::HARDWARE_CLASS, schema::KIND, "rate"],
            SortMultipleOptions::default().with_order_descending_multi([false, false, true]),
        )
        .collect()
        .map_err(err)
}

/// A ranker whose coarse counts come from a success-rate frame.
pub fn ranker_from_frame(df: &DataFrame, params: RankingParams) -> Result<Ranker, RankingError> {
    let mut r = Ranker::new(params)?;
    let class = df
        .column(schema::HARDWARE_CLASS)
        .map_err(err)?
        .str()
        .map_err(err)?;
    let kind = df.column(schema::KIND).map_err(err)?.str().map_err(err)?;
    let strategy = df
        .column(schema::STRATEGY)
        .map_err(err)?
        .str()
        .map_err(err)?;
    let successes = df.column("successes").map_err(err)?.f64().map_err(err)?;
    let n = df
        .column("n")
        .map_err(err)?
        .cast(&DataType::Float64)
        .map_err(err)?;
    let n = n.f64().map_err(err)?;
    let cost = df.column("mean_cost").map_err(err)?.f64().map_err(err)?;
    for i in 0..df.height() {
        let (Some(c), Some(k), Some(s)) = (class.get(i), kind.get(i), strategy.get(i)) else {
            continue;
        };
        let (Ok(c), Ok(k), Ok(s)) = (
            c.parse::<HardwareClass>(),
            k.parse::<FailureKind>(),
            s.parse::<RecoveryStrategy>(),
        ) else {
            continue;
        };
        let ok = successes.get(i).unwrap_or(0.0);
        let total = n.get(i).unwrap_or(0.0);
        let mut counts: Counts = *r.counts(c, k);
        counts.success[s.index()] += ok;
        counts.failure[s.index()] += (total - ok).max(0.0);
        if let Some(m) = cost.get(i) {
            counts.cost[s.index()] += m * total;
            counts.costed[s.index()] += total;
        }
        r.set_counts(c, k, counts);
    }
    Ok(r)
}
