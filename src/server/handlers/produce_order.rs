//! Produce requests append in the order the shard receives them. Almost all append
//! synchronously while being dispatched, so arrival order is append order for free. One that
//! must first hear from its transaction's coordinator (KIP-890, see
//! `txn_produce_verification`) cannot: requests behind it would overtake it, and a pipelining
//! idempotent producer's next batch would land first and be refused as
//! OUT_OF_ORDER_SEQUENCE. So while such a request waits, its partitions are gated: every
//! request that touches a gated partition takes a ticket on each of its partitions at
//! dispatch (gating the others too, since it now appends late on them as well) and appends
//! only when all earlier tickets on them are done. Ungated partitions keep the synchronous
//! path.
//!
//! The gates live in a thread-local map: a shard is one thread, and a partition is appended
//! to only by the shard that owns it.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use event_listener::Event;

/// A partition, by topic name and index.
pub type PartitionKey = (String, i32);

#[derive(Default)]
struct Gate {
    /// The next ticket to hand out.
    issued: u64,
    /// Every ticket below this one is done; this one may append.
    turn: u64,
    /// Done tickets above `turn` (their holders went away while waiting, say).
    done_early: BTreeSet<u64>,
    turn_changed: Rc<Event>,
}

thread_local! {
    static GATES: RefCell<HashMap<PartitionKey, Gate>> = RefCell::new(HashMap::new());
}

/// One request's place in the queue of every gated partition it touches. Dropping it, after
/// appending or on cancellation, lets the next request go.
#[must_use]
pub struct Tickets {
    held: Vec<(PartitionKey, u64)>,
}

/// Whether any partition is gated: when none is and the request does not wait itself, it
/// appends at once without looking at its partitions here.
pub fn any_gated() -> bool {
    GATES.with_borrow(|gates| !gates.is_empty())
}

/// Takes a ticket on every partition in `partitions` when the request must wait: with
/// `gate` (it is about to wait itself) or when one of them is gated (it queues behind
/// another). A waiting request gates its ungated partitions too, or a later request to one
/// of them would append at once, ahead of it. `None`: nothing to wait for.
pub fn take(partitions: Vec<PartitionKey>, gate: bool) -> Option<Tickets> {
    GATES.with_borrow_mut(|gates| {
        if !gate && !partitions.iter().any(|key| gates.contains_key(key)) {
            return None;
        }
        let held = partitions
            .into_iter()
            .map(|key| {
                let entry = gates.entry(key.clone()).or_default();
                let ticket = entry.issued;
                entry.issued += 1;
                (key, ticket)
            })
            .collect();
        Some(Tickets { held })
    })
}

impl Tickets {
    /// Resolves when every earlier ticket on each of these partitions is done.
    pub async fn wait_turn(&self) {
        for (key, ticket) in &self.held {
            loop {
                let listener = GATES.with_borrow(|gates| {
                    let gate = gates.get(key)?;
                    (gate.turn != *ticket).then(|| gate.turn_changed.listen())
                });
                match listener {
                    Some(listener) => listener.await,
                    None => break,
                }
            }
        }
    }
}

impl Drop for Tickets {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        GATES.with_borrow_mut(|gates| {
            for (key, ticket) in self.held.drain(..) {
                let Some(gate) = gates.get_mut(&key) else {
                    continue;
                };
                gate.done_early.insert(ticket);
                while gate.done_early.remove(&gate.turn) {
                    gate.turn += 1;
                }
                if gate.turn == gate.issued {
                    gates.remove(&key);
                } else {
                    gate.turn_changed.notify(usize::MAX);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(partition: i32) -> PartitionKey {
        ("t".to_owned(), partition)
    }

    fn turn_of(partition: i32) -> Option<u64> {
        GATES.with_borrow(|gates| gates.get(&key(partition)).map(|g| g.turn))
    }

    #[test]
    fn ungated_partitions_take_no_ticket() {
        assert!(take(vec![key(0)], false).is_none());
        assert_eq!(turn_of(0), None);
    }

    #[test]
    fn later_requests_queue_behind_a_gate_in_arrival_order() {
        let first = take(vec![key(1)], true).expect("gate opened");
        let second = take(vec![key(1), key(2)], false).expect("queued on the gate");
        assert_eq!(second.held, vec![(key(1), 1), (key(2), 0)]);
        let third = take(vec![key(1)], false).expect("queued");
        assert_eq!(turn_of(1), Some(0));
        // The second request gives up while waiting: the third still waits for the first.
        drop(second);
        assert_eq!(turn_of(1), Some(0));
        drop(first);
        assert_eq!(turn_of(1), Some(2), "the third request's turn");
        drop(third);
        assert_eq!(turn_of(1), None, "an idle gate is removed");
    }

    #[test]
    fn a_request_queued_behind_a_gate_gates_its_other_partitions() {
        let waiting = take(vec![key(3)], true).expect("gate opened");
        // Queued on partition 3, so its batch for partition 4 appends late too...
        let queued = take(vec![key(3), key(4)], false).expect("queued on the gate");
        assert_eq!(queued.held, vec![(key(3), 1), (key(4), 0)]);
        // ...and a later request to partition 4 alone must not overtake it.
        let later = take(vec![key(4)], false).expect("queued behind the request on 4");
        assert_eq!(later.held, vec![(key(4), 1)]);
        drop(waiting);
        drop(queued);
        assert_eq!(turn_of(4), Some(1), "the later request's turn");
        drop(later);
        assert_eq!(turn_of(4), None);
    }
}
