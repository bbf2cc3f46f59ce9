//! The configuration error of both services, and reading their TOML files.

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// What is wrong with the configuration, naming the file or the entry.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `program` is whose file it is ("server", "portal").
    #[error("{path} is not valid TOML for the {program}: {message}")]
    Parse {
        path: PathBuf,
        program: &'static str,
        message: String,
    },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    /// Plain HTTP on a non-loopback address without `--insecure-http` ([`crate::tls::check_listen`]).
    #[error("refusing plain HTTP on {0}: it is not a loopback address, so requests would cross the network unencrypted; set tls_cert and tls_key (--tls-cert FILE --tls-key FILE; `server init --tls` makes a test pair), or pass --insecure-http (insecure_http = true in the configuration) if a TLS proxy or a private network protects this port")]
    PlainHttpOffLoopback(std::net::SocketAddr),
}

/// An entry's value is wrong: `what` names the entry, `reason` says what is expected.
pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        what: what.into(),
        reason: reason.into(),
    }
}

/// Reads and parses `program`'s TOML file at `path`.
pub fn read_toml<T: DeserializeOwned>(
    path: &Path,
    program: &'static str,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(&text, path, program)
}

/// Parses `text`, the contents of `program`'s file at `path`.
pub fn parse_toml<T: DeserializeOwned>(
    text: &str,
    path: &Path,
    program: &'static str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        program,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct File {
        #[allow(dead_code)]
        listen: String,
    }

    #[test]
    fn errors_name_the_file_and_whose_it_is() {
        let missing = Path::new("/nonexistent/portal.toml");
        let e = read_toml::<File>(missing, "portal").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/portal.toml: "),
            "{e}"
        );
        let e = parse_toml::<File>("listen = ", Path::new("server.toml"), "server").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("server.toml is not valid TOML for the server: "),
            "{e}"
        );
        assert_eq!(
            invalid("listen", "not an address").to_string(),
            "listen: not an address"
        );
    }
}
