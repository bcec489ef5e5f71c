//! Crash test: a child `faultline recommend --data DIR` acknowledges each decision by printing
//! it after its WAL fsync; the parent SIGKILLs the child at seeded random moments, restarts,
//! and checks that every acknowledged record is in the history exactly once and that every
//! Parquet file opens.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline::store::part_info;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const ROUNDS: usize = 100;

fn record(task: &str, i: usize) -> String {
    let msgs = [
        "CUDA out of memory. Tried to allocate 2.00 GiB",
        "NCCL watchdog thread terminated with exception: CUDA error: uncorrectable ECC error encountered",
        "WebGPU device lost (2): Device was destroyed.",
        "ConnectionResetError: [Errno 104] Connection reset by peer",
    ];
    format!(
        r#"{{"task_id":"{task}","worker_id":"w-{}","hardware":{{"class":"GPU","memory_gib":24}},"error":{{"message":"{}"}},"timestamp":"2026-11-0{}T10:00:00Z","task":{{"config":{{"batch_size":32,"precision":"fp16"}}}}}}"#,
        i % 7,
        msgs[i % msgs.len()],
        1 + i % 3
    )
}

#[test]
fn acknowledged_decisions_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // A fresh data directory every 20 rounds bounds the history each restart replays (and
    // the test's run time); within a directory, every restart sees all earlier rounds.
    const ROUNDS_PER_DIR: usize = 20;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(20261129);
    let mut acked_all: Vec<String> = Vec::new();
    let mut acked_dir: Vec<String> = Vec::new();
    let started = Instant::now();
    for round in 0..ROUNDS {
        let data = dir.path().join(format!("data-{}", round / ROUNDS_PER_DIR));
        if round % ROUNDS_PER_DIR == 0 {
            acked_dir.clear();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(["recommend", "--json", "--flush-every", "500", "--data"])
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0..5_000 {
                let line = record(&format!("r{round:03}-{i:06}"), i);
                if writeln!(stdin, "{line}").is_err() {
                    break;
                }
            }
        });
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
        let reader = {
            let acked = Arc::clone(&acked);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let _ = first_tx.send(());
                    let Ok(line) = line else { break };
                    let v: serde_json::Value =
                        serde_json::from_str(&line).expect("ack is an action");
                    acked
                        .lock()
                        .unwrap()
                        .push(v["task_id"].as_str().unwrap().to_string());
                }
            })
        };
        // Every fifth round dies at a random moment from spawn (start-up, replay); the others
        // at a random moment after the first acknowledgement (mid-stream, mid-flush). Waiting
        // for that first line keeps the test meaningful on a slow or loaded machine.
        if round % 5 == 0 {
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        } else {
            let _ = first_rx.recv_timeout(Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        writer.join().unwrap();
        reader.join().unwrap();
        let got: Vec<String> = acked.lock().unwrap().drain(..).collect();
        acked_dir.extend(got.iter().cloned());
        acked_all.extend(got);

        // Restart: opening repairs; then every acknowledged record is there exactly once.
        let (failures, actions, _) = crate::util::rows_per_task(&data);
        let lost: Vec<&String> = acked_dir
            .iter()
            .filter(|t| failures.get(*t) != Some(&1) || actions.get(*t) != Some(&1))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged records lost or duplicated, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        assert!(
            failures.values().all(|&n| n == 1),
            "round {round}: a duplicated failure"
        );
        for f in &crate::util::parquet_parts(&data.join("history")) {
            part_info(f).unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
    eprintln!(
        "crash test: {ROUNDS} rounds, {} records acknowledged, 0 lost, 0 duplicated ({:.1} s)",
        acked_all.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        acked_all.len() >= ROUNDS,
        "too few acknowledgements to mean anything: {}",
        acked_all.len()
    );
}
