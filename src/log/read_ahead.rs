//! Read-ahead for consumers that read a partition's segment files in order (a consumer
//! catching up from behind the tail cache).
//!
//! Without it each such fetch waits for its own disk read. With it, once a cold read
//! continues where the previous one ended, the next window of the segment is read in the
//! background, so the consumer's next fetch finds its data in memory (or already on its way:
//! it then waits for that read rather than issuing another).
//!
//! Example: a consumer reads [0, 1 MiB) of a segment, then [1 MiB, 2 MiB): the second read
//! continues the first, so [2 MiB, 3 MiB) is read ahead while the response goes out. The
//! third fetch is served from memory, and starts the read of [3 MiB, 4 MiB).
//!
//! One window per partition; a reader that jumps around only records where it stopped.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use event_listener::Event;

use crate::io::dma_file::DmaFile;

/// A partition's read-ahead state. Cheap to clone; clones share it.
#[derive(Clone, Default)]
pub(crate) struct ReadAhead {
    inner: Rc<RefCell<Inner>>,
}

#[derive(Default)]
struct Inner {
    window: Window,
    /// Where the last cold read stopped (the file and position).
    last_end: Option<(Rc<DmaFile>, u64)>,
}

#[derive(Default)]
enum Window {
    #[default]
    Empty,
    /// A read of the file from `start` is under way; `done` fires when it ends.
    Loading {
        file: Rc<DmaFile>,
        start: u64,
        done: Rc<Event>,
    },
    /// The bytes of the file from `start` on.
    Ready {
        file: Rc<DmaFile>,
        start: u64,
        data: Bytes,
    },
}

impl ReadAhead {
    /// The bytes of `file` from `position` on that were read ahead, if any; waits for a
    /// read-ahead under way that covers `position`.
    pub(crate) async fn bytes_at(&self, file: &Rc<DmaFile>, position: u64) -> Option<Bytes> {
        loop {
            let listener = {
                let inner = self.inner.borrow();
                match &inner.window {
                    Window::Ready {
                        file: f,
                        start,
                        data,
                    } if Rc::ptr_eq(f, file)
                        && *start <= position
                        && position < start + data.len() as u64 =>
                    {
                        let from = usize::try_from(position - start).ok()?;
                        return Some(data.slice(from..));
                    }
                    Window::Loading {
                        file: f,
                        start,
                        done,
                    } if Rc::ptr_eq(f, file) && *start <= position => done.listen(),
                    _ => return None,
                }
            };
            listener.await;
        }
    }

    /// Records a cold read of `file` from `start` that stopped at `end`; if it continued
    /// the previous one, starts reading `[end, end + window_bytes)` (not past `file_end`)
    /// in the background.
    pub(crate) fn after_read(
        &self,
        file: &Rc<DmaFile>,
        start: u64,
        end: u64,
        file_end: u64,
        window_bytes: usize,
    ) {
        let sequential = {
            let mut inner = self.inner.borrow_mut();
            let previous = inner.last_end.replace((file.clone(), end));
            previous.is_some_and(|(f, previous_end)| {
                Rc::ptr_eq(&f, file) && start <= previous_end && previous_end <= end
            })
        };
        if !sequential || end >= file_end || self.holds(file, end) {
            return;
        }
        let len = usize::try_from(file_end - end)
            .unwrap_or(usize::MAX)
            .min(window_bytes);
        let done = Rc::new(Event::new());
        self.inner.borrow_mut().window = Window::Loading {
            file: file.clone(),
            start: end,
            done: done.clone(),
        };
        let inner = self.inner.clone();
        let file = file.clone();
        crate::io::spawn_in(crate::io::TaskClass::Fetch, async move {
            // A failed or short read-ahead is only a missed chance: the fetch reads the
            // file itself and reports what goes wrong.
            let data = match file.read_at(end, len).await {
                Ok(data) if data.len() == len => Some(data.into_bytes()),
                _ => None,
            };
            let mut inner = inner.borrow_mut();
            let ours =
                matches!(&inner.window, Window::Loading { done: d, .. } if Rc::ptr_eq(d, &done));
            if ours {
                inner.window = match data {
                    Some(data) => Window::Ready {
                        file,
                        start: end,
                        data,
                    },
                    None => Window::Empty,
                };
            }
            done.notify(usize::MAX);
        })
        .detach();
    }

    /// Whether the window holds (or is loading) `file` at `position` already.
    fn holds(&self, file: &Rc<DmaFile>, position: u64) -> bool {
        match &self.inner.borrow().window {
            Window::Empty => false,
            Window::Loading { file: f, start, .. } => Rc::ptr_eq(f, file) && *start == position,
            Window::Ready {
                file: f,
                start,
                data,
            } => Rc::ptr_eq(f, file) && *start <= position && position < start + data.len() as u64,
        }
    }

    /// Resolves once no read-ahead is under way.
    #[cfg(test)]
    pub(crate) async fn settled(&self) {
        loop {
            let listener = match &self.inner.borrow().window {
                Window::Loading { done, .. } => done.listen(),
                _ => return,
            };
            listener.await;
        }
    }

    /// Forgets the window and the last position (the files may be going away).
    pub(crate) fn clear(&self) {
        *self.inner.borrow_mut() = Inner::default();
    }
}
