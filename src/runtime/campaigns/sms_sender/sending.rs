//! Choosing and submitting the next message: room in the window, the due campaign, the
//! prospect's window, a DID the pacer and the caller-ID strategy allow, the row written before
//! the submit, and what goes back to the queue. Part of the sender task.

use super::*;
use crate::runtime::campaigns::windows::window_wait;

impl Sender {
    /// Capacity for one more message in the session.
    pub(super) fn has_room(&self) -> bool {
        self.in_flight.len() < self.settings.smpp.session.window
    }

    /// Sends what is due now: waiting replies first, then campaigns in turn, one message each
    /// per round. Returns when something may next be due.
    pub(super) async fn send_due(&mut self, smpp: &SmppClient) -> i64 {
        let mut wake = wall_ms() + 250;
        while self.has_room() {
            let Some(req) = self.replies.pop_front() else {
                break;
            };
            let key = req.key;
            match smpp.try_submit(req.clone()) {
                Ok(()) => {
                    self.in_flight.insert(key, InFlight::Reply(req));
                }
                Err(req) => {
                    self.replies.push_front(req);
                    break;
                }
            }
        }
        loop {
            let mut progressed = false;
            let ids: Vec<String> = self.campaigns.keys().cloned().collect();
            for id in ids {
                if !self.has_room() {
                    return wake;
                }
                match self.send_one(&id, smpp).await {
                    Step::Progress => progressed = true,
                    Step::WaitUntil(t) => wake = wake.min(t),
                    Step::Idle => {}
                }
            }
            if !progressed {
                return wake;
            }
        }
    }

    /// One step of one campaign: claim and send one prospect, or say why not.
    pub(super) async fn send_one(&mut self, id: &str, smpp: &SmppClient) -> Step {
        let now = wall_ms();
        let batch = self.settings.claim_batch;
        let read_due = {
            let Some(e) = self.campaigns.get_mut(id) else {
                return Step::Idle;
            };
            if e.blocked.is_some() {
                return Step::Idle;
            }
            if now < e.wait_until_ms {
                return Step::WaitUntil(e.wait_until_ms);
            }
            // Pacing first: no claim while no DID may send.
            match e.pacer.next_slot(now) {
                None => return Step::Idle,
                Some(slot) if slot.at_ms > now => {
                    e.wait_until_ms = slot.at_ms;
                    return Step::WaitUntil(slot.at_ms);
                }
                Some(_) => {}
            }
            e.buffer.is_empty() && e.empty_since_ms.is_none_or(|t| now - t >= 1000)
        };
        if read_due {
            let cid = id.to_string();
            match blocking(&self.store, move |s| s.due_prospects(&cid, now, batch)).await {
                Ok(list) if list.is_empty() => {
                    e_mut(&mut self.campaigns, id).empty_since_ms = Some(now)
                }
                Ok(list) => {
                    e_mut(&mut self.campaigns, id).empty_since_ms = None;
                    for p in list {
                        let wait = window_wait(
                            &self.campaigns[id].window,
                            &p.phone,
                            &self.settings.rules,
                            now,
                        );
                        match wait {
                            None => e_mut(&mut self.campaigns, id).buffer.push_back(p),
                            Some((until, reason)) => self.defer(id, &p, until, &reason, now).await,
                        }
                    }
                }
                Err(err) => {
                    self.stats.store_errors += 1;
                    tracing::warn!(campaign = %id, error = %err, "cannot read due prospects");
                    e_mut(&mut self.campaigns, id).empty_since_ms = Some(now);
                }
            }
        }
        let Some(prospect) = e_mut(&mut self.campaigns, id).buffer.pop_front() else {
            return Step::Idle;
        };
        // Again just before the submit: the buffer may have waited past the window's end.
        let now = wall_ms();
        if let Some((until, reason)) = window_wait(
            &self.campaigns[id].window,
            &prospect.phone,
            &self.settings.rules,
            now,
        ) {
            self.defer(id, &prospect, until, &reason, now).await;
            return Step::Progress;
        }
        let scores = self.did_scores();
        let did = {
            let e = e_mut(&mut self.campaigns, id);
            let ready: Vec<Option<i64>> = e
                .dids
                .iter()
                .map(|d| {
                    let shared = self.shared_wait_ms.get(d).copied();
                    e.pacer.ready_at_ms(d).max(shared).filter(|t| *t > now)
                })
                .collect();
            let views: Vec<DidView> = e
                .dids
                .iter()
                .zip(&ready)
                .map(|(d, r)| DidView {
                    number: d,
                    score: scores.get(d.as_str()).copied().unwrap_or(1.0),
                    pulled: scores.get(d.as_str()).is_some_and(|s| {
                        callerid::classify(*s, &self.settings.caller_id)
                            == callerid::HealthBand::Pulled
                    }),
                    cooling_until_ms: *r,
                    last_used_at_ms: self.last_sent_ms.get(d).copied(),
                    recent_calls_ms: &[],
                })
                .collect();
            let strategy = callerid::strategy_from_json(&e.campaign.caller_id_strategy);
            match e
                .selector
                .select(strategy, &views, &prospect.phone, now, &mut self.rng)
            {
                Ok(choice) => choice.number,
                Err(NoCallerId::AllResting { available_at_ms }) => {
                    e.buffer.push_front(prospect);
                    e.wait_until_ms = available_at_ms;
                    return Step::WaitUntil(available_at_ms);
                }
                Err(why) => {
                    e.buffer.push_front(prospect);
                    e.wait_until_ms = now + 60_000;
                    tracing::warn!(campaign = %id, reason = %why, "no sender DID");
                    return Step::WaitUntil(now + 60_000);
                }
            }
        };
        let (cid, phone, d, parts) = (
            id.to_string(),
            prospect.phone.clone(),
            did.clone(),
            self.campaigns[id].parts,
        );
        let begun = blocking(&self.store, move |s| {
            s.begin_message(&cid, &phone, &d, parts, now)
        })
        .await;
        let message = match begun {
            Ok(m) => m,
            Err(StoreError::Suppressed { .. }) => {
                self.stats.suppressed_at_claim += 1;
                return Step::Progress;
            }
            // Other nodes texted from this DID (PostgreSQL): it rests until the store allows
            // it and the prospect waits for another choice.
            Err(StoreError::DidLimit { did, until_ms, .. }) => {
                self.shared_wait_ms.retain(|_, t| *t > now);
                self.shared_wait_ms.insert(did, until_ms);
                e_mut(&mut self.campaigns, id).buffer.push_front(prospect);
                return Step::Progress;
            }
            Err(err) => {
                // Paused, cancelled or taken meanwhile: not an error of the message.
                tracing::debug!(campaign = %id, error = %err, "prospect not texted");
                return Step::Progress;
            }
        };
        self.stats.messages_begun += 1;
        for c in self.campaigns.values_mut() {
            // Every campaign sharing the DID sees the send (UnknownDid for the others).
            let _ = c.pacer.record_send(&did, now);
        }
        self.recent_sends.push_back((did.clone(), now));
        self.last_sent_ms.insert(did.clone(), now);
        if self.last_did.len() >= LAST_DID_MAX {
            self.last_did.clear();
        }
        self.last_did.insert(message.phone.clone(), did.clone());
        let key = self.take_key();
        let req = SubmitRequest {
            key,
            source: did.clone(),
            destination: message.phone.clone(),
            text: self.campaigns[id].text.clone(),
            reference: self.take_reference(),
        };
        tracing::debug!(campaign = %id, phone = %self.phone_log(&message.phone), did = %did, message = %message.id, "submitting SMS");
        match smpp.try_submit(req) {
            Ok(()) => {
                self.in_flight.insert(
                    key,
                    InFlight::Campaign {
                        message_id: message.id,
                        campaign_id: id.to_string(),
                        phone: message.phone,
                    },
                );
            }
            Err(_) => {
                // Nothing left: back to the queue at once.
                self.requeue(&message.id).await;
            }
        }
        Step::Progress
    }

    pub(super) fn take_key(&mut self) -> u64 {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    pub(super) fn take_reference(&mut self) -> u8 {
        let r = self.next_reference;
        self.next_reference = self.next_reference.wrapping_add(1).max(1);
        r
    }

    pub(super) async fn defer(
        &mut self,
        id: &str,
        p: &Prospect,
        until: i64,
        reason: &str,
        now: i64,
    ) {
        self.stats.deferred += 1;
        let (cid, pid, why) = (id.to_string(), p.id.clone(), reason.to_string());
        if let Err(e) = blocking(&self.store, move |s| {
            s.defer_prospect(&cid, &pid, until, &why, now)
        })
        .await
        {
            self.stats.store_errors += 1;
            tracing::warn!(campaign = %id, error = %e, "cannot defer a prospect");
        }
    }

    pub(super) async fn requeue(&mut self, message_id: &str) {
        let id = message_id.to_string();
        let now = wall_ms();
        match blocking(&self.store, move |s| s.message_requeued(&id, now)).await {
            Ok(p) => {
                self.stats.requeued += 1;
                if let Some(c) = self.campaigns.get_mut(&p.campaign_id) {
                    c.empty_since_ms = None;
                }
            }
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::warn!(message = %message_id, error = %e, "cannot requeue a message");
            }
        }
    }

    /// A key came back unanswered (connection lost, never sent): requeue or resend.
    pub(super) async fn give_back(&mut self, key: u64) {
        match self.in_flight.remove(&key) {
            Some(InFlight::Campaign { message_id, .. }) => self.requeue(&message_id).await,
            Some(InFlight::Reply(req)) => self.queue_reply(req),
            None => {}
        }
    }

    pub(super) fn queue_reply(&mut self, req: SubmitRequest) {
        if self.replies.len() >= REPLY_QUEUE_MAX {
            tracing::warn!(phone = %self.phone_log(&req.destination), "reply queue full; reply dropped");
            return;
        }
        self.replies.push_back(req);
    }
}
