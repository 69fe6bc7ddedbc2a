//! `--out` never destroys data: a directory nook did not write is refused (unless `--force`), an
//! output equal to, inside or around an input is always refused, and a later run cleans up what a
//! killed one left.

use nook_e2e::*;
use std::path::Path;

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len())
        })
        .collect();
    files.sort();
    files
}

fn refused(args: &[&str]) -> String {
    let out = nook(args);
    assert!(!out.status.success(), "nook {args:?} was allowed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_output_over_its_own_input_is_refused_even_with_force() {
    let (tmp, data) = ml100k_copy();
    let before = listing(&data);
    let d = path_str(&data);
    let inside = data.join("split");
    for args in [
        vec!["split", "--data", d, "--out", d],
        vec!["split", "--data", d, "--out", d, "--force"],
        vec!["split", "--data", d, "--out", path_str(tmp.path()), "--force"],
        vec!["split", "--data", d, "--out", path_str(&inside)],
    ] {
        let err = refused(&args);
        assert!(err.contains("input"), "the refusal names the input: {err}");
    }
    assert_eq!(listing(&data), before, "the data set is untouched");
}

#[test]
fn a_directory_nook_did_not_write_is_refused_unless_forced() {
    let (tmp, data) = ml100k_copy();
    let mine = tmp.path().join("mydata");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "years of work").unwrap();
    let (d, out) = (path_str(&data), path_str(&mine));

    let err = refused(&["split", "--data", d, "--out", out]);
    assert!(err.contains(out) && err.contains("--force"), "the refusal names the path and the way out: {err}");
    assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).unwrap(), "years of work");

    // What nook wrote it may replace; the marker says so.
    let split = tmp.path().join("split");
    nook_ok(&["split", "--data", d, "--out", path_str(&split)]);
    assert!(split.join(".nook-output").is_file());
    nook_ok(&["split", "--data", d, "--out", path_str(&split)]);

    nook_ok(&["split", "--data", d, "--out", out, "--force"]);
    assert!(!mine.join("notes.txt").exists() && mine.join("train.csv").is_file(), "--force replaces it");
    let names: Vec<_> = listing(tmp.path()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["ml-100k", "mydata", "split"], "nothing left beside the outputs");
}
