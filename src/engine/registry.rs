//! A small worker registry with capabilities, so DIFFERENT_WORKER can name a worker: same
//! class first, with capacity, more memory after an OOM, another browser after a crash.
//! A worker whose circuit breaker is open is never picked; one whose breaker is half-open
//! only when no other worker is eligible, as the probe that may close it.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::{HardwareClass, Timestamp, WorkerId};
use crate::retry::breaker::{BreakerState, Breakers};

use super::EngineError;

/// A worker the coordinator can place tasks on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    /// Worker id.
    #[serde(alias = "worker_id")]
    pub id: WorkerId,
    /// Hardware class.
    #[serde(alias = "platform")]
    pub class: HardwareClass,
    /// Device memory in GiB.
    #[serde(default, alias = "memory_gb", skip_serializing_if = "Option::is_none")]
    pub memory_gib: Option<f64>,
    /// Browser name, for WEBGPU/WEBNN workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    /// Device vendor (e.g. NVIDIA, AMD, INTEL): a move to another worker of the same class
    /// stays with the failed worker's vendor while one is eligible (a CUDA build does not run
    /// on another vendor's device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Free task slots (0 = full).
    #[serde(default = "one")]
    pub slots: u32,
    /// Why the worker needs attention (set by the engine after hardware faults); such workers
    /// are not chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<String>,
}

fn one() -> u32 {
    1
}

impl Worker {
    /// A worker with one slot.
    pub fn new(id: WorkerId, class: HardwareClass) -> Self {
        Worker {
            id,
            class,
            memory_gib: None,
            browser: None,
            vendor: None,
            slots: 1,
            attention: None,
        }
    }
}

/// What a replacement worker must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    /// Class to place on.
    pub class: HardwareClass,
    /// Workers not to use.
    pub excluded: &'a [WorkerId],
    /// One more worker not to use (the failed one, without copying `excluded` to add it).
    pub also_excluded: Option<&'a WorkerId>,
    /// More workers not to use, sorted (binary-searched: e.g. the workers under a bad-worker
    /// pattern, without copying them per pick).
    pub avoid_sorted: &'a [WorkerId],
    /// Strictly more memory than this.
    pub more_memory_than: Option<f64>,
    /// A browser other than this.
    pub other_browser_than: Option<&'a str>,
    /// This vendor (ASCII case ignored) before any other: a worker of another vendor is
    /// picked only when no eligible worker has this one or none (an audit: an NVIDIA
    /// out-of-memory failure was moved to an AMD device, its requirement saying "cuda").
    pub vendor: Option<&'a str>,
    /// The worker breakers and the time to read them at (`None`: breakers are not
    /// consulted): a worker whose breaker is open is not picked, one whose breaker is
    /// half-open only when no worker with a closed breaker is eligible (a probe).
    pub breakers: Option<(&'a Breakers<WorkerId>, Timestamp)>,
}

/// Workers by id, plus two orders per class that [`WorkerRegistry::pick`] walks: by
/// (most slots, smallest id), and by (most slots, most memory, smallest id) for picks that
/// want more memory. Slots and memory only change when a worker is registered again, so the
/// orders are kept at registration and a pick usually stops at the first healthy candidate.
#[derive(Debug, Clone, Default)]
pub struct WorkerRegistry {
    workers: HashMap<WorkerId, Worker, FxBuildHasher>,
    by_class: Vec<Vec<WorkerId>>,
    by_class_memory: Vec<Vec<WorkerId>>,
    /// Attention flags, also for workers not (yet) registered: a restart replays flags
    /// before the inventory is loaded.
    flags: HashMap<WorkerId, String, FxBuildHasher>,
    /// Tasks the engine moved to each worker that still hold one of its slots (see
    /// [`WorkerRegistry::place`]): a worker's free slots are its `slots` less these.
    placed: HashMap<WorkerId, u32, FxBuildHasher>,
}

#[derive(Deserialize)]
struct Inventory {
    workers: Vec<Worker>,
}

impl WorkerRegistry {
    /// An empty registry: DIFFERENT_WORKER then leaves the choice to the coordinator.
    pub fn new() -> Self {
        WorkerRegistry {
            workers: HashMap::default(),
            by_class: vec![Vec::new(); HardwareClass::ALL.len()],
            by_class_memory: vec![Vec::new(); HardwareClass::ALL.len()],
            flags: HashMap::default(),
            placed: HashMap::default(),
        }
    }

    /// Loads a JSON inventory: `{"workers": [...]}` or a bare array of workers. Fields other
    /// than those of [`Worker`] are ignored (`worker_id`, `platform`, `memory_gb` are accepted
    /// as aliases, as in `workers_200.json`).
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.display().to_string(),
            source,
        })?;
        // The form is told by the first character, so the error is the one of the form used;
        // it names the worker at fault (`workers[3].class: ...`, `[3]: missing field ...`).
        fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let at = e.path().to_string();
                if at == "." {
                    e.into_inner().to_string()
                } else {
                    format!("{at}: {}", e.into_inner())
                }
            })
        }
        let parsed = if text.trim_start().starts_with('[') {
            parse::<Vec<Worker>>(&text)
        } else {
            parse::<Inventory>(&text).map(|i| i.workers)
        };
        let bad = |message: String| EngineError::Parse {
            path: path.display().to_string(),
            message,
        };
        let workers = parsed.map_err(bad)?;
        // An empty inventory would read as none at all (any worker may be named), and a
        // worker listed twice would be the last of its entries: both refused (audit).
        if workers.is_empty() {
            return Err(bad(
                "the inventory lists no workers (leave --workers out for none)".into(),
            ));
        }
        let mut r = Self::new();
        for (i, w) in workers.into_iter().enumerate() {
            if r.get(&w.id).is_some() {
                return Err(bad(format!(
                    "worker {i} (counting from 0): id '{}' is listed twice",
                    w.id
                )));
            }
            // As a failure record's `memory_gib` is checked (an audit: -80 was taken).
            if let Some(m) = w.memory_gib.filter(|m| !(m.is_finite() && *m >= 0.0)) {
                return Err(bad(format!(
                    "worker {i} (counting from 0, id '{}'): memory_gib {m} is not a non-negative number",
                    w.id
                )));
            }
            r.register(w);
        }
        Ok(r)
    }

    /// Adds or replaces a worker.
    pub fn register(&mut self, w: Worker) {
        if self.by_class.is_empty() {
            self.by_class = vec![Vec::new(); HardwareClass::ALL.len()];
            self.by_class_memory = vec![Vec::new(); HardwareClass::ALL.len()];
        }
        if let Some(old) = self.workers.get(&w.id) {
            let old_class = old.class.index();
            self.by_class[old_class].retain(|id| id != &w.id);
            self.by_class_memory[old_class].retain(|id| id != &w.id);
        }
        let workers = &self.workers;
        let key = |id: &WorkerId| {
            let o = workers.get(id).expect("indexed workers are registered");
            (std::cmp::Reverse(o.slots), id.clone())
        };
        let list = &mut self.by_class[w.class.index()];
        let at = list.partition_point(|id| key(id) < (std::cmp::Reverse(w.slots), w.id.clone()));
        list.insert(at, w.id.clone());
        let key = |id: &WorkerId| {
            let o = workers.get(id).expect("indexed workers are registered");
            (
                std::cmp::Reverse(o.slots),
                std::cmp::Reverse(memory_key(o)),
                id.clone(),
            )
        };
        let list = &mut self.by_class_memory[w.class.index()];
        let me = (
            std::cmp::Reverse(w.slots),
            std::cmp::Reverse(memory_key(&w)),
            w.id.clone(),
        );
        let at = list.partition_point(|id| key(id) < me);
        list.insert(at, w.id.clone());
        if let Some(a) = &w.attention {
            self.flags.insert(w.id.clone(), a.clone());
        }
        self.workers.insert(w.id.clone(), w);
    }

    /// A worker by id.
    pub fn get(&self, id: &WorkerId) -> Option<&Worker> {
        self.workers.get(id)
    }

    /// Number of workers of a class.
    pub fn count(&self, class: HardwareClass) -> usize {
        self.by_class.get(class.index()).map_or(0, Vec::len)
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether no worker is registered.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Flags a worker for attention; it is no longer chosen.
    pub fn flag(&mut self, id: &WorkerId, why: &str) {
        self.flags.insert(id.clone(), why.to_string());
    }

    /// Why a worker needs attention, if it was flagged.
    pub fn attention(&self, id: &WorkerId) -> Option<&str> {
        self.flags.get(id).map(String::as_str)
    }

    /// Every flagged worker with the reason.
    pub fn flagged(&self) -> impl Iterator<Item = (&WorkerId, &str)> {
        self.flags.iter().map(|(k, v)| (k, v.as_str()))
    }

    /// Takes the flags of `other` (used when an inventory replaces the registry).
    pub fn merge_flags(&mut self, other: &WorkerRegistry) {
        for (k, v) in &other.flags {
            self.flags.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }

    /// Counts a task moved to `worker`: it holds one of the worker's slots until
    /// [`WorkerRegistry::unplace`] (an audit: with no count of its own moves, every move of a
    /// server went to the same worker of one slot — 75 of 75 — while others were free).
    pub fn place(&mut self, worker: &WorkerId) {
        *self.placed.entry(worker.clone()).or_insert(0) += 1;
    }

    /// Gives back the slot a task moved to `worker` held.
    pub fn unplace(&mut self, worker: &WorkerId) {
        if let Some(n) = self.placed.get_mut(worker) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.placed.remove(worker);
            }
        }
    }

    /// Forgets every placement (their tasks are counted again from a loaded state).
    pub fn clear_placements(&mut self) {
        self.placed.clear();
    }

    /// Takes over `other`'s count of placed tasks (a registry replacing it).
    pub fn take_placements(&mut self, other: &mut WorkerRegistry) {
        self.placed = std::mem::take(&mut other.placed);
    }

    /// A worker's free slots: its `slots` less the tasks moved to it that still hold one.
    pub fn free_slots(&self, w: &Worker) -> u32 {
        w.slots
            .saturating_sub(self.placed.get(&w.id).copied().unwrap_or(0))
    }

    /// Clears a worker's attention flag (after it was repaired).
    pub fn clear_flag(&mut self, id: &WorkerId) {
        self.flags.remove(id);
        if let Some(w) = self.workers.get_mut(id) {
            w.attention = None;
        }
    }

    /// The best replacement: healthy, not excluded, with a free slot, its breaker not open,
    /// satisfying the memory and browser wishes when any candidate can (otherwise the wish is
    /// relaxed); among those, most free slots, then (after an OOM) most memory, then smallest
    /// id for determinism. A worker whose breaker is half-open is picked only when no worker
    /// with a closed breaker is eligible, whatever the wishes (one probe rather than none).
    /// All of this first among the workers of `want.vendor` (or of no stated vendor), then
    /// among all: the vendor comes before every other wish, a half-open breaker included (a
    /// device of another vendor may not run the task at all).
    pub fn pick(&self, want: &Want<'_>) -> Option<&Worker> {
        self.pick_with(want, false)
    }

    /// What [`WorkerRegistry::pick`] would pick if every worker had a free slot: a move to a
    /// full class waits for that worker's slot (a full fleet is a passing state); `None` when
    /// the move is pointless (every worker excluded, flagged, avoided or breaker-open).
    pub fn pick_waiting(&self, want: &Want<'_>) -> Option<&Worker> {
        self.pick_with(want, true)
    }

    /// [`WorkerRegistry::pick`], else [`WorkerRegistry::pick_waiting`] — but a worker of
    /// `want.vendor` (or of no stated vendor) first, free or full, before one of another
    /// vendor (a review: a free AMD device was picked before waiting for a full NVIDIA one).
    pub fn pick_or_waiting(&self, want: &Want<'_>) -> Option<&Worker> {
        if let Some(v) = want.vendor {
            let same = self
                .pick_among(want, false, Some(v))
                .or_else(|| self.pick_among(want, true, Some(v)));
            if same.is_some() {
                return same;
            }
        }
        self.pick_among(want, false, None)
            .or_else(|| self.pick_among(want, true, None))
    }

    /// Whether [`WorkerRegistry::pick_or_waiting`] would name a worker: one that could take
    /// the task, full or not, of any vendor. Stops at the first (a decision asks it for every
    /// ranked choice: the full walk that ranks the candidates by free slots is the pick's).
    pub fn has_eligible(&self, want: &Want<'_>) -> bool {
        self.walk(want, true, None, true).is_some()
    }

    /// [`WorkerRegistry::pick`], counting full workers as free when `full_ok`: among the
    /// workers of `want.vendor` (or of no stated vendor) first, then among all.
    fn pick_with(&self, want: &Want<'_>, full_ok: bool) -> Option<&Worker> {
        match want.vendor {
            Some(v) => self
                .pick_among(want, full_ok, Some(v))
                .or_else(|| self.pick_among(want, full_ok, None)),
            None => self.pick_among(want, full_ok, None),
        }
    }

    /// [`WorkerRegistry::pick_with`] among the workers of `vendor` (or of no stated vendor)
    /// when it is given, else among all.
    fn pick_among(&self, want: &Want<'_>, full_ok: bool, vendor: Option<&str>) -> Option<&Worker> {
        self.walk(want, full_ok, vendor, false)
    }

    /// The walk of [`WorkerRegistry::pick_among`]; with `any`, the first eligible worker.
    fn walk(
        &self,
        want: &Want<'_>,
        full_ok: bool,
        vendor: Option<&str>,
        any: bool,
    ) -> Option<&Worker> {
        let order = if want.more_memory_than.is_some() {
            &self.by_class_memory
        } else {
            &self.by_class
        };
        let ids = order.get(want.class.index())?;
        let mem_ok = |w: &Worker| match (want.more_memory_than, w.memory_gib) {
            (Some(min), Some(m)) => m > min,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let browser_ok = |w: &Worker| match (want.other_browser_than, &w.browser) {
            (Some(b), Some(wb)) => !wb.eq_ignore_ascii_case(b),
            _ => true,
        };
        // The walk is in preference order, so the first candidate meeting both wishes is the
        // answer; otherwise the first meeting one, otherwise the first at all; workers whose
        // breaker is half-open after all of those, in the same order. Once the engine has
        // placed tasks, the most free slots first within each of those (the least
        // over-held when waiting), the walk's order among equals (a review: moves filled a
        // 4-slot worker before a 2-slot one had any, and every waiting move named the same).
        let spread = !self.placed.is_empty();
        let free = |w: &Worker| {
            i64::from(w.slots) - i64::from(self.placed.get(&w.id).copied().unwrap_or(0))
        };
        let mut top: Option<&Worker> = None;
        let mut best: [Option<&Worker>; 2] = [None, None];
        let mut probe: [Option<&Worker>; 3] = [None, None, None];
        for id in ids {
            let Some(w) = self.workers.get(id) else {
                continue;
            };
            if (!full_ok && self.free_slots(w) == 0)
                || vendor.is_some_and(|v| {
                    w.vendor
                        .as_deref()
                        .is_some_and(|wv| !wv.eq_ignore_ascii_case(v))
                })
                || self.flags.contains_key(&w.id)
                || want.excluded.contains(&w.id)
                || want.also_excluded == Some(&w.id)
                || want.avoid_sorted.binary_search(&w.id).is_ok()
            {
                continue;
            }
            let half_open = match want.breakers.map(|(b, at)| b.state(&w.id, at)) {
                Some(BreakerState::Open) => continue,
                Some(BreakerState::HalfOpen) => true,
                Some(BreakerState::Closed) | None => false,
            };
            if any {
                return Some(w);
            }
            let met = u32::from(mem_ok(w)) + u32::from(browser_ok(w));
            let slot = match (half_open, met) {
                (false, 2) if !spread => return Some(w),
                // Nothing placed here: no later worker (of as many slots or fewer, in the
                // walk's order) has more free; an earlier one with as many free comes first.
                (false, 2) if !self.placed.contains_key(&w.id) => {
                    return Some(match top {
                        Some(t) if free(t) >= free(w) => t,
                        _ => w,
                    });
                }
                (false, 2) => &mut top,
                (false, met) => &mut best[met as usize],
                (true, met) => &mut probe[met as usize],
            };
            if slot.is_none_or(|b| free(w) > free(b)) {
                *slot = Some(w);
            }
        }
        top.or(best[1])
            .or(best[0])
            .or(probe[2])
            .or(probe[1])
            .or(probe[0])
    }
}

/// The memory order key of a worker (MiB, as an integer so it orders totally).
fn memory_key(w: &Worker) -> i64 {
    (w.memory_gib.unwrap_or(0.0) * 1024.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str, class: HardwareClass, mem: f64, browser: Option<&str>) -> Worker {
        Worker {
            memory_gib: Some(mem),
            browser: browser.map(str::to_string),
            ..Worker::new(WorkerId::new(id).unwrap(), class)
        }
    }

    /// Regression (audit): an NVIDIA out-of-memory failure was moved to an AMD device. A
    /// move within the class stays with the vendor while one of its workers is eligible.
    #[test]
    fn a_move_stays_with_the_vendor_while_it_can() {
        let vendor = |id: &str, mem: f64, v: &str| Worker {
            vendor: Some(v.into()),
            ..w(id, HardwareClass::Gpu, mem, None)
        };
        let mut r = WorkerRegistry::new();
        r.register(vendor("n1", 40.0, "NVIDIA"));
        r.register(vendor("a1", 128.0, "AMD"));
        r.register(vendor("n2", 80.0, "NVIDIA"));
        let failed = WorkerId::new("n1").unwrap();
        let want = |v: Option<&'static str>| Want {
            class: HardwareClass::Gpu,
            excluded: &[],
            also_excluded: None,
            avoid_sorted: &[],
            more_memory_than: Some(40.0),
            other_browser_than: None,
            vendor: v,
            breakers: None,
        };
        let pick = |r: &WorkerRegistry, v| {
            r.pick(&Want {
                also_excluded: Some(&failed),
                ..want(v)
            })
            .map(|w| w.id.as_str().to_string())
        };
        assert_eq!(pick(&r, Some("nvidia")).as_deref(), Some("n2"));
        // Without a vendor, the most memory.
        assert_eq!(pick(&r, None).as_deref(), Some("a1"));
        // The NVIDIA device full: waited for, rather than a move to another vendor (a
        // review), when picking or waiting.
        r.register(Worker {
            slots: 0,
            ..vendor("n2", 80.0, "NVIDIA")
        });
        let either = |r: &WorkerRegistry, v| {
            r.pick_or_waiting(&Want {
                also_excluded: Some(&failed),
                ..want(v)
            })
            .map(|w| w.id.as_str().to_string())
        };
        assert_eq!(either(&r, Some("NVIDIA")).as_deref(), Some("n2"));
        // A free one only: `pick` alone takes another vendor rather than none.
        assert_eq!(pick(&r, Some("NVIDIA")).as_deref(), Some("a1"));
        // No other NVIDIA device at all: another vendor rather than none.
        r.register(Worker {
            attention: Some("bad".into()),
            ..vendor("n2", 80.0, "NVIDIA")
        });
        assert_eq!(either(&r, Some("NVIDIA")).as_deref(), Some("a1"));
    }

    #[test]
    fn picks_same_class_more_memory_other_browser() {
        let mut r = WorkerRegistry::new();
        r.register(w("g1", HardwareClass::Gpu, 24.0, None));
        r.register(w("g2", HardwareClass::Gpu, 80.0, None));
        r.register(w("g3", HardwareClass::Gpu, 40.0, None));
        r.register(w("c1", HardwareClass::Cpu, 512.0, None));
        r.register(w("b1", HardwareClass::Webgpu, 4.0, Some("chrome")));
        r.register(w("b2", HardwareClass::Webgpu, 4.0, Some("firefox")));
        let ex = [WorkerId::new("g1").unwrap()];
        let p = r
            .pick(&Want {
                class: HardwareClass::Gpu,
                excluded: &ex,
                avoid_sorted: &[],
                more_memory_than: Some(24.0),
                other_browser_than: None,
                vendor: None,
                also_excluded: None,
                breakers: None,
            })
            .unwrap();
        assert_eq!(p.id.as_str(), "g2");
        let p = r
            .pick(&Want {
                class: HardwareClass::Webgpu,
                excluded: &[],
                avoid_sorted: &[],
                more_memory_than: None,
                other_browser_than: Some("chrome"),
                vendor: None,
                also_excluded: None,
                breakers: None,
            })
            .unwrap();
        assert_eq!(p.id.as_str(), "b2");
        r.flag(&WorkerId::new("g2").unwrap(), "xid 79");
        let p = r
            .pick(&Want {
                class: HardwareClass::Gpu,
                excluded: &ex,
                avoid_sorted: &[],
                more_memory_than: Some(24.0),
                other_browser_than: None,
                vendor: None,
                also_excluded: None,
                breakers: None,
            })
            .unwrap();
        assert_eq!(p.id.as_str(), "g3");
        assert!(r
            .pick(&Want {
                class: HardwareClass::Tpu,
                excluded: &[],
                avoid_sorted: &[],
                more_memory_than: None,
                other_browser_than: None,
                vendor: None,
                also_excluded: None,
                breakers: None,
            })
            .is_none());
    }

    /// Regression: the picker did not see breakers; after w1's breaker opened, a failure on w2
    /// was moved to w1.
    #[test]
    fn an_open_breaker_is_never_picked_and_a_half_open_one_only_as_a_probe() {
        let id = |s: &str| WorkerId::new(s).unwrap();
        let mut r = WorkerRegistry::new();
        for g in ["w1", "w2", "w3"] {
            r.register(w(g, HardwareClass::Gpu, 40.0, None));
        }
        let mut b = Breakers::new(crate::config::BreakerParams::worker());
        for i in 0..5 {
            b.failure(&id("w1"), Timestamp::from_secs_f64(i as f64));
        }
        let pick = |excluded: &[WorkerId], at: f64| {
            r.pick(&Want {
                class: HardwareClass::Gpu,
                excluded,
                also_excluded: None,
                avoid_sorted: &[],
                more_memory_than: None,
                other_browser_than: None,
                vendor: None,
                breakers: Some((&b, Timestamp::from_secs_f64(at))),
            })
            .map(|w| w.id.as_str().to_string())
        };
        // Open: never, even when it is the only candidate left.
        assert_eq!(pick(&[id("w2")], 10.0).as_deref(), Some("w3"));
        assert_eq!(pick(&[id("w2"), id("w3")], 10.0), None);
        // Half-open (after 60 s): a healthy worker first, the probe only as a last resort.
        assert_eq!(pick(&[id("w2")], 70.0).as_deref(), Some("w3"));
        assert_eq!(pick(&[id("w2"), id("w3")], 70.0).as_deref(), Some("w1"));
    }

    #[test]
    fn loads_the_bench_inventory_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.json");
        std::fs::write(&p, r#"{"seed":1,"workers":[{"worker_id":"worker-gpu-000","platform":"GPU","kind":"gpu","memory_gb":24,"taxonomy_hardware_class":"GPU"}]}"#).unwrap();
        let r = WorkerRegistry::load(&p).unwrap();
        assert_eq!(r.len(), 1);
        let e = WorkerRegistry::load(&dir.path().join("missing.json")).unwrap_err();
        assert!(e.to_string().contains("missing.json"));
    }

    /// Found by an audit: a bad worker in a bare-array inventory was reported as the object
    /// form's error ("expected a sequence at line 1 column 1"), hiding what was wrong.
    #[test]
    fn an_inventory_error_is_the_one_of_the_form_used() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.json");
        let bad = r#"{"worker_id":"g1","platform":"GPUX"}"#;
        std::fs::write(&p, format!("[{bad}]")).unwrap();
        let e = WorkerRegistry::load(&p).unwrap_err().to_string();
        assert!(e.contains("GPUX") && e.contains("w.json"), "{e}");
        std::fs::write(&p, format!(r#"{{"workers": [{bad}]}}"#)).unwrap();
        let e = WorkerRegistry::load(&p).unwrap_err().to_string();
        assert!(e.contains("GPUX"), "{e}");
        std::fs::write(&p, r#" [{"worker_id":"g1","platform":"GPU"}]"#).unwrap();
        assert_eq!(WorkerRegistry::load(&p).unwrap().len(), 1);
        // A worker without a class is named by its place (README walk-through: "missing
        // field `class` at line 1 column 57" did not say which).
        std::fs::write(
            &p,
            r#"{"workers":[{"id":"g0","class":"GPU"},{"worker_id":"g1","hardware":{"class":"GPU"}}]}"#,
        )
        .unwrap();
        let e = WorkerRegistry::load(&p).unwrap_err().to_string();
        assert!(e.contains("workers[1]") && e.contains("class"), "{e}");
        // An empty inventory and a worker listed twice are refused (audit: the first read as
        // no inventory at all, the second took the last entry).
        std::fs::write(&p, r#"{"workers":[]}"#).unwrap();
        let e = WorkerRegistry::load(&p).unwrap_err().to_string();
        assert!(e.contains("no workers"), "{e}");
        std::fs::write(
            &p,
            r#"[{"id":"a","class":"GPU"},{"id":"b","class":"GPU"},{"id":"a","class":"CPU"}]"#,
        )
        .unwrap();
        let e = WorkerRegistry::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("worker 2") && e.contains("'a' is listed twice"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod pick_equivalence {
    //! The ordered walk of [`WorkerRegistry::pick`] against the plain definition: the best
    //! candidate by (breaker not half-open, wishes met, slots, memory after an OOM), then the
    //! smallest id; workers whose breaker is open are no candidates.
    use super::*;
    use proptest::prelude::*;

    fn reference<'r>(r: &'r WorkerRegistry, want: &Want<'_>) -> Option<&'r Worker> {
        let mem_ok = |w: &Worker| match (want.more_memory_than, w.memory_gib) {
            (Some(min), Some(m)) => m > min,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let browser_ok = |w: &Worker| match (want.other_browser_than, &w.browser) {
            (Some(b), Some(wb)) => !wb.eq_ignore_ascii_case(b),
            _ => true,
        };
        let state = |w: &Worker| {
            want.breakers
                .map_or(BreakerState::Closed, |(b, at)| b.state(&w.id, at))
        };
        let key = |w: &Worker| {
            (
                state(w) != BreakerState::HalfOpen,
                u32::from(mem_ok(w)) + u32::from(browser_ok(w)),
                w.slots,
                if want.more_memory_than.is_some() {
                    memory_key(w)
                } else {
                    0
                },
            )
        };
        r.workers
            .values()
            .filter(|w| w.class == want.class)
            .filter(|w| {
                !r.flags.contains_key(&w.id)
                    && w.slots > 0
                    && !want.excluded.contains(&w.id)
                    && want.also_excluded != Some(&w.id)
                    && !want.avoid_sorted.contains(&w.id)
                    && state(w) != BreakerState::Open
            })
            .max_by(|a, b| key(a).cmp(&key(b)).then_with(|| b.id.cmp(&a.id)))
    }

    const BROWSERS: [&str; 3] = ["chrome", "Firefox", "firefox"];

    proptest! {
        #[test]
        fn pick_is_the_best_candidate(
            workers in proptest::collection::vec(
                (0u8..12, 0usize..2, proptest::option::of(0u8..6), proptest::option::of(0usize..3), 0u32..3, any::<bool>()),
                0..40,
            ),
            excluded in proptest::collection::vec(0u8..12, 0..4),
            avoid in proptest::collection::vec(0u8..12, 0..4),
            more_memory in proptest::option::of(0u8..6),
            other_browser in proptest::option::of(0usize..3),
            class in 0usize..2,
            also in proptest::option::of(0u8..12),
            // Per worker number: 0 no breaker, 1 closed, 2 open, 3 half-open.
            breakers in proptest::option::of(proptest::collection::vec(0u8..4, 12)),
        ) {
            let classes = [HardwareClass::Gpu, HardwareClass::Webgpu];
            let mut r = WorkerRegistry::new();
            for (id, c, mem, browser, slots, flagged) in workers {
                let id = WorkerId::new(&format!("w{id}")).unwrap();
                if flagged {
                    r.flag(&id, "test");
                }
                // Re-registering an id moves it (class, slots and memory may change).
                r.register(Worker {
                    memory_gib: mem.map(|m| f64::from(m) * 8.0),
                    browser: browser.map(|b| BROWSERS[b].to_string()),
                    slots,
                    ..Worker::new(id, classes[c])
                });
            }
            let excluded: Vec<WorkerId> = excluded
                .iter()
                .map(|i| WorkerId::new(&format!("w{i}")).unwrap())
                .collect();
            let mut avoid: Vec<WorkerId> = avoid
                .iter()
                .map(|i| WorkerId::new(&format!("w{i}")).unwrap())
                .collect();
            avoid.sort_unstable();
            let also = also.map(|i| WorkerId::new(&format!("w{i}")).unwrap());
            // Read at 100 s: opened at 0 s (recovery 60 s) is half-open, at 90 s still open.
            let at = Timestamp::from_secs_f64(100.0);
            let breakers = breakers.map(|states| {
                let mut b = Breakers::new(crate::config::BreakerParams::worker());
                for (i, s) in states.iter().enumerate() {
                    let id = WorkerId::new(&format!("w{i}")).unwrap();
                    let (n, t) = match s {
                        1 => (1, 0.0),
                        2 => (5, 90.0),
                        3 => (5, 0.0),
                        _ => continue,
                    };
                    for _ in 0..n {
                        b.failure(&id, Timestamp::from_secs_f64(t));
                    }
                }
                b
            });
            let want = Want {
                class: classes[class],
                excluded: &excluded,
                also_excluded: also.as_ref(),
                avoid_sorted: &avoid,
                more_memory_than: more_memory.map(|m| f64::from(m) * 8.0),
                other_browser_than: other_browser.map(|b| BROWSERS[b]),
                vendor: None,
                breakers: breakers.as_ref().map(|b| (b, at)),
            };
            prop_assert_eq!(
                r.pick(&want).map(|w| w.id.clone()),
                reference(&r, &want).map(|w| w.id.clone())
            );
        }
    }
}
