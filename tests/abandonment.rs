//! The abandonment budget (issue 20) over a simulated month: three campaigns through the real
//! pacer on virtual time keep their rolling 30-day abandonment within 3 %, where the same
//! population without the budget is abandoned at 8-9 %.

use trunx::campaign::scheduler::NodeLimits;

// --- The abandonment budget over a simulated month --------------------------------------

/// One campaign of the simulated month: its speed and how many agents take its people.
struct SimCampaign {
    id: &'static str,
    cps: f64,
    agents: usize,
}

/// What a month did to one campaign: live answers and abandoned calls per day.
struct MonthRun {
    answered: Vec<u64>,
    abandoned: Vec<u64>,
}

impl MonthRun {
    /// abandoned / answered over the 30 days ending with day `d` (inclusive).
    fn rolling_rate(&self, d: usize) -> f64 {
        let from = (d + 1).saturating_sub(30);
        let a: u64 = self.answered[from..=d].iter().sum();
        let b: u64 = self.abandoned[from..=d].iter().sum();
        if a == 0 { 0.0 } else { b as f64 / a as f64 }
    }
}

const DAYS: usize = 30;
/// Calls ring this long; 30 % are answered by a person, who talks this long with an agent.
const RING_S: i64 = 15;
const HUMAN_SHARE: f64 = 0.3;
const TALK_S: i64 = 120;

/// A month on virtual time (1 s ticks) of three campaigns through the real pacer
/// (`campaign::scheduler::Pacing` with its abandonment budget). Every person who answers
/// needs one of the campaign's agents at once; when all are busy (the agent is slow to come)
/// the person is abandoned (and gets the identification message). At full speed the agents
/// are sized so about 10 % of people are abandoned (Erlang B); slower dialling abandons fewer.
/// `max_abandon_rate: None` runs without the budget (the control).
fn simulate_month(max_abandon_rate: Option<f64>) -> Vec<MonthRun> {
    use rand::{Rng, SeedableRng};
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, VecDeque};
    use trunx::campaign::scheduler::Pacing;
    let campaigns = [
        SimCampaign {
            id: "a",
            cps: 1.0,
            agents: 37,
        },
        SimCampaign {
            id: "b",
            cps: 0.5,
            agents: 20,
        },
        SimCampaign {
            id: "c",
            cps: 2.0,
            agents: 70,
        },
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(30);
    let mut pacing = Pacing::new(
        NodeLimits {
            max_concurrent: 100_000,
            max_cps: 1_000.0,
        },
        0,
    );
    for c in &campaigns {
        pacing.upsert_campaign(c.id, c.cps, 0);
        pacing.set_max_abandon_rate(c.id, max_abandon_rate);
    }
    // (time ms, campaign, 0 = ringing ends / 1 = call ends)
    let mut events: BinaryHeap<Reverse<(i64, usize, u8)>> = BinaryHeap::new();
    let mut busy_until: Vec<VecDeque<i64>> = vec![VecDeque::new(); campaigns.len()];
    let mut runs: Vec<MonthRun> = campaigns
        .iter()
        .map(|_| MonthRun {
            answered: vec![0; DAYS],
            abandoned: vec![0; DAYS],
        })
        .collect();
    let end_ms = DAYS as i64 * 86_400_000;
    let mut now = 0i64;
    while now < end_ms {
        while let Some(Reverse((t, ci, kind))) = events.peek().copied() {
            if t > now {
                break;
            }
            events.pop();
            let c = &campaigns[ci];
            if kind == 1 {
                pacing.call_ended(c.id);
                continue;
            }
            if !rng.random_bool(HUMAN_SHARE) {
                events.push(Reverse((t + 10_000, ci, 1)));
                continue;
            }
            let busy = &mut busy_until[ci];
            while busy.front().is_some_and(|b| *b <= t) {
                busy.pop_front();
            }
            let abandoned = busy.len() >= c.agents;
            if abandoned {
                // The identification message, then hang up.
                events.push(Reverse((t + 5_000, ci, 1)));
            } else {
                busy.push_back(t + TALK_S * 1000);
                events.push(Reverse((t + TALK_S * 1000, ci, 1)));
            }
            let day = (t / 86_400_000) as usize;
            if day < DAYS {
                runs[ci].answered[day] += 1;
                runs[ci].abandoned[day] += u64::from(abandoned);
            }
            pacing.record_live_answer(c.id, t, abandoned);
        }
        for (ci, c) in campaigns.iter().enumerate() {
            while pacing.try_start(c.id, now).is_ok() {
                events.push(Reverse((now + RING_S * 1000, ci, 0)));
            }
        }
        now += 1000;
    }
    runs
}

#[test]
fn a_simulated_month_keeps_every_campaign_within_its_abandonment_budget() {
    // The control: without the budget this population is abandoned well over 3 %.
    let control = simulate_month(None);
    for (i, run) in control.iter().enumerate() {
        let rate = run.rolling_rate(DAYS - 1);
        assert!(
            rate > 0.05,
            "campaign {i}: the control abandons only {rate:.4}"
        );
    }
    let budgeted = simulate_month(Some(0.03));
    for (i, run) in budgeted.iter().enumerate() {
        for d in 0..DAYS {
            let rate = run.rolling_rate(d);
            assert!(
                rate <= 0.03,
                "campaign {i}: rolling 30-day abandonment {rate:.4} on day {d} (answered {:?}, abandoned {:?})",
                &run.answered[..=d],
                &run.abandoned[..=d]
            );
        }
        // It kept dialling: at least half the control's live answers.
        let answered: u64 = run.answered.iter().sum();
        let control_answered: u64 = control[i].answered.iter().sum();
        eprintln!(
            "campaign {i}: {answered} live answers, rolling rate {:.4} (control {control_answered}, {:.4})",
            run.rolling_rate(DAYS - 1),
            control[i].rolling_rate(DAYS - 1)
        );
        assert!(
            answered * 2 > control_answered,
            "campaign {i}: {answered} of {control_answered}"
        );
    }
}
