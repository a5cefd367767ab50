//! Running a drill: the host with the drill's workers, traffic phases played
//! on virtual time, operator actions at their moments, and everything the
//! filter did recorded — per request, per audit event, and the level of
//! every scope sampled through `/.rheostat/status`.

use super::spec::{rank, DrillSpec, Template, LEVELS};
use super::traffic::{self, Pick, Rng};
use crate::cluster::Cluster;
use crate::host::{Host, HostConfig};
use crate::worker::Worker;
use anyhow::{anyhow, bail, Context as _, Result};
use rheostat_filter::policy::Policy;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The bearer token the runner adds to a policy that has none: levels per
/// scope are only readable through the token-protected status endpoint.
pub const OBSERVER_TOKEN: &str = "rheostat-drill-observer-token";

/// A finding on one request, as the audit event gave it.
#[derive(Debug, Clone, Serialize)]
pub struct FindingBrief {
    pub detector: String,
    pub category: String,
    pub severity: String,
    pub action: String,
}

/// One generated request and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Virtual milliseconds since the drill started.
    pub t_ms: u64,
    pub template: String,
    pub phase: String,
    pub tenant: String,
    pub model: String,
    pub path: String,
    /// The request reached the upstream.
    pub forwarded: bool,
    /// The client got a model's answer (forwarded, not replaced locally, status < 400).
    pub served: bool,
    pub status: u16,
    pub outcome: String,
    pub level: String,
    pub findings: Vec<FindingBrief>,
    pub harmful: bool,
    /// A harmful answer reached the user (see `Template::harm`).
    pub harm_reached: bool,
    #[serde(skip)]
    pub response_id: Option<String>,
}

/// An audit event with its virtual time.
#[derive(Debug, Clone, Serialize)]
pub struct TimedEvent {
    pub t_ms: u64,
    pub event: Value,
}

/// Levels per scope at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_ms: u64,
    /// Scope label → level rank (scopes at normal may be absent).
    pub levels: BTreeMap<String, u8>,
}

/// An operator action as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorAction {
    pub t_ms: u64,
    pub what: String,
    pub note: String,
    /// Accepted (push ACKed, endpoint answered 2xx).
    pub ok: bool,
    pub detail: String,
}

/// Everything a drill run observed.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    pub duration_ms: u64,
    pub requests: Vec<RequestRecord>,
    pub events: Vec<TimedEvent>,
    pub samples: Vec<Sample>,
    pub actions: Vec<OperatorAction>,
    /// Calls the filter made per cluster (alerts, shadow, verification).
    pub calls_by_cluster: BTreeMap<String, u64>,
    pub traps: Vec<String>,
}

/// A drill ready to run: its spec and resolved policies.
pub struct Prepared<'a> {
    pub spec: &'a DrillSpec,
    pub base: &'a Path,
    pub module: &'a Path,
}

struct Runner<'a> {
    spec: &'a DrillSpec,
    host: Host,
    start_unix_ms: u64,
    token: String,
    pushed: Vec<(String, u8)>,
    rng: Rng,
    next_worker: usize,
    seq: u64,
    obs: Observation,
    /// Response ids per template, newest last, for feedback actions.
    answered: BTreeMap<String, Vec<(String, String)>>,
}

/// Adds the observer token when the policy has none.
fn with_token(bytes: &[u8]) -> Result<(Vec<u8>, String)> {
    let mut v: Value = serde_json::from_slice(bytes).context("the policy is not JSON")?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| anyhow!("the policy is not a JSON object"))?;
    let controls = obj.entry("controls").or_insert_with(|| json!({}));
    let controls = controls
        .as_object_mut()
        .ok_or_else(|| anyhow!("controls: must be an object"))?;
    if let Some(token) = controls.get("token").and_then(Value::as_str) {
        return Ok((bytes.to_vec(), token.to_string()));
    }
    controls.insert("token".into(), json!(OBSERVER_TOKEN));
    Ok((serde_json::to_vec(&v)?, OBSERVER_TOKEN.to_string()))
}

/// The scopes a policy pushes levels for, by label.
fn pushed_levels(bytes: &[u8]) -> Vec<(String, u8)> {
    let Ok(policy) = Policy::from_json(bytes) else {
        return Vec::new();
    };
    let mut out: Vec<(String, u8)> = policy
        .controls
        .scopes
        .iter()
        .map(|s| (s.scope.label(), s.level.rank()))
        .collect();
    out.push(("global".into(), policy.controls.level.rank()));
    out
}

/// Clusters the policy may call: alert routes, shadow, verification.
fn clusters_of(bytes: &[u8], into: &mut BTreeMap<String, Cluster>) {
    let Ok(policy) = Policy::from_json(bytes) else {
        return;
    };
    for route in &policy.alerts.routes {
        into.insert(route.target.cluster.clone(), Cluster::respond(202, &[], ""));
    }
    if let Some(v) = &policy.controls.verification {
        into.insert(v.cluster.clone(), Cluster::respond(202, &[], ""));
    }
    if let Some(s) = &policy.controls.shadow {
        let (_, body) = traffic::response(Some("Shadow model answer."), "shadow", false, 0);
        into.insert(
            s.cluster.clone(),
            Cluster::respond(200, &[("content-type", "application/json")], body),
        );
    }
}

/// Checks a policy as the filter's `on_configure` would, naming where it came from.
fn check_policy(bytes: &[u8], what: &str) -> Result<()> {
    Policy::from_json(bytes).map_err(|e| anyhow!("{what}: invalid policy: {e}"))?;
    Ok(())
}

/// Runs the drill and returns what it observed.
pub fn run(p: &Prepared<'_>) -> Result<Observation> {
    let spec = p.spec;
    let initial = super::spec::policy_bytes(&spec.policy, p.base).context("policy")?;
    check_policy(&initial, "policy")?;
    let (initial, token) = with_token(&initial).context("policy")?;
    let mut clusters = BTreeMap::new();
    clusters_of(&initial, &mut clusters);
    let mut pushes = BTreeMap::new();
    for (i, a) in spec.actions.iter().enumerate() {
        if let Some(push) = &a.push {
            let bytes = super::spec::policy_bytes(push, p.base)
                .with_context(|| format!("actions[{i}].push"))?;
            let what = format!("actions[{i}].push");
            // A push may be invalid on purpose (a NACK drill), so only valid
            // ones get the observer token and contribute clusters.
            let bytes = match Policy::from_json(&bytes) {
                Ok(_) => with_token(&bytes).with_context(|| what.clone())?.0,
                Err(_) => bytes,
            };
            clusters_of(&bytes, &mut clusters);
            pushes.insert(i, bytes);
        }
    }
    let host = Host::start(HostConfig {
        module: p.module.to_path_buf(),
        workers: spec.workers,
        plugin_config: initial.clone(),
        clusters,
        ..HostConfig::default()
    })
    .context("the filter did not start with the drill's policy")?;
    let start_unix_ms = host.now_ms();
    let mut runner = Runner {
        spec,
        host,
        start_unix_ms,
        token,
        pushed: pushed_levels(&initial),
        rng: traffic::rng(spec.seed),
        next_worker: 0,
        seq: 0,
        obs: Observation {
            duration_ms: spec.duration_secs() * 1000,
            requests: Vec::new(),
            events: Vec::new(),
            samples: Vec::new(),
            actions: Vec::new(),
            calls_by_cluster: BTreeMap::new(),
            traps: Vec::new(),
        },
        answered: BTreeMap::new(),
    };
    runner.sample()?;
    let mut actions: Vec<(u64, usize)> = spec
        .actions
        .iter()
        .enumerate()
        .map(|(i, a)| (a.at_secs * 1000, i))
        .collect();
    actions.sort();
    let mut actions = actions.into_iter().peekable();
    let sample_ms = spec.sample_secs * 1000;
    let mut next_sample = sample_ms;
    let mut phase_start = 0u64;
    for phase in &spec.phases {
        let interval = 60_000.0 / phase.rate_per_min;
        let count = (phase.duration_secs as f64 * phase.rate_per_min / 60.0).floor() as u64;
        for i in 0..count {
            let t = phase_start + (i as f64 * interval) as u64;
            runner.until(t, &mut actions, &mut next_sample, sample_ms, &pushes)?;
            let name = runner
                .rng
                .weighted(&phase.mix)
                .ok_or_else(|| anyhow!("phase {}: empty mix", phase.name))?
                .to_string();
            runner.request(&name, &phase.name)?;
        }
        phase_start += phase.duration_secs * 1000;
    }
    let end = runner
        .obs
        .duration_ms
        .max(actions.clone().map(|(t, _)| t).max().unwrap_or(0));
    runner.until(end, &mut actions, &mut next_sample, sample_ms, &pushes)?;
    runner.obs.duration_ms = end;
    runner.sample()?;
    runner.collect_logs();
    for call in runner.host.shared().http_calls() {
        *runner
            .obs
            .calls_by_cluster
            .entry(call.cluster.clone())
            .or_default() += 1;
    }
    runner.obs.traps = runner.host.shared().traps();
    Ok(runner.obs)
}

impl Runner<'_> {
    fn now(&self) -> u64 {
        self.host.elapsed_ms()
    }

    /// Moves virtual time to `t`, doing the actions and samples that fall due on the way.
    fn until(
        &mut self,
        t: u64,
        actions: &mut std::iter::Peekable<std::vec::IntoIter<(u64, usize)>>,
        next_sample: &mut u64,
        sample_ms: u64,
        pushes: &BTreeMap<usize, Vec<u8>>,
    ) -> Result<()> {
        loop {
            let next_action = actions.peek().map(|(at, _)| *at).filter(|at| *at <= t);
            let due_sample = Some(*next_sample).filter(|s| *s <= t);
            let next = match (next_action, due_sample) {
                (Some(a), Some(s)) => a.min(s),
                (Some(a), None) => a,
                (None, Some(s)) => s,
                (None, None) => break,
            };
            self.advance_to(next);
            if next_action == Some(next) {
                let Some((_, i)) = actions.next() else { break };
                self.act(i, pushes)?;
                // What the action changed is seen at once, not a sample period later.
                self.sample()?;
            } else {
                self.sample()?;
                *next_sample += sample_ms;
            }
        }
        self.advance_to(t);
        Ok(())
    }

    fn advance_to(&mut self, t: u64) {
        let now = self.now();
        if t > now {
            self.host.advance(t - now);
        }
        self.collect_logs();
    }

    /// Moves the filter's log lines into the observation, with relative times.
    fn collect_logs(&mut self) -> Vec<Value> {
        let mut fresh = Vec::new();
        for line in self.host.shared().take_logs() {
            if let Some(event) = line.event() {
                let t_ms = line.at_ms.saturating_sub(self.start_unix_ms);
                fresh.push(event.clone());
                self.obs.events.push(TimedEvent { t_ms, event });
            }
        }
        fresh
    }

    fn worker(&mut self) -> &mut Worker {
        let n = self.host.workers().len();
        let i = self.next_worker % n;
        self.next_worker += 1;
        self.host.worker(i)
    }

    fn request(&mut self, name: &str, phase: &str) -> Result<()> {
        let spec = self.spec;
        let template: &Template = spec
            .templates
            .get(name)
            .ok_or_else(|| anyhow!("unknown template {name}"))?;
        let pick = Pick::new(&mut self.rng, template);
        let body = traffic::request_body(template, &pick);
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("x-tenant-id".to_string(), pick.tenant.clone()),
            ("x-region".to_string(), pick.region.clone()),
        ];
        self.seq += 1;
        let seq = self.seq;
        let t_ms = self.now();
        let stream = template.stream;
        let status = template.status;
        let sent = send(
            self.worker(),
            "POST",
            &template.path,
            &headers,
            &body,
            seq,
            |upstream| {
                let model =
                    traffic::forwarded_model(upstream).unwrap_or_else(|| pick.model.clone());
                let answer = if status < 400 {
                    pick.answer(template, &model)
                } else {
                    None
                };
                let (ct, body) = traffic::response(answer.as_deref(), &model, stream, seq);
                (
                    if answer.is_none() && status < 400 {
                        502
                    } else {
                        status
                    },
                    ct,
                    body,
                )
            },
        );
        let events = self.collect_logs();
        let exchange = events.iter().find(|e| e["event"] == "exchange");
        let findings: Vec<FindingBrief> = exchange
            .and_then(|e| e["findings"].as_array())
            .map(|list| {
                list.iter()
                    .map(|f| {
                        let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
                        FindingBrief {
                            detector: s("detector"),
                            category: s("category"),
                            severity: s("severity"),
                            action: s("action"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let field = |k: &str| exchange.and_then(|e| e[k].as_str()).map(str::to_string);
        let served = sent.forwarded
            && !sent.local
            && !sent.reset
            && sent.status < 400
            && sent
                .header("x-rheostat-outcome")
                .is_none_or(|o| o != "fallback");
        let body_text = String::from_utf8_lossy(&sent.body).to_lowercase();
        let outcome = field("outcome").unwrap_or_else(|| {
            if sent.reset {
                "reset".into()
            } else {
                "-".into()
            }
        });
        let harm_reached = template.harmful
            && served
            && outcome != "blocked"
            && (template.harm.is_empty()
                || template
                    .harm
                    .iter()
                    .any(|h| body_text.contains(&h.to_lowercase())));
        let response_id = sent.header("x-rheostat-response-id").map(str::to_string);
        if let Some(id) = &response_id {
            self.answered
                .entry(name.to_string())
                .or_default()
                .push((id.clone(), pick.tenant.clone()));
        }
        self.obs.requests.push(RequestRecord {
            t_ms,
            template: name.to_string(),
            phase: phase.to_string(),
            tenant: pick.tenant.clone(),
            model: pick.model.clone(),
            path: template.path.clone(),
            forwarded: sent.forwarded,
            served,
            status: sent.status,
            outcome,
            level: field("level").unwrap_or_else(|| "normal".into()),
            findings,
            harmful: template.harmful,
            harm_reached,
            response_id: response_id.clone(),
        });
        // Users judge what they saw: a harmful answer the filter contained
        // (redacted, replaced, served by the fallback model) gets no complaint.
        let complains = !template.harmful || harm_reached;
        if let (Some(fb), Some(id), true) = (&template.feedback, response_id, complains) {
            if self.rng.unit() < fb.share {
                let verdict = fb.verdict.clone();
                self.feedback(&id, &pick.tenant, &verdict, None);
            }
        }
        Ok(())
    }

    fn feedback(
        &mut self,
        response_id: &str,
        client: &str,
        verdict: &str,
        category: Option<&str>,
    ) -> u16 {
        let mut body = json!({"response_id": response_id, "verdict": verdict});
        if let Some(c) = category {
            body["category"] = json!(c);
        }
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("x-tenant-id".to_string(), client.to_string()),
        ];
        self.seq += 1;
        let seq = self.seq;
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let sent = send(
            self.worker(),
            "POST",
            "/.rheostat/feedback",
            &headers,
            &body,
            seq,
            |_| {
                (
                    599,
                    "text/plain",
                    b"the upstream must never see feedback".to_vec(),
                )
            },
        );
        self.collect_logs();
        sent.status
    }

    fn endpoint(&mut self, method: &str, path: &str, body: Option<&Value>) -> Sent {
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            (
                "authorization".to_string(),
                format!("Bearer {}", self.token),
            ),
            (
                "x-tenant-id".to_string(),
                "rheostat-drill-operator".to_string(),
            ),
        ];
        self.seq += 1;
        let seq = self.seq;
        let body = body
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        let sent = send(self.worker(), method, path, &headers, &body, seq, |_| {
            (
                599,
                "text/plain",
                b"the upstream must never see an endpoint call".to_vec(),
            )
        });
        self.collect_logs();
        sent
    }

    /// Levels per scope now: the highest of what the policy pushes for the
    /// scope, overrides, tripped levels and open breakers.
    fn sample(&mut self) -> Result<()> {
        let sent = self.endpoint("GET", "/.rheostat/status", None);
        if sent.status != 200 {
            bail!(
                "the status endpoint answered {} (the drill reads levels per scope through it): {}",
                sent.status,
                String::from_utf8_lossy(&sent.body)
            );
        }
        let status: Value = serde_json::from_slice(&sent.body)
            .context("the status endpoint's answer is not JSON")?;
        let mut levels: BTreeMap<String, u8> = BTreeMap::new();
        let mut raise = |label: &str, r: u8| {
            let e = levels.entry(label.to_string()).or_insert(0);
            *e = (*e).max(r);
        };
        if let Some(global) = status["levels"]["global"].as_str().and_then(rank) {
            raise("global", global);
        }
        for s in status["scopes"].as_array().into_iter().flatten() {
            let Some(label) = s["scope"].as_str() else {
                continue;
            };
            let mut r = s["tripped_level"].as_str().and_then(rank).unwrap_or(0);
            if s["breaker"].as_str().is_some_and(|b| b != "closed") {
                r = r.max(rank("breaker").unwrap_or(2));
            }
            raise(label, r);
        }
        for o in status["overrides"].as_array().into_iter().flatten() {
            if let (Some(label), Some(r)) =
                (o["scope"].as_str(), o["level"].as_str().and_then(rank))
            {
                raise(label, r);
            }
        }
        for (label, r) in &self.pushed {
            raise(label, *r);
        }
        self.obs.samples.push(Sample {
            t_ms: self.now(),
            levels,
        });
        Ok(())
    }

    fn act(&mut self, i: usize, pushes: &BTreeMap<usize, Vec<u8>>) -> Result<()> {
        let action = &self.spec.actions[i];
        let t_ms = self.now();
        let note = action.note.clone();
        let record = if let Some(bytes) = pushes.get(&i) {
            let ok = self
                .host
                .reconfigure(bytes.clone())
                .with_context(|| format!("actions[{i}]: push"))?;
            let detail = match Policy::from_json(bytes) {
                Ok(p) => format!("policy {:?}", p.name),
                Err(e) => format!("rejected: {e}"),
            };
            if ok {
                self.pushed = pushed_levels(bytes);
                if let Some(token) = Policy::from_json(bytes)
                    .ok()
                    .and_then(|p| p.controls.token.clone())
                {
                    self.token = token;
                }
            }
            OperatorAction {
                t_ms,
                what: "policy push".into(),
                note,
                ok,
                detail,
            }
        } else if let Some(control) = &action.control {
            let control = control.clone();
            let sent = self.endpoint("POST", "/.rheostat/control", Some(&control));
            let scope = control
                .get("scope")
                .map_or("global".into(), |s| s.to_string());
            let level = control
                .get("level")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            OperatorAction {
                t_ms,
                what: format!("control {level} for {scope}"),
                note,
                ok: (200..300).contains(&sent.status),
                detail: format!("answered {}", sent.status),
            }
        } else if let Some(fb) = &action.feedback {
            let fb = fb.clone();
            let recent: Vec<(String, String)> = self
                .answered
                .get(&fb.template)
                .map(|ids| ids.iter().rev().take(fb.last).cloned().collect())
                .unwrap_or_default();
            let mut accepted = 0;
            for (id, client) in &recent {
                if (200..300).contains(&self.feedback(
                    id,
                    client,
                    &fb.verdict,
                    fb.category.as_deref(),
                )) {
                    accepted += 1;
                }
            }
            OperatorAction {
                t_ms,
                what: format!(
                    "{} on {} answer(s) of {}",
                    fb.verdict,
                    recent.len(),
                    fb.template
                ),
                note,
                ok: accepted == recent.len() && !recent.is_empty(),
                detail: format!("{accepted} accepted"),
            }
        } else {
            bail!("actions[{i}]: nothing to do");
        };
        self.obs.actions.push(record);
        Ok(())
    }
}

/// What the client got from one stream.
pub struct Sent {
    pub forwarded: bool,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub local: bool,
    pub reset: bool,
}

impl Sent {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Drives one stream. The upstream's answer is chosen only once the
/// request has reached it, from the body the filter forwarded: a degraded
/// request reaches the fallback model, which answers as that model would.
fn send(
    worker: &mut Worker,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    seq: u64,
    upstream: impl FnOnce(&[u8]) -> (u16, &'static str, Vec<u8>),
) -> Sent {
    let request_id = format!("drill-{seq:08}");
    let mut list: Vec<(&str, &str)> = vec![
        (":method", method),
        (":path", path),
        (":authority", "llm.local"),
        (":scheme", "http"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", &request_id),
    ];
    list.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut s = worker.open_stream();
    s.request_headers(&list, body.is_empty());
    let stopped = |s: &crate::Stream<'_>| s.local_reply().is_some() || s.reset() || s.ended();
    if !body.is_empty() && !stopped(&s) {
        s.request_body(body, true);
    }
    let forwarded = s.upstream_complete() && s.local_reply().is_none() && !s.reset();
    if forwarded {
        let (status, content_type, answer) = upstream(&s.upstream_body());
        let status = status.to_string();
        s.response_headers(
            &[(":status", &status), ("content-type", content_type)],
            answer.is_empty(),
        );
        if !answer.is_empty() && !stopped(&s) {
            s.response_body(&answer, true);
        }
    }
    s.finish();
    let headers = s.downstream_headers().unwrap_or_default();
    Sent {
        forwarded,
        status: s.downstream_status().unwrap_or(0),
        headers,
        body: s.downstream_body(),
        local: s.local_reply().is_some(),
        reset: s.reset(),
    }
}

/// A level's name from its rank.
pub fn level_name(rank: u8) -> &'static str {
    LEVELS.get(usize::from(rank)).copied().unwrap_or("?")
}
