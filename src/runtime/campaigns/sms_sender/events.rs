//! What the SMPP session reports, turned into store writes: acceptances, refusals, receipts
//! (buffered when they overtake their acceptance), lost connections, inbound STOP/HELP, the
//! receipt timeout, and each DID's SMS health. Part of the sender task; owns no state of its own.

use super::*;

impl Sender {
    /// `sent` messages whose receipt is overdue fail with `no_receipt`: the carrier took them
    /// but never said whether they arrived, and the campaign must still be able to complete.
    pub(super) async fn expire_receipts(&mut self, now: i64) {
        let timeout = self.settings.receipt_timeout.as_millis() as i64;
        let live = match blocking(&self.store, |s| s.live_messages()).await {
            Ok(l) => l,
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::warn!(error = %e, "cannot read live messages for the receipt timeout");
                return;
            }
        };
        for m in live {
            let overdue = m.status == crate::store::MessageStatus::Sent
                && m.submitted_at_ms.unwrap_or(m.created_at_ms) + timeout <= now;
            if !overdue {
                continue;
            }
            let id = m.id.clone();
            match blocking(&self.store, move |s| {
                s.message_failed(&id, "no_receipt", now)
            })
            .await
            {
                Ok(failed) => {
                    self.record_outcome(&failed, now);
                    self.stats.receipts_timed_out += 1;
                    tracing::info!(message = %m.id, to = %self.phone_log(&m.phone),
                        "no delivery receipt in time: failed as no_receipt");
                }
                Err(e) => {
                    self.stats.store_errors += 1;
                    tracing::warn!(message = %m.id, error = %e, "cannot time out a receipt");
                }
            }
        }
    }

    /// The SMS health score of every DID with final messages (the others count as new).
    pub(super) fn did_scores(&self) -> HashMap<String, f64> {
        self.did_outcomes
            .iter()
            .map(|(did, records)| {
                let since = records.front().map(|r| r.at_ms).unwrap_or(i64::MAX);
                let opt_outs = self
                    .did_opt_outs
                    .get(did)
                    .map(|t| t.iter().filter(|at| **at >= since).count())
                    .unwrap_or(0);
                let records: Vec<callerid::SmsRecord> = records.iter().copied().collect();
                (
                    did.clone(),
                    callerid::sms_health_score(&records, opt_outs, &self.settings.caller_id),
                )
            })
            .collect()
    }

    /// A message reached its final status: it counts in its DID's health.
    pub(super) fn record_outcome(&mut self, m: &crate::store::Message, now: i64) {
        crate::runtime::metrics::global()
            .sms
            .with_label_values(&[m.status.as_str()])
            .inc();
        let window = self.settings.caller_id.health_window.max(1);
        let records = self.did_outcomes.entry(m.did.clone()).or_default();
        if records.len() >= window {
            records.pop_front();
        }
        records.push_back(callerid::SmsRecord {
            at_ms: now,
            delivered: m.status == crate::store::MessageStatus::Delivered,
        });
    }

    /// Records what one event means. Also used for the events that arrive after the stop
    /// (an opt-out the SMSC already had acknowledged must not be lost).
    pub(super) async fn handle_event(&mut self, e: SmppEvent) {
        let now = wall_ms();
        match e {
            SmppEvent::Connected => tracing::debug!("SMPP transport connected"),
            SmppEvent::ConnectFailed { .. } => {}
            SmppEvent::Unsent { keys } => {
                for k in keys {
                    self.give_back(k).await;
                }
            }
            SmppEvent::Refused { key, reason } => match self.in_flight.remove(&key) {
                Some(InFlight::Campaign {
                    message_id, phone, ..
                }) => {
                    tracing::warn!(phone = %self.phone_log(&phone), %reason, "message refused before sending");
                    self.fail(&message_id, "refused").await;
                }
                Some(InFlight::Reply(req)) => {
                    tracing::warn!(phone = %self.phone_log(&req.destination), %reason, "reply refused before sending");
                }
                None => {}
            },
            SmppEvent::Session(ev) => match ev {
                SessionEvent::Bound { .. } => self.bound = true,
                SessionEvent::BindRejected { .. } => self.bound = false,
                SessionEvent::PartAccepted { .. } => {}
                SessionEvent::Accepted { key, message_ids } => {
                    self.accepted(key, message_ids, now).await
                }
                SessionEvent::Failed { key, status, name } => match self.in_flight.remove(&key) {
                    Some(InFlight::Campaign { message_id, .. }) => {
                        self.stats.failed_on_submit += 1;
                        let code = if name == "UNKNOWN" {
                            format!("0x{:08X}", status.0)
                        } else {
                            name.to_string()
                        };
                        self.fail(&message_id, &code).await;
                    }
                    Some(InFlight::Reply(req)) => {
                        tracing::warn!(phone = %self.phone_log(&req.destination), status = %name, "reply refused by the SMSC");
                    }
                    None => {}
                },
                SessionEvent::Throttled { .. } => self.stats.throttled += 1,
                SessionEvent::Receipt {
                    message_id,
                    outcome,
                    error_code,
                    ..
                } => self.receipt(message_id, outcome, error_code, now).await,
                SessionEvent::Inbound {
                    source,
                    destination,
                    text: _,
                    keyword,
                } => self.inbound(&source, &destination, keyword, now).await,
                SessionEvent::ConnectionLost {
                    unacknowledged,
                    reason,
                } => {
                    self.bound = false;
                    self.stats.connections_lost += 1;
                    tracing::info!(
                        ?reason,
                        unanswered = unacknowledged.len(),
                        "SMPP connection lost; unanswered messages go back to the queue"
                    );
                    for k in unacknowledged {
                        self.give_back(k).await;
                    }
                }
            },
        }
    }

    pub(super) async fn fail(&mut self, message_id: &str, code: &str) {
        let (id, code, now) = (message_id.to_string(), code.to_string(), wall_ms());
        match blocking(&self.store, move |s| s.message_failed(&id, &code, now)).await {
            Ok(failed) => self.record_outcome(&failed, now),
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::warn!(message = %message_id, error = %e, "cannot record a failed message");
            }
        }
    }

    pub(super) async fn accepted(&mut self, key: u64, ids: Vec<String>, now: i64) {
        match self.in_flight.remove(&key) {
            Some(InFlight::Campaign { message_id, .. }) => {
                self.stats.accepted += 1;
                let (id, carrier_ids) = (message_id.clone(), ids.clone());
                if let Err(e) = blocking(&self.store, move |s| {
                    s.message_accepted(&id, &carrier_ids, now)
                })
                .await
                {
                    self.stats.store_errors += 1;
                    tracing::warn!(message = %message_id, error = %e, "cannot record an accepted message");
                    return;
                }
                crate::runtime::metrics::global()
                    .sms
                    .with_label_values(&["sent"])
                    .inc();
                // Receipts that came before this acceptance (an early part's).
                for carrier_id in ids {
                    if let Some(r) = self.receipts.remove(&carrier_id) {
                        self.apply_receipt(carrier_id, r.delivered, r.error_code, now)
                            .await;
                    }
                }
            }
            Some(InFlight::Reply(req)) => {
                self.stats.replies_sent += 1;
                tracing::info!(phone = %self.phone_log(&req.destination), "reply sent");
                if self.reply_ids.len() >= RECEIPT_BUFFER_MAX {
                    self.reply_ids.clear();
                }
                self.reply_ids.extend(ids);
            }
            None => {}
        }
    }

    pub(super) async fn receipt(
        &mut self,
        carrier_id: String,
        outcome: ReceiptOutcome,
        error_code: Option<String>,
        now: i64,
    ) {
        self.stats.receipts += 1;
        if self.reply_ids.remove(&carrier_id) {
            return;
        }
        let delivered = match outcome {
            ReceiptOutcome::Delivered => true,
            ReceiptOutcome::Failed => false,
            ReceiptOutcome::Pending => return,
        };
        self.apply_receipt(carrier_id, delivered, error_code, now)
            .await;
    }

    pub(super) async fn apply_receipt(
        &mut self,
        carrier_id: String,
        delivered: bool,
        error_code: Option<String>,
        now: i64,
    ) {
        let (id, err) = (carrier_id.clone(), error_code.clone());
        match blocking(&self.store, move |s| {
            s.message_receipt(&id, delivered, err.as_deref(), now)
        })
        .await
        {
            Ok(crate::store::ReceiptOutcome::Finished(m)) => self.record_outcome(&m, now),
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                // Its message is not recorded as accepted yet (or it is not ours): keep it a
                // while, bounded.
                self.receipts
                    .retain(|_, r| now - r.at_ms < RECEIPT_BUFFER_MS);
                if self.receipts.len() >= RECEIPT_BUFFER_MAX {
                    self.stats.receipts_unmatched += 1;
                    return;
                }
                self.stats.receipts_buffered += 1;
                self.receipts.insert(
                    carrier_id,
                    BufferedReceipt {
                        delivered,
                        error_code,
                        at_ms: now,
                    },
                );
            }
            Err(e) => {
                self.stats.store_errors += 1;
                tracing::warn!(error = %e, "cannot record a receipt");
            }
        }
    }

    pub(super) async fn inbound(
        &mut self,
        source: &str,
        destination: &str,
        keyword: Keyword,
        now: i64,
    ) {
        let Some(phone) = inbound::sender_e164(source) else {
            tracing::info!(?keyword, "inbound SMS from a non-numeric sender ignored");
            return;
        };
        let shown = self.phone_log(&phone);
        let mut newly_suppressed = false;
        if keyword == Keyword::OptOut {
            self.stats.opt_outs += 1;
            // An opt-out speaks against the DID that texted this number last.
            if let Some(did) = self.last_did.get(&phone) {
                let times = self.did_opt_outs.entry(did.clone()).or_default();
                if times.len() >= self.settings.caller_id.health_window.max(1) {
                    times.pop_front();
                }
                times.push_back(now);
            }
            let p = phone.clone();
            match blocking(&self.store, move |s| {
                s.suppress(&[p], "opt_out_sms", "smpp", now)
            })
            .await
            {
                Ok(done) => {
                    newly_suppressed = done.added > 0;
                    tracing::info!(phone = %shown, prospects_cancelled = done.prospects_cancelled, new = newly_suppressed, "opt-out by SMS: number suppressed");
                }
                Err(e) => {
                    // Not acknowledged in the store: no confirmation either (it would be false).
                    self.stats.store_errors += 1;
                    tracing::error!(phone = %shown, error = %e, "cannot suppress a number that opted out");
                    return;
                }
            }
        } else {
            tracing::info!(phone = %shown, ?keyword, "inbound SMS");
        }
        let Some(text) = inbound::reply_text(keyword, newly_suppressed, &self.settings.replies)
            .map(str::to_string)
        else {
            return;
        };
        let mut any_did = self
            .campaigns
            .values()
            .flat_map(|c| c.dids.first())
            .chain(self.registered.first())
            .next()
            .cloned();
        if any_did.is_none() {
            // DIDs registered since the last refresh count too.
            let first = blocking(&self.store, |s| {
                s.list_dids(
                    None,
                    &PageRequest {
                        limit: 100,
                        after: None,
                    },
                )
            })
            .await;
            any_did = first.ok().and_then(|p| {
                p.items
                    .into_iter()
                    .find(|d| d.state != DidState::Burned)
                    .map(|d| d.number)
            });
        }
        let Some(from) = inbound::reply_source(
            self.last_did.get(&phone).map(String::as_str),
            destination,
            any_did.as_deref(),
        ) else {
            tracing::warn!(phone = %shown, "no sender number for the reply; not sent");
            return;
        };
        let key = self.take_key();
        let req = SubmitRequest {
            key,
            source: from,
            destination: phone,
            text,
            reference: self.take_reference(),
        };
        self.queue_reply(req);
    }
}
