//! Following the systemd journal through a `journalctl -o json -f` child
//! process (no libsystemd to link: the agent stays small and static).
//!
//! The cursor of the last line whose results reached the sink is kept in the
//! checkpoint; before `journalctl` starts, it is written to the cursor file
//! `journalctl --cursor-file` reads, so the journal resumes just after it.
//! (journalctl also rewrites that file when it exits, possibly past what the
//! agent processed; the checkpoint, not that file, is the truth.)
//!
//! After a restart, sessions still open are rebuilt the way files rebuild
//! them: a one-shot `journalctl -o json --since=@T` (T = the checkpointed
//! entry's time less a replay window, a day by default) is read up to the
//! checkpointed cursor, as replay; then the follower starts after it. A
//! session that began before the window is missed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, TryRecvError};

use serde::{Deserialize, Serialize};

use super::Line;
use crate::error::{Error, Result};

/// Lines taken from the child per poll (the rest wait in the pipe).
const MAX_LINES_PER_POLL: usize = 20_000;

/// Where the journal source stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalCheckpoint {
    /// `__CURSOR` of the last processed entry; `None` before the first.
    pub cursor: Option<String>,
    /// Its `__REALTIME_TIMESTAMP` (µs since the epoch), where the replay
    /// window ends.
    #[serde(default)]
    pub realtime_us: Option<u64>,
}

/// A running `journalctl -f`.
pub struct JournalFollower {
    child: Child,
    lines: Receiver<String>,
    checkpoint: JournalCheckpoint,
    program: PathBuf,
    exited: bool,
}

/// Reads the journal's past from `since` (unix seconds) up to now, oldest
/// first, as new lines (`bfp-agent learn`). Returns how many entries it read.
pub fn history(program: &Path, args: &[String], since: u64, f: &mut dyn FnMut(Line<'_>)) -> Result<u64> {
    let mut child = Command::new(program)
        .arg("-o")
        .arg("json")
        .arg("--no-pager")
        .arg(format!("--since=@{since}"))
        .arg("--until=now")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Journal(format!("cannot start {}: {e}", program.display())))?;
    let mut reader = BufReader::new(child.stdout.take().expect("piped"));
    let mut entries = 0u64;
    let read = crate::source::read_lines(&mut reader, &mut |line| {
        entries += 1;
        f(line)
    });
    let status = child.wait();
    read.map_err(|e| Error::Journal(format!("reading {}: {e}", program.display())))?;
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => return Err(Error::Journal(format!("{} exited with {s}", program.display()))),
        Err(e) => return Err(Error::Journal(format!("{}: {e}", program.display()))),
    }
    Ok(entries)
}

/// Re-reads the journal before the checkpointed cursor (at most
/// `window_secs` of it) and hands the entries out as replay, so sessions open
/// at the restart are rebuilt. Returns how many entries it replayed.
pub fn replay(
    program: &Path,
    args: &[String],
    checkpoint: &JournalCheckpoint,
    window_secs: u64,
    f: &mut dyn FnMut(Line<'_>),
) -> Result<u64> {
    let (Some(cursor), Some(realtime_us)) = (&checkpoint.cursor, checkpoint.realtime_us) else { return Ok(0) };
    if window_secs == 0 {
        return Ok(0);
    }
    let since = (realtime_us / 1_000_000).saturating_sub(window_secs);
    let mut child = Command::new(program)
        .arg("-o")
        .arg("json")
        .arg(format!("--since=@{since}"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Journal(format!("cannot start {}: {e}", program.display())))?;
    let mut reader = BufReader::new(child.stdout.take().expect("piped"));
    let mut buf = Vec::new();
    let mut replayed = 0;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(Error::Journal(format!("reading {}: {e}", program.display()))),
        }
        let line = String::from_utf8_lossy(buf.strip_suffix(b"\n").unwrap_or(&buf)).into_owned();
        let entry = entry_position(&line);
        // Past the checkpoint (the cursor itself vanished with a vacuum): stop.
        if entry.realtime_us.is_some_and(|t| t > realtime_us) {
            break;
        }
        f(Line { text: &line, replay: true });
        replayed += 1;
        if entry.cursor.as_deref() == Some(cursor.as_str()) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(replayed)
}

impl JournalFollower {
    /// Starts `program -o json -f --cursor-file=FILE ARGS...`, resuming after
    /// the checkpointed cursor. Without one, it starts at the current boot.
    pub fn start(
        program: &Path,
        args: &[String],
        cursor_file: &Path,
        checkpoint: Option<&JournalCheckpoint>,
    ) -> Result<Self> {
        let cursor = checkpoint.and_then(|c| c.cursor.clone());
        match &cursor {
            // Atomic: a torn cursor would make journalctl refuse to start.
            Some(c) => crate::state::write_atomically(cursor_file, c.as_bytes())?,
            None => match std::fs::remove_file(cursor_file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::Io { path: cursor_file.into(), source: e }),
            },
        }
        let mut cmd = Command::new(program);
        cmd.arg("-o").arg("json").arg("-f").arg(format!("--cursor-file={}", cursor_file.display()));
        if cursor.is_none() {
            cmd.arg("-b");
        }
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| Error::Journal(format!("cannot start {}: {e}", program.display())))?;
        let stdout = child.stdout.take().expect("piped");
        // A blocking reader thread keeps the poll loop simple; the bounded
        // channel stops it reading ahead when the agent is busy.
        let (tx, rx) = mpsc::sync_channel(4096);
        std::thread::Builder::new()
            .name("journalctl-reader".into())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                            if tx.send(String::from_utf8_lossy(line).into_owned()).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
            .map_err(|e| Error::Journal(format!("cannot start reader thread: {e}")))?;
        let checkpoint = checkpoint.cloned().unwrap_or_default();
        Ok(JournalFollower { child, lines: rx, checkpoint, program: program.into(), exited: false })
    }

    /// Hands out the lines that arrived since the last poll. Errors when
    /// journalctl has exited (the caller reports and restarts it).
    pub fn poll(&mut self, f: &mut dyn FnMut(Line<'_>)) -> Result<()> {
        for _ in 0..MAX_LINES_PER_POLL {
            match self.lines.try_recv() {
                Ok(line) => {
                    let entry = entry_position(&line);
                    if entry.cursor.is_some() {
                        self.checkpoint = entry;
                    }
                    f(Line { text: &line, replay: false });
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if !self.exited {
                        self.exited = true;
                        let status = self.child.wait().map_err(|e| Error::Journal(e.to_string()))?;
                        return Err(Error::Journal(format!("{} exited ({status})", self.program.display())));
                    }
                    break;
                }
            }
        }
        Ok(())
    }

    /// Whether journalctl has exited.
    pub fn exited(&self) -> bool {
        self.exited
    }

    /// Where the source stands.
    pub fn checkpoint(&self) -> JournalCheckpoint {
        self.checkpoint.clone()
    }
}

impl Drop for JournalFollower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `__CURSOR` and `__REALTIME_TIMESTAMP` of one `journalctl -o json`
/// line (the timestamp is a decimal string there).
fn entry_position(line: &str) -> JournalCheckpoint {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "__CURSOR")]
        cursor: Option<String>,
        #[serde(rename = "__REALTIME_TIMESTAMP")]
        realtime: Option<String>,
    }
    match serde_json::from_str::<Entry>(line) {
        Ok(e) => JournalCheckpoint { cursor: e.cursor, realtime_us: e.realtime.and_then(|t| t.parse().ok()) },
        Err(_) => JournalCheckpoint::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cursor_and_time_of_an_entry() {
        let line = r#"{"__CURSOR":"s=abc;i=1f","__REALTIME_TIMESTAMP":"1700000000123456","MESSAGE":"Accepted password for pi"}"#;
        let pos = entry_position(line);
        assert_eq!(pos.cursor.as_deref(), Some("s=abc;i=1f"));
        assert_eq!(pos.realtime_us, Some(1_700_000_000_123_456));
        assert_eq!(entry_position("not json"), JournalCheckpoint::default());
        assert_eq!(entry_position(r#"{"MESSAGE":"x"}"#).cursor, None);
    }
}
