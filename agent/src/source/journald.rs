//! Following the systemd journal through a `journalctl -o json -f` child
//! process (no libsystemd to link: the agent stays small and static).
//!
//! The cursor of the last line whose results reached the sink is kept in the
//! checkpoint; before `journalctl` starts, it is written to the cursor file
//! `journalctl --cursor-file` reads, so the journal resumes just after it.
//! (journalctl also rewrites that file when it exits, possibly past what the
//! agent processed; the checkpoint, not that file, is the truth.)
//!
//! Known limit: unlike files, the journal is not re-read to rebuild sessions
//! after a restart, so a session open across an agent restart is missed.

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
}

/// A running `journalctl -f`.
pub struct JournalFollower {
    child: Child,
    lines: Receiver<String>,
    cursor: Option<String>,
    program: PathBuf,
    exited: bool,
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
            Some(c) => std::fs::write(cursor_file, c).map_err(Error::io(cursor_file))?,
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
        Ok(JournalFollower { child, lines: rx, cursor, program: program.into(), exited: false })
    }

    /// Hands out the lines that arrived since the last poll. Errors when
    /// journalctl has exited (the caller reports and restarts it).
    pub fn poll(&mut self, f: &mut dyn FnMut(Line<'_>)) -> Result<()> {
        for _ in 0..MAX_LINES_PER_POLL {
            match self.lines.try_recv() {
                Ok(line) => {
                    if let Some(cursor) = entry_cursor(&line) {
                        self.cursor = Some(cursor);
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
        JournalCheckpoint { cursor: self.cursor.clone() }
    }
}

impl Drop for JournalFollower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `__CURSOR` of one `journalctl -o json` line.
fn entry_cursor(line: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "__CURSOR")]
        cursor: Option<String>,
    }
    serde_json::from_str::<Entry>(line).ok()?.cursor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cursor_of_an_entry() {
        let line = r#"{"__CURSOR":"s=abc;i=1f","MESSAGE":"Accepted password for pi","_COMM":"sshd"}"#;
        assert_eq!(entry_cursor(line).as_deref(), Some("s=abc;i=1f"));
        assert_eq!(entry_cursor("not json"), None);
        assert_eq!(entry_cursor(r#"{"MESSAGE":"x"}"#), None);
    }
}
