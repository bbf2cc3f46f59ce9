//! The portal in-process on an ephemeral loopback port, beside the server harness of
//! `server/tests/suite/common`.

use crate::common::{spawn_http, WAIT};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running in-process portal relaying `services`.
pub struct TestPortal {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

pub async fn start_portal(services: &[(&str, &str)]) -> TestPortal {
    let flags: Vec<String> = services.iter().map(|(s, u)| format!("{s}={u}")).collect();
    let mut config =
        portal::Config::from_parts(Default::default(), None, &flags).expect("portal config");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    let relay = portal::Relay::new(config).expect("relay");
    let (url, stop, task) = spawn_http(portal::router(relay), WAIT, |l, r, t, s| {
        Box::pin(async move {
            let _ = portal::serve(l, r, t, s).await;
        })
    })
    .await;
    TestPortal {
        url,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestPortal {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, t).await;
        }
    }
}
