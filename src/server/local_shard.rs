//! `LocalShard`: a one-shard broker inside the calling glommio executor, with no listener and
//! no admin endpoint. It is the real shard (catalog owner, control loop, partitions, groups,
//! share groups and their timers, opened the way `serve` opens them), so that
//! [`super::handlers::dispatch`] can be driven in-process, request frame in, answer out: the
//! `dispatch` fuzz target and its stable replay in `tests/it/fuzz_targets_replay_corpus.rs`.

use std::rc::Rc;
use std::sync::Arc;

use futures_channel::oneshot;

use super::process::{close_shard, open_shard, start_catalog_owner, ShardTasks};
use super::ServerError;
use crate::config::BrokerConfig;
use crate::shard::catalog::Catalog;
use crate::shard::control::ShardMessage;
use crate::shard::{control_loop, BrokerAddress, Shard};

/// A running shard and its background tasks. Call [`LocalShard::close`] to flush it; dropping
/// it only cancels its tasks.
pub struct LocalShard {
    shard: Rc<Shard>,
    inbox_tx: async_channel::Sender<ShardMessage>,
    control: crate::io::Task<Option<oneshot::Sender<()>>>,
    tasks: ShardTasks,
}

impl LocalShard {
    /// Opens `config.data_dir` (creating it) as the only shard: `config.shard_count` is
    /// overridden to 1. It advertises itself as broker 0 at `advertised_host:listen.port()`.
    pub async fn open(mut config: BrokerConfig) -> Result<LocalShard, ServerError> {
        config.shard_count = 1;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let catalog = Catalog::load(&config.data_dir)?;
        let config = Arc::new(config);
        let (admin_tx, admin_rx) = async_channel::unbounded();
        let (inbox_tx, inbox_rx) = async_channel::unbounded();
        let (share_tx, share_rx) = async_channel::unbounded();
        let (txn_tx, txn_rx) = async_channel::unbounded();
        let failed = |reason| ServerError::Shard {
            shard_id: 0,
            reason,
        };
        start_catalog_owner(
            &config,
            catalog.clone(),
            vec![inbox_tx.clone()],
            admin_rx,
            None,
        )
        .map_err(failed)?;
        let mut shard = open_shard(
            0,
            Arc::clone(&config),
            catalog,
            admin_tx,
            vec![share_tx],
            vec![txn_tx],
            None,
        )
        .await
        .map_err(failed)?;
        shard.brokers = vec![BrokerAddress {
            node_id: 0,
            host: config.advertised_host.clone(),
            port: config.listen.port(),
        }];
        let shard = Rc::new(shard);
        let tasks = ShardTasks::spawn(&shard, share_rx, txn_rx);
        let control = crate::io::spawn(control_loop(Rc::clone(&shard), inbox_rx));
        Ok(LocalShard {
            shard,
            inbox_tx,
            control,
            tasks,
        })
    }

    pub fn shard(&self) -> &Rc<Shard> {
        &self.shard
    }

    /// Stops the shard as `serve` does on SIGTERM: control loop, tasks, then every log
    /// flushed and marked clean.
    pub async fn close(self) {
        let LocalShard {
            shard,
            inbox_tx,
            control,
            tasks,
        } = self;
        let (reply, _done) = oneshot::channel();
        // The control loop only ends on this message, so it is still there to receive it.
        let _ = inbox_tx.send(ShardMessage::Shutdown { reply }).await;
        let _ = control.await;
        drop(tasks);
        close_shard(&shard).await;
    }
}
