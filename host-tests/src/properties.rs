//! Properties: `proxy_get_property` / `proxy_set_property`.
//!
//! Envoy resolves a path of NUL-separated segments against CEL attributes
//! (`source/extensions/filters/common/expr/context.cc`) and serialises the
//! value natively: strings and bytes raw, int64/uint64 as 8 little-endian
//! bytes, bools as one byte, timestamps and durations as int64 nanoseconds,
//! maps as serialised header pairs. What is emulated:
//!
//! | path | value |
//! |---|---|
//! | `plugin_name`, `plugin_root_id`, `plugin_vm_id` | string |
//! | `request.path` `url_path` `host` `scheme` `method` `referer` `useragent` `id` `query` | string, only while the request headers are readable (request-header phase, or `on_log`) |
//! | `request.headers` / `request.headers.<name>` | pairs / string, same condition |
//! | `request.time` | int64 ns, stream start |
//! | `request.duration` | int64 ns, once the stream is complete (`on_log`) |
//! | `request.size`, `request.total_size` | int64 |
//! | `request.protocol` | `HTTP/1.1` |
//! | `response.code` | int64, once response headers exist (upstream or local reply) |
//! | `response.code_details` | string, when set (local replies, `close_stream`) |
//! | `response.headers[.<name>]`, `response.trailers[.<name>]` | while readable (`on_response_*`, `on_log`) |
//! | `response.size`, `response.total_size`, `response.flags` | int64 |
//! | `source.address` / `source.port`, `destination.address` / `destination.port` | fixed test addresses |
//! | `connection.id` | uint64 (the stream id) ; `connection.mtls` false |
//! | any other single name | the value a `proxy_set_property` stored for this stream (filter state `wasm.<name>`) |
//!
//! Everything else is NotFound; on a root context (no stream) every
//! stream attribute is NotFound, as in Envoy.

use crate::abi::{self, Status};
use crate::headers::HeaderMap;
use crate::stream::StreamState;
use crate::vm::VmState;

/// The client address Envoy would see (TEST-NET-1).
pub const SOURCE_ADDRESS: &str = "192.0.2.10";
/// The client port.
pub const SOURCE_PORT: i64 = 43210;
/// The listener address.
pub const DESTINATION_ADDRESS: &str = "192.0.2.1";
/// The listener port.
pub const DESTINATION_PORT: i64 = 10000;

fn int(v: i64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

fn string(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// `proxy_get_property`.
pub(crate) fn get(vm: &VmState, path: &[u8]) -> Result<Vec<u8>, Status> {
    let segments: Vec<String> = path
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    let first = segments.first().map(String::as_str).unwrap_or("");
    let rest: Vec<&str> = segments.iter().skip(1).map(String::as_str).collect();
    let stream = vm.streams.get(&vm.context());
    match first {
        "plugin_name" => leaf(&rest, string(&vm.plugin.name)),
        "plugin_root_id" => leaf(&rest, string(&vm.plugin.root_id)),
        "plugin_vm_id" => leaf(&rest, string(&vm.plugin.vm_id)),
        "request" => request(vm, stream.ok_or(Status::NotFound)?, &rest),
        "response" => response(stream.ok_or(Status::NotFound)?, &rest),
        "source" => peer(
            stream.ok_or(Status::NotFound)?,
            &rest,
            SOURCE_ADDRESS,
            SOURCE_PORT,
        ),
        "destination" => peer(
            stream.ok_or(Status::NotFound)?,
            &rest,
            DESTINATION_ADDRESS,
            DESTINATION_PORT,
        ),
        "connection" => {
            let s = stream.ok_or(Status::NotFound)?;
            match rest.as_slice() {
                ["id"] => Ok((s.id as u64).to_le_bytes().to_vec()),
                ["mtls"] => Ok(vec![0]),
                ["requested_server_name"] => Ok(Vec::new()),
                _ => Err(Status::NotFound),
            }
        }
        _ => {
            let s = stream.ok_or(Status::NotFound)?;
            let key = String::from_utf8_lossy(path).into_owned();
            s.filter_state.get(&key).cloned().ok_or(Status::NotFound)
        }
    }
}

/// A scalar has no fields below it.
fn leaf(rest: &[&str], value: Vec<u8>) -> Result<Vec<u8>, Status> {
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(Status::NotFound)
    }
}

fn map_value(map: Option<&HeaderMap>, rest: &[&str]) -> Result<Vec<u8>, Status> {
    match rest {
        [] => Ok(abi::serialize_pairs(map.map(|m| m.pairs()).unwrap_or(&[]))),
        [name] => map
            .and_then(|m| m.get(name))
            .map(string)
            .ok_or(Status::NotFound),
        _ => Err(Status::NotFound),
    }
}

fn request(vm: &VmState, s: &StreamState, rest: &[&str]) -> Result<Vec<u8>, Status> {
    // Envoy hands CEL the Context's request header pointer (or the access
    // log's headers): outside those phases header-derived fields are absent.
    let headers = if s.access_log_phase {
        s.req.headers_arrived.then_some(&s.req.headers)
    } else {
        s.req.headers_access.then_some(&s.req.headers)
    };
    let header = |name: &str| {
        headers
            .and_then(|h| h.get(name))
            .map(string)
            .ok_or(Status::NotFound)
    };
    let Some((key, below)) = rest.split_first() else {
        return Err(Status::SerializationFailure);
    };
    if *key == "headers" {
        return map_value(headers, below);
    }
    let value = match *key {
        "path" => header(":path")?,
        "url_path" => {
            let path = headers
                .and_then(|h| h.get(":path"))
                .ok_or(Status::NotFound)?;
            string(path.split('?').next().unwrap_or(""))
        }
        "query" => {
            let path = headers
                .and_then(|h| h.get(":path"))
                .ok_or(Status::NotFound)?;
            let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
            string(query.split('#').next().unwrap_or(""))
        }
        "host" => header(":authority")?,
        "scheme" => header(":scheme")?,
        "method" => header(":method")?,
        "referer" => header("referer")?,
        "useragent" => header("user-agent")?,
        "id" => header("x-request-id")?,
        "time" => int(s.start_ns as i64),
        "duration" => {
            let end = s.end_ns.ok_or(Status::NotFound)?;
            int(end.saturating_sub(s.start_ns) as i64)
        }
        "size" => {
            let from_header = headers
                .and_then(|h| h.get("content-length"))
                .and_then(|v| v.parse::<i64>().ok());
            int(from_header.unwrap_or(s.req.received as i64))
        }
        "total_size" => int((s.req.received + headers.map_or(0, |h| h.byte_size())) as i64),
        "protocol" => string("HTTP/1.1"),
        _ => return Err(Status::NotFound),
    };
    let _ = vm;
    leaf(below, value)
}

fn response(s: &StreamState, rest: &[&str]) -> Result<Vec<u8>, Status> {
    let headers = if s.access_log_phase {
        s.resp
            .out
            .headers
            .as_ref()
            .or(s.resp.headers_arrived.then_some(&s.resp.headers))
    } else {
        s.resp.headers_access.then_some(&s.resp.headers)
    };
    let trailers = if s.access_log_phase {
        s.resp.out.trailers.as_ref().or(s.resp.trailers.as_ref())
    } else {
        s.resp.trailers.as_ref().filter(|_| s.resp.trailers_access)
    };
    let Some((key, below)) = rest.split_first() else {
        return Err(Status::SerializationFailure);
    };
    let value = match *key {
        "headers" => return map_value(headers, below),
        "trailers" => return map_value(trailers, below),
        "code" => int(s.response_code.ok_or(Status::NotFound)? as i64),
        "code_details" => string(s.code_details.as_deref().ok_or(Status::NotFound)?),
        "size" => int(s.resp.out.body.len() as i64),
        "total_size" => int((s.resp.out.body.len()
            + s.resp.out.headers.as_ref().map_or(0, |h| h.byte_size())
            + s.resp.out.trailers.as_ref().map_or(0, |h| h.byte_size()))
            as i64),
        "flags" => int(0),
        _ => return Err(Status::NotFound),
    };
    leaf(below, value)
}

fn peer(_s: &StreamState, rest: &[&str], address: &str, port: i64) -> Result<Vec<u8>, Status> {
    match rest {
        ["address"] => Ok(string(&format!("{address}:{port}"))),
        ["port"] => Ok(int(port)),
        _ => Err(Status::NotFound),
    }
}

/// `proxy_set_property`: stores the value in the stream's filter state
/// (Envoy: `wasm.<path>`); without a stream there is no filter state and
/// Envoy answers NotFound.
pub(crate) fn set(vm: &mut VmState, path: &[u8], value: &[u8]) -> Status {
    let ctx = vm.context();
    match vm.streams.get_mut(&ctx) {
        Some(s) => {
            s.filter_state
                .insert(String::from_utf8_lossy(path).into_owned(), value.to_vec());
            Status::Ok
        }
        None => Status::NotFound,
    }
}
