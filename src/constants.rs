//! Every limit in one place, with the relationships between them checked at compile time.

/// Largest request frame accepted from a client; checked before any allocation.
pub const FRAME_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Kafka's default `message.max.bytes` (plus the batch overhead Kafka allows on top).
pub const MESSAGE_BYTES_MAX_DEFAULT: u32 = 1_048_588;

/// Alignment required by O_DIRECT on the devices we target.
pub const DMA_ALIGNMENT: usize = 4096;

/// Per-connection bound on bytes of requests read but not yet answered.
pub const CONNECTION_INFLIGHT_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Per-shard bound on request bytes read but not yet answered, across its connections.
pub const SHARD_INFLIGHT_BYTES_MAX: usize = 512 * 1024 * 1024;

/// Bytes a partition may hold appended but not yet written before its producers wait:
/// enough to keep the disk busy with large writes, small enough to bound memory.
pub const PARTITION_UNWRITTEN_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Bytes of recent batches the partitions of a shard keep in memory together for tailing
/// consumers (the tail cache); older data is read from the segment files.
pub const TAIL_CACHE_BYTES_PER_SHARD: u64 = 128 * 1024 * 1024;

/// Per-shard bound on connections.
pub const SHARD_CONNECTIONS_MAX: usize = 10_000;

/// Largest Fetch response, whatever the client asks for (Kafka's broker `fetch.max.bytes`
/// default, 55 MiB): bounds what one request can make the broker read and hold.
pub const FETCH_RESPONSE_BYTES_MAX: usize = 57_671_680;

/// Cold (on-disk) partition reads one Fetch runs at once; the rest wait for the next round.
pub const FETCH_COLD_READS_MAX: usize = 32;

/// Longest a fetch may park waiting for data, whatever the client asks for.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

const _: () = assert!(FRAME_BYTES_MAX > MESSAGE_BYTES_MAX_DEFAULT as usize);
// A whole frame must fit in its connection's budget, which is reserved up front.
const _: () = assert!(CONNECTION_INFLIGHT_BYTES_MAX >= FRAME_BYTES_MAX);
const _: () = assert!(SHARD_INFLIGHT_BYTES_MAX >= CONNECTION_INFLIGHT_BYTES_MAX);

/// Memory of each shard's log-cleaner key index (Kafka's `log.cleaner.dedupe.buffer.size`,
/// split per core): 24 bytes per distinct key, filled to 90%, so about 630 000 keys per
/// cleaning pass; a log with more distinct keys in its dirty part is cleaned over several
/// passes. Allocated when the shard first cleans a compacted log.
pub const LOG_CLEANER_OFFSET_MAP_BYTES: usize = 16 * 1024 * 1024;

/// Bytes of a segment the log cleaner reads per I/O (a larger batch is read whole).
pub const LOG_CLEANER_READ_BYTES: usize = 1024 * 1024;

/// Bytes of cleaned output the log cleaner buffers before writing them.
pub const LOG_CLEANER_WRITE_BYTES: usize = 1024 * 1024;

/// How often each shard's log cleaner looks for compacted logs worth cleaning.
pub const LOG_CLEANER_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// CPU shares of the task classes (`io::TaskClass`) against the default queue's 1000, where
/// connections read, decode and answer requests. Fetch work gets the most; the disk work of
/// produce (copying into write buffers, fsync rounds) yields to it under load.
pub const FETCH_TASK_SHARES: usize = 1000;
pub const PRODUCE_TASK_SHARES: usize = 500;
pub const BACKGROUND_TASK_SHARES: usize = 100;

/// CPU shares of the log cleaner's task queue against the request path's 1000: when both
/// have work, appends and fetches get about 10 times the cleaner's time.
pub const LOG_CLEANER_SHARES: usize = 100;

/// A log is cleaned once this percentage of its cleanable bytes is dirty (not cleaned since
/// the broker started), as Kafka's `min.cleanable.dirty.ratio` default of 0.5.
pub const LOG_CLEANER_DIRTY_PERCENT_MIN: u64 = 50;

const _: () = assert!(LOG_CLEANER_OFFSET_MAP_BYTES >= 24 * 1024);

/// Largest records section a compressed batch may decompress to, whether a producer sent it
/// (a compacted topic checks every record for a key) or the log reads it back (timestamp
/// lookups, the log cleaner). A 1 MiB batch could otherwise claim gigabytes.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Requests read but not yet answered, per connection.
pub const PIPELINE_DEPTH_MAX: usize = 64;

/// Request-frame buffers the frame pool keeps per thread for reuse; beyond this they are freed.
pub const POOL_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Largest partition count one topic may have.
pub const TOPIC_PARTITIONS_MAX: i32 = 100_000;

/// Largest request head the admin HTTP endpoint reads; anything longer is refused.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;

/// Largest frame on the cluster port (metadata Raft RPCs). Metadata entries are small; this
/// bounds what a peer can make us allocate, with room for a snapshot of a large catalog.
pub const CLUSTER_FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// In a cluster, node N's shard s is Kafka broker `N * CLUSTER_SHARDS_PER_NODE_MAX + s`, so a
/// node may run at most this many shards (`cluster::peer_list::NODE_ID_MAX` keeps the product
/// in an i32).
pub const CLUSTER_SHARDS_PER_NODE_MAX: u64 = 1000;

/// A partition replica's Raft clock: the owning shard ticks each replica this often.
/// Elections and heartbeats are counted in ticks (below), so a lost leader is replaced within
/// 1–2 s (10–20 ticks, raft-rs randomises in [election, 2 × election)).
pub const REPLICA_TICK_MS: u64 = 100;
pub const REPLICA_ELECTION_TICKS: usize = 10;
pub const REPLICA_HEARTBEAT_TICKS: usize = 2;
/// How often (in ticks) a partition leader that is not the preferred one hands leadership
/// back to the preferred replica once that one has the whole log (Kafka's preferred leader
/// election, `leader.imbalance.check.interval.seconds`, much shorter here).
pub const REPLICA_PREFERRED_LEADER_CHECK_TICKS: u64 = 50;

/// Most bytes of entries in one append message to a follower (about one produce batch of the
/// default max.message.bytes), and most such messages in flight per follower: the
/// replication pipeline's depth.
pub const REPLICA_MESSAGE_BYTES_MAX: u64 = 1 << 20;
pub const REPLICA_INFLIGHT_APPENDS_MAX: usize = 256;

/// Largest frame of partition replication messages between two shards (many groups'
/// messages; one append is at most `REPLICA_MESSAGE_BYTES_MAX`): bounds what a peer can make
/// a shard allocate.
pub const REPLICA_FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Backoff between attempts to reach a replication peer, doubling from the first to the
/// second bound. Raft's own retries (heartbeats, probes) resend what was dropped meanwhile.
pub const REPLICA_RECONNECT_BACKOFF_MIN_MS: u64 = 50;
pub const REPLICA_RECONNECT_BACKOFF_MAX_MS: u64 = 1000;

/// Segment size of a partition's Raft log (it holds only entries not yet applied durably
/// everywhere, so it stays small), records per batch of it, and growth that triggers its
/// compaction.
pub const RAFT_LOG_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
pub const RAFT_LOG_BATCH_RECORDS_MAX: usize = 256;
pub const RAFT_LOG_COMPACT_BYTES: u64 = 32 * 1024 * 1024;
/// How often a replicated partition's own log is fdatasynced (its durable record is the
/// Raft log; this bounds how much a restart re-applies from it).
pub const REPLICA_PARTITION_LOG_FLUSH_MS: u64 = 1000;
/// Bytes a follower installing a snapshot asks the leader's partition log for at a time.
pub const REPLICA_SNAPSHOT_READ_BYTES: usize = 4 * 1024 * 1024;
/// Failed reads in a row after which a snapshot install gives up (the replica stops).
pub const REPLICA_SNAPSHOT_ATTEMPTS: u32 = 20;
/// How long a snapshot install waits for the partition's share state to be opened and
/// attached, to take the leader's state; the install gives up after (the replica stops).
pub const REPLICA_STATE_ATTACH_TIMEOUT_MS: u64 = 30_000;
/// Ticks a leader waits for a follower to acknowledge a snapshot before sending another
/// (30 s: a copy of several GB over loopback fits; a larger one is resent meanwhile, and the
/// copy resumes where the follower's log ends).
pub const REPLICA_SNAPSHOT_TIMEOUT_TICKS: u32 = 300;
