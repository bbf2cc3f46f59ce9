//! The server instances behind each service: their health, which instance a request tries
//! (round-robin over the healthy ones, then one retry elsewhere), and the background
//! `GET /healthz` checks that take instances out and put them back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use crate::config::Config;

/// The health of one server instance, as [`Upstreams::snapshot`] reports it (for a
/// `upstream_up{service,url}` gauge, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStatus {
    pub service: String,
    /// The instance's base URL as configured (without trailing `/`).
    pub url: String,
    /// Requests go to healthy instances first.
    pub healthy: bool,
    /// Failed health checks and failed connections since its last 2xx `/healthz` or answer.
    pub consecutive_failures: u32,
}

/// One server instance of a service and its health. It starts healthy: a portal started
/// before its servers tries them at once, and the first failure takes them out.
#[derive(Debug)]
pub struct Instance {
    service: String,
    url: String,
    healthy: AtomicBool,
    failures: AtomicU32,
}

impl Instance {
    fn new(service: &str, url: &str) -> Instance {
        Instance {
            service: service.to_owned(),
            url: url.to_owned(),
            healthy: AtomicBool::new(true),
            failures: AtomicU32::new(0),
        }
    }

    /// The base URL (without trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn count_failure(&self) -> u32 {
        let prev = self
            .failures
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(1))
            })
            .unwrap_or(u32::MAX);
        prev.saturating_add(1)
    }

    fn mark_down(&self, failures: u32, reason: &str) {
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::info!(
                service = %self.service,
                url = %self.url,
                failures,
                "server instance taken out: {reason}"
            );
        }
    }

    fn mark_up(&self, how: &str) {
        self.failures.store(0, Ordering::Relaxed);
        if !self.healthy.swap(true, Ordering::Relaxed) {
            tracing::info!(service = %self.service, url = %self.url, "server instance back: {how}");
        }
    }

    /// A request could not reach the instance (nothing of an answer came back): out at once.
    pub(crate) fn request_failed(&self, reason: &str) {
        let n = self.count_failure();
        self.mark_down(n, reason);
    }

    /// The instance answered a request (not with a 5xx): it is reachable again.
    pub(crate) fn request_answered(&self) {
        self.mark_up("it answered a request");
    }

    fn check_done(&self, result: Result<(), String>, unhealthy_after: u32) {
        match result {
            Ok(()) => self.mark_up("GET /healthz answered 2xx"),
            Err(reason) => {
                let n = self.count_failure();
                if n >= unhealthy_after {
                    self.mark_down(
                        n,
                        &format!("GET /healthz failed {n} time(s) in a row ({reason})"),
                    );
                }
            }
        }
    }

    fn status(&self) -> UpstreamStatus {
        UpstreamStatus {
            service: self.service.clone(),
            url: self.url.clone(),
            healthy: self.is_healthy(),
            consecutive_failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug)]
struct Service {
    /// Round-robin position among the healthy instances.
    next: AtomicUsize,
    instances: Vec<Arc<Instance>>,
}

/// Every service's server instances with their health; shared by the relay and the health
/// checks. Reach it through [`crate::Relay::upstreams`].
#[derive(Debug)]
pub struct Upstreams {
    services: BTreeMap<String, Service>,
    unhealthy_after: u32,
}

impl Upstreams {
    /// Every configured instance, all healthy.
    pub fn new(config: &Config) -> Upstreams {
        let services = config
            .services
            .iter()
            .map(|(id, urls)| {
                let instances = urls
                    .iter()
                    .map(|u| Arc::new(Instance::new(id, u)))
                    .collect();
                (
                    id.clone(),
                    Service {
                        next: AtomicUsize::new(0),
                        instances,
                    },
                )
            })
            .collect();
        Upstreams {
            services,
            unhealthy_after: config.unhealthy_after.max(1),
        }
    }

    /// The health of every instance, by service then in configured order.
    pub fn snapshot(&self) -> Vec<UpstreamStatus> {
        self.services
            .values()
            .flat_map(|s| s.instances.iter().map(|i| i.status()))
            .collect()
    }

    /// The instances one request of `service` tries, in order (`None`: unknown service).
    /// See [`attempt_order`].
    pub fn attempts(&self, service: &str) -> Option<Vec<Arc<Instance>>> {
        let s = self.services.get(service)?;
        let healthy: Vec<bool> = s.instances.iter().map(|i| i.is_healthy()).collect();
        let turn = s.next.fetch_add(1, Ordering::Relaxed);
        Some(
            attempt_order(&healthy, turn)
                .into_iter()
                .map(|i| s.instances[i].clone())
                .collect(),
        )
    }

    /// Starts the health checks: every `interval`, `GET {base}/healthz` of every instance
    /// with `client` (whose timeout is the check's); 2xx puts an instance back, and
    /// `unhealthy_after` failures in a row take it out. The task ends once the last
    /// reference to these upstreams is gone (the relay has stopped), or when aborted.
    pub fn spawn_health_checks(
        self: &Arc<Self>,
        client: reqwest::Client,
        interval: Duration,
    ) -> JoinHandle<()> {
        let weak: Weak<Upstreams> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(upstreams) = weak.upgrade() else {
                    return;
                };
                let unhealthy_after = upstreams.unhealthy_after;
                let instances: Vec<Arc<Instance>> = upstreams
                    .services
                    .values()
                    .flat_map(|s| s.instances.iter().cloned())
                    .collect();
                drop(upstreams);
                let mut round = JoinSet::new();
                for instance in instances {
                    let client = client.clone();
                    round.spawn(async move {
                        let result = check(&client, instance.url()).await;
                        instance.check_done(result, unhealthy_after);
                    });
                }
                while round.join_next().await.is_some() {}
            }
        })
    }
}

/// One health check: `GET {base}/healthz` answered 2xx within the client's timeout.
async fn check(client: &reqwest::Client, base: &str) -> Result<(), String> {
    let resp = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map_err(|e| crate::relay::error_chain(&e))?;
    let status = resp.status();
    // Read the (small) body so the connection can be reused by the next round.
    let _ = resp.bytes().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

/// The order in which one request tries a service's instances, given which are healthy and
/// a turn counter: the healthy ones round-robin (the requests are alike and short, so
/// turns spread them evenly with no bookkeeping), then for the one retry after a connection
/// error the next healthy instance, or else the first other one. With none healthy, all of
/// them in configured order: an instance may be back before the checks notice.
pub fn attempt_order(healthy: &[bool], turn: usize) -> Vec<usize> {
    let up: Vec<usize> = (0..healthy.len()).filter(|&i| healthy[i]).collect();
    if up.is_empty() {
        return (0..healthy.len()).collect();
    }
    let first = up[turn % up.len()];
    let retry = if up.len() > 1 {
        Some(up[(turn + 1) % up.len()])
    } else {
        (0..healthy.len()).find(|&i| i != first)
    };
    std::iter::once(first).chain(retry).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_instances_take_turns_and_the_retry_goes_elsewhere() {
        assert_eq!(attempt_order(&[true, true, true], 0), [0, 1]);
        assert_eq!(attempt_order(&[true, true, true], 1), [1, 2]);
        assert_eq!(attempt_order(&[true, true, true], 2), [2, 0]);
        assert_eq!(attempt_order(&[true, false, true], 1), [2, 0]);
        assert_eq!(attempt_order(&[false, true, false], 5), [1, 0]);
        assert_eq!(attempt_order(&[true], 7), [0]);
    }

    #[test]
    fn with_none_healthy_every_instance_is_tried_in_order() {
        assert_eq!(attempt_order(&[false, false, false], 4), [0, 1, 2]);
        assert_eq!(attempt_order(&[false], 0), [0]);
    }

    #[test]
    fn failures_take_an_instance_out_and_an_answer_puts_it_back() {
        let i = Instance::new("demo", "http://127.0.0.1:1");
        i.check_done(Err("refused".into()), 2);
        assert!(i.is_healthy(), "one failed check of two allowed");
        i.check_done(Err("refused".into()), 2);
        assert!(!i.is_healthy());
        assert_eq!(i.status().consecutive_failures, 2);
        i.check_done(Ok(()), 2);
        assert!(i.is_healthy());
        assert_eq!(i.status().consecutive_failures, 0);
        i.request_failed("refused");
        assert!(!i.is_healthy(), "a failed connection takes it out at once");
        i.request_answered();
        assert!(i.is_healthy());
    }
}
