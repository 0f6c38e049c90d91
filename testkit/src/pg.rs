//! Throw-away PostgreSQL clusters for tests and benches: `initdb` in a
//! temporary folder, `postgres` on a free loopback port, stopped and removed
//! when dropped. Debian's server binaries (`scripts/setup/postgres.sh`) are
//! found in `/usr/lib/postgresql/*/bin`, or in `$BFP_PG_BIN`.
//!
//! PostgreSQL refuses to run as root, so as root the cluster belongs to
//! `nobody` (started through `runuser`); otherwise to the current user.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A running throw-away cluster; stopped (immediate mode) and deleted on drop.
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_nobody: bool,
}

/// The folder of the server binaries, if PostgreSQL is installed.
pub fn pg_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BFP_PG_BIN").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    // The newest major version when several are installed.
    found.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    found.pop()
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl PgCluster {
    /// Creates and starts a cluster with database `bfp` (user `bfp`, trust
    /// authentication on loopback only). Panics with what failed: a test
    /// that needs PostgreSQL must not pass without it.
    pub fn start() -> PgCluster {
        let bin = pg_bin().expect("PostgreSQL server binaries not found: run scripts/setup/postgres.sh");
        // `id -u` rather than libc: this crate depends on nothing.
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        let as_nobody = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let dir = std::env::temp_dir().join(format!("bfp-pg-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("cluster folder");
        let cluster = PgCluster { bin, dir, port: free_port(), as_nobody };
        if as_nobody {
            let status = Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&cluster.dir).status();
            assert!(status.is_ok_and(|s| s.success()), "chown of {} to nobody failed", cluster.dir.display());
        }
        let data = cluster.data_dir();
        cluster.run_ok(
            "initdb",
            &["-D", path(&data), "-U", "bfp", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"],
        );
        let port = cluster.port.to_string();
        let log = cluster.dir.join("server.log");
        // Small and fast: a test cluster need not survive a power cut.
        let options = format!(
            "-h 127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=200 -c shared_buffers=64MB",
            path(&cluster.dir)
        );
        cluster.run_ok("pg_ctl", &["-D", path(&data), "-l", path(&log), "-o", &options, "-w", "-t", "60", "start"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, cluster.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not listen; see {}", log.display());
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster.run_ok("createdb", &["-h", "127.0.0.1", "-p", &port, "-U", "bfp", "bfp"]);
        cluster
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://bfp@127.0.0.1:PORT/bfp`.
    pub fn url(&self) -> String {
        self.url_of("bfp")
    }

    /// `bfp`'s URL through the cluster's Unix socket (in its folder): what a
    /// process in another network namespace, where 127.0.0.1 is its own,
    /// can still reach.
    pub fn socket_url(&self) -> String {
        let folder = path(&self.dir).replace('%', "%25").replace('/', "%2F");
        format!("postgres://bfp@{folder}:{}/bfp", self.port)
    }

    /// The URL of another database of this cluster (see [`Self::create_database`]).
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://bfp@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database `name`.
    pub fn create_database(&self, name: &str) {
        self.run_ok("createdb", &["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "bfp", name]);
    }

    /// Runs `sql` with psql on database `bfp` and returns its unaligned,
    /// tuples-only output (`|` between columns, a line per row).
    pub fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let out = self.run_ok(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "bfp",
                "-d",
                "bfp",
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        // Run from a folder nobody can enter, or psql warns about the cwd.
        cmd.args(args).current_dir(&self.dir).output().unwrap_or_else(|e| panic!("{}: {e}", exe.display()))
    }

    fn run_ok(&self, program: &str, args: &[&str]) -> Output {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.run("pg_ctl", &["-D", path(&data), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A per-process counter, so one test binary can run several clusters.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_answers_sql_and_is_gone_after_drop() {
        let cluster = PgCluster::start();
        assert_eq!(cluster.psql("SELECT 40 + 2"), "42");
        let dir = cluster.dir.clone();
        let port = cluster.port();
        drop(cluster);
        assert!(!dir.exists(), "cluster folder left behind");
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(), "server still listening");
    }
}
