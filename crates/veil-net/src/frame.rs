//! Framing of veil's messages on a QUIC stream (SPEC.md §12.2).
//!
//! A frame is `u8 kind || u32 length (big-endian) || payload`. The reader
//! learns the length first and refuses a frame longer than the cap for its
//! kind before it buffers a byte of the payload, so a peer can make this side
//! allocate no more than the round's largest legitimate message.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{ConnectionError, Error, Result};

/// The length of a frame header.
pub const FRAME_HEADER_LEN: usize = 5;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameKind {
    /// Client to server, first frame of a connection: empty.
    Hello = 1,
    /// Either way: one veil-secagg message (SPEC.md §10), the round's task
    /// included. (Kind 2 is retired: it carried the task before the task
    /// became a §10 message.)
    SecAgg = 3,
}

impl FrameKind {
    fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            1 => Self::Hello,
            3 => Self::SecAgg,
            _ => return None,
        })
    }
}

/// Encodes a frame.
///
/// # Errors
/// [`Error::Frame`] if the payload is longer than `u32::MAX`.
pub fn encode_frame(kind: FrameKind, payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len()).map_err(|_| Error::Frame("payload over 4 GiB"))?;
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN.saturating_add(payload.len()));
    out.push(kind as u8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Parses a frame header against the caps: returns the kind and the
/// payload length.
///
/// # Errors
/// [`Error::Frame`] for an unknown kind, a kind with no cap (not allowed in
/// this direction or state), or a length over the kind's cap.
pub fn parse_header(
    header: [u8; FRAME_HEADER_LEN],
    cap: impl Fn(FrameKind) -> Option<usize>,
) -> Result<(FrameKind, usize)> {
    let [tag, l0, l1, l2, l3] = header;
    let kind = FrameKind::from_tag(tag).ok_or(Error::Frame("unknown frame kind"))?;
    let len = usize::try_from(u32::from_be_bytes([l0, l1, l2, l3]))
        .map_err(|_| Error::Frame("frame length does not fit in memory"))?;
    let cap = cap(kind).ok_or(Error::Frame("frame kind not allowed here"))?;
    if len > cap {
        return Err(Error::Frame("frame longer than its cap"));
    }
    Ok((kind, len))
}

/// Reads one frame. `Ok(None)` is a clean end of the stream between frames.
///
/// # Errors
/// [`Error::Frame`] as [`parse_header`], or for a stream that ends inside a
/// frame; [`Error::Connection`] for a read error.
pub async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    cap: impl Fn(FrameKind) -> Option<usize>,
) -> Result<Option<(FrameKind, Vec<u8>)>> {
    let mut header = [0_u8; FRAME_HEADER_LEN];
    let mut filled = 0;
    while filled < FRAME_HEADER_LEN {
        let rest = header.get_mut(filled..).unwrap_or_default();
        let n = stream.read(rest).await.map_err(ConnectionError::Stream)?;
        if n == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(Error::Frame("stream ended inside a frame header"))
            };
        }
        filled = filled.saturating_add(n);
    }
    let (kind, len) = parse_header(header, cap)?;
    let mut payload = vec![0_u8; len];
    stream.read_exact(&mut payload).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Frame("stream ended inside a frame")
        } else {
            ConnectionError::Stream(e).into()
        }
    })?;
    Ok(Some((kind, payload)))
}
