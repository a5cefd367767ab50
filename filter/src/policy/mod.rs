//! The operator's configuration: parsed from JSON, validated with errors that
//! name the JSON path, and immutable once built. A new configuration replaces
//! the old one whole; a rejected one never half-applies.

mod controls;
mod detection;
mod error;
mod types;

pub use controls::*;
pub use detection::*;
pub use error::PolicyError;
pub use types::*;

use serde::Deserialize;

impl Policy {
    /// Parses and validates a policy. Unknown fields are errors (a typo must
    /// not silently disable a control); every error names its JSON path.
    pub fn from_json(bytes: &[u8]) -> Result<Policy, PolicyError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| PolicyError::new("", format!("policy is not valid UTF-8 ({e})")))?;
        // serde would also accept a JSON array for a struct; a policy is an object.
        if !text.trim_start().starts_with('{') {
            return Err(PolicyError::new(
                "",
                "policy must be a JSON object ({ ... })",
            ));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let policy = Policy::deserialize(&mut de).map_err(|e| PolicyError::from_serde(text, e))?;
        de.end().map_err(|e| {
            PolicyError::new(
                "",
                format!("trailing characters after the policy object ({e})"),
            )
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// One line describing the policy, for `rheostat check` and startup logs.
    pub fn summary(&self) -> String {
        let header = |h: &Option<String>| h.clone().unwrap_or_else(|| "-".into());
        format!(
            "policy {:?}: window {}s, tick {}ms, tenant from {}, region from {}",
            self.name,
            self.window_secs,
            self.tick_ms,
            header(&self.subject.tenant_header),
            header(&self.subject.region_header)
        )
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if !(1..=86_400).contains(&self.window_secs) {
            return Err(PolicyError::new(
                "window_secs",
                format!(
                    "must be between 1 and 86400 seconds (got {})",
                    self.window_secs
                ),
            ));
        }
        if !(100..=3_600_000).contains(&self.tick_ms) {
            return Err(PolicyError::new(
                "tick_ms",
                format!(
                    "must be between 100 and 3600000 milliseconds (got {})",
                    self.tick_ms
                ),
            ));
        }
        for (field, value) in [
            ("subject.tenant_header", &self.subject.tenant_header),
            ("subject.region_header", &self.subject.region_header),
            ("subject.route_header", &self.subject.route_header),
        ] {
            if let Some(name) = value {
                if !is_header_name(name) {
                    return Err(PolicyError::new(
                        field,
                        format!("{name:?} is not a lower-case HTTP header name (expected e.g. \"x-tenant-id\")"),
                    ));
                }
            }
        }
        self.validate_detection()?;
        self.controls.validate()?;
        self.alerts.validate()
    }

    fn validate_detection(&self) -> Result<(), PolicyError> {
        let known = || {
            BUILT_INS
                .iter()
                .map(|b| b.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let check_rules = |rules: &std::collections::BTreeMap<String, DetectorRule>,
                           parent: &str| {
            for name in rules.keys() {
                if built_in(name).is_none() {
                    return Err(PolicyError::new(
                        format!("{parent}.{name}"),
                        format!("unknown detector (expected one of: {})", known()),
                    ));
                }
            }
            Ok(())
        };
        check_rules(&self.detectors, "detectors")?;
        let inj = &self.injection;
        if !(inj.suspect_score > 0.0 && inj.suspect_score.is_finite()) {
            return Err(PolicyError::new(
                "injection.suspect_score",
                "must be a positive number",
            ));
        }
        if !(inj.block_score >= inj.suspect_score && inj.block_score.is_finite()) {
            return Err(PolicyError::new(
                "injection.block_score",
                format!("must be at least suspect_score ({})", inj.suspect_score),
            ));
        }
        for (i, p) in inj.phrases.iter().enumerate() {
            if p.phrase.trim().is_empty() {
                return Err(PolicyError::new(
                    format!("injection.phrases[{i}].phrase"),
                    "must not be empty",
                ));
            }
            if !(p.weight > 0.0 && p.weight.is_finite()) {
                return Err(PolicyError::new(
                    format!("injection.phrases[{i}].weight"),
                    "must be a positive number",
                ));
            }
        }
        for (i, c) in self.canaries.iter().enumerate() {
            if c.trim().len() < 8 {
                return Err(PolicyError::new(
                    format!("canaries[{i}]"),
                    "a canary must be at least 8 characters, or it will match ordinary text",
                ));
            }
        }
        for (list, terms) in &self.blocked_terms {
            for (i, t) in terms.iter().enumerate() {
                if t.trim().is_empty() {
                    return Err(PolicyError::new(
                        format!("blocked_terms.{list}[{i}]"),
                        "must not be empty",
                    ));
                }
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, p) in self.custom_patterns.iter().enumerate() {
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                return Err(PolicyError::new(
                    format!("custom_patterns[{i}].name"),
                    format!("must be a non-empty name used once (got {:?})", p.name),
                ));
            }
        }
        for (i, f) in self.facts.iter().enumerate() {
            if f.expected.is_empty() {
                return Err(PolicyError::new(
                    format!("facts[{i}].expected"),
                    "must list at least one expected value",
                ));
            }
        }
        for (i, host) in self.links.allow_hosts.iter().enumerate() {
            if host.is_empty() || host.contains('/') || host.contains(' ') {
                return Err(PolicyError::new(
                    format!("links.allow_hosts[{i}]"),
                    format!("{host:?} is not a host name (expected e.g. \"docs.example.com\")"),
                ));
            }
        }
        for (i, route) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            if !route.path_prefix.starts_with('/') {
                return Err(PolicyError::new(
                    format!("{at}.path_prefix"),
                    format!("must start with '/' (got {:?})", route.path_prefix),
                ));
            }
            if route.name.is_empty() {
                return Err(PolicyError::new(format!("{at}.name"), "must not be empty"));
            }
            check_rules(&route.detectors, &format!("{at}.detectors"))?;
        }
        let r = &self.redaction;
        if !(16..=65_536).contains(&r.max_span_bytes) {
            return Err(PolicyError::new(
                "redaction.max_span_bytes",
                "must be between 16 and 65536",
            ));
        }
        if r.max_held_bytes < 4 * r.max_span_bytes {
            return Err(PolicyError::new(
                "redaction.max_held_bytes",
                format!(
                    "must be at least 4 × max_span_bytes ({})",
                    4 * r.max_span_bytes
                ),
            ));
        }
        if self.body.max_request_bytes == 0 || self.body.max_response_bytes == 0 {
            return Err(PolicyError::new(
                "body",
                "max_request_bytes and max_response_bytes must be positive",
            ));
        }
        Ok(())
    }

    /// The route settings for a request path: the longest matching prefix.
    pub fn route_for(&self, path: &str) -> Option<&RoutePolicy> {
        self.routes
            .iter()
            .filter(|r| path.starts_with(&r.path_prefix))
            .max_by_key(|r| r.path_prefix.len())
    }
}

/// Envoy stores header names lower-cased; a policy naming `X-Tenant` would never match.
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Policy::from_json(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn empty_object_is_the_default_policy() {
        let p = Policy::from_json(b"{}").unwrap();
        assert_eq!(p.window_secs, 60);
        assert_eq!(p.subject.tenant_header.as_deref(), Some("x-tenant-id"));
    }

    #[test]
    fn out_of_range_value_names_its_path() {
        assert_eq!(
            err(r#"{"window_secs": 0}"#),
            "window_secs: must be between 1 and 86400 seconds (got 0)"
        );
    }

    #[test]
    fn unknown_field_names_its_path_and_the_expected_fields() {
        let e = err(r#"{"subject": {"tenant_hedaer": "x"}}"#);
        assert!(e.starts_with("subject.tenant_hedaer: unknown field"), "{e}");
        assert!(e.contains("tenant_header"), "{e}");
    }

    #[test]
    fn errors_deep_in_arrays_and_objects_name_their_path() {
        // Elements before the bad one, strings holding brackets and commas,
        // escaped keys and several lines must not throw the path off.
        let e = err("{\"routes\": [{\"name\": \"a, [b]\", \"path_prefix\": \"/v1/a\"},\n  {\"name\": \"b\", \"path_prefix\": \"/v1/b\", \"fail_mode\": \"sometimes\"}]}");
        assert!(
            e.starts_with("routes[1].fail_mode: unknown variant `sometimes`"),
            "{e}"
        );
        let e = err(r#"{"subject": {"tenant_\u0068eader": 7}}"#);
        assert!(
            e.starts_with("subject.tenant_header: invalid type: integer `7`"),
            "{e}"
        );
        let e = err(r#"{"custom_patterns": [{"name": "a", "pattern": "x"}, {"name": "b"}]}"#);
        assert!(
            e.starts_with("custom_patterns[1]: missing field `pattern`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_its_path() {
        let e = err(r#"{"tick_ms": "fast"}"#);
        assert!(
            e.starts_with("tick_ms: invalid type: string \"fast\", expected"),
            "{e}"
        );
    }

    #[test]
    fn upper_case_header_is_rejected() {
        let e = err(r#"{"subject": {"tenant_header": "X-Tenant"}}"#);
        assert!(
            e.starts_with("subject.tenant_header: \"X-Tenant\" is not a lower-case"),
            "{e}"
        );
    }

    #[test]
    fn syntax_error_reports_line_and_column() {
        let e = err("{\n  \"name\": \"x\",\n}");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn unknown_detector_names_the_choices() {
        let e = err(r#"{"detectors": {"emial": {"action": "block"}}}"#);
        assert!(
            e.starts_with("detectors.emial: unknown detector (expected one of: email, phone"),
            "{e}"
        );
    }

    #[test]
    fn bad_action_names_its_path() {
        let e = err(
            r#"{"routes": [{"name": "x", "path_prefix": "/x", "detectors": {"email": {"action": "nuke"}}}]}"#,
        );
        assert!(
            e.starts_with("routes[0].detectors.email.action: unknown variant `nuke`"),
            "{e}"
        );
    }

    #[test]
    fn thresholds_must_be_ordered() {
        let e = err(r#"{"injection": {"suspect_score": 3, "block_score": 2}}"#);
        assert_eq!(
            e,
            "injection.block_score: must be at least suspect_score (3)"
        );
    }

    #[test]
    fn longest_route_prefix_wins() {
        let p = Policy::from_json(
            br#"{"routes": [{"name": "all", "path_prefix": "/"}, {"name": "hiring", "path_prefix": "/v1/hiring"}]}"#,
        )
        .unwrap();
        assert_eq!(p.route_for("/v1/hiring/rank").unwrap().name, "hiring");
        assert_eq!(p.route_for("/v1/chat").unwrap().name, "all");
    }

    #[test]
    fn invalid_utf8_and_empty_input_are_errors_not_panics() {
        assert!(Policy::from_json(&[0xff, 0xfe]).is_err());
        assert!(Policy::from_json(b"  ").is_err());
        assert!(Policy::from_json(b"[]").is_err());
        assert!(Policy::from_json(b"{} {}").is_err());
    }
}
