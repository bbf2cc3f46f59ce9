//! A throw-away PostgreSQL cluster for the tests: `initdb` in a temporary directory, `pg_ctl
//! start` on a free port of 127.0.0.1 (socket in the same directory), a login role and one
//! database per test; `pg_ctl stop` when the last test holding it drops it. As root the
//! cluster runs as the `postgres` user (`runuser`), otherwise as the current user.
//!
//! PostgreSQL not installed: [`cluster`] prints a loud SKIPPED line and returns `None`.
//! Installed but failing to start: the test fails, with the server's log.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The login role the stores use (the superuser `postgres` only creates databases).
pub const ROLE: &str = "app";

/// A running cluster.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
    /// The role's password, random per cluster.
    pub password: String,
    next_db: AtomicU32,
}

static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());

/// The cluster the running tests share, started if none runs. `None`, after a SKIPPED
/// line naming `test`, when PostgreSQL is not installed.
pub fn cluster(test: &str) -> Option<Arc<PgCluster>> {
    let Some(bin) = find_bin() else {
        eprintln!("SKIPPED {test}: PostgreSQL is not installed (apt-get install postgresql)");
        return None;
    };
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = shared.upgrade() {
        return Some(c);
    }
    let c = Arc::new(PgCluster::start(bin, None).unwrap_or_else(|e| panic!("{test}: {e}")));
    *shared = Arc::downgrade(&c);
    Some(c)
}

/// A cluster of its own that speaks TLS with this certificate and key (PEM) and accepts
/// TCP logins over TLS only (`hostssl`), listening on 127.0.0.1 and 127.0.0.2. `None`,
/// after a SKIPPED line naming `test`, when PostgreSQL is not installed.
pub fn tls_cluster(test: &str, cert: &Path, key: &Path) -> Option<PgCluster> {
    let Some(bin) = find_bin() else {
        eprintln!("SKIPPED {test}: PostgreSQL is not installed (apt-get install postgresql)");
        return None;
    };
    Some(PgCluster::start(bin, Some((cert, key))).unwrap_or_else(|e| panic!("{test}: {e}")))
}

/// The newest `/usr/lib/postgresql/N/bin` (Debian's layout), else initdb on PATH.
fn find_bin() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_tools(d))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn check(what: &str, out: std::io::Result<Output>) -> Result<String, String> {
    let out = out.map_err(|e| format!("{what}: cannot run it: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl PgCluster {
    fn start(bin: PathBuf, tls: Option<(&Path, &Path)>) -> Result<PgCluster, String> {
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("server-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        if as_postgres {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            check(
                "chown postgres (is there a `postgres` user?)",
                Command::new("chown")
                    .arg("postgres")
                    .arg(dir.path())
                    .output(),
            )?;
        }
        let mut password = [0u8; 16];
        getrandom::getrandom(&mut password).map_err(|e| format!("random password: {e}"))?;
        let mut c = PgCluster {
            bin,
            dir,
            port: 0,
            as_postgres,
            password: hex::encode(password),
            next_db: AtomicU32::new(0),
        };
        c.command("initdb")
            .arg("-D")
            .arg(c.data())
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .args(["--no-sync", "-E", "UTF8", "--locale=C"])
            .output()
            .map_err(|e| e.to_string())
            .and_then(|o| check("initdb", Ok(o)))?;
        let mut extra = String::new();
        if let Some((cert, key)) = tls {
            extra = c.tls_files(cert, key)?;
        }
        // A port that was free may be taken before the server binds it: try another.
        let mut last = String::new();
        for _ in 0..3 {
            c.port = free_port();
            let options = format!(
                "-p {} -c listen_addresses={} -k {} -c fsync=off -c synchronous_commit=off \
                 -c full_page_writes=off -c max_connections=200{extra}",
                c.port,
                if tls.is_some() {
                    "'127.0.0.1,127.0.0.2'"
                } else {
                    "127.0.0.1"
                },
                c.dir.path().display()
            );
            let started = c
                .command("pg_ctl")
                .arg("-D")
                .arg(c.data())
                .arg("-l")
                .arg(c.dir.path().join("log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .output();
            match check("pg_ctl start", started) {
                Ok(_) => {
                    c.psql(
                        "postgres",
                        &format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{}'", c.password),
                    )?;
                    return Ok(c);
                }
                Err(e) => {
                    let log = std::fs::read_to_string(c.dir.path().join("log")).unwrap_or_default();
                    last = format!("{e}\nserver log:\n{log}");
                }
            }
        }
        Err(last)
    }

    /// Copies the pair beside the cluster (the key 0600, owned by the cluster's user, as
    /// PostgreSQL wants), allows TCP logins over TLS only; the `pg_ctl -o` options.
    fn tls_files(&self, cert: &Path, key: &Path) -> Result<String, String> {
        let copy = |from: &Path, name: &str| -> Result<PathBuf, String> {
            let to = self.dir.path().join(name);
            std::fs::copy(from, &to).map_err(|e| format!("copy {}: {e}", from.display()))?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("chmod {}: {e}", to.display()))?;
            if self.as_postgres {
                check(
                    "chown postgres",
                    Command::new("chown").arg("postgres").arg(&to).output(),
                )?;
            }
            Ok(to)
        };
        let cert = copy(cert, "pg-cert.pem")?;
        let key = copy(key, "pg-key.pem")?;
        let hba = self.data().join("pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all trust\nhostssl all all 127.0.0.0/8 scram-sha-256\n",
        )
        .map_err(|e| format!("write {}: {e}", hba.display()))?;
        Ok(format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            cert.display(),
            key.display()
        ))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.env("PGCONNECT_TIMEOUT", "10");
        cmd
    }

    /// Runs `sql` as the superuser in database `db` (over the Unix socket); its output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = self
            .command("psql")
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
            .output();
        check(&format!("psql `{sql}`"), out)
    }

    /// A new empty database owned by [`ROLE`]; its URL (with the password).
    pub fn new_database(&self) -> String {
        let name = format!("t{}", self.next_db.fetch_add(1, Ordering::SeqCst));
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {ROLE}"))
            .unwrap_or_else(|e| panic!("{e}"));
        self.url(&name, &self.password)
    }

    /// A new empty database owned by [`ROLE`]; its name.
    pub fn new_database_name(&self) -> String {
        let name = format!("t{}", self.next_db.fetch_add(1, Ordering::SeqCst));
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {ROLE}"))
            .unwrap_or_else(|e| panic!("{e}"));
        name
    }

    /// The URL of `db` for [`ROLE`] with `password`.
    pub fn url(&self, db: &str, password: &str) -> String {
        format!("postgres://{ROLE}:{password}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let stopped = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "30", "stop"])
            .output();
        if let Err(e) = check("pg_ctl stop", stopped) {
            eprintln!("the test PostgreSQL cluster did not stop: {e}");
        }
    }
}
