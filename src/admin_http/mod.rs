//! The admin HTTP endpoint: `/metrics` (Prometheus text), `/health` and `/ready`.
//!
//! It runs on plain std threads (an acceptor and a bounded number of request threads), off
//! the data path: it never touches a shard, only the snapshots shards publish to the
//! [`MetricsRegistry`]. The server is deliberately tiny — HTTP/1.1, GET only, one request
//! per connection, bounded reads with timeouts, an optional bearer token — because its
//! clients are a Prometheus scraper, a load balancer's probe and `curl`.

mod admin_server;

pub use admin_server::{start, AdminHttpError};
