//! A throwaway PostgreSQL server for `trunx bench load --nodes N`: the Debian package's
//! `initdb` and `pg_ctl` (`/usr/lib/postgresql/VERSION/bin`), a data directory in a temp
//! dir, trust auth on a free 127.0.0.1 port, stopped and removed when the handle drops. As
//! root it runs as the `postgres` user (PostgreSQL refuses root), like `scripts/cluster.sh`.
//!
//! Must not: install anything (the error names the install command) or outlive its handle.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PgLocalError {
    #[error(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
         `sudo apt-get install postgresql` or `make deps`"
    )]
    NotInstalled,
    #[error("local PostgreSQL: {0}")]
    Start(String),
}

/// A running server; stopped (fast shutdown) and its directory removed on drop.
pub struct LocalPg {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program` as the `postgres` user when root.
fn as_pg_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), PgLocalError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PgLocalError::Start(format!("{what}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PgLocalError::Start(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl LocalPg {
    /// Starts a server in a new directory under the temp dir.
    pub fn start() -> Result<LocalPg, PgLocalError> {
        let bin = bin_dir().ok_or(PgLocalError::NotInstalled)?;
        let tag = u64::from_le_bytes(
            crate::runtime::clock::os_random::<8>()
                .map_err(|e| PgLocalError::Start(e.to_string()))?,
        );
        let dir = std::env::temp_dir().join(format!("trunx-bench-pg-{tag:016x}"));
        std::fs::create_dir_all(&dir).map_err(|e| PgLocalError::Start(e.to_string()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| PgLocalError::Start(e.to_string()))?;
        // From here on, dropping `pg` cleans up whatever was made.
        let pg = LocalPg { bin, dir, port };
        if is_root() {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&pg.dir),
                "chown",
            )?;
        }
        let data = pg.dir.join("data");
        run(
            as_pg_user(&pg.bin.join("initdb"))
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "trunx",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data),
            "initdb",
        )?;
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dir} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=200",
            dir = pg.dir.display()
        );
        run(
            as_pg_user(&pg.bin.join("pg_ctl"))
                .args(["-w", "-t", "60", "-D"])
                .arg(&data)
                .arg("-l")
                .arg(pg.dir.join("log"))
                .args(["-o", &opts, "start"])
                .stdout(Stdio::null()),
            "pg_ctl start",
        )?;
        Ok(pg)
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://trunx@127.0.0.1:{}/postgres", self.port)
    }

    /// A new, empty database: its URL.
    pub fn create_database(&self, name: &str) -> Result<String, PgLocalError> {
        let err = |e: postgres::Error| PgLocalError::Start(e.to_string());
        // The blocking client owns a runtime: keep it off any async thread.
        let url = self.url();
        let sql = format!("CREATE DATABASE {name}");
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).map_err(err)?;
                c.batch_execute(&sql).map_err(err)
            })
            .join()
            .unwrap_or_else(|_| Err(PgLocalError::Start("create database panicked".into())))
        })?;
        Ok(format!(
            "postgres://trunx@127.0.0.1:{}/{name}?connect_timeout={}",
            self.port,
            Duration::from_secs(10).as_secs()
        ))
    }
}

impl Drop for LocalPg {
    fn drop(&mut self) {
        let _ = as_pg_user(&self.bin.join("pg_ctl"))
            .args(["-m", "fast", "-w", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
