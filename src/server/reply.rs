//! What a handler answers to the connection that called it.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::protocol::ProtocolError;

/// A handler's answer. `Deferred` futures must not borrow the request; they own what they need.
pub enum Reply {
    Ready(Bytes),
    Deferred(Pin<Box<dyn Future<Output = Result<Bytes, ProtocolError>>>>),
    /// A response written as several pieces (fetch: record chunks go out uncopied).
    DeferredPieces(Pin<Box<dyn Future<Output = Result<Vec<Bytes>, ProtocolError>>>>),
    /// acks=0 produce: the client expects no answer.
    None,
    /// No answer either, but the request keeps its memory budget until this resolves
    /// (an acks=0 produce waiting for its partitions' disk backlog to drain).
    Silent(Pin<Box<dyn Future<Output = AfterSilence>>>),
    /// acks=0 produce that a partition refused: with no answer to carry the error, Kafka
    /// closes the connection so the client notices (it reconnects and refreshes metadata).
    /// Answers queued before it are still written.
    Close,
}

/// What the connection does once a [`Reply::Silent`] resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSilence {
    KeepOpen,
    Close,
}
