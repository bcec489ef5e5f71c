//! A per-thread cache of annotations (classifications) keyed by everything a classifier
//! reads: message, hardware class, type hint, exit code and stack trace. Logs repeat the same
//! few hundred messages, so ingest classifies each distinct one once per thread.

use std::collections::HashMap;
use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

use crate::model::{FailureRecord, HardwareClass};

/// Hits and misses of a [`Memo`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that computed the value.
    pub misses: u64,
}

#[derive(Debug)]
struct Key {
    message: Box<str>,
    class: HardwareClass,
    type_hint: Option<Box<str>>,
    exit_code: Option<i32>,
    stacktrace: Option<Box<str>>,
}

type Borrowed<'a> = (
    &'a str,
    HardwareClass,
    Option<&'a str>,
    Option<i32>,
    Option<&'a str>,
);

fn borrowed(r: &FailureRecord) -> Borrowed<'_> {
    (
        &r.error.message,
        r.hardware.class,
        r.error.type_hint.as_deref(),
        r.error.exit_code,
        r.error.stacktrace.as_deref(),
    )
}

impl Key {
    fn matches(&self, b: &Borrowed<'_>) -> bool {
        &*self.message == b.0
            && self.class == b.1
            && self.type_hint.as_deref() == b.2
            && self.exit_code == b.3
            && self.stacktrace.as_deref() == b.4
    }
}

/// A bounded cache from a record's classifier inputs to a value. When it holds `capacity`
/// keys it starts afresh, so memory stays bounded on inputs where every message differs.
#[derive(Debug)]
pub struct Memo<T> {
    /// Hash of the key → the key and its value, inline (no allocation per entry beyond the
    /// key's text). Fx is a fast, unkeyed hash: the inputs are the operator's own logs. Two
    /// keys with one 64-bit hash are vanishingly rare; the second is computed every time.
    map: HashMap<u64, (Key, T), FxBuildHasher>,
    capacity: usize,
    /// Bytes of key text held (message, hint, stack trace).
    bytes: usize,
    stats: MemoStats,
}

/// Key text a [`Memo`] holds at most, in bytes, before it starts afresh: its capacity
/// counts keys, and 65,536 records with long messages and stack traces per thread pinned
/// gigabytes (input audit).
pub const MEMO_MAX_BYTES: usize = 32 << 20;

impl<T: Clone> Memo<T> {
    /// A cache of at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Memo {
            map: HashMap::default(),
            capacity: capacity.max(1),
            bytes: 0,
            stats: MemoStats::default(),
        }
    }

    /// The value for `record`'s classifier inputs, computed by `f` on a miss.
    pub fn get_or_insert_with(&mut self, record: &FailureRecord, f: impl FnOnce() -> T) -> T {
        let b = borrowed(record);
        let h = FxBuildHasher.hash_one(b);
        match self.map.get(&h) {
            Some((k, v)) if k.matches(&b) => {
                self.stats.hits += 1;
                return v.clone();
            }
            Some(_) => {
                // Another key holds this hash: computed, not cached.
                self.stats.misses += 1;
                return f();
            }
            None => {}
        }
        self.stats.misses += 1;
        let v = f();
        let size = b.0.len() + b.2.map_or(0, str::len) + b.4.map_or(0, str::len);
        if size > MEMO_MAX_BYTES / 4 {
            // One key of a quarter of the budget: computed, not cached.
            return v;
        }
        if self.map.len() >= self.capacity || self.bytes + size > MEMO_MAX_BYTES {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += size;
        let key = Key {
            message: b.0.into(),
            class: b.1,
            type_hint: b.2.map(Box::from),
            exit_code: b.3,
            stacktrace: b.4.map(Box::from),
        };
        self.map.insert(h, (key, v.clone()));
        v
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> MemoStats {
        self.stats
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FailureReport, Timestamp};

    fn rec(msg: &str, class: &str, exit: Option<i32>) -> FailureRecord {
        let mut v = serde_json::json!({"task_id":"t","worker_id":"w","platform":class,
            "error":{"message":msg}});
        if let Some(e) = exit {
            v["error"]["exit_code"] = e.into();
        }
        serde_json::from_value::<FailureReport>(v)
            .unwrap()
            .check(Timestamp::from_micros(0))
            .unwrap()
    }

    #[test]
    fn every_classifier_input_is_part_of_the_key() {
        let mut m = Memo::new(100);
        let mut calls = 0;
        let mut get = |m: &mut Memo<u32>, r: &FailureRecord| {
            m.get_or_insert_with(r, || {
                calls += 1;
                calls
            })
        };
        assert_eq!(get(&mut m, &rec("out of memory", "GPU", None)), 1);
        assert_eq!(get(&mut m, &rec("out of memory", "GPU", None)), 1);
        assert_eq!(get(&mut m, &rec("out of memory", "CPU", None)), 2);
        assert_eq!(get(&mut m, &rec("out of memory", "CPU", Some(137))), 3);
        assert_eq!(get(&mut m, &rec("out of memory!", "CPU", Some(137))), 4);
        assert_eq!(m.stats(), MemoStats { hits: 1, misses: 4 });
        assert_eq!(m.len(), 4);
    }

    /// Regression (input audit): the capacity counts keys, so long messages pinned memory
    /// without bound in practice; the key text is now bounded too.
    #[test]
    fn key_bytes_bound_the_cache() {
        let mut m = Memo::new(1 << 20);
        let long = "x".repeat(MEMO_MAX_BYTES / 8);
        for i in 0..20 {
            m.get_or_insert_with(&rec(&format!("{long}{i}"), "GPU", None), || i);
            assert!(m.bytes <= MEMO_MAX_BYTES, "{}", m.bytes);
            assert!(m.len() <= 8, "{}", m.len());
        }
        // Too long to cache at all: computed each time, the cache untouched.
        let huge = "y".repeat(MEMO_MAX_BYTES / 4 + 1);
        let before = m.len();
        assert_eq!(m.get_or_insert_with(&rec(&huge, "GPU", None), || 7), 7);
        assert_eq!(m.get_or_insert_with(&rec(&huge, "GPU", None), || 8), 8);
        assert_eq!(m.len(), before);
    }

    #[test]
    fn capacity_bounds_the_cache() {
        let mut m = Memo::new(3);
        for i in 0..10 {
            m.get_or_insert_with(&rec(&format!("m{i}"), "GPU", None), || i);
            assert!(m.len() <= 3);
        }
        assert_eq!(m.stats().misses, 10);
    }
}
