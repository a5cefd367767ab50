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

    pub(crate) fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = render_path(err.path());
        let inner = err.into_inner();
        let mut message = inner.to_string();
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

fn render_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
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
