//! The maintenance task of `server run`: every `prune_interval`, one bounded pruning run of
//! the store ([`crate::store::Store::prune`]: expired connections with their keys, old
//! nonces, old audit entries), idle registration budgets forgotten, and an info summary of
//! what was refused without an audit row (malformed requests, rate-limited registrations).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::malformed::MalformedCounts;
use crate::service::Engine;
use crate::store::{PruneReport, StoreError};

/// What the previous run had already summarised.
#[derive(Debug, Default)]
pub struct Maintenance {
    malformed: MalformedCounts,
    rate_limited: u64,
}

impl Maintenance {
    pub fn new() -> Maintenance {
        Maintenance::default()
    }

    /// One run, synchronous (it writes the database): prune at the engine's clock, forget
    /// idle budgets, log what happened since the previous run.
    pub fn run_once(&mut self, engine: &Engine) -> Result<PruneReport, StoreError> {
        let now = engine.now();
        let pruned = engine.store().prune(now, &engine.config().prune);
        engine.registration_limiter().sweep(now);
        self.summarise(engine);
        let report = pruned?;
        let deleted = report.connections + report.nonces + report.audit;
        if deleted > 0 {
            tracing::info!(
                connections = report.connections,
                last_answers = report.last_answers,
                nonces = report.nonces,
                audit = report.audit,
                "pruned {} expired connection(s) with their keys, {} nonce(s) and {} audit entries{}",
                report.connections,
                report.nonces,
                report.audit,
                if report.more {
                    "; more may wait for the next runs (prune_max_rows)"
                } else {
                    ""
                }
            );
        }
        if !report.wal_truncated {
            tracing::warn!(
                "the WAL could not be truncated (another process reads the database, e.g. \
                 `server audit`); deleted keys may stay in server.db-wal until the next run"
            );
        }
        Ok(report)
    }

    fn summarise(&mut self, engine: &Engine) {
        let malformed = engine.malformed().snapshot();
        let new_malformed = malformed.since(&self.malformed);
        let rate_limited = engine.registration_limiter().refused();
        let new_limited = rate_limited.saturating_sub(self.rate_limited);
        if new_malformed.total() > 0 || new_limited > 0 {
            tracing::info!(
                malformed = new_malformed.total(),
                rate_limited = new_limited,
                "since the last summary: {} malformed request(s) ({new_malformed}), counted and \
                 not audited; {new_limited} registration(s) over the per-SE rate limit",
                new_malformed.total()
            );
        }
        self.malformed = malformed;
        self.rate_limited = rate_limited;
    }
}

/// Runs [`Maintenance::run_once`] every `every` (the first run at once), each on the
/// blocking pool, until the runtime stops. A failed run is logged; the next one retries.
pub async fn run(engine: Arc<Engine>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = Arc::new(Mutex::new(Maintenance::new()));
    loop {
        ticks.tick().await;
        let (engine, state) = (engine.clone(), state.clone());
        let run = tokio::task::spawn_blocking(move || {
            // A poisoned lock only loses the summary counters of a panicked run.
            let mut m = state.lock().unwrap_or_else(|p| p.into_inner());
            m.run_once(&engine)
        });
        match run.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("pruning failed (the next run retries): {e}"),
            Err(e) => tracing::error!("the pruning run failed (the next run retries): {e}"),
        }
    }
}
