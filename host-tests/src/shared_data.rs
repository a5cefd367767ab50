//! `SharedData`: the process-wide key-value store behind
//! `proxy_get_shared_data` / `proxy_set_shared_data`, with Envoy's
//! compare-and-swap rules (proxy-wasm-cpp-host `src/shared_data.cc`).

use crate::abi::Status;
use std::collections::HashMap;

/// One map per `vm_id`, shared by every worker, behind one mutex (held by
/// [`crate::SharedHandle`]).
///
/// CAS rules: every write stamps the entry with a new process-wide cas
/// (starting at 1, never 0); a write with cas 0 always succeeds; a write to a
/// key that does not exist ignores the cas; a write with any other cas that
/// is not the entry's current one fails with `CasMismatch`. ABI 0.2.1 has no
/// delete: writing an empty value keeps the key.
#[derive(Debug)]
pub struct SharedData {
    maps: HashMap<String, HashMap<String, (Vec<u8>, u32)>>,
    next_cas: u32,
}

impl Default for SharedData {
    fn default() -> Self {
        SharedData {
            maps: HashMap::new(),
            next_cas: 1,
        }
    }
}

impl SharedData {
    fn next_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            // 0 means "no cas" in the ABI, so it is never handed out.
            self.next_cas = 1;
        }
        cas
    }

    /// The value and cas of `key`, or `NotFound`.
    pub fn get(&self, vm_id: &str, key: &str) -> Result<(Vec<u8>, u32), Status> {
        self.maps
            .get(vm_id)
            .and_then(|m| m.get(key))
            .cloned()
            .ok_or(Status::NotFound)
    }

    /// Write `value` under `key` with the CAS rules above.
    pub fn set(&mut self, vm_id: &str, key: &str, value: &[u8], cas: u32) -> Status {
        let new_cas = self.next_cas_if_allowed(vm_id, key, cas);
        let Some(new_cas) = new_cas else {
            return Status::CasMismatch;
        };
        self.maps
            .entry(vm_id.to_string())
            .or_default()
            .insert(key.to_string(), (value.to_vec(), new_cas));
        Status::Ok
    }

    fn next_cas_if_allowed(&mut self, vm_id: &str, key: &str, cas: u32) -> Option<u32> {
        if let Some((_, current)) = self.maps.get(vm_id).and_then(|m| m.get(key)) {
            if cas != 0 && cas != *current {
                return None;
            }
        }
        Some(self.next_cas())
    }

    /// Every key of one vm_id, sorted.
    pub fn keys(&self, vm_id: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .maps
            .get(vm_id)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_rules() {
        let mut d = SharedData::default();
        assert_eq!(d.get("vm", "k"), Err(Status::NotFound));
        // A new key ignores the cas.
        assert_eq!(d.set("vm", "k", b"1", 77), Status::Ok);
        let (_, cas) = d.get("vm", "k").unwrap();
        assert_eq!(cas, 1);
        assert_eq!(d.set("vm", "k", b"2", cas), Status::Ok);
        assert_eq!(d.set("vm", "k", b"3", cas), Status::CasMismatch);
        assert_eq!(d.set("vm", "k", b"4", 0), Status::Ok);
        assert_eq!(d.get("vm", "k").unwrap(), (b"4".to_vec(), 3));
        // Maps are per vm_id.
        assert_eq!(d.get("other", "k"), Err(Status::NotFound));
    }
}
