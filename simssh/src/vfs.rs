//! A node's simulated file tree: bounded in-memory directories and files, paths normalised so that no
//! request can name anything outside the tree.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Longest path accepted, in bytes.
pub const MAX_PATH: usize = 4096;
/// Largest file kept, in bytes.
pub const MAX_FILE_BYTES: usize = 16 << 20;
/// Bytes of file contents one tree keeps.
pub const MAX_TREE_BYTES: usize = 64 << 20;
/// Entries (files and directories) one tree keeps.
pub const MAX_ENTRIES: usize = 50_000;

/// Bytes held at once in the process, over every node: file contents and uploads in progress.
pub const MAX_HELD_BYTES: usize = 1 << 30;

static HELD: AtomicUsize = AtomicUsize::new(0);

/// A share of [`MAX_HELD_BYTES`], given back when dropped. Clones hold as much again (an image's
/// tree copied to a node counts once more, even though its contents are shared).
#[derive(Debug, Default)]
pub struct Held(usize);

impl Held {
    /// Takes `n` more bytes; fails, taking nothing, when the budget is spent.
    pub fn grow(&mut self, n: usize) -> Result<(), FsError> {
        let mut current = HELD.load(Ordering::Acquire);
        loop {
            let next = current
                .checked_add(n)
                .filter(|&v| v <= MAX_HELD_BYTES)
                .ok_or(FsError::NoSpace)?;
            match HELD.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.0 += n;
                    return Ok(());
                }
                Err(v) => current = v,
            }
        }
    }

    /// Gives `n` bytes back.
    pub fn shrink(&mut self, n: usize) {
        let n = n.min(self.0);
        self.0 -= n;
        HELD.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.0
    }
}

impl Clone for Held {
    fn clone(&self) -> Self {
        HELD.fetch_add(self.0, Ordering::AcqRel);
        Held(self.0)
    }
}

impl PartialEq for Held {
    /// Budget shares do not make trees differ.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.fetch_sub(self.0, Ordering::AcqRel);
    }
}

/// Why a file-tree operation failed, as a shell would say it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// The path names nothing.
    #[error("No such file or directory")]
    NotFound,
    /// A file was expected.
    #[error("Is a directory")]
    IsDir,
    /// A directory was expected.
    #[error("Not a directory")]
    NotDir,
    /// The entry exists already.
    #[error("File exists")]
    Exists,
    /// A directory to remove is not empty.
    #[error("Directory not empty")]
    NotEmpty,
    /// A file, the tree or the path is over its bound.
    #[error("No space left on device")]
    NoSpace,
    /// The path is malformed (too long, a NUL byte).
    #[error("File name too long or invalid")]
    BadPath,
    /// The file's content is not simulated (a large file of an image: only its size is known).
    #[error("Content not simulated")]
    Opaque,
}

/// One entry of a tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// A directory.
    Dir,
    /// A regular file and its content.
    File(Arc<Vec<u8>>),
    /// A regular file of which only the size is kept (too large to simulate).
    Opaque(u64),
}

impl Entry {
    /// The size `ls -l` shows.
    pub fn size(&self) -> u64 {
        match self {
            Entry::Dir => 4096,
            Entry::File(data) => data.len() as u64,
            Entry::Opaque(size) => *size,
        }
    }
}

/// A file tree. Paths are relative, `/`-separated, without `.` or `..` (see [`normalize`]); `""` is the
/// root, which always exists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileTree {
    entries: BTreeMap<String, Entry>,
    bytes: usize,
    held: Held,
}

/// `path` (absolute, or relative to `cwd`, both `/`-separated) as a tree path: `.` and `..` resolved,
/// never above the root.
pub fn normalize(cwd: &str, path: &str) -> Result<String, FsError> {
    if path.len() > MAX_PATH || cwd.len() > MAX_PATH || path.contains('\0') {
        return Err(FsError::BadPath);
    }
    let mut parts: Vec<&str> = Vec::new();
    let start = if path.starts_with('/') { "" } else { cwd };
    for part in start.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The parent of a tree path (`""` for the root's children and the root).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// The last component of a tree path.
pub fn base_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, b)| b)
}

impl FileTree {
    /// An empty tree with the directories of `dirs`.
    pub fn with_dirs(dirs: &[&str]) -> Self {
        let mut t = FileTree::default();
        for d in dirs {
            let _ = t.mkdir(d, true);
        }
        t
    }

    /// The entry at `path`; the root is a directory.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        if path.is_empty() {
            return Some(&Entry::Dir);
        }
        self.entries.get(path)
    }

    /// True when `path` is a directory.
    pub fn is_dir(&self, path: &str) -> bool {
        matches!(self.get(path), Some(Entry::Dir))
    }

    /// The content of the file at `path`.
    pub fn read(&self, path: &str) -> Result<Arc<Vec<u8>>, FsError> {
        match self.get(path) {
            Some(Entry::File(data)) => Ok(data.clone()),
            Some(Entry::Dir) => Err(FsError::IsDir),
            Some(Entry::Opaque(_)) => Err(FsError::Opaque),
            None => Err(FsError::NotFound),
        }
    }

    /// Creates directory `path` (and its parents when `parents`); an existing directory is fine when
    /// `parents`.
    pub fn mkdir(&mut self, path: &str, parents: bool) -> Result<(), FsError> {
        match self.get(path) {
            Some(Entry::Dir) if parents => return Ok(()),
            Some(_) => return Err(FsError::Exists),
            None => {}
        }
        let up = parent(path);
        if !self.is_dir(up) {
            if !parents || self.get(up).is_some() {
                return Err(if self.get(up).is_some() {
                    FsError::NotDir
                } else {
                    FsError::NotFound
                });
            }
            self.mkdir(up, true)?;
        }
        self.insert(path, Entry::Dir)
    }

    /// Writes `data` to the file at `path` (appends when `append`), creating it; its directory must
    /// exist unless `parents`.
    pub fn write(
        &mut self,
        path: &str,
        data: &[u8],
        append: bool,
        parents: bool,
    ) -> Result<(), FsError> {
        if path.is_empty() {
            return Err(FsError::IsDir);
        }
        let up = parent(path);
        if !self.is_dir(up) {
            if !parents {
                return Err(if self.get(up).is_some() {
                    FsError::NotDir
                } else {
                    FsError::NotFound
                });
            }
            self.mkdir(up, true)?;
        }
        let mut content = match (self.get(path), append) {
            (Some(Entry::Dir), _) => return Err(FsError::IsDir),
            (Some(Entry::Opaque(_)), true) => return Err(FsError::Opaque),
            (Some(Entry::File(old)), true) => old.as_ref().clone(),
            _ => Vec::new(),
        };
        if content.len().saturating_add(data.len()) > MAX_FILE_BYTES {
            return Err(FsError::NoSpace);
        }
        content.extend_from_slice(data);
        self.insert(path, Entry::File(Arc::new(content)))
    }

    /// Puts `entry` at `path` (whose parent must be a directory), replacing a file.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), FsError> {
        if path.is_empty() || path.len() > MAX_PATH {
            return Err(FsError::BadPath);
        }
        if !self.is_dir(parent(path)) {
            return Err(FsError::NotFound);
        }
        let old = match self.entries.get(path) {
            Some(Entry::Dir) if entry != Entry::Dir => return Err(FsError::IsDir),
            Some(e) => content_len(e),
            None if self.entries.len() >= MAX_ENTRIES => return Err(FsError::NoSpace),
            None => 0,
        };
        let new = content_len(&entry);
        let bytes = self.bytes - old + new;
        if bytes > MAX_TREE_BYTES {
            return Err(FsError::NoSpace);
        }
        if new > old {
            self.held.grow(new - old)?;
        } else {
            self.held.shrink(old - new);
        }
        self.bytes = bytes;
        self.entries.insert(path.to_string(), entry);
        Ok(())
    }

    /// Removes `path` (a directory only when empty, or with everything under it when `recursive`).
    pub fn remove(&mut self, path: &str, recursive: bool) -> Result<(), FsError> {
        match self.get(path) {
            None => return Err(FsError::NotFound),
            Some(Entry::Dir) if path.is_empty() => return Err(FsError::BadPath),
            Some(Entry::Dir) => {
                let children: Vec<String> = self.under(path).map(|(k, _)| k.clone()).collect();
                if !children.is_empty() && !recursive {
                    return Err(FsError::NotEmpty);
                }
                for k in children {
                    self.drop_entry(&k);
                }
            }
            Some(_) => {}
        }
        self.drop_entry(path);
        Ok(())
    }

    fn drop_entry(&mut self, path: &str) {
        if let Some(e) = self.entries.remove(path) {
            self.bytes -= content_len(&e);
            self.held.shrink(content_len(&e));
        }
    }

    /// Every entry strictly under directory `path`, in path order.
    pub fn under<'a>(
        &'a self,
        path: &str,
    ) -> impl Iterator<Item = (&'a String, &'a Entry)> + use<'a> {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
    }

    /// The names and entries directly in directory `path`, sorted.
    pub fn list(&self, path: &str) -> Result<Vec<(String, Entry)>, FsError> {
        match self.get(path) {
            Some(Entry::Dir) => {}
            Some(_) => return Err(FsError::NotDir),
            None => return Err(FsError::NotFound),
        }
        let skip = if path.is_empty() { 0 } else { path.len() + 1 };
        Ok(self
            .under(path)
            .filter(|(k, _)| !k[skip..].contains('/'))
            .map(|(k, e)| (k[skip..].to_string(), e.clone()))
            .collect())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the tree holds only its root.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Bytes of content an entry counts against [`MAX_TREE_BYTES`].
fn content_len(e: &Entry) -> usize {
    match e {
        Entry::File(d) => d.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_wide_budget_is_shared_and_given_back() {
        let mut a = Held::default();
        a.grow(10).unwrap();
        assert_eq!(a.grow(MAX_HELD_BYTES), Err(FsError::NoSpace));
        assert_eq!(a.bytes(), 10);
        let b = a.clone();
        drop(a);
        assert_eq!(b.bytes(), 10);
    }

    #[test]
    fn paths_never_climb_above_the_root() {
        assert_eq!(
            normalize("root", "../../../etc/passwd"),
            Ok("etc/passwd".into())
        );
        assert_eq!(normalize("a/b", "./c//d/.."), Ok("a/b/c".into()));
        assert_eq!(normalize("x", "/"), Ok(String::new()));
        assert_eq!(normalize("", "a\0b"), Err(FsError::BadPath));
        assert_eq!(normalize("", &"a/".repeat(3000)), Err(FsError::BadPath));
    }

    #[test]
    fn files_need_their_directory_and_respect_the_bounds() {
        let mut t = FileTree::default();
        assert_eq!(
            t.write("etc/hostname", b"x", false, false),
            Err(FsError::NotFound)
        );
        t.write("etc/hostname", b"node-1\n", false, true).unwrap();
        t.write("etc/hostname", b"more\n", true, false).unwrap();
        assert_eq!(
            t.read("etc/hostname").unwrap().as_slice(),
            b"node-1\nmore\n"
        );
        assert_eq!(t.list("etc").unwrap().len(), 1);
        assert_eq!(t.mkdir("etc/hostname/x", true), Err(FsError::NotDir));
        let big = vec![0u8; MAX_FILE_BYTES + 1];
        assert_eq!(t.write("big", &big, false, false), Err(FsError::NoSpace));
        let mut u = FileTree::default();
        let chunk = vec![0u8; MAX_FILE_BYTES];
        for i in 0..(MAX_TREE_BYTES / MAX_FILE_BYTES) {
            u.write(&format!("f{i}"), &chunk, false, false).unwrap();
        }
        assert_eq!(
            u.write("one-more", b"x", false, false),
            Err(FsError::NoSpace)
        );
        assert_eq!(t.remove("etc", false), Err(FsError::NotEmpty));
        t.remove("etc", true).unwrap();
        assert!(t.get("etc/hostname").is_none());
    }
}
