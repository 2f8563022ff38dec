//! Reading log events from files: the drill format (JSON lines, one
//! `{"group","stream","timestamp","message"}` per line, timestamp in epoch milliseconds or
//! RFC 3339) and plain text (one event per line). Streaming: one line in memory at a time.

use crate::event::{EventRef, LogEvent};
use chrono::{DateTime, NaiveDateTime};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;

/// A line that could not be read, named by source and 1-based line number.
/// Displays as `source:line: reason`, or `source: reason` when `line` is 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: {reason}", if *.line == 0 { String::new() } else { format!(":{}", .line) })]
pub struct ReadError {
    pub source_name: String,
    /// 1-based; 0 when the failure is not about one line.
    pub line: u64,
    pub reason: String,
}

/// How a source's lines are read. Decided by its first non-blank line: a JSON object with
/// `timestamp` and `message` makes the whole source JSON lines; anything else plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    JsonLines,
    Text,
}

/// One line of the drill format.
#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(borrow, default)]
    group: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    timestamp: Millis,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(default, rename = "ingestionTime")]
    ingestion_time: Option<Millis>,
}

struct Millis(i64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch milliseconds or an RFC 3339 timestamp")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
                Ok(Millis(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
                i64::try_from(v)
                    .map(Millis)
                    .map_err(|_| E::custom("timestamp out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Millis, E> {
                if v.is_finite() && v.abs() < 9.0e15 {
                    Ok(Millis(v.floor() as i64))
                } else {
                    Err(E::custom("timestamp out of range"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
                parse_timestamp(v).map(Millis).ok_or_else(|| {
                    E::custom(format!(
                        "timestamp {v:?} is neither epoch milliseconds nor RFC 3339"
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses epoch milliseconds (`1773498600000`), RFC 3339 (`2026-03-14T14:30:00Z`) or
/// `2026-03-14 14:30:00.000` (UTC).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    let naive = s.strip_suffix('Z').unwrap_or(s);
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, f) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// A timestamp at the start of a text line: `2026-03-14T14:30:00.123Z ...` or
/// `2026-03-14 14:30:00,123 ...`.
fn leading_timestamp(line: &str) -> Option<i64> {
    let b = line.as_bytes();
    if b.len() < 19 || !b[0].is_ascii_digit() || b[4] != b'-' {
        return None;
    }
    let end = line
        .char_indices()
        .skip(19)
        .find(|&(_, c)| !(c.is_ascii_digit() || matches!(c, '.' | ',' | ':' | '+' | '-' | 'Z')))
        .map_or(line.len(), |(i, _)| i);
    let candidate = line.get(..end)?.replace(',', ".");
    parse_timestamp(&candidate)
}

/// Decodes lines of one source into events.
#[derive(Debug)]
pub struct LineDecoder {
    source: String,
    format: Option<LogFormat>,
    last_timestamp: i64,
}

/// An event decoded from one line; borrows the line where it can.
#[derive(Debug)]
pub struct DecodedEvent<'a> {
    pub timestamp_ms: i64,
    pub message: Cow<'a, str>,
    pub log_group: Cow<'a, str>,
    pub log_stream: Cow<'a, str>,
    pub ingestion_time_ms: Option<i64>,
}

impl DecodedEvent<'_> {
    pub fn as_event_ref(&self) -> EventRef<'_> {
        EventRef {
            timestamp_ms: self.timestamp_ms,
            message: &self.message,
            log_group: &self.log_group,
            log_stream: &self.log_stream,
            ingestion_time_ms: self.ingestion_time_ms,
        }
    }
}

impl LineDecoder {
    /// `source` names the file in errors and is the log group and stream of text events.
    pub fn new(source: impl Into<String>) -> LineDecoder {
        LineDecoder {
            source: source.into(),
            format: None,
            last_timestamp: 0,
        }
    }

    /// A decoder of a source whose format is known.
    pub(crate) fn with_format(source: impl Into<String>, format: LogFormat) -> LineDecoder {
        LineDecoder {
            source: source.into(),
            format: Some(format),
            last_timestamp: 0,
        }
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub fn format(&self) -> Option<LogFormat> {
        self.format
    }

    fn error(&self, line: u64, reason: impl Into<String>) -> ReadError {
        ReadError {
            source_name: self.source.clone(),
            line,
            reason: reason.into(),
        }
    }

    /// Decodes one line (without its newline). `Ok(None)` for blank lines.
    ///
    /// # Errors
    /// In a JSON-lines source, a line that is not a valid drill event.
    pub fn decode<'a>(
        &mut self,
        line: &'a [u8],
        line_no: u64,
    ) -> Result<Option<DecodedEvent<'a>>, ReadError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let format = match self.format {
            Some(f) => f,
            None => {
                let trimmed = line.trim_ascii_start();
                let f = if trimmed.first() == Some(&b'{')
                    && serde_json::from_slice::<RawLine<'_>>(trimmed).is_ok()
                {
                    LogFormat::JsonLines
                } else {
                    LogFormat::Text
                };
                self.format = Some(f);
                f
            }
        };
        match format {
            LogFormat::JsonLines => {
                if let Some(fast) = fast_line(line) {
                    let Some(message) = fast.message() else {
                        return Err(
                            self.error(line_no, "not a log event: the message is not a valid JSON string")
                        );
                    };
                    return Ok(Some(DecodedEvent {
                        timestamp_ms: fast.timestamp,
                        message,
                        log_group: fast
                            .group
                            .map_or_else(|| Cow::Owned(self.source.clone()), Cow::Borrowed),
                        log_stream: fast
                            .stream
                            .map_or_else(|| Cow::Owned(self.source.clone()), Cow::Borrowed),
                        ingestion_time_ms: fast.ingestion_time,
                    }));
                }
                if std::str::from_utf8(line).is_err() {
                    // Invalid UTF-8 (a truncated multi-byte character, binary junk): read the
                    // line with U+FFFD in place of the bad bytes rather than reject it.
                    let text = String::from_utf8_lossy(line).into_owned();
                    let raw: RawLine<'_> = serde_json::from_str(&text).map_err(|e| {
                        self.error(
                            line_no,
                            format!(
                                "not a log event {{\"group\",\"stream\",\"timestamp\",\"message\"}}: {}",
                                json_reason(&e)
                            ),
                        )
                    })?;
                    return Ok(Some(DecodedEvent {
                        timestamp_ms: raw.timestamp.0,
                        message: Cow::Owned(raw.message.into_owned()),
                        log_group: Cow::Owned(raw.group.map_or_else(|| self.source.clone(), Cow::into_owned)),
                        log_stream: Cow::Owned(
                            raw.stream.map_or_else(|| self.source.clone(), Cow::into_owned),
                        ),
                        ingestion_time_ms: raw.ingestion_time.map(|m| m.0),
                    }));
                }
                let raw: RawLine<'a> = serde_json::from_slice(line).map_err(|e| {
                    self.error(
                        line_no,
                        format!(
                            "not a log event {{\"group\",\"stream\",\"timestamp\",\"message\"}}: {}",
                            json_reason(&e)
                        ),
                    )
                })?;
                Ok(Some(DecodedEvent {
                    timestamp_ms: raw.timestamp.0,
                    message: raw.message,
                    log_group: raw.group.unwrap_or_else(|| Cow::Owned(self.source.clone())),
                    log_stream: raw.stream.unwrap_or_else(|| Cow::Owned(self.source.clone())),
                    ingestion_time_ms: raw.ingestion_time.map(|m| m.0),
                }))
            }
            LogFormat::Text => {
                let message = String::from_utf8_lossy(line);
                if let Some(ts) = leading_timestamp(&message) {
                    self.last_timestamp = ts;
                }
                Ok(Some(DecodedEvent {
                    timestamp_ms: self.last_timestamp,
                    message,
                    log_group: Cow::Owned(self.source.clone()),
                    log_stream: Cow::Owned(self.source.clone()),
                    ingestion_time_ms: None,
                }))
            }
        }
    }
}

pub(crate) struct FastLine<'a> {
    pub group: Option<&'a str>,
    pub stream: Option<&'a str>,
    pub timestamp: i64,
    /// The message as written between its quotes: JSON-escaped when `escaped`, and not
    /// checked to be UTF-8.
    pub message_raw: &'a [u8],
    pub escaped: bool,
    pub ingestion_time: Option<i64>,
}

impl<'a> FastLine<'a> {
    /// The message text: borrowed when it has no escapes; invalid UTF-8 replaced by U+FFFD.
    /// `None` for an escape JSON does not allow.
    pub(crate) fn message(&self) -> Option<Cow<'a, str>> {
        if !self.escaped {
            return Some(String::from_utf8_lossy(self.message_raw));
        }
        let mut out = String::with_capacity(self.message_raw.len());
        unescape_into(self.message_raw, &mut out).then_some(Cow::Owned(out))
    }

    /// The message text, decoded into `scratch` when it has escapes or bad UTF-8.
    pub(crate) fn message_in<'s>(&self, scratch: &'s mut String) -> Option<&'s str>
    where
        'a: 's,
    {
        if !self.escaped {
            if let Ok(s) = std::str::from_utf8(self.message_raw) {
                return Some(s);
            }
        }
        unescape_into(self.message_raw, scratch).then_some(scratch.as_str())
    }

    /// The length in bytes of the decoded message, without decoding it.
    pub(crate) fn message_len(&self) -> usize {
        unescaped_len(self.message_raw, self.escaped)
    }
}

/// The length in bytes of a JSON string's text once decoded, from its raw bytes.
pub(crate) fn unescaped_len(b: &[u8], escaped: bool) -> usize {
    if !escaped {
        return b.len();
    }
    let (mut len, mut i) = (0, 0);
    while i < b.len() {
        if b[i] != b'\\' {
            len += 1;
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'u') {
            let cp = hex4(b, i + 2).unwrap_or(0xFFFD);
            if (0xD800..0xDC00).contains(&cp) && b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u') {
                len += 4;
                i += 12;
            } else {
                len += char::from_u32(cp).map_or(3, char::len_utf8);
                i += 6;
            }
        } else {
            len += 1;
            i += 2;
        }
    }
    len
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let h = b.get(at..at + 4)?;
    let mut n = 0;
    for c in h {
        n = n * 16 + char::from(*c).to_digit(16)?;
    }
    Some(n)
}

/// Decodes a JSON string's raw bytes (between the quotes) into `out`; false for an escape JSON
/// does not allow. Invalid UTF-8 becomes U+FFFD.
pub(crate) fn unescape_into(b: &[u8], out: &mut String) -> bool {
    out.clear();
    let mut i = 0;
    while i < b.len() {
        let Some(k) = memchr::memchr(b'\\', &b[i..]) else {
            out.push_str(&String::from_utf8_lossy(&b[i..]));
            return true;
        };
        out.push_str(&String::from_utf8_lossy(&b[i..i + k]));
        i += k;
        let c = match b.get(i + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let Some(hi) = hex4(b, i + 2) else { return false };
                i += 6;
                if (0xD800..0xDC00).contains(&hi) && b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
                    if let Some(lo) = hex4(b, i + 2).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                        i += 6;
                        out.push(
                            char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                .unwrap_or('\u{fffd}'),
                        );
                        continue;
                    }
                }
                out.push(char::from_u32(hi).unwrap_or('\u{fffd}'));
                continue;
            }
            _ => return false,
        };
        out.push(c);
        i += 2;
    }
    true
}

/// The common case of the drill format without serde: a flat object of the known keys; the
/// message may have escapes (the group and stream may not). `None` sends the line to
/// serde_json, which handles everything else (and reports errors).
pub(crate) fn fast_line(line: &[u8]) -> Option<FastLine<'_>> {
    fn ws(b: &[u8], mut i: usize) -> usize {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    }
    fn string(b: &[u8], i: usize) -> Option<(&str, usize)> {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let rest = b.get(i + 1..)?;
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        let s = std::str::from_utf8(&rest[..end]).ok()?;
        Some((s, i + 1 + end + 1))
    }
    /// A string's raw bytes, whether it has escapes, and the index after its closing quote.
    fn raw_string(b: &[u8], i: usize) -> Option<(&[u8], bool, usize)> {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let start = i + 1;
        // SIMD up to the first quote or backslash; past a backslash a plain loop, since JSON
        // messages inside strings have many `\"` and a memchr call per hit costs more.
        let first = start + memchr::memchr2(b'"', b'\\', b.get(start..)?)?;
        if b[first] == b'"' {
            return Some((&b[start..first], false, first + 1));
        }
        let mut j = first;
        let mut escaped = false;
        while j < b.len() {
            match b[j] {
                b'"' => return Some((&b[start..j], escaped, j + 1)),
                b'\\' => {
                    escaped = true;
                    j += 2;
                }
                _ => j += 1,
            }
        }
        None
    }
    fn millis(b: &[u8], i: usize) -> Option<(i64, usize)> {
        if b.get(i) == Some(&b'"') {
            let (s, j) = string(b, i)?;
            return Some((parse_timestamp(s)?, j));
        }
        let mut j = i;
        let negative = b.get(j) == Some(&b'-');
        if negative {
            j += 1;
        }
        let digits = j;
        let mut n: i64 = 0;
        while let Some(d) = b.get(j).filter(|d| d.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
            j += 1;
        }
        if j == digits || matches!(b.get(j), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some((if negative { -n } else { n }, j))
    }
    let b = line;
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let (mut group, mut stream, mut timestamp, mut message, mut ingestion_time) =
        (None, None, None, None, None);
    loop {
        i = ws(b, i);
        let (key, escaped, j) = raw_string(b, i)?;
        if escaped {
            return None;
        }
        i = ws(b, j);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        match key {
            b"group" => (group, i) = string(b, i).map(|(s, j)| (Some(s), j))?,
            b"stream" => (stream, i) = string(b, i).map(|(s, j)| (Some(s), j))?,
            b"message" => (message, i) = raw_string(b, i).map(|(s, e, j)| (Some((s, e)), j))?,
            b"timestamp" => (timestamp, i) = millis(b, i).map(|(n, j)| (Some(n), j))?,
            b"ingestionTime" => (ingestion_time, i) = millis(b, i).map(|(n, j)| (Some(n), j))?,
            _ => return None,
        }
        i = ws(b, i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => break,
            _ => return None,
        }
    }
    if ws(b, i + 1) != b.len() {
        return None;
    }
    let (message_raw, escaped) = message?;
    Some(FastLine {
        group,
        stream,
        timestamp: timestamp?,
        message_raw,
        escaped,
        ingestion_time,
    })
}

fn json_reason(e: &serde_json::Error) -> String {
    // serde_json appends "at line 1 column N"; the column is useful, the line is always 1.
    let s = e.to_string();
    match s.rfind(" at line 1 column ") {
        Some(i) => format!("{} (column {})", &s[..i], &s[i + " at line 1 column ".len()..]),
        None => s,
    }
}

/// Iterator over the events of one source; see [`read_events`].
pub struct Events<R> {
    reader: R,
    decoder: LineDecoder,
    buf: Vec<u8>,
    line: u64,
    done: bool,
}

/// Reads events from a drill JSON-lines or plain-text source, one line at a time.
///
/// Text lines become events of log group and stream `source`; a timestamp at the start of
/// the line (`2026-03-14T14:30:00Z ...`) is the event's, otherwise the previous line's (0 before
/// the first). Blank lines are skipped.
///
/// Each item is an event or a [`ReadError`] naming `source` and the line; iteration stops
/// after an I/O error.
pub fn read_events<R: BufRead>(reader: R, source: &str) -> Events<R> {
    Events {
        reader,
        decoder: LineDecoder::new(source),
        buf: Vec::with_capacity(4096),
        line: 0,
        done: false,
    }
}

impl<R: BufRead> Iterator for Events<R> {
    type Item = Result<LogEvent, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
                    match self.decoder.decode(line, self.line) {
                        Ok(Some(ev)) => return Some(Ok(ev.as_event_ref().to_owned_event())),
                        Ok(None) => {}
                        Err(e) => return Some(Err(e)),
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(self
                        .decoder
                        .error(self.line + 1, format!("read failed: {e}"))));
                }
            }
        }
        None
    }
}

/// Streams a source's events into `f` without copying them: the fast path for large files.
/// Stops at the first bad line. Returns the number of lines read.
///
/// # Errors
/// The first line that cannot be read, or an I/O error.
pub fn for_each_event<R: BufRead>(
    mut reader: R,
    source: &str,
    mut f: impl FnMut(EventRef<'_>),
) -> Result<u64, ReadError> {
    let mut decoder = LineDecoder::new(source);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| decoder.error(line_no + 1, format!("read failed: {e}")))?;
        if n == 0 {
            return Ok(line_no);
        }
        line_no += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if let Some(ev) = decoder.decode(line, line_no)? {
            f(ev.as_event_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The scanner's own unescaping and length agree with serde_json on any string.
        #[test]
        fn unescaping_agrees_with_serde_json(s in "\\PC{0,40}|[\"\\\\/\u{8}\u{c}\n\r\t\u{1F600}é a]{0,20}") {
            let encoded = serde_json::to_string(&s).unwrap();
            let raw = &encoded.as_bytes()[1..encoded.len() - 1];
            let escaped = raw.contains(&b'\\');
            let mut out = String::new();
            prop_assert!(unescape_into(raw, &mut out));
            prop_assert_eq!(&out, &s);
            prop_assert_eq!(unescaped_len(raw, escaped), s.len());
            // And with \u escapes for everything outside ASCII (as some writers do).
            let ascii: String = s.chars().map(|c| if c.is_ascii() && c != '"' && c != '\\' && c >= ' ' { c.to_string() } else {
                let mut b = [0u16; 2];
                c.encode_utf16(&mut b).iter().map(|u| format!("\\u{u:04x}")).collect()
            }).collect();
            prop_assert!(unescape_into(ascii.as_bytes(), &mut out));
            prop_assert_eq!(&out, &s);
            prop_assert_eq!(unescaped_len(ascii.as_bytes(), true), s.len());
        }
    }

    #[test]
    fn bad_escapes_are_refused() {
        let mut out = String::new();
        assert!(!unescape_into(br"a\qb", &mut out));
        assert!(!unescape_into(br"\u12", &mut out));
    }
}
