//! The broker process: starts one shard per core, each with its own listener (its own
//! Kafka broker id), and serves connections with one thin handler per API.

pub mod byte_budget;
pub mod connection;
pub mod error_codes;
pub mod handlers;
pub mod local_shard;
pub mod panic_policy;
pub mod process;
pub mod reply;

pub use process::{run, ServerError};
