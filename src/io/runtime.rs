//! Executors: one glommio `LocalExecutor` per shard, each pinned to its own CPU.

use std::future::Future;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

/// A task spawned on the current shard. Dropping it cancels the task; call `detach` to let it run.
pub type Task<T> = glommio::Task<T>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error("could not start executor for shard {shard_id}: {source}")]
    Start {
        shard_id: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("shard {shard_id} thread panicked")]
    Panicked { shard_id: usize },
}

/// Handles of the running shard threads; `join` waits for every one to return.
pub struct ShardThreads<T: Send + 'static> {
    handles: Vec<glommio::ExecutorJoinHandle<T>>,
}

impl<T: Send + 'static> ShardThreads<T> {
    pub fn join(self) -> Result<Vec<T>, RuntimeError> {
        let mut results = Vec::with_capacity(self.handles.len());
        for (shard_id, handle) in self.handles.into_iter().enumerate() {
            match handle.join() {
                Ok(value) => results.push(value),
                Err(_) => return Err(RuntimeError::Panicked { shard_id }),
            }
        }
        Ok(results)
    }
}

/// Starts `shard_count` executors. Shard `i` is pinned to `cpus[i]` when a CPU list is
/// given (the thread-per-core deployment); otherwise threads float, which is what tests
/// on a shared 2-core machine want.
pub fn start_shards<G, F, T>(
    shard_count: usize,
    cpus: Option<&[usize]>,
    shard_main: G,
) -> Result<ShardThreads<T>, RuntimeError>
where
    G: Fn(usize) -> F + Clone + Send + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let mut handles = Vec::with_capacity(shard_count);
    for shard_id in 0..shard_count {
        let placement = match cpus.and_then(|list| list.get(shard_id)) {
            Some(&cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let shard_main = shard_main.clone();
        let handle = executor_builder(placement, &format!("shard-{shard_id}"))
            .spawn(move || shard_main(shard_id))
            .map_err(|e| RuntimeError::Start {
                shard_id,
                source: std::io::Error::other(e.to_string()),
            })?;
        handles.push(handle);
    }
    Ok(ShardThreads { handles })
}

/// Runs `future` to completion on a fresh executor on the calling thread (tests, tools).
pub fn block_on_local<F, T>(future: F) -> T
where
    F: Future<Output = T>,
{
    let executor = match executor_builder(Placement::Unbound, "local").make() {
        Ok(executor) => executor,
        Err(e) => panic!("cannot create a glommio executor: {e}"),
    };
    executor.run(future)
}

fn executor_builder(placement: Placement, name: &str) -> LocalExecutorBuilder {
    // The ring's registered buffer is pinned memory; keep it well under the default
    // 8 MiB RLIMIT_MEMLOCK so a non-root user can run several shards.
    LocalExecutorBuilder::new(placement)
        .name(name)
        .io_memory(1 << 20)
        .preempt_timer(Duration::from_millis(10))
}

/// Spawns `future` on the current shard's executor.
pub fn spawn<T: 'static>(future: impl Future<Output = T> + 'static) -> Task<T> {
    glommio::spawn_local(future)
}

/// Spawns `future` on the current shard's executor in its own task queue named `name`,
/// with `shares` of CPU against the default queue's 1000 when both have work: background
/// work (the log cleaner) gets what the request path leaves.
pub fn spawn_background<T: 'static>(
    name: &str,
    shares: usize,
    future: impl Future<Output = T> + 'static,
) -> Task<T> {
    let queue = glommio::executor().create_task_queue(
        glommio::Shares::Static(shares),
        glommio::Latency::NotImportant,
        name,
    );
    glommio::spawn_local_into(future, queue).expect("a task queue just created exists")
}

/// What a task does, for the executor's scheduler. Each class runs in its own glommio task
/// queue with CPU shares (against the default queue's 1000, where connections run), so that
/// when several have work the CPU is split by share rather than by who queued the most: a
/// produce flood's disk work cannot hold back fetch responses, and background work gets
/// what the request path leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskClass {
    /// Answering fetches (reading the log and encoding the response): latency-sensitive.
    Fetch,
    /// Making produced data durable: segment writers and group-commit rounds.
    Produce,
    /// Retention and timers: no one waits on them.
    Background,
}

impl TaskClass {
    const ALL: [TaskClass; 3] = [TaskClass::Fetch, TaskClass::Produce, TaskClass::Background];

    fn shares(self) -> usize {
        match self {
            TaskClass::Fetch => crate::constants::FETCH_TASK_SHARES,
            TaskClass::Produce => crate::constants::PRODUCE_TASK_SHARES,
            TaskClass::Background => crate::constants::BACKGROUND_TASK_SHARES,
        }
    }

    fn latency(self) -> glommio::Latency {
        match self {
            // The executor checks for due latency-sensitive work this often while others run.
            TaskClass::Fetch => glommio::Latency::Matters(Duration::from_millis(1)),
            TaskClass::Produce | TaskClass::Background => glommio::Latency::NotImportant,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TaskClass::Fetch => "fetch",
            TaskClass::Produce => "produce",
            TaskClass::Background => "background",
        }
    }
}

thread_local! {
    /// The class queues of the executor running on this thread, made on first use: (the
    /// executor's id, a handle per class in `TaskClass::ALL` order).
    static CLASS_QUEUES: std::cell::RefCell<Option<(usize, Vec<glommio::TaskQueueHandle>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Spawns `future` on the current shard's executor in the task queue of `class`.
pub fn spawn_in<T: 'static>(
    class: TaskClass,
    future: impl Future<Output = T> + 'static,
) -> Task<T> {
    let executor = glommio::executor();
    let executor_id = executor.id();
    let queue = CLASS_QUEUES.with(|queues| {
        let mut queues = queues.borrow_mut();
        // A thread may run several executors one after another (tests, tools).
        if queues.as_ref().is_none_or(|(id, _)| *id != executor_id) {
            let handles = TaskClass::ALL
                .iter()
                .map(|class| {
                    executor.create_task_queue(
                        glommio::Shares::Static(class.shares()),
                        class.latency(),
                        class.name(),
                    )
                })
                .collect();
            *queues = Some((executor_id, handles));
        }
        let index = TaskClass::ALL
            .iter()
            .position(|c| *c == class)
            .expect("every class is in ALL");
        queues.as_ref().map(|(_, handles)| handles[index])
    });
    let queue = queue.expect("the class queues were made above");
    glommio::spawn_local_into(future, queue).expect("the class queues of this executor exist")
}

/// Yields if the executor's preemption timer has fired (other tasks or queues are due).
/// Long-running background loops call it between bounded steps.
pub async fn yield_if_needed() {
    glommio::yield_if_needed().await
}

pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await
}

/// Resolves after the executor has been through its reactor, which is where glommio hands
/// queued I/O to the kernel: I/O started before this call is then under way. Yielding
/// alone would not do: the executor keeps running ready tasks until its preemption timer
/// fires before it polls the rings, but a (tiny) timer is only fired from the reactor.
pub async fn yield_to_reactor() {
    glommio::timer::sleep(Duration::from_micros(1)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue a task spawned in `class` runs in, from inside it.
    async fn queue_of(class: TaskClass) -> glommio::TaskQueueHandle {
        spawn_in(class, async { glommio::executor().current_task_queue() }).await
    }

    /// Each class runs in its own queue, apart from the default one where connections run,
    /// and a later executor on the same thread gets queues of its own.
    #[test]
    fn classes_run_in_their_own_task_queues() {
        for _ in 0..2 {
            block_on_local(async {
                let default = glommio::executor().current_task_queue();
                let fetch = queue_of(TaskClass::Fetch).await;
                let produce = queue_of(TaskClass::Produce).await;
                let background = queue_of(TaskClass::Background).await;
                let mut all = vec![default, fetch, produce, background];
                all.sort_by_key(glommio::TaskQueueHandle::index);
                all.dedup();
                assert_eq!(all.len(), 4, "four distinct queues");
                assert_eq!(queue_of(TaskClass::Fetch).await, fetch, "made once");
            });
        }
    }
}
