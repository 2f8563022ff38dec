//! Scanning log files fast: JSON-lines files are read in chunks of whole lines, each chunk
//! evaluated by its own partial [`Execution`] (on as many threads as asked) and the partials
//! merged in file order, so that any number of threads gives the results of one. Lines that
//! cannot pass the query's first filter (a literal `@message` must contain) are rejected on
//! their raw bytes, before the message is decoded. Plain-text files, whose timestamps carry
//! from line to line, and queries with subqueries or `logcompare` are read in one pass.

use crate::budget::default_memory_budget;
use crate::eval::{EvalError, EvalOptions, Execution, QueryResults};
use crate::event::EventRef;
use crate::reader::{fast_line, for_each_event, LineDecoder, LogFormat, ReadError};
use crate::Query;
use memchr::memmem::Finder;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};

/// Bytes of one chunk (whole lines; a longer line makes a longer chunk).
const CHUNK: usize = 4 << 20;

/// How to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Bytes the query may keep (groups, rows, sets), chunk buffers included.
    pub memory_budget: usize,
    /// Bytes of a chunk; 0 means 4 MiB. The thread count never changes results; the chunk
    /// size can change the last digits of floating-point sums (`avg`, `stddev`).
    pub chunk_bytes: usize,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            threads: 0,
            memory_budget: default_memory_budget(),
            chunk_bytes: 0,
        }
    }
}

/// Why a scan failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScanError {
    /// A file could not be opened or read, or a line is not a log event.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The query cannot run locally, or it needs more than its memory budget.
    #[error(transparent)]
    Eval(#[from] EvalError),
}

fn threads(n: usize) -> usize {
    if n == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        n
    }
}

/// Runs `query` over log files (drill JSON lines or plain text, as [`crate::read_events`]
/// reads them) and returns its results.
///
/// # Errors
/// [`ScanError::Read`] for the first bad line or unreadable file (named `file:line`);
/// [`ScanError::Eval`] when the query cannot run locally or passes its memory budget.
pub fn scan_files(
    query: &Query,
    files: &[PathBuf],
    options: &EvalOptions,
    scan: &ScanOptions,
) -> Result<QueryResults, ScanError> {
    let threads = threads(scan.threads);
    let mut exec = query.start_with_budget(options, scan.memory_budget)?;
    let mut chunk_index: u64 = 0;
    for path in files {
        let name = path.display().to_string();
        let open_error = |e: std::io::Error| ReadError {
            source_name: name.clone(),
            line: 0,
            reason: format!("cannot open: {e}"),
        };
        let mut file = File::open(path).map_err(open_error)?;
        let mut head = Vec::with_capacity(64 << 10);
        (&mut file)
            .take(64 << 10)
            .read_to_end(&mut head)
            .map_err(open_error)?;
        let format = detect(&head, &name);
        if format == LogFormat::JsonLines && exec.mergeable() {
            let chunk = if scan.chunk_bytes == 0 {
                CHUNK
            } else {
                scan.chunk_bytes.max(1024)
            };
            // A small file needs no full-size buffers.
            let len = file.metadata().map_or(u64::MAX, |m| m.len());
            let chunk = chunk.min(usize::try_from(len).unwrap_or(usize::MAX).max(1024));
            chunk_index = scan_chunked(&mut exec, file, head, &name, threads, chunk, chunk_index)?;
        } else {
            // One pass: text timestamps carry over lines; subqueries buffer anyway.
            exec.set_ordinal(chunk_index << 32);
            chunk_index += 1;
            let reader = BufReader::with_capacity(1 << 20, std::io::Cursor::new(head).chain(file));
            for_each_event(reader, &name, |ev| exec.push(ev))?;
        }
    }
    Ok(exec.finish()?)
}

/// The format of a source from its first non-blank line, as [`LineDecoder`] decides it.
fn detect(head: &[u8], name: &str) -> LogFormat {
    let mut d = LineDecoder::new(name);
    for line in head.split(|b| *b == b'\n') {
        if let Ok(Some(_)) = d.decode(line, 1) {
            break;
        }
        if d.format().is_some() {
            break;
        }
    }
    d.format().unwrap_or(LogFormat::Text)
}

struct Chunk {
    index: u64,
    first_line: u64,
    bytes: Vec<u8>,
}

/// Reads `file` (after `head`, already read) in chunks of whole lines and evaluates them into
/// `exec`; returns the next chunk index.
fn scan_chunked(
    exec: &mut Execution,
    file: File,
    head: Vec<u8>,
    name: &str,
    threads: usize,
    chunk: usize,
    index: u64,
) -> Result<u64, ScanError> {
    // The chunks in flight (read, queued, being evaluated) count against the budget too.
    let buffers = (2 * threads + 2) * chunk;
    if !exec.charge(buffers) {
        return Err(EvalError::Invalid(exec.over_budget(&format!("{threads} threads' read buffers"))).into());
    }
    let r = scan_chunks(exec, file, head, name, threads, chunk, index);
    exec.release(buffers);
    r
}

fn scan_chunks(
    exec: &mut Execution,
    file: File,
    head: Vec<u8>,
    name: &str,
    threads: usize,
    chunk: usize,
    mut index: u64,
) -> Result<u64, ScanError> {
    let needles = Arc::new(Prefilter::new(exec.needles()));
    let mut chunks = Chunks {
        reader: file,
        carry: head,
        line: 1,
        done: false,
        chunk,
    };
    if threads <= 1 {
        let mut spare = Vec::new();
        while let Some(bytes) = chunks.next_chunk(name, spare)? {
            let first_line = chunks.line;
            chunks.line += memchr::memchr_iter(b'\n', &bytes).count() as u64;
            let mut part = exec.fork();
            part.set_ordinal(index << 32);
            index += 1;
            evaluate_chunk(&mut part, &bytes, first_line, name, &needles)?;
            exec.merge(part);
            spare = bytes;
        }
        return Ok(index);
    }
    std::thread::scope(|scope| -> Result<u64, ScanError> {
        let (job_tx, job_rx) = mpsc::sync_channel::<Chunk>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<(u64, Result<Execution, ReadError>)>();
        // Buffers go back to the reader, so that chunks reuse their pages.
        let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
        for _ in 0..threads {
            let (job_rx, done_tx, needles) = (Arc::clone(&job_rx), done_tx.clone(), Arc::clone(&needles));
            let spare_tx = spare_tx.clone();
            let template = exec.fork();
            scope.spawn(move || loop {
                let job = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                let mut part = template.fork();
                part.set_ordinal(job.index << 32);
                let r = evaluate_chunk(&mut part, &job.bytes, job.first_line, name, &needles).map(|()| part);
                let _ = spare_tx.send(job.bytes);
                if done_tx.send((job.index, r)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        drop(spare_tx);
        let first = index;
        let mut pending: BTreeMap<u64, Result<Execution, ReadError>> = BTreeMap::new();
        let mut next_merge = first;
        let mut failure: Option<ReadError> = None;
        let mut merge_ready = |pending: &mut BTreeMap<u64, Result<Execution, ReadError>>,
                               next_merge: &mut u64,
                               failure: &mut Option<ReadError>| {
            while let Some(r) = pending.remove(next_merge) {
                *next_merge += 1;
                match r {
                    Ok(part) if failure.is_none() => exec.merge(part),
                    Ok(_) => {}
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
        };
        let mut read_error = None;
        loop {
            match chunks.next_chunk(name, spare_rx.try_recv().unwrap_or_default()) {
                Ok(Some(bytes)) => {
                    let first_line = chunks.line;
                    chunks.line += memchr::memchr_iter(b'\n', &bytes).count() as u64;
                    if job_tx
                        .send(Chunk {
                            index,
                            first_line,
                            bytes,
                        })
                        .is_err()
                    {
                        break;
                    }
                    index += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
            while let Ok((i, r)) = done_rx.try_recv() {
                pending.insert(i, r);
            }
            merge_ready(&mut pending, &mut next_merge, &mut failure);
            if failure.is_some() {
                break;
            }
        }
        drop(job_tx);
        for (i, r) in done_rx.iter() {
            pending.insert(i, r);
            merge_ready(&mut pending, &mut next_merge, &mut failure);
        }
        if let Some(e) = failure {
            return Err(e.into());
        }
        if let Some(e) = read_error {
            return Err(e);
        }
        Ok(index)
    })
}

struct Chunks {
    reader: File,
    carry: Vec<u8>,
    /// The line number of the next chunk's first line.
    line: u64,
    done: bool,
    chunk: usize,
}

impl Chunks {
    /// The next run of whole lines (the last line of the file may lack its newline), read
    /// into `buf` (a recycled buffer: no fresh pages, no regrowth).
    fn next_chunk(&mut self, name: &str, mut buf: Vec<u8>) -> Result<Option<Vec<u8>>, ScanError> {
        buf.clear();
        if self.done && self.carry.is_empty() {
            return Ok(None);
        }
        buf.reserve(self.chunk + self.carry.len());
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        let mut limit = self.chunk;
        loop {
            if !self.done && buf.len() < limit {
                let want = limit - buf.len();
                let got = (&mut self.reader)
                    .take(want as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| ReadError {
                        source_name: name.to_string(),
                        line: self.line,
                        reason: format!("read failed: {e}"),
                    })?;
                if got == 0 {
                    self.done = true;
                }
            }
            if self.done {
                return Ok((!buf.is_empty()).then_some(buf));
            }
            if let Some(nl) = memchr::memrchr(b'\n', &buf) {
                self.carry.extend_from_slice(&buf[nl + 1..]);
                buf.truncate(nl + 1);
                return Ok(Some(buf));
            }
            // A line longer than a chunk: read on until its end.
            limit = limit.saturating_add(self.chunk);
        }
    }
}

/// What rejects lines before they are decoded: the literals the first filter needs.
pub(crate) struct Prefilter {
    needles: Vec<Finder<'static>>,
    escape_u: Finder<'static>,
    message_key: Finder<'static>,
}

const MESSAGE_KEY: &[u8] = b"\"message\":";

impl Prefilter {
    fn new(needles: &[Vec<u8>]) -> Prefilter {
        Prefilter {
            needles: needles.iter().map(|n| Finder::new(n).into_owned()).collect(),
            escape_u: Finder::new(b"\\u").into_owned(),
            message_key: Finder::new(MESSAGE_KEY).into_owned(),
        }
    }

    fn active(&self) -> bool {
        !self.needles.is_empty()
    }

    /// Whether a raw (JSON-escaped) text can contain every needle: false only when some
    /// needle is absent and no `\u` escape could be hiding it.
    fn may_match(&self, raw: &[u8]) -> bool {
        self.needles.iter().all(|n| n.find(raw).is_some()) || self.escape_u.find(raw).is_some()
    }

    /// Where in `bytes` a line may match: the first needle's occurrences and the `\u`
    /// escapes, in order. A line holding none of them cannot match.
    fn candidates(&self, bytes: &[u8]) -> Vec<usize> {
        let mut hits: Vec<usize> = self
            .needles
            .first()
            .map_or_else(Vec::new, |n| n.find_iter(bytes).collect());
        let before = hits.len();
        hits.extend(self.escape_u.find_iter(bytes));
        if hits.len() > before {
            hits.sort_unstable();
        }
        hits
    }

    /// For a line that cannot match at all (no needle anywhere in it, no `\u`): the decoded
    /// length of its message, found without parsing the rest. `None` when the line is not
    /// that simple.
    fn rejected_message_len(&self, line: &[u8]) -> Option<usize> {
        let at = self.message_key.find(line)?;
        // Only one "message": key, so that this is the message and not text inside a value.
        if self.message_key.find(&line[at + 1..]).is_some() {
            return None;
        }
        let mut i = at + MESSAGE_KEY.len();
        while line.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if line.get(i) != Some(&b'"') {
            return None;
        }
        // One pass over the quotes and backslashes: no `\u` here (the line is no candidate),
        // so each escape is two bytes for one.
        let start = i + 1;
        let rest = line.get(start..)?;
        // A plain loop: escaped JSON messages have many `\"`, and a call per hit costs more.
        let mut escapes = 0;
        let mut k = memchr::memchr2(b'"', b'\\', rest)?;
        while k < rest.len() {
            match rest[k] {
                b'"' => return Some(k - escapes),
                b'\\' => {
                    escapes += 1;
                    k += 2;
                }
                _ => k += 1,
            }
        }
        None
    }
}

/// Evaluates the JSON lines of one chunk into `exec`.
fn evaluate_chunk(
    exec: &mut Execution,
    bytes: &[u8],
    first_line: u64,
    name: &str,
    prefilter: &Prefilter,
) -> Result<(), ReadError> {
    // Without a time range or log groups every line is in scope, so a line with no needle
    // anywhere is counted and dropped without parsing.
    let reject_raw = prefilter.active() && exec.scope_is_everything();
    let reads_message = exec.reads_message();
    let mut scratch = String::new();
    let candidates = if reject_raw {
        prefilter.candidates(bytes)
    } else {
        Vec::new()
    };
    let mut next_candidate = 0;
    let mut decoder = LineDecoder::with_format(name, LogFormat::JsonLines);
    let mut line_no = first_line;
    let mut start = 0;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |k| start + k);
        let line = &bytes[start..end];
        let line_start = start;
        start = end + 1;
        let this_line = line_no;
        line_no += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if reject_raw {
            while candidates.get(next_candidate).is_some_and(|c| *c < line_start) {
                next_candidate += 1;
            }
            let is_candidate = candidates
                .get(next_candidate)
                .is_some_and(|c| *c < line_start + line.len());
            if !is_candidate || !prefilter.may_match(line) {
                if let Some(len) = prefilter.rejected_message_len(line) {
                    exec.skip(len);
                    continue;
                }
            }
        }
        if let Some(fast) = fast_line(line) {
            let group = fast.group.unwrap_or(decoder.source());
            if !exec.in_scope(fast.timestamp, group) {
                continue;
            }
            if prefilter.active() && !prefilter.may_match(fast.message_raw) {
                exec.skip(fast.message_len());
                continue;
            }
            let stream = fast.stream.unwrap_or(decoder.source());
            if !reads_message {
                // Only the fields a query uses are extracted: this one never reads the message.
                let len = fast.message_len();
                exec.push_sized(
                    EventRef {
                        timestamp_ms: fast.timestamp,
                        message: "",
                        log_group: group,
                        log_stream: stream,
                        ingestion_time_ms: fast.ingestion_time,
                    },
                    len,
                );
                continue;
            }
            let Some(message) = fast.message_in(&mut scratch) else {
                return Err(ReadError {
                    source_name: name.to_string(),
                    line: this_line,
                    reason: "not a log event: the message is not a valid JSON string".into(),
                });
            };
            exec.push(EventRef {
                timestamp_ms: fast.timestamp,
                message,
                log_group: group,
                log_stream: stream,
                ingestion_time_ms: fast.ingestion_time,
            });
            continue;
        }
        if let Some(ev) = decoder.decode(line, this_line)? {
            exec.push(ev.as_event_ref());
        }
    }
    Ok(())
}
