//! The dialer's book of each caller ID: its recent calls (for the hourly/daily caps) and last
//! calls (for the health score), rebuilt from the attempts at start-up, updated and stored
//! as calls end.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::campaign::Outcome;
use crate::campaign::callerid::{
    self, CallRecord, CallerIdConfig, DidView, HealthBand, NoCallerId,
};
use crate::campaign::scheduler::Pacing;
use crate::store::{AttemptResult, DidState, DidUpdate, PageRequest, Store, StoreError};

use crate::runtime::campaigns::windows::DAY_MS;

use super::{DialerStats, Ended};

/// What the dialer knows of one caller ID: its recent calls (for the caps) and its last calls
/// (for the health score). Rebuilt from the attempts table at start-up.
#[derive(Clone, Debug)]
pub(super) struct DidBook {
    pub(super) recent_calls_ms: Vec<i64>,
    pub(super) records: VecDeque<CallRecord>,
    pub(super) score: f64,
    pub(super) pulled: bool,
    pub(super) cooling_until_ms: Option<i64>,
    pub(super) last_used_at_ms: Option<i64>,
    pub(super) placed: u64,
    pub(super) answered: u64,
}

/// A DID with no history is healthy (a new number starts at full score).
impl Default for DidBook {
    fn default() -> DidBook {
        DidBook {
            recent_calls_ms: Vec::new(),
            records: VecDeque::new(),
            score: 1.0,
            pulled: false,
            cooling_until_ms: None,
            last_used_at_ms: None,
            placed: 0,
            answered: 0,
        }
    }
}

impl DidBook {
    pub(super) fn view<'a>(&'a self, number: &'a str) -> DidView<'a> {
        DidView {
            number,
            score: self.score,
            pulled: self.pulled,
            cooling_until_ms: self.cooling_until_ms,
            last_used_at_ms: self.last_used_at_ms,
            recent_calls_ms: &self.recent_calls_ms,
        }
    }

    pub(super) fn placed(&mut self, now_ms: i64) {
        self.recent_calls_ms.retain(|t| now_ms - t < DAY_MS);
        self.recent_calls_ms.push(now_ms);
        self.last_used_at_ms = Some(now_ms);
        self.placed += 1;
    }

    pub(super) fn ended(&mut self, record: CallRecord, cfg: &CallerIdConfig) {
        if record.answered {
            self.answered += 1;
        }
        self.records.push_back(record);
        while self.records.len() > cfg.health_window.max(1) {
            self.records.pop_front();
        }
        let records: Vec<CallRecord> = self.records.iter().copied().collect();
        self.score = callerid::health_score(&records, cfg);
        self.pulled = callerid::classify(self.score, cfg) == HealthBand::Pulled;
    }

    pub(super) fn update(&self, now_ms: i64) -> DidUpdate {
        DidUpdate {
            state: if self.pulled {
                DidState::Burned
            } else if self.cooling_until_ms.is_some_and(|t| t > now_ms) {
                DidState::Cooling
            } else {
                DidState::Active
            },
            health_score: (self.score * 100.0).clamp(0.0, 100.0),
            placed: self.placed,
            answered: self.answered,
            cooling_until_ms: self.cooling_until_ms.filter(|t| *t > now_ms),
            last_used_at_ms: self.last_used_at_ms,
        }
    }
}

/// The health record of a finished attempt.
pub(super) fn call_record(started_at_ms: i64, result: &AttemptResult) -> CallRecord {
    let answered = result.answered_ms.is_some();
    CallRecord {
        at_ms: started_at_ms,
        answered,
        duration_s: result.talk_ms.unwrap_or(0) as f64 / 1000.0,
        human: answered && result.outcome == Some(Outcome::HumanConnected),
        no_answer: result.outcome == Some(Outcome::NoAnswer),
        // 607 Unwanted and 608 Rejected are carriers' analytics labelling the call as spam.
        spam_flagged: matches!(result.sip_status, Some(607 | 608)),
    }
}

/// The registered caller IDs, and what the attempts of the last week say of each.
pub(super) async fn load_did_books(
    store: &Arc<dyn Store>,
    cfg: &CallerIdConfig,
    now: i64,
) -> Result<(Vec<String>, HashMap<String, DidBook>), StoreError> {
    let s = store.clone();
    let (dids, attempts) = tokio::task::spawn_blocking(move || {
        let mut dids = Vec::new();
        let mut page = PageRequest {
            limit: 500,
            after: None,
        };
        loop {
            let p = s.list_dids(None, &page)?;
            dids.extend(p.items);
            match p.next_cursor {
                Some(c) => page.after = Some(c),
                None => break,
            }
        }
        let attempts = s.attempts_since(now - 7 * DAY_MS)?;
        Ok::<_, StoreError>((dids, attempts))
    })
    .await
    .map_err(|e| StoreError::Backend(e.to_string()))??;
    let mut books: HashMap<String, DidBook> = HashMap::new();
    let mut registered = Vec::new();
    for d in dids {
        let b = DidBook {
            score: d.health_score / 100.0,
            pulled: d.state == DidState::Burned,
            cooling_until_ms: d.cooling_until_ms,
            last_used_at_ms: d.last_used_at_ms,
            placed: d.calls_placed,
            answered: d.calls_answered,
            ..DidBook::default()
        };
        if d.state != DidState::Burned {
            registered.push(d.number.clone());
        }
        books.insert(d.number, b);
    }
    for a in attempts {
        let b = books.entry(a.caller_id.clone()).or_default();
        if now - a.started_at_ms < DAY_MS {
            b.recent_calls_ms.push(a.started_at_ms);
        }
        if a.ended_at_ms.is_some() {
            b.records.push_back(call_record(a.started_at_ms, &a.result));
            while b.records.len() > cfg.health_window.max(1) {
                b.records.pop_front();
            }
        }
    }
    Ok((registered, books))
}

/// What to do when no caller ID can be used: wait until one is free, with the reason.
pub(super) fn no_caller_id_wait(why: NoCallerId, now: i64) -> (i64, &'static str) {
    match why {
        NoCallerId::AllResting { available_at_ms } => (
            available_at_ms.max(now + 1_000),
            "every caller ID is resting (hourly/daily cap reached)",
        ),
        NoCallerId::NoDids => (now + 60_000, "no caller ID configured"),
        NoCallerId::AllPulled => (
            now + 3_600_000,
            "every caller ID is pulled for poor health (review GET /dids)",
        ),
    }
}

/// A call ended: its pacing slot frees and its caller ID's health is updated and stored.
pub(super) fn call_ended(
    e: Ended,
    pacing: &mut Pacing,
    books: &mut HashMap<String, DidBook>,
    cfg: &CallerIdConfig,
    store: &Arc<dyn Store>,
    stats: &mut DialerStats,
) {
    pacing.call_ended(&e.campaign_id);
    if let Some((at, abandoned)) = e.live_answer {
        pacing.record_live_answer(&e.campaign_id, at, abandoned);
    }
    stats.calls_ended += 1;
    stats.frames_sent += e.frames_sent;
    stats.frames_late += e.frames_late;
    let book = books.entry(e.caller_id.clone()).or_default();
    book.ended(e.record, cfg);
    persist_did(store, &e.caller_id, book.update(e.record.at_ms));
}

/// Stores a caller ID's figures off the dialer task (a number not registered as a DID has
/// nothing to update).
pub(super) fn persist_did(store: &Arc<dyn Store>, number: &str, update: DidUpdate) {
    let s = store.clone();
    let n = number.to_string();
    tokio::task::spawn_blocking(move || match s.update_did(&n, &update) {
        Ok(()) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => tracing::warn!(error = %e, "cannot store caller ID health"),
    });
}
