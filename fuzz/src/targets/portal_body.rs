//! The portal's routing of a request, without I/O: for any service id and body it either
//! relays the body unchanged to `<instance base>/v1/services/<segment>/<route>` of a
//! configured service, where the segment is the id percent-encoded (no `/`, `?`, `#`, `%` or space can
//! escape into the URL, and decoding gives the id back), or answers 404/413 with a JSON
//! error body.
//!
//! Input: byte 0 the route (even: register, odd: messages), byte 1 the service id length,
//! then the id (lossy UTF-8), then the body.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use portal::relay::upstream_path;
use portal::Config;

const LIMIT: usize = 512;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let mut services = BTreeMap::new();
        services.insert("demo".to_owned(), vec!["http://127.0.0.1:9".to_owned()]);
        services.insert(
            "echo-service".to_owned(),
            vec![
                "http://127.0.0.1:9/base".to_owned(),
                "http://127.0.0.1:10/base".to_owned(),
            ],
        );
        services.insert("a b/é?".to_owned(), vec!["http://[::1]:9".to_owned()]);
        Config {
            listen: "127.0.0.1:0".parse().expect("address"),
            max_body_bytes: LIMIT,
            request_timeout: Duration::from_secs(1),
            upstream_timeout: Duration::from_secs(1),
            health_interval: Duration::from_secs(1),
            health_timeout: Duration::from_secs(1),
            unhealthy_after: 2,
            services,
            tls: None,
            upstream_ca: None,
        }
    })
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// One input: panics exactly where the fuzz target reports a failure.
pub fn run(data: &[u8]) {
    let [route, n, rest @ ..] = data else { return };
    let route = if route & 1 == 0 {
        "register"
    } else {
        "messages"
    };
    let (id, body) = rest.split_at(usize::from(*n).min(rest.len()));
    let service = String::from_utf8_lossy(id);
    let config = config();
    match upstream_path(config, &service, route, body) {
        Ok(path) => {
            assert!(config.services.contains_key(service.as_ref()));
            assert!(body.len() <= LIMIT);
            let tail = path
                .strip_prefix("/v1/services/")
                .and_then(|t| t.strip_suffix(route))
                .and_then(|t| t.strip_suffix('/'))
                .unwrap_or_else(|| panic!("unexpected path {path}"));
            assert!(tail
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            assert_eq!(percent_decode(tail).as_deref(), Some(service.as_bytes()));
        }
        Err(e) => {
            let status = e.status.as_u16();
            assert!(status == 404 || status == 413, "status {status}");
            assert_eq!(
                status == 413,
                config.services.contains_key(service.as_ref())
            );
            let v: serde_json::Value = serde_json::from_slice(&e.body()).expect("JSON error body");
            assert_eq!(v["error"], e.code);
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
}
