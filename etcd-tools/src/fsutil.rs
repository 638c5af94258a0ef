//! File-system steps shared by the commands that write new output: names next to a
//! target, private directories, durable renames.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use snapshot_format::{Error, Result};

/// `path` with `suffix` appended to its file name (`db` -> `db.part`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// `<path>.part`, next to `path`: where output is written before it is complete.
pub fn part_path(path: &Path) -> PathBuf {
    with_suffix(path, ".part")
}

/// The backend file of `path`: `member/snap/db` inside a data dir, else `path` itself.
pub fn backend_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("member").join("snap").join("db")
    } else {
        path.to_path_buf()
    }
}

/// Creates `dir` and its parents with mode 0700 (etcd's private dir mode).
pub fn make_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

/// fsyncs a directory, so the names in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing {}", dir.display()), e))
}

/// Renames `from` to `to` (removing an empty `to` first) and syncs the parent.
pub fn rename_into_place(from: &Path, to: &Path) -> Result<()> {
    if to.is_dir() {
        fs::remove_dir(to).map_err(|e| Error::io(format!("replacing {}", to.display()), e))?;
    }
    fs::rename(from, to).map_err(|e| {
        Error::io(
            format!("renaming {} to {}", from.display(), to.display()),
            e,
        )
    })?;
    let parent = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sync_dir(parent)
}
