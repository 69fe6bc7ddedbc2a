//! From a URL path to a file under a served directory: no `..`, no percent-encoded tricks, no
//! hidden files (nook's `.nook-output` marker, editors' leftovers) and no symbolic links anywhere
//! below the root, so nothing outside the directory the user named is ever served.

use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed: answered 400.
    BadPath,
    /// Absent, hidden, a link or a directory: answered 404, telling nothing more.
    NotFound,
}

/// The file `rel` (a URL path below the root, without its leading `/`) names under `root`.
pub fn resolve(root: &Path, rel: &str) -> Result<PathBuf, Refusal> {
    if rel.contains(['%', '\\', '\0']) {
        return Err(Refusal::BadPath);
    }
    let parts: Vec<&str> = rel.split('/').collect();
    // The whole path is checked for shape before the disk is asked anything, so a malformed
    // request is told so however much of it exists.
    if parts.iter().any(|part| part.is_empty() || *part == "." || *part == "..") {
        return Err(Refusal::BadPath);
    }
    if parts.iter().any(|part| part.starts_with('.')) {
        return Err(Refusal::NotFound);
    }
    let mut path = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let meta = std::fs::symlink_metadata(&path).map_err(|_| Refusal::NotFound)?;
        let last = i + 1 == parts.len();
        let fits = if last { meta.file_type().is_file() } else { meta.file_type().is_dir() };
        if !fits {
            if meta.file_type().is_symlink() {
                tracing::debug!("not following the symbolic link {}", path.display());
            }
            return Err(Refusal::NotFound);
        }
    }
    Ok(path)
}

/// The Content-Type nook serves a file with; a `.wasm` must be `application/wasm` for streaming
/// compilation, scripts must be JavaScript for module workers.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_escape_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("pkg")).unwrap();
        std::fs::write(root.path().join("pkg/a.js"), "x").unwrap();
        std::fs::write(root.path().join(".nook-output"), "x").unwrap();
        assert_eq!(resolve(root.path(), "pkg/a.js"), Ok(root.path().join("pkg/a.js")));
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", "%2e%2e/x", "a\\..\\b", "pkg//a.js", "./pkg/a.js"] {
            assert_eq!(resolve(root.path(), bad), Err(Refusal::BadPath), "{bad}");
        }
        for hidden in [".nook-output", "pkg", "pkg/missing.js", "pkg/a.js/x"] {
            assert_eq!(resolve(root.path(), hidden), Err(Refusal::NotFound), "{hidden}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.path().join("secret.txt")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("dir")).unwrap();
        assert_eq!(resolve(root.path(), "secret.txt"), Err(Refusal::NotFound));
        assert_eq!(resolve(root.path(), "dir/secret.txt"), Err(Refusal::NotFound));
    }
}
