//! The independent SMPP carrier of the SMS peer tests: `tests/peers/smpp_carrier.pl` (Debian's
//! libnet-smpp-perl as the SMSC) as a child process on a free port, killed on drop, and its
//! PDU log read back. It only starts the peer and reads what it logged: it must not drive
//! trunx or judge a result.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The carrier process, killed on drop.
pub(crate) struct Carrier {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Carrier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Carrier {
    pub(crate) fn start(flags: &[&str]) -> Carrier {
        let ok = Command::new("perl")
            .args(["-MNet::SMPP", "-e", "1"])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "perl with Net::SMPP is required for the SMPP carrier: run `make deps` \
             (or `apt-get install -y libnet-smpp-perl`)"
        );
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pdus.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smpp_carrier.pl");
        let mut child = Command::new("perl")
            .arg(script)
            .args(["--port", "0", "--receipt-delay-ms", "100", "--log"])
            .arg(&log)
            .args(flags)
            .stdout(Stdio::piped())
            .spawn()
            .expect("perl runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("carrier did not start ({e}): {line:?}"));
        assert_eq!(v["event"], "listening", "{v}");
        Carrier {
            child,
            port: v["port"].as_u64().unwrap() as u16,
            log,
            _dir: dir,
        }
    }

    pub(crate) fn logged(&self, command: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["command"] == command)
            .collect()
    }

    /// Destinations of the submit_sm received, with `+`, in order.
    pub(crate) fn submitted_to(&self) -> Vec<String> {
        self.logged("submit_sm")
            .iter()
            .map(|v| format!("+{}", v["destination"].as_str().unwrap()))
            .collect()
    }
}
