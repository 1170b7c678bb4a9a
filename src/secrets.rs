//! Secrets of the local mode: generated once, kept with 0600 permissions in the data directory.
//! In production they must come from settings (checked by `Settings::validate`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::auth::Keyring;
use crate::privacy::crypto::IdentityKeyring;

#[derive(Serialize, Deserialize)]
pub struct LocalSecrets {
    /// Same format as HAVEN_JWT_KEYS.
    pub jwt_keys: String,
    /// Same format as HAVEN_IDENTITY_KEYS (added after the first release: generated when missing).
    #[serde(default)]
    pub identity_keys: String,
    /// Same format as HAVEN_BLIND_INDEX_KEY.
    #[serde(default)]
    pub blind_index_key: String,
}

impl std::fmt::Debug for LocalSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalSecrets(<redacted>)")
    }
}

impl LocalSecrets {
    fn generate() -> LocalSecrets {
        LocalSecrets {
            jwt_keys: Keyring::generate_spec(),
            identity_keys: IdentityKeyring::generate_key_spec(),
            blind_index_key: IdentityKeyring::generate_index_key(),
        }
    }

    /// Fills secrets that a file from an older version lacks; returns whether any was missing.
    fn complete(&mut self) -> bool {
        let missing = self.identity_keys.is_empty() || self.blind_index_key.is_empty();
        if self.identity_keys.is_empty() {
            self.identity_keys = IdentityKeyring::generate_key_spec();
        }
        if self.blind_index_key.is_empty() {
            self.blind_index_key = IdentityKeyring::generate_index_key();
        }
        missing
    }
}

/// Writes the file with 0600 from the first byte, replacing any previous one atomically.
fn write(file: &Path, secrets: &LocalSecrets) -> std::io::Result<()> {
    let tmp = file.with_extension("json.tmp");
    let _ = fs::remove_file(&tmp);
    let mut out = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    out.write_all(serde_json::to_string_pretty(secrets).expect("serialises").as_bytes())?;
    out.sync_all()?;
    fs::rename(&tmp, file)
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot use the secrets file {path}: {detail}")]
    File { path: PathBuf, detail: String },
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets.json")
}

/// Loads the local secrets, generating them on first use. Returns whether they were created.
pub fn load_or_create(data_dir: &Path) -> Result<(LocalSecrets, bool), SecretsError> {
    let file = path(data_dir);
    let err = |detail: String| SecretsError::File { path: file.clone(), detail };
    if fs::symlink_metadata(&file).is_ok() {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::symlink_metadata(&file).map_err(|e| err(e.to_string()))?;
        if !meta.file_type().is_file() {
            return Err(err("it must be a regular file, not a link".into()));
        }
        if meta.uid() != nix::unistd::geteuid().as_raw() {
            return Err(err("it must belong to the user running Haven".into()));
        }
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(err(format!("permissions are {:o}; they must be 600 (chmod 600 it)", mode & 0o777)));
        }
        let text = fs::read_to_string(&file).map_err(|e| err(e.to_string()))?;
        let mut secrets: LocalSecrets = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let added = secrets.complete();
        if added {
            write(&file, &secrets).map_err(|e| err(e.to_string()))?;
        }
        return Ok((secrets, added));
    }
    crate::db::local_cluster::prepare_data_dir(data_dir).map_err(|e| err(e.to_string()))?;
    let secrets = LocalSecrets::generate();
    write(&file, &secrets).map_err(|e| err(e.to_string()))?;
    Ok((secrets, true))
}
