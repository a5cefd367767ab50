//! The numbers of the proxy-wasm ABI v0.2.1: statuses, buffer and map types,
//! callback return codes, and the serialised header-map format.
//!
//! Values follow the spec (`abi-versions/v0.2.1`) and proxy-wasm-cpp-host,
//! which is what Envoy links.

/// A `WasmResult` as returned by every `proxy_*` host function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The key, map, queue or metric does not exist.
    NotFound = 1,
    /// The call is not allowed now or its arguments are invalid.
    BadArgument = 2,
    /// A property could not be serialised.
    SerializationFailure = 3,
    /// A gRPC service could not be parsed.
    ParseFailure = 4,
    /// A guest pointer or length is outside the VM's memory.
    InvalidMemoryAccess = 6,
    /// The queue is empty.
    Empty = 7,
    /// The shared-data compare-and-swap value is stale.
    CasMismatch = 8,
    /// The host could not do what was asked.
    InternalFailure = 10,
    /// The peer went away (an HTTP call's failure status).
    BrokenConnection = 11,
    /// Not implemented by this host.
    Unimplemented = 12,
}

impl Status {
    /// The value handed back to the guest.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// `proxy_get_buffer_bytes` / `proxy_set_buffer_bytes` buffer types.
pub mod buffer {
    #[allow(missing_docs)]
    pub const HTTP_REQUEST_BODY: u32 = 0;
    #[allow(missing_docs)]
    pub const HTTP_RESPONSE_BODY: u32 = 1;
    #[allow(missing_docs)]
    pub const DOWNSTREAM_DATA: u32 = 2;
    #[allow(missing_docs)]
    pub const UPSTREAM_DATA: u32 = 3;
    #[allow(missing_docs)]
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    #[allow(missing_docs)]
    pub const GRPC_RECEIVE_BUFFER: u32 = 5;
    #[allow(missing_docs)]
    pub const VM_CONFIGURATION: u32 = 6;
    #[allow(missing_docs)]
    pub const PLUGIN_CONFIGURATION: u32 = 7;
    #[allow(missing_docs)]
    pub const CALL_DATA: u32 = 8;
    #[allow(missing_docs)]
    pub const MAX: u32 = CALL_DATA;
}

/// Header map types.
pub mod map {
    #[allow(missing_docs)]
    pub const REQUEST_HEADERS: u32 = 0;
    #[allow(missing_docs)]
    pub const REQUEST_TRAILERS: u32 = 1;
    #[allow(missing_docs)]
    pub const RESPONSE_HEADERS: u32 = 2;
    #[allow(missing_docs)]
    pub const RESPONSE_TRAILERS: u32 = 3;
    #[allow(missing_docs)]
    pub const GRPC_INITIAL_METADATA: u32 = 4;
    #[allow(missing_docs)]
    pub const GRPC_TRAILING_METADATA: u32 = 5;
    #[allow(missing_docs)]
    pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
    #[allow(missing_docs)]
    pub const HTTP_CALL_RESPONSE_TRAILERS: u32 = 7;
    #[allow(missing_docs)]
    pub const MAX: u32 = HTTP_CALL_RESPONSE_TRAILERS;
}

/// `proxy_continue_stream` / `proxy_close_stream` stream types.
pub mod stream_type {
    #[allow(missing_docs)]
    pub const REQUEST: u32 = 0;
    #[allow(missing_docs)]
    pub const RESPONSE: u32 = 1;
    #[allow(missing_docs)]
    pub const DOWNSTREAM: u32 = 2;
    #[allow(missing_docs)]
    pub const UPSTREAM: u32 = 3;
}

/// Metric types, also the low two bits of every metric id.
pub mod metric_type {
    #[allow(missing_docs)]
    pub const COUNTER: u32 = 0;
    #[allow(missing_docs)]
    pub const GAUGE: u32 = 1;
    #[allow(missing_docs)]
    pub const HISTOGRAM: u32 = 2;
    /// Envoy's `kMetricTypeMask`.
    pub const MASK: u32 = 0x3;
    /// Envoy's `kMetricIdIncrement`: ids of one type are 4 apart.
    pub const ID_INCREMENT: u32 = 0x4;
}

/// How Envoy's filter manager reads a header callback's return value
/// (`convertVmCallResultToFilterHeadersStatus` in proxy-wasm-cpp-host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadersStatus {
    /// Pass the headers on.
    Continue,
    /// Stop everything (headers, body, trailers) until `proxy_continue_stream`.
    /// `watermark` means the body is buffered with back-pressure only; without
    /// it the per-stream buffer limit applies (413 / 500).
    StopAll { watermark: bool },
}

impl HeadersStatus {
    /// `stopped` is true when the callback called `send_local_response`.
    pub(crate) fn from_raw(raw: u32, stopped: bool) -> HeadersStatus {
        if stopped {
            return HeadersStatus::StopAll { watermark: true };
        }
        match raw {
            // Continue, and ContinueAndEndStream which Envoy maps to Continue.
            0 | 2 => HeadersStatus::Continue,
            // StopIteration becomes StopAllIterationAndWatermark: the 0.2.x
            // default (`allow_on_headers_stop_iteration` is false).
            1 => HeadersStatus::StopAll { watermark: true },
            3 => HeadersStatus::StopAll { watermark: false },
            _ => HeadersStatus::StopAll { watermark: true },
        }
    }
}

/// How Envoy reads a body callback's return value
/// (`convertVmCallResultToFilterDataStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataStatus {
    Continue,
    /// The SDK's `Action::Pause`: buffer, and show the whole buffer next time.
    StopAndBuffer,
    /// Buffer with back-pressure only; the next callback sees only the new chunk.
    StopAndWatermark,
    /// Drop the chunk (the filter took it).
    StopNoBuffer,
}

impl DataStatus {
    pub(crate) fn from_raw(raw: u32, stopped: bool) -> DataStatus {
        if stopped {
            return DataStatus::StopNoBuffer;
        }
        match raw {
            0 => DataStatus::Continue,
            1 => DataStatus::StopAndBuffer,
            2 => DataStatus::StopAndWatermark,
            _ => DataStatus::StopNoBuffer,
        }
    }
}

/// Trailer callbacks: anything but 0 stops iteration.
pub(crate) fn trailers_continue(raw: u32, stopped: bool) -> bool {
    !stopped && raw == 0
}

/// Serialise header pairs the way the ABI passes maps:
/// `count, (key_len, value_len)*, (key \0 value \0)*`, all u32 little-endian.
pub(crate) fn serialize_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let mut size = 4;
    for (k, v) in pairs {
        size += 8 + k.len() + v.len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Parse a serialised map coming from the guest. Like proxy-wasm-cpp-host's
/// `PairsUtil::toPairs`, malformed input yields an empty list rather than an
/// error: the guest cannot crash the host with garbage.
pub(crate) fn parse_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let read_u32 = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let parse = || -> Option<Vec<(String, String)>> {
        let n = read_u32(0)?;
        let mut sizes_at = 4usize;
        let mut data_at = n.checked_mul(8)?.checked_add(4)?;
        if data_at > bytes.len() {
            return None;
        }
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let key_len = read_u32(sizes_at)?;
            let value_len = read_u32(sizes_at + 4)?;
            sizes_at += 8;
            let key = bytes.get(data_at..data_at.checked_add(key_len)?)?;
            data_at = data_at.checked_add(key_len + 1)?;
            let value = bytes.get(data_at..data_at.checked_add(value_len)?)?;
            data_at = data_at.checked_add(value_len + 1)?;
            pairs.push((
                String::from_utf8_lossy(key).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
        Some(pairs)
    };
    parse().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let pairs = vec![
            (":method".to_string(), "GET".to_string()),
            ("x".to_string(), String::new()),
        ];
        assert_eq!(parse_pairs(&serialize_pairs(&pairs)), pairs);
    }

    #[test]
    fn garbage_pairs_parse_as_empty() {
        assert!(parse_pairs(&[0xff, 0xff, 0xff, 0xff, 1, 2]).is_empty());
        assert!(parse_pairs(&[]).is_empty());
        let mut bad = serialize_pairs(&[("a".into(), "b".into())]);
        bad[4] = 200;
        assert!(parse_pairs(&bad).is_empty());
    }
}
