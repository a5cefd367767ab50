//! Scopes: the global scope and one per route, tenant, region and model a
//! request belongs to. Counters, breakers and baselines are keyed by scope.
//!
//! Shared data has no delete, so the set of keys must be bounded even though
//! tenants and models come from traffic. Each kind keeps a registry (one
//! shared key listing the values seen, in order): a value's index is its
//! position, at most `max_scopes_per_kind`; later values share the index
//! `cap`, reported as `(other)`. Indices never change once given, so a VM
//! may cache them.

use crate::audit::Subject;
use crate::ledger::{update_shared, SharedStore};
use crate::policy::ScopeKind;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

/// Stands for every value beyond the registry's cap.
pub const OTHER: &str = "(other)";

/// One scope: its kind and its index in that kind's registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub kind: ScopeKind,
    pub index: u32,
    /// The value (`acme`, `chat`, `gpt-4o`; empty for global).
    pub value: String,
}

impl Scope {
    pub fn global() -> Scope {
        Scope {
            kind: ScopeKind::Global,
            index: 0,
            value: String::new(),
        }
    }

    /// The part of shared-data keys naming this scope: `global`, `tenant/3`.
    pub fn key(&self) -> String {
        match self.kind {
            ScopeKind::Global => "global".into(),
            kind => format!("{}/{}", kind.name(), self.index),
        }
    }

    /// For people: `global`, `tenant=acme`.
    pub fn label(&self) -> String {
        match self.kind {
            ScopeKind::Global => "global".into(),
            kind => format!("{}={}", kind.name(), self.value),
        }
    }
}

fn list_key(name: &str) -> String {
    format!("rheostat/reg/{name}")
}

/// The inventory list of tool names (not a scope: nothing is keyed by tool).
pub const TOOLS: &str = "tool";

/// Reads and extends the per-kind registries, caching what this VM learnt.
#[derive(Debug, Default)]
pub struct Registry {
    cap: u32,
    cache: RefCell<HashMap<(&'static str, String), u32>>,
}

impl Registry {
    pub fn new(cap: u32) -> Registry {
        Registry {
            cap,
            cache: RefCell::default(),
        }
    }

    pub fn cap(&self) -> u32 {
        self.cap
    }

    /// Creates the lists before workers race to extend them: the store
    /// ignores the cas of a new key, so two first registrations could
    /// otherwise both write and one value would lose its index.
    pub fn ensure_lists(&self, store: &dyn SharedStore) {
        for kind in ScopeKind::ALL
            .into_iter()
            .filter(|k| *k != ScopeKind::Global)
        {
            crate::lease::ensure(store, &list_key(kind.name()));
        }
        crate::lease::ensure(store, &list_key(TOOLS));
    }

    /// The scope of `value` in `kind`, registering it if new. An empty value
    /// has no scope. A store failure gives the shared `(other)` scope rather
    /// than an error: counting somewhere beats dropping the request.
    pub fn scope(&self, store: &dyn SharedStore, kind: ScopeKind, value: &str) -> Option<Scope> {
        if kind == ScopeKind::Global {
            return Some(Scope::global());
        }
        if value.is_empty() {
            return None;
        }
        let value = registrable(value);
        let index = self.index_of_registrable(store, kind.name(), &value);
        let value = if index >= self.cap {
            OTHER.to_string()
        } else {
            value.into_owned()
        };
        Some(Scope {
            kind,
            index: index.min(self.cap),
            value,
        })
    }

    /// The index of `value` in the list `name` (a scope kind or [`TOOLS`]),
    /// registering it if new; `cap` when the list is full.
    pub fn index(&self, store: &dyn SharedStore, name: &'static str, value: &str) -> u32 {
        self.index_of_registrable(store, name, &registrable(value))
    }

    /// [`Registry::index`] of a value already made [`registrable`].
    fn index_of_registrable(
        &self,
        store: &dyn SharedStore,
        name: &'static str,
        value: &str,
    ) -> u32 {
        let cached = self.cache.borrow().get(&(name, value.to_string())).copied();
        if let Some(index) = cached {
            return index;
        }
        let index = self.register(store, name, value);
        self.cache
            .borrow_mut()
            .insert((name, value.to_string()), index);
        index
    }

    fn register(&self, store: &dyn SharedStore, name: &str, value: &str) -> u32 {
        let mut index = self.cap;
        let result = update_shared(store, &list_key(name), |current| {
            let names = decode_names(current.unwrap_or_default());
            if let Some(at) = names.iter().position(|n| n == value) {
                index = at as u32;
                return None;
            }
            if names.len() as u32 >= self.cap {
                index = self.cap;
                return None;
            }
            index = names.len() as u32;
            let mut out = current.unwrap_or_default().to_vec();
            if !out.is_empty() {
                out.push(b'\n');
            }
            out.extend(value.as_bytes());
            Some(out)
        });
        if result.is_err() {
            return self.cap;
        }
        index
    }

    /// Every registered value of `kind`, by index.
    pub fn values(&self, store: &dyn SharedStore, kind: ScopeKind) -> Vec<String> {
        self.list(store, kind.name())
    }

    /// Every value of the list `name`, by index.
    pub fn list(&self, store: &dyn SharedStore, name: &str) -> Vec<String> {
        store
            .get(&list_key(name))
            .map(|(v, _)| decode_names(&v))
            .unwrap_or_default()
    }

    /// Every scope of `kind` with a registered value, plus `(other)` once the cap is reached.
    pub fn scopes(&self, store: &dyn SharedStore, kind: ScopeKind) -> Vec<Scope> {
        if kind == ScopeKind::Global {
            return vec![Scope::global()];
        }
        let values = self.values(store, kind);
        let full = values.len() as u32 >= self.cap;
        let mut out: Vec<Scope> = values
            .into_iter()
            .take(self.cap as usize)
            .enumerate()
            .map(|(i, value)| Scope {
                kind,
                index: i as u32,
                value,
            })
            .collect();
        if full {
            out.push(Scope {
                kind,
                index: self.cap,
                value: OTHER.into(),
            });
        }
        out
    }

    /// Every scope index a kind can ever use, for creating keys up front.
    pub fn all_indices(&self, kind: ScopeKind) -> std::ops::RangeInclusive<u32> {
        if kind == ScopeKind::Global {
            0..=0
        } else {
            0..=self.cap
        }
    }

    /// The scopes of a request: global, then each kind with a value.
    pub fn scopes_of(&self, store: &dyn SharedStore, subject: &Subject) -> Vec<Scope> {
        let mut out = vec![Scope::global()];
        for (kind, value) in [
            (ScopeKind::Route, &subject.route),
            (ScopeKind::Tenant, &subject.tenant),
            (ScopeKind::Region, &subject.region),
            (ScopeKind::Model, &subject.model),
        ] {
            out.extend(self.scope(store, kind, value));
        }
        out
    }
}

/// A value as the newline-separated lists store it. Headers cannot hold a
/// newline but a model name from a request body can; the request's scope
/// must carry the same value the list gives back, or a response id would
/// not round-trip and every worker would register the value again.
fn registrable(value: &str) -> Cow<'_, str> {
    if value.contains('\n') {
        Cow::Owned(value.replace('\n', " "))
    } else {
        Cow::Borrowed(value)
    }
}

fn decode_names(bytes: &[u8]) -> Vec<String> {
    if bytes.is_empty() {
        return Vec::new();
    }
    String::from_utf8_lossy(bytes)
        .split('\n')
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryStore;

    #[test]
    fn a_value_with_a_newline_is_one_entry_for_every_worker() {
        let store = MemoryStore::default();
        let model = "gpt-4o\nmini";
        let workers = [Registry::new(8), Registry::new(8)];
        let scopes: Vec<Scope> = workers
            .iter()
            .map(|r| r.scope(&store, ScopeKind::Model, model).unwrap())
            .collect();
        assert_eq!(scopes[0], scopes[1]);
        assert_eq!(scopes[0].value, "gpt-4o mini");
        assert_eq!(
            workers[0].values(&store, ScopeKind::Model),
            vec!["gpt-4o mini".to_string()]
        );
    }

    #[test]
    fn values_get_stable_indices_in_order_of_arrival() {
        let store = MemoryStore::default();
        let r = Registry::new(4);
        assert_eq!(r.scope(&store, ScopeKind::Tenant, "acme").unwrap().index, 0);
        assert_eq!(
            r.scope(&store, ScopeKind::Tenant, "globex").unwrap().index,
            1
        );
        let other_vm = Registry::new(4);
        assert_eq!(
            other_vm
                .scope(&store, ScopeKind::Tenant, "globex")
                .unwrap()
                .index,
            1
        );
        assert_eq!(
            other_vm
                .scope(&store, ScopeKind::Model, "globex")
                .unwrap()
                .index,
            0
        );
        assert!(r.scope(&store, ScopeKind::Tenant, "").is_none());
    }

    #[test]
    fn values_beyond_the_cap_share_the_other_scope() {
        let store = MemoryStore::default();
        let r = Registry::new(2);
        for t in ["a", "b", "c", "d"] {
            r.scope(&store, ScopeKind::Tenant, t);
        }
        let c = r.scope(&store, ScopeKind::Tenant, "c").unwrap();
        assert_eq!((c.index, c.value.as_str()), (2, OTHER));
        assert_eq!(r.values(&store, ScopeKind::Tenant), ["a", "b"]);
        assert_eq!(r.scopes(&store, ScopeKind::Tenant).len(), 3);
    }

    #[test]
    fn racing_registrations_agree_on_every_index() {
        let store = MemoryStore::default();
        Registry::new(64).ensure_lists(&store);
        let seen = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for w in 0..4 {
                let (store, seen) = (&store, &seen);
                s.spawn(move || {
                    let r = Registry::new(64);
                    for i in 0..20 {
                        let name = format!("t{}", (i + w * 5) % 20);
                        let index = r.scope(store, ScopeKind::Tenant, &name).unwrap().index;
                        seen.lock().unwrap().push((name, index));
                    }
                });
            }
        });
        let names = Registry::new(64).values(&store, ScopeKind::Tenant);
        assert_eq!(names.len(), 20);
        for (name, index) in seen.into_inner().unwrap() {
            assert_eq!(names[index as usize], name);
        }
    }
}
