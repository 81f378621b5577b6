//! What the long-polling handlers (Fetch, ShareFetch) wait on.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Resolves when any of `waits` does; pends forever when there are none.
pub(super) async fn wait_any(mut waits: Vec<Pin<Box<dyn Future<Output = ()>>>>) {
    std::future::poll_fn(|cx| {
        for wait in waits.iter_mut() {
            if wait.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}
