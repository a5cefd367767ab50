//! `SharedQueues`: the process-wide queues behind `proxy_register_shared_queue`
//! and friends (proxy-wasm-cpp-host `src/shared_queue.cc`).

use crate::abi::Status;
use std::collections::{HashMap, VecDeque};

/// Who is told when an item is enqueued: the root context of the VM that
/// registered the queue last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueOwner {
    /// Worker index (or [`crate::CANARY_WORKER`]).
    pub worker: usize,
    /// Which VM of that worker: a reloaded worker has a new generation, and a
    /// registration by the dead VM must not reach the new one.
    pub generation: u64,
    /// The root context that receives `proxy_on_queue_ready`.
    pub root_context: u32,
}

#[derive(Debug)]
struct Queue {
    owner: QueueOwner,
    items: VecDeque<Vec<u8>>,
}

/// Queues keyed by `(vm_id, name)`. Tokens are process-wide and never 0.
#[derive(Debug, Default)]
pub(crate) struct SharedQueues {
    tokens: HashMap<(String, String), u32>,
    queues: HashMap<u32, Queue>,
    next_token: u32,
}

impl SharedQueues {
    /// Register (or re-register) a queue. Re-registering keeps the items and
    /// the token but moves ownership to the caller: only the last registering
    /// VM hears `on_queue_ready`.
    pub fn register(&mut self, vm_id: &str, name: &str, owner: QueueOwner) -> u32 {
        let key = (vm_id.to_string(), name.to_string());
        let token = match self.tokens.get(&key) {
            Some(t) => *t,
            None => {
                self.next_token += 1;
                let t = self.next_token;
                self.tokens.insert(key, t);
                t
            }
        };
        self.queues
            .entry(token)
            .and_modify(|q| q.owner = owner)
            .or_insert(Queue {
                owner,
                items: VecDeque::new(),
            });
        token
    }

    /// The token of a registered queue.
    pub fn resolve(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.tokens
            .get(&(vm_id.to_string(), name.to_string()))
            .copied()
    }

    /// Append an item; returns who to notify.
    pub fn enqueue(&mut self, token: u32, value: &[u8]) -> Result<QueueOwner, Status> {
        let q = self.queues.get_mut(&token).ok_or(Status::NotFound)?;
        q.items.push_back(value.to_vec());
        Ok(q.owner)
    }

    /// Take the oldest item: `NotFound` for an unknown token, `Empty` when none.
    pub fn dequeue(&mut self, token: u32) -> Result<Vec<u8>, Status> {
        let q = self.queues.get_mut(&token).ok_or(Status::NotFound)?;
        q.items.pop_front().ok_or(Status::Empty)
    }
}
