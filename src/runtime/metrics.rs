//! The process's Prometheus metrics: one registry, owned here, that the call tasks, the SMS
//! sender and the webhook sender update and `GET /metrics` renders in the text exposition
//! format (the `prometheus` crate's encoder, no hand formatting).
//!
//! Counters are atomics: updating one is a relaxed add, no lock and no allocation once a label
//! value has been seen. Label values are closed sets (outcomes, AMD results, SIP codes, SMS
//! statuses), never numbers or ids, so the series count is bounded.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Every metric trunx exports.
pub struct Metrics {
    registry: Registry,
    /// `trunx_calls_total{outcome}`: campaign calls ended, by campaign outcome.
    pub calls: IntCounterVec,
    /// `trunx_amd_results_total{result}`: AMD decisions of answered calls.
    pub amd_results: IntCounterVec,
    /// `trunx_amd_decision_seconds{result}`: audio time from the answer to the decision.
    pub amd_decision: HistogramVec,
    /// `trunx_amd_external_fallbacks_total{reason}`: calls whose external AMD engine was late
    /// (`timeout`) or failed (`lost`), so the built-in detector's result was used.
    pub amd_external_fallbacks: IntCounterVec,
    /// `trunx_active_calls`: campaign calls in progress on this node.
    pub active_calls: IntGauge,
    /// `trunx_rtp_frames_total{direction,kind}`: received frames that arrived after their
    /// playout slot (`late`) or never (`lost`, concealed), and sent frames that left late.
    pub rtp_frames: IntCounterVec,
    /// `trunx_sip_responses_total{code}`: final responses to campaign INVITEs.
    pub sip_responses: IntCounterVec,
    /// `trunx_trunk_up`: 1 while the trunk answers INVITEs, 0 after one got no response.
    pub trunk_up: IntGauge,
    /// `trunx_sms_total{status}`: SMS status changes (sent, delivered, failed, requeued).
    pub sms: IntCounterVec,
    /// `trunx_webhook_queue_depth`: webhook events not yet delivered.
    pub webhook_queue: IntGauge,
    /// `trunx_webhook_deliveries_total{result}`: delivery attempts by result
    /// (`delivered`, `failed`, `refused`).
    pub webhook_deliveries: IntCounterVec,
    /// `trunx_sip_dropped_total{reason}`: SIP datagrams dropped: `unrouted` (no call of ours:
    /// never answered), `queue_full`, `malformed` (a call's datagram it could not use).
    pub sip_dropped: IntCounterVec,
    /// `trunx_rtp_dropped_total{reason}`: RTP/RTCP datagrams dropped: `malformed`,
    /// `payload_type`, `stale`, `dtmf`, `foreign` (another source or SSRC than the
    /// established stream), `before_answer`, `rtcp_malformed`.
    pub rtp_dropped: IntCounterVec,
}

/// Buckets of the AMD decision time, seconds: the human path should sit under 2 s, machine
/// greetings 1-4 s, the analysis cap at 5 s.
const DECISION_BUCKETS: &[f64] = &[
    0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0,
];

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Metrics {
    /// A fresh registry with every metric registered (the process uses [`global`]).
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let calls = counter(
            &registry,
            "trunx_calls_total",
            "Campaign calls ended, by outcome.",
            &["outcome"],
        );
        let amd_results = counter(
            &registry,
            "trunx_amd_results_total",
            "AMD decisions of answered calls, by result.",
            &["result"],
        );
        let amd_decision = HistogramVec::new(
            HistogramOpts::new(
                "trunx_amd_decision_seconds",
                "Audio time from the answer to the AMD decision, by result.",
            )
            .buckets(DECISION_BUCKETS.to_vec()),
            &["result"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(amd_decision.clone()))
            .expect("metric registered once");
        let amd_external_fallbacks = counter(
            &registry,
            "trunx_amd_external_fallbacks_total",
            "Calls whose external AMD engine was late or failed, decided by the built-in engine instead, by reason.",
            &["reason"],
        );
        for reason in ["timeout", "lost"] {
            amd_external_fallbacks.with_label_values(&[reason]);
        }
        let active_calls = gauge(
            &registry,
            "trunx_active_calls",
            "Campaign calls in progress on this node.",
        );
        let rtp_frames = counter(
            &registry,
            "trunx_rtp_frames_total",
            "RTP frames received late or lost (concealed), and sent late.",
            &["direction", "kind"],
        );
        let sip_responses = counter(
            &registry,
            "trunx_sip_responses_total",
            "Final SIP responses to campaign INVITEs, by status code.",
            &["code"],
        );
        let trunk_up = gauge(
            &registry,
            "trunx_trunk_up",
            "1 while the trunk answers INVITEs, 0 after an INVITE got no response at all.",
        );
        let sms = counter(
            &registry,
            "trunx_sms_total",
            "SMS status changes, by new status.",
            &["status"],
        );
        let webhook_queue = gauge(
            &registry,
            "trunx_webhook_queue_depth",
            "Webhook events waiting for delivery.",
        );
        let webhook_deliveries = counter(
            &registry,
            "trunx_webhook_deliveries_total",
            "Webhook delivery attempts, by result.",
            &["result"],
        );
        let sip_dropped = counter(
            &registry,
            "trunx_sip_dropped_total",
            "SIP datagrams dropped, by reason.",
            &["reason"],
        );
        let rtp_dropped = counter(
            &registry,
            "trunx_rtp_dropped_total",
            "RTP and RTCP datagrams dropped, by reason.",
            &["reason"],
        );
        for reason in ["unrouted", "queue_full", "malformed"] {
            sip_dropped.with_label_values(&[reason]);
        }
        for reason in [
            "malformed",
            "payload_type",
            "stale",
            "dtmf",
            "foreign",
            "before_answer",
            "rtcp_malformed",
        ] {
            rtp_dropped.with_label_values(&[reason]);
        }
        // Series that exist from the start, so a scrape before the first call shows them.
        for dir_kind in [("rx", "late"), ("rx", "lost"), ("tx", "late")] {
            rtp_frames.with_label_values(&[dir_kind.0, dir_kind.1]);
        }
        trunk_up.set(1);
        Metrics {
            registry,
            calls,
            amd_results,
            amd_decision,
            amd_external_fallbacks,
            active_calls,
            rtp_frames,
            sip_responses,
            trunk_up,
            sms,
            webhook_queue,
            webhook_deliveries,
            sip_dropped,
            rtp_dropped,
        }
    }

    /// Adds what a call's RTP receiver dropped between two readings of its counters.
    pub fn rtp_drops(&self, before: crate::rtp::DropStats, after: crate::rtp::DropStats) {
        for (reason, b, a) in [
            ("malformed", before.malformed, after.malformed),
            (
                "payload_type",
                before.unknown_payload_type,
                after.unknown_payload_type,
            ),
            ("stale", before.stale, after.stale),
            ("dtmf", before.bad_dtmf, after.bad_dtmf),
            ("foreign", before.foreign, after.foreign),
        ] {
            if a > b {
                self.rtp_dropped.with_label_values(&[reason]).inc_by(a - b);
            }
        }
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Content-Type of [`Metrics::render`].
    pub fn content_type() -> &'static str {
        "text/plain; version=0.0.4; charset=utf-8"
    }

    /// Records one ended campaign call.
    pub fn call_ended(&self, ended: &CallMetrics) {
        self.calls.with_label_values(&[ended.outcome]).inc();
        if let Some(result) = ended.amd {
            self.amd_results.with_label_values(&[result]).inc();
            if let Some(ms) = ended.amd_ms {
                self.amd_decision
                    .with_label_values(&[result])
                    .observe(ms as f64 / 1000.0);
            }
        }
        match ended.sip_status {
            Some(code) => {
                self.sip_responses
                    .with_label_values(&[sip_code(code)])
                    .inc();
                self.trunk_up.set(1);
            }
            None if ended.no_response => self.trunk_up.set(0),
            None => {}
        }
        for (dir, kind, n) in [
            ("rx", "late", ended.rx_late),
            ("rx", "lost", ended.rx_lost),
            ("tx", "late", ended.tx_late),
        ] {
            if n > 0 {
                self.rtp_frames.with_label_values(&[dir, kind]).inc_by(n);
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// What one ended call adds to the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallMetrics {
    pub outcome: &'static str,
    pub amd: Option<&'static str>,
    pub amd_ms: Option<u64>,
    pub sip_status: Option<u16>,
    /// The INVITE got no response at all (Timer B): the trunk is not answering.
    pub no_response: bool,
    pub rx_late: u64,
    pub rx_lost: u64,
    pub tx_late: u64,
}

/// A SIP status as a label value without allocating: the codes trunx sees by name, any other
/// by its class.
fn sip_code(code: u16) -> &'static str {
    const KNOWN: &[(u16, &str)] = &[
        (200, "200"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (407, "407"),
        (408, "408"),
        (410, "410"),
        (480, "480"),
        (484, "484"),
        (486, "486"),
        (487, "487"),
        (488, "488"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
        (600, "600"),
        (603, "603"),
        (604, "604"),
    ];
    if let Some((_, s)) = KNOWN.iter().find(|(c, _)| *c == code) {
        return s;
    }
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        6 => "6xx",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_call_counts_its_outcome_amd_sip_code_and_frames() {
        let m = Metrics::new();
        m.call_ended(&CallMetrics {
            outcome: "voicemail",
            amd: Some("machine_end_beep"),
            amd_ms: Some(2_400),
            sip_status: Some(200),
            rx_lost: 3,
            ..CallMetrics::default()
        });
        m.call_ended(&CallMetrics {
            outcome: "failed",
            no_response: true,
            ..CallMetrics::default()
        });
        let text = m.render();
        assert!(
            text.contains("trunx_calls_total{outcome=\"voicemail\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("trunx_calls_total{outcome=\"failed\"} 1"),
            "{text}"
        );
        assert!(text.contains("trunx_amd_results_total{result=\"machine_end_beep\"} 1"));
        assert!(text.contains(
            "trunx_amd_decision_seconds_bucket{result=\"machine_end_beep\",le=\"2.5\"} 1"
        ));
        assert!(
            text.contains(
                "trunx_amd_decision_seconds_bucket{result=\"machine_end_beep\",le=\"2\"} 0"
            )
        );
        assert!(text.contains("trunx_sip_responses_total{code=\"200\"} 1"));
        assert!(text.contains("trunx_rtp_frames_total{direction=\"rx\",kind=\"lost\"} 3"));
        assert!(text.contains("trunx_trunk_up 0"), "{text}");
    }

    #[test]
    fn unknown_sip_codes_fall_into_their_class() {
        assert_eq!(sip_code(486), "486");
        assert_eq!(sip_code(499), "4xx");
        assert_eq!(sip_code(999), "other");
    }
}
