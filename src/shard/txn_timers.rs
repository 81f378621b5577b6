//! The per-shard task that aborts transactions past their timeout, finishes transactions
//! left prepared (after a restart, or when writing their markers failed), and compacts the
//! transaction state logs.

use std::rc::Rc;
use std::time::Duration;

use crate::io::clock::now_ms;
use crate::shard::Shard;
use crate::txn::{TIMEOUT_CHECK_INTERVAL_MS, TRANSACTIONAL_ID_EXPIRATION_MS};

pub async fn run(shard: Rc<Shard>) {
    loop {
        shard.txn().follow_state_leaders().await;
        let (timed_out, unfinished) = shard.txn().due(now_ms());
        for transactional_id in timed_out {
            let shard = Rc::clone(&shard);
            crate::io::spawn(async move {
                if let Err(e) = shard.txn().abort_timed_out(&shard, &transactional_id).await {
                    tracing::warn!(%transactional_id, error = %e, "aborting a timed-out transaction failed; retrying");
                }
            })
            .detach();
        }
        for transactional_id in unfinished {
            let shard = Rc::clone(&shard);
            crate::io::spawn(async move {
                if let Err(e) = shard.txn().complete(&shard, &transactional_id).await {
                    tracing::warn!(%transactional_id, error = %e, "completing a transaction failed; retrying");
                }
            })
            .detach();
        }
        let expired = shard
            .txn()
            .expire_idle(now_ms(), TRANSACTIONAL_ID_EXPIRATION_MS);
        if expired > 0 {
            tracing::info!(expired, "idle transactional ids expired");
        }
        if let Err(e) = shard.txn().compact_if_large().await {
            tracing::warn!(error = %e, "compacting the transaction state failed");
        }
        crate::io::sleep(Duration::from_millis(TIMEOUT_CHECK_INTERVAL_MS)).await;
    }
}
