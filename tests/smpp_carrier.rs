//! The SMPP carrier of the end-to-end tests (`tests/peers/smpp_carrier.pl`, Debian's
//! libnet-smpp-perl in its server role) checked on its own with a tiny SMPP 3.4 client written
//! here from raw bytes, so a failure of the SMS tests can be told apart from a broken carrier.
//! Needs perl and Net::SMPP: `make deps` (or `apt-get install -y libnet-smpp-perl`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIND_TRANSCEIVER: u32 = 0x0000_0009;
const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
const SUBMIT_SM: u32 = 0x0000_0004;
const SUBMIT_SM_RESP: u32 = 0x8000_0004;
const DELIVER_SM: u32 = 0x0000_0005;
const DELIVER_SM_RESP: u32 = 0x8000_0005;
const ENQUIRE_LINK: u32 = 0x0000_0015;
const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;
const UNBIND: u32 = 0x0000_0006;
const UNBIND_RESP: u32 = 0x8000_0006;
const ESME_RINVPASWD: u32 = 0x0E;
const ESME_RTHROTTLED: u32 = 0x58;
const TLV_RECEIPTED_MESSAGE_ID: u16 = 0x001E;
const TLV_MESSAGE_STATE: u16 = 0x0427;

/// The carrier process, killed on drop.
struct Carrier {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Carrier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require_net_smpp() {
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
}

impl Carrier {
    fn start(flags: &[&str]) -> Carrier {
        require_net_smpp();
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
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("carrier did not start ({e}): {line:?}"));
        assert_eq!(v["event"], "listening", "{v}");
        Carrier {
            child,
            port: v["port"].as_u64().unwrap() as u16,
            log,
            _dir: dir,
        }
    }

    fn connect(&self) -> Esme {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Esme { stream, seq: 0 }
    }

    fn logged(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[derive(Debug)]
struct Pdu {
    command: u32,
    status: u32,
    seq: u32,
    body: Vec<u8>,
}

impl Pdu {
    /// The C-octet string at the start of the body (message_id, system_id).
    fn first_cstring(&self) -> String {
        let end = self.body.iter().position(|&b| b == 0).unwrap();
        String::from_utf8(self.body[..end].to_vec()).unwrap()
    }

    /// A deliver_sm's fields.
    fn deliver_fields(&self) -> Deliver {
        let b = &self.body;
        let mut i = 0;
        let cstr = |i: &mut usize| {
            let end = *i + b[*i..].iter().position(|&x| x == 0).unwrap();
            let s = String::from_utf8(b[*i..end].to_vec()).unwrap();
            *i = end + 1;
            s
        };
        cstr(&mut i); // service_type
        i += 2; // source ton, npi
        let source = cstr(&mut i);
        i += 2; // dest ton, npi
        cstr(&mut i); // destination_addr
        let esm_class = b[i];
        i += 3; // esm_class, protocol_id, priority_flag
        cstr(&mut i); // schedule_delivery_time
        cstr(&mut i); // validity_period
        i += 4; // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
        let len = b[i] as usize;
        i += 1;
        let sm = b[i..i + len].to_vec();
        i += len;
        let mut tlvs = Vec::new();
        while i + 4 <= b.len() {
            let tag = u16::from_be_bytes([b[i], b[i + 1]]);
            let l = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
            tlvs.push((tag, b[i + 4..i + 4 + l].to_vec()));
            i += 4 + l;
        }
        Deliver {
            source,
            esm_class,
            short_message: sm,
            tlvs,
        }
    }
}

/// The fields of a deliver_sm the tests look at.
struct Deliver {
    source: String,
    esm_class: u8,
    short_message: Vec<u8>,
    /// Optional parameters: (tag, value).
    tlvs: Vec<(u16, Vec<u8>)>,
}

/// A minimal ESME: writes PDUs from raw bytes, reads whole PDUs.
struct Esme {
    stream: TcpStream,
    seq: u32,
}

fn cstring(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

impl Esme {
    fn send(&mut self, command: u32, seq: u32, body: &[u8]) {
        let mut pdu = Vec::with_capacity(16 + body.len());
        pdu.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
        pdu.extend_from_slice(&command.to_be_bytes());
        pdu.extend_from_slice(&0u32.to_be_bytes());
        pdu.extend_from_slice(&seq.to_be_bytes());
        pdu.extend_from_slice(body);
        self.stream.write_all(&pdu).unwrap();
    }

    fn request(&mut self, command: u32, body: &[u8]) -> u32 {
        self.seq += 1;
        let seq = self.seq;
        self.send(command, seq, body);
        seq
    }

    /// The next PDU, or `None` when the carrier closed the connection.
    fn read(&mut self) -> Option<Pdu> {
        let mut header = [0u8; 16];
        match self.stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading a PDU: {e}"),
        }
        let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().unwrap());
        let len = word(0) as usize;
        assert!((16..=64 * 1024).contains(&len), "PDU length {len}");
        let mut body = vec![0u8; len - 16];
        self.stream.read_exact(&mut body).unwrap();
        Some(Pdu {
            command: word(4),
            status: word(8),
            seq: word(12),
            body,
        })
    }

    fn bind(&mut self, system_id: &str, password: &str) -> Pdu {
        let mut body = Vec::new();
        cstring(&mut body, system_id);
        cstring(&mut body, password);
        cstring(&mut body, ""); // system_type
        body.extend_from_slice(&[0x34, 1, 1]); // interface_version, addr_ton, addr_npi
        cstring(&mut body, ""); // address_range
        let seq = self.request(BIND_TRANSCEIVER, &body);
        let resp = self.read().expect("bind_transceiver_resp");
        assert_eq!((resp.command, resp.seq), (BIND_TRANSCEIVER_RESP, seq));
        resp
    }

    fn submit(&mut self, from: &str, to: &str, text: &[u8], data_coding: u8) -> u32 {
        let mut body = Vec::new();
        cstring(&mut body, ""); // service_type
        body.extend_from_slice(&[1, 1]);
        cstring(&mut body, from);
        body.extend_from_slice(&[1, 1]);
        cstring(&mut body, to);
        body.extend_from_slice(&[0, 0, 0]); // esm_class, protocol_id, priority_flag
        cstring(&mut body, ""); // schedule_delivery_time
        cstring(&mut body, ""); // validity_period
        // registered_delivery: a receipt; replace_if_present; data_coding; sm_default_msg_id
        body.extend_from_slice(&[1, 0, data_coding, 0, text.len() as u8]);
        body.extend_from_slice(text);
        self.request(SUBMIT_SM, &body)
    }

    /// Reads until a deliver_sm, answering it; other PDUs are returned in `others`.
    fn next_deliver(&mut self, others: &mut Vec<Pdu>) -> Pdu {
        loop {
            let pdu = self
                .read()
                .expect("a deliver_sm before the connection closed");
            if pdu.command == DELIVER_SM {
                let mut body = Vec::new();
                cstring(&mut body, "");
                self.send(DELIVER_SM_RESP, pdu.seq, &body);
                return pdu;
            }
            others.push(pdu);
        }
    }
}

fn receipt_text(pdu: &Pdu) -> (String, u8, Vec<(u16, Vec<u8>)>) {
    let d = pdu.deliver_fields();
    (
        String::from_utf8(d.short_message).unwrap(),
        d.esm_class,
        d.tlvs,
    )
}

fn tlv(tlvs: &[(u16, Vec<u8>)], tag: u16) -> Vec<u8> {
    tlvs.iter()
        .find(|(t, _)| *t == tag)
        .unwrap_or_else(|| panic!("TLV 0x{tag:04x} missing in {tlvs:?}"))
        .1
        .clone()
}

#[test]
fn binds_with_the_right_password_only() {
    let carrier = Carrier::start(&["--system-id", "acme", "--password", "s3cret"]);
    let mut good = carrier.connect();
    let resp = good.bind("acme", "s3cret");
    assert_eq!(resp.status, 0);
    assert_eq!(resp.first_cstring(), "carrier");
    let seq = good.request(ENQUIRE_LINK, &[]);
    let resp = good.read().unwrap();
    assert_eq!(
        (resp.command, resp.seq, resp.status),
        (ENQUIRE_LINK_RESP, seq, 0)
    );
    let seq = good.request(UNBIND, &[]);
    let resp = good.read().unwrap();
    assert_eq!((resp.command, resp.seq), (UNBIND_RESP, seq));
    assert!(good.read().is_none(), "closed after unbind");

    let mut bad = carrier.connect();
    assert_eq!(bad.bind("acme", "wrong").status, ESME_RINVPASWD);
    // Not bound: a submit is refused (ESME_RINVBNDSTS).
    bad.submit("+15550001111", "+15551230000", b"hi", 0);
    assert_eq!(bad.read().unwrap().status, 0x04);
}

#[test]
fn outstanding_submits_get_ids_then_receipts_and_are_logged() {
    let carrier = Carrier::start(&["--fail-number", "+15551230002"]);
    let mut esme = carrier.connect();
    assert_eq!(esme.bind("trunx", "secret").status, 0);
    // Three submits before reading any answer: a window of outstanding requests.
    let ucs2: Vec<u8> = "héllo"
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    let seqs = [
        esme.submit("+15550001111", "+15551230000", b"Hello one", 0),
        esme.submit("+15550001111", "+15551230001", &ucs2, 8),
        esme.submit("+15550001111", "+15551230002", b"Hello fail", 0),
    ];
    let mut ids = Vec::new();
    let mut others = Vec::new();
    let mut receipts = Vec::new();
    while ids.len() < 3 || receipts.len() < 3 {
        let pdu = esme.read().expect("carrier closed early");
        match pdu.command {
            SUBMIT_SM_RESP => {
                assert_eq!(pdu.status, 0);
                assert_eq!(pdu.seq, seqs[ids.len()], "answers in order");
                ids.push(pdu.first_cstring());
            }
            DELIVER_SM => {
                let mut body = Vec::new();
                cstring(&mut body, "");
                esme.send(DELIVER_SM_RESP, pdu.seq, &body);
                receipts.push(pdu);
            }
            _ => others.push(pdu),
        }
    }
    assert!(others.is_empty(), "{others:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{ids:?}");
    for (i, r) in receipts.iter().enumerate() {
        let source = r.deliver_fields().source;
        let (text, esm, tlvs) = receipt_text(r);
        assert_eq!(esm, 0x04, "a delivery receipt");
        assert_eq!(source, format!("+1555123000{i}"));
        assert!(text.starts_with(&format!("id:{} ", ids[i])), "{text}");
        let mut id_tlv = ids[i].clone().into_bytes();
        id_tlv.push(0);
        assert_eq!(tlv(&tlvs, TLV_RECEIPTED_MESSAGE_ID), id_tlv);
        if i == 2 {
            assert!(text.contains("stat:UNDELIV err:001"), "{text}");
            assert_eq!(tlv(&tlvs, TLV_MESSAGE_STATE), vec![5]);
        } else {
            assert!(text.contains("stat:DELIVRD err:000"), "{text}");
            assert_eq!(tlv(&tlvs, TLV_MESSAGE_STATE), vec![2]);
        }
    }
    // The carrier handles PDUs in order: once the enquire_link is answered, the
    // deliver_sm_resps before it are in the log.
    let seq = esme.request(ENQUIRE_LINK, &[]);
    assert_eq!(esme.read().unwrap().seq, seq);
    let log = carrier.logged();
    let submits: Vec<_> = log.iter().filter(|v| v["command"] == "submit_sm").collect();
    assert_eq!(submits.len(), 3);
    assert_eq!(submits[1]["destination"], "+15551230001");
    assert_eq!(submits[1]["data_coding"], 8);
    assert_eq!(submits[1]["esm_class"], 0);
    assert_eq!(submits[0]["short_message"], "48656c6c6f206f6e65");
    let resps = log
        .iter()
        .filter(|v| v["command"] == "deliver_sm_resp")
        .count();
    assert_eq!(resps, 3);
}

#[test]
fn throttles_the_first_submits() {
    let carrier = Carrier::start(&["--throttle", "2"]);
    let mut esme = carrier.connect();
    esme.bind("trunx", "secret");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        esme.submit("+15550001111", "+15551230000", b"x", 0);
        statuses.push(esme.read().unwrap().status);
    }
    assert_eq!(statuses, vec![ESME_RTHROTTLED, ESME_RTHROTTLED, 0]);
}

#[test]
fn drops_the_connection_once_and_delivers_waiting_receipts_after_a_new_bind() {
    let carrier = Carrier::start(&["--drop-after", "2", "--receipt-delay-ms", "300"]);
    let mut first = carrier.connect();
    first.bind("trunx", "secret");
    first.submit("+15550001111", "+15551230000", b"one", 0);
    let resp = first.read().unwrap();
    assert_eq!((resp.command, resp.status), (SUBMIT_SM_RESP, 0));
    let accepted = resp.first_cstring();
    // The second submit is never answered: the carrier closes the connection.
    first.submit("+15550001111", "+15551230001", b"two", 0);
    assert!(first.read().is_none(), "the connection should drop");

    let mut second = carrier.connect();
    assert_eq!(second.bind("trunx", "secret").status, 0);
    second.submit("+15550001111", "+15551230001", b"two again", 0);
    let mut others = Vec::new();
    let mut receipt_ids = Vec::new();
    for _ in 0..2 {
        let r = second.next_deliver(&mut others);
        let (_, _, tlvs) = receipt_text(&r);
        let id = tlv(&tlvs, TLV_RECEIPTED_MESSAGE_ID);
        receipt_ids.push(String::from_utf8(id[..id.len() - 1].to_vec()).unwrap());
    }
    assert!(
        receipt_ids.contains(&accepted),
        "the receipt of the first connection's message came on the second: {receipt_ids:?}"
    );
    assert_eq!(others.len(), 1, "the resend was answered once: {others:?}");
    assert_eq!((others[0].command, others[0].status), (SUBMIT_SM_RESP, 0));
}

#[test]
fn sends_a_mobile_originated_stop_after_bind() {
    let carrier = Carrier::start(&["--mo", "+15551239999:STOP"]);
    let mut esme = carrier.connect();
    esme.bind("trunx", "secret");
    let mut others = Vec::new();
    let mo = esme.next_deliver(&mut others);
    let d = mo.deliver_fields();
    assert_eq!(
        (d.source.as_str(), d.esm_class, d.short_message.as_slice()),
        ("+15551239999", 0, &b"STOP"[..])
    );
    assert!(others.is_empty());
}
