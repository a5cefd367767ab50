//! The engine: a compiled policy that inspects requests and responses and
//! returns decisions as data. It knows nothing of Envoy or workers; the
//! proxy-wasm and edge adapters act on what it returns.
//!
//! Compilation happens once per configuration (automata, regexes, rule
//! profiles per route); inspecting is then lookups and scans.

mod request;
mod response;
mod rules;
mod samples;
mod spans;

pub use request::{RequestContext, RequestOutcome, RequestVerdict};
pub use response::{BodyVerdict, FindingSource, ResponseMode, ResponseScanner};
pub use rules::{kind_name, Profile, Rule};

use crate::detect::custom::{CustomSet, CustomSpec};
use crate::finding::DetectorKind;
use crate::format::Schema;
use crate::grounding::{FactChecker, FactSpec};
use crate::injection::InjectionScorer;
use crate::links::{HostAllowList, LinkPolicy};
use crate::literals::{blocked_terms_family, LiteralFamily, LiteralSet};
use crate::policy::{Policy, PolicyError};
use crate::refusal::RefusalDetector;
use crate::topics::TopicSet;
use spans::SideOf;

/// A policy compiled for the data path. Immutable; replaced whole on reconfigure.
pub struct Engine {
    policy: Policy,
    profiles: Vec<Profile>,
    custom: CustomSet,
    /// The literal families prompts are scanned for (injection phrases,
    /// blocked terms, canaries) in one automaton: one pass per text.
    request_literals: LiteralSet,
    /// The same for answers (refusal and topic phrases, blocked terms,
    /// canaries): much smaller than the prompts' set without the injection
    /// phrases, so it is compiled as a DFA (see [`crate::literals`]).
    response_literals: LiteralSet,
    injection: InjectionScorer,
    topics: TopicSet,
    refusal: RefusalDetector,
    links: LinkPolicy,
    facts: Option<FactChecker>,
    /// Per profile: the compiled JSON schema its route requires, if any.
    schemas: Vec<Option<Schema>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policy", &self.policy.name)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Parses, validates and compiles a policy; the single entry point used
    /// by the filter's `on_configure`, the edge `Guard` and `rheostat check`.
    pub fn from_json(bytes: &[u8]) -> Result<Engine, PolicyError> {
        Engine::compile(Policy::from_json(bytes)?)
    }

    /// Compiles a validated policy. Errors name the JSON path (a regex that
    /// does not compile, a pattern with no usable prefilter, …).
    pub fn compile(policy: Policy) -> Result<Engine, PolicyError> {
        let specs: Vec<CustomSpec> = policy
            .custom_patterns
            .iter()
            .map(|p| CustomSpec {
                name: p.name.clone(),
                pattern: p.pattern.clone(),
                prefilter: p.prefilter.clone(),
                max_span: p.max_span,
            })
            .collect();
        let custom = CustomSet::compile(&specs).map_err(|e| {
            let rendered = e.to_string();
            // CustomError renders "[i].field: message"; hang it under our path.
            match rendered.split_once(": ") {
                Some((at, message)) => PolicyError::new(format!("custom_patterns{at}"), message),
                None => PolicyError::new("custom_patterns", rendered),
            }
        })?;
        let extra: Vec<(String, f32)> = policy
            .injection
            .phrases
            .iter()
            .map(|p| (p.phrase.clone(), p.weight))
            .collect();
        let injection = InjectionScorer::new(
            &extra,
            policy.injection.suspect_score,
            policy.injection.block_score,
        )
        .map_err(|e| PolicyError::new("injection.phrases", e))?;
        let topics = TopicSet::with_defaults();
        let refusal = RefusalDetector::with_defaults();
        let allow = HostAllowList::new(&policy.links.allow_hosts)
            .map_err(|e| PolicyError::new("links.allow_hosts", e))?;
        let links = LinkPolicy {
            allow,
            flag_off_allow_list: true,
        };
        let facts = if policy.facts.is_empty() {
            None
        } else {
            let specs: Vec<FactSpec> = policy
                .facts
                .iter()
                .map(|f| FactSpec {
                    name: f.name.clone(),
                    pattern: f.pattern.clone(),
                    expected: f.expected.clone(),
                    prefilter: f.prefilter.clone(),
                })
                .collect();
            Some(FactChecker::new(&specs).map_err(|e| PolicyError::new("facts", e))?)
        };
        let mut schemas = vec![None];
        for (i, route) in policy.routes.iter().enumerate() {
            let schema = match &route.json_schema {
                Some(value) => Some(Schema::compile(value).map_err(|e| {
                    PolicyError::new(
                        format!("routes[{i}].json_schema{}", e.path.replace('/', ".")),
                        e.message,
                    )
                })?),
                None => None,
            };
            schemas.push(schema);
        }
        let topic_names: Vec<String> = topics.topics().iter().map(|t| t.name.clone()).collect();
        let names: Vec<&str> = topic_names.iter().map(String::as_str).collect();
        for (i, route) in policy.routes.iter().enumerate() {
            for (j, topic) in route.topics.iter().enumerate() {
                if !names.contains(&topic.as_str()) {
                    return Err(PolicyError::new(
                        format!("routes[{i}].topics[{j}]"),
                        format!(
                            "unknown topic {topic:?} (expected one of: {})",
                            names.join(", ")
                        ),
                    ));
                }
            }
        }
        let mut profiles = vec![rules::build_profile(&policy, None, &names)];
        for route in &policy.routes {
            profiles.push(rules::build_profile(&policy, Some(route), &names));
        }
        let literals = |side| {
            let families = side_families(&policy, &profiles, side, &injection, &refusal, &topics);
            LiteralSet::build(&families)
                .map_err(|e| PolicyError::new("blocked_terms", format!("cannot compile: {e}")))
        };
        let request_literals = literals(SideOf::Request)?;
        let response_literals = literals(SideOf::Response)?;
        Ok(Engine {
            policy,
            profiles,
            custom,
            request_literals,
            response_literals,
            injection,
            topics,
            refusal,
            links,
            facts,
            schemas,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The profile index for a request path (0 is the default profile).
    pub fn profile_for(&self, path: &str) -> usize {
        let path = path.split('?').next().unwrap_or_default();
        self.policy
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| path.starts_with(&r.path_prefix))
            .max_by_key(|(_, r)| r.path_prefix.len())
            .map_or(0, |(i, _)| i + 1)
    }

    pub fn profile(&self, index: usize) -> &Profile {
        &self.profiles[index.min(self.profiles.len() - 1)]
    }

    /// The literal families answers are scanned for (one automaton):
    /// `rheostat bench` times this pass alone, the floor under every scan
    /// of an answer.
    pub fn response_literals(&self) -> &LiteralSet {
        &self.response_literals
    }

    fn literals(&self, side: SideOf) -> &LiteralSet {
        match side {
            SideOf::Request => &self.request_literals,
            SideOf::Response => &self.response_literals,
        }
    }

    /// How many bytes around a span can change a verdict on it: the widest
    /// context any enabled detector reads (a `password=` key 96 bytes to the
    /// left, a custom regex's look-ahead), at least the 48 bytes injection and
    /// literal boundaries need.
    pub fn span_context(&self) -> usize {
        let structured = crate::detect::MAX_STRUCTURED_CONTEXT;
        let custom = if self.custom.is_empty() {
            0
        } else {
            self.custom.context().left.max(self.custom.context().right)
        };
        structured.left.max(structured.right).max(custom).max(48)
    }

    /// One line for logs and `rheostat check`.
    pub fn summary(&self) -> String {
        let rules: usize = self.profiles[0].rules.len();
        format!(
            "{}; {} detector rules, {} routes, {} custom patterns, {} + {} literal patterns (prompts + answers)",
            self.policy.summary(),
            rules,
            self.policy.routes.len(),
            self.custom.len(),
            self.request_literals.pattern_count(),
            self.response_literals.pattern_count()
        )
    }
}

/// The literal families a side's automaton needs: those of the detectors
/// some profile has on for that side. Prompts are scored for injection,
/// answers for refusals and topics; both can carry blocked terms and canaries.
fn side_families(
    policy: &Policy,
    profiles: &[Profile],
    side: SideOf,
    injection: &InjectionScorer,
    refusal: &RefusalDetector,
    topics: &TopicSet,
) -> Vec<LiteralFamily> {
    let request = side == SideOf::Request;
    let on = |kind| profiles.iter().any(|p| p.rule_on(kind, request).is_some());
    let mut families = Vec::new();
    for (i, (_, terms)) in policy.blocked_terms.iter().enumerate() {
        if on(DetectorKind::BlockedTerm(i as u16)) {
            families.push(blocked_terms_family(i as u16, terms));
        }
    }
    if !policy.canaries.is_empty() && on(DetectorKind::Canary(0)) {
        families.push(crate::leak::canary_family(&policy.canaries));
    }
    match side {
        SideOf::Request => {
            if on(DetectorKind::Injection) {
                families.push(injection.literal_family());
            }
        }
        SideOf::Response => {
            if on(DetectorKind::Refusal) {
                families.push(refusal.literal_family());
            }
            let topic_families = topics.literal_families().into_iter().enumerate();
            families.extend(
                topic_families
                    .filter(|(i, _)| on(DetectorKind::Topic(*i as u16)))
                    .map(|(_, family)| family),
            );
        }
    }
    families
}

#[cfg(test)]
mod tests;
