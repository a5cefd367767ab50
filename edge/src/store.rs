//! The Durable Object's shared store: the engine's [`SharedStore`] with
//! Envoy's CAS rules, kept in the object's memory, plus the changes since
//! the last persist so the object can write only those to its storage.
//!
//! A Durable Object runs one request at a time on one thread, so every CAS
//! succeeds on its first try and the engine's retry loops cost nothing here.

use rheostat_filter::ledger::{MemoryStore, SharedStore, StoreError};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// Every key of the ledger, in memory (the engine's own [`MemoryStore`], so
/// the CAS rules are the ones the native tests check), plus the keys
/// written since the last [`EdgeStore::take_dirty`].
#[derive(Debug, Default)]
pub struct EdgeStore {
    store: MemoryStore,
    dirty: RefCell<BTreeSet<String>>,
}

impl SharedStore for EdgeStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.store.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        self.store.set(key, value, cas)?;
        self.dirty.borrow_mut().insert(key.to_string());
        Ok(())
    }
}

impl EdgeStore {
    /// How many keys the store holds.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys written since the last call and their values, as a JSON
    /// object of hex strings (`{}` when nothing changed). Values are small
    /// binary records; hex keeps the JavaScript side to `storage.put`.
    pub fn take_dirty(&self) -> String {
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        let out: serde_json::Map<String, serde_json::Value> = dirty
            .into_iter()
            .filter_map(|k| {
                let hex = to_hex(&self.store.get(&k)?.0);
                Some((k, serde_json::Value::String(hex)))
            })
            .collect();
        serde_json::Value::Object(out).to_string()
    }

    /// Loads values persisted by [`EdgeStore::take_dirty`]; returns how many
    /// keys were restored. Entries that are not hex strings are skipped (a
    /// corrupt record must not keep the object from starting).
    pub fn restore(&self, json: &str) -> Result<usize, String> {
        let entries: BTreeMap<String, serde_json::Value> = serde_json::from_str(json)
            .map_err(|e| format!("persisted ledger is not a JSON object: {e}"))?;
        let mut restored = 0;
        for (key, value) in entries {
            let Some(bytes) = value.as_str().and_then(from_hex) else {
                continue;
            };
            // Straight into the store: what was just loaded is not a change to persist.
            if self.store.set(&key, &bytes, None).is_ok() {
                restored += 1;
            }
        }
        Ok(restored)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| char::from(c).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rheostat_filter::ledger::WindowCounter;

    #[test]
    fn a_stale_cas_is_rejected_like_envoy_shared_data() {
        let store = EdgeStore::default();
        store.set("k", b"a", None).unwrap();
        let (_, cas) = store.get("k").unwrap();
        store.set("k", b"b", Some(cas)).unwrap();
        assert_eq!(
            store.set("k", b"c", Some(cas)),
            Err(StoreError::CasMismatch)
        );
    }

    #[test]
    fn only_keys_written_since_the_last_take_are_dirty() {
        let store = EdgeStore::default();
        store.set("a", &[0, 255], None).unwrap();
        store.set("b", b"x", None).unwrap();
        assert_eq!(store.take_dirty(), r#"{"a":"00ff","b":"78"}"#);
        assert_eq!(store.take_dirty(), "{}");
        store.set("b", b"y", None).unwrap();
        assert_eq!(store.take_dirty(), r#"{"b":"79"}"#);
    }

    #[test]
    fn a_restored_store_continues_the_counts_it_persisted() {
        let store = EdgeStore::default();
        let counter = WindowCounter::new("requests", 60_000);
        counter.ensure(&store);
        counter.add(&store, 1_000, 5).unwrap();
        let persisted = store.take_dirty();

        let restarted = EdgeStore::default();
        assert_eq!(restarted.restore(&persisted).unwrap(), 4);
        assert_eq!(counter.add(&restarted, 2_000, 1).unwrap(), 6);
        assert!(restarted.restore("[1]").is_err());
        assert_eq!(
            restarted.restore(r#"{"bad": "zz", "odd": "abc"}"#).unwrap(),
            0
        );
    }
}
