//! Synthetic traffic: a seeded generator picks each request's template,
//! texts and subject, and writes the provider bodies (OpenAI chat, JSON or
//! SSE) that the host plays to the filter. Same seed, same drill, same bytes.

use super::spec::Template;
use serde_json::{json, Value};

pub use crate::rng::Rng;

/// A drill's generator: its own salt, so a drill and a benchmark with the
/// same seed do not replay the same stream.
pub fn rng(seed: u64) -> Rng {
    Rng::salted(seed, 0x5eed_d1e1_1000_0001)
}

const FIRST: [&str; 16] = [
    "Maria",
    "James",
    "Aiko",
    "Oluwaseun",
    "Priya",
    "Lukas",
    "Sofia",
    "Mateo",
    "Chen",
    "Fatima",
    "Noah",
    "Ingrid",
    "Rahul",
    "Elena",
    "Kwame",
    "Hannah",
];
const LAST: [&str; 16] = [
    "Garcia", "Okafor", "Tanaka", "Novak", "Patel", "Schmidt", "Rossi", "Silva", "Wang", "Haddad",
    "Murphy", "Berg", "Kumar", "Popescu", "Mensah", "Cohen",
];
const MAIL_DOMAINS: [&str; 5] = [
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "proton.me",
    "fastmail.fm",
];

/// The choices made for one request.
#[derive(Debug, Clone)]
pub struct Pick {
    pub tenant: String,
    pub region: String,
    pub model: String,
    pub prompt: String,
    /// Index into the answer list, so a degraded model answers "the same" question.
    pub answer_index: usize,
    first: &'static str,
    last: &'static str,
    mail_domain: &'static str,
    n: u64,
}

impl Pick {
    pub fn new(rng: &mut Rng, t: &Template) -> Pick {
        let mut pick = Pick {
            tenant: rng.choose(&t.tenants).cloned().unwrap_or_default(),
            region: rng.choose(&t.regions).cloned().unwrap_or_default(),
            model: rng.choose(&t.models).cloned().unwrap_or_default(),
            prompt: String::new(),
            answer_index: rng.below(t.answers.len().max(1)),
            first: FIRST[rng.below(FIRST.len())],
            last: LAST[rng.below(LAST.len())],
            mail_domain: MAIL_DOMAINS[rng.below(MAIL_DOMAINS.len())],
            n: 1000 + rng.next_u64() % 9000,
        };
        let prompt = rng.choose(&t.prompts).cloned().unwrap_or_default();
        pick.prompt = pick.fill(&prompt);
        pick
    }

    /// Fills `{first}`, `{last}`, `{email}`, `{n}`, `{order}`, `{tenant}`, `{model}`.
    pub fn fill(&self, text: &str) -> String {
        if !text.contains('{') {
            return text.to_string();
        }
        let email = format!(
            "{}.{}@{}",
            self.first.to_ascii_lowercase(),
            self.last.to_ascii_lowercase(),
            self.mail_domain
        );
        text.replace("{first}", self.first)
            .replace("{last}", self.last)
            .replace("{email}", &email)
            .replace("{n}", &self.n.to_string())
            .replace("{order}", &format!("A-{}{}", self.n, self.n % 97))
            .replace("{tenant}", &self.tenant)
            .replace("{model}", &self.model)
    }

    /// The answer the upstream gives when the request reaches it with `model`.
    pub fn answer(&self, t: &Template, model: &str) -> Option<String> {
        let list = t.answers_by_model.get(model).unwrap_or(&t.answers);
        if list.is_empty() {
            return None;
        }
        Some(self.fill(&list[self.answer_index % list.len()]))
    }
}

/// The request body the client sends.
pub fn request_body(t: &Template, pick: &Pick) -> Vec<u8> {
    if let Some(raw) = &t.request_body_text {
        return pick.fill(raw).into_bytes();
    }
    let mut messages = Vec::new();
    if let Some(system) = &t.system {
        messages.push(json!({"role": "system", "content": pick.fill(system)}));
    }
    messages.push(json!({"role": "user", "content": pick.prompt}));
    let mut body = json!({"model": pick.model, "messages": messages});
    if t.stream {
        body["stream"] = json!(true);
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The upstream's answer: content type and body (OpenAI chat completion,
/// or SSE chunks of a few words each when the client streams).
pub fn response(
    answer: Option<&str>,
    model: &str,
    stream: bool,
    seq: u64,
) -> (&'static str, Vec<u8>) {
    let Some(answer) = answer else {
        let body = json!({"error": {"message": "The upstream model is unavailable.", "type": "server_error"}});
        return (
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        );
    };
    let id = format!("chatcmpl-drill{seq:06}");
    let tokens = answer.split_whitespace().count();
    if !stream {
        let body = json!({
            "id": id, "object": "chat.completion", "created": 1767225600, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": tokens, "total_tokens": 40 + tokens}
        });
        return (
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        );
    }
    let mut out = String::new();
    let frame = |delta: Value, finish: Value| -> String {
        let chunk = json!({"id": id, "object": "chat.completion.chunk", "created": 1767225600, "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {chunk}\n\n")
    };
    out.push_str(&frame(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ));
    // A few words per frame, as models stream tokens.
    let words: Vec<&str> = answer.split_inclusive(' ').collect();
    for piece in words.chunks(4) {
        out.push_str(&frame(json!({"content": piece.concat()}), Value::Null));
    }
    out.push_str(&frame(json!({}), json!("stop")));
    out.push_str("data: [DONE]\n\n");
    ("text/event-stream", out.into_bytes())
}

/// The model named in a forwarded request body (after any degrade rewrite).
pub fn forwarded_model(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("model")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_weighted() {
        let mut a = rng(7);
        let mut b = rng(7);
        assert_eq!(
            (0..10).map(|_| a.next_u64()).collect::<Vec<_>>(),
            (0..10).map(|_| b.next_u64()).collect::<Vec<_>>()
        );
        let weights: std::collections::BTreeMap<String, f64> =
            [("a".to_string(), 9.0), ("b".to_string(), 1.0)].into();
        let mut rng = rng(1);
        let b_count = (0..10_000)
            .filter(|_| rng.weighted(&weights) == Some("b"))
            .count();
        assert!((800..1200).contains(&b_count), "{b_count}");
    }

    #[test]
    fn streamed_answers_reassemble_to_the_text() {
        let (ct, body) = response(Some("one two three four five six"), "m", true, 1);
        assert_eq!(ct, "text/event-stream");
        let text = String::from_utf8(body).unwrap();
        let mut got = String::new();
        for line in text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|l| *l != "[DONE]")
        {
            let v: Value = serde_json::from_str(line).unwrap();
            got.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
        }
        assert_eq!(got, "one two three four five six");
    }
}
