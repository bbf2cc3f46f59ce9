//! The real `server` and `portal` processes of the campaign: init, start on loopback, SIGKILL and restart of the server on the same address and data.

use e2e_tests::{output_text, run_with_timeout, url_in, Proc};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Limits both processes run with (the hostile clients test exactly these).
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout_ms: u64,
}

pub struct Backend {
    server_bin: PathBuf,
    pub data: PathBuf,
    ca_hex: String,
    limits: Limits,
    server: Proc,
    portal: Proc,
    pub server_url: String,
    pub portal_url: String,
    pub server_key: Vec<u8>,
}

impl Backend {
    /// `server init` in `dir/server`, `server run` on a free loopback port, and a portal
    /// relaying the service to it.
    pub fn start(
        server_bin: &Path,
        portal_bin: &Path,
        dir: &Path,
        ca_hex: &str,
        service: &str,
        limits: Limits,
    ) -> Result<Backend, String> {
        let data = dir.join("server");
        let mut init = Command::new(server_bin);
        init.args(["init", "--data"]).arg(&data);
        let out = run_with_timeout(init, START_TIMEOUT)?;
        if !out.status.success() {
            return Err(format!("server init failed: {}", output_text(&out)));
        }
        let key_line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let server_key = apdu_specs::hexfmt::parse(key_line.trim())
            .map_err(|e| format!("server init printed no public key ({e}): {key_line}"))?;
        let (server, server_url) =
            run_server(server_bin, &data, ca_hex, service, limits, "127.0.0.1:0")?;
        let portal_toml = dir.join("portal.toml");
        std::fs::write(
            &portal_toml,
            format!(
                "listen = \"127.0.0.1:0\"\nmax_body_bytes = {}\nrequest_timeout_ms = {}\n\
                 upstream_timeout_ms = 20000\n[services]\n{service} = \"{server_url}\"\n",
                limits.max_body_bytes, limits.request_timeout_ms
            ),
        )
        .map_err(|e| format!("{}: {e}", portal_toml.display()))?;
        let mut cmd = Command::new(portal_bin);
        cmd.args(["run", "--config"]).arg(&portal_toml);
        let mut portal = Proc::spawn(cmd, "portal")?;
        let line = portal.wait_line("listening on", START_TIMEOUT)?;
        let portal_url = url_in(&line).ok_or_else(|| format!("no URL in {line:?}"))?;
        Ok(Backend {
            server_bin: server_bin.to_path_buf(),
            data,
            ca_hex: ca_hex.to_string(),
            limits,
            server,
            portal,
            server_url,
            portal_url,
            server_key,
        })
    }

    /// `server run` on the server's address and data directory.
    fn relaunch(&self, service: &str) -> Result<(Proc, String), String> {
        let addr = self.server_url.trim_start_matches("http://");
        run_server(
            &self.server_bin,
            &self.data,
            &self.ca_hex,
            service,
            self.limits,
            addr,
        )
    }

    /// SIGKILL the server, start it again on the same address and data directory, and
    /// return how long it was gone (kill to "listening").
    pub fn kill_and_restart(&mut self, service: &str) -> Result<Duration, String> {
        let t = Instant::now();
        self.server.kill();
        // The port may still be held for an instant by the dying process: retry the bind.
        let mut last = String::new();
        for _ in 0..50 {
            match self.relaunch(service) {
                Ok((p, url)) if url == self.server_url => {
                    self.server = p;
                    return Ok(t.elapsed());
                }
                Ok((_, url)) => return Err(format!("the server came back on {url}")),
                Err(e) => {
                    last = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Err(format!(
            "the server did not restart on {}: {last}",
            self.server_url
        ))
    }

    /// SIGKILL the server and leave it down (to read its database afterwards).
    pub fn kill_server(&mut self) {
        self.server.kill();
    }

    /// Start the server again after [`Backend::kill_server`].
    pub fn restart_server(&mut self, service: &str) -> Result<(), String> {
        self.server = self.relaunch(service)?.0;
        Ok(())
    }

    pub fn stop(&mut self) {
        self.portal.terminate(Duration::from_secs(10));
        self.server.terminate(Duration::from_secs(10));
    }
}

fn run_server(
    server_bin: &Path,
    data: &Path,
    ca_hex: &str,
    service: &str,
    limits: Limits,
    listen: &str,
) -> Result<(Proc, String), String> {
    let until = card_emulator::system_clock() + 86_400;
    let mut cmd = Command::new(server_bin);
    cmd.args(["run", "--listen", listen, "--issuer-ca", ca_hex])
        .args(["--service", &format!("{service}=echo,provision")])
        .args(["--grant", &format!("{service}:*:*:{until}")])
        .args(["--max-body-bytes", &limits.max_body_bytes.to_string()])
        // Each terminal registers many times a second: the per-SE limit is not under test.
        .args(["--registrations-per-minute-per-se", "0"])
        .args([
            "--request-timeout-ms",
            &limits.request_timeout_ms.to_string(),
        ])
        .arg("--data")
        .arg(data)
        // The campaign reads the audit from the database; per-request log lines would only
        // fill the log file.
        .env("RUST_LOG", "warn");
    let mut p = Proc::spawn(cmd, "server")?;
    let line = p.wait_line("listening on", START_TIMEOUT)?;
    let url = url_in(&line).ok_or_else(|| format!("no URL in {line:?}"))?;
    Ok((p, url))
}
