//! Writing files that hold keys or plaintext: atomically, with mode 0600.
//!
//! The data goes to a temporary file in the target's directory (created 0600),
//! is flushed and fsynced, then renamed over the target, and the directory is
//! fsynced: a crash leaves either the old file or the new one, never a torn one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a private file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteFileError {
    /// The target exists and overwriting was not allowed.
    #[error("{} already exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    /// An I/O step failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Write `data` to `path` atomically with mode 0600. With `overwrite == false`,
/// an existing file is an error and is left untouched.
pub fn write_private(path: &Path, data: &[u8], overwrite: bool) -> Result<(), WriteFileError> {
    let io_err = |source| WriteFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !overwrite && path.symlink_metadata().is_ok() {
        return Err(WriteFileError::Exists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // tempfile creates the file with mode 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(".atrest-")
        .tempfile_in(&dir)
        .map_err(io_err)?;
    set_private(tmp.path()).map_err(io_err)?;
    tmp.write_all(data).map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    if overwrite {
        tmp.persist(path).map_err(|e| io_err(e.error))?;
    } else {
        // persist_noclobber fails if the target appeared meanwhile.
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                WriteFileError::Exists(path.to_path_buf())
            } else {
                io_err(e.error)
            }
        })?;
    }
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Create a directory (and parents) with mode 0700.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

fn set_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_0600_and_refuses_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k.yaml");
        write_private(&p, b"one", false).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(matches!(
            write_private(&p, b"two", false),
            Err(WriteFileError::Exists(_))
        ));
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_private(&p, b"two", true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
    }
}
