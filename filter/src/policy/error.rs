//! Policy errors: one line, the JSON path first, then what is wrong and what
//! is expected, e.g. `controls.breaker.error_rate: must be in (0, 1]`.

use std::fmt;

/// A rejected policy, located by its JSON path (`a.b[2].c`; empty for the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub path: String,
    pub message: String,
}

impl PolicyError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A serde error on `text`, located by the JSON path at the position
    /// serde_json reports (see [`path_at`]).
    pub(crate) fn from_serde(text: &str, err: serde_json::Error) -> Self {
        let path = if err.is_data() {
            path_at(text, byte_offset(text, err.line(), err.column()))
        } else {
            String::new()
        };
        let mut message = err.to_string();
        // serde_json appends " at line L column C" for data errors; keep the
        // location only where there is no path to point at (syntax errors).
        if !path.is_empty() {
            if let Some(cut) = message.rfind(" at line ") {
                message.truncate(cut);
            }
        }
        PolicyError { path, message }
    }

    /// Prefixes the path, for errors found in a nested part of the policy.
    pub fn within(mut self, parent: &str) -> Self {
        self.path = if self.path.is_empty() {
            parent.to_string()
        } else if self.path.starts_with('[') {
            format!("{parent}{}", self.path)
        } else {
            format!("{parent}.{}", self.path)
        };
        self
    }
}

/// The byte offset of serde_json's 1-based line and column (a column counts
/// bytes; 0 is the end of the previous line).
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    (line_start + column).min(text.len())
}

/// The JSON path (`a.b[2].c`) of the value being read at byte `offset` of
/// `text`: serde_json stops there when a data error occurs. Walking the text
/// once on the error path costs nothing in the steady state, where a path
/// tracking deserializer (serde_path_to_error) doubles every derive's code
/// in the module.
fn path_at(text: &str, offset: usize) -> String {
    enum Frame {
        Object(Option<String>),
        Array(usize),
    }
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    // A string just read in an object, before its colon: the next key.
    let mut pending_key: Option<String> = None;
    let mut i = 0;
    while i < offset.min(bytes.len()) {
        match bytes[i] {
            b'{' => {
                stack.push(Frame::Object(None));
                pending_key = None;
            }
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array(index)) => *index += 1,
                Some(Frame::Object(key)) => *key = None,
                None => {}
            },
            b':' => {
                if let Some(Frame::Object(key)) = stack.last_mut() {
                    *key = pending_key.take();
                }
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let raw = text.get(start..i.min(text.len())).unwrap_or("");
                if matches!(stack.last(), Some(Frame::Object(None))) {
                    pending_key = Some(
                        serde_json::from_str(&format!("\"{raw}\""))
                            .unwrap_or_else(|_| raw.to_string()),
                    );
                }
            }
            _ => {}
        }
        i += 1;
    }
    // An error right after a key (an unknown field) belongs to that key.
    if let (Some(key), Some(Frame::Object(slot @ None))) = (pending_key, stack.last_mut()) {
        *slot = Some(key);
    }
    let mut out = String::new();
    for frame in &stack {
        match frame {
            Frame::Array(index) => out.push_str(&format!("[{index}]")),
            Frame::Object(Some(key)) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Frame::Object(None) => {}
        }
    }
    out
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for PolicyError {}
