//! Success-rate frames from the Parquet history (polars lazy scans): outcomes grouped by
//! (hardware class, failure kind, strategy), and a ranker trained from them; and the refined
//! frame, each outcome joined to the failure it answered and grouped by the ranker's fine and
//! finest contexts (training, `faultline train`).

use std::path::Path;

use polars::prelude::*;

use crate::config::RankingParams;
use crate::model::{FailureKind, HardwareClass, RecoveryStrategy};
use crate::store::{part_without_column, scan, schema, Table};

use super::{Counts, Ranker, RankingError};

fn err(e: impl std::fmt::Display) -> RankingError {
    RankingError::History(e.to_string())
}

/// The error of a query over `table` under `root`: a column missing from a part names the
/// part (an audit: `train` on a history whose outcome parts lacked `success` printed polars'
/// resolved query plan and named no file); any other error names the table's directory,
/// without the plan.
fn query_err(root: &Path, table: Table, e: PolarsError) -> RankingError {
    let msg = e.to_string();
    let short = msg
        .split("\n\nResolved plan")
        .next()
        .unwrap_or(&msg)
        .trim_end();
    // Polars may wrap the error in context: read its message.
    if let Some(rest) = short.split("unable to find column \"").nth(1) {
        let part = rest
            .split('"')
            .next()
            .and_then(|name| Some((name, part_without_column(root, table, name)?)));
        if let Some((name, part)) = part {
            return RankingError::History(format!(
                "{}: no {name} column (every part of history/{} needs one)",
                part.display(),
                table.dir_name()
            ));
        }
    }
    RankingError::History(format!(
        "{}: {short}",
        root.join("history").join(table.dir_name()).display()
    ))
}

/// Success rates per (hardware class, kind, strategy): columns `hardware_class`, `kind`,
/// `strategy`, `successes`, `n`, `rate`, `mean_cost`; sorted by context then rate.
pub fn success_rates(root: &Path) -> Result<DataFrame, RankingError> {
    success_rates_upto(root, None)
}

/// The committed rows of `table`, those above sequence number `upto` (when given) left out:
/// what a reader that took its snapshot at that commit point sees, whatever was committed
/// since.
fn scan_upto(root: &Path, table: Table, upto: Option<u64>) -> Result<LazyFrame, RankingError> {
    let frame = scan(root, table).map_err(err)?;
    Ok(match upto {
        Some(s) => frame.filter(col(schema::SEQ).lt_eq(lit(s))),
        None => frame,
    })
}

/// [`success_rates`] of the rows up to sequence number `upto` (training reads every table at
/// the commit point it read first: a history that grew meanwhile gave a model whose success
/// tables counted outcomes its other parts never saw).
pub fn success_rates_upto(root: &Path, upto: Option<u64>) -> Result<DataFrame, RankingError> {
    scan_upto(root, Table::Outcomes, upto)?
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
        .map_err(|e| query_err(root, Table::Outcomes, e))
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

/// Level of a refined success-rate row ([`refined_success_rates`]): the ranker's fine
/// context ([`fine_key`](super::fine_key)) or its finest (the fine context refined by the
/// message signature).
pub const LEVEL_FINE: u32 = 0;
/// See [`LEVEL_FINE`].
pub const LEVEL_FINEST: u32 = 1;

/// The failure an outcome answered, as the ranker keys it.
struct Answered {
    class: HardwareClass,
    kind: FailureKind,
    fine: u64,
    finest: u64,
}

/// Success rates per refined context: each outcome joined to the failure it answered (its
/// task's latest failure before it in the log), which gives the classifier rule, the Xid
/// code, whether the task had failed before and the message — the ranker's fine and finest
/// keys (worker standing healthy: whether a worker was called bad is not in the history) —
/// and the kind the ranker uses ([`ranked_kind`](super::ranked_kind)). Columns
/// `hardware_class`, `kind`, `level` ([`LEVEL_FINE`] or [`LEVEL_FINEST`]), `key`, `strategy`,
/// `successes`, `n`, `mean_cost`; sorted by context, then by strategy. Outcomes without a
/// strategy, or whose task has no earlier failure in the log, are left out.
///
/// Both tables are read with lazy scans that project only the columns needed; the join by
/// log order is one merge over the two sorted frames, then polars groups the joined rows.
pub fn refined_success_rates(root: &Path) -> Result<DataFrame, RankingError> {
    refined_success_rates_upto(root, None)
}

/// [`refined_success_rates`] of the rows up to sequence number `upto` (see
/// [`success_rates_upto`]).
pub fn refined_success_rates_upto(
    root: &Path,
    upto: Option<u64>,
) -> Result<DataFrame, RankingError> {
    let failures = in_log_order(
        root,
        Table::Failures,
        scan_upto(root, Table::Failures, upto)?,
        &[
            schema::TASK_ID,
            schema::HARDWARE_CLASS,
            schema::KIND,
            schema::CLASSIFIER_RULE,
            schema::XID,
            schema::MESSAGE,
        ],
    )?;
    let outcomes = in_log_order(
        root,
        Table::Outcomes,
        scan_upto(root, Table::Outcomes, upto)?.filter(col(schema::STRATEGY).is_not_null()),
        &[
            schema::TASK_ID,
            schema::STRATEGY,
            schema::SUCCESS,
            schema::COST,
        ],
    )?;
    let f_seq = typed(&failures, schema::SEQ, DataType::UInt64)?;
    let f_seq = f_seq.u64().map_err(err)?;
    let (f_task, f_class, f_kind) = (
        text(&failures, schema::TASK_ID)?,
        text(&failures, schema::HARDWARE_CLASS)?,
        text(&failures, schema::KIND)?,
    );
    let (f_rule, f_message) = (
        text(&failures, schema::CLASSIFIER_RULE)?,
        text(&failures, schema::MESSAGE)?,
    );
    let f_xid = typed(&failures, schema::XID, DataType::UInt32)?;
    let f_xid = f_xid.u32().map_err(err)?;
    let o_seq = typed(&outcomes, schema::SEQ, DataType::UInt64)?;
    let o_seq = o_seq.u64().map_err(err)?;
    let (o_task, o_strategy) = (
        text(&outcomes, schema::TASK_ID)?,
        text(&outcomes, schema::STRATEGY)?,
    );
    let o_success = typed(&outcomes, schema::SUCCESS, DataType::Boolean)?;
    let o_success = o_success.bool().map_err(err)?;
    let o_cost = typed(&outcomes, schema::COST, DataType::Float64)?;
    let o_cost = o_cost.f64().map_err(err)?;

    // Per task: failures seen so far in its episode and the latest one, as the ranker keys it.
    let mut latest: std::collections::HashMap<&str, (u32, Option<Answered>)> =
        std::collections::HashMap::new();
    let mut rows = RefinedRows::default();
    let mut next = 0;
    for j in 0..outcomes.height() {
        let at = o_seq.get(j).unwrap_or(u64::MAX);
        // Every failure logged before this outcome.
        while next < failures.height() && f_seq.get(next).unwrap_or(0) < at {
            if let Some(task) = f_task.get(next) {
                let entry = latest.entry(task).or_insert((0, None));
                entry.0 += 1;
                entry.1 = answered(
                    f_class.get(next),
                    f_kind.get(next),
                    f_rule.get(next),
                    f_xid.get(next),
                    f_message.get(next),
                    entry.0,
                );
            }
            next += 1;
        }
        let (Some(task), Some(strategy), Some(success)) =
            (o_task.get(j), o_strategy.get(j), o_success.get(j))
        else {
            continue;
        };
        let Some((failures_seen, Some(a))) = latest.get_mut(task) else {
            continue;
        };
        for (level, key) in [(LEVEL_FINE, a.fine), (LEVEL_FINEST, a.finest)] {
            rows.class.push(a.class.as_str());
            rows.kind.push(a.kind.as_str());
            rows.level.push(level);
            rows.key.push(key);
            rows.strategy.push(strategy.to_string());
            rows.success.push(if success { 1.0 } else { 0.0 });
            rows.cost.push(o_cost.get(j));
        }
        // A recovered task's next failure starts a new episode, a first failure again (as
        // the engine counts attempts, `TaskRecord::observe`).
        if success {
            *failures_seen = 0;
        }
    }
    let joined = DataFrame::new_infer_height(vec![
        Column::new(schema::HARDWARE_CLASS.into(), rows.class),
        Column::new(schema::KIND.into(), rows.kind),
        Column::new("level".into(), rows.level),
        Column::new(schema::KEY.into(), rows.key),
        Column::new(schema::STRATEGY.into(), rows.strategy),
        Column::new(schema::SUCCESS.into(), rows.success),
        Column::new(schema::COST.into(), rows.cost),
    ])
    .map_err(err)?;
    joined
        .lazy()
        .group_by([
            col(schema::HARDWARE_CLASS),
            col(schema::KIND),
            col("level"),
            col(schema::KEY),
            col(schema::STRATEGY),
        ])
        .agg([
            col(schema::SUCCESS).sum().alias("successes"),
            len().alias("n"),
            col(schema::COST).mean().alias("mean_cost"),
        ])
        .sort(
            [
                schema::HARDWARE_CLASS,
                schema::KIND,
                "level",
                schema::KEY,
                schema::STRATEGY,
            ],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(err)
}

/// `seq` and `columns` of `table` (the scan `frame` of it under `root`), sorted by `seq` (the
/// log's order).
fn in_log_order(
    root: &Path,
    table: Table,
    frame: LazyFrame,
    columns: &[&str],
) -> Result<DataFrame, RankingError> {
    let mut select = vec![col(schema::SEQ)];
    select.extend(columns.iter().map(|c| col(*c)));
    frame
        .select(select)
        .sort([schema::SEQ], SortMultipleOptions::default())
        .collect()
        .map_err(|e| query_err(root, table, e))
}

/// A text column of `df`.
fn text(df: &DataFrame, name: &str) -> Result<StringChunked, RankingError> {
    Ok(df.column(name).map_err(err)?.str().map_err(err)?.clone())
}

/// A column of `df` cast to `dtype`.
fn typed(df: &DataFrame, name: &str, dtype: DataType) -> Result<Column, RankingError> {
    df.column(name).map_err(err)?.cast(&dtype).map_err(err)
}

/// The joined rows of [`refined_success_rates`], column by column.
#[derive(Default)]
struct RefinedRows {
    class: Vec<&'static str>,
    kind: Vec<&'static str>,
    level: Vec<u32>,
    key: Vec<u64>,
    strategy: Vec<String>,
    success: Vec<f64>,
    cost: Vec<Option<f64>>,
}

/// A logged failure as the ranker keys it (`None` when its class or kind does not parse).
fn answered(
    class: Option<&str>,
    kind: Option<&str>,
    rule: Option<&str>,
    xid: Option<u32>,
    message: Option<&str>,
    attempt: u32,
) -> Option<Answered> {
    let class = class?.parse::<HardwareClass>().ok()?;
    let kind = kind?.parse::<FailureKind>().ok()?;
    let rule = rule.unwrap_or("");
    let fine = super::fine_key(rule, xid, attempt, super::WorkerStanding::Healthy);
    let finest = super::finest_key(fine, super::message_signature(message.unwrap_or("")));
    Some(Answered {
        class,
        kind: super::ranked_kind(kind, rule),
        fine,
        finest,
    })
}

/// One refined context's counts ([`refined_counts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RefinedCounts {
    /// Hardware class of the failures answered.
    pub class: HardwareClass,
    /// Their kind as the ranker uses it.
    pub kind: FailureKind,
    /// [`LEVEL_FINE`] or [`LEVEL_FINEST`].
    pub level: u32,
    /// The context's key at that level.
    pub key: u64,
    /// Its outcomes per strategy (undiscounted).
    pub counts: Counts,
}

/// The contexts of a [`refined_success_rates`] frame with their counts, in the frame's order.
pub fn refined_counts(df: &DataFrame) -> Result<Vec<RefinedCounts>, RankingError> {
    let (class, kind, strategy) = (
        text(df, schema::HARDWARE_CLASS)?,
        text(df, schema::KIND)?,
        text(df, schema::STRATEGY)?,
    );
    let level = typed(df, "level", DataType::UInt32)?;
    let level = level.u32().map_err(err)?;
    let key = typed(df, schema::KEY, DataType::UInt64)?;
    let key = key.u64().map_err(err)?;
    let successes = typed(df, "successes", DataType::Float64)?;
    let successes = successes.f64().map_err(err)?;
    let n = typed(df, "n", DataType::Float64)?;
    let n = n.f64().map_err(err)?;
    let cost = typed(df, "mean_cost", DataType::Float64)?;
    let cost = cost.f64().map_err(err)?;
    let mut out: Vec<RefinedCounts> = Vec::new();
    for i in 0..df.height() {
        let (Some(c), Some(k), Some(s), Some(l), Some(key)) = (
            class.get(i),
            kind.get(i),
            strategy.get(i),
            level.get(i),
            key.get(i),
        ) else {
            continue;
        };
        let (Ok(c), Ok(k), Ok(s)) = (
            c.parse::<HardwareClass>(),
            k.parse::<FailureKind>(),
            s.parse::<RecoveryStrategy>(),
        ) else {
            continue;
        };
        // Rows of one context are adjacent (the frame is sorted by context).
        let same = out
            .last()
            .is_some_and(|r| (r.class, r.kind, r.level, r.key) == (c, k, l, key));
        if !same {
            out.push(RefinedCounts {
                class: c,
                kind: k,
                level: l,
                key,
                counts: Counts::default(),
            });
        }
        let Some(r) = out.last_mut() else { continue };
        let (ok, total) = (successes.get(i).unwrap_or(0.0), n.get(i).unwrap_or(0.0));
        let j = s.index();
        r.counts.success[j] += ok;
        r.counts.failure[j] += (total - ok).max(0.0);
        if let Some(m) = cost.get(i) {
            r.counts.cost[j] += m * total;
            r.counts.costed[j] += total;
        }
    }
    Ok(out)
}
