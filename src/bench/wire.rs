//! A pipelined Kafka connection on the current shard's executor: the writer half sends
//! requests without waiting, the reader half reads answers in order. Callers keep their own
//! FIFO of what is in flight and match correlation ids. With `--security-protocol SSL` the
//! connection is TLS (futures-rustls over the glommio socket, as the broker's listeners).

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::io::{BufReader, ReadHalf, WriteHalf};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::error::BenchError;
use crate::io::net::TcpStream;

/// Largest response frame accepted (fetches are asked for far less).
const RESPONSE_BYTES_MAX: usize = 256 << 20;
const READ_BUFFER_BYTES: usize = 64 << 10;

/// A bench connection's byte stream: plain TCP or TLS over it.
enum WireStream {
    Plain(TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for WireStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WireStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            WireStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WireStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WireStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            WireStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WireStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            WireStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WireStream::Plain(s) => Pin::new(s).poll_flush(cx),
            WireStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WireStream::Plain(s) => Pin::new(s).poll_close(cx),
            WireStream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

pub struct WireWriter {
    writer: WriteHalf<WireStream>,
    addr: String,
    client_id: StrBytes,
    correlation_id_next: i32,
    buf: BytesMut,
}

pub struct WireReader {
    reader: BufReader<ReadHalf<WireStream>>,
    addr: String,
    /// The last frame's buffer, reused once the caller has dropped every view of it.
    frames: BytesMut,
}

/// Opens a connection to `addr` with Nagle off, TLS over it when `tls` is given (the server
/// name checked is `addr`'s host).
pub async fn connect(
    addr: &str,
    client_id: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(WireWriter, WireReader), BenchError> {
    let connect_error = |source| BenchError::Connect {
        addr: addr.to_owned(),
        source,
    };
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| connect_error(std::io::Error::other(e.to_string())))?;
    stream
        .set_nodelay(true)
        .map_err(|e| connect_error(std::io::Error::other(e.to_string())))?;
    let stream = match tls {
        None => WireStream::Plain(stream),
        Some(config) => {
            let name = crate::client::tls_server_name(addr).ok_or_else(|| {
                connect_error(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "no TLS server name in the address",
                ))
            })?;
            let tls = futures_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name, stream)
                .await
                .map_err(connect_error)?;
            WireStream::Tls(Box::new(tls))
        }
    };
    let (reader, writer) = futures_lite::io::split(stream);
    Ok((
        WireWriter {
            writer,
            addr: addr.to_owned(),
            client_id: StrBytes::from_string(client_id.to_owned()),
            correlation_id_next: 1,
            buf: BytesMut::new(),
        },
        WireReader {
            reader: BufReader::with_capacity(READ_BUFFER_BYTES, reader),
            addr: addr.to_owned(),
            frames: BytesMut::new(),
        },
    ))
}

impl WireWriter {
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Encodes and writes one request; returns its correlation id.
    pub async fn send<T: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &T,
    ) -> Result<i32, BenchError> {
        let correlation_id = self.correlation_id_next;
        self.correlation_id_next = self.correlation_id_next.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let header_version = api_key.request_header_version(version);
        let size = header.compute_size(header_version).map_err(encode_error)?
            + body.compute_size(version).map_err(encode_error)?;
        let size_prefix = i32::try_from(size).map_err(|_| BenchError::Encode {
            what: "request",
            reason: format!("{size} bytes exceed the frame limit"),
        })?;
        self.buf.clear();
        self.buf.reserve(4 + size);
        self.buf.put_i32(size_prefix);
        header
            .encode(&mut self.buf, header_version)
            .map_err(encode_error)?;
        body.encode(&mut self.buf, version).map_err(encode_error)?;
        // TLS holds written bytes until flushed; plain TCP's flush does nothing.
        let written = match self.writer.write_all(&self.buf).await {
            Ok(()) => self.writer.flush().await,
            Err(e) => Err(e),
        };
        written.map_err(|source| BenchError::Io {
            addr: self.addr.clone(),
            source,
        })?;
        Ok(correlation_id)
    }

    pub async fn close(&mut self) {
        let _ = self.writer.close().await; // best effort: the run is over
    }
}

impl WireReader {
    /// Reads the next response frame, checks its correlation id and decodes it as `T`.
    pub async fn recv<T: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    ) -> Result<T, BenchError> {
        let mut frame = self.read_frame().await?;
        let decode_error = |what, reason: String| BenchError::Decode {
            addr: self.addr.clone(),
            what,
            reason,
        };
        let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))
            .map_err(|e| decode_error("response header", e.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(BenchError::Correlation {
                addr: self.addr.clone(),
                expected: correlation_id,
                got: header.correlation_id,
            });
        }
        T::decode(&mut frame, version).map_err(|e| decode_error("response body", e.to_string()))
    }

    async fn read_frame(&mut self) -> Result<Bytes, BenchError> {
        let io_error = |source| BenchError::Io {
            addr: self.addr.clone(),
            source,
        };
        let mut size_buf = [0u8; 4];
        self.reader
            .read_exact(&mut size_buf)
            .await
            .map_err(io_error)?;
        let size = i32::from_be_bytes(size_buf);
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s > 0 && s <= RESPONSE_BYTES_MAX)
            .ok_or_else(|| BenchError::FrameSize {
                addr: self.addr.clone(),
                size: i64::from(size),
                max: RESPONSE_BYTES_MAX,
            })?;
        // A fresh buffer per frame made a catch-up consumer's 32 MiB fetch answers cost the
        // client a page fault per 4 KiB (the allocator returns blocks that large to the
        // kernel on free): ~40 % of its time. `reserve` takes the previous frame's buffer
        // back when no part of it is referenced any more, as after a fetch loop iteration.
        self.frames.clear();
        self.frames.reserve(size);
        self.frames.resize(size, 0);
        self.reader
            .read_exact(&mut self.frames)
            .await
            .map_err(io_error)?;
        Ok(self.frames.split().freeze())
    }
}

fn encode_error(e: impl std::fmt::Display) -> BenchError {
    BenchError::Encode {
        what: "request",
        reason: e.to_string(),
    }
}
