//! Compliance (issue 20): do-not-call lists in the store, through the API and against the
//! simulated carrier; the audit record of every attempt.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use trunx::amd::AmdConfig;
use trunx::api::{self, AppState, auth};
use trunx::audio::prompt::Prompt;
use trunx::campaign::scheduler::NodeLimits;
use trunx::campaign::{Action, CampaignStatus, Channel, ProspectStatus};
use trunx::runtime::campaigns::dialer::{self, DialerSettings, Messages};
use trunx::runtime::clock;
use trunx::runtime::fetch::{FetchConfig, VoicemailLibrary};
use trunx::store::{NewCampaign, PageRequest, SqliteStore, Store, StoreError};
use trunx::tools::carrier_sim::{CarrierSim, CarrierSimConfig};

const KEY: &str = "trunx_test_key";

fn voice(mode: Value) -> NewCampaign {
    NewCampaign {
        name: Some("c".into()),
        channel: Channel::Voice,
        mode,
        caller_ids: vec![],
        caller_id_strategy: json!({}),
        schedule: None,
        webhook_url: None,
    }
}

fn value(phone: &str) -> u64 {
    trunx::campaign::dnc::e164_value(phone).unwrap()
}

fn sorted(phones: &[&str]) -> Vec<u64> {
    let mut v: Vec<u64> = phones.iter().map(|p| value(p)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn all_prospects(
    s: &dyn Store,
    campaign: &str,
) -> HashMap<String, (ProspectStatus, Option<String>)> {
    s.list_prospects(
        campaign,
        &PageRequest {
            limit: 1000,
            after: None,
        },
    )
    .unwrap()
    .items
    .into_iter()
    .map(|p| (p.phone, (p.status, p.wait_reason)))
    .collect()
}

#[test]
fn dnc_lists_cancel_prospects_are_versioned_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::open(&path, 1).unwrap();
    assert!(s.dnc_lists().is_empty());
    let c = s.create_campaign(voice(json!({})), 1).unwrap();
    let phones: Vec<String> = (0..6).map(|i| format!("+1714555100{i}")).collect();
    // Imported before: the prospect is stored already cancelled (reason dnc).
    let first = s
        .import_dnc("national", &sorted(&["+17145551000"]), "test", 2)
        .unwrap();
    assert_eq!(
        (
            first.list.version,
            first.list.count,
            first.prospects_cancelled
        ),
        (1, 1, 0)
    );
    s.add_prospects(&c.id, &phones, 3).unwrap();
    // Imported after: queued prospects on the new version are cancelled at once.
    let second = s
        .import_dnc(
            "national",
            &sorted(&["+17145551000", "+17145551001"]),
            "test",
            4,
        )
        .unwrap();
    assert_eq!((second.list.version, second.prospects_cancelled), (2, 1));
    let internal = s
        .import_dnc("internal", &sorted(&["+17145551002"]), "test", 5)
        .unwrap();
    assert_eq!(internal.prospects_cancelled, 1);
    let ps = all_prospects(&s, &c.id);
    for (i, phone) in phones.iter().enumerate() {
        let (status, reason) = &ps[phone];
        if i < 3 {
            assert_eq!(
                (*status, reason.as_deref()),
                (ProspectStatus::Cancelled, Some("dnc")),
                "{phone}"
            );
        } else {
            assert_eq!(*status, ProspectStatus::Queued, "{phone}");
        }
    }
    let st = s.stats(&c.id).unwrap();
    assert_eq!((st.total, st.queued, st.cancelled), (6, 3, 3));
    assert!(st.invariants_hold());
    assert_eq!(s.dnc_hit("+17145551001").unwrap().version, 2);
    assert_eq!(s.dnc_hit("+17145551002").unwrap().name, "internal");
    assert!(s.dnc_hit("+17145551003").is_none());

    // The claim refuses a number listed after it was read as due (the last check before the
    // INVITE), and the attempt of a number not listed records every version checked.
    s.transition_campaign(&c.id, Action::Start, 6).unwrap();
    let due = s.due_prospects(&c.id, 7, 10).unwrap();
    assert_eq!(due.len(), 3);
    s.import_dnc(
        "internal",
        &sorted(&["+17145551002", "+17145551003"]),
        "test",
        8,
    )
    .unwrap();
    match s.begin_attempt(&c.id, &due[0].id, "+12125550100", 9) {
        Err(StoreError::Blocked { reason: "dnc", .. }) => {}
        // The import already cancelled it: the claim is refused either way.
        Err(StoreError::Prospect(_)) => {}
        other => panic!("{other:?}"),
    }
    let a = s
        .begin_attempt(&c.id, &due[1].id, "+12125550100", 10)
        .unwrap();
    let (_, audit) = s.attempt_audit(&a.id).unwrap();
    assert_eq!(audit["suppression"], "clear");
    let lists = audit["dnc"].as_array().unwrap();
    assert_eq!(lists.len(), 2, "{audit}");
    assert_eq!(lists[0]["name"], "internal");
    assert_eq!(lists[0]["version"], 2);
    assert_eq!(lists[0]["importedAtMs"], 8);
    assert_eq!(lists[1]["name"], "national");
    assert_eq!(lists[1]["version"], 2);
    drop(s);

    // Reopened: the versions in force are loaded back into memory.
    let s = SqliteStore::open(&path, 2).unwrap();
    let names: Vec<(String, u32, u64)> = s
        .dnc_lists()
        .into_iter()
        .map(|l| (l.name, l.version, l.count))
        .collect();
    assert_eq!(
        names,
        vec![("internal".into(), 2, 2), ("national".into(), 2, 2)]
    );
    assert!(s.dnc_hit("+17145551003").is_some());
    assert!(s.dnc_hit("+17145551004").is_none());
}

struct App {
    router: axum::Router,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("api.db"), 7).unwrap());
    store
        .create_api_key("test", &auth::hash_key(KEY), 0)
        .unwrap();
    let clock = Arc::new(AtomicI64::new(1_795_000_000_000));
    let state = AppState {
        store: store.clone(),
        now_ms: Arc::new(move || clock.fetch_add(1, Ordering::Relaxed)),
        max_cps: 10.0,
        log_phone_numbers: false,
        voicemail: Arc::new(VoicemailLibrary::new(FetchConfig::default(), store.clone()).unwrap()),
        max_abandon_rate: trunx::campaign::abandon::DEFAULT_MAX_RATE,
    };
    App {
        router: api::router(state),
        store,
        _dir: dir,
    }
}

impl App {
    async fn send(
        &self,
        method: &str,
        path: &str,
        ct: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value, Vec<u8>) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(body))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            bytes,
        )
    }
}

#[tokio::test]
async fn dnc_import_through_the_api_plain_and_gzip() {
    let app = app();
    let text = "# internal list\n7145551000\n+17145551001\n\n714-555-1002\nnot a number\n12345\n7145551000\n";
    let (s, v, _) = app
        .send(
            "POST",
            "/dnc/internal",
            "text/plain",
            text.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["list"], "internal");
    assert_eq!(v["version"], 1);
    assert_eq!(v["count"], 3);
    assert_eq!(v["lines"], 8);
    assert_eq!(v["ignored"], 2);
    assert_eq!(v["malformed"], 2);
    assert_eq!(v["malformedLines"], json!([6, 7]));
    assert_eq!(v["duplicates"], 1);
    assert!(app.store.dnc_hit("+17145551002").is_some());

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..1000 {
        writeln!(gz, "21255{:05}", i).unwrap();
    }
    let (s, v, _) = app
        .send(
            "POST",
            "/dnc/internal",
            "application/gzip",
            gz.finish().unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["version"].as_u64(), v["count"].as_u64()),
        (Some(2), Some(1000))
    );
    // Version 2 replaced version 1.
    assert!(app.store.dnc_hit("+17145551002").is_none());
    assert!(app.store.dnc_hit("+12125500999").is_some());

    let (s, v, _) = app.send("GET", "/dnc", "text/plain", vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"][0]["list"], "internal");
    assert_eq!(v["data"][0]["version"], 2);

    // Bad input: named, nothing changed.
    let (s, v, _) = app
        .send(
            "POST",
            "/dnc/bad%20name",
            "text/plain",
            b"7145551000\n".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "list");
    let (s, v, _) = app
        .send("POST", "/dnc/internal", "text/plain", b"junk\n\n".to_vec())
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "body");
    let (s, v, _) = app
        .send(
            "POST",
            "/dnc/internal",
            "application/gzip",
            vec![0x1f, 0x8b, 1, 2, 3],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(app.store.dnc_lists()[0].version, 2);
    // Without a key: refused.
    let req = Request::builder()
        .method("POST")
        .uri("/dnc/internal")
        .body(Body::from("7145551000\n"))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

struct NoMessages;

impl Messages for NoMessages {
    fn get(&self, _url: &str) -> Option<Arc<Prompt>> {
        None
    }
}

fn settings(sim: &CarrierSim, rtp: std::ops::RangeInclusive<u16>) -> DialerSettings {
    DialerSettings {
        trunk_uri: format!("sip:{}", sim.sip_addr()),
        sip_addr: "127.0.0.1:0".parse().unwrap(),
        rtp_ports: rtp,
        username: None,
        password: None,
        send_pai: false,
        ring_timeout: Duration::from_secs(15),
        limits: NodeLimits {
            max_concurrent: 50,
            max_cps: 20.0,
        },
        amd: AmdConfig::default(),
        model: None,
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

/// Runs the dialer until the campaign completes (or 120 s pass).
async fn run_to_completion(
    store: &Arc<dyn Store>,
    sim: &CarrierSim,
    campaign: &str,
    rtp: std::ops::RangeInclusive<u16>,
) -> CampaignStatus {
    let stop = CancellationToken::new();
    let run = tokio::spawn(dialer::run(
        settings(sim, rtp),
        store.clone(),
        Arc::new(NoMessages),
        stop.clone(),
    ));
    let started = clock::now();
    let mut status = CampaignStatus::Dialing;
    while started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        status = store.get_campaign(campaign).unwrap().status;
        if status == CampaignStatus::Completed {
            break;
        }
    }
    stop.cancel();
    run.await.unwrap().unwrap();
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dnc_prospect_is_never_dialled_by_the_simulated_carrier_count() {
    const PROSPECTS: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let phones = common::numbers_open_now(PROSPECTS, 20 * 60_000);
    let sim = CarrierSim::start(CarrierSimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        rtp_ports: 27_000..=27_099,
        seed: 11,
        ..CarrierSimConfig::default()
    })
    .await
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db"), 5).unwrap());
    let now = trunx::runtime::clock::wall_ms();
    let dids = vec!["+12125550100".to_string(), "+12125550101".to_string()];
    store.add_dids(&dids, now).unwrap();
    let c = store
        .create_campaign(
            NewCampaign {
                caller_ids: dids,
                ..voice(json!({"calls_per_second": 20}))
            },
            now,
        )
        .unwrap();
    // A third of the numbers are listed before they are added, a third after.
    let listed_before: Vec<&str> = phones.iter().step_by(3).map(String::as_str).collect();
    let listed_after: Vec<&str> = phones
        .iter()
        .skip(1)
        .step_by(3)
        .map(String::as_str)
        .collect();
    store
        .import_dnc("national", &sorted(&listed_before), "test", now)
        .unwrap();
    store.add_prospects(&c.id, &phones, now).unwrap();
    store
        .import_dnc("internal", &sorted(&listed_after), "test", now)
        .unwrap();
    store
        .transition_campaign(&c.id, Action::Start, now)
        .unwrap();
    let status = run_to_completion(&store, &sim, &c.id, 27_100..=27_999).await;
    let counters = store.stats(&c.id).unwrap();
    let sim_counters = sim.shutdown().await;
    assert_eq!(status, CampaignStatus::Completed, "{counters:?}");
    let allowed = PROSPECTS - listed_before.len() - listed_after.len();
    // The carrier's own count of new INVITEs: only the numbers on no list were called.
    assert_eq!(sim_counters.calls as usize, allowed, "{sim_counters:?}");
    let attempts = store
        .list_attempts(
            &c.id,
            &PageRequest {
                limit: 100,
                after: None,
            },
        )
        .unwrap()
        .items;
    assert_eq!(attempts.len(), allowed);
    for a in &attempts {
        assert!(
            !listed_before.contains(&a.phone.as_str()) && !listed_after.contains(&a.phone.as_str()),
            "{} was dialled",
            a.phone
        );
        let (_, audit) = store.attempt_audit(&a.id).unwrap();
        assert_eq!(audit["dnc"].as_array().unwrap().len(), 2, "{audit}");
        // The dialer's part: the window it checked and the caller ID against its caps.
        assert_eq!(audit["window"]["open"], true, "{audit}");
        assert_eq!(audit["callerId"]["number"], a.caller_id.as_str(), "{audit}");
        assert_eq!(audit["callerId"]["maxPerDay"], 100, "{audit}");
        assert!(
            audit["checkedAtMs"].as_i64().unwrap() <= a.started_at_ms,
            "{audit}"
        );
    }
    let ps = all_prospects(store.as_ref(), &c.id);
    for p in listed_before.iter().chain(&listed_after) {
        assert_eq!(
            ps[*p],
            (ProspectStatus::Cancelled, Some("dnc".to_string())),
            "{p}"
        );
    }
    assert_eq!(counters.cancelled as usize, PROSPECTS - allowed);
    assert_eq!(counters.completed as usize, allowed);
}

// --- Consent and the audit trail --------------------------------------------------------

impl App {
    async fn json(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self
            .send(
                method,
                path,
                "application/json",
                body.to_string().into_bytes(),
            )
            .await;
        (s, v)
    }
}

#[tokio::test]
async fn consent_is_validated_and_required_where_the_campaign_asks() {
    let app = app();
    let (s, c) = app
        .json(
            "POST",
            "/campaigns",
            json!({"name": "c", "mode": {"requireConsent": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    let consent =
        json!({"source": "web_form", "timestamp": "2026-11-01T12:00:00Z", "textId": "tcpa-v3"});
    // A bad consent names its field and adds nothing.
    for (bad, field) in [
        (
            json!({"+17145551001": {"source": "web_form", "timestamp": "soon", "textId": "t"}}),
            "consents[\"+17145551001\"].timestamp",
        ),
        (
            json!({"+17145559999": consent}),
            "consents[\"+17145559999\"]",
        ),
        (json!(["x"]), "consents"),
    ] {
        let (s, v) = app
            .json(
                "POST",
                &format!("/campaigns/{id}/prospects"),
                json!({"phones": ["+17145551001", "+17145551002"], "consents": bad}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    assert_eq!(app.store.stats(&id).unwrap().total, 0);
    let (s, v) = app
        .json(
            "POST",
            &format!("/campaigns/{id}/prospects"),
            json!({"phones": ["+17145551001", "+17145551002"], "consents": {"+17145551001": consent}}),
        )
        .await;
    assert_eq!((s, v["added"].as_u64()), (StatusCode::OK, Some(2)), "{v}");
    let ps = all_prospects(app.store.as_ref(), &id);
    assert_eq!(ps["+17145551001"].0, ProspectStatus::Queued);
    assert_eq!(
        ps["+17145551002"],
        (ProspectStatus::Cancelled, Some("no_consent".into()))
    );
    // The mode flag is validated too.
    let (s, v) = app
        .json(
            "POST",
            "/campaigns",
            json!({"mode": {"requireConsent": "yes"}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "mode.requireConsent");

    // The attempt's audit carries the consent, the store's checks and the dialer's record;
    // the campaign's audit exports as CSV.
    app.store
        .transition_campaign(&id, Action::Start, 1_795_000_000_500)
        .unwrap();
    let due = app.store.due_prospects(&id, 1_795_000_001_000, 10).unwrap();
    assert_eq!(due.len(), 1);
    let mut dialer_part = serde_json::Map::new();
    dialer_part.insert(
        "window".into(),
        json!({"window": "08:00-21:00", "zones": ["America/Los_Angeles"], "open": true}),
    );
    dialer_part.insert("stateRule".into(), Value::Null);
    dialer_part.insert("callerId".into(), json!({"number": "+12125550100", "callsLastHour": 3, "callsLast24h": 9, "maxPerHour": 30, "maxPerDay": 100}));
    dialer_part.insert(
        "abandonment".into(),
        json!({"rate30d": 0.01, "state": "normal"}),
    );
    let a = app
        .store
        .begin_attempt_audited(
            &id,
            &due[0].id,
            "+12125550100",
            dialer_part,
            1_795_000_001_000,
        )
        .unwrap();
    let (s, v, _) = app
        .send(
            "GET",
            &format!("/attempts/{}/audit", a.id),
            "text/plain",
            vec![],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["attempt"]["id"], a.id);
    assert_eq!(v["audit"]["consent"], consent);
    assert_eq!(v["audit"]["suppression"], "clear");
    assert_eq!(v["audit"]["dnc"], json!([]));
    assert_eq!(v["audit"]["callerId"]["callsLastHour"], 3);
    assert_eq!(v["audit"]["window"]["window"], "08:00-21:00");
    let (s, _, _) = app
        .send("GET", "/attempts/att_missing/audit", "text/plain", vec![])
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, body) = app
        .send(
            "GET",
            &format!("/campaigns/{id}/audit.csv"),
            "text/plain",
            vec![],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let csv = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert_eq!(
        lines[0],
        trunx::api::compliance::AUDIT_CSV_COLUMNS.join(",")
    );
    let cells: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        cells.len(),
        trunx::api::compliance::AUDIT_CSV_COLUMNS.len(),
        "{csv}"
    );
    let col = |name: &str| {
        cells[trunx::api::compliance::AUDIT_CSV_COLUMNS
            .iter()
            .position(|c| *c == name)
            .unwrap()]
    };
    assert_eq!(col("attemptId"), a.id);
    assert_eq!(col("phone"), "+17145551001");
    assert_eq!(col("window"), "08:00-21:00");
    assert_eq!(col("suppression"), "clear");
    assert_eq!(col("callerIdCallsLast24h"), "9");
    assert_eq!(col("abandonRate30d"), "0.01");
    assert_eq!(col("consentSource"), "web_form");
    assert_eq!(col("consentTextId"), "tcpa-v3");
    let (s, _, _) = app
        .send(
            "GET",
            "/campaigns/cmp_missing/audit.csv",
            "text/plain",
            vec![],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn get_campaign_shows_its_30_day_abandonment() {
    let app = app();
    let (_, c) = app
        .json(
            "POST",
            "/campaigns",
            json!({"mode": {"max_abandon_rate": 0.02}}),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_string();
    let phones: Vec<String> = (0..4).map(|i| format!("+1714555200{i}")).collect();
    app.store
        .add_prospects(&id, &phones, 1_795_000_000_100)
        .unwrap();
    app.store
        .transition_campaign(&id, Action::Start, 1_795_000_000_200)
        .unwrap();
    let due = app.store.due_prospects(&id, 1_795_000_000_300, 10).unwrap();
    for (i, p) in due.iter().enumerate() {
        let a = app
            .store
            .begin_attempt(&id, &p.id, "+12125550100", 1_795_000_000_400)
            .unwrap();
        let result = trunx::store::AttemptResult {
            outcome: Some(trunx::campaign::Outcome::HumanConnected),
            answered_ms: Some(3000),
            // One person of the four answered and was not connected in time; one call was
            // not answered by a person at all.
            abandoned: match i {
                0 => Some(true),
                3 => None,
                _ => Some(false),
            },
            ..Default::default()
        };
        let event = trunx::campaign::ProspectEvent::Finished {
            outcome: trunx::campaign::Outcome::HumanConnected,
            amd: None,
        };
        app.store
            .finish_attempt(&a.id, &result, &event, 1_795_000_000_500)
            .unwrap();
        let (_, audit) = app.store.attempt_audit(&a.id).unwrap();
        assert_eq!(
            audit.get("abandoned").and_then(Value::as_bool),
            result.abandoned
        );
    }
    let (s, v, _) = app
        .send("GET", &format!("/campaigns/{id}"), "text/plain", vec![])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["abandonment"]["liveAnswers30d"], 3, "{v}");
    assert_eq!(v["abandonment"]["abandoned30d"], 1);
    assert_eq!(v["abandonment"]["maxRate"], 0.02);
    let rate = v["abandonment"]["rate30d"].as_f64().unwrap();
    assert!((rate - 1.0 / 3.0).abs() < 1e-9);
    // The mode override is validated: never above the legal 3 %.
    let (s, v) = app
        .json(
            "POST",
            "/campaigns",
            json!({"mode": {"max_abandon_rate": 0.05}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "mode.max_abandon_rate");
}
