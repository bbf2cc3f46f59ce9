//! The portal's configuration: service id -> server base URL, limits, TLS on both sides,
//! from TOML and flags.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use http_serve::config::invalid;
use http_serve::tls::{check_listen, is_loopback, CertificateDer, ListenSettings, TlsFiles};
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
/// # HTTPS towards terminals (paths relative to this file; the key 0600).
/// # tls_cert = "portal-cert.pem"
/// # tls_key = "portal-key.pem"
/// # The CA (or self-signed certificate) the https:// servers' certificates are checked against.
/// # upstream_ca_file = "server-ca.pem"
/// # Plain HTTP off loopback, towards terminals and servers (a TLS proxy or private network).
/// # insecure_http = false
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
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub upstream_ca_file: Option<PathBuf>,
    pub insecure_http: Option<bool>,
    #[serde(default)]
    pub services: BTreeMap<String, String>,
}

/// The TLS options of `portal run` (paths relative to the working directory); each
/// overrides the file's entry.
#[derive(Debug, Default, Clone)]
pub struct TlsFlags {
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub upstream_ca_file: Option<PathBuf>,
    pub insecure_http: bool,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub upstream_timeout: Duration,
    /// Service id -> server base URL without trailing `/` (`http[s]://host:port[/prefix]`).
    pub services: BTreeMap<String, String>,
    /// HTTPS towards terminals with these files; `None`: plain HTTP (loopback, or
    /// `insecure_http`).
    pub tls: Option<TlsFiles>,
    /// The certificates an https:// server must chain to (`upstream_ca_file`), and that file.
    pub upstream_ca: Option<(PathBuf, Vec<CertificateDer<'static>>)>,
}

impl Config {
    /// Reads an optional file, then applies `--listen` and `--service ID=URL` flags (which
    /// add to or replace the file's services).
    pub fn load(
        path: Option<&Path>,
        listen: Option<SocketAddr>,
        services: &[String],
        tls: &TlsFlags,
    ) -> Result<Config, ConfigError> {
        let file = match path {
            None => ConfigFile::default(),
            Some(path) => {
                let mut file: ConfigFile = http_serve::config::read_toml(path, "portal")?;
                for p in [
                    &mut file.tls_cert,
                    &mut file.tls_key,
                    &mut file.upstream_ca_file,
                ]
                .into_iter()
                .flatten()
                {
                    *p = http_serve::tls::relative_to_file(path, p);
                }
                file
            }
        };
        Config::from_parts_with_tls(file, listen, services, tls)
    }

    /// [`Config::from_parts_with_tls`] without TLS options on the command line.
    pub fn from_parts(
        file: ConfigFile,
        listen: Option<SocketAddr>,
        flags: &[String],
    ) -> Result<Config, ConfigError> {
        Config::from_parts_with_tls(file, listen, flags, &TlsFlags::default())
    }

    /// Validates a parsed file plus the command line. Reads `upstream_ca_file`; the TLS
    /// pair is read at start ([`http_serve::tls::server_config`]).
    pub fn from_parts_with_tls(
        file: ConfigFile,
        listen: Option<SocketAddr>,
        flags: &[String],
        tls_flags: &TlsFlags,
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
        let insecure_http = tls_flags.insecure_http || file.insecure_http.unwrap_or(false);
        let tls = check_listen(
            listen,
            &ListenSettings {
                tls_cert: tls_flags.tls_cert.clone().or(file.tls_cert),
                tls_key: tls_flags.tls_key.clone().or(file.tls_key),
                insecure_http,
            },
        )?;
        let upstream_ca = match tls_flags.upstream_ca_file.clone().or(file.upstream_ca_file) {
            None => None,
            Some(path) => {
                let certs = http_serve::tls::read_certificates(&path)
                    .map_err(|e| invalid("upstream_ca_file", e.to_string()))?;
                Some((path, certs))
            }
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
            check_upstream_transport(&url, upstream_ca.is_some(), insecure_http)
                .map_err(|r| invalid(format!("service `{id}`"), r))?;
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
            tls,
            upstream_ca,
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

/// `http[s]://host:port[/prefix]`, without query or fragment; the trailing `/` is removed.
pub fn check_base_url(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}`: a base URL is http:// or https://"));
    }
    if parsed.host_str().is_none() {
        return Err(format!("`{url}` has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("`{url}`: a base URL has no query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// An https:// server is verified against `upstream_ca_file`, so it needs one; plain
/// http:// reaches a loopback server only, unless `insecure_http`.
fn check_upstream_transport(url: &str, have_ca: bool, insecure_http: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    if parsed.scheme() == "https" {
        if !have_ca {
            return Err(format!(
                "`{url}` is https, so the portal verifies the server's certificate: set \
                 upstream_ca_file (--upstream-ca-file FILE) to the CA that signed it, or to the \
                 server's self-signed certificate (`server init --tls` writes DIR/tls-cert.pem)"
            ));
        }
        return Ok(());
    }
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host
        .parse::<IpAddr>()
        .map_or(host.eq_ignore_ascii_case("localhost"), is_loopback);
    if !loopback && !insecure_http {
        return Err(format!(
            "`{url}` is plain HTTP to a server that is not on loopback; use https:// (with \
             upstream_ca_file), or pass --insecure-http (insecure_http = true) if a private \
             network protects that hop"
        ));
    }
    Ok(())
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
        let insecure = TlsFlags {
            insecure_http: true,
            ..TlsFlags::default()
        };
        let c = Config::from_parts_with_tls(
            file,
            None,
            &["demo=http://127.0.0.1:3/x/".into()],
            &insecure,
        )
        .unwrap();
        assert_eq!(c.services["demo"], "http://127.0.0.1:3/x");
        assert_eq!(c.services["other"], "http://h:2");
        assert_eq!(c.listen.port(), 9);
    }

    #[test]
    fn bad_entries_are_named() {
        for flags in [
            vec![],
            vec!["demo".to_string()],
            vec!["demo=https://127.0.0.1:1".to_string()],
            vec!["demo=http://h:2".to_string()],
            vec!["demo=ftp://127.0.0.1".to_string()],
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
