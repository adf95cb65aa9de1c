//! A throwaway PostgreSQL server for the tests: the Debian package's `initdb` and `postgres`
//! (`/usr/lib/postgresql/VERSION/bin`), a data directory in a temp dir, trust auth on a free
//! 127.0.0.1 port. As root it runs as the `postgres` user (PostgreSQL refuses root). One
//! server per test process, started on first use; a watchdog shell stops it and removes its
//! directory when the test process exits. Each test gets its own database.
//!
//! When the package is missing it is installed with apt-get (as root); if that fails the
//! caller gets `None` and prints why (the tests say SKIPPED loudly, never silently).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct PgServer {
    pub port: u16,
    pub dir: PathBuf,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn install() -> Result<PathBuf, String> {
    if let Some(b) = bin_dir() {
        return Ok(b);
    }
    if !is_root() {
        return Err(
            "PostgreSQL (Debian package `postgresql`) is not installed and this is \
                    not root; run `make deps` or `sudo apt-get install postgresql`"
                .into(),
        );
    }
    let ok = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "postgresql",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    bin_dir().ok_or_else(|| format!("apt-get install postgresql failed (ok={ok})"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(55432)
}

/// Runs `cmd` as the `postgres` user when root.
fn as_pg_user(program: &std::path::Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start() -> Result<PgServer, String> {
    let bin = install()?;
    let dir = std::env::temp_dir().join(format!("trunx-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err("cannot chown the data directory to postgres".into());
        }
    }
    let data = dir.join("data");
    let out = as_pg_user(&bin.join("initdb"))
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
        .arg(&data)
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port();
    // The watchdog: postgres runs while the test process lives, then stops (fast shutdown)
    // and its directory goes.
    let script = format!(
        "{pg} -D {data} -p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dir} \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
         >{dir}/log 2>&1 & pid=$!; while [ -d /proc/{parent} ] && kill -0 $pid 2>/dev/null; \
         do sleep 0.5; done; kill -INT $pid 2>/dev/null; wait $pid; rm -rf {dir}",
        pg = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        parent = std::process::id(),
    );
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", &script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd.spawn().map_err(|e| format!("postgres: {e}"))?;
    let deadline = trunx::runtime::clock::now() + std::time::Duration::from_secs(30);
    loop {
        let url = format!("postgres://trunx@127.0.0.1:{port}/postgres");
        if postgres::Client::connect(&url, postgres::NoTls).is_ok() {
            return Ok(PgServer { port, dir });
        }
        if trunx::runtime::clock::now() > deadline {
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            return Err(format!("postgres did not start: {log}"));
        }
        // A test helper waiting for a server process, outside any runtime.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The shared server, started on first use, or why there is none.
pub fn server() -> Result<&'static PgServer, String> {
    SERVER.get_or_init(start).as_ref().map_err(|e| e.clone())
}

/// A new, empty database on the shared server: its URL.
pub fn fresh_database() -> Result<String, String> {
    let srv = server()?;
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let admin = format!("postgres://trunx@127.0.0.1:{}/postgres", srv.port);
    let mut c = postgres::Client::connect(&admin, postgres::NoTls).map_err(|e| e.to_string())?;
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .map_err(|e| e.to_string())?;
    Ok(format!("postgres://trunx@127.0.0.1:{}/{name}", srv.port))
}

/// A fresh database's URL, or `None` after printing loudly that PostgreSQL cannot be
/// installed. Any other failure (the server does not start) fails the test.
pub fn database_or_skip(test: &str) -> Option<String> {
    match fresh_database() {
        Ok(url) => Some(url),
        Err(why) if bin_dir().is_none() => {
            eprintln!("SKIPPED {test} on PostgreSQL (it cannot be installed): {why}");
            None
        }
        Err(why) => panic!("{test}: PostgreSQL: {why}"),
    }
}
