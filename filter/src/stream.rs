//! The response pipeline: SSE decode → per-frame text extraction → a
//! [`Holdback`] per channel → re-encode, with frames released in their
//! original order.
//!
//! ```text
//!  bytes ─► SseDecoder ─► events ─► StreamCodec::parse_next ─► pieces ─► Holdback (per channel)
//!                            │                                               │ released pieces
//!                            └──────────► queue of held frames ◄─────────────┘
//!                                             │ front frame complete?
//!                                             ▼
//!                    untouched: original bytes │ touched: data re-spliced, event re-framed
//! ```
//!
//! A frame shaped like the one before it (the same bytes around its one
//! piece's string) reuses that frame's reading instead of going through
//! serde again (`codec/template.rs`): the reading is the same, only cheaper.
//!
//! # Guarantees
//!
//! * **Split-independence.** The output depends only on the upstream bytes,
//!   not on how they were chunked: splits inside UTF-8 sequences, SSE lines,
//!   `\r\n`, JSON strings or `\u` escapes change nothing, because frames are
//!   processed only once the decoder has a complete event, and everything
//!   after that is a deterministic function of the event sequence (the
//!   memory cap included: it is checked after each event, never per chunk).
//! * **Byte-faithful.** A frame no redaction touches is sent as its exact
//!   input bytes. A touched frame keeps every byte except the JSON string
//!   literals of its changed pieces ([`crate::codec::splice`]) and keeps its
//!   SSE lines and line endings ([`RawEvent::with_data`]).
//! * **Order.** Frames leave in the order they arrived; a frame waits while
//!   any of its pieces (or any earlier frame) is still held.
//! * **Blocking spans never leave.** A span whose detector action is
//!   [`SpanAction::Block`] ends the stream in-band (dropping every held
//!   frame) before the frame where it starts is sent.
//! * **Repeats agree.** Full-text repeats (OpenAI Responses `*.done` events
//!   and `response.completed`) are redacted whole with [`redact_str`], which
//!   gives exactly the concatenation of the streamed pieces' output. So a
//!   repeat of a channel whose streamed text found nothing, byte for byte
//!   the same text (by a per-stream keyed digest), is not scanned again.
//!
//! # Memory
//!
//! Held state is: the frames in the queue (raw bytes + data + texts) plus
//! each channel's scanner (at most [`crate::holdback::Bounds::max_retained`]
//! bytes of text plus the output of its unreleased pieces). After every
//! event this total is brought under [`StreamOptions::max_held_bytes`]; the
//! SSE decoder adds at most [`StreamOptions::max_event_size`] bytes of a
//! partial event (plus the bytes of the last `push`). When the queue grows
//! past the cap — one channel's text is held while other channels stream
//! many frames, or frames are huge — [`OverflowPolicy`] decides: by default
//! the channels the oldest frame waits on are flushed early (their scanners
//! finish as if their text ended there, then start afresh), which can miss a
//! match straddling the flush point; each such flush is counted in
//! [`StreamStats::forced_flushes`] for audit. `OverflowPolicy::Block` ends
//! the stream in-band instead.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasher, DefaultHasher, Hasher, RandomState};

use smallvec::SmallVec;

use crate::codec::{
    self, BlockStyle, Channel, ChannelEnd, FrameMeta, FrameView, Locator, Provider, StreamCodec,
};
use crate::holdback::{redact_str, Holdback, HoldbackConfig, Released, SpanAction, SpanDetector};
use crate::sse::{Opaque, RawEvent, SseDecoder, DEFAULT_MAX_EVENT_SIZE};

/// Default cap on held state per stream: 512 KiB. A typical window of a few
/// hundred text bytes arrives in ~100 frames of ~250 bytes, so this leaves
/// room for several interleaved channels and bursts of other frames.
pub const DEFAULT_MAX_HELD_BYTES: usize = 512 * 1024;

/// How many channels' text offsets a stream remembers after they close; past
/// this, a reopened channel's finding offsets restart at 0.
const MAX_FLUSHED_CHANNELS: usize = 1024;

/// Room for decoded events a stream keeps between pushes (see `events`).
const RETAINED_EVENTS: usize = 8;
/// Boxes of sent frames a stream keeps for the frames to come: as many as
/// the decoder keeps event buffers, bounded for the same reason.
const SPARE_FRAMES: usize = crate::sse::SPARE_BUFFERS;

/// Bytes of piece text a stream keeps room for between events (see `piece_text`).
const RETAINED_PIECE_TEXT: usize = 4096;

/// How many findings a stream keeps before counting instead.
pub const MAX_FINDINGS: usize = 4096;

/// What to do when held state passes the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Flush the channels the oldest frame waits on, early (counted).
    #[default]
    FlushEarly,
    /// End the stream in-band.
    Block,
}

/// What to do with frames that cannot be scanned: oversized or non-UTF-8
/// events, and JSON data that does not parse or decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpaquePolicy {
    /// Forward them unchanged, counted in [`StreamStats`].
    #[default]
    Forward,
    /// End the stream in-band before the frame (fail closed).
    Block,
}

/// Tuning for a [`ResponseStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// Largest SSE event parsed; longer ones pass as opaque parts.
    pub max_event_size: usize,
    /// Cap on held frames plus scanner state (see the module docs).
    pub max_held_bytes: usize,
    /// Scanner tuning, shared by every channel.
    pub holdback: HoldbackConfig,
    /// Over the cap: flush early or block.
    pub overflow: OverflowPolicy,
    /// Unscannable frames: forward or block.
    pub opaque: OpaquePolicy,
    /// How in-band blocks look.
    pub block_style: BlockStyle,
    /// Keep up to this many bytes of each channel's original text for checks
    /// that need the whole answer (JSON format); 0 keeps nothing.
    pub capture_text_bytes: usize,
    /// The message of blocks the stream decides itself (a [`SpanAction::Block`]
    /// span, overflow, an unscannable frame).
    pub self_block_message: String,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
            holdback: HoldbackConfig::default(),
            capture_text_bytes: 0,
            overflow: OverflowPolicy::default(),
            opaque: OpaquePolicy::default(),
            block_style: BlockStyle::default(),
            self_block_message: "The response was stopped by a content policy.".to_string(),
        }
    }
}

/// A redaction applied in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamFinding {
    /// The channel it was found in.
    pub channel: Channel,
    /// The detector's tag.
    pub tag: u32,
    /// Byte span in the channel's text (for a repeat: in the repeated text).
    pub start: usize,
    /// End of the span.
    pub end: usize,
    /// Found in a full-text repeat (Responses `*.done`, `response.completed`):
    /// the same finding was usually reported for the streamed pieces already.
    pub repeat: bool,
    /// What the detector asked for: redacted, only reported, or blocking.
    pub action: SpanAction,
}

/// Findings so far, capped; remembers whether any asked for a block even
/// when the list is full.
#[derive(Debug, Default)]
struct FindingLog {
    list: Vec<StreamFinding>,
    dropped: u64,
    block: bool,
}

impl FindingLog {
    fn push(&mut self, f: StreamFinding) {
        self.block |= f.action == SpanAction::Block;
        if self.list.len() < MAX_FINDINGS {
            self.list.push(f);
        } else {
            self.dropped += 1;
        }
    }
}

/// Counters for audit and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Events decoded.
    pub frames: u64,
    /// Events sent re-serialised.
    pub frames_rewritten: u64,
    /// Events that were not valid UTF-8.
    pub invalid_utf8: u64,
    /// Parts of oversized events.
    pub oversized_parts: u64,
    /// Events whose JSON did not parse or held an undecodable string.
    pub undecodable: u64,
    /// Early flushes forced by the memory cap.
    pub forced_flushes: u64,
    /// Largest held state seen after an event, in bytes.
    pub peak_held_bytes: usize,
    /// Findings not kept because [`MAX_FINDINGS`] were.
    pub findings_dropped: u64,
    /// Full-text repeats not scanned again: their channel's text, read
    /// whole by one scanner, found nothing (see `Flushed::clean`).
    pub repeats_known_clean: u64,
}

#[derive(Debug)]
struct ChannelState {
    scanner: Holdback,
    /// Bytes of this channel's text before the scanner's offset 0.
    base: usize,
    /// Bytes pushed into the scanner since its offset 0.
    pushed: usize,
    /// Frame seq and piece slot of each unreleased piece, in order.
    owners: VecDeque<(u64, usize)>,
    /// Digest of the text pushed since offset 0 (see [`Flushed::clean`]).
    digest: DefaultHasher,
    /// Whether the scanner has released any span (applied or reported).
    found: bool,
}

/// What a stream remembers of a channel whose scanner finished.
#[derive(Debug, Clone, Copy)]
struct Flushed {
    /// Bytes of the channel's text so far: a later scanner's offset 0.
    bytes: usize,
    /// The digest of the channel's whole text, when one scanner read all of
    /// it and found nothing. A full-text repeat of that text (the
    /// Responses API sends four) then comes out unchanged and finds nothing
    /// too, since [`redact_str`] gives what the stream gave: it is not
    /// scanned again. Keyed per stream, so text cannot be chosen to collide.
    clean: Option<u64>,
}

/// A frame waiting in the queue. A stream holds about a hundred of these
/// (one per few bytes of text in the window), so a frame keeps only what
/// sending it needs: its bytes and lines, where its pieces sit, and the
/// metadata an in-band block must echo. Its decoded `data` is rebuilt for the
/// rare frame that is rewritten, its pieces' text lives in the scanners, and
/// metadata equal to its predecessor's is not kept twice (see
/// [`ResponseStream::meta_to_hold`]). Kept whole, those cost several times the
/// frame's own bytes.
#[derive(Debug)]
struct Held {
    /// The frame's bytes and lines, to send it or rewrite it.
    event: RawEvent,
    /// Its pieces, by slot (inline: a frame has one piece).
    slots: SmallVec<[Slot; 1]>,
    pending: usize,
    /// String literal of each snapshot and its redacted text (`None`: unchanged).
    snapshots: Box<[(Locator, Option<String>)]>,
    /// `None`: the same as the previous frame's.
    meta: Option<Box<FrameMeta<'static>>>,
    terminal: bool,
    /// Bytes counted against the cap (as if `data` and the texts were kept,
    /// so the cap's behaviour does not depend on this representation).
    size: usize,
}

/// One piece of a held frame: where its string literal is, and whether its
/// scanner released it, with its redacted text if that changed.
#[derive(Debug)]
struct Slot {
    channel: Channel,
    locator: Locator,
    released: bool,
    rewrite: Option<String>,
}

/// A redacting pass-through for one streamed response.
///
/// ```
/// use rheostat_filter::codec::Provider;
/// use rheostat_filter::holdback::{Redaction, SpanDetector};
/// use rheostat_filter::stream::{ResponseStream, StreamOptions};
///
/// struct Pin;
/// impl SpanDetector for Pin {
///     fn max_span(&self) -> usize { 4 }
///     fn context(&self) -> usize { 0 }
///     fn find(&self, text: &str, out: &mut Vec<Redaction>) {
///         for (i, _) in text.match_indices("1234") {
///             out.push(Redaction { start: i, end: i + 4, replacement: "****".into(), tag: 1 });
///         }
///     }
/// }
///
/// let mut s = ResponseStream::new(Provider::OpenAiChat, Pin, StreamOptions::default());
/// let mut out = s.push(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"PIN 12\"}}]}\n\n");
/// out.extend(s.push(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"34.\"}}]}\n\ndata: [DONE]\n\n"));
/// out.extend(s.finish());
/// let out = String::from_utf8(out).unwrap();
/// assert!(out.contains("\"PIN ****\"") && out.contains("\"content\":\".\""));
/// assert_eq!(s.findings().len(), 1);
/// ```
#[derive(Debug)]
pub struct ResponseStream<D: SpanDetector> {
    detector: D,
    options: StreamOptions,
    codec: StreamCodec,
    decoder: SseDecoder,
    channels: BTreeMap<Channel, ChannelState>,
    /// Each finished channel (bounded by [`MAX_FLUSHED_CHANNELS`]).
    flushed: BTreeMap<Channel, Flushed>,
    /// The key of the channels' text digests.
    digest_key: RandomState,
    /// Boxed: a queue of ~100 frames grows to 128 slots, and an unboxed
    /// slot is several hundred bytes of mostly empty options.
    queue: VecDeque<Box<Held>>,
    /// Boxes of frames sent, for the next frames (at most [`SPARE_FRAMES`]).
    spare_held: SmallVec<[Box<Held>; SPARE_FRAMES]>,
    next_seq: u64,
    /// The metadata of the last frame queued (see [`Self::meta_to_hold`]).
    last_meta: FrameMeta<'static>,
    queue_bytes: usize,
    findings: FindingLog,
    stats: StreamStats,
    blocked: bool,
    ended: bool,
    /// Reused across pushes, but only while small: a chunk carrying
    /// hundreds of events must not leave every open stream holding room
    /// for hundreds of events.
    events: Vec<RawEvent>,
    released: Vec<Released>,
    /// The current event's piece texts, end to end, with each piece's
    /// channel and end offset: the pieces borrow from the event, which
    /// must be queued before its pieces are scanned (see [`Self::resolve`]).
    /// Reused while small, like `events`.
    piece_text: String,
    piece_ends: Vec<(Channel, usize)>,
    /// Original text per channel (bounded by `capture_text_bytes`) and
    /// whether it was cut short.
    captured: BTreeMap<Channel, (String, bool)>,
}

impl<D: SpanDetector> ResponseStream<D> {
    /// The captured original text of each channel (see
    /// [`StreamOptions::capture_text_bytes`]), with a flag when it was cut short.
    pub fn captured_text(&self) -> impl Iterator<Item = (Channel, &str, bool)> {
        self.captured
            .iter()
            .map(|(c, (t, cut))| (*c, t.as_str(), *cut))
    }

    /// A stream of `provider`'s events, redacted by `detector`.
    pub fn new(provider: Provider, detector: D, options: StreamOptions) -> ResponseStream<D> {
        ResponseStream {
            decoder: SseDecoder::with_max_event_size(options.max_event_size),
            codec: StreamCodec::new(provider),
            detector,
            options,
            channels: BTreeMap::new(),
            flushed: BTreeMap::new(),
            digest_key: RandomState::new(),
            queue: VecDeque::new(),
            spare_held: SmallVec::new(),
            next_seq: 0,
            last_meta: FrameMeta::default(),
            queue_bytes: 0,
            findings: FindingLog::default(),
            stats: StreamStats::default(),
            blocked: false,
            ended: false,
            events: Vec::new(),
            released: Vec::new(),
            piece_text: String::new(),
            piece_ends: Vec::new(),
            captured: BTreeMap::new(),
        }
    }

    /// Feeds upstream bytes; returns the bytes to send downstream now.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.blocked {
            return out;
        }
        let mut events = std::mem::take(&mut self.events);
        self.decoder.push_raw(bytes, &mut events);
        for ev in events.drain(..) {
            self.on_event(ev, &mut out);
        }
        self.recycle_events(events);
        out
    }

    fn recycle_events(&mut self, events: Vec<RawEvent>) {
        if events.capacity() <= RETAINED_EVENTS {
            self.events = events;
        }
    }

    /// Ends the upstream: flushes the decoder and every channel; returns the
    /// remaining bytes. Nothing after a block.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.blocked {
            return out;
        }
        let mut events = std::mem::take(&mut self.events);
        self.decoder.finish_raw(&mut events);
        for ev in events.drain(..) {
            self.on_event(ev, &mut out);
        }
        self.recycle_events(events);
        if !self.blocked {
            let all: Vec<Channel> = self.channels.keys().copied().collect();
            for ch in all {
                self.flush_channel(ch);
            }
            self.drain_ready(&mut out);
        }
        if !self.blocked {
            self.ended = true;
        }
        out
    }

    /// Ends the stream in-band in the provider's format (see
    /// [`crate::codec::BlockStyle`]), dropping every held frame. Returns the
    /// closing frames; empty when the stream already ended or was blocked.
    /// Later `push`/`finish` calls return nothing.
    pub fn block(&mut self, reason: &str) -> Vec<u8> {
        if self.blocked || self.ended {
            self.blocked = true;
            return Vec::new();
        }
        self.blocked = true;
        self.queue.clear();
        self.queue_bytes = 0;
        self.channels.clear();
        self.codec.block_frames(reason, self.options.block_style)
    }

    /// Spans found so far (redacted, reported or blocking), up to [`MAX_FINDINGS`].
    pub fn findings(&self) -> &[StreamFinding] {
        &self.findings.list
    }

    /// Takes the findings gathered since the last call.
    pub fn take_findings(&mut self) -> Vec<StreamFinding> {
        std::mem::take(&mut self.findings.list)
    }

    /// Counters so far.
    pub fn stats(&self) -> StreamStats {
        StreamStats {
            findings_dropped: self.findings.dropped,
            ..self.stats
        }
    }

    /// Whether the stream was ended in-band (by [`Self::block`] or a policy).
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// Bytes of held state now (queue plus scanners; not the decoder's partial event).
    pub fn held_bytes(&self) -> usize {
        self.queue_bytes
            + self
                .channels
                .values()
                .map(|c| c.scanner.held_bytes())
                .sum::<usize>()
    }

    /// Frames waiting to be sent.
    pub fn held_frames(&self) -> usize {
        self.queue.len()
    }

    /// The provider this stream speaks.
    pub fn provider(&self) -> Provider {
        self.codec.provider()
    }

    /// Output tokens the provider reported in the frames sent so far.
    pub fn output_tokens(&self) -> Option<u64> {
        self.codec.state().output_tokens
    }

    fn on_event(&mut self, mut event: RawEvent, out: &mut Vec<u8>) {
        if self.blocked {
            return;
        }
        self.stats.frames += 1;
        if event.opaque() == Some(Opaque::InvalidUtf8) {
            self.stats.invalid_utf8 += 1;
            // Sent as read only when it then reads as a frame: anything
            // else passes as it came, like other frames that are not JSON.
            if self.options.opaque == OpaquePolicy::Forward {
                if let Some(read) = read_replacing(&event) {
                    let data = read.data();
                    if data.is_some()
                        && !self
                            .codec
                            .parse_data(read.event(), data.as_deref())
                            .undecodable
                    {
                        event = read;
                    }
                }
            }
        }
        let data = event.data();
        let mut unscannable = false;
        let FrameView {
            pieces,
            snapshots: snapshot_pieces,
            ends,
            terminal,
            meta,
            undecodable,
        } = match event.opaque() {
            Some(Opaque::InvalidUtf8) => {
                unscannable = true;
                FrameView::default()
            }
            Some(Opaque::Oversized { .. }) => {
                self.stats.oversized_parts += 1;
                unscannable = true;
                FrameView::default()
            }
            None => self.codec.parse_next(event.event(), data.as_deref()),
        };
        if undecodable {
            self.stats.undecodable += 1;
            unscannable = true;
        }
        if unscannable && self.options.opaque == OpaquePolicy::Block {
            let msg = self.options.self_block_message.clone();
            out.extend(self.block(&msg));
            return;
        }

        // A channel this frame ends and repeats whole, without adding to it,
        // is finished first: its repeat may then be known clean. (Before
        // this frame takes its seq: finishing releases earlier frames.)
        for end in &ends {
            for ch in self.ending(*end) {
                let repeated = snapshot_pieces.iter().any(|s| s.channel == ch);
                if repeated && pieces.iter().all(|p| p.channel != ch) {
                    self.flush_channel(ch);
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut snapshots = Vec::with_capacity(snapshot_pieces.len());
        for snap in &snapshot_pieces {
            if self.known_clean(snap.channel, &snap.text) {
                self.stats.repeats_known_clean += 1;
                snapshots.push(None);
                continue;
            }
            let r = redact_str(&self.detector, self.options.holdback, &snap.text);
            for a in &r.redactions {
                self.findings.push(StreamFinding {
                    channel: snap.channel,
                    tag: a.tag,
                    start: a.start,
                    end: a.end,
                    repeat: true,
                    action: a.action,
                });
            }
            snapshots.push(r.changed.then_some(r.text));
        }
        let size = event.raw.len()
            + data.as_ref().map_or(0, |d| d.len())
            + pieces.iter().map(|p| p.text.len()).sum::<usize>()
            + snapshots.iter().flatten().map(String::len).sum::<usize>();
        let mut text = std::mem::take(&mut self.piece_text);
        let mut piece_ends = std::mem::take(&mut self.piece_ends);
        text.clear();
        piece_ends.clear();
        for p in &pieces {
            text.push_str(&p.text);
            piece_ends.push((p.channel, text.len()));
        }
        let meta = self.meta_to_hold(meta);
        let held = self.boxed(Held {
            slots: pieces
                .iter()
                .map(|p| Slot {
                    channel: p.channel,
                    locator: p.locator,
                    released: false,
                    rewrite: None,
                })
                .collect(),
            pending: pieces.len(),
            snapshots: snapshot_pieces
                .iter()
                .map(|s| s.locator)
                .zip(snapshots)
                .collect(),
            meta,
            terminal,
            size,
            event: {
                // The pieces borrow from the event: let them go before it moves.
                drop(pieces);
                drop(snapshot_pieces);
                drop(data);
                event
            },
        });
        self.queue.push_back(held);
        self.queue_bytes += size;

        let mut start = 0;
        for (slot, &(channel, end)) in piece_ends.iter().enumerate() {
            let text = &text[start..end];
            start = end;
            if self.options.capture_text_bytes > 0 {
                let kept = self.captured.entry(channel).or_default();
                if kept.0.len() + text.len() <= self.options.capture_text_bytes {
                    kept.0.push_str(text);
                } else {
                    kept.1 = true;
                }
            }
            let holdback = self.options.holdback;
            let detector = &self.detector;
            let flushed = &self.flushed;
            let digest_key = &self.digest_key;
            let state = self
                .channels
                .entry(channel)
                .or_insert_with(|| ChannelState {
                    scanner: Holdback::new(detector, holdback),
                    base: flushed.get(&channel).map_or(0, |f| f.bytes),
                    pushed: 0,
                    owners: VecDeque::new(),
                    digest: digest_key.build_hasher(),
                    found: false,
                });
            state.owners.push_back((seq, slot));
            state.pushed += text.len();
            state.digest.write(text.as_bytes());
            state.scanner.push(&self.detector, text, &mut self.released);
            self.resolve(channel);
        }
        if text.capacity() <= RETAINED_PIECE_TEXT {
            self.piece_text = text;
            self.piece_ends = piece_ends;
        }
        for end in ends {
            for ch in self.ending(end) {
                self.flush_channel(ch);
            }
        }
        self.drain_ready(out);
        self.enforce_cap(out);
    }

    /// A frame's metadata as its queue entry keeps it (see [`Held`]): only
    /// when it differs from the previous frame's, since frames are observed
    /// in queue order and observing the same metadata right after its twin
    /// would change nothing. The comparison is on the borrowed strings, so
    /// the usual frame, which repeats its predecessor's, copies none.
    fn meta_to_hold(&mut self, meta: FrameMeta<'_>) -> Option<Box<FrameMeta<'static>>> {
        if meta == self.last_meta {
            None
        } else {
            self.last_meta = meta.into_owned();
            Some(Box::new(self.last_meta.clone()))
        }
    }

    /// Sends the complete frames at the front of the queue — unless a
    /// blocking span was found, in which case nothing more is sent but the
    /// block frames. Frames holding a blocking span are still in the queue
    /// here (a piece leaves only after the block of text it starts in is
    /// decided), so the span never leaves.
    fn drain_ready(&mut self, out: &mut Vec<u8>) {
        if self.findings.block && !self.blocked {
            let msg = self.options.self_block_message.clone();
            out.extend(self.block(&msg));
        }
        if self.blocked {
            return;
        }
        self.send_ready(out);
    }

    /// Finishes a channel's scanner (its text ended, or the cap forces it)
    /// and forgets it; a later piece on the channel starts a new scanner
    /// whose offsets continue where this one stopped.
    fn flush_channel(&mut self, channel: Channel) {
        let Some(state) = self.channels.get_mut(&channel) else {
            return;
        };
        state.scanner.finish(&self.detector, &mut self.released);
        self.resolve(channel);
        if let Some(state) = self.channels.remove(&channel) {
            debug_assert!(state.owners.is_empty());
            // A scanner finished early (the cap) read all the text so far;
            // if more comes, the next scanner's `base` is not 0.
            let whole = state.base == 0 && !state.found;
            let flushed = Flushed {
                bytes: state.base + state.pushed,
                clean: whole.then(|| state.digest.finish()),
            };
            if self.flushed.len() < MAX_FLUSHED_CHANNELS || self.flushed.contains_key(&channel) {
                self.flushed.insert(channel, flushed);
            }
        }
    }

    /// Whether `text`, a full-text repeat on `channel`, is known to come out
    /// unchanged and find nothing (see [`Flushed::clean`]).
    fn known_clean(&self, channel: Channel, text: &str) -> bool {
        let Some(Flushed {
            bytes,
            clean: Some(digest),
        }) = self.flushed.get(&channel).copied()
        else {
            return false;
        };
        bytes == text.len() && {
            let mut h = self.digest_key.build_hasher();
            h.write(text.as_bytes());
            h.finish() == digest
        }
    }

    /// The open channels an end of `end` closes.
    fn ending(&self, end: ChannelEnd) -> Vec<Channel> {
        self.channels
            .keys()
            .copied()
            .filter(|c| match end {
                ChannelEnd::One(one) => *c == one,
                ChannelEnd::Index(i) => c.index == i,
                ChannelEnd::All => true,
            })
            .collect()
    }

    /// Hands the pieces `channel`'s scanner released to their frames.
    fn resolve(&mut self, channel: Channel) {
        let Some(state) = self.channels.get_mut(&channel) else {
            self.released.clear();
            return;
        };
        // Frames leave the queue only from the front (or all at once), so
        // its seqs are contiguous and end just before `next_seq`.
        let front = self.next_seq - self.queue.len() as u64;
        for r in self.released.drain(..) {
            let Some((seq, slot)) = state.owners.pop_front() else {
                break;
            };
            state.found |= !r.redactions.is_empty();
            for a in &r.redactions {
                self.findings.push(StreamFinding {
                    channel,
                    tag: a.tag,
                    start: state.base + a.start,
                    end: state.base + a.end,
                    repeat: false,
                    action: a.action,
                });
            }
            // Queue seqs are contiguous, so the frame is found by offset.
            let Some(held) = seq
                .checked_sub(front)
                .and_then(|i| self.queue.get_mut(i as usize))
            else {
                continue;
            };
            if let Some(slot) = held.slots.get_mut(slot) {
                slot.released = true;
                slot.rewrite = r.rewrite;
            }
            held.pending -= 1;
        }
    }

    /// Sends every complete frame at the front of the queue.
    fn send_ready(&mut self, out: &mut Vec<u8>) {
        // Frames go out in batches: one allocation for the batch, not one
        // per doubling (rewritten frames may still grow it).
        let ready: usize = (self.queue.iter())
            .take_while(|h| h.pending == 0)
            .map(|h| h.event.raw.len())
            .sum();
        out.reserve(ready);
        while self.queue.front().is_some_and(|h| h.pending == 0) {
            let Some(held) = self.queue.pop_front() else {
                break;
            };
            self.queue_bytes -= held.size;
            match render(&held) {
                Some(bytes) => {
                    self.stats.frames_rewritten += 1;
                    out.extend_from_slice(&bytes);
                }
                None => out.extend_from_slice(&held.event.raw),
            }
            if let Some(meta) = &held.meta {
                self.codec.observe(meta);
            }
            if held.terminal {
                self.ended = true;
            }
            self.recycle(held);
        }
    }

    /// Keeps a sent frame's allocations for the next frames: its box, and
    /// its bytes for the decoder.
    fn recycle(&mut self, mut held: Box<Held>) {
        self.decoder.recycle(std::mem::take(&mut held.event.raw));
        // Nothing else of the frame is kept while its box waits.
        held.slots.clear();
        held.snapshots = Box::default();
        held.meta = None;
        if self.spare_held.len() < SPARE_FRAMES {
            self.spare_held.push(held);
        }
    }

    /// `held` in the spare box if there is one (its old contents dropped).
    fn boxed(&mut self, held: Held) -> Box<Held> {
        match self.spare_held.pop() {
            Some(mut spare) => {
                *spare = held;
                spare
            }
            None => Box::new(held),
        }
    }

    /// Brings held state under the cap (see [`OverflowPolicy`]).
    fn enforce_cap(&mut self, out: &mut Vec<u8>) {
        while !self.blocked {
            let held = self.held_bytes();
            self.stats.peak_held_bytes = self.stats.peak_held_bytes.max(held);
            if held <= self.options.max_held_bytes || self.queue.is_empty() {
                return;
            }
            if self.options.overflow == OverflowPolicy::Block {
                let msg = self.options.self_block_message.clone();
                out.extend(self.block(&msg));
                return;
            }
            let Some(front) = self.queue.front() else {
                return;
            };
            let mut waiting: Vec<Channel> = front
                .slots
                .iter()
                .filter(|slot| !slot.released)
                .map(|slot| slot.channel)
                .collect();
            waiting.sort();
            waiting.dedup();
            for ch in waiting {
                self.stats.forced_flushes += 1;
                self.flush_channel(ch);
            }
            self.drain_ready(out);
        }
    }
}

/// The bytes of a frame whose text changed; `None` to send the original.
fn render(held: &Held) -> Option<Vec<u8>> {
    let mut edits: Vec<(Locator, &str)> = Vec::new();
    for slot in held.slots.iter() {
        if let Some(text) = &slot.rewrite {
            edits.push((slot.locator, text.as_str()));
        }
    }
    for (locator, text) in held.snapshots.iter() {
        if let Some(text) = text {
            edits.push((*locator, text));
        }
    }
    if edits.is_empty() {
        return None;
    }
    let data = held.event.rebuild_data()?;
    held.event.with_data(&codec::splice(&data, &edits))
}

/// The outcome of [`rewrite_json_response_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonRewrite {
    /// The body to send: the original bytes when nothing changed.
    pub body: Vec<u8>,
    /// Whether any text changed.
    pub changed: bool,
    /// Redactions applied, with the JSON path of the text they were in.
    pub findings: Vec<(String, StreamFinding)>,
    /// Strings that could not be decoded (not scanned), by path; or the
    /// whole body (`"$"`) when it is not a JSON object.
    pub undecodable: Vec<String>,
}

/// Redacts a non-streamed JSON response of `provider`: every text is
/// redacted whole with the same schedule the stream uses, so a streamed and
/// a buffered answer with the same text come out the same. Returns the body
/// (unchanged bytes when nothing matched, or when it is not JSON) and whether
/// it changed.
pub fn rewrite_json_response<D: SpanDetector + ?Sized>(
    provider: Provider,
    body: &[u8],
    detector: &D,
) -> (Vec<u8>, bool) {
    let r = rewrite_json_response_with(provider, body, detector, HoldbackConfig::default());
    (r.body, r.changed)
}

/// [`rewrite_json_response`] with scanner tuning and the findings.
pub fn rewrite_json_response_with<D: SpanDetector + ?Sized>(
    provider: Provider,
    body: &[u8],
    detector: &D,
    config: HoldbackConfig,
) -> JsonRewrite {
    let view = match codec::parse_response(provider, body) {
        Ok(v) => v,
        Err(_) => {
            return JsonRewrite {
                body: body.to_vec(),
                changed: false,
                findings: Vec::new(),
                undecodable: vec!["$".into()],
            }
        }
    };
    let mut edits = Vec::new();
    let mut findings = Vec::new();
    for seg in &view.segments {
        let r = redact_str(detector, config, &seg.text);
        for a in &r.redactions {
            let f = StreamFinding {
                channel: seg.channel,
                tag: a.tag,
                start: a.start,
                end: a.end,
                repeat: false,
                action: a.action,
            };
            findings.push((seg.path.clone(), f));
        }
        if r.changed {
            edits.push((seg.locator, r.text));
        }
    }
    let changed = !edits.is_empty();
    let body = if changed {
        codec::rewrite_response(body, &edits)
    } else {
        body.to_vec()
    };
    JsonRewrite {
        body,
        changed,
        findings,
        undecodable: view.undecodable,
    }
}

/// An event with bytes that are not UTF-8, as clients that replace such
/// bytes (most JSON decoders) read it: scanned, and sent, that way, so a
/// stray byte cannot carry the rest of the frame past the detectors. Line
/// structure is unchanged (line ends are ASCII), so the event decodes again
/// as one event (`None` if it somehow does not).
fn read_replacing(event: &RawEvent) -> Option<RawEvent> {
    let replaced = String::from_utf8_lossy(&event.raw)
        .into_owned()
        .into_bytes();
    let mut decoder = SseDecoder::with_max_event_size(replaced.len().max(DEFAULT_MAX_EVENT_SIZE));
    let mut events = Vec::with_capacity(1);
    decoder.push_raw(&replaced, &mut events);
    decoder.finish_raw(&mut events);
    match (events.pop(), events.is_empty()) {
        (Some(read), true) if read.opaque().is_none() => Some(read),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holdback::testing::{Both, DigitRunDetector, WordDetector};
    use crate::sse::{encode_event, SseEvent};
    use proptest::prelude::*;

    /// Words `secret` (tag 0) and `hunter2` (tag 1), and runs of 4–16 digits (tag 100).
    fn detector() -> Both {
        Both(
            WordDetector::new(&["secret", "hunter2"]),
            DigitRunDetector { max: 16 },
        )
    }

    fn options() -> StreamOptions {
        StreamOptions {
            holdback: HoldbackConfig { step: 8 },
            ..StreamOptions::default()
        }
    }

    fn run_chunks(
        provider: Provider,
        options: StreamOptions,
        chunks: &[&[u8]],
    ) -> (Vec<u8>, ResponseStream<Both>) {
        let mut s = ResponseStream::new(provider, detector(), options);
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.push(c));
        }
        out.extend(s.finish());
        (out, s)
    }

    fn run(provider: Provider, input: &[u8]) -> (String, ResponseStream<Both>) {
        let (out, s) = run_chunks(provider, options(), &[input]);
        (String::from_utf8(out).unwrap(), s)
    }

    fn events(bytes: &[u8]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.push(bytes, &mut out);
        d.finish(&mut out);
        out
    }

    const CHAT_HEAD: &str = r#"{"id":"chatcmpl-AqDdpYVWvfYdAoTt8jmpwbb9KJBrp","object":"chat.completion.chunk","created":1736941123,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","#;

    fn chat(choices: &str) -> String {
        String::from_utf8(encode_event(
            None,
            &format!("{CHAT_HEAD}\"choices\":[{choices}],\"usage\":null}}"),
        ))
        .unwrap()
    }

    fn delta(index: u32, content: &str) -> String {
        format!(
            r#"{{"index":{index},"delta":{{"content":{content}}},"logprobs":null,"finish_reason":null}}"#
        )
    }

    fn stop(index: u32) -> String {
        format!(r#"{{"index":{index},"delta":{{}},"logprobs":null,"finish_reason":"stop"}}"#)
    }

    /// A gpt-4o-mini stream with a usage chunk; the answer carries a password
    /// split over two frames, a phone number split over two frames, and
    /// `\u` escapes (an é and a surrogate-pair emoji).
    fn openai_stream() -> String {
        [
            chat(r#"{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}"#),
            chat(&delta(0, r#""The code is hun""#)),
            chat(&delta(0, r#""ter2, call 5550""#)),
            chat(&delta(0, r#""1234 or caf\u00e9 \ud83d\ude00.""#)),
            chat(&delta(0, r#"" Bye.""#)),
            chat(&stop(0)),
            String::from_utf8(encode_event(None, &format!("{CHAT_HEAD}\"choices\":[],\"usage\":{{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21,\"prompt_tokens_details\":{{\"cached_tokens\":0}},\"completion_tokens_details\":{{\"reasoning_tokens\":0}}}}}}"))).unwrap(),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat()
    }

    fn texts(provider: Provider, bytes: &[u8]) -> BTreeMap<Channel, String> {
        let codec = StreamCodec::new(provider);
        let mut out: BTreeMap<Channel, String> = BTreeMap::new();
        for ev in events(bytes) {
            for p in codec.parse(&ev).pieces {
                out.entry(p.channel).or_default().push_str(&p.text);
            }
        }
        out
    }

    #[test]
    fn held_frames_keep_only_what_sending_them_needs() {
        // Regression for memory per open stream: a held frame used to keep
        // its decoded data, a copy of its pieces' text and its own copy of
        // the id and model, several times the frame's bytes.
        let mut s = ResponseStream::new(Provider::OpenAiChat, detector(), options());
        let frames: String = (0..20).map(|_| chat(&delta(0, r#""word ""#))).collect();
        let out = s.push(frames.as_bytes());
        assert!(
            s.held_frames() > 1,
            "the window holds frames ({} bytes out)",
            out.len()
        );
        for (i, held) in s.queue.iter().enumerate() {
            assert_eq!(held.slots.len(), 1);
            assert!(held
                .event
                .rebuild_data()
                .is_some_and(|d| d.contains("\"word \"")));
            // Only a frame whose metadata differs from its predecessor's keeps a copy.
            assert_eq!(held.meta.is_some(), i == 0 && out.is_empty(), "frame {i}");
        }
        // The cap still counts the dropped data, so it trips where it did.
        let raw: usize = s.queue.iter().map(|h| h.event.raw.len()).sum();
        assert!(
            s.held_bytes() > raw * 3 / 2,
            "{} for {raw} raw bytes",
            s.held_bytes()
        );
        let mut all = out;
        all.extend(s.finish());
        assert_eq!(
            all,
            frames.as_bytes(),
            "frames no redaction touched go out byte for byte"
        );
    }

    #[test]
    fn an_untouched_stream_is_forwarded_byte_for_byte() {
        let input = openai_stream()
            .replace("is hun", "is fun")
            .replace("call 5550", "call 55")
            .replace("1234 or", "ab or");
        let (out, s) = run(Provider::OpenAiChat, input.as_bytes());
        assert_eq!(out, input);
        assert_eq!(s.stats().frames_rewritten, 0);
        assert!(s.findings().is_empty());
    }

    #[test]
    fn a_secret_split_across_frames_is_redacted_in_the_frame_where_it_starts() {
        let input = openai_stream();
        let (out, s) = run(Provider::OpenAiChat, input.as_bytes());
        let ins = events(input.as_bytes());
        let outs = events(out.as_bytes());
        assert_eq!(ins.len(), outs.len());
        let content = |e: &SseEvent| {
            let v: serde_json::Value = serde_json::from_str(e.data.as_deref().unwrap()).unwrap();
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        };
        assert_eq!(content(&outs[1]).as_deref(), Some("The code is [W1]"));
        assert_eq!(content(&outs[2]).as_deref(), Some(", call #"));
        assert_eq!(content(&outs[3]).as_deref(), Some(" or café 😀."));
        // Frames no redaction touched are the input bytes.
        for i in [0, 4, 5, 6, 7] {
            assert_eq!(outs[i].raw, ins[i].raw, "frame {i}");
        }
        // A touched frame keeps every other byte.
        assert_eq!(
            String::from_utf8(outs[1].raw.clone()).unwrap(),
            String::from_utf8(ins[1].raw.clone())
                .unwrap()
                .replace("The code is hun", "The code is [W1]")
        );
        assert_eq!(s.stats().frames_rewritten, 3);
        let tags: Vec<(u32, usize, usize)> = s
            .findings()
            .iter()
            .map(|f| (f.tag, f.start, f.end))
            .collect();
        assert_eq!(tags, [(1, 12, 19), (100, 26, 34)]);
        assert!(s
            .findings()
            .iter()
            .all(|f| f.channel == Channel::new(0, 0, codec::ChannelKind::Text)));
    }

    #[test]
    fn two_interleaved_choices_are_redacted_independently() {
        let input = [
            chat(r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#),
            chat(r#"{"index":1,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#),
            chat(&delta(0, r#""my sec""#)),
            chat(&delta(1, r#""your 12""#)),
            chat(&delta(0, r#""ret is""#)),
            chat(&delta(1, r#""34 is""#)),
            chat(&delta(0, r#"" out""#)),
            chat(&stop(1)),
            chat(&stop(0)),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let (out, _) = run(Provider::OpenAiChat, input.as_bytes());
        let t = texts(Provider::OpenAiChat, out.as_bytes());
        assert_eq!(
            t[&Channel::new(0, 0, codec::ChannelKind::Text)],
            "my [W0] is out"
        );
        assert_eq!(
            t[&Channel::new(1, 0, codec::ChannelKind::Text)],
            "your # is"
        );
        // Order of frames is kept: same event count, same choice sequence.
        let idx = |s: &str| {
            events(s.as_bytes())
                .iter()
                .filter_map(|e| serde_json::from_str::<serde_json::Value>(e.data.as_deref()?).ok())
                .map(|v| v["choices"][0]["index"].as_u64())
                .collect::<Vec<_>>()
        };
        assert_eq!(idx(&out), idx(&input));
    }

    #[test]
    fn tool_call_argument_deltas_are_a_channel_of_their_own() {
        let call = |args: &str| {
            chat(&format!(
                r#"{{"index":0,"delta":{{"tool_calls":[{{"index":0,"function":{{"arguments":{args}}}}}]}},"logprobs":null,"finish_reason":null}}"#
            ))
        };
        let input = [
            chat(r#"{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"unlock","arguments":""}}]},"logprobs":null,"finish_reason":null}"#),
            call(r#""{\"pin\":\"12""#),
            call(r#""3456\",\"w\":\"sec""#),
            call(r#""ret\"}""#),
            chat(r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}"#),
            "data: [DONE]\n\n".into(),
        ]
        .concat();
        let (out, _) = run(Provider::OpenAiChat, input.as_bytes());
        let t = texts(Provider::OpenAiChat, out.as_bytes());
        assert_eq!(
            t[&Channel::new(0, 0, codec::ChannelKind::ToolArguments)],
            "{\"pin\":\"#\",\"w\":\"[W0]\"}"
        );
    }

    fn anthropic_stream() -> String {
        let ev =
            |name: &str, data: &str| String::from_utf8(encode_event(Some(name), data)).unwrap();
        [
            ev("message_start", r#"{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2}}}"#),
            ev("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
            ev("ping", r#"{"type": "ping"}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Your password is hunt"}}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"er2 \u2014 keep it se"}}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"cret."}}"#),
            ev("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
            ev("content_block_start", r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"zip\": \"9410"}}"#),
            ev("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"7\"}"}}"#),
            ev("content_block_stop", r#"{"type":"content_block_stop","index":1}"#),
            ev("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#),
            ev("message_stop", r#"{"type":"message_stop"}"#),
        ]
        .concat()
    }

    #[test]
    fn an_anthropic_stream_is_redacted_per_block_with_pings_untouched() {
        let input = anthropic_stream();
        let (out, s) = run(Provider::Anthropic, input.as_bytes());
        let t = texts(Provider::Anthropic, out.as_bytes());
        assert_eq!(
            t[&Channel::new(0, 0, codec::ChannelKind::Text)],
            "Your password is [W1] — keep it [W0]."
        );
        assert_eq!(
            t[&Channel::new(1, 0, codec::ChannelKind::ToolArguments)],
            "{\"zip\": \"#\"}"
        );
        let (ins, outs) = (events(input.as_bytes()), events(out.as_bytes()));
        assert_eq!(ins.len(), outs.len());
        for i in [0, 1, 2, 6, 7, 8, 11, 12, 13] {
            assert_eq!(outs[i].raw, ins[i].raw, "frame {i}");
        }
        for (a, b) in ins.iter().zip(&outs) {
            assert_eq!(a.event, b.event);
        }
        assert_eq!(s.stats().frames_rewritten, 5);
    }

    fn responses_stream(answer_pieces: &[&str]) -> String {
        responses_stream_repeating(answer_pieces, &answer_pieces.concat())
    }

    /// A Responses stream whose closing events repeat `full` (the deltas'
    /// text, unless a test tampers with it).
    fn responses_stream_repeating(answer_pieces: &[&str], full: &str) -> String {
        let full = full.to_string();
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let mut seq = 0;
        let mut ev = |name: &str, body: String| {
            let data = format!("{{\"type\":\"{name}\",\"sequence_number\":{seq},{body}}}");
            seq += 1;
            String::from_utf8(encode_event(Some(name), &data)).unwrap()
        };
        let resp = |status: &str, output: &str| {
            format!("\"response\":{{\"id\":\"resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41\",\"object\":\"response\",\"created_at\":1741476777,\"status\":\"{status}\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[{output}],\"usage\":null}}")
        };
        let item = |status: &str, content: &str| {
            format!("{{\"id\":\"msg_67ccd3acc8d48190a77525dc6de64b4104becb25c45c1d41\",\"type\":\"message\",\"status\":\"{status}\",\"role\":\"assistant\",\"content\":[{content}]}}")
        };
        let part = |text: &str| {
            format!(
                "{{\"type\":\"output_text\",\"text\":{},\"annotations\":[]}}",
                q(text)
            )
        };
        let ids = "\"item_id\":\"msg_67ccd3acc8d48190a77525dc6de64b4104becb25c45c1d41\",\"output_index\":0,\"content_index\":0";
        let mut out = vec![
            ev("response.created", resp("in_progress", "")),
            ev("response.in_progress", resp("in_progress", "")),
            ev(
                "response.output_item.added",
                format!("\"output_index\":0,\"item\":{}", item("in_progress", "")),
            ),
            ev(
                "response.content_part.added",
                format!("{ids},\"part\":{}", part("")),
            ),
        ];
        for p in answer_pieces {
            out.push(ev(
                "response.output_text.delta",
                format!("{ids},\"delta\":{},\"logprobs\":[]", q(p)),
            ));
        }
        out.push(ev(
            "response.output_text.done",
            format!("{ids},\"text\":{},\"logprobs\":[]", q(&full)),
        ));
        out.push(ev(
            "response.content_part.done",
            format!("{ids},\"part\":{}", part(&full)),
        ));
        out.push(ev(
            "response.output_item.done",
            format!(
                "\"output_index\":0,\"item\":{}",
                item("completed", &part(&full))
            ),
        ));
        out.push(ev(
            "response.completed",
            resp("completed", &item("completed", &part(&full))),
        ));
        out.concat()
    }

    #[test]
    fn responses_done_events_repeat_the_redacted_text_not_the_original() {
        let input = responses_stream(&["The sec", "ret is 4242", "4242 ok"]);
        let (out, s) = run(Provider::OpenAiResponses, input.as_bytes());
        assert!(!out.contains("secret") && !out.contains("4242"), "{out}");
        let t = texts(Provider::OpenAiResponses, out.as_bytes());
        assert_eq!(
            t[&Channel::new(0, 0, codec::ChannelKind::Text)],
            "The [W0] is # ok"
        );
        // Every repeat carries exactly the streamed result.
        assert_eq!(out.matches("\"The [W0] is # ok\"").count(), 4);
        assert_eq!(s.stats().repeats_known_clean, 0);
        assert_eq!(s.findings().iter().filter(|f| !f.repeat).count(), 2);
        // The sequence numbers and other events are untouched.
        let (ins, outs) = (events(input.as_bytes()), events(out.as_bytes()));
        for i in [0, 1, 2, 3] {
            assert_eq!(ins[i].raw, outs[i].raw);
        }
    }

    #[test]
    fn repeats_of_a_clean_text_are_not_scanned_again_but_other_text_is() {
        let pieces = ["The se", "cret", " word is not here"];
        let clean = responses_stream(&["The quiet", " word is not here"]);
        let (out, s) = run(Provider::OpenAiResponses, clean.as_bytes());
        assert_eq!(out, clean);
        assert_eq!(s.stats().repeats_known_clean, 4);
        // Split anywhere, the deltas' text is the same text.
        let resplit = responses_stream(&["The q", "uiet word", " is not here"]);
        let (_, s) = run(Provider::OpenAiResponses, resplit.as_bytes());
        assert_eq!(s.stats().repeats_known_clean, 4);
        // A repeat that differs from the deltas, even by one byte, is scanned.
        for full in ["The secret word is not here", "The quiet word is not her"] {
            let tampered = responses_stream_repeating(&["The quiet", " word is not here"], full);
            let (out, s) = run(Provider::OpenAiResponses, tampered.as_bytes());
            assert_eq!(s.stats().repeats_known_clean, 0, "{full}");
            assert!(!out.contains("secret"), "{out}");
        }
        // Deltas with a finding: every repeat is scanned and redacted.
        let (out, s) = run(
            Provider::OpenAiResponses,
            responses_stream(&pieces).as_bytes(),
        );
        assert_eq!(s.stats().repeats_known_clean, 0);
        assert_eq!(out.matches("The [W0] word").count(), 4);
    }

    #[test]
    fn a_block_mid_stream_drops_held_frames_and_ends_in_band() {
        let input = openai_stream();
        let mut s = ResponseStream::new(Provider::OpenAiChat, detector(), options());
        let evs = events(input.as_bytes());
        let mut out = Vec::new();
        for e in &evs[..3] {
            out.extend(s.push(&e.raw));
        }
        assert!(s.held_frames() > 0, "the tail of the text is held back");
        out.extend(s.block("blocked by policy"));
        assert!(s.push(&evs[3].raw).is_empty());
        assert!(s.finish().is_empty());
        assert!(s.block("again").is_empty());
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with(
            "data: {\"id\":\"chatcmpl-AqDdpYVWvfYdAoTt8jmpwbb9KJBrp\",\"object\":\"chat.completion.chunk\",\"created\":1736941123,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_72ed7ab54c\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"content_filter\"}]}\n\ndata: [DONE]\n\n"
        ), "{out}");
        assert!(!out.contains("5550"));
        assert!(s.is_blocked());
    }

    /// `hunter2` (tag 1) blocks; everything else redacts.
    struct BlockOnPassword(Both);

    impl SpanDetector for BlockOnPassword {
        fn max_span(&self) -> usize {
            self.0.max_span()
        }
        fn context(&self) -> usize {
            self.0.context()
        }
        fn find(&self, text: &str, out: &mut Vec<crate::holdback::Redaction>) {
            self.0.find(text, out)
        }
        fn action(&self, tag: u32) -> SpanAction {
            if tag == 1 {
                SpanAction::Block
            } else {
                SpanAction::Redact
            }
        }
    }

    #[test]
    fn a_blocking_span_ends_the_stream_before_its_frame_is_sent() {
        let input = openai_stream();
        let mut s =
            ResponseStream::new(Provider::OpenAiChat, BlockOnPassword(detector()), options());
        let mut out = Vec::new();
        for e in events(input.as_bytes()) {
            out.extend(s.push(&e.raw));
        }
        out.extend(s.finish());
        let out = String::from_utf8(out).unwrap();
        assert!(s.is_blocked());
        assert!(!out.contains("code is") && !out.contains("ter2"), "{out}");
        let outs = events(out.as_bytes());
        assert_eq!(
            outs[0].raw,
            events(input.as_bytes())[0].raw,
            "the role chunk went out before"
        );
        assert!(outs[1].data.as_deref().unwrap().contains("content_filter"));
        assert_eq!(outs[2].data.as_deref(), Some("[DONE]"));
        assert_eq!(outs.len(), 3);
        assert_eq!(
            s.findings()
                .iter()
                .filter(|f| f.action == SpanAction::Block)
                .count(),
            1
        );
    }

    #[test]
    fn a_block_of_an_anthropic_stream_is_an_error_event() {
        let input = anthropic_stream();
        let mut s = ResponseStream::new(Provider::Anthropic, detector(), options());
        let evs = events(input.as_bytes());
        let mut out = Vec::new();
        for e in &evs[..5] {
            out.extend(s.push(&e.raw));
        }
        out.extend(s.block("Output blocked: secret detected"));
        let outs = events(&out);
        let last = outs.last().unwrap();
        assert_eq!(last.event.as_deref(), Some("error"));
        let v: serde_json::Value = serde_json::from_str(last.data.as_deref().unwrap()).unwrap();
        assert_eq!(v["error"]["message"], "Output blocked: secret detected");
    }

    #[test]
    fn a_block_after_the_stream_ended_sends_nothing() {
        let mut s = ResponseStream::new(Provider::OpenAiChat, detector(), options());
        s.push(openai_stream().as_bytes());
        s.finish();
        assert!(s.block("late").is_empty());
    }

    #[test]
    fn broken_frames_pass_through_and_are_counted() {
        let input = [
            chat(&delta(0, r#""hello ""#)),
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"trunc\n\n".to_string(),
            "data: \u{0}\n\n".to_string(),
            "event: mystery\ndata: {\"type\":\"mystery\",\"text\":\"secret\"}\n\n".to_string(),
            ": keep-alive\n\n".to_string(),
        ]
        .concat();
        let mut bytes = input.into_bytes();
        bytes.extend_from_slice(b"data: \xFF\xFE\n\n");
        bytes.extend_from_slice(chat(&delta(0, r#""secret""#)).trim_end().as_bytes()); // no blank line at the end
        let (out, s) = run_chunks(Provider::OpenAiChat, options(), &[&bytes]);
        let outs = events(&out);
        let ins = events(&bytes);
        assert_eq!(outs.len(), ins.len());
        // The frame that is not UTF-8 does not read as JSON either way: it
        // passes as it came.
        for i in 0..6 {
            assert_eq!(outs[i].raw, ins[i].raw, "frame {i}");
        }
        assert_eq!(s.stats().undecodable, 2);
        assert_eq!(s.stats().invalid_utf8, 1);
        // The unterminated last frame is scanned and stays unterminated.
        let last = String::from_utf8(outs[6].raw.clone()).unwrap();
        assert!(
            last.contains("\"content\":\"[W0]\"") && !last.ends_with("\n\n"),
            "{last}"
        );
    }

    #[test]
    fn a_stray_byte_does_not_carry_its_frame_past_the_detectors() {
        let mut bad = chat(&delta(0, r#""caf!! secret""#)).into_bytes();
        let at = bad.iter().position(|&b| b == b'!').unwrap();
        bad[at..at + 2].copy_from_slice(b"\xE9\xFF");
        for chunk in [1, 5, bad.len()] {
            let pieces: Vec<&[u8]> = bad.chunks(chunk).collect();
            let (out, s) = run_chunks(Provider::OpenAiChat, options(), &pieces);
            let out = String::from_utf8(out).expect("sent as read: UTF-8");
            assert!(
                out.contains("caf\u{FFFD}\u{FFFD} [W0]") && !out.contains("secret"),
                "{out}"
            );
            assert_eq!(s.stats().invalid_utf8, 1);
        }
        // Fail-closed streams still end on it.
        let opts = StreamOptions {
            opaque: OpaquePolicy::Block,
            ..options()
        };
        let (_, s) = run_chunks(Provider::OpenAiChat, opts, &[&bad]);
        assert!(s.is_blocked());
    }

    #[test]
    fn the_fail_closed_policy_blocks_on_an_unscannable_frame() {
        let input = [
            chat(&delta(0, r#""hi""#)),
            "data: {oops\n\n".into(),
            chat(&delta(0, r#""more""#)),
        ]
        .concat();
        let opts = StreamOptions {
            opaque: OpaquePolicy::Block,
            ..options()
        };
        let (out, s) = run_chunks(Provider::OpenAiChat, opts, &[input.as_bytes()]);
        let out = String::from_utf8(out).unwrap();
        assert!(s.is_blocked());
        assert!(
            out.contains("content_filter") && !out.contains("oops") && !out.contains("more"),
            "{out}"
        );
    }

    #[test]
    fn an_oversized_frame_passes_opaque_in_order() {
        let big = "x".repeat(600);
        let input = [
            chat(&delta(0, r#""a 1234""#)),
            chat(&delta(0, &format!("\"{big}\""))),
            chat(&delta(0, r#""5678 b""#)),
        ]
        .concat();
        let opts = StreamOptions {
            max_event_size: 512,
            ..options()
        };
        let (out, s) = run_chunks(Provider::OpenAiChat, opts, &[input.as_bytes()]);
        let out = String::from_utf8(out).unwrap();
        assert!(s.stats().oversized_parts >= 2);
        assert!(out.contains(&big));
        assert!(!out.contains("1234") && !out.contains("5678"));
        assert!(out.find("\"a #\"").unwrap() < out.find(&big).unwrap());
    }

    #[test]
    fn the_memory_cap_flushes_the_oldest_channel_early_and_counts_it() {
        // Choice 0 never finishes while choice 1 streams many frames.
        let mut parts = vec![chat(&delta(0, r#""start sec""#))];
        for _ in 0..200 {
            parts.push(chat(&delta(1, r#""blah ""#)));
        }
        parts.push(chat(&delta(0, r#""ret""#)));
        parts.push("data: [DONE]\n\n".into());
        let input = parts.concat();
        let opts = StreamOptions {
            max_held_bytes: 8 * 1024,
            ..options()
        };
        let (out, s) = run_chunks(Provider::OpenAiChat, opts.clone(), &[input.as_bytes()]);
        assert!(s.stats().forced_flushes > 0);
        assert!(
            s.stats().peak_held_bytes <= 8 * 1024 + 2048,
            "{}",
            s.stats().peak_held_bytes
        );
        let outs = events(&out);
        assert_eq!(outs.len(), events(input.as_bytes()).len());
        // The word straddling the forced flush is missed: the documented cost.
        let t = texts(Provider::OpenAiChat, &out);
        assert_eq!(
            t[&Channel::new(0, 0, codec::ChannelKind::Text)],
            "start secret"
        );
        // The Block policy ends the stream instead.
        let opts = StreamOptions {
            overflow: OverflowPolicy::Block,
            ..opts
        };
        let (out, s) = run_chunks(Provider::OpenAiChat, opts, &[input.as_bytes()]);
        assert!(s.is_blocked());
        assert!(String::from_utf8(out).unwrap().contains("content_filter"));
    }

    #[test]
    fn an_unknown_provider_passes_everything_through() {
        let input = openai_stream();
        let (out, s) = run(Provider::Unknown, input.as_bytes());
        assert_eq!(out, input);
        assert_eq!(s.held_frames(), 0);
    }

    #[test]
    fn a_buffered_json_response_is_redacted_like_the_stream() {
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"The code is hunter2, call 55501234 or caf\u00e9 \ud83d\ude00. Bye.","refusal":null},"finish_reason":"stop"}]}"#;
        let (out, changed) =
            rewrite_json_response(Provider::OpenAiChat, body.as_bytes(), &detector());
        assert!(changed);
        let streamed = texts(
            Provider::OpenAiChat,
            run(Provider::OpenAiChat, openai_stream().as_bytes())
                .0
                .as_bytes(),
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"].as_str().unwrap(),
            streamed[&Channel::new(0, 0, codec::ChannelKind::Text)]
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            body.replace(
                r#""The code is hunter2, call 55501234 or caf\u00e9 \ud83d\ude00. Bye.""#,
                "\"The code is [W1], call # or café 😀. Bye.\""
            )
        );
        let (same, changed) = rewrite_json_response(Provider::OpenAiChat, b"not json", &detector());
        assert!(!changed);
        assert_eq!(same, b"not json");
    }

    fn chunk_at(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.sort_unstable();
        let mut out = Vec::new();
        let mut last = 0;
        for p in points {
            out.push(input[last..p].to_vec());
            last = p;
        }
        out.push(input[last..].to_vec());
        out
    }

    fn fixture() -> impl Strategy<Value = (Provider, String)> {
        let words = prop::sample::select(vec![
            "secret",
            "hunter2",
            "1234",
            "567890",
            "é",
            "😀",
            "\\u00e9",
            "\\ud83d\\ude00",
            "\\\"",
            "se",
            "cret",
            "12",
            " ",
            "ok",
            "\\n",
        ]);
        let pieces = prop::collection::vec(
            prop::collection::vec(words, 0..5).prop_map(|w| w.concat()),
            1..8,
        );
        (0..4usize, pieces, pieces_crlf()).prop_map(|(which, pieces, crlf)| {
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let (provider, s) = match which {
                0 => {
                    let mut parts = vec![chat(r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#)];
                    for (i, p) in refs.iter().enumerate() {
                        parts.push(chat(&delta((i % 2) as u32, &format!("\"{p}\""))));
                    }
                    parts.push(chat(&stop(0)));
                    parts.push("data: [DONE]\n\n".into());
                    (Provider::OpenAiChat, parts.concat())
                }
                1 => {
                    let mut s = String::new();
                    for p in &refs {
                        s.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{p}\"}}}}\n\n"));
                        s.push_str("event: ping\ndata: {\"type\": \"ping\"}\n\n");
                    }
                    s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
                    (Provider::Anthropic, s)
                }
                2 => {
                    let decoded: Vec<String> = refs.iter().map(|p| serde_json::from_str::<String>(&format!("\"{p}\"")).unwrap()).collect();
                    let d: Vec<&str> = decoded.iter().map(String::as_str).collect();
                    (Provider::OpenAiResponses, responses_stream(&d))
                }
                _ => {
                    let mut parts = Vec::new();
                    for p in &refs {
                        parts.push(chat(&format!(r#"{{"index":0,"delta":{{"tool_calls":[{{"index":0,"function":{{"arguments":"{p}"}}}}]}}}}"#)));
                    }
                    (Provider::OpenAiChat, parts.concat())
                }
            };
            (provider, if crlf { s.replace('\n', "\r\n") } else { s })
        })
    }

    fn pieces_crlf() -> impl Strategy<Value = bool> {
        any::<bool>()
    }

    #[test]
    fn sent_frames_leave_a_bounded_pool_that_the_next_frames_draw_from() {
        // A step longer than the answer: every frame waits for the end and
        // is sent in one batch, more than the pool keeps.
        let options = StreamOptions {
            holdback: HoldbackConfig { step: 4096 },
            ..StreamOptions::default()
        };
        let mut s = ResponseStream::new(Provider::OpenAiChat, detector(), options);
        let frames: Vec<String> = (0..3 * SPARE_FRAMES)
            .map(|i| chat(&delta(0, &format!("\"word {i} \""))))
            .collect();
        let mut out = Vec::new();
        for f in &frames {
            out.extend(s.push(f.as_bytes()));
        }
        assert!(out.is_empty() && s.spare_held.is_empty());
        out.extend(s.finish());
        // Every frame went out; the pool kept only as many boxes as it may.
        assert_eq!(events(&out).len(), frames.len());
        assert_eq!(s.spare_held.len(), SPARE_FRAMES);
        assert_eq!(s.decoder.spare_buffers(), SPARE_FRAMES);
        // A new frame takes a box from the pool, and its bytes a buffer.
        s.push(frames[0].as_bytes());
        assert_eq!(s.spare_held.len(), SPARE_FRAMES - 1);
        assert_eq!(s.decoder.spare_buffers(), SPARE_FRAMES - 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        #[test]
        fn any_chunking_of_the_upstream_gives_the_same_bytes(
            (provider, input) in fixture(),
            cuts in prop::collection::vec(any::<usize>(), 0..24),
            step in 1usize..24,
        ) {
            let opts = StreamOptions { holdback: HoldbackConfig { step }, ..StreamOptions::default() };
            let chunks = chunk_at(input.as_bytes(), &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let (split, s1) = run_chunks(provider, opts.clone(), &refs);
            let (whole, s2) = run_chunks(provider, opts.clone(), &[input.as_bytes()]);
            prop_assert_eq!(&split, &whole);
            prop_assert_eq!(s1.findings(), s2.findings());

            // Same frames, same order; text-less frames byte-for-byte.
            let (ins, outs) = (events(input.as_bytes()), events(&whole));
            prop_assert_eq!(ins.len(), outs.len());
            let codec = StreamCodec::new(provider);
            for (a, b) in ins.iter().zip(&outs) {
                prop_assert_eq!(&a.event, &b.event);
                // A frame whose texts came out unchanged is the input bytes.
                let (va, vb) = (codec.parse(a), codec.parse(b));
                let texts = |v: &FrameView| {
                    v.pieces.iter().chain(&v.snapshots).map(|p| p.text.to_string()).collect::<Vec<_>>()
                };
                if texts(&va) == texts(&vb) {
                    prop_assert_eq!(&a.raw, &b.raw);
                }
            }
            // Each channel's output text is its input text redacted whole.
            let (tin, tout) = (texts(provider, input.as_bytes()), texts(provider, &whole));
            for (ch, text) in &tin {
                let expected = redact_str(&detector(), opts.holdback, text).text;
                prop_assert_eq!(tout.get(ch).cloned().unwrap_or_default(), expected);
            }
        }
    }
}
