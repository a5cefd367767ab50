//! `HeaderMap`: an ordered, multi-valued, lower-cased header map, the way
//! Envoy's `HeaderMapImpl` behaves as seen through the proxy-wasm ABI.

/// Header names are lower-cased on the way in (Envoy's `LowerCaseString`);
/// values keep their bytes; duplicates are kept in order; a single-value
/// `get` returns the first value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, String)>,
}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> HeaderMap {
        HeaderMap::default()
    }

    /// Build from pairs, lower-casing names.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.add(k.as_ref(), v.as_ref());
        }
        map
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Append a value (Envoy's `addCopy`).
    pub fn add(&mut self, name: &str, value: &str) {
        self.entries
            .push((name.to_ascii_lowercase(), value.to_string()));
    }

    /// Replace every value of `name` with one value, keeping the position of
    /// the first (Envoy's `setCopy`), or append it.
    pub fn set(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        match self.entries.iter().position(|(k, _)| *k == name) {
            Some(first) => {
                self.entries[first].1 = value.to_string();
                let mut i = 0;
                self.entries.retain(|(k, _)| {
                    let keep = i <= first || *k != name;
                    i += 1;
                    keep
                });
            }
            None => self.entries.push((name, value.to_string())),
        }
    }

    /// Remove every value of `name`.
    pub fn remove(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.entries.retain(|(k, _)| *k != name);
    }

    /// Replace the whole map (Envoy's `setHeaderMapPairs`).
    pub fn replace_all(&mut self, pairs: &[(String, String)]) {
        self.entries.clear();
        for (k, v) in pairs {
            self.add(k, v);
        }
    }

    /// All entries in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.entries
    }

    /// Number of entries (what the `num_headers` callback argument counts).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Envoy's `byteSize`: the sum of name and value lengths.
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// The entries without pseudo-headers (`:method`, `:status`, ...), with
    /// repeated names joined by `,` — the shape replay results use.
    pub fn to_plain_map(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::<String, String>::new();
        for (k, v) in &self.entries {
            if k.starts_with(':') {
                continue;
            }
            out.entry(k.clone())
                .and_modify(|existing| {
                    existing.push(',');
                    existing.push_str(v);
                })
                .or_insert_with(|| v.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_all_values_in_place() {
        let mut m = HeaderMap::from_pairs(&[("A", "1"), ("b", "2"), ("a", "3")]);
        m.set("a", "x");
        assert_eq!(
            m.pairs(),
            &[
                ("a".to_string(), "x".to_string()),
                ("b".to_string(), "2".to_string())
            ]
        );
        assert_eq!(m.get("A"), Some("x"));
    }
}
