//! Writing a zone file atomically.
//!
//! Input: the target path and the text. Output: the text at the target,
//! whole. Invariants: the text goes to a temporary file in the target's
//! directory, which is flushed to disk and only then renamed over the
//! target (one `rename(2)`: a reader sees the old file or the new one,
//! never a part); a staged file that is not installed is removed.

use super::ZoneError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A zone file written to a temporary file beside its target, not yet in place.
#[derive(Debug)]
pub struct Staged {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ZoneError + '_ {
    move |source| ZoneError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn directory(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl Staged {
    /// Writes `text` to a new temporary file in `target`'s directory and
    /// flushes it to disk. The file is readable by everyone (0644 on Unix):
    /// a zone file is public, and the nameserver may run as another user.
    pub fn new(target: &Path, text: &str) -> Result<Staged, ZoneError> {
        let dir = directory(target);
        let mut temp = tempfile::Builder::new()
            .prefix(".regmail-zone-")
            .tempfile_in(dir)
            .map_err(io(target))?;
        temp.write_all(text.as_bytes()).map_err(io(target))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(0o644);
            temp.as_file().set_permissions(mode).map_err(io(target))?;
        }
        temp.as_file().sync_all().map_err(io(target))?;
        Ok(Staged {
            temp,
            target: target.to_path_buf(),
        })
    }

    /// Renames the file over the target and flushes the directory.
    pub fn install(self) -> Result<(), ZoneError> {
        let Staged { temp, target } = self;
        temp.persist(&target).map_err(|e| ZoneError::Io {
            path: target.clone(),
            source: e.error,
        })?;
        // The rename itself is durable once the directory is.
        #[cfg(unix)]
        std::fs::File::open(directory(&target))
            .and_then(|d| d.sync_all())
            .map_err(io(&target))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn staged_text_appears_only_when_installed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("at.zone");
        std::fs::write(&target, "old\n").unwrap();
        let staged = Staged::new(&target, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n");
        assert_eq!(entries(dir.path()).len(), 2);
        staged.install().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(entries(dir.path()), ["at.zone"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&target).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        // Dropped without install: the target stays, the temporary file goes.
        drop(Staged::new(&target, "newer\n").unwrap());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(entries(dir.path()), ["at.zone"]);
    }

    #[test]
    fn a_missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("missing/at.zone");
        assert!(matches!(
            Staged::new(&target, "x\n"),
            Err(ZoneError::Io { .. })
        ));
    }
}
