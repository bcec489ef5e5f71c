"""Reads every table of a faultline history with pyarrow (not faultline), untouched.

Usage: python3 tests/read_history.py DATA_DIR
Prints one JSON document: {table: {"rows": n, "columns": [...], "schema_version": "1"}}.
"""
import json
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq


def main(root: Path) -> None:
    out = {}
    history = root / "history"
    for table in sorted(p for p in history.iterdir() if p.is_dir()):
        dataset = ds.dataset(table, format="parquet", partitioning="hive")
        tab = dataset.to_table()
        versions = {
            (pq.ParquetFile(f).metadata.metadata or {}).get(b"faultline.schema_version", b"").decode()
            for f in dataset.files
        }
        out[table.name] = {
            "rows": tab.num_rows,
            "columns": tab.column_names,
            "schema_version": sorted(versions),
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
