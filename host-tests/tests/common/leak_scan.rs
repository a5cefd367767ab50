//! Scanning every output channel of the host for sensitive values.
//!
//! A guardrail that redacts a card number in the response but writes it into
//! a log line, a metric name or an alert body has moved the leak, not
//! stopped it. [`Outputs`] gathers, as text, everything that leaves the
//! filter other than the traffic itself — log lines, audit events (their
//! decoded string values too, so JSON escaping cannot hide a value), metric
//! names, shared-data keys and values, outgoing HTTP calls (headers and
//! bodies) — plus whatever a test adds with [`Outputs::add`] (local-reply
//! bodies today; alerts and the status endpoint when they exist: one line
//! each). [`Outputs::leaks`] then looks for every planted value in every
//! channel, as written, lower-cased and with separators removed, so a card
//! logged as `4111111111111111` or an IBAN logged in lower case is still
//! caught.

use rheostat_host::SharedHandle;
use serde_json::Value;

/// A value that must never leave the filter raw.
#[derive(Debug, Clone)]
pub struct Secret {
    /// What it is, for the failure message.
    pub name: &'static str,
    /// The value as planted in the traffic.
    pub raw: &'static str,
}

/// One place a planted value was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub secret: &'static str,
    /// The form that matched (`raw`, `lower-case`, `no separators`).
    pub form: &'static str,
    pub channel: String,
    /// The text around the match.
    pub excerpt: String,
}

/// Everything the filter let out besides the traffic, channel by channel.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    entries: Vec<(String, String)>,
}

/// Characters people and programs put between the groups of a value.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '.' | '_' | '/' | '\u{200b}')
}

fn compact(text: &str) -> String {
    text.chars()
        .filter(|c| !is_separator(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every string leaf (and object key) of a JSON value, one per line.
fn strings_of(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push_str(k);
                out.push('\n');
                strings_of(v, out);
            }
        }
        _ => {}
    }
}

impl Outputs {
    /// Every channel of the host as it stands: all log lines (every worker,
    /// the canary VM included), the audit events' decoded strings, metric
    /// names and values, shared-data keys and values, and HTTP calls.
    pub fn of_host(shared: &SharedHandle) -> Outputs {
        let mut outputs = Outputs::default();
        for line in shared.logs() {
            outputs.add(format!("log line (worker {})", line.worker), &line.message);
            if let Some(event) = line.event() {
                let mut strings = String::new();
                strings_of(&event, &mut strings);
                outputs.add(format!("audit event {}", event["event"]), strings);
            }
        }
        for (name, value) in shared.metrics() {
            outputs.add("metric", format!("{name} {value}"));
        }
        for key in shared.shared_data_keys() {
            outputs.add("shared-data key", &key);
            if let Some((value, _)) = shared.shared_data_get(&key) {
                outputs.add(
                    format!("shared-data value of {key}"),
                    String::from_utf8_lossy(&value),
                );
            }
        }
        for call in shared.http_calls() {
            let headers: Vec<String> = call
                .headers
                .iter()
                .chain(&call.trailers)
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let channel = format!("http call to {}", call.cluster);
            outputs.add(format!("{channel} (headers)"), headers.join("\n"));
            outputs.add(format!("{channel} (body)"), call.body_text());
        }
        outputs
    }

    /// One more channel's text (a local reply, an alert, a status page...).
    pub fn add(&mut self, channel: impl Into<String>, text: impl AsRef<str>) {
        self.entries
            .push((channel.into(), text.as_ref().to_string()));
    }

    /// How many channel entries were gathered (a scan of nothing proves nothing).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every place any secret appears, in any of its forms.
    pub fn leaks(&self, secrets: &[Secret]) -> Vec<Leak> {
        let mut found = Vec::new();
        for (channel, text) in &self.entries {
            let lower = text.to_lowercase();
            let compacted = compact(text);
            for secret in secrets {
                let forms = [
                    ("raw", text.as_str(), secret.raw.to_string()),
                    ("lower-case", lower.as_str(), secret.raw.to_lowercase()),
                    ("no separators", compacted.as_str(), compact(secret.raw)),
                ];
                for (form, haystack, needle) in forms {
                    if needle.is_empty() {
                        continue;
                    }
                    if let Some(at) = haystack.find(&needle) {
                        let mut from = at.saturating_sub(40);
                        while !haystack.is_char_boundary(from) {
                            from -= 1;
                        }
                        let mut to = (at + needle.len() + 40).min(haystack.len());
                        while !haystack.is_char_boundary(to) {
                            to += 1;
                        }
                        found.push(Leak {
                            secret: secret.name,
                            form,
                            channel: channel.clone(),
                            excerpt: haystack[from..to].to_string(),
                        });
                        break;
                    }
                }
            }
        }
        found
    }
}
