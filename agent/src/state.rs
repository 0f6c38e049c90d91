//! The agent's state directory, and the only code that names what is in it.
//!
//! Layout (version [`LAYOUT_VERSION`], written to `layout-version`):
//!
//! ```text
//! <state_dir>/                        0700
//!   layout-version                    "2\n": what a newer agent reads first
//!   checkpoint.json                   source positions + output mark + baselines generations
//!                                     + learning periods (checkpoint version 2; 1 still read)
//!   <source>.baselines.<generation>   one per source, named by the checkpoint that covers it
//!   <source>.baselines                (layout 1 before generations: read once, then superseded)
//!   <source>.cursor                   the journal cursor `journalctl --cursor-file` reads and rewrites
//!   collector-model.postcard          the last model fetched from the collector
//!   spool/                            0700, the spool's (`crate::spool`):
//!     <id, 20 digits>.seg             records appended in frames (ids increase)
//!     meta.json                       read cursor, next batch number, dropped count, batch in flight
//!     inflight.batch                  the exact bytes of the batch in flight
//! ```
//!
//! `<source>` is the source's configured name with every character other
//! than ASCII letters, digits and `-` replaced by `_`.
//!
//! Every file the agent writes whole goes through [`write_atomically`]
//! (temporary file, fsync, rename, fsync of the directory): after a crash or
//! power loss it holds the old or the new content, never a mix. Everything
//! is created readable by the agent's user only (directories 0700, files
//! 0600) whatever the umask: results name people, addresses and commands.
//!
//! Layout 1 (agents before `layout-version` existed) has the same names; it
//! is opened as is, its modes tightened, and `layout-version` written. A
//! directory of a newer layout is refused rather than misread.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bfp_detect::detector::Learning;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sink::SinkMark;
use crate::source::file::FileCheckpoint;
use crate::source::journald::JournalCheckpoint;

/// Version of the directory's layout (names, modes, `layout-version`).
pub const LAYOUT_VERSION: u32 = 2;
/// Version of the checkpoint file's fields: 2 added `learning`. Version 1
/// is still read (no learning period saved: decided afresh, as before).
pub const CHECKPOINT_VERSION: u32 = 2;
/// The oldest checkpoint version this agent reads.
const OLDEST_CHECKPOINT_VERSION: u32 = 1;
/// Mode of every directory the agent creates in its state.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the agent creates in its state.
pub const FILE_MODE: u32 = 0o600;

const LAYOUT_FILE: &str = "layout-version";
const CHECKPOINT_FILE: &str = "checkpoint.json";
const SPOOL_DIR: &str = "spool";
const FETCHED_MODEL_FILE: &str = "collector-model.postcard";
const BASELINES_SUFFIX: &str = ".baselines";
const CURSOR_SUFFIX: &str = ".cursor";

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
    /// Per source: where its learning period stood at these positions (a
    /// restart resumes it rather than starting or ending it). Version 2.
    #[serde(default)]
    pub learning: BTreeMap<String, Learning>,
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

/// An opened state directory (see the module doc for its layout).
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens a state directory, creating it (0700) if needed and bringing a
    /// layout-1 directory to the current layout.
    pub fn open(dir: &Path) -> Result<StateDir> {
        let state = StateDir { dir: dir.to_path_buf() };
        let layout = state.read_layout()?;
        if layout.is_none() {
            state.refuse_foreign_directory()?;
        }
        create_private_dir(dir)?;
        match layout {
            Some(LAYOUT_VERSION) => {}
            Some(newer) => {
                return Err(Error::State {
                    path: dir.join(LAYOUT_FILE),
                    detail: format!(
                        "layout {newer} was written by a newer agent (this one reads {LAYOUT_VERSION}); \
                         run that agent or move the directory away to start over"
                    ),
                })
            }
            None => {
                // Layout 1 (or a new directory): same names; files written
                // under a loose umask are made private before anything else.
                tighten_modes(dir)?;
                write_atomically(&dir.join(LAYOUT_FILE), format!("{LAYOUT_VERSION}\n").as_bytes())?;
            }
        }
        Ok(state)
    }

    fn read_layout(&self) -> Result<Option<u32>> {
        let path = self.dir.join(LAYOUT_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map(Some).map_err(|_| Error::State {
                path,
                detail: format!("unreadable layout version {:?}; move the directory away to start over", text.trim()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    /// A non-empty directory holding nothing the agent writes is a mistyped
    /// path (`/var/lib`, `/tmp`): its modes must not be tightened.
    fn refuse_foreign_directory(&self) -> Result<()> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::Io { path: self.dir.clone(), source: e }),
        };
        let names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        let ours = |name: &str| {
            name.starts_with(CHECKPOINT_FILE)
                || name.starts_with(FETCHED_MODEL_FILE)
                || name == SPOOL_DIR
                || name.contains(BASELINES_SUFFIX)
                || name.ends_with(CURSOR_SUFFIX)
        };
        if names.is_empty() || names.iter().any(|n| ours(n)) {
            return Ok(());
        }
        Err(Error::State {
            path: self.dir.clone(),
            detail: "not empty and holds no agent state (no checkpoint.json); \
                     give an empty or new directory as state_dir"
                .into(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The last checkpoint, or an empty one on first start.
    pub fn load_checkpoint(&self) -> Result<Checkpoint> {
        let path = self.dir.join(CHECKPOINT_FILE);
        let Some(bytes) = read_if_exists(&path)? else {
            return Ok(Checkpoint { version: CHECKPOINT_VERSION, ..Checkpoint::default() });
        };
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| Error::State {
            path: path.clone(),
            detail: format!("unreadable ({e}); move it away to start over"),
        })?;
        if !(OLDEST_CHECKPOINT_VERSION..=CHECKPOINT_VERSION).contains(&checkpoint.version) {
            return Err(Error::State {
                path,
                detail: format!("version {} (this agent writes {CHECKPOINT_VERSION})", checkpoint.version),
            });
        }
        // Written back in this agent's version at the next save.
        Ok(Checkpoint { version: CHECKPOINT_VERSION, ..checkpoint })
    }

    /// Replaces the checkpoint atomically and durably.
    pub fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        let bytes = serde_json::to_vec(checkpoint).map_err(|e| Error::State {
            path: self.dir.join(CHECKPOINT_FILE),
            detail: format!("cannot encode: {e}"),
        })?;
        write_atomically(&self.dir.join(CHECKPOINT_FILE), &bytes)
    }

    /// Where a source's baselines of a checkpoint generation live (`None`:
    /// the one file of agents before generations).
    fn baselines_path(&self, source: &str, generation: Option<u64>) -> PathBuf {
        match generation {
            Some(gen) => self.dir.join(format!("{}{BASELINES_SUFFIX}.{gen}", file_stem(source))),
            None => self.dir.join(format!("{}{BASELINES_SUFFIX}", file_stem(source))),
        }
    }

    /// The bytes of a source's baselines of `generation`, if the file exists.
    pub fn load_baselines(&self, source: &str, generation: Option<u64>) -> Result<Option<Vec<u8>>> {
        read_if_exists(&self.baselines_path(source, generation))
    }

    /// Writes a source's baselines for the checkpoint of `generation`.
    pub fn save_baselines(&self, source: &str, generation: u64, bytes: &[u8]) -> Result<()> {
        write_atomically(&self.baselines_path(source, Some(generation)), bytes)
    }

    /// Removes a source's baselines of `generation` (superseded by a saved
    /// checkpoint); a file already gone is fine.
    pub fn remove_baselines(&self, source: &str, generation: u64) {
        let _ = fs::remove_file(self.baselines_path(source, Some(generation)));
    }

    /// Removes a source's baselines files other than `current`'s: a kill
    /// after writing them but before the checkpoint naming them leaves them
    /// behind.
    pub fn remove_stale_baselines(&self, source: &str, current: Option<u64>) {
        let prefix = format!("{}{BASELINES_SUFFIX}.", file_stem(source));
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(gen) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
            if let Ok(gen) = gen.parse::<u64>() {
                if Some(gen) != current {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    /// The journal cursor file of a journald source (`journalctl
    /// --cursor-file` reads it and rewrites it itself).
    pub fn journal_cursor(&self, source: &str) -> PathBuf {
        self.dir.join(format!("{}{CURSOR_SUFFIX}", file_stem(source)))
    }

    /// The spool's directory (its files: [`SpoolFiles`]).
    pub fn spool_dir(&self) -> PathBuf {
        self.dir.join(SPOOL_DIR)
    }

    /// The last model fetched from the collector.
    pub fn fetched_model(&self) -> PathBuf {
        self.dir.join(FETCHED_MODEL_FILE)
    }

    /// Stores a model fetched (and verified) from the collector.
    pub fn save_fetched_model(&self, bytes: &[u8]) -> Result<()> {
        write_atomically(&self.fetched_model(), bytes)
    }
}

/// The names of the spool's files in its directory (what they hold is the
/// spool's business).
#[derive(Debug, Clone)]
pub struct SpoolFiles {
    dir: PathBuf,
}

impl SpoolFiles {
    const SEGMENT_SUFFIX: &str = ".seg";

    /// The files of the spool in `dir` ([`StateDir::spool_dir`], or any
    /// directory in the spool's own tests).
    pub fn new(dir: &Path) -> SpoolFiles {
        SpoolFiles { dir: dir.to_path_buf() }
    }

    /// Segment `id` (zero-padded, so names sort as ids do).
    pub fn segment(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}{}", Self::SEGMENT_SUFFIX))
    }

    /// The segment id a file name stands for, if it is a segment's.
    pub fn segment_id(name: &str) -> Option<u64> {
        name.strip_suffix(Self::SEGMENT_SUFFIX)?.parse().ok()
    }

    /// The spool's cursor, counters and batch in flight.
    pub fn meta(&self) -> PathBuf {
        self.dir.join("meta.json")
    }

    /// The bytes of the batch in flight.
    pub fn inflight(&self) -> PathBuf {
        self.dir.join("inflight.batch")
    }
}

/// A file name made of a source's name.
fn file_stem(source: &str) -> String {
    source.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io { path: path.into(), source: e }),
    }
}

/// Creates `dir` (and missing parents) as [`DIR_MODE`], and sets that mode
/// on it if it already existed or the umask narrowed it.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(Error::io(dir))?;
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)).map_err(Error::io(dir))
}

/// Opens `path` for appending, created as [`FILE_MODE`] (for files grown in
/// place, such as spool segments).
pub fn open_private_append(path: &Path) -> Result<File> {
    let file = OpenOptions::new().create(true).append(true).mode(FILE_MODE).open(path).map_err(Error::io(path))?;
    file.set_permissions(Permissions::from_mode(FILE_MODE)).map_err(Error::io(path))?;
    Ok(file)
}

/// Replaces `path` with `bytes`: a temporary file beside it (`<name>.tmp`,
/// mode [`FILE_MODE`]), fsync, rename over `path`, fsync of the directory.
/// After a crash `path` holds the old or the new content, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .map_err(Error::io(&tmp))?;
    // A temporary file left by a crash of an older agent keeps its mode.
    file.set_permissions(Permissions::from_mode(FILE_MODE)).map_err(Error::io(&tmp))?;
    file.write_all(bytes).map_err(Error::io(&tmp))?;
    file.sync_all().map_err(Error::io(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(Error::io(path))?;
    // The rename itself is only durable once the directory is synced.
    File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io(dir))
}

/// Sets [`DIR_MODE`] / [`FILE_MODE`] on `dir`'s entries, one level of
/// subdirectories deep (the spool): what a layout-1 agent wrote under the
/// umask it was given.
fn tighten_modes(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(Error::io(&path))?;
        if kind.is_dir() {
            fs::set_permissions(&path, Permissions::from_mode(DIR_MODE)).map_err(Error::io(&path))?;
            for inner in fs::read_dir(&path).map_err(Error::io(&path))? {
                let inner = inner.map_err(Error::io(&path))?;
                if inner.file_type().map_err(Error::io(inner.path()))?.is_file() {
                    fs::set_permissions(inner.path(), Permissions::from_mode(FILE_MODE))
                        .map_err(Error::io(inner.path()))?;
                }
            }
        } else if kind.is_file() {
            fs::set_permissions(&path, Permissions::from_mode(FILE_MODE)).map_err(Error::io(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::file::FileMark;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn saves_and_loads_and_refuses_garbage() {
        let dir = crate::testutil::tempdir("state");
        let state = StateDir::open(&dir.join("sub")).unwrap();
        assert_eq!(state.load_checkpoint().unwrap().sources.len(), 0);
        let mut cp = Checkpoint { version: CHECKPOINT_VERSION, ..Default::default() };
        cp.sink = SinkMark::File { dev: 1, ino: 2, len: 3 };
        cp.sources.insert(
            "/var/log/auth.log".into(),
            SourceCheckpoint::File(FileCheckpoint {
                current: Some(FileMark { dev: 1, ino: 9, offset: 120, head: Some(77) }),
                previous: None,
            }),
        );
        state.save_checkpoint(&cp).unwrap();
        assert_eq!(state.load_checkpoint().unwrap(), cp);
        assert!(!dir.join("sub/checkpoint.json.tmp").exists());
        fs::write(dir.join("sub/checkpoint.json"), b"{\"version\":1,\"sin").unwrap();
        assert!(state.load_checkpoint().unwrap_err().to_string().contains("unreadable"));
    }

    #[test]
    fn the_learning_period_is_kept_and_a_version_one_checkpoint_still_read() {
        let dir = crate::testutil::tempdir("state-learning");
        let state = StateDir::open(&dir).unwrap();
        let mut cp = Checkpoint { version: CHECKPOINT_VERSION, ..Default::default() };
        cp.learning.insert("auth".into(), Learning::Until(1_796_169_600));
        cp.learning.insert("journal".into(), Learning::Off);
        state.save_checkpoint(&cp).unwrap();
        assert_eq!(state.load_checkpoint().unwrap(), cp);
        // An agent before the learning period was kept wrote version 1 without it.
        fs::write(dir.join("checkpoint.json"), br#"{"version":1,"sink":{"kind":"none"},"sources":{}}"#).unwrap();
        let old = state.load_checkpoint().unwrap();
        assert_eq!((old.version, old.learning.len()), (CHECKPOINT_VERSION, 0));
        // A newer agent's is refused rather than misread.
        fs::write(dir.join("checkpoint.json"), br#"{"version":3,"sink":{"kind":"none"},"sources":{}}"#).unwrap();
        assert!(state.load_checkpoint().unwrap_err().to_string().contains("version 3"));
    }

    #[test]
    fn a_new_directory_gets_the_layout_version_and_private_modes() {
        let dir = crate::testutil::tempdir("state-new").join("a/b");
        let state = StateDir::open(&dir).unwrap();
        assert_eq!(fs::read_to_string(dir.join("layout-version")).unwrap(), "2\n");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("layout-version")), 0o600);
        state.save_baselines("/var/log/auth.log", 3, b"abc").unwrap();
        let path = dir.join("_var_log_auth_log.baselines.3");
        assert_eq!(fs::read(&path).unwrap(), b"abc");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(state.load_baselines("/var/log/auth.log", Some(3)).unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(state.load_baselines("/var/log/auth.log", Some(4)).unwrap(), None);
        // Reopening a current directory changes nothing.
        StateDir::open(&dir).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"abc");
    }

    #[test]
    fn stale_and_superseded_baselines_are_removed_but_not_the_current() {
        let dir = crate::testutil::tempdir("state-stale");
        let state = StateDir::open(&dir).unwrap();
        for gen in [1, 2, 3] {
            state.save_baselines("auth", gen, b"x").unwrap();
        }
        state.save_baselines("other", 1, b"y").unwrap();
        state.remove_stale_baselines("auth", Some(2));
        assert_eq!(state.load_baselines("auth", Some(1)).unwrap(), None);
        assert!(state.load_baselines("auth", Some(2)).unwrap().is_some());
        assert_eq!(state.load_baselines("auth", Some(3)).unwrap(), None);
        assert!(state.load_baselines("other", Some(1)).unwrap().is_some(), "another source's file stays");
        state.remove_baselines("auth", 2);
        assert_eq!(state.load_baselines("auth", Some(2)).unwrap(), None);
    }

    #[test]
    fn a_newer_or_unreadable_layout_is_refused() {
        let dir = crate::testutil::tempdir("state-newer");
        fs::write(dir.join("layout-version"), "3\n").unwrap();
        let err = StateDir::open(&dir).unwrap_err().to_string();
        assert!(err.contains("layout 3") && err.contains("newer agent"), "{err}");
        fs::write(dir.join("layout-version"), "two").unwrap();
        assert!(StateDir::open(&dir).unwrap_err().to_string().contains("unreadable layout"));
    }

    #[test]
    fn a_non_empty_directory_without_agent_state_is_refused_untouched() {
        let dir = crate::testutil::tempdir("state-foreign");
        fs::write(dir.join("notes.txt"), "mine").unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let err = StateDir::open(&dir).unwrap_err().to_string();
        assert!(err.contains("holds no agent state"), "{err}");
        assert_eq!(mode(&dir), 0o755, "a foreign directory's mode is left alone");
        assert!(!dir.join("layout-version").exists());
    }

    #[test]
    fn a_layout_1_directory_opens_with_its_state_and_modes_tightened() {
        let dir = crate::testutil::tempdir("state-v1");
        fs::create_dir(dir.join("spool")).unwrap();
        let cp = Checkpoint { version: 1, generation: 4, ..Default::default() };
        fs::write(dir.join("checkpoint.json"), serde_json::to_vec(&cp).unwrap()).unwrap();
        fs::write(dir.join("auth.baselines.4"), b"b").unwrap();
        fs::write(dir.join("spool/00000000000000000001.seg"), b"s").unwrap();
        for (path, m) in [(dir.clone(), 0o755), (dir.join("spool"), 0o755)] {
            fs::set_permissions(path, Permissions::from_mode(m)).unwrap();
        }
        for file in ["checkpoint.json", "auth.baselines.4", "spool/00000000000000000001.seg"] {
            fs::set_permissions(dir.join(file), Permissions::from_mode(0o644)).unwrap();
        }
        let state = StateDir::open(&dir).unwrap();
        // Read as this agent's version (version 1 had no learning periods).
        assert_eq!(state.load_checkpoint().unwrap(), Checkpoint { version: CHECKPOINT_VERSION, ..cp });
        assert_eq!(state.load_baselines("auth", Some(4)).unwrap().as_deref(), Some(&b"b"[..]));
        assert_eq!(fs::read_to_string(dir.join("layout-version")).unwrap(), "2\n");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("spool")), 0o700);
        for file in ["checkpoint.json", "auth.baselines.4", "spool/00000000000000000001.seg"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
    }

    #[test]
    fn an_atomic_write_replaces_a_stale_temporary_file_and_leaves_none() {
        let dir = crate::testutil::tempdir("state-atomic");
        let path = dir.join("meta.json");
        fs::write(dir.join("meta.json.tmp"), b"half of an old wri").unwrap();
        fs::set_permissions(dir.join("meta.json.tmp"), Permissions::from_mode(0o644)).unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        assert!(!dir.join("meta.json.tmp").exists());
    }
}
