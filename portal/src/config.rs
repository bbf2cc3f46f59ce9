//! The portal's configuration: service id -> server base URL, limits, from TOML and flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use http_serve::config::invalid;
pub use http_serve::ConfigError;

/// Default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";
/// Same limit as the server's default: the portal never forwards what the server refuses.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;
/// Time a terminal has to send its request (body included) and get the answer.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 15_000;
/// Time the server has to answer a forwarded request.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 10_000;

/// `portal.toml` as written by a human.
///
/// ```toml
/// listen = "127.0.0.1:8081"
/// max_body_bytes = 16384
/// request_timeout_ms = 15000
/// upstream_timeout_ms = 10000
/// [services]
/// demo = "http://127.0.0.1:8080"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub upstream_timeout_ms: Option<u64>,
    #[serde(default)]
    pub services: BTreeMap<String, String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub upstream_timeout: Duration,
    /// Service id -> server base URL without trailing `/` (`http://host:port[/prefix]`).
    pub services: BTreeMap<String, String>,
}

impl Config {
    /// Reads an optional file, then applies `--listen` and `--service ID=URL` flags (which
    /// add to or replace the file's services).
    pub fn load(
        path: Option<&Path>,
        listen: Option<SocketAddr>,
        services: &[String],
    ) -> Result<Config, ConfigError> {
        let file = match path {
            None => ConfigFile::default(),
            Some(path) => http_serve::config::read_toml(path, "portal")?,
        };
        Config::from_parts(file, listen, services)
    }

    pub fn from_parts(
        file: ConfigFile,
        listen: Option<SocketAddr>,
        flags: &[String],
    ) -> Result<Config, ConfigError> {
        let listen = match (listen, file.listen) {
            (Some(a), _) => a,
            (None, Some(t)) => t
                .parse()
                .map_err(|e| invalid("listen", format!("`{t}` is not IP:PORT ({e})")))?,
            (None, None) => DEFAULT_LISTEN
                .parse()
                .map_err(|e| invalid("listen", format!("{e}")))?,
        };
        let mut services = BTreeMap::new();
        for (id, url) in file.services {
            services.insert(id, url);
        }
        for flag in flags {
            let (id, url) = flag
                .split_once('=')
                .ok_or_else(|| invalid("--service", format!("`{flag}` is not ID=URL")))?;
            services.insert(id.to_owned(), url.to_owned());
        }
        if services.is_empty() {
            return Err(invalid(
                "services",
                "no service is configured; give --service ID=URL or a [services] table in --config",
            ));
        }
        let mut checked = BTreeMap::new();
        for (id, url) in services {
            check_service_id(&id).map_err(|r| invalid(format!("service `{id}`"), r))?;
            let url = check_base_url(&url).map_err(|r| invalid(format!("service `{id}`"), r))?;
            checked.insert(id, url);
        }
        let ms = |v: Option<u64>, d: u64, what: &str| -> Result<Duration, ConfigError> {
            match v.unwrap_or(d) {
                0 => Err(invalid(what, "must be at least 1")),
                n => Ok(Duration::from_millis(n)),
            }
        };
        Ok(Config {
            listen,
            max_body_bytes: file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            request_timeout: ms(
                file.request_timeout_ms,
                DEFAULT_REQUEST_TIMEOUT_MS,
                "request_timeout_ms",
            )?,
            upstream_timeout: ms(
                file.upstream_timeout_ms,
                DEFAULT_UPSTREAM_TIMEOUT_MS,
                "upstream_timeout_ms",
            )?,
            services: checked,
        })
    }
}

/// A service id as the API carries it: 1..32 bytes of UTF-8, no control characters, no `/`.
pub fn check_service_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 32 {
        return Err("a service id has 1 to 32 bytes of UTF-8".into());
    }
    if id.chars().any(|c| c.is_control() || c == '/') {
        return Err("a service id has no control character or `/`".into());
    }
    Ok(())
}

/// `http://host:port[/prefix]`: plain HTTP only (this build has no TLS; put TLS in front of
/// the portal or on a loopback hop), without query or fragment; the trailing `/` is removed.
pub fn check_base_url(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "`{url}`: only http:// base URLs are supported (this portal is built without TLS)"
        ));
    }
    if parsed.host_str().is_none() {
        return Err(format!("`{url}` has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("`{url}`: a base URL has no query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_add_to_and_override_the_file() {
        let file: ConfigFile = toml::from_str(
            "listen = \"127.0.0.1:9\"\n[services]\ndemo = \"http://127.0.0.1:1/\"\nother = \"http://h:2\"\n",
        )
        .unwrap();
        let c = Config::from_parts(file, None, &["demo=http://127.0.0.1:3/x/".into()]).unwrap();
        assert_eq!(c.services["demo"], "http://127.0.0.1:3/x");
        assert_eq!(c.services["other"], "http://h:2");
        assert_eq!(c.listen.port(), 9);
    }

    #[test]
    fn bad_entries_are_named() {
        for flags in [
            vec![],
            vec!["demo".to_string()],
            vec!["demo=https://x".to_string()],
            vec!["demo=nonsense".to_string()],
            vec!["=http://x".to_string()],
            vec!["a/b=http://x".to_string()],
        ] {
            assert!(
                Config::from_parts(ConfigFile::default(), None, &flags).is_err(),
                "{flags:?}"
            );
        }
    }
}
