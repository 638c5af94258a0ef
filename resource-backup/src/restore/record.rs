//! Restores as records in the repository (`restores/<name>/restore.json`), so
//! `salvor restore get|describe` work from any machine that reads the storage.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{PlanSummary, RestoreOptions, RestoreReport};
use crate::Error;
use crate::repo::format::limits;
use crate::repo::{Repository, check_backup_name};

/// `format` of restore records.
pub const RECORD_FORMAT: &str = "salvor-restore/v1";

/// What a restore did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRecord {
    /// Always [`RECORD_FORMAT`].
    pub format: String,
    /// Restore name.
    pub name: String,
    /// The backup restored.
    pub backup: String,
    /// Target API server.
    pub server: String,
    /// Options used.
    pub options: RestoreOptions,
    /// The plan's counts.
    pub plan: PlanSummary,
    /// Outcomes (absent for a dry run that was not recorded).
    pub report: RestoreReport,
}

fn key(name: &str) -> String {
    format!("restores/{name}/restore.json")
}

/// Stores a record (replacing an earlier one of the same name: a re-run).
pub async fn save(repo: &Repository, record: &RestoreRecord) -> Result<(), Error> {
    check_backup_name(&record.name)?;
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| Error::Invalid(e.to_string()))?;
    repo.storage()
        .put(&key(&record.name), Bytes::from(bytes))
        .await?;
    Ok(())
}

/// Reads a record.
pub async fn load(repo: &Repository, name: &str) -> Result<RestoreRecord, Error> {
    check_backup_name(name)?;
    let k = key(name);
    let bytes = repo
        .storage()
        .get_opt(&k, limits::MANIFEST)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no restore named {name} in {}",
                repo.storage().url()
            ))
        })?;
    let record: RestoreRecord = serde_json::from_slice(&bytes)
        .map_err(|e| Error::corrupt(&k, format!("not a restore record: {e}")))?;
    if record.format != RECORD_FORMAT || record.name != name {
        return Err(Error::corrupt(&k, "not a restore record of this name"));
    }
    Ok(record)
}

/// Every record.
pub async fn list(repo: &Repository) -> Result<Vec<RestoreRecord>, Error> {
    let mut out = Vec::new();
    for name in repo.storage().list_dirs("restores/").await? {
        if check_backup_name(&name).is_ok() {
            out.push(load(repo, &name).await?);
        }
    }
    Ok(out)
}
