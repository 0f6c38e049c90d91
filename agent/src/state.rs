//! The checkpoint: where each source stands and how far the output got, in
//! one file so the two move together. Written atomically (temporary file,
//! fsync, rename, fsync of the directory): after a crash or power loss the
//! checkpoint is the old one or the new one, never a mix.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sink::SinkMark;
use crate::source::file::FileCheckpoint;
use crate::source::journald::JournalCheckpoint;

/// Version of the checkpoint layout.
pub const CHECKPOINT_VERSION: u32 = 1;
const FILE_NAME: &str = "checkpoint.json";

/// Everything the agent must remember across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// How much of the output was durably written when the sources stood
    /// where `sources` says. A restart forgets output beyond it.
    pub sink: SinkMark,
    /// Per source (by its configured name).
    pub sources: BTreeMap<String, SourceCheckpoint>,
    /// Incremented at every save; names the baselines files written for it.
    #[serde(default)]
    pub generation: u64,
    /// Per source: the generation of the baselines file that matches these
    /// positions (baselines learn from the sessions those lines closed).
    #[serde(default)]
    pub baselines: BTreeMap<String, u64>,
}

/// Where one source stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceCheckpoint {
    /// A followed file.
    File(FileCheckpoint),
    /// The journal.
    Journald(JournalCheckpoint),
}

/// The checkpoint file in a state directory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (creating if needed) a state directory.
    pub fn open(dir: &Path) -> Result<StateDir> {
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        Ok(StateDir { dir: dir.to_path_buf() })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The last checkpoint, or an empty one on first start.
    pub fn load(&self) -> Result<Checkpoint> {
        let path = self.dir.join(FILE_NAME);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Checkpoint { version: CHECKPOINT_VERSION, ..Checkpoint::default() })
            }
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| Error::State {
            path: path.clone(),
            detail: format!("unreadable ({e}); move it away to start over"),
        })?;
        if checkpoint.version != CHECKPOINT_VERSION {
            return Err(Error::State {
                path,
                detail: format!("version {} (this agent writes {CHECKPOINT_VERSION})", checkpoint.version),
            });
        }
        Ok(checkpoint)
    }

    /// Replaces the checkpoint atomically and durably.
    pub fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        let path = self.dir.join(FILE_NAME);
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        let bytes = serde_json::to_vec(checkpoint).expect("checkpoint serializes");
        let mut file =
            OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(Error::io(&tmp))?;
        file.write_all(&bytes).map_err(Error::io(&tmp))?;
        file.sync_all().map_err(Error::io(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(Error::io(&path))?;
        // The rename itself is only durable once the directory is synced.
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(Error::io(&self.dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::file::FileMark;

    #[test]
    fn saves_and_loads_and_refuses_garbage() {
        let dir = crate::testutil::tempdir("state");
        let state = StateDir::open(&dir.join("sub")).unwrap();
        assert_eq!(state.load().unwrap().sources.len(), 0);
        let mut cp = Checkpoint { version: CHECKPOINT_VERSION, ..Default::default() };
        cp.sink = SinkMark::File { dev: 1, ino: 2, len: 3 };
        cp.sources.insert(
            "/var/log/auth.log".into(),
            SourceCheckpoint::File(FileCheckpoint {
                current: Some(FileMark { dev: 1, ino: 9, offset: 120, head: Some(77) }),
                previous: None,
            }),
        );
        state.save(&cp).unwrap();
        assert_eq!(state.load().unwrap(), cp);
        assert!(!dir.join("sub/checkpoint.json.tmp").exists());
        fs::write(dir.join("sub/checkpoint.json"), b"{\"version\":1,\"sin").unwrap();
        assert!(state.load().unwrap_err().to_string().contains("unreadable"));
    }
}
