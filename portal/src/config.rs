//! The portal's configuration: service id -> the base URLs of its server instances, limits,
//! health checks, TLS on both sides, from TOML and flags.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
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
/// Time between two rounds of `GET /healthz` to every server instance.
pub const DEFAULT_HEALTH_INTERVAL_MS: u64 = 1_000;
/// Time one instance has to answer `GET /healthz`.
pub const DEFAULT_HEALTH_TIMEOUT_MS: u64 = 1_000;
/// Consecutive failed health checks that take an instance out. Two, so that one slow
/// `/healthz` under load does not take out an instance that answers requests; an instance
/// that is really gone is taken out at once by the first request that cannot connect to it.
pub const DEFAULT_UNHEALTHY_AFTER: u32 = 2;

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
/// # Health checks: GET /healthz of every instance each interval; 2xx is healthy.
/// # health_interval_ms = 1000
/// # health_timeout_ms = 1000
/// # An instance is taken out after this many failed checks in a row (or at once when a
/// # request cannot connect to it), and put back by its first 2xx.
/// # unhealthy_after = 2
/// [services]
/// demo = "http://127.0.0.1:8080"
/// # Several instances of one server (same signing key and database): requests are spread
/// # over the healthy ones.
/// # demo = ["http://127.0.0.1:8080", "http://127.0.0.1:8082"]
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
    pub health_interval_ms: Option<u64>,
    pub health_timeout_ms: Option<u64>,
    pub unhealthy_after: Option<u32>,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceUrls>,
}

/// The value of a `[services]` entry: one base URL, or an array of them (one per server
/// instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceUrls {
    One(String),
    Many(Vec<String>),
}

impl ServiceUrls {
    /// The URLs in the order written.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            ServiceUrls::One(url) => vec![url],
            ServiceUrls::Many(urls) => urls,
        }
    }
}

impl From<&str> for ServiceUrls {
    fn from(url: &str) -> ServiceUrls {
        ServiceUrls::One(url.to_owned())
    }
}

impl<'de> Deserialize<'de> for ServiceUrls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ServiceUrls, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ServiceUrls;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a base URL string, or an array of base URL strings (one per server instance)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ServiceUrls, E> {
                Ok(ServiceUrls::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ServiceUrls, A::Error> {
                let mut urls = Vec::new();
                while let Some(url) = seq.next_element::<String>()? {
                    urls.push(url);
                }
                Ok(ServiceUrls::Many(urls))
            }
        }
        d.deserialize_any(V)
    }
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
    /// Time between two rounds of health checks.
    pub health_interval: Duration,
    /// Time one health check may take.
    pub health_timeout: Duration,
    /// Consecutive failed health checks that take an instance out (at least 1).
    pub unhealthy_after: u32,
    /// Service id -> the base URLs of its server instances (at least one, no two alike),
    /// each without trailing `/` (`http[s]://host:port[/prefix]`).
    pub services: BTreeMap<String, Vec<String>>,
    /// HTTPS towards terminals with these files; `None`: plain HTTP (loopback, or
    /// `insecure_http`).
    pub tls: Option<TlsFiles>,
    /// The certificates an https:// server must chain to (`upstream_ca_file`), and that file.
    pub upstream_ca: Option<(PathBuf, Vec<CertificateDer<'static>>)>,
}

impl Config {
    /// Reads an optional file, then applies `--listen` and `--service ID=URL` flags (an id
    /// given on the command line replaces the file's entry for it; repeating the flag for
    /// one id adds instances).
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
        let mut services: BTreeMap<String, Vec<String>> = file
            .services
            .into_iter()
            .map(|(id, urls)| (id, urls.into_vec()))
            .collect();
        let mut from_flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for flag in flags {
            let (id, url) = flag
                .split_once('=')
                .ok_or_else(|| invalid("--service", format!("`{flag}` is not ID=URL")))?;
            from_flags
                .entry(id.to_owned())
                .or_default()
                .push(url.to_owned());
        }
        services.extend(from_flags);
        if services.is_empty() {
            return Err(invalid(
                "services",
                "no service is configured; give --service ID=URL or a [services] table in --config",
            ));
        }
        let mut checked = BTreeMap::new();
        for (id, urls) in services {
            let what = || format!("service `{id}`");
            check_service_id(&id).map_err(|r| invalid(what(), r))?;
            if urls.is_empty() {
                return Err(invalid(
                    what(),
                    "has an empty list of URLs; give at least one server base URL",
                ));
            }
            let mut seen: Vec<String> = Vec::with_capacity(urls.len());
            let mut instances = Vec::with_capacity(urls.len());
            for url in urls {
                let url = check_base_url(&url).map_err(|r| invalid(what(), r))?;
                check_upstream_transport(&url, upstream_ca.is_some(), insecure_http)
                    .map_err(|r| invalid(what(), r))?;
                let same = same_url_key(&url);
                if seen.contains(&same) {
                    return Err(invalid(
                        what(),
                        format!(
                            "`{url}` is listed twice; give each server instance once (two \
                             instances differ in host or port)"
                        ),
                    ));
                }
                seen.push(same);
                instances.push(url);
            }
            checked.insert(id, instances);
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
            health_interval: ms(
                file.health_interval_ms,
                DEFAULT_HEALTH_INTERVAL_MS,
                "health_interval_ms",
            )?,
            health_timeout: ms(
                file.health_timeout_ms,
                DEFAULT_HEALTH_TIMEOUT_MS,
                "health_timeout_ms",
            )?,
            unhealthy_after: match file.unhealthy_after.unwrap_or(DEFAULT_UNHEALTHY_AFTER) {
                0 => return Err(invalid("unhealthy_after", "must be at least 1")),
                n => n,
            },
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

/// Two spellings of one instance (`HTTP://Host:80/x/` and `http://host/x`) give the same key.
fn same_url_key(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(
        |_| url.to_owned(),
        |u| u.as_str().trim_end_matches('/').to_owned(),
    )
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
        assert_eq!(c.services["demo"], ["http://127.0.0.1:3/x"]);
        assert_eq!(c.services["other"], ["http://h:2"]);
        assert_eq!(c.listen.port(), 9);
        assert_eq!(
            c.health_interval,
            Duration::from_millis(DEFAULT_HEALTH_INTERVAL_MS)
        );
        assert_eq!(
            c.health_timeout,
            Duration::from_millis(DEFAULT_HEALTH_TIMEOUT_MS)
        );
        assert_eq!(c.unhealthy_after, DEFAULT_UNHEALTHY_AFTER);
    }

    #[test]
    fn a_service_is_one_url_or_an_array_of_them() {
        let file: ConfigFile = toml::from_str(
            "health_interval_ms = 250\nhealth_timeout_ms = 100\nunhealthy_after = 3\n\
             [services]\none = \"http://127.0.0.1:1\"\n\
             two = [\"http://127.0.0.1:1/\", \"http://localhost:2\"]\n",
        )
        .unwrap();
        assert_eq!(
            file.services["one"],
            ServiceUrls::from("http://127.0.0.1:1")
        );
        let c = Config::from_parts(file, None, &[]).unwrap();
        assert_eq!(c.services["one"], ["http://127.0.0.1:1"]);
        assert_eq!(
            c.services["two"],
            ["http://127.0.0.1:1", "http://localhost:2"]
        );
        assert_eq!(c.health_interval, Duration::from_millis(250));
        assert_eq!(c.health_timeout, Duration::from_millis(100));
        assert_eq!(c.unhealthy_after, 3);

        let err = toml::from_str::<ConfigFile>("[services]\ndemo = 8080\n").unwrap_err();
        assert!(
            err.to_string().contains("array of base URL strings"),
            "{err}"
        );
    }

    #[test]
    fn a_repeated_flag_adds_instances_and_replaces_the_files_entry() {
        let file: ConfigFile = toml::from_str(
            "[services]\ndemo = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\"]\n\
             keep = [\"http://127.0.0.1:5\"]\n",
        )
        .unwrap();
        let c = Config::from_parts(
            file,
            None,
            &[
                "demo=http://127.0.0.1:3".into(),
                "demo=http://127.0.0.1:4".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            c.services["demo"],
            ["http://127.0.0.1:3", "http://127.0.0.1:4"]
        );
        assert_eq!(c.services["keep"], ["http://127.0.0.1:5"]);
    }

    #[test]
    fn duplicate_and_missing_instances_are_refused() {
        for toml_text in [
            "[services]\ndemo = [\"http://127.0.0.1:1\", \"http://127.0.0.1:1\"]\n",
            "[services]\ndemo = [\"http://127.0.0.1:1\", \"http://127.0.0.1:1/\"]\n",
            "[services]\ndemo = [\"http://LOCALHOST:80/x\", \"http://localhost/x/\"]\n",
            "[services]\ndemo = []\n",
            // Every instance passes the plain-HTTP rule.
            "[services]\ndemo = [\"http://127.0.0.1:1\", \"http://h:2\"]\n",
            "[services]\ndemo = [\"http://127.0.0.1:1\", \"https://127.0.0.1:2\"]\n",
            "unhealthy_after = 0\n[services]\ndemo = \"http://127.0.0.1:1\"\n",
            "health_interval_ms = 0\n[services]\ndemo = \"http://127.0.0.1:1\"\n",
            "health_timeout_ms = 0\n[services]\ndemo = \"http://127.0.0.1:1\"\n",
        ] {
            let file: ConfigFile = toml::from_str(toml_text).unwrap();
            let err = Config::from_parts(file, None, &[]).unwrap_err();
            assert!(!err.to_string().is_empty(), "{toml_text}");
        }
        let err = Config::from_parts(
            ConfigFile::default(),
            None,
            &[
                "demo=http://127.0.0.1:1".into(),
                "demo=http://127.0.0.1:1/".into(),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
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
