//! RTCP: a sender or receiver report with our CNAME every 5 s (RFC 3550 §6), and reading what
//! the far end reports (its SR for round-trip time, its BYE). Reports are written via the
//! webrtc-rs `rtcp` crate and read by a checked compound walker. Time and the NTP wall clock
//! are arguments.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtcp::goodbye::Goodbye;
use rtcp::receiver_report::ReceiverReport;
use rtcp::reception_report::ReceptionReport;
use rtcp::sender_report::SenderReport;
use rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};

use super::session::ReceiveStats;

/// RFC 3550's minimum interval for a two-party session.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Largest RTCP datagram accepted.
pub const MAX_RTCP_DATAGRAM: usize = 1500;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RtcpError {
    #[error("RTCP datagram of {0} bytes is too large")]
    TooLarge(usize),
    #[error("malformed RTCP: {0}")]
    Malformed(String),
}

/// What the far end told us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteReport {
    pub sender_reports: u32,
    pub receiver_reports: u32,
    pub bye: bool,
    /// Middle 32 bits of the NTP time of the last SR, and when it arrived (for DLSR).
    pub last_sr: Option<(u32, Instant)>,
}

/// What we sent, for the sender report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    pub packets: u32,
    pub octets: u32,
    pub last_timestamp: u32,
}

pub struct RtcpReporter {
    ssrc: u32,
    cname: Bytes,
    next: Instant,
    last_expected: u64,
    last_received: u64,
    remote: RemoteReport,
}

impl RtcpReporter {
    pub fn new(now: Instant, ssrc: u32, cname: &str) -> Self {
        RtcpReporter {
            ssrc,
            cname: Bytes::copy_from_slice(cname.as_bytes()),
            next: now + REPORT_INTERVAL,
            last_expected: 0,
            last_received: 0,
            remote: RemoteReport::default(),
        }
    }

    pub fn next_deadline(&self) -> Instant {
        self.next
    }

    pub fn remote(&self) -> &RemoteReport {
        &self.remote
    }

    fn reception(&mut self, now: Instant, rx: Option<&ReceiveStats>) -> Vec<ReceptionReport> {
        let Some(rx) = rx.filter(|r| r.received > 0) else {
            return Vec::new();
        };
        let expected_interval = rx.expected.saturating_sub(self.last_expected);
        let received_interval = rx.received.saturating_sub(self.last_received);
        let lost_interval = expected_interval.saturating_sub(received_interval);
        self.last_expected = rx.expected;
        self.last_received = rx.received;
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        let (last_sender_report, delay) = match self.remote.last_sr {
            Some((lsr, at)) => (lsr, (now.duration_since(at).as_secs_f64() * 65536.0) as u32),
            None => (0, 0),
        };
        vec![ReceptionReport {
            ssrc: rx.ssrc,
            fraction_lost,
            total_lost: rx.lost().clamp(0, 0x7F_FFFF) as u32,
            last_sequence_number: rx.highest_ext_seq as u32,
            jitter: rx.jitter,
            last_sender_report,
            delay,
        }]
    }

    /// The compound report when it is due: SR if we have sent media, else RR; then SDES.
    pub fn poll(
        &mut self,
        now: Instant,
        ntp_time: u64,
        sent: Option<SendStats>,
        received: Option<&ReceiveStats>,
    ) -> Option<Result<Bytes, RtcpError>> {
        if now < self.next {
            return None;
        }
        self.next += REPORT_INTERVAL;
        if self.next <= now {
            self.next = now + REPORT_INTERVAL;
        }
        Some(self.build(now, ntp_time, sent, received, false))
    }

    /// The final report with a BYE, sent when the call ends.
    pub fn bye(
        &mut self,
        now: Instant,
        ntp_time: u64,
        sent: Option<SendStats>,
        received: Option<&ReceiveStats>,
    ) -> Result<Bytes, RtcpError> {
        self.build(now, ntp_time, sent, received, true)
    }

    fn build(
        &mut self,
        now: Instant,
        ntp_time: u64,
        sent: Option<SendStats>,
        received: Option<&ReceiveStats>,
        bye: bool,
    ) -> Result<Bytes, RtcpError> {
        let reports = self.reception(now, received);
        let mut packets: Vec<Box<dyn rtcp::packet::Packet + Send + Sync>> = Vec::new();
        match sent.filter(|s| s.packets > 0) {
            Some(s) => packets.push(Box::new(SenderReport {
                ssrc: self.ssrc,
                ntp_time,
                rtp_time: s.last_timestamp,
                packet_count: s.packets,
                octet_count: s.octets,
                reports,
                profile_extensions: Bytes::new(),
            })),
            None => packets.push(Box::new(ReceiverReport {
                ssrc: self.ssrc,
                reports,
                profile_extensions: Bytes::new(),
            })),
        }
        packets.push(Box::new(SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: self.ssrc,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: self.cname.clone(),
                }],
            }],
        }));
        if bye {
            packets.push(Box::new(Goodbye {
                sources: vec![self.ssrc],
                reason: Bytes::new(),
            }));
        }
        rtcp::packet::marshal(&packets).map_err(|e| RtcpError::Malformed(e.to_string()))
    }

    /// Reads a datagram from the far end.
    pub fn handle(&mut self, now: Instant, datagram: &[u8]) -> Result<(), RtcpError> {
        if datagram.len() > MAX_RTCP_DATAGRAM {
            return Err(RtcpError::TooLarge(datagram.len()));
        }
        let kinds = read_compound(datagram).map_err(|r| RtcpError::Malformed(r.into()))?;
        for kind in kinds.iter().flatten() {
            match *kind {
                Remote::SenderReport { ntp_time } => {
                    self.remote.sender_reports += 1;
                    self.remote.last_sr = Some(((ntp_time >> 16) as u32, now));
                }
                Remote::ReceiverReport => self.remote.receiver_reports += 1,
                Remote::Bye => self.remote.bye = true,
            }
        }
        Ok(())
    }
}

/// What a packet of a compound datagram tells the reporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Remote {
    SenderReport { ntp_time: u64 },
    ReceiverReport,
    Bye,
}

/// The most packets read from one compound datagram; a real one holds two to four.
const MAX_COMPOUND: usize = 16;

/// Walks a compound datagram (RFC 3550 section 6.1) with every length checked against it:
/// each packet's version and length, and the fixed part of SR, RR and BYE against their
/// counts. SDES, APP and other types are skipped whole. The whole datagram is rejected when
/// any packet is malformed, so nothing of it is applied. Written here rather than through
/// webrtc-rs' `unmarshal`, which panics on some short reports (found by fuzz/rtcp,
/// tests/fuzz-regressions/); this one cannot index out of bounds and does not allocate.
fn read_compound(datagram: &[u8]) -> Result<[Option<Remote>; MAX_COMPOUND], &'static str> {
    let mut out = [None; MAX_COMPOUND];
    let mut at = 0;
    let mut n = 0;
    if datagram.is_empty() {
        return Err("empty datagram");
    }
    while at < datagram.len() {
        let header = datagram
            .get(at..at + 4)
            .ok_or("packet header past the end")?;
        if header[0] >> 6 != 2 {
            return Err("not RTCP version 2");
        }
        let count = usize::from(header[0] & 0x1F);
        let size = 4 * (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1);
        let packet = datagram
            .get(at..at + size)
            .ok_or("packet length past the end")?;
        let padded = header[0] & 0x20 != 0;
        if padded && at + size != datagram.len() {
            return Err("padding on a packet that is not the last");
        }
        let need = |fixed: usize, each: usize| {
            if fixed + each * count <= size {
                Ok(())
            } else {
                Err("report shorter than its count")
            }
        };
        let kind = match header[1] {
            200 => {
                need(28, 24)?;
                let ntp: [u8; 8] = packet[8..16].try_into().map_err(|_| "short SR")?;
                Some(Remote::SenderReport {
                    ntp_time: u64::from_be_bytes(ntp),
                })
            }
            201 => {
                need(8, 24)?;
                Some(Remote::ReceiverReport)
            }
            203 => {
                need(4, 4)?;
                Some(Remote::Bye)
            }
            _ => None,
        };
        if n == MAX_COMPOUND {
            return Err("too many packets in one datagram");
        }
        out[n] = kind;
        n += 1;
        at += size;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rx() -> ReceiveStats {
        ReceiveStats {
            ssrc: 0xCA11_0000,
            received: 95,
            expected: 100,
            highest_ext_seq: 65636,
            jitter: 12,
            restarts: 0,
        }
    }

    #[test]
    fn reports_every_five_seconds_as_rr_then_sr() {
        let t0 = crate::runtime::clock::now();
        let mut r = RtcpReporter::new(t0, 42, "trunx@test");
        assert!(
            r.poll(t0 + Duration::from_secs(4), 0, None, Some(&rx()))
                .is_none()
        );
        let rr = r
            .poll(t0 + Duration::from_secs(5), 0, None, Some(&rx()))
            .unwrap()
            .unwrap();
        // RR with one block (32 bytes) + SDES with CNAME.
        let mut peer = RtcpReporter::new(t0, 7, "peer");
        peer.handle(t0, &rr).unwrap();
        assert_eq!(peer.remote().receiver_reports, 1);
        let mut buf = &rr[..];
        let packets = rtcp::packet::unmarshal(&mut buf).unwrap();
        let report = packets[0]
            .as_any()
            .downcast_ref::<ReceiverReport>()
            .unwrap();
        assert_eq!(report.reports[0].fraction_lost, (5u32 * 256 / 100) as u8);
        assert_eq!(report.reports[0].total_lost, 5);
        assert_eq!(r.next_deadline(), t0 + Duration::from_secs(10));

        let sent = SendStats {
            packets: 250,
            octets: 40_000,
            last_timestamp: 1234,
        };
        let sr = r.poll(
            t0 + Duration::from_secs(10),
            0xAABB_CCDD_0000_0000,
            Some(sent),
            None,
        );
        let sr = sr.unwrap().unwrap();
        peer.handle(t0 + Duration::from_secs(10), &sr).unwrap();
        assert_eq!(peer.remote().sender_reports, 1);
        assert_eq!(peer.remote().last_sr.map(|s| s.0), Some(0xCCDD_0000));
        let bye = r
            .bye(t0 + Duration::from_secs(11), 0, Some(sent), None)
            .unwrap();
        peer.handle(t0, &bye).unwrap();
        assert!(peer.remote().bye);
    }

    #[test]
    fn a_malformed_packet_rejects_the_whole_compound() {
        let t0 = crate::runtime::clock::now();
        let mut r = RtcpReporter::new(t0, 42, "trunx@test");
        let sent = SendStats {
            packets: 1,
            octets: 160,
            last_timestamp: 160,
        };
        let sr = r.bye(t0, 0x1111_2222_0000_0000, Some(sent), None).unwrap();
        let mut peer = RtcpReporter::new(t0, 7, "peer");
        // A valid SR+SDES+BYE, then an RR whose count claims a block it does not carry.
        let mut bad = sr.to_vec();
        bad.extend([0x81, 201, 0, 1, 0, 0, 0, 9]);
        assert!(matches!(
            peer.handle(t0, &bad),
            Err(RtcpError::Malformed(_))
        ));
        assert_eq!(peer.remote().sender_reports, 0);
        assert!(!peer.remote().bye);
        // Padding anywhere but on the last packet, and a length past the datagram.
        let mut padded = sr.to_vec();
        padded[0] |= 0x20;
        assert!(peer.handle(t0, &padded).is_err());
        assert!(peer.handle(t0, &sr[..sr.len() - 4]).is_err());
        peer.handle(t0, &sr).unwrap();
        assert_eq!(peer.remote().sender_reports, 1);
        assert!(peer.remote().bye);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut r = RtcpReporter::new(crate::runtime::clock::now(), 1, "x");
            let _ = r.handle(crate::runtime::clock::now(), &bytes);
        }
    }
}
