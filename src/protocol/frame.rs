//! Length-prefixed framing: a 4-byte big-endian size, then the request. The size is
//! checked against the limit before the body buffer is allocated.

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncReadExt};

use super::ProtocolError;

/// Reads one frame's body. Returns `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    frame_bytes_max: usize,
) -> Result<Option<Bytes>, ProtocolError> {
    match read_frame_size(reader, frame_bytes_max).await? {
        Some(size) => read_frame_body(reader, size).await.map(Some),
        None => Ok(None),
    }
}

/// Reads and checks a frame's size prefix, so the caller can reserve memory before the body.
/// Returns `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame_size<R: AsyncRead + Unpin>(
    reader: &mut R,
    frame_bytes_max: usize,
) -> Result<Option<usize>, ProtocolError> {
    let mut size_buf = [0u8; 4];
    let mut filled = 0;
    while filled < size_buf.len() {
        let n = reader.read(&mut size_buf[filled..]).await?;
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        filled += n;
    }
    let size = i32::from_be_bytes(size_buf);
    let size_ok = usize::try_from(size)
        .ok()
        .filter(|&s| s > 0 && s <= frame_bytes_max);
    let Some(size) = size_ok else {
        return Err(ProtocolError::FrameSize {
            size: i64::from(size),
            max: frame_bytes_max,
        });
    };
    Ok(Some(size))
}

/// Reads a body whose size `read_frame_size` checked.
pub async fn read_frame_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    size: usize,
) -> Result<Bytes, ProtocolError> {
    let mut body = super::frame_pool::take(size);
    reader.read_exact(&mut body[..size]).await?;
    Ok(super::frame_pool::freeze(body, size))
}
