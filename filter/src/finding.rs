//! What a detector reports, and the words every layer uses to talk about it:
//! category, severity, action. Raw matched values never leave this module
//! unmasked: a [`Finding`] carries only a masked sample.

use serde::{Deserialize, Serialize};

/// The playbook's four kinds of harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Security,
    Safety,
    Reliability,
    Privacy,
}

/// P0 is the most severe. Ordering follows urgency: `P0 < P1` means P0 is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Severity {
    P0,
    P1,
    P2,
    P3,
}

/// What the engine does about a finding, in increasing order of force.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    #[default]
    Flag,
    Redact,
    Block,
}

/// A raw match from a detector: which detector, and the byte span in the
/// scanned text. Policy turns it into a [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Match {
    pub detector: DetectorKind,
    pub start: usize,
    pub end: usize,
}

/// Every built-in detector. User-defined patterns and lists are named in the
/// policy and carry their index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DetectorKind {
    // privacy
    Email,
    Phone,
    Card,
    Ssn,
    Iban,
    Ipv4,
    Ipv6,
    // secrets
    AwsAccessKey,
    GithubToken,
    SlackToken,
    OpenAiKey,
    AnthropicKey,
    StripeKey,
    GoogleApiKey,
    PrivateKey,
    Jwt,
    SecretAssignment,
    // user-defined (index into the policy's list)
    Custom(u16),
    BlockedTerm(u16),
    Canary(u16),
    Fact(u16),
    // scored or whole-text detectors
    Injection,
    Topic(u16),
    Refusal,
    PromptLeak,
    Sql,
    MarkdownExfil,
    Link,
    Format,
}

/// A finding as reported in audit events and replay results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub detector: String,
    pub category: Category,
    pub severity: Severity,
    pub action: Action,
    /// Byte span in the text it was found in (request prompt or response text).
    pub start: usize,
    pub end: usize,
    /// A masked sample such as `j***@e***.com`; never the raw value.
    pub sample: String,
}
