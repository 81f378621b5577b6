//! Partition replication between nodes (issue 17, sixth slice part 2): the Raft messages of
//! the partitions a shard hosts go to the same shard index on the other replica nodes.
//!
//! One connection per (peer node, shard), opened by the sending shard to the peer's cluster
//! port: its first frame is the cluster RPC handshake [`RpcRequest::ReplicaStream`], after
//! which the peer's control plane hands the socket to its shard of that index (fd handoff,
//! see `cluster::rpc_server::hand_over`), which reads it on its own executor. A connection
//! carries one direction; each side opens its own, so neither waits for the other.
//!
//! Sending never blocks the replica: [`ReplicaTransport::send`] queues, and the peer's
//! writer task takes everything queued since its last write as one frame (many groups'
//! messages, appends and heartbeats alike) and writes it while the next batch queues
//! (pipelined). A peer that cannot be reached has its queue dropped (Raft retries:
//! heartbeats, append probes) and is reconnected with a doubling backoff.
//!
//! Frame: `u32` big-endian body length, then per message: topic length (`u16`), topic,
//! partition (`i32`), message length (`u32`), the raft-rs `Message` (protobuf). Lengths are
//! checked against [`REPLICA_FRAME_BYTES_MAX`] before anything is allocated.
//!
//! A snapshot's data (a follower copying the batches it lacks from the leader's partition
//! log) goes over a connection of its own ([`StreamPurpose::LogReads`]), request and
//! answer on the same socket, so a large copy never delays Raft messages: the request is
//! topic length (`u16`), topic, partition (`i32`), offset (`i64`), byte budget (`u32`); the
//! answer is a status byte (0: batches follow; 1: an error message follows) and its payload.
//! Offset -1 ([`STATE_READ`]) asks for the partition's attached state (share-group delivery
//! state) instead: the payload is its changes, each a `u32` length and the bytes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use protobuf::Message as _;

use super::Shard;
use crate::cluster::cluster_rpc::{encode_frame, RpcRequest};
use crate::cluster::{ControlPlane, NodeId, StreamPurpose};
use crate::constants::{
    REPLICA_FRAME_BYTES_MAX, REPLICA_RECONNECT_BACKOFF_MAX_MS, REPLICA_RECONNECT_BACKOFF_MIN_MS,
};
use crate::io::net::TcpStream;
use crate::replica::{GroupKey, LogRead, RaftMessage, ReplicaTransport, StateRead};

/// The offset of a read request that asks for the attached state, not batches.
const STATE_READ: i64 = -1;

/// How long a connect to a peer's cluster port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Messages queued for one peer node, and its writer.
struct PeerLink {
    queue: RefCell<Vec<(GroupKey, RaftMessage)>>,
    ready: event_listener::Event,
}

/// A shard's replication transport: a link per peer node, created on first use.
pub struct ReplicaNet {
    node_id: NodeId,
    shard: usize,
    plane: ControlPlane,
    links: RefCell<HashMap<NodeId, Rc<PeerLink>>>,
    /// The links' writers; dropped with the transport.
    writers: RefCell<Vec<crate::io::Task<()>>>,
}

impl ReplicaNet {
    pub fn new(node_id: NodeId, shard: usize, plane: ControlPlane) -> ReplicaNet {
        ReplicaNet {
            node_id,
            shard,
            plane,
            links: RefCell::new(HashMap::new()),
            writers: RefCell::new(Vec::new()),
        }
    }

    fn link(&self, peer: NodeId) -> Rc<PeerLink> {
        if let Some(link) = self.links.borrow().get(&peer) {
            return Rc::clone(link);
        }
        let link = Rc::new(PeerLink {
            queue: RefCell::new(Vec::new()),
            ready: event_listener::Event::new(),
        });
        self.links.borrow_mut().insert(peer, Rc::clone(&link));
        let writer = Writer {
            link: Rc::clone(&link),
            plane: self.plane.clone(),
            peer,
            from: self.node_id,
            shard: self.shard,
        };
        self.writers
            .borrow_mut()
            .push(crate::io::spawn(writer.run()));
        link
    }
}

impl ReplicaTransport for ReplicaNet {
    fn send(&self, group: &GroupKey, messages: Vec<RaftMessage>) {
        for message in messages {
            if message.to == self.node_id {
                continue;
            }
            let link = self.link(message.to);
            link.queue.borrow_mut().push((group.clone(), message));
            link.ready.notify(1);
        }
    }

    fn read_state(&self, group: &GroupKey, from: u64) -> StateRead {
        let read = self.read_log(group, from, STATE_READ, 0);
        Box::pin(async move { decode_changes(&read.await?) })
    }

    fn read_log(&self, group: &GroupKey, from: u64, offset: i64, max_bytes: usize) -> LogRead {
        let plane = self.plane.clone();
        let (me, shard) = (self.node_id, self.shard);
        let request = encode_read_request(group, offset, max_bytes);
        Box::pin(async move {
            let request = request?;
            let mut stream = connect(&plane, from, me, shard, StreamPurpose::LogReads)
                .await
                .map_err(|e| format!("connecting to node {from}: {e}"))?;
            stream
                .write_all(&request)
                .await
                .map_err(|e| format!("asking node {from}: {e}"))?;
            let body = read_frame(&mut stream)
                .await
                .map_err(|e| format!("reading node {from}'s answer: {e}"))?;
            match body.split_first() {
                Some((0, _)) => Ok(Bytes::from(body).slice(1..)),
                Some((_, reason)) => {
                    Err(format!("node {from}: {}", String::from_utf8_lossy(reason)))
                }
                None => Err(format!("node {from} answered nothing")),
            }
        })
    }
}

/// Opens a replication connection of `purpose` from shard `shard` of node `from` to the same
/// shard of node `peer`.
async fn connect(
    plane: &ControlPlane,
    peer: NodeId,
    from: NodeId,
    shard: usize,
    purpose: StreamPurpose,
) -> std::io::Result<TcpStream> {
    let addr = plane
        .peer_addr(peer)
        .ok_or_else(|| std::io::Error::other(format!("no address for node {peer}")))?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&addr)?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{addr} resolves to nothing")))?;
    let mut stream = TcpStream::connect_timeout(addr, CONNECT_TIMEOUT)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    stream
        .set_nodelay(true)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let handshake = encode_frame(&RpcRequest::ReplicaStream {
        from,
        shard,
        purpose,
    })?;
    stream.write_all(&handshake).await?;
    Ok(stream)
}

/// One length-prefixed frame's body, its length checked before allocating.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    // Checked before allocating: whoever connected chose this number.
    if len > REPLICA_FRAME_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "replication frame of {len} bytes"
        )));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// The length prefix of a frame whose body is `len` bytes.
fn frame_head(len: usize) -> [u8; 4] {
    // Every caller bounds `len` by REPLICA_FRAME_BYTES_MAX (below u32::MAX).
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

/// The largest byte budget a read may ask for: the answer (status byte, batches) must fit a
/// frame even when the first batch alone exceeds the budget (up to one Raft message).
fn read_budget(max_bytes: usize) -> usize {
    max_bytes.min(REPLICA_FRAME_BYTES_MAX / 2)
}

fn encode_read_request(group: &GroupKey, offset: i64, max_bytes: usize) -> Result<Vec<u8>, String> {
    let topic = group.topic.as_bytes();
    let topic_len = u16::try_from(topic.len()).map_err(|_| "topic name too long".to_owned())?;
    let budget = u32::try_from(read_budget(max_bytes)).unwrap_or(u32::MAX);
    let mut body = Vec::with_capacity(2 + topic.len() + 16);
    body.extend_from_slice(&topic_len.to_be_bytes());
    body.extend_from_slice(topic);
    body.extend_from_slice(&group.partition.to_be_bytes());
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&budget.to_be_bytes());
    let mut frame = frame_head(body.len()).to_vec();
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// A read request: topic, partition, offset, byte budget.
fn decode_read_request(body: &[u8]) -> Result<(String, i32, i64, usize), String> {
    let field = |range: std::ops::Range<usize>| {
        body.get(range)
            .ok_or_else(|| "truncated read request".to_owned())
    };
    let topic_len = usize::from(u16::from_be_bytes(
        field(0..2)?.try_into().map_err(|_| "bad length")?,
    ));
    let topic = std::str::from_utf8(field(2..2 + topic_len)?)
        .map_err(|e| e.to_string())?
        .to_owned();
    let at = 2 + topic_len;
    let partition = i32::from_be_bytes(field(at..at + 4)?.try_into().map_err(|_| "bad partition")?);
    let offset = i64::from_be_bytes(
        field(at + 4..at + 12)?
            .try_into()
            .map_err(|_| "bad offset")?,
    );
    let budget = u32::from_be_bytes(
        field(at + 12..at + 16)?
            .try_into()
            .map_err(|_| "bad budget")?,
    );
    let budget = read_budget(usize::try_from(budget).map_err(|e| e.to_string())?);
    Ok((topic, partition, offset, budget))
}

/// Answers reads of this shard's replicas' partition logs on `stream` until it closes.
async fn serve_log_reads(shard: &Shard, mut stream: TcpStream) -> std::io::Result<()> {
    loop {
        let body = read_frame(&mut stream).await?;
        match answer_read(shard, &body).await {
            // The batches go out as the log read them, without being gathered into one
            // buffer first.
            Ok(chunks) => {
                let len: usize = chunks.iter().map(Bytes::len).sum();
                stream.write_all(&frame_head(1 + len)).await?;
                stream.write_all(&[0]).await?;
                for chunk in &chunks {
                    stream.write_all(chunk).await?;
                }
            }
            Err(reason) => {
                stream.write_all(&frame_head(1 + reason.len())).await?;
                stream.write_all(&[1]).await?;
                stream.write_all(reason.as_bytes()).await?;
            }
        }
    }
}

/// The batches a read request asks for, whole (the log's read keeps to the budget but for
/// a first batch larger than it), bounded by the frame size; or the attached state.
async fn answer_read(shard: &Shard, request: &[u8]) -> Result<Vec<Bytes>, String> {
    let (topic, partition, offset, budget) = decode_read_request(request)?;
    let replica = shard
        .replica(&topic, partition)
        .ok_or_else(|| format!("no replica of {topic}-{partition} here"))?;
    if offset == STATE_READ {
        let changes = shard
            .replicated_share_state(&topic, partition, &replica)
            .await?;
        let encoded = encode_changes(&changes);
        if encoded.len() + 1 > REPLICA_FRAME_BYTES_MAX {
            return Err(format!(
                "the attached state of {topic}-{partition} is {} bytes, over a frame",
                encoded.len()
            ));
        }
        return Ok(vec![Bytes::from(encoded)]);
    }
    // Below the log start there is nothing to copy: the copy skips to where the log starts.
    let offset = offset.max(replica.partition().log_start_offset());
    let read = replica
        .partition()
        .read(offset, budget)
        .await
        .map_err(|e| e.to_string())?;
    if read.bytes_len() + 1 > REPLICA_FRAME_BYTES_MAX {
        return Err(format!(
            "{} bytes at offset {offset}, over a frame",
            read.bytes_len()
        ));
    }
    Ok(read.chunks)
}

fn encode_changes(changes: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::with_capacity(changes.iter().map(|c| 4 + c.len()).sum());
    for change in changes {
        out.extend_from_slice(&frame_head(change.len()));
        out.extend_from_slice(change);
    }
    out
}

fn decode_changes(mut body: &[u8]) -> Result<Vec<Bytes>, String> {
    let mut changes = Vec::new();
    while !body.is_empty() {
        let (len, rest) = body
            .split_first_chunk::<4>()
            .ok_or_else(|| "a truncated state change".to_owned())?;
        let len = u32::from_be_bytes(*len) as usize;
        let change = rest
            .get(..len)
            .ok_or_else(|| "a truncated state change".to_owned())?;
        changes.push(Bytes::copy_from_slice(change));
        body = &rest[len..];
    }
    Ok(changes)
}

struct Writer {
    link: Rc<PeerLink>,
    plane: ControlPlane,
    peer: NodeId,
    from: NodeId,
    shard: usize,
}

impl Writer {
    async fn run(self) {
        let backoff_min = Duration::from_millis(REPLICA_RECONNECT_BACKOFF_MIN_MS);
        let mut backoff = backoff_min;
        let mut stream: Option<TcpStream> = None;
        loop {
            let listener = self.link.ready.listen();
            if self.link.queue.borrow().is_empty() {
                listener.await;
                continue;
            }
            let connected = match stream.take() {
                Some(connected) => Ok(connected),
                None => self.connect().await,
            };
            let mut connected = match connected {
                Ok(connected) => connected,
                Err(e) => {
                    tracing::debug!(peer = self.peer, shard = self.shard, error = %e, "replication peer unreachable");
                    self.link.queue.borrow_mut().clear();
                    crate::io::sleep(backoff).await;
                    backoff =
                        (backoff * 2).min(Duration::from_millis(REPLICA_RECONNECT_BACKOFF_MAX_MS));
                    continue;
                }
            };
            let batch = std::mem::take(&mut *self.link.queue.borrow_mut());
            let frames = encode_frames(&batch);
            match connected.write_all(&frames).await {
                Ok(()) => {
                    backoff = backoff_min;
                    stream = Some(connected);
                }
                Err(e) => {
                    tracing::debug!(peer = self.peer, shard = self.shard, error = %e, "replication connection lost");
                    crate::io::sleep(backoff).await;
                }
            }
        }
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        connect(
            &self.plane,
            self.peer,
            self.from,
            self.shard,
            StreamPurpose::RaftMessages,
        )
        .await
    }
}

/// Encodes a batch as frames of at most `REPLICA_FRAME_BYTES_MAX` (a single message larger
/// than that is dropped: raft-rs bounds appends far below it).
fn encode_frames(batch: &[(GroupKey, RaftMessage)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = Vec::new();
    let flush = |out: &mut Vec<u8>, body: &mut Vec<u8>| {
        if body.is_empty() {
            return;
        }
        // Bounded by REPLICA_FRAME_BYTES_MAX (below u32::MAX) by construction.
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.append(body);
    };
    for (group, message) in batch {
        let Ok(bytes) = message.write_to_bytes() else {
            continue;
        };
        let topic = group.topic.as_bytes();
        let (Ok(topic_len), Ok(message_len)) =
            (u16::try_from(topic.len()), u32::try_from(bytes.len()))
        else {
            continue;
        };
        let size = 2 + topic.len() + 4 + 4 + bytes.len();
        if size > REPLICA_FRAME_BYTES_MAX {
            continue;
        }
        if body.len() + size > REPLICA_FRAME_BYTES_MAX {
            flush(&mut out, &mut body);
        }
        body.extend_from_slice(&topic_len.to_be_bytes());
        body.extend_from_slice(topic);
        body.extend_from_slice(&group.partition.to_be_bytes());
        body.extend_from_slice(&message_len.to_be_bytes());
        body.extend_from_slice(&bytes);
    }
    flush(&mut out, &mut body);
    out
}

/// One frame's messages, or why the frame is malformed (the connection is then closed).
fn decode_frame(mut body: &[u8]) -> Result<Vec<(String, i32, RaftMessage)>, String> {
    fn take<'a>(body: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        let (head, rest) = body
            .split_at_checked(n)
            .ok_or_else(|| "truncated replication frame".to_owned())?;
        *body = rest;
        Ok(head)
    }
    fn array<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
        bytes.try_into().map_err(|_| "bad field".to_owned())
    }
    let mut messages = Vec::new();
    while !body.is_empty() {
        let topic_len = u16::from_be_bytes(array(take(&mut body, 2)?)?);
        let topic = std::str::from_utf8(take(&mut body, usize::from(topic_len))?)
            .map_err(|e| e.to_string())?
            .to_owned();
        let partition = i32::from_be_bytes(array(take(&mut body, 4)?)?);
        let len = u32::from_be_bytes(array(take(&mut body, 4)?)?);
        let bytes = take(&mut body, usize::try_from(len).map_err(|e| e.to_string())?)?;
        let message = RaftMessage::parse_from_bytes(bytes).map_err(|e| e.to_string())?;
        messages.push((topic, partition, message));
    }
    Ok(messages)
}

/// Takes the replication connections the control plane hands to this shard and reads each
/// until it closes.
pub async fn accept_streams(
    shard: Rc<Shard>,
    streams: async_channel::Receiver<(NodeId, StreamPurpose, std::os::fd::OwnedFd)>,
) {
    while let Ok((from, purpose, fd)) = streams.recv().await {
        let stream = crate::io::net::stream_from_fd(fd);
        let shard = Rc::clone(&shard);
        crate::io::spawn(async move {
            let served = match purpose {
                StreamPurpose::RaftMessages => read_stream(&shard, stream).await,
                StreamPurpose::LogReads => serve_log_reads(&shard, stream).await,
            };
            if let Err(e) = served {
                tracing::debug!(from, shard = shard.id, ?purpose, error = %e, "replication stream closed");
            }
        })
        .detach();
    }
}

async fn read_stream(shard: &Shard, mut stream: TcpStream) -> std::io::Result<()> {
    loop {
        let body = read_frame(&mut stream).await?;
        let messages = decode_frame(&body).map_err(|e| std::io::Error::other(e.to_string()))?;
        for (topic, partition, message) in messages {
            shard.step_replica(&topic, partition, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changes_round_trip_and_truncation_is_an_error() {
        let changes = vec![
            Bytes::from_static(b"one"),
            Bytes::new(),
            Bytes::from(vec![7; 300]),
        ];
        let encoded = encode_changes(&changes);
        assert_eq!(decode_changes(&encoded), Ok(changes));
        assert!(decode_changes(&encoded[..encoded.len() - 1]).is_err());
        assert!(decode_changes(&encoded[..2]).is_err());
        assert_eq!(decode_changes(&[]), Ok(Vec::new()));
    }

    #[test]
    fn frames_carry_many_groups_messages_and_refuse_truncation() {
        let heartbeat = RaftMessage {
            to: 2,
            from: 1,
            term: 7,
            ..Default::default()
        };
        let append = RaftMessage {
            index: 42,
            ..heartbeat.clone()
        };
        let batch = vec![
            (GroupKey::new("orders", 0), heartbeat),
            (GroupKey::new("payments", 3), append),
        ];
        let frames = encode_frames(&batch);
        let len = u32::from_be_bytes(frames[..4].try_into().expect("a length")) as usize;
        assert_eq!(len + 4, frames.len(), "one frame for the whole batch");
        let decoded = decode_frame(&frames[4..]).expect("a whole frame");
        assert_eq!(decoded.len(), 2);
        assert_eq!((decoded[0].0.as_str(), decoded[0].1), ("orders", 0));
        assert_eq!((decoded[1].0.as_str(), decoded[1].1), ("payments", 3));
        assert_eq!((decoded[1].2.term, decoded[1].2.index), (7, 42));
        assert!(decode_frame(&frames[4..frames.len() - 1]).is_err());
    }
}
