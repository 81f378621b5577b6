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
