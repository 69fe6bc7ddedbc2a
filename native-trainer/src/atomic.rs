//! Atomic, durable writes that never destroy what nook did not write.
//!
//! A file is written to a temporary sibling, fsynced, renamed into place and its directory
//! fsynced. A directory is filled as a temporary sibling (marked with [`MARKER`]), fsynced file by
//! file, then exchanged with the target in one `renameat2(RENAME_EXCHANGE)` where the kernel has
//! it, so the target name always points at a whole directory, old or new. An existing directory
//! is replaced only if it is empty or carries the marker (nook wrote it); anything else is refused
//! unless [`set_force`] was called (`nook --force`). Temporary and set-aside siblings a killed run
//! left behind are recovered or removed by the next write to the same target.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The file every directory nook writes carries; its presence is what allows a later run to
/// replace the directory.
pub const MARKER: &str = ".nook-output";

static FORCE: AtomicBool = AtomicBool::new(false);

/// Allows replacing output directories nook did not write (the CLI's `--force`).
pub fn set_force(force: bool) {
    FORCE.store(force, Ordering::Relaxed);
}

fn sibling(target: &Path, tag: &str, pid: u32) -> PathBuf {
    target.with_file_name(format!(".{}.{tag}-{pid}", file_name(target)))
}

fn file_name(target: &Path) -> String {
    target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into())
}

fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` through a temporary file in the same directory; durable once it
/// returns.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = parent_of(path);
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    if path.is_dir() {
        bail!("{} is a directory; expected a file path", path.display());
    }
    clean_leftovers(path);
    let tmp = sibling(path, "tmp", std::process::id());
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", tmp.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    sync_dir(parent)
}

/// Fills a fresh temporary directory with `fill`, then swaps it in for `target`. An existing
/// `target` is replaced only after the new one is complete and durable, and only if nook wrote it
/// (or it is empty, or `--force`).
pub fn write_dir(target: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    check_replaceable(target)?;
    let parent = parent_of(target);
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    clean_leftovers(target);
    let tmp = sibling(target, "tmp", std::process::id());
    if tmp.exists() {
        remove_nook_dir(&tmp)?;
    }
    std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let filled = std::fs::write(tmp.join(MARKER), marker_text())
        .with_context(|| format!("writing {}", tmp.join(MARKER).display()))
        .and_then(|()| fill(&tmp))
        .and_then(|()| sync_tree(&tmp));
    if let Err(e) = filled {
        let _ = remove_nook_dir(&tmp);
        return Err(e);
    }
    if target.exists() {
        swap_in(&tmp, target)?;
    } else {
        std::fs::rename(&tmp, target).with_context(|| format!("renaming into {}", target.display()))?;
    }
    sync_dir(parent)
}

fn marker_text() -> String {
    format!(
        "Written by nook {}. nook may replace this directory on a later run; remove this file to stop it.\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Refuses a target that is not a directory nook may replace: checked again when writing, and
/// by commands before any work, so a long run does not end in a refusal.
pub fn check_replaceable(target: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", target.display())),
    };
    if meta.file_type().is_symlink() {
        bail!("refusing to replace {}: it is a symbolic link; name the directory itself", target.display());
    }
    if !meta.is_dir() {
        bail!("refusing to replace {}: it is a file, not an output directory", target.display());
    }
    if target.join(MARKER).is_file() || FORCE.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut entries = std::fs::read_dir(target).with_context(|| format!("reading {}", target.display()))?;
    if entries.next().is_none() {
        return Ok(());
    }
    bail!(
        "refusing to replace {}: it is not empty and nook did not write it (no {MARKER} file); \
         choose another --out, empty it, or pass --force to replace it",
        target.display()
    )
}

/// Exchanges `tmp` and `target`, then removes what was the target. With `RENAME_EXCHANGE` the
/// target name never goes missing; elsewhere it is absent between two renames, and a killed run
/// leaves it as `.NAME.old-PID`, which [`clean_leftovers`] puts back.
fn swap_in(tmp: &Path, target: &Path) -> Result<()> {
    if exchange(tmp, target).is_ok() {
        sync_dir(parent_of(target))?;
        return remove_replaced(tmp);
    }
    let old = sibling(target, "old", std::process::id());
    std::fs::rename(target, &old).with_context(|| format!("moving aside {}", target.display()))?;
    std::fs::rename(tmp, target).with_context(|| format!("renaming into {}", target.display()))?;
    sync_dir(parent_of(target))?;
    remove_replaced(&old)
}

/// Removes a replaced directory: one nook wrote, or (`--force`, or empty) one the user allowed.
fn remove_replaced(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("removing the replaced {}", dir.display()))
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths; the call reads them and touches nothing else.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Recovers or removes what a killed earlier run left beside `target`: a set-aside `.old-PID`
/// goes back if the target is missing (killed between the two renames), otherwise it and any
/// `.tmp-PID` are removed — but only those carrying nook's marker, empty ones, or plain temporary files,
/// and only if the process that made them is gone.
fn clean_leftovers(target: &Path) {
    let parent = parent_of(target);
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    let prefix = format!(".{}.", file_name(target));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((tag, pid)) = name.strip_prefix(&prefix).and_then(|rest| rest.split_once('-')) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if (tag != "tmp" && tag != "old") || pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        let is_dir = path.is_dir();
        let outcome = if tag == "old" && !target.exists() {
            // Putting the set-aside target back under its name is right whoever wrote it.
            std::fs::rename(&path, target).map(|()| "restored")
        } else if is_dir && path.join(MARKER).is_file() {
            std::fs::remove_dir_all(&path).map(|()| "removed")
        } else if is_dir {
            // No marker: a run killed between creating the directory and marking it leaves it
            // empty. `remove_dir` only removes an empty directory, so nothing else is touched.
            match std::fs::remove_dir(&path) {
                Ok(()) => Ok("removed"),
                Err(_) => continue,
            }
        } else {
            std::fs::remove_file(&path).map(|()| "removed")
        };
        match outcome {
            Ok(what) => tracing::info!("{what} {} left by an interrupted run", path.display()),
            Err(e) => tracing::warn!("could not clean up {}: {e}", path.display()),
        }
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_: u32) -> bool {
    true
}

fn remove_nook_dir(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("removing stale {}", dir.display()))
}

/// fsyncs every file and directory under `dir`, deepest first, so the rename that publishes it
/// publishes data that is on disk.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            File::open(&path).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", path.display()))?;
        }
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing directory {}", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Refuses an output that equals, lies inside or contains one of the inputs: replacing it would
/// destroy what the run reads. Paths are compared after resolving symbolic links (the output
/// need not exist yet).
pub fn check_apart(out: &Path, inputs: &[&Path]) -> Result<()> {
    let out_abs = resolve(out)?;
    for input in inputs {
        let input_abs = resolve(input)?;
        if out_abs == input_abs {
            bail!(
                "--out {} is the input {} itself; writing it would destroy the input",
                out.display(),
                input.display()
            );
        }
        if out_abs.starts_with(&input_abs) {
            bail!("--out {} lies inside the input {}; choose a directory outside it", out.display(), input.display());
        }
        if input_abs.starts_with(&out_abs) {
            bail!(
                "--out {} contains the input {}; replacing it would destroy the input",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// An absolute path with symbolic links resolved as far as the path exists.
fn resolve(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return Ok(rest.iter().rev().fold(real, |p: PathBuf, part| p.join(part)));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(abs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_fill_leaves_the_old_directory() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("model");
        write_dir(&target, |d| Ok(std::fs::write(d.join("a"), "1")?)).unwrap();
        let err = write_dir(&target, |d| {
            std::fs::write(d.join("a"), "2")?;
            anyhow::bail!("boom")
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "1");
        let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary directory was cleaned up");
    }

    #[test]
    fn replaces_only_what_nook_wrote_or_an_empty_directory() {
        let root = tempfile::tempdir().unwrap();
        let mine = root.path().join("mine");
        write_dir(&mine, |d| Ok(std::fs::write(d.join("a"), "1")?)).unwrap();
        write_dir(&mine, |d| Ok(std::fs::write(d.join("a"), "2")?)).unwrap();
        assert_eq!(std::fs::read_to_string(mine.join("a")).unwrap(), "2");

        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        write_dir(&empty, |d| Ok(std::fs::write(d.join("a"), "1")?)).unwrap();
        assert!(empty.join(MARKER).is_file());

        let theirs = root.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::write(theirs.join("precious.csv"), "data").unwrap();
        let err = write_dir(&theirs, |d| Ok(std::fs::write(d.join("a"), "1")?)).unwrap_err().to_string();
        assert!(err.contains("refusing to replace") && err.contains("--force"), "{err}");
        assert_eq!(std::fs::read_to_string(theirs.join("precious.csv")).unwrap(), "data");
        let names: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 3, "nothing left beside the targets: {names:?}");
    }

    #[test]
    fn leftovers_of_a_dead_run_are_restored_or_removed() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("model");
        // A run killed between its two renames: the target is missing, its old copy set aside.
        let dead = 999_999_999; // beyond pid_max, so no such process
        let old = sibling(&target, "old", dead);
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join(MARKER), "x").unwrap();
        std::fs::write(old.join("a"), "old").unwrap();
        let tmp = sibling(&target, "tmp", dead);
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join(MARKER), "x").unwrap();
        // Killed between creating its directory and marking it: empty, removed.
        let unmarked = sibling(&target, "tmp", dead - 2);
        std::fs::create_dir(&unmarked).unwrap();
        // Not nook's: same naming, no marker, something inside. Left alone.
        let foreign = sibling(&target, "tmp", dead - 1);
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("precious.csv"), "data").unwrap();
        clean_leftovers(&target);
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "old");
        assert!(!tmp.exists() && !old.exists() && !unmarked.exists());
        assert_eq!(std::fs::read_to_string(foreign.join("precious.csv")).unwrap(), "data");
    }

    #[test]
    fn outputs_overlapping_inputs_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        for out in [data.clone(), data.join("model"), root.path().to_path_buf(), data.join("..").join("data")] {
            assert!(check_apart(&out, &[&data]).is_err(), "{} was allowed", out.display());
        }
        check_apart(&root.path().join("model"), &[&data]).unwrap();
    }
}
