//! Polars lazy scans over a table of the history (projection and predicate pushdown).

use std::path::Path;

use polars::prelude::*;

use super::entry::Table;
use super::StoreError;

/// A lazy frame over every committed part of `table` under `root` (the data directory),
/// with the `date` partition column from the directory names. Empty tables give an error
/// naming the directory.
pub fn scan(root: &Path, table: Table) -> Result<LazyFrame, StoreError> {
    let dir = root.join("history").join(table.dir_name());
    if !dir.is_dir() {
        return Err(StoreError::Query(format!(
            "{}: no such table directory",
            dir.display()
        )));
    }
    let glob = format!("{}/**/*.parquet", dir.display());
    let args = ScanArgsParquet {
        hive_options: HiveOptions::new_enabled(),
        ..Default::default()
    };
    LazyFrame::scan_parquet(PlRefPath::new(&glob), args)
        .map_err(|e| StoreError::Query(format!("{}: {e}", dir.display())))
}
