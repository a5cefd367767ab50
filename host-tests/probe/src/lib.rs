//! The probe: a proxy-wasm module whose behaviour is chosen by its plugin
//! configuration, so that every semantic of the host can be pinned with a real
//! SDK module instead of a hand-written fake.
//!
//! The configuration is a JSON object. Each callback name maps to a list of
//! *steps*, run in order when the callback fires; a step is `"name"` or
//! `"name:argument"`:
//!
//! ```json
//! {"tag": "v1",
//!  "request_headers": ["req.set:x-probe=1", "pause"],
//!  "response_body": ["resp_body.replace:XYZ"],
//!  "tick": ["cas_increment:ticks"]}
//! ```
//!
//! Callback keys: `configure`, `request_headers`, `request_body`,
//! `request_trailers`, `response_headers`, `response_body`,
//! `response_trailers`, `http_call_response`, `log`, `done`, `tick`,
//! `queue_ready`. `on_vm_start` runs the `vm_start` steps of the *VM*
//! configuration, because the plugin configuration is not readable there.
//!
//! Whatever the probe observes it reports as one JSON log line with an
//! `"event"` key (and `"ctx"`, the context id, and `"tag"` when set), so tests
//! read what the module saw from the host's captured logs. With `"trace":
//! true` every stream callback also reports itself (`{"event":
//! "request_body", "size": 5, "eos": true}`).
//!
//! Steps (see `Step::run` for the exact calls):
//! - return value: `continue` (default), `pause`, `pause_unless_eos`
//! - header maps (`req`, `resp`, `req_trailers`, `resp_trailers`,
//!   `call_resp`, `call_trailers`): `<map>.get:NAME`, `<map>.set:NAME=VALUE`,
//!   `<map>.add:NAME=VALUE`, `<map>.remove:NAME`, `<map>.pairs`,
//!   `<map>.set_pairs:A=1,B=2`
//! - buffers (`req_body`, `resp_body`, `call_body`, `vm_config`,
//!   `plugin_config`): `<buf>.read`, `<buf>.replace:X` (0, len, X),
//!   `<buf>.append:X` (len, 0, X), `<buf>.prepend:X` (0, 0, X),
//!   `<buf>.set_middle:X` (1, 0, X), `<buf>.read_past_end`
//! - stream control: `local:STATUS[:BODY]`, `resume_request`,
//!   `resume_response`, `reset_request`, `reset_response`
//! - shared data: `cas_init:KEY`, `cas_increment:KEY`, `set_shared:K=V`,
//!   `get_shared:KEY`, `stale_cas:KEY`
//! - queues: `register_queue:NAME`, `enqueue:NAME=VALUE`, `resolve_queue:VM/NAME`,
//!   `enqueue_token:ID=VALUE`, `dequeue_token:ID`
//! - timers: `tick_period:MS`
//! - HTTP calls: `call:CLUSTER`, `call_timeout:CLUSTER:MS`, `call_no_path:CLUSTER`
//! - metrics: `define_metric:KIND:NAME`, `counter:NAME`, `counter_add:NAME:N`, `gauge_add:NAME:N`,
//!   `gauge_set:NAME:N`, `histogram:NAME:V`, `metric_get:NAME`
//! - properties: `property:a.b.c`, `set_property:PATH=VALUE`
//! - misc: `log:TEXT`, `print:TEXT` (stdout), `eprint:TEXT` (stderr), `now`,
//!   `log_level`, `vm_starts`, `panic`
//!
//! `"reject": true` makes `on_configure` return false.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> {
        Box::new(ProbeRoot { id, config: Rc::new(Config::default()) })
    });
}}

/// How many times `on_vm_start` ran in this VM: statics persist across
/// configuration changes, and tests check that they do.
static VM_STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

thread_local! {
    static METRICS: RefCell<HashMap<(String, u32), u32>> = RefCell::new(HashMap::new());
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields)]
struct Config {
    tag: Option<String>,
    reject: bool,
    trace: bool,
    configure: Vec<String>,
    request_headers: Vec<String>,
    request_body: Vec<String>,
    request_trailers: Vec<String>,
    response_headers: Vec<String>,
    response_body: Vec<String>,
    response_trailers: Vec<String>,
    http_call_response: Vec<String>,
    log: Vec<String>,
    done: Vec<String>,
    tick: Vec<String>,
    queue_ready: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct VmConfig {
    vm_start: Vec<String>,
    reject: bool,
}

/// Report one observation as a JSON log line.
fn emit(ctx: u32, tag: &Option<String>, event: &str, fields: Value) {
    let mut map = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    map.insert("event".into(), json!(event));
    map.insert("ctx".into(), json!(ctx));
    if let Some(tag) = tag {
        map.insert("tag".into(), json!(tag));
    }
    let _ = hostcalls::log(LogLevel::Info, &Value::Object(map).to_string());
}

fn text(bytes: &Option<Vec<u8>>) -> Value {
    match bytes {
        Some(b) => json!(String::from_utf8_lossy(b)),
        None => Value::Null,
    }
}

fn status_name(status: Status) -> String {
    format!("{status:?}")
}

struct ProbeRoot {
    id: u32,
    config: Rc<Config>,
}

impl Context for ProbeRoot {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        call_response(self.id, &self.config, token, headers, body, trailers);
    }
}

impl RootContext for ProbeRoot {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let n = VM_STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let config: VmConfig =
            match hostcalls::get_buffer(BufferType::VmConfiguration, 0, usize::MAX) {
                Ok(Some(bytes)) if !bytes.is_empty() => match serde_json::from_slice(&bytes) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = hostcalls::log(LogLevel::Error, &format!("bad vm config: {e}"));
                        return false;
                    }
                },
                _ => VmConfig::default(),
            };
        emit(self.id, &None, "vm_start", json!({"count": n}));
        Steps::new(self.id, None, false).run(&config.vm_start);
        !config.reject
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config: Config = if bytes.is_empty() {
            Config::default()
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(c) => c,
                Err(e) => {
                    let _ = hostcalls::log(LogLevel::Error, &format!("bad probe config: {e}"));
                    return false;
                }
            }
        };
        emit(
            self.id,
            &config.tag,
            "configure",
            json!({"reject": config.reject}),
        );
        self.config = Rc::new(config);
        Steps::new(self.id, self.config.tag.clone(), false).run(&self.config.configure);
        !self.config.reject
    }

    fn on_tick(&mut self) {
        emit(self.id, &self.config.tag, "tick", json!({}));
        Steps::new(self.id, self.config.tag.clone(), false).run(&self.config.tick);
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        let mut items = Vec::new();
        loop {
            match hostcalls::dequeue_shared_queue(queue_id) {
                Ok(Some(item)) => items.push(json!(String::from_utf8_lossy(&item))),
                Ok(None) => break,
                Err(status) => {
                    items.push(json!(status_name(status)));
                    break;
                }
            }
        }
        emit(
            self.id,
            &self.config.tag,
            "queue_ready",
            json!({"queue": queue_id, "items": items}),
        );
        Steps::new(self.id, self.config.tag.clone(), false).run(&self.config.queue_ready);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProbeStream {
            id: context_id,
            config: self.config.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

fn call_response(
    ctx: u32,
    config: &Config,
    token: u32,
    headers: usize,
    body: usize,
    trailers: usize,
) {
    let status = if headers > 0 {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
    } else {
        None
    };
    let body_text = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, usize::MAX)
        .ok()
        .flatten();
    emit(
        ctx,
        &config.tag,
        "call_response",
        json!({"token": token, "headers": headers, "body_size": body, "trailers": trailers,
               "status": status, "body": text(&body_text)}),
    );
    Steps::new(ctx, config.tag.clone(), false).run(&config.http_call_response);
}

struct ProbeStream {
    id: u32,
    config: Rc<Config>,
}

impl ProbeStream {
    fn callback(&self, name: &str, fields: Value, steps: &[String], eos: bool) -> Action {
        if self.config.trace {
            emit(self.id, &self.config.tag, name, fields);
        }
        Steps::new(self.id, self.config.tag.clone(), eos).run(steps)
    }
}

impl Context for ProbeStream {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        call_response(self.id, &self.config, token, headers, body, trailers);
    }

    fn on_done(&mut self) -> bool {
        let config = self.config.clone();
        self.callback("done", json!({}), &config.done, false);
        true
    }
}

impl HttpContext for ProbeStream {
    fn on_http_request_headers(&mut self, n: usize, eos: bool) -> Action {
        let config = self.config.clone();
        self.callback(
            "request_headers",
            json!({"n": n, "eos": eos}),
            &config.request_headers,
            eos,
        )
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        let config = self.config.clone();
        self.callback(
            "request_body",
            json!({"size": size, "eos": eos}),
            &config.request_body,
            eos,
        )
    }

    fn on_http_request_trailers(&mut self, n: usize) -> Action {
        let config = self.config.clone();
        self.callback(
            "request_trailers",
            json!({"n": n}),
            &config.request_trailers,
            true,
        )
    }

    fn on_http_response_headers(&mut self, n: usize, eos: bool) -> Action {
        let config = self.config.clone();
        self.callback(
            "response_headers",
            json!({"n": n, "eos": eos}),
            &config.response_headers,
            eos,
        )
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        let config = self.config.clone();
        self.callback(
            "response_body",
            json!({"size": size, "eos": eos}),
            &config.response_body,
            eos,
        )
    }

    fn on_http_response_trailers(&mut self, n: usize) -> Action {
        let config = self.config.clone();
        self.callback(
            "response_trailers",
            json!({"n": n}),
            &config.response_trailers,
            true,
        )
    }

    fn on_log(&mut self) {
        let config = self.config.clone();
        self.callback("log", json!({}), &config.log, true);
    }
}

/// One run of a step list inside one callback.
struct Steps {
    ctx: u32,
    tag: Option<String>,
    eos: bool,
    action: Action,
}

fn map_type(name: &str) -> Option<MapType> {
    Some(match name {
        "req" => MapType::HttpRequestHeaders,
        "req_trailers" => MapType::HttpRequestTrailers,
        "resp" => MapType::HttpResponseHeaders,
        "resp_trailers" => MapType::HttpResponseTrailers,
        "call_resp" => MapType::HttpCallResponseHeaders,
        "call_trailers" => MapType::HttpCallResponseTrailers,
        _ => return None,
    })
}

fn buffer_type(name: &str) -> Option<BufferType> {
    Some(match name {
        "req_body" => BufferType::HttpRequestBody,
        "resp_body" => BufferType::HttpResponseBody,
        "call_body" => BufferType::HttpCallResponseBody,
        "vm_config" => BufferType::VmConfiguration,
        "plugin_config" => BufferType::PluginConfiguration,
        _ => return None,
    })
}

fn split_kv(arg: &str) -> (&str, &str) {
    arg.split_once('=').unwrap_or((arg, ""))
}

fn metric_id(kind: MetricType, name: &str) -> u32 {
    let key = (name.to_string(), kind as u32);
    if let Some(id) = METRICS.with(|m| m.borrow().get(&key).copied()) {
        return id;
    }
    // define_metric accepts only Ok: the SDK panics on anything else.
    let id = hostcalls::define_metric(kind, name).unwrap_or(0);
    METRICS.with(|m| m.borrow_mut().insert(key, id));
    id
}

impl Steps {
    fn new(ctx: u32, tag: Option<String>, eos: bool) -> Steps {
        Steps {
            ctx,
            tag,
            eos,
            action: Action::Continue,
        }
    }

    fn emit(&self, event: &str, fields: Value) {
        emit(self.ctx, &self.tag, event, fields);
    }

    fn run(mut self, steps: &[String]) -> Action {
        for step in steps {
            let (name, arg) = step.split_once(':').unwrap_or((step.as_str(), ""));
            self.step(name, arg);
        }
        self.action
    }

    fn step(&mut self, name: &str, arg: &str) {
        if let Some((target, op)) = name.split_once('.') {
            if let Some(map) = map_type(target) {
                return self.map_step(target, map, op, arg);
            }
            if let Some(buffer) = buffer_type(target) {
                return self.buffer_step(target, buffer, op, arg);
            }
        }
        match name {
            "continue" => self.action = Action::Continue,
            "pause" => self.action = Action::Pause,
            "pause_unless_eos" => {
                self.action = if self.eos {
                    Action::Continue
                } else {
                    Action::Pause
                }
            }
            "log" => self.emit("log", json!({"text": arg})),
            "print" => println!("{arg}"),
            "eprint" => eprintln!("{arg}"),
            "panic" => panic!("probe panic: {arg}"),
            "local" => {
                let (status, body) = arg.split_once(':').unwrap_or((arg, ""));
                let status: u32 = status.parse().unwrap_or(500);
                let body = if body.is_empty() {
                    None
                } else {
                    Some(body.as_bytes())
                };
                let _ = hostcalls::send_http_response(status, vec![("x-probe", "local")], body);
            }
            "resume_request" => {
                let _ = hostcalls::resume_http_request();
            }
            "resume_response" => {
                let _ = hostcalls::resume_http_response();
            }
            "reset_request" => {
                let _ = hostcalls::reset_http_request();
            }
            "reset_response" => {
                let _ = hostcalls::reset_http_response();
            }
            "cas_init" => {
                if let Ok((None, _)) = hostcalls::get_shared_data(arg) {
                    let _ = hostcalls::set_shared_data(arg, Some(b"0"), None);
                }
            }
            "cas_increment" => self.cas_increment(arg),
            "set_shared" => {
                let (k, v) = split_kv(arg);
                let result = hostcalls::set_shared_data(k, Some(v.as_bytes()), None);
                self.emit("set_shared", json!({"key": k, "ok": result.is_ok()}));
            }
            "get_shared" => match hostcalls::get_shared_data(arg) {
                Ok((value, cas)) => self.emit(
                    "shared",
                    json!({"key": arg, "value": text(&value), "cas": cas}),
                ),
                Err(s) => self.emit("shared", json!({"key": arg, "error": status_name(s)})),
            },
            "stale_cas" => self.stale_cas(arg),
            "register_queue" => {
                let id = hostcalls::register_shared_queue(arg).unwrap_or(0);
                self.emit("queue_registered", json!({"name": arg, "queue": id}));
            }
            "resolve_queue" => {
                let (vm, queue) = arg.split_once('/').unwrap_or(("", arg));
                let id = hostcalls::resolve_shared_queue(vm, queue).ok().flatten();
                self.emit("queue_resolved", json!({"name": queue, "queue": id}));
            }
            "enqueue" => {
                let (queue, value) = split_kv(arg);
                let result = match hostcalls::resolve_shared_queue("", queue) {
                    Ok(Some(id)) => hostcalls::enqueue_shared_queue(id, Some(value.as_bytes())),
                    _ => Err(Status::NotFound),
                };
                let result = result.map(|_| "Ok".to_string()).unwrap_or_else(status_name);
                self.emit("enqueued", json!({"name": queue, "result": result}));
            }
            "enqueue_token" => {
                let (token, value) = split_kv(arg);
                let result = hostcalls::enqueue_shared_queue(
                    token.parse().unwrap_or(0),
                    Some(value.as_bytes()),
                );
                let result = result.map(|_| "Ok".to_string()).unwrap_or_else(status_name);
                self.emit("enqueued", json!({"queue": token, "result": result}));
            }
            "dequeue_token" => {
                // The SDK reads Empty as Ok(None).
                let result = match hostcalls::dequeue_shared_queue(arg.parse().unwrap_or(0)) {
                    Ok(Some(v)) => json!(String::from_utf8_lossy(&v)),
                    Ok(None) => json!("Empty"),
                    Err(s) => json!(status_name(s)),
                };
                self.emit("dequeued", json!({"queue": arg, "result": result}));
            }
            "tick_period" => {
                let ms: u64 = arg.parse().unwrap_or(0);
                let _ = hostcalls::set_tick_period(Duration::from_millis(ms));
            }
            "call" => self.call(arg, 5000, true),
            "call_timeout" => {
                let (cluster, ms) = arg.split_once(':').unwrap_or((arg, "0"));
                self.call(cluster, ms.parse().unwrap_or(0), true);
            }
            "call_no_path" => self.call(arg, 5000, false),
            "counter" => {
                let id = metric_id(MetricType::Counter, arg);
                let _ = hostcalls::increment_metric(id, 1);
            }
            "counter_add" | "gauge_add" => {
                let kind = if name == "counter_add" {
                    MetricType::Counter
                } else {
                    MetricType::Gauge
                };
                let (metric, n) = arg.split_once(':').unwrap_or((arg, "1"));
                let id = metric_id(kind, metric);
                let result = hostcalls::increment_metric(id, n.parse().unwrap_or(0));
                let result = result.map(|_| "Ok".to_string()).unwrap_or_else(status_name);
                self.emit(
                    "metric",
                    json!({"name": metric, "op": name, "result": result}),
                );
            }
            "gauge_set" | "histogram" => {
                let kind = if name == "gauge_set" {
                    MetricType::Gauge
                } else {
                    MetricType::Histogram
                };
                let (metric, v) = arg.split_once(':').unwrap_or((arg, "0"));
                let id = metric_id(kind, metric);
                let result = hostcalls::record_metric(id, v.parse().unwrap_or(0));
                let result = result.map(|_| "Ok".to_string()).unwrap_or_else(status_name);
                self.emit(
                    "metric",
                    json!({"name": metric, "op": name, "result": result}),
                );
            }
            "define_metric" => {
                let (kind, metric) = arg.split_once(':').unwrap_or(("counter", arg));
                let kind = match kind {
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    _ => MetricType::Counter,
                };
                let id = metric_id(kind, metric);
                self.emit("metric_defined", json!({"name": metric, "id": id}));
            }
            "metric_get" => {
                let found = METRICS.with(|m| {
                    m.borrow()
                        .iter()
                        .find(|((n, _), _)| n == arg)
                        .map(|(_, id)| *id)
                });
                let result = match found {
                    Some(id) => match hostcalls::get_metric(id) {
                        Ok(v) => json!(v),
                        Err(s) => json!(status_name(s)),
                    },
                    None => Value::Null,
                };
                self.emit("metric_value", json!({"name": arg, "value": result}));
            }
            "property" => {
                let path: Vec<&str> = arg.split('.').collect();
                match hostcalls::get_property(path) {
                    Ok(value) => {
                        let int = value
                            .as_ref()
                            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                            .map(i64::from_le_bytes);
                        self.emit(
                            "property",
                            json!({"path": arg, "found": value.is_some(), "text": text(&value),
                                   "int": int, "len": value.as_ref().map(|v| v.len())}),
                        )
                    }
                    Err(s) => self.emit("property", json!({"path": arg, "error": status_name(s)})),
                }
            }
            "set_property" => {
                let (path, value) = split_kv(arg);
                let path: Vec<&str> = path.split('.').collect();
                // set_property accepts only Ok: a NotFound outside a stream traps, as in Envoy.
                let _ = hostcalls::set_property(path, Some(value.as_bytes()));
            }
            "now" => {
                let host = hostcalls::get_current_time().ok();
                let host_ns = host
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos() as u64);
                let wasi_ns = std::time::SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_nanos() as u64);
                self.emit("now", json!({"host_ns": host_ns, "wasi_ns": wasi_ns}));
            }
            "log_level" => {
                let level = hostcalls::get_log_level().map(|l| l as u32).ok();
                self.emit("log_level", json!({"level": level}));
            }
            "vm_starts" => {
                let n = VM_STARTS.load(std::sync::atomic::Ordering::Relaxed);
                self.emit("vm_starts", json!({"count": n}));
            }
            other => self.emit("unknown_step", json!({"step": other})),
        }
    }

    fn map_step(&mut self, target: &str, map: MapType, op: &str, arg: &str) {
        match op {
            // Every call below unwraps the way the SDK's own trait methods do: an
            // unexpected status from the host is a panic, hence a VM trap.
            "get" => {
                let value = hostcalls::get_map_value(map, arg).unwrap();
                self.emit(
                    "header",
                    json!({"map": target, "name": arg, "value": value}),
                );
            }
            "set" => {
                let (k, v) = split_kv(arg);
                hostcalls::set_map_value(map, k, Some(v)).unwrap();
            }
            "add" => {
                let (k, v) = split_kv(arg);
                hostcalls::add_map_value(map, k, v).unwrap();
            }
            "remove" => hostcalls::remove_map_value(map, arg).unwrap(),
            "pairs" => {
                let pairs = hostcalls::get_map(map).unwrap();
                self.emit("headers", json!({"map": target, "pairs": pairs}));
            }
            "set_pairs" => {
                let pairs: Vec<(&str, &str)> = arg
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(split_kv)
                    .collect();
                hostcalls::set_map(map, pairs).unwrap();
            }
            other => self.emit("unknown_step", json!({"step": format!("{target}.{other}")})),
        }
    }

    fn buffer_step(&mut self, target: &str, buffer: BufferType, op: &str, arg: &str) {
        let current = hostcalls::get_buffer(buffer, 0, usize::MAX).unwrap();
        let len = current.as_ref().map_or(0, |b| b.len());
        match op {
            "read" => self.emit(
                "body",
                json!({"buffer": target, "len": len, "text": text(&current)}),
            ),
            "replace" => hostcalls::set_buffer(buffer, 0, len, arg.as_bytes()).unwrap(),
            "append" => hostcalls::set_buffer(buffer, len, 0, arg.as_bytes()).unwrap(),
            "prepend" => hostcalls::set_buffer(buffer, 0, 0, arg.as_bytes()).unwrap(),
            "set_middle" => hostcalls::set_buffer(buffer, 1, 0, arg.as_bytes()).unwrap(),
            "read_past_end" => {
                let past = hostcalls::get_buffer(buffer, len + 10, 5).unwrap();
                self.emit(
                    "body_past_end",
                    json!({"buffer": target, "value": text(&past)}),
                );
            }
            other => self.emit("unknown_step", json!({"step": format!("{target}.{other}")})),
        }
    }

    fn cas_increment(&mut self, key: &str) {
        // The loop every shared counter needs: without it, concurrent workers
        // overwrite each other's increments.
        loop {
            let (value, cas) = match hostcalls::get_shared_data(key) {
                Ok(v) => v,
                Err(_) => return,
            };
            let n: u64 = value
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            match hostcalls::set_shared_data(key, Some((n + 1).to_string().as_bytes()), cas) {
                Ok(()) => return,
                Err(Status::CasMismatch) => continue,
                Err(_) => return,
            }
        }
    }

    fn stale_cas(&mut self, key: &str) {
        let (_, cas) = hostcalls::get_shared_data(key).unwrap_or((None, None));
        let first = hostcalls::set_shared_data(key, Some(b"first"), cas);
        let second = hostcalls::set_shared_data(key, Some(b"second"), cas);
        let name = |r: Result<(), Status>| r.map(|_| "Ok".to_string()).unwrap_or_else(status_name);
        self.emit(
            "stale_cas",
            json!({"key": key, "cas": cas, "first": name(first), "second": name(second)}),
        );
    }

    fn call(&mut self, cluster: &str, timeout_ms: u64, with_path: bool) {
        let mut headers = vec![
            (":method", "POST"),
            (":authority", "probe.local"),
            ("x-probe", "call"),
        ];
        if with_path {
            headers.push((":path", "/probe"));
        }
        let result = hostcalls::dispatch_http_call(
            cluster,
            headers,
            Some(b"probe-body"),
            vec![],
            Duration::from_millis(timeout_ms),
        );
        match result {
            Ok(token) => self.emit(
                "call_dispatched",
                json!({"cluster": cluster, "token": token}),
            ),
            Err(s) => self.emit(
                "call_dispatched",
                json!({"cluster": cluster, "error": status_name(s)}),
            ),
        }
    }
}
