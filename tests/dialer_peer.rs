//! The campaign dialer end to end against real peers: a campaign of 50 prospects dialled
//! through kamailio (digest auth, as a carrier's edge) to sipp (the far end streaming a
//! recorded voicemail greeting with its beep). Every call must be recorded as an attempt, the
//! message dropped after the beep, and the final stats must equal the per-attempt records.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use trunx::amd::AmdConfig;
use trunx::audio::prompt::{Prompt, PromptOptions};
use trunx::campaign::scheduler::NodeLimits;
use trunx::campaign::{Action, AmdResult, CampaignStatus, Channel, Outcome};
use trunx::runtime::amd::files::load_beep_model;
use trunx::runtime::campaigns::dialer::{self, DialerSettings, Messages};
use trunx::store::{NewCampaign, PageRequest, SqliteStore, Store};

struct Prepared(HashMap<String, Arc<Prompt>>);

impl Messages for Prepared {
    fn get(&self, url: &str) -> Option<Arc<Prompt>> {
        self.0.get(url).cloned()
    }
}

fn settings(trunk_port: u16, sip_port: u16, rtp: u16, credentials: bool) -> DialerSettings {
    DialerSettings {
        trunk_uri: format!("sip:127.0.0.1:{trunk_port}"),
        sip_addr: format!("127.0.0.1:{sip_port}").parse().unwrap(),
        rtp_ports: rtp..=rtp + 400,
        username: credentials.then(|| "dialer".to_string()),
        password: credentials.then(|| "s3cret".to_string()),
        send_pai: false,
        ring_timeout: Duration::from_secs(20),
        limits: NodeLimits {
            max_concurrent: 100,
            max_cps: 20.0,
        },
        amd: AmdConfig::default(),
        model: Some(load_beep_model(None, None).unwrap_or_else(|e| panic!("{e}"))),
        amd_engines: Default::default(),
        log_phone_numbers: false,
        agent: None,
        agent_defaults: trunx::runtime::call::agent_ws::AgentTarget::new(String::new()),
        claim_batch: 100,
        caller_id: Default::default(),
        amd_record: None,
        compliance: Default::default(),
    }
}

fn all_attempts(s: &dyn Store, campaign: &str) -> Vec<trunx::store::Attempt> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let p = s
            .list_attempts(campaign, &PageRequest { limit: 500, after })
            .unwrap();
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_through_kamailio_to_sipp_drops_every_voicemail_and_counts_exactly() {
    const PROSPECTS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let audio = ulaw_file(dir.path(), "0087-machine_beep_single.wav");
    let sipp = start_sipp_calls(
        dir.path(),
        "uas_stream.xml",
        Some(&audio),
        15870,
        16870,
        PROSPECTS,
    );
    let _kamailio = start_kamailio(dir.path(), 15880, 15870);
    kamailio_ready(15880).await;

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db"), 3).unwrap());
    let url = "https://media.example/vm.mp3";
    let prompt = Arc::new(
        Prompt::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures/prompts/voicemail-10s.mp3"),
            &PromptOptions::default(),
        )
        .unwrap(),
    );
    let messages = Arc::new(Prepared(HashMap::from([(url.to_string(), prompt)])));
    let c = store
        .create_campaign(
            NewCampaign {
                name: Some("peers".into()),
                channel: Channel::Voice,
                mode: json!({"voicemailAudioUrl": url, "calls_per_second": 5, "max_retries": 1, "retry_delay": "1h"}),
                caller_ids: vec!["+12125550100".into(), "+12125550101".into()],
                caller_id_strategy: json!({}),
                schedule: None,
                webhook_url: None,
            },
            0,
        )
        .unwrap();
    // Numbers inside their calling window for the whole run, plus a few outside it: those wait
    // with the reason and are not dialled.
    let phones = numbers_open_now(PROSPECTS, 30 * 60_000);
    let closed = numbers_closed_now(3, 30 * 60_000);
    store
        .add_prospects(&c.id, &[phones.clone(), closed.clone()].concat(), 0)
        .unwrap();
    store
        .transition_campaign(&c.id, Action::Start, trunx::runtime::clock::wall_ms())
        .unwrap();

    let stop = CancellationToken::new();
    let run = tokio::spawn(dialer::run(
        settings(15880, 15862, 18000, true),
        store.clone(),
        messages,
        stop.clone(),
    ));
    // Done when every callable prospect has an outcome; the others still wait.
    let mut done = false;
    for _ in 0..240 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let st = store.stats(&c.id).unwrap();
        if st.completed as usize == PROSPECTS && st.dialing == 0 {
            done = true;
            break;
        }
    }
    stop.cancel();
    let stats = run.await.unwrap().unwrap();
    let counters = store.stats(&c.id).unwrap();
    assert!(
        done,
        "the callable prospects did not finish: {counters:?} {stats:?}"
    );
    assert_eq!(
        store.get_campaign(&c.id).unwrap().status,
        CampaignStatus::Dialing
    );
    let waiting = store
        .list_prospects(
            &c.id,
            &PageRequest {
                limit: 100,
                after: None,
            },
        )
        .unwrap()
        .items
        .into_iter()
        .filter(|p| closed.contains(&p.phone))
        .collect::<Vec<_>>();
    assert_eq!(waiting.len(), 3);
    for p in &waiting {
        assert_eq!((p.attempts, p.status.as_str()), (0, "queued"), "{p:?}");
        assert!(
            p.next_attempt_at_ms.unwrap() > trunx::runtime::clock::wall_ms(),
            "{p:?}"
        );
        assert!(
            p.wait_reason
                .as_deref()
                .unwrap()
                .starts_with("outside 08:00-21:00 in "),
            "{p:?}"
        );
    }
    let attempts = all_attempts(store.as_ref(), &c.id);
    assert_eq!(attempts.len(), PROSPECTS, "{stats:?}");
    let prospects: HashSet<&str> = attempts.iter().map(|a| a.prospect_id.as_str()).collect();
    assert_eq!(prospects.len(), PROSPECTS, "a prospect was dialled twice");
    for a in &attempts {
        assert_eq!(a.result.outcome, Some(Outcome::Voicemail), "{a:?}");
        assert_eq!(
            a.result.amd_result,
            Some(AmdResult::MachineEndBeep),
            "{a:?}"
        );
        assert_eq!(a.result.machine_end.as_deref(), Some("beep"), "{a:?}");
        assert!(
            a.result.played_ms.unwrap_or(0) >= 9_000,
            "message cut: {a:?}"
        );
        assert!(a.caller_id.starts_with("+1212555010"), "{a:?}");
        assert!(phones.contains(&a.phone), "{a:?}");
    }
    // The counters equal the records.
    let voicemail = attempts
        .iter()
        .filter(|a| a.result.outcome == Some(Outcome::Voicemail))
        .count();
    assert_eq!(counters.voicemail as usize, voicemail);
    assert_eq!(counters.completed as usize, PROSPECTS);
    assert_eq!((counters.queued, counters.dialing), (3, 0));
    assert!(counters.invariants_hold());
    assert_eq!(stats.calls_placed as usize, PROSPECTS);
    assert!(
        completed(sipp).await,
        "sipp did not see every call end with BYE"
    );
}
