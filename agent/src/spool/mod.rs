//! The on-disk spool between scoring and the collector: bounded, crash-safe,
//! forwarded in acknowledged batches.
//!
//! Layout in `<state_dir>/spool/`: segment files `<id>.seg` (ids increase)
//! of frames `[len: u32 LE][crc32 of payload: u32 LE][payload]`, the payload
//! a postcard [`wire::Record`] (frames written before records carried
//! evidence still read, with none); `meta.json` (written atomically) with the
//! read cursor, the next batch sequence number, the dropped count and the
//! batch in flight; `inflight.batch`, the exact bytes of that batch. The
//! directory is the state directory's (`crate::state`), and so are its
//! modes and its atomic write.
//!
//! Ordering rules that make delivery exactly once:
//! - the run loop writes results, `commit` fsyncs them, then the checkpoint
//!   with the spool's mark is saved; only then does [`Spool::checkpointed`]
//!   let the forwarder see them. A crash before the checkpoint cuts the spool
//!   back to the previous mark ([`Spool::recover`]) and the lines are read
//!   again, so nothing unsaved was ever sent;
//! - a batch is written to `inflight.batch` and recorded in `meta.json`
//!   before it is sent, and re-sent byte for byte until acknowledged (the
//!   collector stores each `(device, seq)` once); only the acknowledgement
//!   moves the cursor and deletes fully read segments.
//!
//! At the size cap the oldest segment is deleted and its unsent records are
//! counted as dropped (persisted, reported in every heartbeat). A frame that
//! fails its checksum (a torn or rotted write) ends its segment: the rest is
//! counted as dropped, never fatal.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use bfp_common::wire;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::state::{create_private_dir, open_private_append, write_atomically, SpoolFiles};

const HEADER: u64 = 8;
/// Largest frame payload accepted when reading (a corrupted length must not
/// make the agent allocate gigabytes).
const MAX_FRAME: u32 = 1 << 20;

/// A place in the spool: segment id and byte offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pos {
    /// Segment id.
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
}

/// The batch being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inflight {
    /// Its sequence number.
    pub seq: u64,
    /// Where the spool stands after its last record.
    pub end: Pos,
    /// Records in it.
    pub records: u64,
}

/// What survives restarts besides the segments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Everything before this was acknowledged (or dropped).
    pub read: Pos,
    /// Sequence number of the next batch (starts at 1).
    pub next_seq: u64,
    /// Records dropped at the size cap or lost to corruption, since install.
    pub dropped: u64,
    /// The batch sent but not yet acknowledged.
    pub inflight: Option<Inflight>,
}

/// The spool's limits.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Directory (created).
    pub dir: PathBuf,
    /// Size cap of all segments together, bytes.
    pub max_bytes: u64,
    /// A segment is closed and a new one begun past this size.
    pub segment_bytes: u64,
}

impl SpoolConfig {
    /// A spool in `dir` capped at `max_bytes`, in segments of an eighth of
    /// it (4 KiB to 4 MiB): dropping the oldest loses at most an eighth.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> SpoolConfig {
        SpoolConfig { dir: dir.into(), max_bytes, segment_bytes: (max_bytes / 8).clamp(4 << 10, 4 << 20) }
    }
}

/// The spool (one per agent; shared between the run loop and the forwarder
/// behind a mutex).
pub struct Spool {
    config: SpoolConfig,
    files: SpoolFiles,
    /// Segment id → length on disk (plus what is buffered, for the last).
    segments: BTreeMap<u64, u64>,
    out: Option<BufWriter<File>>,
    /// A new segment file exists whose directory entry is not yet synced.
    dir_dirty: bool,
    /// The end of what was written (buffered included).
    write: Pos,
    /// The end of what the forwarder may read (checkpointed).
    visible: Pos,
    meta: Meta,
    /// Records neither acknowledged nor dropped.
    unacked: u64,
}

impl Spool {
    /// Opens (creating) the spool. Call [`Spool::recover`] before use.
    pub fn open(config: SpoolConfig) -> Result<Spool> {
        create_private_dir(&config.dir)?;
        let mut segments = BTreeMap::new();
        for entry in fs::read_dir(&config.dir).map_err(Error::io(&config.dir))? {
            let entry = entry.map_err(Error::io(&config.dir))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(SpoolFiles::segment_id) else {
                continue;
            };
            let len = entry.metadata().map_err(Error::io(entry.path()))?.len();
            segments.insert(id, len);
        }
        let files = SpoolFiles::new(&config.dir);
        let meta_path = files.meta();
        let meta = match fs::read(&meta_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::State {
                path: meta_path.clone(),
                detail: format!("unreadable spool state: {e}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Meta { next_seq: 1, ..Meta::default() },
            Err(e) => return Err(Error::Io { path: meta_path, source: e }),
        };
        Ok(Spool {
            config,
            files,
            segments,
            out: None,
            dir_dirty: false,
            write: Pos::default(),
            visible: Pos::default(),
            meta,
            unacked: 0,
        })
    }

    /// At start-up: cuts the spool back to `mark` (what the last checkpoint
    /// covered; `None` for nothing) and counts what is waiting.
    pub fn recover(&mut self, mark: Option<Pos>) -> Result<()> {
        // No spool mark yet: no checkpoint covers anything in it.
        let mark = mark.unwrap_or_default();
        let later: Vec<u64> = self.segments.range(mark.segment + 1..).map(|(id, _)| *id).collect();
        for id in later {
            self.remove_segment(id)?;
        }
        if let Some(len) = self.segments.get_mut(&mark.segment) {
            if *len > mark.offset {
                let path = self.files.segment(mark.segment);
                let f = OpenOptions::new().write(true).open(&path).map_err(Error::io(&path))?;
                f.set_len(mark.offset).map_err(Error::io(&path))?;
                f.sync_all().map_err(Error::io(&path))?;
                *len = mark.offset;
            }
        }
        // Continue in a fresh segment after everything that exists: the
        // mark's segment may have been dropped at the cap meanwhile, and the
        // cursor may already stand past it.
        let last = self.segments.keys().next_back().copied().unwrap_or(0);
        self.write = Pos { segment: last.max(mark.segment).max(self.cursor().segment) + 1, offset: 0 };
        self.visible = self.write;
        self.out = None;
        let cursor = self.cursor();
        // Bad frames are counted when the forwarder reaches them.
        let (waiting, _) = self.count_from(cursor, self.visible)?;
        self.unacked = waiting + self.meta.inflight.map_or(0, |i| i.records);
        if self.meta.inflight.is_some() && !self.files.inflight().exists() {
            // Cannot happen with the write order above; if the file was
            // removed by hand, resume after it rather than stall forever.
            let lost = self.meta.inflight.take().map_or(0, |i| i.records);
            eprintln!("bfp-agent: warning: spool batch in flight is missing; {lost} records counted as dropped");
            self.meta.dropped += lost;
            self.unacked -= lost.min(self.unacked);
            self.save_meta()?;
        }
        if self.meta.inflight.is_none() {
            let _ = fs::remove_file(self.files.inflight());
        }
        Ok(())
    }

    /// Where unsent records start.
    fn cursor(&self) -> Pos {
        self.meta.read.max(self.meta.inflight.map_or(Pos::default(), |i| i.end))
    }

    /// Appends one record (buffered until [`Spool::commit`]).
    pub fn append(&mut self, record: &wire::Record) -> Result<()> {
        let payload = record.encode_frame().map_err(|e| Error::Spool(format!("encode: {e}")))?;
        if self.write.offset >= self.config.segment_bytes || self.out.is_none() {
            self.rotate()?;
        }
        let path = self.files.segment(self.write.segment);
        let out = self.out.as_mut().expect("rotate opened a segment");
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        header[4..].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.write_all(&header).and_then(|()| out.write_all(&payload)).map_err(Error::io(&path))?;
        let n = HEADER + payload.len() as u64;
        self.write.offset += n;
        *self.segments.entry(self.write.segment).or_default() += n;
        self.unacked += 1;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        if let Some(mut out) = self.out.take() {
            let path = self.files.segment(self.write.segment);
            out.flush().map_err(Error::io(&path))?;
            out.get_ref().sync_data().map_err(Error::io(&path))?;
            self.write = Pos { segment: self.write.segment + 1, offset: 0 };
        }
        let path = self.files.segment(self.write.segment);
        let file = open_private_append(&path)?;
        self.write.offset = file.metadata().map_err(Error::io(&path))?.len();
        self.segments.entry(self.write.segment).or_insert(self.write.offset);
        self.out = Some(BufWriter::with_capacity(32 << 10, file));
        self.dir_dirty = true;
        Ok(())
    }

    /// Makes everything appended durable, enforces the size cap, and returns
    /// the mark to checkpoint.
    pub fn commit(&mut self) -> Result<Pos> {
        if let Some(out) = self.out.as_mut() {
            let path = self.files.segment(self.write.segment);
            out.flush().map_err(Error::io(&path))?;
            out.get_ref().sync_data().map_err(Error::io(&path))?;
        }
        if self.dir_dirty {
            File::open(&self.config.dir).and_then(|d| d.sync_all()).map_err(Error::io(&self.config.dir))?;
            self.dir_dirty = false;
        }
        self.enforce_cap()?;
        Ok(self.write)
    }

    fn enforce_cap(&mut self) -> Result<()> {
        let mut changed = false;
        while self.segments.values().sum::<u64>() > self.config.max_bytes && self.segments.len() > 1 {
            let (&oldest, _) = self.segments.iter().next().expect("more than one segment");
            let next = *self.segments.range(oldest + 1..).next().map(|(id, _)| id).expect("more than one");
            let cursor = self.cursor();
            let end = Pos { segment: oldest, offset: u64::MAX };
            let (lost, _) = if cursor.segment <= oldest { self.count_from(cursor, end)? } else { (0, 0) };
            self.remove_segment(oldest)?;
            let restart = Pos { segment: next, offset: 0 };
            self.meta.read = self.meta.read.max(restart);
            self.meta.dropped += lost;
            self.unacked -= lost.min(self.unacked);
            self.visible = self.visible.max(restart).min(self.write);
            changed = true;
        }
        if changed {
            self.save_meta()?;
        }
        Ok(())
    }

    /// The checkpoint holding `mark` is saved: the forwarder may send up to it.
    pub fn checkpointed(&mut self, mark: Pos) {
        self.visible = self.visible.max(mark);
    }

    fn remove_segment(&mut self, id: u64) -> Result<()> {
        let path = self.files.segment(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io { path, source: e }),
        }
        self.segments.remove(&id);
        Ok(())
    }

    /// Counts the valid records in `[from, to)`; the second number is the
    /// records' worth lost to a bad frame (counted as one per bad segment).
    fn count_from(&self, from: Pos, to: Pos) -> Result<(u64, u64)> {
        let mut n = 0;
        let mut bad = 0;
        let mut pos = from;
        while let Some(p) = self.next_frame_pos(pos, to) {
            match self.read_frame(p)? {
                Some((_, next)) => {
                    n += 1;
                    pos = next;
                }
                None => {
                    bad += 1;
                    pos = Pos { segment: p.segment + 1, offset: 0 };
                }
            }
        }
        Ok((n, bad))
    }

    /// The next place a frame may start at or after `pos`, before `limit`.
    fn next_frame_pos(&self, pos: Pos, limit: Pos) -> Option<Pos> {
        let mut pos = pos;
        loop {
            if pos >= limit {
                return None;
            }
            let (&id, &len) = self.segments.range(pos.segment..).next()?;
            if id > pos.segment {
                pos = Pos { segment: id, offset: 0 };
                continue;
            }
            if pos.offset + HEADER <= len && pos < limit {
                return Some(pos);
            }
            pos = Pos { segment: id + 1, offset: 0 };
        }
    }

    /// Reads the frame at `pos`: its payload and the position after it, or
    /// `None` if it is torn or corrupt.
    fn read_frame(&self, pos: Pos) -> Result<Option<(Vec<u8>, Pos)>> {
        let path = self.files.segment(pos.segment);
        // Only called below a committed (flushed) position.
        let mut f = File::open(&path).map_err(Error::io(&path))?;
        f.seek(SeekFrom::Start(pos.offset)).map_err(Error::io(&path))?;
        let mut header = [0u8; 8];
        if f.read_exact(&mut header).is_err() {
            return Ok(None);
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len > MAX_FRAME {
            return Ok(None);
        }
        let mut payload = vec![0u8; len as usize];
        if f.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            return Ok(None);
        }
        Ok(Some((payload, Pos { segment: pos.segment, offset: pos.offset + HEADER + u64::from(len) })))
    }

    /// Up to `max` unsent, checkpointed records, and where they end. A bad
    /// frame ends its segment: the cursor skips the rest (counted as one
    /// dropped record: its true number is unknowable).
    pub fn peek(&mut self, max: usize) -> Result<(Vec<wire::Record>, Pos)> {
        let mut records = Vec::new();
        let mut pos = self.cursor();
        while records.len() < max {
            let Some(p) = self.next_frame_pos(pos, self.visible) else { break };
            let frame = self.read_frame(p)?;
            match frame.as_ref().map(|(payload, next)| (wire::Record::decode_frame(payload), *next)) {
                Some((Ok(r), next)) => {
                    records.push(r);
                    pos = next;
                }
                // Records before the bad frame go first; the next call
                // starts at it and skips it.
                _ if !records.is_empty() => break,
                _ => {
                    eprintln!("bfp-agent: warning: corrupt spool frame in segment {}; rest of it skipped", p.segment);
                    let skip = Pos { segment: p.segment + 1, offset: 0 };
                    self.meta.read = self.meta.read.max(skip);
                    self.meta.dropped += 1;
                    self.unacked = self.unacked.saturating_sub(1);
                    self.save_meta()?;
                    pos = skip;
                }
            }
        }
        Ok((records, pos))
    }

    /// Records `bytes` (an encoded batch of `records` records ending at
    /// `end`) as in flight, durably, before it is sent. Returns its seq.
    pub fn begin(&mut self, records: u64, end: Pos, encode: impl FnOnce(u64) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
        let seq = self.meta.next_seq;
        let bytes = encode(seq)?;
        let path = self.files.inflight();
        write_atomically(&path, &bytes)?;
        self.meta.inflight = Some(Inflight { seq, end, records });
        self.meta.next_seq = seq + 1;
        self.save_meta()?;
        Ok(bytes)
    }

    /// The batch in flight (after a restart): its bytes.
    pub fn inflight(&self) -> Result<Option<Vec<u8>>> {
        if self.meta.inflight.is_none() {
            return Ok(None);
        }
        let path = self.files.inflight();
        fs::read(&path).map(Some).map_err(Error::io(&path))
    }

    /// The collector acknowledged the batch in flight.
    pub fn ack(&mut self) -> Result<()> {
        let Some(inflight) = self.meta.inflight.take() else { return Ok(()) };
        self.meta.read = self.meta.read.max(inflight.end);
        self.unacked -= inflight.records.min(self.unacked);
        self.save_meta()?;
        let _ = fs::remove_file(self.files.inflight());
        // Fully read segments (never the one being written) go.
        let done: Vec<u64> =
            self.segments.range(..self.meta.read.segment.min(self.write.segment)).map(|(id, _)| *id).collect();
        for id in done {
            self.remove_segment(id)?;
        }
        Ok(())
    }

    fn save_meta(&self) -> Result<()> {
        let bytes = serde_json::to_vec(&self.meta).map_err(|e| Error::Spool(e.to_string()))?;
        write_atomically(&self.files.meta(), &bytes)
    }

    /// Records neither acknowledged nor dropped (spool depth).
    pub fn depth(&self) -> u64 {
        self.unacked
    }

    /// Records dropped since install.
    pub fn dropped(&self) -> u64 {
        self.meta.dropped
    }

    /// Bytes on disk in segments.
    pub fn bytes(&self) -> u64 {
        self.segments.values().sum()
    }

    /// Whether a batch is in flight.
    pub fn has_inflight(&self) -> bool {
        self.meta.inflight.is_some()
    }
}

/// The spool as the run loop's [`Sink`](crate::sink::Sink): results go in
/// as wire records; marks are spool positions.
pub struct SpoolSink {
    spool: std::sync::Arc<std::sync::Mutex<Spool>>,
}

impl SpoolSink {
    /// A sink writing into `spool`.
    pub fn new(spool: std::sync::Arc<std::sync::Mutex<Spool>>) -> SpoolSink {
        SpoolSink { spool }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Spool>> {
        self.spool.lock().map_err(|_| Error::Spool("spool lock poisoned".into()))
    }
}

impl crate::sink::Sink for SpoolSink {
    fn write(&mut self, line: &crate::report::RecordLine<'_>) -> Result<()> {
        self.lock()?.append(&line.record.to_wire(Some(line.host)))
    }

    fn commit(&mut self) -> Result<crate::sink::SinkMark> {
        let pos = self.lock()?.commit()?;
        Ok(crate::sink::SinkMark::Spool { segment: pos.segment, offset: pos.offset })
    }

    fn recover(&mut self, mark: &crate::sink::SinkMark) -> Result<()> {
        let pos = match *mark {
            crate::sink::SinkMark::Spool { segment, offset } => Some(Pos { segment, offset }),
            _ => None,
        };
        self.lock()?.recover(pos)
    }

    fn checkpointed(&mut self, mark: &crate::sink::SinkMark) {
        if let (crate::sink::SinkMark::Spool { segment, offset }, Ok(mut spool)) = (mark, self.spool.lock()) {
            spool.checkpointed(Pos { segment: *segment, offset: *offset });
        }
    }
}

#[cfg(test)]
mod tests;
