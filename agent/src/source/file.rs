//! Following a log file by polling: small and portable (OpenWrt has no
//! inotify guarantees). What it handles:
//!
//! - **offsets**: the checkpoint keeps the file's identity (device, inode,
//!   and a CRC-32 of its first line) and the offset after the last complete
//!   line consumed; a partial last line waits for its newline;
//! - **rotation by rename** (logrotate's default, `create`): when a new file
//!   with data appears at the path, the old one is read to its end (its
//!   writer has moved on) and then the new one from offset 0; a rotation
//!   while the agent was down is found by looking for the checkpointed inode
//!   in the same directory;
//! - **rotation by copytruncate**: the file shrank below what was read, or
//!   its first line changed: start again at offset 0;
//! - **restart without loss or repeat**: the agent rebuilds its sessions by
//!   re-reading (as `replay`) the file before the rotation and the current
//!   file up to the checkpoint; results of replayed lines are not reported
//!   again, results of the lines after it are.
//!
//! Known limit: lines written between the last poll and a copytruncate are
//! in the copy, not in the followed file, and are missed (as with every
//! copytruncate reader); prefer rename rotation.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Line;

/// Bytes hashed to recognise a file: its first line, at most this long.
const HEAD_MAX: usize = 1024;
/// Longer lines are cut to this (the rest is skipped, still counted once).
pub const MAX_LINE: usize = 64 * 1024;
/// Bytes read from one file per poll, so one busy file cannot delay the
/// checkpoint (and the memory of buffered results) without bound.
const MAX_BYTES_PER_POLL: u64 = 4 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// Where one file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMark {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Offset just after the last consumed line.
    pub offset: u64,
    /// CRC-32 of the first line (at most 1 KiB of it); `None` while the
    /// first line is incomplete.
    pub head: Option<u32>,
}

/// The checkpoint of a followed file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// The file being read (none until the path first exists).
    pub current: Option<FileMark>,
    /// The file before the last rotation, read to its end: re-read after a
    /// restart to rebuild sessions that span the rotation.
    pub previous: Option<FileMark>,
}

/// An open file and how far it has been consumed.
#[derive(Debug)]
struct Open {
    file: File,
    dev: u64,
    ino: u64,
    head: Option<u32>,
    /// End of the last complete line handed out.
    pos: u64,
    /// Bytes read (`pos` + the partial line held).
    read_pos: u64,
    /// Lines ending at or before this offset are replays.
    replay_end: u64,
    partial: Vec<u8>,
    /// The partial line passed [`MAX_LINE`]: skip to its newline.
    overlong: bool,
}

impl Open {
    fn new(file: File, start: u64, replay_end: u64) -> io::Result<Open> {
        let meta = file.metadata()?;
        let head = head_hash(&file)?;
        let mut open = Open {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            head,
            pos: start,
            read_pos: start,
            replay_end,
            partial: Vec::new(),
            overlong: false,
        };
        open.file.seek(SeekFrom::Start(start))?;
        Ok(open)
    }

    fn mark(&self) -> FileMark {
        FileMark { dev: self.dev, ino: self.ino, offset: self.pos, head: self.head }
    }

    fn restart_at_zero(&mut self) -> io::Result<()> {
        self.pos = 0;
        self.read_pos = 0;
        self.replay_end = 0;
        self.partial.clear();
        self.overlong = false;
        self.head = head_hash(&self.file)?;
        self.file.seek(SeekFrom::Start(0))?;
        Ok(())
    }

    /// Reads what is there (up to the per-poll limit) and hands out the
    /// complete lines. `finish`: the file will not grow (rotated away), so a
    /// last line without newline is handed out too. Returns whether EOF was
    /// reached.
    fn read_lines(&mut self, buf: &mut [u8], finish: bool, f: &mut dyn FnMut(Line<'_>)) -> io::Result<bool> {
        let mut budget = MAX_BYTES_PER_POLL;
        loop {
            if budget == 0 {
                return Ok(false);
            }
            let want = buf.len().min(budget as usize);
            let n = match self.file.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                if finish && (!self.partial.is_empty() || self.overlong) {
                    let line = std::mem::take(&mut self.partial);
                    self.overlong = false;
                    self.pos = self.read_pos;
                    emit(&line, self.pos <= self.replay_end, f);
                }
                return Ok(true);
            }
            budget -= n as u64;
            let chunk = &buf[..n];
            let chunk_start = self.read_pos;
            self.read_pos += n as u64;
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', chunk) {
                let end = chunk_start + nl as u64 + 1;
                let replay = end <= self.replay_end;
                if self.partial.is_empty() && !self.overlong {
                    emit(cut(&chunk[start..nl]), replay, f);
                } else {
                    self.append_partial(&chunk[start..nl]);
                    let line = std::mem::take(&mut self.partial);
                    self.overlong = false;
                    emit(&line, replay, f);
                    self.partial = line;
                    self.partial.clear();
                }
                self.pos = end;
                start = nl + 1;
            }
            self.append_partial(&chunk[start..]);
            if self.head.is_none() && self.pos > 0 {
                self.head = head_hash(&self.file)?;
            }
        }
    }

    fn append_partial(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.overlong = true;
        }
        self.partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

fn cut(line: &[u8]) -> &[u8] {
    &line[..line.len().min(MAX_LINE)]
}

fn emit(line: &[u8], replay: bool, f: &mut dyn FnMut(Line<'_>)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    f(Line { text: &text, replay });
}

/// CRC-32 of the file's first line (up to [`HEAD_MAX`] bytes), if complete.
fn head_hash(file: &File) -> io::Result<Option<u32>> {
    let mut buf = [0u8; HEAD_MAX];
    let mut filled = 0;
    while filled < HEAD_MAX {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = &buf[..filled];
    Ok(match memchr::memchr(b'\n', head) {
        Some(nl) => Some(crc32fast::hash(&head[..=nl])),
        None if filled == HEAD_MAX => Some(crc32fast::hash(head)),
        None => None,
    })
}

/// Whether `file` is the one `mark` describes.
fn same_file(meta: &fs::Metadata, file: &File, mark: &FileMark) -> io::Result<bool> {
    if meta.dev() != mark.dev || meta.ino() != mark.ino {
        return Ok(false);
    }
    Ok(match mark.head {
        Some(h) => head_hash(file)? == Some(h),
        None => true,
    })
}

/// Finds the file `mark` describes at `path` or, renamed, in its directory.
fn locate(path: &Path, mark: &FileMark) -> io::Result<Option<(PathBuf, File)>> {
    if let Ok(file) = File::open(path) {
        if same_file(&file.metadata()?, &file, mark)? {
            return Ok(Some((path.to_path_buf(), file)));
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else { return Ok(None) };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || meta.dev() != mark.dev || meta.ino() != mark.ino {
            continue;
        }
        if let Ok(file) = File::open(entry.path()) {
            if same_file(&meta, &file, mark)? {
                return Ok(Some((entry.path(), file)));
            }
        }
    }
    Ok(None)
}

/// A followed log file.
#[derive(Debug)]
pub struct FileFollower {
    path: PathBuf,
    /// Rotated-away files still to be read to their end, oldest first.
    old: Vec<Open>,
    /// The file at `path`.
    current: Option<Open>,
    previous: Option<FileMark>,
    /// The checkpoint this follower resumed from.
    resume: Option<FileCheckpoint>,
    buf: Vec<u8>,
    /// Things an operator should know (a checkpointed file vanished, ...).
    warnings: Vec<String>,
}

impl FileFollower {
    /// Starts following `path` from a checkpoint (or from its beginning).
    pub fn new(path: &Path, checkpoint: Option<&FileCheckpoint>) -> io::Result<FileFollower> {
        let mut follower = FileFollower {
            path: path.to_path_buf(),
            old: Vec::new(),
            current: None,
            previous: None,
            resume: checkpoint.cloned(),
            buf: vec![0; CHUNK],
            warnings: Vec::new(),
        };
        let Some(cp) = checkpoint else {
            follower.open_current()?;
            return Ok(follower);
        };
        // The file before the last rotation: re-read whole, as replay.
        if let Some(prev) = &cp.previous {
            match locate(path, prev)? {
                Some((_, file)) => {
                    follower.old.push(Open::new(file, 0, prev.offset)?);
                    follower.previous = Some(*prev);
                }
                None => follower.warnings.push(format!(
                    "{}: the file before the last rotation is gone; sessions open across it are not rebuilt",
                    path.display()
                )),
            }
        }
        let Some(cur) = &cp.current else {
            follower.open_current()?;
            return Ok(follower);
        };
        match locate(path, cur)? {
            Some((found, file)) => {
                let len = file.metadata()?.len();
                if len < cur.offset {
                    follower.warnings.push(format!(
                        "{}: truncated while the agent was stopped; reading it from the start",
                        found.display()
                    ));
                    follower.old.clear();
                    follower.previous = None;
                    follower.old.push(Open::new(file, 0, 0)?);
                } else {
                    // Replay the checkpointed part, then go on live.
                    follower.old.push(Open::new(file, 0, cur.offset)?);
                }
                if found == path {
                    // Still at the path: it is the current file.
                    follower.current = follower.old.pop();
                } else {
                    follower.open_current_if_new()?;
                }
            }
            None => {
                follower.warnings.push(format!(
                    "{}: the checkpointed file (inode {}) is gone; lines after offset {} in it are lost",
                    path.display(),
                    cur.ino,
                    cur.offset
                ));
                follower.open_current()?;
            }
        }
        Ok(follower)
    }

    /// Takes the warnings gathered so far.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_current(&mut self) -> io::Result<()> {
        self.current = match File::open(&self.path) {
            Ok(file) => Some(Open::new(file, 0, 0)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(())
    }

    /// Opens the file at the path unless it is one already being read.
    fn open_current_if_new(&mut self) -> io::Result<()> {
        if let Ok(meta) = fs::metadata(&self.path) {
            if self.old.iter().any(|o| o.dev == meta.dev() && o.ino == meta.ino()) {
                return Ok(());
            }
        }
        self.open_current()
    }

    /// Reads what is new and hands out complete lines, in order: rotated
    /// files to their end first, then the current file.
    pub fn poll(&mut self, f: &mut dyn FnMut(Line<'_>)) -> io::Result<()> {
        while let Some(old) = self.old.first_mut() {
            if !old.read_lines(&mut self.buf, true, f)? {
                return Ok(()); // budget used up; go on next poll
            }
            let done = self.old.remove(0);
            self.previous = Some(done.mark());
        }
        if self.current.is_none() {
            self.open_current()?;
        }
        self.check_rotation()?;
        if !self.old.is_empty() {
            return self.poll(f);
        }
        if let Some(cur) = &mut self.current {
            cur.read_lines(&mut self.buf, false, f)?;
        }
        Ok(())
    }

    /// Detects rename and copytruncate rotation of the current file.
    fn check_rotation(&mut self) -> io::Result<()> {
        let Some(cur) = &mut self.current else { return Ok(()) };
        let own = cur.file.metadata()?;
        if own.len() < cur.read_pos {
            cur.restart_at_zero()?; // copytruncate (or truncated by hand)
        } else if cur.head.is_some() && own.len() > cur.read_pos && head_hash(&cur.file)? != cur.head {
            cur.restart_at_zero()?; // truncated and rewritten between two polls
        }
        match fs::metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) != (cur.dev, cur.ino) && meta.len() > 0 => {
                // A new file with data: its writer has left the old one.
                let old = self.current.take().expect("checked above");
                self.old.push(old);
                self.open_current()?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Where the follower stands, for the checkpoint.
    pub fn checkpoint(&self) -> FileCheckpoint {
        // Until the replay is over, the checkpoint it started from still holds.
        if let Some(resume) = &self.resume {
            if self.old.iter().chain(self.current.as_ref()).any(|o| o.pos < o.replay_end) {
                return resume.clone();
            }
        }
        let current = self.old.first().or(self.current.as_ref()).map(Open::mark);
        FileCheckpoint { current, previous: self.previous }
    }

    /// Whether lines already reported before the restart are still being
    /// re-read.
    pub fn replaying(&self) -> bool {
        self.old.iter().chain(self.current.as_ref()).any(|o| o.pos < o.replay_end)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::testutil::tempdir;

    fn append(path: &Path, text: &str) {
        let mut f = fs::OpenOptions::new().append(true).create(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Polls once; returns (live lines, replayed lines).
    fn poll(f: &mut FileFollower) -> (Vec<String>, Vec<String>) {
        let (mut live, mut replay) = (Vec::new(), Vec::new());
        f.poll(&mut |l: Line<'_>| {
            if l.replay {
                replay.push(l.text.to_string())
            } else {
                live.push(l.text.to_string())
            }
        })
        .unwrap();
        (live, replay)
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let dir = tempdir("partial");
        let log = dir.join("auth.log");
        append(&log, "one\ntw");
        let mut f = FileFollower::new(&log, None).unwrap();
        assert_eq!(poll(&mut f).0, vec!["one"]);
        assert_eq!(f.checkpoint().current.unwrap().offset, 4);
        append(&log, "o\r\nthree");
        assert_eq!(poll(&mut f).0, vec!["two"]);
        append(&log, "\n");
        assert_eq!(poll(&mut f).0, vec!["three"]);
        assert_eq!(poll(&mut f).0, Vec::<String>::new());
        assert_eq!(f.checkpoint().current.unwrap().offset, 15);
    }

    #[test]
    fn waits_for_a_missing_file() {
        let dir = tempdir("missing");
        let log = dir.join("auth.log");
        let mut f = FileFollower::new(&log, None).unwrap();
        assert_eq!(poll(&mut f).0.len(), 0);
        assert_eq!(f.checkpoint(), FileCheckpoint::default());
        append(&log, "a\n");
        assert_eq!(poll(&mut f).0, vec!["a"]);
    }

    #[test]
    fn rename_rotation_finishes_the_old_file_first() {
        let dir = tempdir("rename");
        let log = dir.join("auth.log");
        append(&log, "a1\na2\n");
        let mut f = FileFollower::new(&log, None).unwrap();
        assert_eq!(poll(&mut f).0, vec!["a1", "a2"]);
        // The writer still appends to the renamed file until it reopens.
        fs::rename(&log, dir.join("auth.log.1")).unwrap();
        append(&dir.join("auth.log.1"), "a3\n");
        assert_eq!(poll(&mut f).0, vec!["a3"], "no new file yet: the old one is still followed");
        append(&log, ""); // logrotate `create`: an empty new file
        append(&dir.join("auth.log.1"), "a4\na5-no-newline");
        assert_eq!(poll(&mut f).0, vec!["a4"], "an empty new file means the writer has not moved yet");
        append(&log, "b1\n");
        assert_eq!(poll(&mut f).0, vec!["a5-no-newline", "b1"]);
        let cp = f.checkpoint();
        assert_eq!(cp.current.unwrap().offset, 3);
        assert_eq!(cp.previous.unwrap().offset, fs::metadata(dir.join("auth.log.1")).unwrap().len());
    }

    #[test]
    fn copytruncate_starts_again_at_zero() {
        let dir = tempdir("copytruncate");
        let log = dir.join("auth.log");
        append(&log, "a1\na2\n");
        let mut f = FileFollower::new(&log, None).unwrap();
        assert_eq!(poll(&mut f).0, vec!["a1", "a2"]);
        fs::copy(&log, dir.join("auth.log.1")).unwrap();
        fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
        append(&log, "b1\n");
        assert_eq!(poll(&mut f).0, vec!["b1"]);
        // Truncated and regrown past the old size before the next poll: the
        // first line changed, so it is still seen as a new file.
        fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
        append(&log, "c1-longer-than-before\nc2\n");
        assert_eq!(poll(&mut f).0, vec!["c1-longer-than-before", "c2"]);
    }

    #[test]
    fn restart_resumes_exactly_and_replays_what_was_reported() {
        let dir = tempdir("restart");
        let log = dir.join("auth.log");
        append(&log, "a1\na2\na3");
        let mut f = FileFollower::new(&log, None).unwrap();
        assert_eq!(poll(&mut f).0, vec!["a1", "a2"]);
        let cp = f.checkpoint();
        drop(f);
        append(&log, "\na4\n");
        let mut f = FileFollower::new(&log, Some(&cp)).unwrap();
        assert!(f.replaying());
        assert_eq!(f.checkpoint(), cp, "during replay the old checkpoint holds");
        let (live, replay) = poll(&mut f);
        assert_eq!(replay, vec!["a1", "a2"]);
        assert_eq!(live, vec!["a3", "a4"]);
        assert!(!f.replaying());
        assert_eq!(f.checkpoint().current.unwrap().offset, 12);
    }

    #[test]
    fn restart_after_a_rotation_while_stopped_finishes_the_rotated_file() {
        let dir = tempdir("restart-rotated");
        let log = dir.join("auth.log");
        append(&log, "a1\na2\n");
        let mut f = FileFollower::new(&log, None).unwrap();
        assert_eq!(poll(&mut f).0, vec!["a1", "a2"]);
        let cp = f.checkpoint();
        drop(f);
        append(&log, "a3\n");
        fs::rename(&log, dir.join("auth.log.1")).unwrap();
        append(&log, "b1\n");
        let mut f = FileFollower::new(&log, Some(&cp)).unwrap();
        let (live, replay) = poll(&mut f);
        assert_eq!(replay, vec!["a1", "a2"]);
        assert_eq!(live, vec!["a3", "b1"]);
        // And a second restart replays both files, reporting nothing again.
        let cp = f.checkpoint();
        assert_eq!(cp.previous.unwrap().offset, 9);
        drop(f);
        let mut f = FileFollower::new(&log, Some(&cp)).unwrap();
        let (live, replay) = poll(&mut f);
        assert_eq!(replay, vec!["a1", "a2", "a3", "b1"]);
        assert!(live.is_empty());
    }

    #[test]
    fn a_file_truncated_while_stopped_is_read_from_the_start() {
        let dir = tempdir("restart-truncated");
        let log = dir.join("auth.log");
        append(&log, "a1\na2\n");
        let mut f = FileFollower::new(&log, None).unwrap();
        poll(&mut f);
        let cp = f.checkpoint();
        drop(f);
        fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(0).unwrap();
        append(&log, "b\n");
        let mut f = FileFollower::new(&log, Some(&cp)).unwrap();
        assert_eq!(poll(&mut f), (vec!["b".to_string()], vec![]));
        assert!(!f.take_warnings().is_empty());
    }

    #[test]
    fn overlong_lines_are_cut_once() {
        let dir = tempdir("overlong");
        let log = dir.join("auth.log");
        let long = "x".repeat(MAX_LINE * 2 + 10);
        append(&log, &format!("a\n{}", &long[..MAX_LINE + 5]));
        let mut f = FileFollower::new(&log, None).unwrap();
        assert_eq!(poll(&mut f).0, vec!["a"]);
        append(&log, &format!("{}\nb\n", &long[MAX_LINE + 5..]));
        let lines = poll(&mut f).0;
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(lines[1], "b");
    }
}
