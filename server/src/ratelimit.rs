//! The per-SE registration budget (`registrations_per_minute_per_se`), in memory: each
//! server instance counts its own registrations, so N instances behind a load balancer
//! allow up to N times the budget.
//!
//! A registration is charged only once its SE signature has verified (a forged R cannot
//! spend a victim's budget), and only when its registration counter is above the last one
//! this instance committed for that container: an old R sent again (a replay, which the
//! store refuses anyway) is free. A charged registration that the store does not commit
//! (replayed nonce, stale counter, database error) gives its charge back. A refusal by the
//! grant policy is committed, so it is charged like a grant.
//!
//! The budget is a GCRA (a token bucket without timers): `N` registrations at once, then
//! one every `60/N` seconds. The key is the certificate subject (EID || ICCID): one budget
//! per container.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::http::StatusCode;
use secure_channel::mutual::SUBJECT_LEN;

use crate::error::ApiError;

const MICROS_PER_MINUTE: u64 = 60_000_000;
const MICROS_PER_SEC: u64 = 1_000_000;

/// One container's budget.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// GCRA theoretical arrival time (µs since the epoch): the budget is full when it is
    /// at or before now.
    tat: u64,
    /// The highest registration counter this instance committed for the container.
    committed: u32,
    /// The current refusal episode has been audited (cleared by the next registration
    /// that passes).
    audited: bool,
}

/// A registration over the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Seconds until the next registration of this SE passes.
    pub retry_after_secs: u64,
    /// The first refusal of this episode (audit it; the next ones are only counted).
    pub first: bool,
    pub per_minute: u32,
}

impl Limited {
    /// The HTTP answer: 429 `rate_limited`.
    pub fn error(&self) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this secure element registered more than {} times in a minute; \
                 try again in {} s (registrations_per_minute_per_se)",
                self.per_minute, self.retry_after_secs
            ),
        )
    }
}

/// The registration budgets of all containers seen recently.
#[derive(Debug)]
pub struct RegistrationLimiter {
    /// 0: unlimited.
    per_minute: u32,
    /// µs between two registrations at the sustained rate.
    interval: u64,
    /// How far ahead of now the theoretical arrival time may run (the burst).
    tolerance: u64,
    budgets: Mutex<HashMap<[u8; SUBJECT_LEN], Budget>>,
    refused: AtomicU64,
}

impl RegistrationLimiter {
    /// `per_minute` registrations a minute per container; 0 for no limit.
    pub fn new(per_minute: u32) -> RegistrationLimiter {
        let interval = MICROS_PER_MINUTE / u64::from(per_minute.max(1));
        RegistrationLimiter {
            per_minute,
            interval,
            tolerance: interval * u64::from(per_minute.saturating_sub(1)),
            budgets: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Registrations refused with 429 since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Containers with a budget in memory.
    pub fn tracked(&self) -> usize {
        self.budgets.lock().map(|b| b.len()).unwrap_or(0)
    }

    /// Charges one registration of `subject` carrying `counter` at `now` (Unix seconds),
    /// or refuses it. Call only after the SE signature verified.
    pub fn check(
        &self,
        subject: &[u8; SUBJECT_LEN],
        counter: u32,
        now: u64,
    ) -> Result<(), Limited> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = now.saturating_mul(MICROS_PER_SEC);
        // A poisoned lock only means a panic elsewhere mid-update; budgets stay usable.
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let b = budgets.entry(*subject).or_insert(Budget {
            tat: 0,
            committed: 0,
            audited: false,
        });
        if b.committed != 0 && counter <= b.committed {
            return Ok(());
        }
        let tat = b.tat.max(now);
        let ahead = tat - now;
        if ahead > self.tolerance {
            self.refused.fetch_add(1, Ordering::Relaxed);
            let first = !b.audited;
            b.audited = true;
            return Err(Limited {
                retry_after_secs: (ahead - self.tolerance).div_ceil(MICROS_PER_SEC),
                first,
                per_minute: self.per_minute,
            });
        }
        b.tat = tat + self.interval;
        b.audited = false;
        Ok(())
    }

    /// After the store answered a registration [`check`](Self::check) let through:
    /// `committed` raises the container's last committed counter; otherwise a charged
    /// registration (counter above that) gets its charge back.
    pub fn settle(&self, subject: &[u8; SUBJECT_LEN], counter: u32, committed: bool) {
        if self.per_minute == 0 {
            return;
        }
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(b) = budgets.get_mut(subject) else {
            return;
        };
        if committed {
            b.committed = b.committed.max(counter);
        } else if counter > b.committed {
            b.tat = b.tat.saturating_sub(self.interval);
        }
    }

    /// Forgets the containers whose budget is full again at `now` (idle ones), so memory
    /// follows the recently active containers; returns how many were forgotten. A
    /// forgotten container's old R sent again is charged, then given back by
    /// [`settle`](Self::settle).
    pub fn sweep(&self, now: u64) -> usize {
        let now = now.saturating_mul(MICROS_PER_SEC);
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let before = budgets.len();
        budgets.retain(|_, b| b.tat > now);
        before - budgets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; SUBJECT_LEN] = [1; SUBJECT_LEN];
    const B: [u8; SUBJECT_LEN] = [2; SUBJECT_LEN];
    const T: u64 = 1_800_000_000;

    /// Checks and commits one registration, as the engine does.
    fn register(
        l: &RegistrationLimiter,
        subject: &[u8; SUBJECT_LEN],
        counter: u32,
        now: u64,
    ) -> Result<(), Limited> {
        l.check(subject, counter, now)?;
        l.settle(subject, counter, true);
        Ok(())
    }

    #[test]
    fn the_budget_allows_n_at_once_then_one_every_60_over_n_seconds() {
        let l = RegistrationLimiter::new(3);
        for c in 1..=3 {
            register(&l, &A, c, T).unwrap();
        }
        let refused = register(&l, &A, 4, T).unwrap_err();
        assert_eq!(refused.retry_after_secs, 20);
        assert!(refused.first);
        assert!(!l.check(&A, 4, T + 19).unwrap_err().first);
        register(&l, &B, 1, T).unwrap();
        register(&l, &A, 4, T + 20).unwrap();
        assert!(register(&l, &A, 5, T + 20).is_err());
        assert_eq!(l.refused(), 3);
    }

    #[test]
    fn old_counters_are_free_and_uncommitted_charges_come_back() {
        let l = RegistrationLimiter::new(2);
        register(&l, &A, 1, T).unwrap();
        register(&l, &A, 2, T).unwrap();
        // Replays of committed requests are not charged (the store refuses them).
        for _ in 0..10 {
            l.check(&A, 2, T).unwrap();
            l.settle(&A, 2, false);
            l.check(&A, 1, T).unwrap();
        }
        assert!(l.check(&A, 3, T).is_err());
        // After a minute the budget is full again; uncommitted charges are given back.
        for _ in 0..10 {
            l.check(&A, 3, T + 60).unwrap();
            l.settle(&A, 3, false);
        }
        register(&l, &A, 3, T + 60).unwrap();
        register(&l, &A, 4, T + 60).unwrap();
        assert!(l.check(&A, 5, T + 60).is_err());
    }

    #[test]
    fn zero_is_unlimited_and_idle_budgets_are_forgotten() {
        let l = RegistrationLimiter::new(0);
        for c in 1..1000 {
            register(&l, &A, c, T).unwrap();
        }
        assert_eq!(l.tracked(), 0);
        let l = RegistrationLimiter::new(60);
        register(&l, &A, 1, T).unwrap();
        register(&l, &B, 1, T + 10).unwrap();
        assert_eq!(l.sweep(T + 1), 1);
        assert_eq!(l.tracked(), 1);
        assert_eq!(l.sweep(T + 11), 1);
    }
}
