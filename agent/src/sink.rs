//! Where results go. A sink writes results, then `commit` makes them durable
//! and returns a mark; the checkpoint stores that mark together with the log
//! positions that produced those results. After a crash, `recover` forgets
//! whatever was written past the mark (its lines are read again), so a file
//! output holds every result exactly once. The spool that forwards to the
//! collector is another sink with the same contract.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::report::RecordLine;

/// How far a sink's durable output reached at a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SinkMark {
    /// Nothing to roll back to (standard output, or nothing written yet).
    #[default]
    None,
    /// An output file (by identity, so a rotated output is left alone) and
    /// its length.
    File {
        /// Device of the output file.
        dev: u64,
        /// Inode of the output file.
        ino: u64,
        /// Durable length.
        len: u64,
    },
    /// The collector spool (see `crate::spool`): where its writes reached.
    Spool {
        /// Segment id.
        segment: u64,
        /// Offset in the segment.
        offset: u64,
    },
    /// Forwarding with a local copy: both marks, taken at one commit.
    Tee {
        /// The spool's mark.
        forward: Box<SinkMark>,
        /// The local output's mark.
        local: Box<SinkMark>,
    },
}

/// A destination for scored results.
pub trait Sink {
    /// Writes one result (may buffer until `commit`).
    fn write(&mut self, line: &RecordLine<'_>) -> Result<()>;
    /// Makes everything written so far durable and says how far it reached.
    fn commit(&mut self) -> Result<SinkMark>;
    /// At start-up, before anything is written: drop output written after
    /// `mark` by a run that died before its checkpoint.
    fn recover(&mut self, mark: &SinkMark) -> Result<()>;
    /// The checkpoint holding `mark` is saved: output up to it may leave the
    /// device (the spool forwards only checkpointed results).
    fn checkpointed(&mut self, _mark: &SinkMark) {}
}

/// Opens the sink an `output` setting names: `-` is standard output.
pub fn open(output: &Path) -> Result<Box<dyn Sink>> {
    if output == Path::new("-") {
        Ok(Box::new(StdoutSink { out: BufWriter::new(std::io::stdout()) }))
    } else {
        Ok(Box::new(FileSink::open(output)?))
    }
}

/// JSON lines on standard output. A crash between writing and checkpointing
/// may repeat results there (a pipe cannot be rolled back).
pub struct StdoutSink {
    out: BufWriter<std::io::Stdout>,
}

impl Sink for StdoutSink {
    fn write(&mut self, line: &RecordLine<'_>) -> Result<()> {
        let err = |source| Error::Sink { path: "-".into(), source };
        serde_json::to_writer(&mut self.out, line).map_err(|e| err(e.into()))?;
        self.out.write_all(b"\n").map_err(err)
    }
    fn commit(&mut self) -> Result<SinkMark> {
        self.out.flush().map_err(|source| Error::Sink { path: "-".into(), source })?;
        Ok(SinkMark::None)
    }
    fn recover(&mut self, _mark: &SinkMark) -> Result<()> {
        Ok(())
    }
}

/// JSON lines appended to a file, fsynced at each commit.
pub struct FileSink {
    path: PathBuf,
    out: BufWriter<File>,
}

impl FileSink {
    /// Opens (creating) the output file for appending.
    pub fn open(path: &Path) -> Result<FileSink> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        let file = OpenOptions::new().append(true).create(true).open(path).map_err(Error::io(path))?;
        Ok(FileSink { path: path.to_path_buf(), out: BufWriter::with_capacity(64 * 1024, file) })
    }

    fn err(&self) -> impl FnOnce(std::io::Error) -> Error {
        let path = self.path.clone();
        move |source| Error::Sink { path, source }
    }
}

impl Sink for FileSink {
    fn write(&mut self, line: &RecordLine<'_>) -> Result<()> {
        serde_json::to_writer(&mut self.out, line).map_err(|e| (self.err())(e.into()))?;
        self.out.write_all(b"\n").map_err(self.err())
    }

    fn commit(&mut self) -> Result<SinkMark> {
        self.out.flush().map_err(self.err())?;
        let file = self.out.get_ref();
        file.sync_data().map_err(self.err())?;
        let meta = file.metadata().map_err(self.err())?;
        Ok(SinkMark::File { dev: meta.dev(), ino: meta.ino(), len: meta.len() })
    }

    fn recover(&mut self, mark: &SinkMark) -> Result<()> {
        let file = self.out.get_ref();
        let meta = file.metadata().map_err(self.err())?;
        match *mark {
            SinkMark::File { dev, ino, len } if dev == meta.dev() && ino == meta.ino() && meta.len() > len => {
                // Appends always go to the end, so truncating is enough.
                file.set_len(len).map_err(self.err())?;
                file.sync_all().map_err(self.err())?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Forwarding and local JSON lines at once (`[collector]` with an `output`
/// file): every result goes to both, and one mark names how far each
/// reached, so a restart cuts both back to the same results.
pub struct TeeSink {
    forward: Box<dyn Sink>,
    local: Box<dyn Sink>,
}

impl TeeSink {
    /// Writes to `forward` (the spool) and `local`.
    pub fn new(forward: Box<dyn Sink>, local: Box<dyn Sink>) -> TeeSink {
        TeeSink { forward, local }
    }
}

impl Sink for TeeSink {
    fn write(&mut self, line: &RecordLine<'_>) -> Result<()> {
        self.forward.write(line)?;
        self.local.write(line)
    }

    fn commit(&mut self) -> Result<SinkMark> {
        let forward = Box::new(self.forward.commit()?);
        let local = Box::new(self.local.commit()?);
        Ok(SinkMark::Tee { forward, local })
    }

    fn recover(&mut self, mark: &SinkMark) -> Result<()> {
        match mark {
            SinkMark::Tee { forward, local } => {
                self.forward.recover(forward)?;
                self.local.recover(local)
            }
            // The local copy was just added: the spool's mark still holds,
            // and there is no local output to cut.
            other => {
                self.forward.recover(other)?;
                self.local.recover(&SinkMark::None)
            }
        }
    }

    fn checkpointed(&mut self, mark: &SinkMark) {
        if let SinkMark::Tee { forward, local } = mark {
            self.forward.checkpointed(forward);
            self.local.checkpointed(local);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Record;

    fn line(record: &Record) -> RecordLine<'_> {
        RecordLine::new(record, "testhost")
    }

    fn record(user: &str) -> Record {
        Record {
            kind: bfp_common::wire::RecordKind::Session,
            log: "t".into(),
            source_ip: None,
            user: Some(user.into()),
            start: 0,
            end: Some(60),
            open: false,
            login_hour: 0,
            duration_min: 1.0,
            failed_logins: 0,
            commands: Vec::new(),
            command_count: 0,
            risky_commands: Some(0),
            protocol: bfp_common::Protocol::Ssh,
            typing_speed: None,
            prediction: bfp_common::Prediction::Normal,
            confidence: 0.9,
            reasons: Vec::new(),
            model_version: "m".into(),
            campaign: None,
            learning: false,
            details: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_file_sink_cuts_back_what_was_written_after_its_mark() {
        let dir = crate::testutil::tempdir("sink");
        let path = dir.join("out/results.jsonl");
        let mut sink = FileSink::open(&path).unwrap();
        sink.write(&line(&record("a"))).unwrap();
        let mark = sink.commit().unwrap();
        let SinkMark::File { len, .. } = mark else { panic!("a file mark") };
        assert_eq!(len, std::fs::metadata(&path).unwrap().len());
        // Written and even fsynced, but the checkpoint never recorded it.
        sink.write(&line(&record("b"))).unwrap();
        sink.commit().unwrap();
        drop(sink);
        let mut sink = FileSink::open(&path).unwrap();
        sink.recover(&mark).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("\"user\":\"a\""));
        // Appends go on after the cut.
        sink.write(&line(&record("c"))).unwrap();
        sink.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[test]
    fn a_tee_cuts_both_outputs_back_to_its_mark() {
        let dir = crate::testutil::tempdir("sink-tee");
        let (a, b) = (dir.join("forward.jsonl"), dir.join("local.jsonl"));
        let open = || TeeSink::new(Box::new(FileSink::open(&a).unwrap()), Box::new(FileSink::open(&b).unwrap()));
        let mut sink = open();
        sink.write(&line(&record("a"))).unwrap();
        let mark = sink.commit().unwrap();
        assert!(matches!(mark, SinkMark::Tee { .. }), "{mark:?}");
        // Written after the checkpoint's mark: a crash forgets it in both.
        sink.write(&line(&record("b"))).unwrap();
        sink.commit().unwrap();
        drop(sink);
        let mut sink = open();
        sink.recover(&mark).unwrap();
        for path in [&a, &b] {
            let text = std::fs::read_to_string(path).unwrap();
            assert_eq!(text.lines().count(), 1, "{}", path.display());
            assert!(text.contains("\"user\":\"a\"") && text.contains("\"host\":\"testhost\""));
        }
        // A mark from before the local copy existed: the forward side keeps
        // its own mark, the new local file is left whole.
        let SinkMark::Tee { forward, .. } = mark else { unreachable!() };
        sink.write(&line(&record("c"))).unwrap();
        sink.commit().unwrap();
        sink.recover(&forward).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap().lines().count(), 1);
        assert_eq!(std::fs::read_to_string(&b).unwrap().lines().count(), 2);
    }

    #[test]
    fn a_mark_of_another_file_leaves_the_output_alone() {
        let dir = crate::testutil::tempdir("sink-other");
        let path = dir.join("results.jsonl");
        let mut sink = FileSink::open(&path).unwrap();
        sink.write(&line(&record("a"))).unwrap();
        let SinkMark::File { dev, ino, .. } = sink.commit().unwrap() else { panic!("a file mark") };
        // The operator rotated the output: the mark names the old inode.
        sink.recover(&SinkMark::File { dev, ino: ino + 1, len: 0 }).unwrap();
        sink.recover(&SinkMark::None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
