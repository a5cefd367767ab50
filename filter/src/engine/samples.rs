//! Interning (rule, masked sample) pairs as scanner tags.
//!
//! The streaming scanner reports redactions by an opaque `u32` tag long
//! after the raw text has been released, so the masked sample must be made
//! while the detector still sees the text. The same match is seen by
//! several overlapping scan windows; interning makes those one tag.

use std::cell::RefCell;
use std::collections::HashMap;

/// Most distinct samples kept per stream; later ones share a tag per rule
/// with the sample `…` so memory stays bounded whatever the response.
pub const MAX_SAMPLES: usize = 1024;

#[derive(Debug, Default)]
pub struct Samples {
    inner: RefCell<Interned>,
}

#[derive(Debug, Default)]
struct Interned {
    entries: Vec<(u32, String)>,
    index: HashMap<(u32, String), u32>,
}

impl Samples {
    /// The tag for `rule` with `sample`.
    pub fn tag(&self, rule: u32, sample: String) -> u32 {
        let mut inner = self.inner.borrow_mut();
        let sample = if inner.entries.len() >= MAX_SAMPLES {
            "…".to_string()
        } else {
            sample
        };
        if let Some(tag) = inner.index.get(&(rule, sample.clone())) {
            return *tag;
        }
        let tag = inner.entries.len() as u32;
        inner.entries.push((rule, sample.clone()));
        inner.index.insert((rule, sample), tag);
        tag
    }

    /// The rule and sample behind a tag.
    pub fn get(&self, tag: u32) -> Option<(u32, String)> {
        self.inner.borrow().entries.get(tag as usize).cloned()
    }

    pub fn rule_of(&self, tag: u32) -> Option<u32> {
        self.inner
            .borrow()
            .entries
            .get(tag as usize)
            .map(|(r, _)| *r)
    }
}
