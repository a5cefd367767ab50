//! The baseline: how gateways typically scan — one regular expression per
//! pattern, each run over the whole text. Uses the full `regex` crate (a
//! fast, DFA-based engine: a strong baseline, faster than the backtracking
//! engines most gateways embed). It is a dependency of the host only; the
//! filter never links it.

use regex::Regex;

/// One pattern per detector the default policy runs on responses, plus
/// the usual prompt-injection phrase list (which gateways typically scan on
/// both sides).
pub const PATTERNS: &[(&str, &str)] = &[
    ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    (
        "phone",
        r"(?:\+?\d{1,3}[\s.-]?)?\(?\d{2,4}\)?[\s.-]?\d{3,4}[\s.-]?\d{3,4}\b",
    ),
    ("card", r"\b(?:\d[ -]?){13,19}\b"),
    ("ssn", r"\b\d{3}-\d{2}-\d{4}\b"),
    (
        "iban",
        r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b",
    ),
    (
        "ipv4",
        r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b",
    ),
    (
        "ipv6",
        r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|\b(?:[0-9A-Fa-f]{1,4}:){1,7}:(?:[0-9A-Fa-f]{1,4}:?){0,6}",
    ),
    ("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
    ),
    ("slack_token", r"\bxox[abprse]-[A-Za-z0-9-]{10,}"),
    (
        "openai_key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
    ),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    (
        "stripe_key",
        r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}",
    ),
    ("google_api_key", r"\bAIza[A-Za-z0-9_-]{35}"),
    (
        "private_key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]{0,8192}?-----END [A-Z ]*PRIVATE KEY-----",
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
    ),
    (
        "secret_assignment",
        r#"(?i)\b(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key)\s*[:=]\s*["']?[^\s"']{8,}"#,
    ),
    (
        "injection_ignore",
        r"(?i)\b(?:ignore|disregard|forget)\s+(?:all\s+)?(?:the\s+|your\s+)?(?:previous|prior|above|earlier)\s+(?:instructions|rules|prompts?)",
    ),
    (
        "injection_reveal",
        r"(?i)\b(?:reveal|print|repeat|show)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+prompt|instructions|initial\s+prompt)",
    ),
    (
        "injection_persona",
        r"(?i)\byou\s+are\s+now\s+(?:DAN|in\s+developer\s+mode|an?\s+unrestricted)",
    ),
    ("injection_dan", r"(?i)\bdo\s+anything\s+now\b"),
    (
        "injection_devmode",
        r"(?i)\bdeveloper\s+mode\s+(?:enabled|on)\b",
    ),
    (
        "injection_pretend",
        r"(?i)\bpretend\s+(?:you\s+are|to\s+be)\s+(?:an?\s+)?(?:AI|assistant|model)\s+without",
    ),
    (
        "injection_new",
        r"(?i)\bnew\s+(?:instructions|rules|system\s+prompt)\s*:",
    ),
    (
        "injection_above",
        r"(?i)\brepeat\s+the\s+(?:words|text)\s+above\b",
    ),
    (
        "injection_norules",
        r"(?i)\bwithout\s+(?:any\s+)?(?:restrictions|filters|guidelines|rules)\b",
    ),
    ("injection_jailbreak", r"(?i)\bjailbreak(?:ing|ed)?\b"),
];

/// The compiled patterns.
pub struct Baseline {
    patterns: Vec<Regex>,
}

impl Baseline {
    /// Compiles every pattern (they are all valid; a failure is a bug here).
    pub fn new() -> anyhow::Result<Baseline> {
        let patterns = PATTERNS
            .iter()
            .map(|(name, p)| {
                Regex::new(p).map_err(|e| anyhow::anyhow!("baseline pattern {name}: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Baseline { patterns })
    }

    /// How many patterns there are.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Runs every pattern over `text`, one after another; returns the matches.
    pub fn scan(&self, text: &str) -> usize {
        self.patterns
            .iter()
            .map(|re| re.find_iter(text).count())
            .sum()
    }
}
