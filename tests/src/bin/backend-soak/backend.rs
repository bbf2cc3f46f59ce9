//! The real `server` and `portal` processes of the campaign: init, start on loopback, SIGKILL and restart of server instances on the same addresses and data (one key file; one SQLite file, or one PostgreSQL database shared by several instances behind the portal).

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
    /// SQLite group commit (`group_commit` in server.toml; `server init` writes `true`).
    pub group_commit: bool,
}

/// HTTPS on both hops: the servers' pair (their certificate is the portal's CA file) and
/// the portal's pair, each made by `server init --tls`.
#[derive(Clone, Debug)]
pub struct Tls {
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub portal_cert: PathBuf,
    pub portal_key: PathBuf,
}

/// What runs behind the portal.
#[derive(Clone, Copy, Default)]
pub struct Topology<'a> {
    /// The PostgreSQL URL every instance uses; `None`: the SQLite file of the data directory.
    pub database: Option<&'a str>,
    /// `server run` processes on the same data directory (one key) and database.
    pub instances: usize,
    /// HTTPS on both hops; `None`: plain HTTP on loopback.
    pub tls: Option<&'a Tls>,
}

pub struct Backend {
    server_bin: PathBuf,
    pub data: PathBuf,
    /// The PostgreSQL URL every instance uses; `None`: the SQLite file in `data`.
    pub database: Option<String>,
    ca_hex: String,
    limits: Limits,
    tls: Option<Tls>,
    /// One process per instance, all on `data` (the shared signing key) and the database.
    servers: Vec<Proc>,
    portal: Proc,
    /// Each instance's URL, in the order of `servers`.
    pub server_urls: Vec<String>,
    pub portal_url: String,
    pub server_key: Vec<u8>,
}

impl Backend {
    /// `server init` in `dir/server`, the topology's instances of `server run` on free
    /// loopback ports (on its database, or the SQLite file of `dir/server`), and a portal
    /// relaying the service to all of them.
    pub fn start(
        server_bin: &Path,
        portal_bin: &Path,
        dir: &Path,
        ca_hex: &str,
        service: &str,
        limits: Limits,
        topology: Topology<'_>,
    ) -> Result<Backend, String> {
        let Topology {
            database,
            instances,
            tls,
        } = topology;
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
        if !limits.group_commit {
            let toml = data.join("server.toml");
            let text =
                std::fs::read_to_string(&toml).map_err(|e| format!("{}: {e}", toml.display()))?;
            let off = text.replace("\ngroup_commit = true\n", "\ngroup_commit = false\n");
            if off == text {
                return Err(format!(
                    "{}: no `group_commit = true` line to turn off",
                    toml.display()
                ));
            }
            std::fs::write(&toml, off).map_err(|e| format!("{}: {e}", toml.display()))?;
        }
        let mut servers = Vec::new();
        let mut server_urls = Vec::new();
        for _ in 0..instances.max(1) {
            let (p, url) = run_server(
                server_bin,
                &data,
                ca_hex,
                service,
                limits,
                "127.0.0.1:0",
                database,
                tls,
            )?;
            servers.push(p);
            server_urls.push(url);
        }
        let upstreams: Vec<String> = server_urls.iter().map(|u| format!("\"{u}\"")).collect();
        let portal_toml = dir.join("portal.toml");
        let tls_lines = tls.map_or(String::new(), |t| {
            format!(
                "tls_cert = {:?}\ntls_key = {:?}\nupstream_ca_file = {:?}\n",
                t.portal_cert, t.portal_key, t.server_cert
            )
        });
        std::fs::write(
            &portal_toml,
            format!(
                "listen = \"127.0.0.1:0\"\nmax_body_bytes = {}\nrequest_timeout_ms = {}\n\
                 upstream_timeout_ms = 20000\n{tls_lines}[services]\n{service} = [{}]\n",
                limits.max_body_bytes,
                limits.request_timeout_ms,
                upstreams.join(", ")
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
            database: database.map(str::to_owned),
            ca_hex: ca_hex.to_string(),
            limits,
            tls: tls.cloned(),
            servers,
            portal,
            server_urls,
            portal_url,
            server_key,
        })
    }

    /// Instance `i` of `server run` on its address, the data directory and the database.
    /// The port may still be held for an instant by a dying process: the bind is retried.
    fn relaunch(&mut self, i: usize, service: &str) -> Result<(), String> {
        let url = self.server_urls[i].clone();
        let addr = url
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let mut last = String::new();
        for _ in 0..50 {
            match run_server(
                &self.server_bin,
                &self.data,
                &self.ca_hex,
                service,
                self.limits,
                addr,
                self.database.as_deref(),
                self.tls.as_ref(),
            ) {
                Ok((p, back)) if back == url => {
                    self.servers[i] = p;
                    return Ok(());
                }
                Ok((_, back)) => return Err(format!("instance {i} came back on {back}")),
                Err(e) => {
                    last = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Err(format!("instance {i} did not restart on {url}: {last}"))
    }

    pub fn instances(&self) -> usize {
        self.servers.len()
    }

    /// SIGKILL the instances `which` (all at once), start them again on the same addresses,
    /// and return how long the last was gone (kill to "listening").
    pub fn kill_and_restart(&mut self, which: &[usize], service: &str) -> Result<Duration, String> {
        let t = Instant::now();
        for &i in which {
            self.servers[i].kill();
        }
        for &i in which {
            self.relaunch(i, service)?;
        }
        Ok(t.elapsed())
    }

    /// SIGKILL every instance and leave them down (to read the database afterwards).
    pub fn kill_servers(&mut self) {
        for s in &mut self.servers {
            s.kill();
        }
    }

    /// Start every instance again after [`Backend::kill_servers`].
    pub fn restart_servers(&mut self, service: &str) -> Result<(), String> {
        for i in 0..self.servers.len() {
            self.relaunch(i, service)?;
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        self.portal.terminate(Duration::from_secs(10));
        for s in &mut self.servers {
            s.terminate(Duration::from_secs(10));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_server(
    server_bin: &Path,
    data: &Path,
    ca_hex: &str,
    service: &str,
    limits: Limits,
    listen: &str,
    database: Option<&str>,
    tls: Option<&Tls>,
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
    if let Some(t) = tls {
        cmd.arg("--tls-cert")
            .arg(&t.server_cert)
            .arg("--tls-key")
            .arg(&t.server_key);
    }
    if let Some(url) = database {
        // Through the environment: a password in the URL stays out of the process list.
        cmd.env("SERVER_DATABASE", url);
    }
    let mut p = Proc::spawn(cmd, "server")?;
    let line = p.wait_line("listening on", START_TIMEOUT)?;
    let url = url_in(&line).ok_or_else(|| format!("no URL in {line:?}"))?;
    Ok((p, url))
}
