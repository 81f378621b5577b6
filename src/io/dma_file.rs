//! O_DIRECT files driven by io_uring, with aligned buffers.
//!
//! This is the only place the storage layer touches glommio's file API. It exposes exactly
//! what the partition log needs: open/create, aligned buffers, positional reads and writes,
//! `fdatasync`, preallocation, truncation, and a few directory helpers.
//!
//! # The polled-I/O probe
//! glommio decides once per device (per executor thread) whether the device supports polled
//! I/O by reading the first block of the first O_DIRECT file opened on it. If that file is
//! empty, the kernel short-circuits the read, the probe wrongly concludes "pollable", and every
//! later DMA read on that device fails with `EOPNOTSUPP`. [`prepare_dir`] defeats this: before
//! the first DMA open on a directory's device it writes a one-block, non-empty sentinel file
//! with ordinary buffered I/O and opens *that* with O_DIRECT, so the probe reads real data.
//! Every DMA open in this module goes through [`prepare_dir`] first.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ThreadId;

use bytes::Bytes;

use crate::constants::DMA_ALIGNMENT;

/// Name of the sentinel file used to prime glommio's polled-I/O probe.
const PROBE_FILE_NAME: &str = ".dma-probe";

thread_local! {
    /// Devices (st_dev) whose probe has already been primed on this executor thread.
    /// glommio caches the probe result per thread, so this is per thread too.
    static PROBED_DEVICES: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
}

/// Makes sure glommio's polled-I/O probe for the device holding `dir` ran against a
/// non-empty file. Creates `dir` if needed. Cheap after the first call per device and thread.
pub async fn prepare_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let dev = std::fs::metadata(dir)?.dev();
    if PROBED_DEVICES.with(|set| set.borrow().contains(&dev)) {
        return Ok(());
    }
    // One name per thread: shards priming the same directory at once must not remove
    // each other's sentinel.
    let thread_id = format!("{:?}", std::thread::current().id());
    let thread_id: String = thread_id.chars().filter(char::is_ascii_digit).collect();
    let probe_path = dir.join(format!(
        "{PROBE_FILE_NAME}-{}-{thread_id}",
        std::process::id()
    ));
    // Buffered write: the probe must not be the first DMA open itself.
    std::fs::write(&probe_path, vec![0x5a_u8; DMA_ALIGNMENT])?;
    let file = glommio::io::DmaFile::open(&probe_path).await?;
    let read = file.read_at_aligned(0, DMA_ALIGNMENT).await;
    let closed = file.close().await;
    std::fs::remove_file(&probe_path)?;
    let read = read?;
    closed?;
    if read.len() != DMA_ALIGNMENT {
        return Err(io::Error::other(format!(
            "dma probe read {} bytes, expected {DMA_ALIGNMENT}",
            read.len()
        )));
    }
    PROBED_DEVICES.with(|set| set.borrow_mut().insert(dev));
    Ok(())
}

/// A buffer aligned for O_DIRECT, sized in whole blocks by the caller.
pub struct AlignedBuf {
    inner: glommio::io::DmaBuffer,
}

impl AlignedBuf {
    pub fn as_bytes(&self) -> &[u8] {
        self.inner.as_bytes()
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.inner.as_bytes_mut()
    }

    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// Bytes read from a DMA file (owned by io_uring's buffer until dropped).
pub struct ReadBuf {
    inner: glommio::io::ReadResult,
}

impl Deref for ReadBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.inner
    }
}

impl ReadBuf {
    /// The read bytes as `Bytes`, without copying them: the DMA buffer lives until the last
    /// `Bytes` (and slice of it) is dropped. Cold fetches hand these straight to the response,
    /// where a copy cost about a quarter of the broker's CPU during a catch-up.
    ///
    /// Drop the `Bytes` on the thread that read them (the shard's, as the fetch path does): a
    /// buffer whose last reference goes away on another thread is leaked, not freed.
    pub fn into_bytes(self) -> Bytes {
        if self.inner.is_empty() {
            return Bytes::new();
        }
        Bytes::from_owner(ThreadBoundRead {
            inner: ManuallyDrop::new(self.inner),
            thread: this_thread(),
        })
    }
}

thread_local! {
    /// This thread's id, cached: `std::thread::current` may not be usable while the thread's
    /// locals are being destroyed, and then `try_with` answers instead.
    static THIS_THREAD: ThreadId = std::thread::current().id();
}

fn this_thread() -> Option<ThreadId> {
    THIS_THREAD.try_with(|id| *id).ok()
}

/// A glommio read result owned by a `Bytes` ([`ReadBuf::into_bytes`]).
struct ThreadBoundRead {
    inner: ManuallyDrop<glommio::io::ReadResult>,
    /// The thread that read it: the only one where it may be dropped.
    thread: Option<ThreadId>,
}

// SAFETY: `ReadResult` is not `Send` only because it holds `Rc`s (to its io_uring source,
// which owns the buffer, and to the file's read scheduler), whose counts are not atomic. The
// bytes themselves are heap memory that nothing writes once the read has completed (the
// result exists only then), and they stay allocated while this owner lives, so reading them
// from any thread is sound; `Bytes` reads them through the pointer it took at creation and
// calls nothing on the owner but `Drop`. The `Rc`s are touched only in `Drop`, which releases
// them only on the thread that created this owner, the one where every other clone of those
// `Rc`s lives; on any other thread (or with the thread unknown) it leaks them instead.
#[allow(
    unsafe_code,
    reason = "a read buffer shared as Bytes without a copy must be declared Send"
)]
unsafe impl Send for ThreadBoundRead {}

impl AsRef<[u8]> for ThreadBoundRead {
    fn as_ref(&self) -> &[u8] {
        &self.inner
    }
}

/// Read buffers leaked because their last `Bytes` was dropped off the reading thread.
static LEAKED_READ_BUFFERS: AtomicU64 = AtomicU64::new(0);

/// How many read buffers were leaked ([`ReadBuf::into_bytes`]): always 0 unless some code
/// path moves log reads to another thread, which is a bug to find, not a cost to pay.
pub fn leaked_read_buffers() -> u64 {
    LEAKED_READ_BUFFERS.load(Ordering::Relaxed)
}

impl Drop for ThreadBoundRead {
    fn drop(&mut self) {
        if self.thread.is_some() && this_thread() == self.thread {
            #[allow(unsafe_code, reason = "ManuallyDrop::drop is unsafe")]
            // SAFETY: `inner` is dropped once, here, and never used after.
            unsafe {
                ManuallyDrop::drop(&mut self.inner)
            }
        } else if LEAKED_READ_BUFFERS.fetch_add(1, Ordering::Relaxed) == 0 {
            // Said once: a leak that grows silently would look like a slow memory problem.
            tracing::error!(
                bytes = self.inner.len(),
                "a read buffer was dropped off the thread that read it and is leaked; \
                 log reads must stay on their shard"
            );
        }
    }
}

/// An O_DIRECT file. One owner shard; not `Send`.
pub struct DmaFile {
    inner: glommio::io::DmaFile,
    path: PathBuf,
}

impl DmaFile {
    /// Opens `path` for reading and writing with O_DIRECT, creating it if `create` is true.
    pub async fn open_rw(path: &Path, create: bool) -> io::Result<DmaFile> {
        prepare_parent(path).await?;
        let inner = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(path)
            .await?;
        Ok(DmaFile {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing file read-only with O_DIRECT.
    pub async fn open_read(path: &Path) -> io::Result<DmaFile> {
        prepare_parent(path).await?;
        let inner = glommio::io::DmaFile::open(path).await?;
        Ok(DmaFile {
            inner,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `to` (atomically replacing what was there) and keeps this
    /// handle, now under its new name. Make it durable with [`sync_dir`].
    pub fn rename_to(&mut self, to: &Path) -> io::Result<()> {
        rename(&self.path, to)?;
        self.path = to.to_path_buf();
        Ok(())
    }

    /// O_DIRECT alignment of this file's device (positions and lengths of writes).
    pub fn alignment(&self) -> u64 {
        self.inner.alignment()
    }

    /// Allocates a zeroed aligned buffer of `size` bytes (`size` must be a multiple of
    /// `alignment()` for writes).
    pub fn alloc(&self, size: usize) -> AlignedBuf {
        let mut inner = self.inner.alloc_dma_buffer(size);
        inner.as_bytes_mut().fill(0);
        AlignedBuf { inner }
    }

    /// Allocates an aligned buffer of `size` bytes whose start `fill` writes; `fill` returns
    /// how many bytes it wrote and the rest is zeroed. Unlike [`DmaFile::alloc`] it does not
    /// zero what is about to be overwritten (a whole write buffer, per write).
    pub fn alloc_filled(&self, size: usize, fill: impl FnOnce(&mut [u8]) -> usize) -> AlignedBuf {
        let mut inner = self.inner.alloc_dma_buffer(size);
        let bytes = inner.as_bytes_mut();
        let filled = fill(bytes).min(size);
        bytes[filled..].fill(0);
        AlignedBuf { inner }
    }

    /// Writes all of `buf` at `pos` (both aligned). Returns bytes written.
    pub async fn write_at(&self, buf: AlignedBuf, pos: u64) -> io::Result<usize> {
        let len = buf.len();
        faults::before_write(&self.path, pos, len)?;
        let written = self.inner.write_at(buf.inner, pos).await?;
        if written != len {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short O_DIRECT write: {written} of {len} bytes"),
            ));
        }
        Ok(written)
    }

    /// Reads up to `len` bytes at `pos` (any alignment); fewer at end of file.
    pub async fn read_at(&self, pos: u64, len: usize) -> io::Result<ReadBuf> {
        let inner = self.inner.read_at(pos, len).await?;
        Ok(ReadBuf { inner })
    }

    pub async fn fdatasync(&self) -> io::Result<()> {
        faults::before_sync(&self.path).await;
        self.inner.fdatasync().await?;
        faults::after_sync(&self.path);
        Ok(())
    }

    /// fallocate: reserves `[0, size)`; the file size becomes `size` (unwritten space reads
    /// as zeros).
    pub async fn pre_allocate(&self, size: u64) -> io::Result<()> {
        Ok(self.inner.pre_allocate(size, false).await?)
    }

    pub async fn truncate(&self, size: u64) -> io::Result<()> {
        Ok(self.inner.truncate(size).await?)
    }

    pub async fn size(&self) -> io::Result<u64> {
        Ok(self.inner.file_size().await?)
    }

    pub async fn close(self) -> io::Result<()> {
        Ok(self.inner.close().await?)
    }
}

async fn prepare_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => prepare_dir(dir).await,
        _ => prepare_dir(Path::new(".")).await,
    }
}

/// Reads a whole (small) file with O_DIRECT. `Ok(None)` if it does not exist.
pub async fn read_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match DmaFile::open_read(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = file.size().await?;
    let size = usize::try_from(size).map_err(io::Error::other)?;
    let data = file.read_at(0, size).await?.to_vec();
    file.close().await?;
    Ok(Some(data))
}

/// Writes `data` as the whole content of `path` with O_DIRECT and fdatasyncs it. Not atomic:
/// callers guard content with a checksum, or write a temporary name and [`rename`] it.
pub async fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let file = DmaFile::open_rw(path, true).await?;
    let align = file.alignment() as usize;
    let padded = data.len().div_ceil(align).max(1) * align;
    let mut buf = file.alloc(padded);
    buf.as_bytes_mut()[..data.len()].copy_from_slice(data);
    let result = async {
        file.write_at(buf, 0).await?;
        file.truncate(data.len() as u64).await?;
        file.fdatasync().await
    }
    .await;
    let closed = file.close().await;
    result?;
    closed
}

/// Writes `data` to `path` atomically: temporary file, fdatasync, rename, fsync the
/// directory, so a crash leaves either the old content or the new, whole. Every step runs on
/// the runtime (io_uring, or glommio's blocking-syscall thread for the rename), never as a
/// blocking call on the shard's thread: this is the one helper for small state files.
pub async fn write_file_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    write_file(&tmp, data).await?;
    glommio::io::rename(&tmp, path).await?;
    sync_parent(path).await
}

/// Removes `path` (a missing file is not an error) and fsyncs its directory, so the removal
/// survives a crash. Like [`write_file_atomic`], nothing blocks the shard's thread.
pub async fn remove_file_durably(path: &Path) -> io::Result<()> {
    if let Err(e) = glommio::io::remove(path).await {
        let e = io::Error::from(e);
        if e.kind() != io::ErrorKind::NotFound {
            return Err(e);
        }
    }
    sync_parent(path).await
}

/// fsyncs a directory so that creations, renames and removals in it are durable.
pub async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = glommio::io::Directory::open(dir).await?;
    let synced = dir.sync().await;
    dir.close().await?;
    Ok(synced?)
}

async fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir).await,
        _ => sync_dir(Path::new(".")).await,
    }
}

/// Removes a file; a missing file is not an error.
pub fn remove_file(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes a directory tree; a missing directory is not an error.
pub fn remove_dir_all(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}

/// File names (not paths) in `dir`.
pub fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Fault injection for crash tests: simulated power loss (dropping what was written but not
/// yet fdatasynced) and failing writes. Off unless a test enables it on its executor thread;
/// when off, each write and fsync costs one thread-local check.
///
/// Model: every O_DIRECT write made while enabled saves the bytes it overwrites (a pre-image,
/// read back with buffered I/O); a successful `fdatasync` of the file discards its saved
/// pre-images; [`faults::lose_unsynced`] writes the pre-images back, newest first, so each
/// file holds exactly what its last fdatasync covered (bytes past the old end read as zeros,
/// as preallocated space does). Directory operations (create, rename, remove) are not
/// modelled.
#[doc(hidden)]
pub mod faults {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::io;
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};

    #[derive(Default)]
    struct Faults {
        /// Per file: (position, bytes before the write, write length), oldest first.
        unsynced: HashMap<PathBuf, Vec<(u64, Vec<u8>, usize)>>,
        /// Writes that may still succeed before every later one fails.
        writes_left: Option<u64>,
        /// The errno of injected write failures.
        write_errno: i32,
        /// While set, fdatasyncs wait for it (see [`hold_syncs`]): all of them, or those of
        /// files under the path (see [`hold_syncs_under`]).
        sync_hold: Option<(Option<PathBuf>, event_listener::Event)>,
    }

    thread_local! {
        static FAULTS: RefCell<Option<Faults>> = const { RefCell::new(None) };
    }

    /// Starts tracking unsynced writes on this thread (forgetting any earlier state).
    pub fn enable() {
        FAULTS.with(|f| *f.borrow_mut() = Some(Faults::default()));
    }

    /// Stops tracking and failing on this thread.
    pub fn disable() {
        FAULTS.with(|f| *f.borrow_mut() = None);
    }

    /// After `writes` more successful writes, every write fails with `errno` (e.g.
    /// `libc::EIO`, `libc::ENOSPC`) without touching the file. Needs [`enable`].
    pub fn fail_writes_after(writes: u64, errno: i32) {
        FAULTS.with(|f| {
            if let Some(faults) = f.borrow_mut().as_mut() {
                faults.writes_left = Some(writes);
                faults.write_errno = errno;
            }
        });
    }

    /// Makes every later fdatasync on this thread wait until [`release_syncs`]: a test can
    /// then order what happens during a sync deterministically. Needs [`enable`].
    pub fn hold_syncs() {
        hold(None);
    }

    /// Like [`hold_syncs`], for the fdatasyncs of files under `dir` only: a test can hold one
    /// partition's while others' go ahead. Needs [`enable`].
    pub fn hold_syncs_under(dir: &Path) {
        hold(Some(dir.to_path_buf()));
    }

    fn hold(under: Option<PathBuf>) {
        FAULTS.with(|f| {
            if let Some(faults) = f.borrow_mut().as_mut() {
                faults
                    .sync_hold
                    .get_or_insert_with(|| (under, event_listener::Event::new()));
            }
        });
    }

    /// Lets the fdatasyncs held by [`hold_syncs`] (and all later ones) go ahead.
    pub fn release_syncs() {
        let hold = FAULTS.with(|f| f.borrow_mut().as_mut().and_then(|f| f.sync_hold.take()));
        if let Some((_, hold)) = hold {
            hold.notify(usize::MAX);
        }
    }

    pub(super) async fn before_sync(path: &Path) {
        loop {
            let listener = FAULTS.with(|f| {
                let f = f.borrow();
                let (under, hold) = f.as_ref()?.sync_hold.as_ref()?;
                let held = under.as_ref().is_none_or(|dir| path.starts_with(dir));
                held.then(|| hold.listen())
            });
            match listener {
                Some(listener) => listener.await,
                None => return,
            }
        }
    }

    /// Simulated power loss: restores every file to its content at its last fdatasync.
    /// Call once the executor that wrote is gone. Returns the number of writes undone.
    pub fn lose_unsynced() -> io::Result<usize> {
        let unsynced = FAULTS.with(|f| {
            f.borrow_mut()
                .as_mut()
                .map(|faults| std::mem::take(&mut faults.unsynced))
                .unwrap_or_default()
        });
        let mut undone = 0;
        for (path, writes) in unsynced {
            let file = match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(file) => file,
                // Removed since (a deleted segment): nothing to restore.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for (pos, old, len) in writes.into_iter().rev() {
                let mut image = old;
                image.resize(len, 0);
                file.write_all_at(&image, pos)?;
                undone += 1;
            }
            file.sync_all()?;
        }
        Ok(undone)
    }

    pub(super) fn before_write(path: &Path, pos: u64, len: usize) -> io::Result<()> {
        FAULTS.with(|f| {
            let mut f = f.borrow_mut();
            let Some(faults) = f.as_mut() else {
                return Ok(());
            };
            if let Some(left) = faults.writes_left.as_mut() {
                if *left == 0 {
                    return Err(io::Error::from_raw_os_error(faults.write_errno));
                }
                *left -= 1;
            }
            let old = match std::fs::File::open(path) {
                Ok(file) => {
                    let size = file.metadata()?.len();
                    let keep = size.saturating_sub(pos).min(len as u64) as usize;
                    let mut old = vec![0u8; keep];
                    file.read_exact_at(&mut old, pos)?;
                    old
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            faults
                .unsynced
                .entry(path.to_path_buf())
                .or_default()
                .push((pos, old, len));
            Ok(())
        })
    }

    pub(super) fn after_sync(path: &Path) {
        FAULTS.with(|f| {
            if let Some(faults) = f.borrow_mut().as_mut() {
                faults.unsynced.remove(path);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_dir(name: &str) -> PathBuf {
        let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-data");
        std::fs::create_dir_all(&base).expect("create test-data");
        tempfile::Builder::new()
            .prefix(name)
            .tempdir_in(base)
            .expect("tempdir")
            .keep()
    }

    /// The probe case: the very first DMA file opened on this thread is an empty file in a
    /// fresh directory, and reads must still work afterwards.
    #[test]
    fn fresh_empty_dir_dma_reads_work() {
        let dir = test_dir("dma-probe");
        let work = dir.clone();
        crate::io::block_on_local(async move {
            let dir = work;
            let path = dir.join("empty.log");
            let file = DmaFile::open_rw(&path, true).await.expect("create");
            assert_eq!(file.size().await.expect("size"), 0);
            let empty = file.read_at(0, 4096).await.expect("read of empty file");
            assert_eq!(empty.len(), 0);
            let mut buf = file.alloc(8192);
            buf.as_bytes_mut()[..5].copy_from_slice(b"hello");
            buf.as_bytes_mut()[4096..4101].copy_from_slice(b"world");
            file.write_at(buf, 0).await.expect("write");
            let read = file.read_at(4096, 5).await.expect("read");
            assert_eq!(&read[..], b"world");
            let read = file.read_at(1, 4).await.expect("unaligned read");
            assert_eq!(&read[..], b"ello");
            file.close().await.expect("close");
            write_file_atomic(&dir.join("meta"), b"abc")
                .await
                .expect("atomic");
            assert_eq!(
                read_file(&dir.join("meta")).await.expect("read"),
                Some(b"abc".to_vec())
            );
        });
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    /// Reads handed out as `Bytes` keep their buffer after the file is closed, slice like
    /// any `Bytes`, and may be dropped on another thread (the buffer is then leaked).
    #[test]
    fn read_bytes_outlive_the_file_and_other_threads() {
        let dir = test_dir("dma-bytes");
        let work = dir.clone();
        crate::io::block_on_local(async move {
            let path = work.join("data.log");
            let file = DmaFile::open_rw(&path, true).await.expect("create");
            let mut buf = file.alloc(8192);
            for (i, byte) in buf.as_bytes_mut().iter_mut().enumerate() {
                *byte = (i % 251) as u8;
            }
            file.write_at(buf, 0).await.expect("write");
            let whole = file.read_at(0, 8192).await.expect("read").into_bytes();
            let unaligned = file.read_at(100, 5000).await.expect("read").into_bytes();
            let empty = file.read_at(8192, 4096).await.expect("read").into_bytes();
            file.close().await.expect("close");
            assert!(empty.is_empty());
            assert_eq!(whole.len(), 8192);
            let expected: Vec<u8> = (100..5100).map(|i| (i % 251) as u8).collect();
            assert_eq!(&unaligned[..], &expected[..]);
            let slice = whole.slice(4096..4100);
            drop(whole);
            assert_eq!(&slice[..], &[80, 81, 82, 83], "bytes 4096.. of the pattern");
            let elsewhere = unaligned.clone();
            let seen = std::thread::spawn(move || elsewhere.len())
                .join()
                .expect("other thread");
            assert_eq!(seen, 5000);
            // The last reference dropped on another thread: leaked, not freed there, and counted.
            let leaked_before = leaked_read_buffers();
            std::thread::spawn(move || drop(unaligned))
                .join()
                .expect("other thread");
            assert_eq!(leaked_read_buffers(), leaked_before + 1);
        });
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
