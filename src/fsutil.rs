//! Writing files that hold keys or plaintext: atomically, private, keeping the
//! owner of what they replace.
//!
//! The data goes to a temporary file in the target's directory, which gets its
//! owner, group and mode on the open descriptor (`fchown`, `fchmod`), is flushed
//! and fsynced, then renamed over the target, and the directory is fsynced: a
//! crash leaves either the old file or the new one, never a torn one.
//!
//! - A file that replaces another keeps that file's owner, group and mode (a
//!   kube-apiserver that does not run as root must still read its config after a
//!   `rotate`); a new file is 0600 and owned by the caller.
//! - A target that is a symlink is written through: the link's target is
//!   replaced, the link stays (as `kubectl`-managed and config-management setups
//!   expect).
//! - [`PrivateTree`] writes a tree of files (`dump --out-dir`) without ever
//!   following a symlink inside it (`openat` with `O_NOFOLLOW`), and refuses
//!   directories that another user owns or that group or others may write to.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Symlinks followed at most when resolving a target (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Why a private file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteFileError {
    /// The target exists and overwriting was not allowed.
    #[error("{} already exists; pass --force to replace it", .0.display())]
    Exists(PathBuf),
    /// The target exists but is not a regular file.
    #[error("{} is not a regular file; give the path of a file", .0.display())]
    NotAFile(PathBuf),
    /// The new file cannot be given the owner of the one it replaces.
    #[error(
        "cannot give the new {} the owner {uid}:{gid} of the file it replaces ({source}); \
         the file was left as it was: run as root or as that user",
        path.display()
    )]
    Owner {
        /// The file being written.
        path: PathBuf,
        /// Owner to keep.
        uid: u32,
        /// Group to keep.
        gid: u32,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
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

/// Owner, group and permission bits a written file gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Perms {
    uid: u32,
    gid: u32,
    mode: u32,
}

impl Perms {
    fn of(m: &fs::Metadata) -> Perms {
        Perms {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        }
    }
}

/// Where a path that may be a symlink (or a chain of them) points; the final
/// target need not exist.
pub(crate) fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut cur = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&cur)?;
                cur = if to.is_absolute() {
                    to
                } else {
                    cur.parent().unwrap_or(Path::new(".")).join(to)
                };
            }
            _ => return Ok(cur),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("more than {MAX_LINKS} symlinks"),
    ))
}

/// Write `data` to `path` atomically. With `overwrite == false`, an existing
/// file (or link) is an error and is left untouched. With `overwrite`, a symlink
/// is written through to its target, and a file that is replaced keeps its
/// owner, group and mode; a new file is 0600.
pub fn write_private(path: &Path, data: &[u8], overwrite: bool) -> Result<(), WriteFileError> {
    if !overwrite && path.symlink_metadata().is_ok() {
        return Err(WriteFileError::Exists(path.to_path_buf()));
    }
    let target = resolve_symlinks(path).map_err(|source| WriteFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let perms = match fs::metadata(&target) {
        Ok(m) if !m.is_file() => return Err(WriteFileError::NotAFile(target)),
        Ok(m) => Some(Perms::of(&m)),
        Err(_) => None,
    };
    write_atomic(&target, data, overwrite, perms)
}

/// Write a new file `path` (never replacing one) with the owner, group and mode
/// of the file `like`: the copy of a config (`.bak`) is as private, and as
/// readable to its owner, as the config itself.
pub(crate) fn write_private_like(
    path: &Path,
    data: &[u8],
    like: &Path,
) -> Result<(), WriteFileError> {
    let m = fs::metadata(like).map_err(|source| WriteFileError::Io {
        path: like.to_path_buf(),
        source,
    })?;
    if path.symlink_metadata().is_ok() {
        return Err(WriteFileError::Exists(path.to_path_buf()));
    }
    write_atomic(path, data, false, Some(Perms::of(&m)))
}

fn write_atomic(
    path: &Path,
    data: &[u8],
    overwrite: bool,
    perms: Option<Perms>,
) -> Result<(), WriteFileError> {
    let io_err = |source| WriteFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // tempfile creates the file with mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".atrest-")
        .tempfile_in(&dir)
        .map_err(io_err)?;
    let mode = match perms {
        Some(p) => {
            let now = tmp.as_file().metadata().map_err(io_err)?;
            if (now.uid(), now.gid()) != (p.uid, p.gid) {
                std::os::unix::fs::fchown(tmp.as_file(), Some(p.uid), Some(p.gid)).map_err(
                    |source| WriteFileError::Owner {
                        path: path.to_path_buf(),
                        uid: p.uid,
                        gid: p.gid,
                        source,
                    },
                )?;
            }
            p.mode
        }
        None => 0o600,
    };
    // After fchown, which may clear set-id bits.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err)?;
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
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Create a directory (and parents) with mode 0700.
pub(crate) fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Why a file of a [`PrivateTree`] could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A directory of the tree may be written by group or others.
    #[error(
        "{} is writable by group or others (mode {mode:04o}): another user could replace \
         what atrest writes there; run `chmod go-w {}` or choose a new directory",
        path.display(), path.display()
    )]
    Writable {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory of the tree belongs to another user.
    #[error(
        "{} is owned by uid {owner}, not by you (uid {me}): its owner could read or replace \
         what atrest writes there; run `chown {me} {}` or choose a new directory",
        path.display(), path.display()
    )]
    Foreign {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        me: u32,
    },
    /// A symlink where a directory or file of the tree belongs.
    #[error(
        "{} is a symlink; atrest does not follow symlinks inside the output directory: \
         remove it or choose a new directory",
        .0.display()
    )]
    Symlink(PathBuf),
    /// Something else where a directory of the tree belongs.
    #[error("{} exists and is not a directory; remove it or choose a new directory", .0.display())]
    NotADirectory(PathBuf),
    /// An I/O step failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The path being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// An output directory for files with plaintext: new directories are 0700,
/// existing ones must belong to the caller and not be writable by group or
/// others, and nothing inside it is reached through a symlink.
#[derive(Debug)]
pub struct PrivateTree {
    root: File,
    path: PathBuf,
}

fn cstr(name: &str, path: &Path) -> Result<CString, TreeError> {
    CString::new(name).map_err(|_| TreeError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a file name"),
    })
}

/// `openat(dir, name, flags)` as an owned descriptor.
fn openat(dir: &File, name: &CString, flags: libc::c_int, mode: libc::c_uint) -> io::Result<File> {
    // SAFETY: `name` is a valid NUL-terminated string and `dir` an open
    // descriptor for the duration of the call.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Whether `name` in `dir` is a symlink (not followed).
fn is_symlink_at(dir: &File, name: &CString) -> bool {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid descriptor, NUL-terminated name, and a buffer for one stat.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return false;
    }
    // SAFETY: fstatat succeeded, so it filled the buffer.
    let st = unsafe { st.assume_init() };
    st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// The effective uid of this process.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Refuse a directory that another user owns or that group or others may write.
fn check_private_dir(dir: &File, path: &Path) -> Result<(), TreeError> {
    let m = dir.metadata().map_err(|source| TreeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let me = euid();
    if m.uid() != me {
        return Err(TreeError::Foreign {
            path: path.to_path_buf(),
            owner: m.uid(),
            me,
        });
    }
    if m.mode() & 0o022 != 0 {
        return Err(TreeError::Writable {
            path: path.to_path_buf(),
            mode: m.mode() & 0o7777,
        });
    }
    Ok(())
}

impl PrivateTree {
    /// Open the root of the tree, creating it (and missing parents) 0700. An
    /// existing root must belong to the caller and not be group/world-writable.
    pub fn open(path: &Path) -> Result<PrivateTree, TreeError> {
        let io_err = |source| TreeError::Io {
            path: path.to_path_buf(),
            source,
        };
        let created = match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_private_dir(path).map_err(io_err)?;
                true
            }
            Err(e) => return Err(io_err(e)),
            Ok(_) => false,
        };
        let root = fs::OpenOptions::new()
            .read(true)
            .custom_flags_directory()
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOTDIR) => TreeError::NotADirectory(path.to_path_buf()),
                _ => io_err(e),
            })?;
        if created {
            root.set_permissions(fs::Permissions::from_mode(0o700))
                .map_err(io_err)?;
        }
        check_private_dir(&root, path)?;
        Ok(PrivateTree {
            root,
            path: path.to_path_buf(),
        })
    }

    /// The root's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open (or create, 0700) the directory `name` inside `dir`, never through a link.
    fn subdir(&self, dir: &File, name: &str, path: &Path) -> Result<File, TreeError> {
        let c = cstr(name, path)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let io_err = |source| TreeError::Io {
            path: path.to_path_buf(),
            source,
        };
        for _ in 0..2 {
            match openat(dir, &c, flags, 0) {
                Ok(d) => {
                    check_private_dir(&d, path)?;
                    return Ok(d);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    // SAFETY: valid descriptor and NUL-terminated name.
                    let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o700) };
                    if rc != 0 {
                        let e = io::Error::last_os_error();
                        if e.raw_os_error() == Some(libc::EEXIST) {
                            continue; // made meanwhile: open and check it
                        }
                        return Err(io_err(e));
                    }
                    let d = openat(dir, &c, flags, 0).map_err(io_err)?;
                    d.set_permissions(fs::Permissions::from_mode(0o700))
                        .map_err(io_err)?;
                    check_private_dir(&d, path)?;
                    return Ok(d);
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                    return Err(if is_symlink_at(dir, &c) {
                        TreeError::Symlink(path.to_path_buf())
                    } else {
                        TreeError::NotADirectory(path.to_path_buf())
                    });
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        Err(TreeError::NotADirectory(path.to_path_buf()))
    }

    /// Write `data` to `<root>/<dirs...>/<file>` atomically with mode 0600,
    /// creating missing directories 0700. Components must be plain names (no
    /// `/`, `.` or `..`). A symlink at `file` is replaced, not followed.
    pub fn write_file(&self, dirs: &[&str], file: &str, data: &[u8]) -> Result<PathBuf, TreeError> {
        let mut path = self.path.clone();
        for c in dirs.iter().chain([&file]) {
            if c.is_empty() || *c == "." || *c == ".." || c.contains('/') {
                return Err(TreeError::Io {
                    path: path.join(c),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "unsafe path component"),
                });
            }
        }
        let mut held: Option<File> = None;
        for name in dirs {
            path.push(name);
            let parent = held.as_ref().unwrap_or(&self.root);
            held = Some(self.subdir(parent, name, &path)?);
        }
        let dir = held.as_ref().unwrap_or(&self.root);
        path.push(file);
        let io_err = |source| TreeError::Io {
            path: path.clone(),
            source,
        };
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).map_err(|e| io_err(io::Error::other(e.to_string())))?;
        let tmp_name = format!(
            ".atrest-{}",
            rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let tmp_c = cstr(&tmp_name, &path)?;
        let final_c = cstr(file, &path)?;
        let mut f = openat(
            dir,
            &tmp_c,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        )
        .map_err(io_err)?;
        let written = (|| {
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(data)?;
            f.sync_all()?;
            // SAFETY: valid descriptors and NUL-terminated names; renameat
            // replaces the final name itself, never what a link there points to.
            let rc = unsafe {
                libc::renameat(
                    dir.as_raw_fd(),
                    tmp_c.as_ptr(),
                    dir.as_raw_fd(),
                    final_c.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })();
        if let Err(e) = written {
            // SAFETY: valid descriptor and NUL-terminated name.
            unsafe { libc::unlinkat(dir.as_raw_fd(), tmp_c.as_ptr(), 0) };
            return Err(io_err(e));
        }
        let _ = dir.sync_all();
        Ok(path)
    }
}

/// `O_DIRECTORY` on an `OpenOptions`.
trait DirectoryFlag {
    fn custom_flags_directory(&mut self) -> &mut Self;
}

impl DirectoryFlag for fs::OpenOptions {
    fn custom_flags_directory(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writes_0600_and_refuses_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k.yaml");
        write_private(&p, b"one", false).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(mode(&p), 0o600);
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

    #[test]
    fn replacing_keeps_the_mode_and_writes_through_links() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.yaml");
        fs::write(&real, b"old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = d.path().join("link.yaml");
        std::os::unix::fs::symlink("real.yaml", &link).unwrap();
        write_private(&link, b"new", true).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(mode(&real), 0o640);
        let bak = d.path().join("real.yaml.bak");
        write_private_like(&bak, b"old", &real).unwrap();
        assert_eq!(mode(&bak), 0o640);
        assert!(matches!(
            write_private_like(&bak, b"again", &real),
            Err(WriteFileError::Exists(_))
        ));
    }

    #[test]
    fn tree_refuses_loose_dirs_and_links() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("out");
        let t = PrivateTree::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        let p = t.write_file(&["secrets", "ns"], "a.yaml", b"x").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"x");
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(&root.join("secrets/ns")), 0o700);
        fs::set_permissions(root.join("secrets/ns"), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            t.write_file(&["secrets", "ns"], "b.yaml", b"x"),
            Err(TreeError::Writable { mode: 0o777, .. })
        ));
        let elsewhere = d.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("secrets/linked")).unwrap();
        assert!(matches!(
            t.write_file(&["secrets", "linked"], "c.yaml", b"x"),
            Err(TreeError::Symlink(_))
        ));
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        // A link where the file goes is replaced, never written through.
        let target = d.path().join("target");
        fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, root.join("secrets/a.yaml")).unwrap();
        t.write_file(&["secrets"], "a.yaml", b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(!fs::symlink_metadata(root.join("secrets/a.yaml"))
            .unwrap()
            .file_type()
            .is_symlink());
        let loose = d.path().join("loose");
        fs::create_dir(&loose).unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            PrivateTree::open(&loose),
            Err(TreeError::Writable { .. })
        ));
    }
}
