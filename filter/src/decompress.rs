//! Incremental gzip and deflate decoding for responses that arrive
//! compressed although the filter removed `accept-encoding` from the
//! request. Compressed bytes cannot be scanned; decoding lets the filter
//! inspect them and send them on uncompressed.
//!
//! HTTP's `deflate` is the zlib format (RFC 9110 §8.4.1.2), but some servers
//! send raw deflate; the first bytes decide. Brotli and zstd are not decoded
//! (their decoders would triple the module): the route's fail mode applies.

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};
use std::fmt;

/// A content coding the filter can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
}

impl Coding {
    /// Parses a `content-encoding` value: `Ok(None)` for identity or absent,
    /// `Ok(Some)` for a coding we decode, `Err` naming one we cannot.
    pub fn from_header(value: Option<&str>) -> Result<Option<Coding>, String> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let codings: Vec<String> = value
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| c != "identity")
            .collect();
        match codings.as_slice() {
            [] => Ok(None),
            [one] if one == "gzip" || one == "x-gzip" => Ok(Some(Coding::Gzip)),
            [one] if one == "deflate" => Ok(Some(Coding::Deflate)),
            _ => Err(value.to_string()),
        }
    }
}

/// Why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot decode compressed response: {}", self.0)
    }
}

/// Where a gzip member's header parsing stands.
#[derive(Debug)]
enum Stage {
    /// Collecting the gzip header (RFC 1952 §2.3) before the deflate data.
    GzipHeader(Vec<u8>),
    /// Undecided deflate flavour: waiting for the first two bytes.
    DeflateProbe(Vec<u8>),
    Body,
    /// The deflate stream ended; trailing bytes (gzip trailer) are ignored.
    Done,
}

/// An incremental decoder; output never exceeds `max_output` bytes.
pub struct Decoder {
    state: Option<Box<InflateState>>,
    stage: Stage,
    max_output: usize,
    produced: usize,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("stage", &self.stage)
            .field("produced", &self.produced)
            .finish()
    }
}

/// Decoded bytes per call are produced in slices of this size.
const OUT_STEP: usize = 32 * 1024;

impl Decoder {
    pub fn new(coding: Coding, max_output: usize) -> Decoder {
        let stage = match coding {
            Coding::Gzip => Stage::GzipHeader(Vec::new()),
            Coding::Deflate => Stage::DeflateProbe(Vec::new()),
        };
        Decoder {
            state: None,
            stage,
            max_output,
            produced: 0,
        }
    }

    /// Decodes the next compressed bytes, appending plain bytes to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        match &mut self.stage {
            Stage::GzipHeader(header) => {
                header.extend_from_slice(input);
                let Some(len) = gzip_header_len(header)? else {
                    return Ok(());
                };
                let rest = header.split_off(len);
                self.state = Some(InflateState::new_boxed(DataFormat::Raw));
                self.stage = Stage::Body;
                self.inflate(&rest, out)
            }
            Stage::DeflateProbe(probe) => {
                probe.extend_from_slice(input);
                if probe.len() < 2 {
                    return Ok(());
                }
                // A zlib header is CMF/FLG with method 8 and a check multiple of 31.
                let zlib = probe[0] & 0x0f == 8
                    && (u16::from(probe[0]) << 8 | u16::from(probe[1])) % 31 == 0;
                let format = if zlib {
                    DataFormat::Zlib
                } else {
                    DataFormat::Raw
                };
                let bytes = std::mem::take(probe);
                self.state = Some(InflateState::new_boxed(format));
                self.stage = Stage::Body;
                self.inflate(&bytes, out)
            }
            Stage::Body => self.inflate(input, out),
            // The gzip trailer (CRC32, size) and anything after it are not checked.
            Stage::Done => Ok(()),
        }
    }

    /// Ends the input: an unfinished deflate stream is an error (truncated body).
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        match self.stage {
            Stage::Done => Ok(()),
            Stage::GzipHeader(ref h) if h.is_empty() => Ok(()),
            Stage::DeflateProbe(ref p) if p.is_empty() => Ok(()),
            _ => Err(DecodeError("the compressed body ended early".into())),
        }
    }

    fn inflate(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let Some(state) = self.state.as_mut() else {
            return Ok(());
        };
        loop {
            let start = out.len();
            out.resize(start + OUT_STEP, 0);
            let result = inflate(state, input, &mut out[start..], MZFlush::None);
            out.truncate(start + result.bytes_written);
            self.produced += result.bytes_written;
            input = &input[result.bytes_consumed..];
            if self.produced > self.max_output {
                return Err(DecodeError(format!(
                    "it expands beyond {} bytes",
                    self.max_output
                )));
            }
            match result.status {
                Ok(MZStatus::StreamEnd) => {
                    self.stage = Stage::Done;
                    return Ok(());
                }
                Ok(_) => {}
                Err(MZError::Buf) => return Ok(()),
                Err(e) => return Err(DecodeError(format!("corrupt data ({e:?})"))),
            }
            if input.is_empty() && result.bytes_written < OUT_STEP {
                return Ok(());
            }
        }
    }
}

/// The length of a complete gzip header at the start of `h`, `None` when
/// more bytes are needed.
fn gzip_header_len(h: &[u8]) -> Result<Option<usize>, DecodeError> {
    if h.len() < 10 {
        if h.len() >= 2 && h[..2] != [0x1f, 0x8b] {
            return Err(DecodeError("not gzip data".into()));
        }
        return Ok(None);
    }
    if h[..3] != [0x1f, 0x8b, 8] {
        return Err(DecodeError("not gzip data".into()));
    }
    let flags = h[3];
    let mut at = 10;
    if flags & 0x04 != 0 {
        let Some(len) = h.get(at..at + 2) else {
            return Ok(None);
        };
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            match h.get(at..).and_then(|rest| memchr::memchr(0, rest)) {
                Some(nul) => at += nul + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    Ok((h.len() >= at).then_some(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use miniz_oxide::deflate::{compress_to_vec, compress_to_vec_zlib};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 3];
        out.extend_from_slice(b"body.json\0");
        out.extend(compress_to_vec(data, 6));
        out.extend_from_slice(&[0; 8]);
        out
    }

    fn decode_in_chunks(coding: Coding, data: &[u8], chunk: usize) -> Result<Vec<u8>, DecodeError> {
        let mut d = Decoder::new(coding, 1 << 20);
        let mut out = Vec::new();
        for piece in data.chunks(chunk) {
            d.push(piece, &mut out)?;
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn header_values_are_parsed_like_http_says() {
        assert_eq!(Coding::from_header(None), Ok(None));
        assert_eq!(Coding::from_header(Some("identity")), Ok(None));
        assert_eq!(Coding::from_header(Some("GZIP")), Ok(Some(Coding::Gzip)));
        assert_eq!(Coding::from_header(Some("x-gzip")), Ok(Some(Coding::Gzip)));
        assert_eq!(
            Coding::from_header(Some("deflate")),
            Ok(Some(Coding::Deflate))
        );
        assert!(Coding::from_header(Some("br")).is_err());
        assert!(Coding::from_header(Some("gzip, br")).is_err());
    }

    #[test]
    fn gzip_with_a_file_name_decodes_in_any_chunking() {
        let text = b"data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\n".repeat(200);
        let packed = gzip(&text);
        for chunk in [1, 3, 10, 4096] {
            assert_eq!(
                decode_in_chunks(Coding::Gzip, &packed, chunk).unwrap(),
                text,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn deflate_is_zlib_or_raw() {
        let text = b"{\"answer\": \"42\"}".repeat(50);
        assert_eq!(
            decode_in_chunks(Coding::Deflate, &compress_to_vec_zlib(&text, 6), 7).unwrap(),
            text
        );
        assert_eq!(
            decode_in_chunks(Coding::Deflate, &compress_to_vec(&text, 6), 7).unwrap(),
            text
        );
    }

    #[test]
    fn garbage_truncation_and_bombs_are_errors_not_panics() {
        assert!(decode_in_chunks(Coding::Gzip, b"this is not gzip at all", 4).is_err());
        let packed = gzip(&[b'a'; 10_000]);
        assert!(decode_in_chunks(Coding::Gzip, &packed[..packed.len() / 2], 5).is_err());
        let mut d = Decoder::new(Coding::Gzip, 1000);
        assert!(d.push(&gzip(&[0u8; 100_000]), &mut Vec::new()).is_err());
    }
}
