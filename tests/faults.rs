//! Faults during training and export: a trainer killed (SIGKILL) during fine-tuning resumes with
//! `--resume` to the weights of an uninterrupted run, and an export killed at any moment never
//! leaves a bundle that loads wrong: the bundle directory is either absent or complete.

use nook_e2e::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn train_args<'a>(data: &'a str, out: &'a str, ckpt: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--data",
        data,
        "--out",
        out,
        "--models",
        "als,content-ft",
        "--no-eval",
        "--ft-steps",
        "10",
        "--ft-batch",
        "8",
        "--ft-max-tokens",
        "24",
        "--ft-checkpoint-every",
        "2",
        "--checkpoint-dir",
        ckpt,
    ]
}

fn step_of(ckpt: &Path) -> usize {
    std::fs::read(ckpt.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["step"].as_u64())
        .unwrap_or(0) as usize
}

fn weights(model: &Path) -> Vec<(String, Vec<f32>)> {
    let bytes = std::fs::read(model.join("encoder-ft/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .filter(|(_, t)| t.dtype() == safetensors::Dtype::F32)
        .map(|(n, t)| (n, t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn a_killed_fine_tuning_resumes_to_the_uninterrupted_result() {
    let (data, _) = (ml100k(), encoder_dir());
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let data = path_str(&data).to_string();

    nook_ok(&train_args(&data, &p("straight"), &p("ckpt-straight")));

    let mut child = Command::new(nook_bin())
        .args(train_args(&data, &p("resumed"), &p("ckpt")))
        .env("NOOK_LOG", "warn")
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while step_of(&tmp.path().join("ckpt")) < 4 {
        assert!(start.elapsed() < Duration::from_secs(300), "fine-tuning never reached step 4");
        assert!(child.try_wait().unwrap().is_none(), "the trainer ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = step_of(&tmp.path().join("ckpt"));
    assert!(killed_at < 10, "killed before the end (checkpoint at step {killed_at})");
    assert!(!tmp.path().join("resumed/model.json").exists(), "no model was written by the killed run");

    let (resumed, ckpt) = (p("resumed"), p("ckpt"));
    let mut args = train_args(&data, &resumed, &ckpt);
    args.push("--resume");
    nook_ok(&args);
    let (a, b) = (weights(&tmp.path().join("straight")), weights(&tmp.path().join("resumed")));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let diff = x.iter().zip(y).map(|(u, v)| (u - v).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-5, "{name} differs by {diff} after resuming from step {killed_at}");
    }
}

/// Entries beside the bundle that a run writes and renames away: `.bundle.tmp-PID`, `.bundle.old-PID`.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".bundle."))
        .collect()
}

#[test]
fn a_killed_export_never_leaves_a_bundle_that_loads_wrong() {
    let (model, _) = ml100k_bundle();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let spawn = || {
        Command::new(nook_bin())
            .args(["export", "--model", path_str(model), "--out", path_str(&out)])
            .env("NOOK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let check = |label: &str| {
        if out.exists() {
            // Whatever survived must be a whole, verified bundle.
            let got = nook(&["recommend", "--bundle", path_str(&out), "--like", "1", "--k", "3"]);
            assert!(got.status.success(), "{label}: {}", String::from_utf8_lossy(&got.stderr));
        }
    };
    // Killed the moment its temporary directory appears: inside the write window for certain
    // (asserted: the directory is still there after the kill), with and without an old bundle.
    let mut in_window = 0;
    for attempt in 0..6 {
        let mut child = spawn();
        let start = Instant::now();
        while leftovers(tmp.path()).is_empty() && child.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(120), "export never started writing");
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.kill();
        child.wait().unwrap();
        if !leftovers(tmp.path()).is_empty() {
            in_window += 1;
        }
        check(&format!("kill in the window, attempt {attempt}"));
    }
    assert!(in_window >= 3, "only {in_window} of 6 kills landed inside the write window");
    // Killed at spread-out moments.
    for delay_ms in [5u64, 20, 40, 60, 80, 120, 160, 220, 300] {
        let mut child = spawn();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        check(&format!("kill after {delay_ms} ms"));
    }
    // The next run finishes and removes what the killed ones left.
    nook_ok(&["export", "--model", path_str(model), "--out", path_str(&out)]);
    nook_ok(&["recommend", "--bundle", path_str(&out), "--like", "1", "--k", "3"]);
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new(), "leftovers of killed runs were cleaned up");
}
