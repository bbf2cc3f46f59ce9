//! The server's data directory: its signing key file (0600, written atomically), the
//! database and the starter configuration.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secure_channel::mutual::SigningKey;
use zeroize::Zeroizing;

/// File names inside the data directory.
pub const KEY_FILE: &str = "server.key";
pub const DB_FILE: &str = "server.db";
pub const CONFIG_FILE: &str = "server.toml";

/// What went wrong with the data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} already holds a server key; `server public-key --data DIR` prints its public key (delete the directory to start over)")]
    AlreadyInitialized(PathBuf),
    #[error("{0} does not exist; create the server first with `server init --data DIR`")]
    NotInitialized(PathBuf),
    #[error("{path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{0} does not hold a P-256 private key (64 hex digits expected)")]
    BadKey(PathBuf),
    #[error("cannot generate the key: {0}")]
    Rng(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` with mode 0600: temporary file, fsync, rename, fsync directory.
/// Refuses to replace an existing file.
pub fn write_new_secret_file(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    if path.exists() {
        return Err(DataDirError::AlreadyInitialized(path.to_owned()));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

/// Creates `dir` (mode 0700) if needed.
pub fn create_data_dir(dir: &Path) -> Result<(), DataDirError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    Ok(())
}

/// Generates the server key and writes it to `DIR/server.key` (0600). Refuses to overwrite.
pub fn create_key(dir: &Path) -> Result<SigningKey, DataDirError> {
    let path = dir.join(KEY_FILE);
    if path.exists() {
        return Err(DataDirError::AlreadyInitialized(path));
    }
    let key = SigningKey::generate().map_err(|e| DataDirError::Rng(e.to_string()))?;
    let mut text = Zeroizing::new(hex::encode(key.to_bytes().as_slice()));
    text.push('\n');
    write_new_secret_file(&path, text.as_bytes())?;
    Ok(key)
}

/// Loads `DIR/server.key`, refusing a file that group or others can read.
pub fn load_key(dir: &Path) -> Result<SigningKey, DataDirError> {
    let path = dir.join(KEY_FILE);
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DataDirError::NotInitialized(path))
        }
        Err(e) => return Err(io(&path)(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DataDirError::TooOpen { path, mode });
    }
    let text = Zeroizing::new(fs::read_to_string(&path).map_err(io(&path))?);
    let bytes =
        Zeroizing::new(hex::decode(text.trim()).map_err(|_| DataDirError::BadKey(path.clone()))?);
    SigningKey::from_bytes(&bytes).map_err(|_| DataDirError::BadKey(path))
}

/// Creates the database file with mode 0600 before SQLite opens it (SQLite gives its WAL
/// and shared-memory files the same mode).
pub fn create_db_file(dir: &Path) -> Result<PathBuf, DataDirError> {
    let path = dir.join(DB_FILE);
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let key = create_key(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            create_key(dir.path()),
            Err(DataDirError::AlreadyInitialized(_))
        ));
        let loaded = load_key(dir.path()).unwrap();
        assert_eq!(
            loaded.verifying_key().to_sec1(),
            key.verifying_key().to_sec1()
        );
    }

    #[test]
    fn a_group_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        create_key(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            load_key(dir.path()),
            Err(DataDirError::TooOpen { .. })
        ));
    }

    #[test]
    fn a_missing_key_says_to_run_init() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_key(dir.path()).unwrap_err();
        assert!(e.to_string().contains("server init"), "{e}");
    }
}
