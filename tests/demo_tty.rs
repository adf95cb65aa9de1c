//! `trunx demo` on a terminal (a pseudo-terminal from util-linux `script`): it prints the
//! dashboard's address, keeps serving the API and the dashboard after its report, and stops
//! cleanly on Ctrl-C (SIGINT).

use std::process::{Command, Stdio};
use std::time::Duration;

use trunx::runtime::clock;

/// The process under `pid` (at any depth) that runs `exe`: `script` starts `$SHELL -c`, and
/// a shell such as dash (Debian's `/bin/sh`, used when `SHELL` is unset) forks the command
/// instead of replacing itself with it.
fn descendant_running(pid: u32, exe: &str) -> Option<i32> {
    let exe = std::fs::canonicalize(exe).ok()?;
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        let children =
            std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
        for child in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            if std::fs::read_link(format!("/proc/{child}/exe"))
                .ok()
                .as_ref()
                == Some(&exe)
            {
                return i32::try_from(child).ok();
            }
            frontier.push(child);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_the_demo_prints_the_dashboard_and_serves_until_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tty.log");
    let cmd = format!("{} demo", env!("CARGO_BIN_EXE_trunx"));
    let mut script = Command::new("script")
        .args(["-qfec", &cmd])
        .arg(&log)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("`script` (util-linux, Debian bsdutils) runs the demo on a pseudo-terminal");
    let deadline = clock::now() + Duration::from_secs(240);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("serving until Ctrl-C") {
            break text;
        }
        if let Some(status) = script.try_wait().unwrap() {
            panic!("the demo ended on its own ({status}):\n{text}");
        }
        assert!(clock::now() < deadline, "no dashboard after 240 s:\n{text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(text.contains("watch it live: http://127.0.0.1:"), "{text}");
    let url = text
        .lines()
        .find_map(|l| l.split("dashboard (each call's AMD timeline): ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let (base, key) = url.split_once("/#key=").unwrap();

    // Still serving after the report: the page, and the finished campaign through the API.
    trunx::runtime::fetch::ensure_crypto_provider();
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("trunx dashboard"));
    let campaigns: serde_json::Value = serde_json::from_str(
        &http
            .get(format!("{base}/campaigns"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(campaigns["data"][0]["status"], "completed", "{campaigns}");

    // Ctrl-C: the demo exits 0 and the API is gone.
    let trunx = descendant_running(script.id(), env!("CARGO_BIN_EXE_trunx"))
        .expect("the demo runs under script");
    // SAFETY: kill(2) on our own grandchild's pid.
    unsafe {
        libc::kill(trunx, libc::SIGINT);
    }
    let deadline = clock::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = script.try_wait().unwrap() {
            break s;
        }
        assert!(clock::now() < deadline, "the demo ignored Ctrl-C");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
    assert!(http.get(format!("{base}/")).send().await.is_err());
}
