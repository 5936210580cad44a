//! One connection's two tasks, shared by the server and client runtimes:
//! a reader that turns the stream into frames (capped before buffering),
//! and a writer that sends queued frames, so that a slow peer never blocks
//! the task that drives the protocol.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use crate::frame::{FrameKind, read_frame};

/// How many frames may wait for a peer's writer. A peer that lets its
/// queue fill is not reading, and is dropped rather than waited for.
pub(crate) const SEND_QUEUE: usize = 16;

/// The caps of frames one side accepts; shared with its reader task and
/// changed as rounds change (a `usize` per kind; 0 with `allowed = false`
/// refuses the kind).
#[derive(Debug, Default)]
pub(crate) struct Caps {
    hello: AtomicUsize,
    secagg: AtomicUsize,
}

/// A cap value that means "kind not allowed".
const REFUSED: usize = usize::MAX;

impl Caps {
    /// Caps with every kind refused.
    #[must_use]
    pub(crate) fn refuse_all() -> Arc<Self> {
        Arc::new(Self {
            hello: AtomicUsize::new(REFUSED),
            secagg: AtomicUsize::new(REFUSED),
        })
    }

    /// Sets the cap of `kind`; `None` refuses it.
    pub(crate) fn set(&self, kind: FrameKind, cap: Option<usize>) {
        let slot = match kind {
            FrameKind::Hello => &self.hello,
            FrameKind::SecAgg => &self.secagg,
        };
        slot.store(cap.unwrap_or(REFUSED), Ordering::Relaxed);
    }

    /// The cap of `kind`, `None` if refused.
    #[must_use]
    pub(crate) fn get(&self, kind: FrameKind) -> Option<usize> {
        let v = match kind {
            FrameKind::Hello => &self.hello,
            FrameKind::SecAgg => &self.secagg,
        }
        .load(Ordering::Relaxed);
        (v != REFUSED).then_some(v)
    }
}

/// What a reader task reports.
#[derive(Debug)]
pub(crate) enum ReadEvent {
    /// A frame.
    Frame(FrameKind, Vec<u8>),
    /// The stream ended or broke; the reason, for the log.
    Closed(String),
}

/// Reads frames from `recv` until it ends or breaks, sending each to `out`
/// tagged with `tag`. A frame over its cap ends the reader with a
/// [`ReadEvent::Closed`] naming the violation.
pub(crate) fn spawn_reader<T: Copy + Send + 'static>(
    mut recv: quinn::RecvStream,
    caps: Arc<Caps>,
    tag: T,
    out: mpsc::Sender<(T, ReadEvent)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match read_frame(&mut recv, |k| caps.get(k)).await {
                Ok(Some((kind, payload))) => {
                    if out
                        .send((tag, ReadEvent::Frame(kind, payload)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => {
                    let _ = out
                        .send((tag, ReadEvent::Closed("stream finished".into())))
                        .await;
                    return;
                }
                Err(e) => {
                    let _ = out.send((tag, ReadEvent::Closed(e.to_string()))).await;
                    return;
                }
            }
        }
    })
}

/// Writes each queued frame to `send`; ends when the queue closes or a
/// write fails.
pub(crate) fn spawn_writer(
    mut send: quinn::SendStream,
    mut queue: mpsc::Receiver<Arc<Vec<u8>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(frame) = queue.recv().await {
            if send.write_all(&frame).await.is_err() {
                return;
            }
        }
        // Finished: wait until the peer has acknowledged every byte (or
        // stopped the stream), so a caller that closes the connection next
        // does not discard a message still in flight. Callers bound this.
        if send.finish().is_ok() {
            let _ = send.stopped().await;
        }
    })
}
