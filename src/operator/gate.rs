//! The order in which reconciles run when more are due than may run at once:
//! oldest object first. kube-runtime's controller takes the reconciles that
//! wait for a free slot from a hash set, in no order, so under a burst of
//! approvals a tenancy approved first could wait behind every later one at
//! each step of its provisioning. Here the controller runs reconciles
//! unbounded and each waits at this gate, which lets `slots` through at a
//! time, the one with the smallest key first.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Which waiting reconcile goes first: the smallest.
pub type Key = (i64, String);

pub struct Gate {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Waiting reconciles by key and arrival.
    waiting: BTreeMap<(Key, u64), oneshot::Sender<Permit>>,
    arrivals: u64,
}

/// A slot, held while a reconcile runs; handed to the next in order when
/// dropped.
pub struct Permit {
    gate: Option<Arc<Gate>>,
}

impl Gate {
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                free: slots.max(1),
                waiting: BTreeMap::new(),
                arrivals: 0,
            }),
        })
    }

    /// Waits for a slot; among those waiting, the smallest `key` gets the
    /// next one, and equal keys go in the order they came.
    pub async fn enter(self: &Arc<Self>, key: Key) -> Permit {
        let rx = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.free > 0 && state.waiting.is_empty() {
                state.free -= 1;
                return Permit {
                    gate: Some(self.clone()),
                };
            }
            let (tx, rx) = oneshot::channel();
            state.arrivals += 1;
            let arrival = state.arrivals;
            state.waiting.insert((key, arrival), tx);
            rx
        };
        match rx.await {
            Ok(permit) => permit,
            // Only the gate drops a sender, and it sends first.
            Err(_) => unreachable!("a gate's waiter is answered before it is dropped"),
        }
    }

    /// Reconciles waiting for a slot.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting
            .len()
    }

    fn release(self: &Arc<Self>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // A waiter that gave up (its reconcile was cancelled) hands the
        // permit back when the channel drops it, so the next is tried.
        while let Some((_, tx)) = state.waiting.pop_first() {
            let permit = Permit {
                gate: Some(self.clone()),
            };
            match tx.send(permit) {
                Ok(()) => return,
                // Not released again: it is tried on the next.
                Err(mut permit) => drop(permit.gate.take()),
            }
        }
        state.free += 1;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(n: i64) -> Key {
        (n, String::new())
    }

    #[tokio::test]
    async fn the_oldest_waiting_goes_first_whatever_the_order_of_arrival() {
        let gate = Gate::new(1);
        let held = gate.enter(key(0)).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for n in [5, 3, 9, 1, 7] {
            let (g, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = g.enter(key(n)).await;
                order.lock().unwrap().push(n);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
            // Each is waiting before the next comes.
            while gate.waiting() < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [1, 3, 5, 7, 9]);
    }

    #[tokio::test]
    async fn no_more_run_at_once_than_there_are_slots_and_a_cancelled_wait_loses_no_slot() {
        let gate = Gate::new(2);
        let a = gate.enter(key(1)).await;
        let b = gate.enter(key(2)).await;
        // A wait given up on before its turn.
        let cancelled = tokio::time::timeout(Duration::from_millis(10), gate.enter(key(0))).await;
        assert!(cancelled.is_err(), "a third got in with two slots held");
        let (tx, rx) = oneshot::channel();
        let g = gate.clone();
        let third = tokio::spawn(async move {
            let p = g.enter(key(3)).await;
            tx.send(()).unwrap();
            p
        });
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("the slot freed went to the waiter behind the one that gave up")
            .unwrap();
        let c = third.await.unwrap();
        drop((b, c));
        let (x, y) = (gate.enter(key(4)).await, gate.enter(key(5)).await);
        assert!(
            tokio::time::timeout(Duration::from_millis(10), gate.enter(key(6)))
                .await
                .is_err(),
            "slots were lost or made"
        );
        drop((x, y));
    }
}
