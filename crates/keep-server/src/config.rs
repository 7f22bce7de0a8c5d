//! Configuration in two stages: [`FileConfig`], the serde form of the TOML
//! file (every field optional, flags merged over it), validated into
//! [`Config`], the runtime form, with secrets read from their files.
//!
//! Every error names the field and the file it came from. Secrets are read
//! from files and never appear in `Debug` output or logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keep_locator::SigningKey;
use serde::Deserialize;

/// A configuration problem, naming where it is.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {field}: {message}")]
pub struct ConfigError {
    /// The file (or "command line") the value came from.
    pub source_name: String,
    /// The offending field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// One `volumes` entry: a spec string, or a table with options.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum VolumeEntry {
    /// A directory path or an `s3://` URL.
    Spec(String),
    /// A volume with options.
    Table(VolumeTable),
}

/// A volume with options, as written in the config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolumeTable {
    /// A directory path or an `s3://` URL.
    pub path: String,
    /// The volume's uuid; default: generated once and kept in the volume.
    pub uuid: Option<String>,
    /// Serve reads only.
    pub read_only: Option<bool>,
    /// Whether blocks may be trashed here (default: when writable).
    pub allow_trash: Option<bool>,
    /// Copies the underlying storage keeps (default 1).
    pub replication: Option<u32>,
    /// Storage classes (default `["default"]`).
    pub storage_classes: Option<Vec<String>>,
    /// Free space below which the volume is full, e.g. `"64MiB"`.
    pub min_free: Option<String>,
    /// S3: the access key id (default: `AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// S3: a file holding the secret access key (default: `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key_file: Option<PathBuf>,
    /// S3: how long after a trash a re-written block is still recovered
    /// (Arvados's RaceWindow), e.g. `"24h"`.
    pub race_window: Option<String>,
}

/// The config file, as parsed. Every field is optional; flags override.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Volumes; default `./keep-data`.
    pub volumes: Option<Vec<VolumeEntry>>,
    /// File holding the blob signing key; turns signatures on.
    pub blob_signing_key_file: Option<PathBuf>,
    /// Signature lifetime, e.g. `"336h"`.
    pub blob_signing_ttl: Option<String>,
    /// File holding the token that admin requests carry.
    pub system_root_token_file: Option<PathBuf>,
    /// Introducers to publish to and learn peers from.
    pub introducer: Option<Vec<String>>,
    /// File holding the secret shared by the cluster's nodes.
    pub cluster_key_file: Option<PathBuf>,
    /// How other nodes reach this one.
    pub public_url: Option<String>,
    /// This node's uuid.
    pub uuid: Option<String>,
    /// Desired copies per block.
    pub replication: Option<u32>,
    /// Serve reads only.
    pub read_only: Option<bool>,
    /// How long trashed blocks stay restorable, e.g. `"336h"`.
    pub trash_lifetime: Option<String>,
    /// How often trash is emptied, e.g. `"24h"`.
    pub trash_check_interval: Option<String>,
    /// Allow `trash_lifetime = "0s"` (delete at once, no undo).
    pub unsafe_delete: Option<bool>,
    /// Pull workers (default 4).
    pub pull_workers: Option<usize>,
    /// Trash workers (default 1).
    pub trash_workers: Option<usize>,
    /// Most entries a pull or trash list may have (default 100000).
    pub max_work_list_items: Option<usize>,
    /// Memory for block data in flight, e.g. `"256MiB"`.
    pub max_buffer_memory: Option<String>,
    /// Open connections at most.
    pub max_connections: Option<usize>,
    /// Time to finish in-flight requests on shutdown, e.g. `"30s"`.
    pub shutdown_grace: Option<String>,
    /// Where the node keeps its own state (uuid); default: the first
    /// directory volume, or `./keepstore-state` with S3 volumes only.
    pub state_dir: Option<PathBuf>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: source_name.clone(),
            field: "(file)".into(),
            message: format!("cannot read: {e}"),
        })?;
        toml::from_str(&text).map_err(|e| {
            let field = e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| {
                    let line = before.matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "(syntax)".into());
            ConfigError {
                source_name,
                field,
                message: e.message().to_owned(),
            }
        })
    }
}

/// Where a volume lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeLocation {
    /// A local folder.
    Directory(PathBuf),
    /// An S3 bucket.
    S3(Box<S3Location>),
}

/// An S3 volume's bucket and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// Bucket, prefix, endpoint, region.
    pub spec: keep_volume_s3::S3Spec,
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: Secret,
    /// Arvados's RaceWindow.
    pub race_window: Duration,
}

/// A validated volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeConfig {
    /// Where the blocks are.
    pub location: VolumeLocation,
    /// The uuid, if configured.
    pub uuid: Option<String>,
    /// Writes allowed.
    pub allow_write: bool,
    /// Trash allowed.
    pub allow_trash: bool,
    /// Copies the storage keeps.
    pub replication: u32,
    /// Storage classes.
    pub storage_classes: Vec<String>,
    /// Full below this many free bytes.
    pub min_free_bytes: u64,
}

/// A secret read from a file. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret from its text (for embedders that do not use files).
    pub fn new(text: &str) -> Secret {
        Secret(text.to_owned())
    }

    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Volumes, in configured order.
    pub volumes: Vec<VolumeConfig>,
    /// The blob signing key; `None` turns signatures off.
    pub signing_key: Option<SigningKey>,
    /// Signature lifetime.
    pub signing_ttl: Duration,
    /// The admin token; `None` refuses every admin request.
    pub system_root_token: Option<Secret>,
    /// Introducer URLs.
    pub introducers: Vec<String>,
    /// The cluster's shared secret.
    pub cluster_key: Option<keep_introducer::ClusterKey>,
    /// How other nodes reach this one.
    pub public_url: Option<String>,
    /// This node's uuid, if configured.
    pub uuid: Option<String>,
    /// Desired copies per block.
    pub replication: u32,
    /// Serve reads only.
    pub read_only: bool,
    /// How long trashed blocks stay restorable.
    pub trash_lifetime: Duration,
    /// How often trash is emptied.
    pub trash_check_interval: Duration,
    /// Pull workers.
    pub pull_workers: usize,
    /// Trash workers.
    pub trash_workers: usize,
    /// Most entries a pull or trash list may have.
    pub max_work_list_items: usize,
    /// Memory for block data in flight, bytes.
    pub max_buffer_memory: u64,
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to finish in-flight requests on shutdown.
    pub shutdown_grace: Duration,
    /// Where the node keeps its own state.
    pub state_dir: Option<PathBuf>,
}

impl Config {
    /// The embedded default: one node on 127.0.0.1:25107 with `./keep-data`.
    pub fn embedded_default() -> Config {
        FileConfig::default()
            .validate("built-in defaults")
            .unwrap_or_else(|e| unreachable!("the defaults are valid: {e}"))
    }
}

impl FileConfig {
    /// Checks every field and reads the secret files. `source_name` names
    /// the file (or "command line") in errors.
    pub fn validate(&self, source_name: &str) -> Result<Config, ConfigError> {
        let err = |field: &str, message: String| ConfigError {
            source_name: source_name.to_owned(),
            field: field.to_owned(),
            message,
        };
        let listen = self.listen.as_deref().unwrap_or("127.0.0.1:25107");
        let listen: SocketAddr = listen
            .parse()
            .map_err(|e| err("listen", format!("{listen:?} is not an address:port ({e})")))?;
        let duration = |field: &str, value: &Option<String>, default: &str| {
            let text = value.as_deref().unwrap_or(default);
            humantime::parse_duration(text).map_err(|e| err(field, format!("{text:?}: {e}")))
        };
        let signing_ttl = duration("blob_signing_ttl", &self.blob_signing_ttl, "336h")?;
        if signing_ttl.is_zero() {
            return Err(err("blob_signing_ttl", "must be positive".into()));
        }
        let trash_lifetime = duration("trash_lifetime", &self.trash_lifetime, "336h")?;
        if trash_lifetime.is_zero() && self.unsafe_delete != Some(true) {
            return Err(err(
                "trash_lifetime",
                "0 deletes blocks with no undo; set unsafe_delete = true to allow it".into(),
            ));
        }
        let trash_check_interval =
            duration("trash_check_interval", &self.trash_check_interval, "24h")?;
        let shutdown_grace = duration("shutdown_grace", &self.shutdown_grace, "30s")?;
        let max_buffer_memory = match &self.max_buffer_memory {
            Some(text) => parse_bytes(text).map_err(|m| err("max_buffer_memory", m))?,
            None => 256 << 20,
        };
        if max_buffer_memory < 4 << 20 {
            return Err(err("max_buffer_memory", "must be at least 4MiB".into()));
        }
        let read_secret =
            |field: &str, path: &Option<PathBuf>| -> Result<Option<Secret>, ConfigError> {
                let Some(path) = path else { return Ok(None) };
                let text = std::fs::read_to_string(path)
                    .map_err(|e| err(field, format!("cannot read {}: {e}", path.display())))?;
                let text = text.trim_end_matches(['\n', '\r']).to_owned();
                if text.is_empty() {
                    return Err(err(field, format!("{} is empty", path.display())));
                }
                Ok(Some(Secret(text)))
            };
        let signing_key = read_secret("blob_signing_key_file", &self.blob_signing_key_file)?
            .map(|s| SigningKey::new(s.expose().as_bytes().to_vec()));
        let system_root_token =
            read_secret("system_root_token_file", &self.system_root_token_file)?;
        let cluster_key = match &self.cluster_key_file {
            Some(path) => Some(
                keep_introducer::ClusterKey::from_file(path)
                    .map_err(|e| err("cluster_key_file", e.to_string()))?,
            ),
            None => None,
        };
        if !self.introducer.as_deref().unwrap_or_default().is_empty() && cluster_key.is_none() {
            return Err(err(
                "cluster_key_file",
                "a node that uses an introducer needs the cluster key".into(),
            ));
        }
        let read_only = self.read_only.unwrap_or(false);
        let default_volumes = [VolumeEntry::Spec("./keep-data".into())];
        let entries = self.volumes.as_deref().unwrap_or(&default_volumes);
        if entries.is_empty() {
            return Err(err("volumes", "at least one volume is needed".into()));
        }
        let volumes = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                volume(entry, read_only).map_err(|m| err(&format!("volumes[{i}]"), m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let replication = self.replication.unwrap_or(1);
        if replication == 0 {
            return Err(err("replication", "must be at least 1".into()));
        }
        if let Some(uuid) = &self.uuid {
            check_uuid(uuid, "bi6l4").map_err(|m| err("uuid", m))?;
        }
        Ok(Config {
            listen,
            volumes,
            signing_key,
            signing_ttl,
            system_root_token,
            introducers: self.introducer.clone().unwrap_or_default(),
            cluster_key,
            public_url: self.public_url.clone(),
            uuid: self.uuid.clone(),
            replication,
            read_only,
            trash_lifetime,
            trash_check_interval,
            pull_workers: self.pull_workers.unwrap_or(4).max(1),
            trash_workers: self.trash_workers.unwrap_or(1).max(1),
            max_work_list_items: self.max_work_list_items.unwrap_or(100_000).max(1),
            max_buffer_memory,
            max_connections: self.max_connections.unwrap_or(1024).max(1),
            shutdown_grace,
            state_dir: self.state_dir.clone(),
        })
    }
}

fn volume(entry: &VolumeEntry, node_read_only: bool) -> Result<VolumeConfig, String> {
    let table = match entry {
        VolumeEntry::Spec(spec) => VolumeTable {
            path: spec.clone(),
            ..Default::default()
        },
        VolumeEntry::Table(t) => t.clone(),
    };
    if table.path.is_empty() {
        return Err("path is empty".into());
    }
    let location = if table.path.starts_with("s3://") {
        VolumeLocation::S3(Box::new(s3_location(&table)?))
    } else if table.path.contains("://") {
        return Err(format!(
            "{:?}: only directory paths and s3:// URLs are volumes",
            table.path
        ));
    } else {
        VolumeLocation::Directory(PathBuf::from(&table.path))
    };
    if let Some(uuid) = &table.uuid {
        check_uuid(uuid, "nyw5e")?;
    }
    let allow_write = !(node_read_only || table.read_only.unwrap_or(false));
    let min_free_bytes = match &table.min_free {
        Some(text) => parse_bytes(text).map_err(|m| format!("min_free: {m}"))?,
        None => keep_volume::directory::DEFAULT_MIN_FREE,
    };
    let storage_classes = table
        .storage_classes
        .unwrap_or_else(|| vec!["default".into()]);
    if storage_classes.is_empty()
        || storage_classes
            .iter()
            .any(|c| c.is_empty() || c.contains([',', '=', ' ']))
    {
        return Err("storage_classes must be non-empty names without ',', '=' or spaces".into());
    }
    Ok(VolumeConfig {
        location,
        uuid: table.uuid,
        allow_write,
        allow_trash: table.allow_trash.unwrap_or(allow_write),
        replication: table.replication.unwrap_or(1).max(1),
        storage_classes,
        min_free_bytes,
    })
}

fn s3_location(table: &VolumeTable) -> Result<S3Location, String> {
    let spec = keep_volume_s3::S3Spec::parse(&table.path).map_err(|e| e.to_string())?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let access_key = table
        .access_key_id
        .clone()
        .or_else(|| env("AWS_ACCESS_KEY_ID"));
    let secret_key = match &table.secret_access_key_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    format!(
                        "secret_access_key_file: cannot read {}: {e}",
                        path.display()
                    )
                })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ),
        None => env("AWS_SECRET_ACCESS_KEY"),
    };
    let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
        return Err(
            "S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or access_key_id and secret_access_key_file".into(),
        );
    };
    let race_window = match &table.race_window {
        Some(text) => {
            humantime::parse_duration(text).map_err(|e| format!("race_window: {text:?}: {e}"))?
        }
        None => Duration::from_secs(24 * 3600),
    };
    Ok(S3Location {
        spec,
        access_key,
        secret_key: Secret(secret_key),
        race_window,
    })
}

/// Checks an Arvados uuid: `<5 alnum>-<infix>-<15 alnum>`, lowercase.
pub fn check_uuid(uuid: &str, infix: &str) -> Result<(), String> {
    let parts: Vec<&str> = uuid.split('-').collect();
    let alnum = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if parts.len() == 3 && alnum(parts[0], 5) && parts[1] == infix && alnum(parts[2], 15) {
        Ok(())
    } else {
        Err(format!(
            "{uuid:?} is not a uuid of the form zzzzz-{infix}-<15 lowercase letters or digits>"
        ))
    }
}

/// Parses sizes like `4096`, `64MiB`, `1GiB`, `512K`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 256MiB"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use KiB, MiB, GiB, TiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_node() {
        let c = Config::embedded_default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:25107");
        assert_eq!(c.volumes.len(), 1);
        assert_eq!(
            c.volumes[0].location,
            VolumeLocation::Directory("./keep-data".into())
        );
        assert_eq!(c.signing_ttl, Duration::from_secs(336 * 3600));
        assert!(c.signing_key.is_none() && c.system_root_token.is_none());
    }

    #[test]
    fn errors_name_field_and_file() {
        let cfg = FileConfig {
            blob_signing_ttl: Some("soon".into()),
            ..Default::default()
        };
        let e = cfg.validate("/etc/keep.toml").unwrap_err().to_string();
        assert!(e.starts_with("/etc/keep.toml: blob_signing_ttl:"), "{e}");
        let cfg = FileConfig {
            trash_lifetime: Some("0s".into()),
            ..Default::default()
        };
        assert!(
            cfg.validate("f")
                .unwrap_err()
                .to_string()
                .contains("unsafe_delete")
        );
        let cfg = FileConfig {
            uuid: Some("nope".into()),
            ..Default::default()
        };
        assert!(
            cfg.validate("f")
                .unwrap_err()
                .to_string()
                .starts_with("f: uuid:")
        );
        let cfg = FileConfig {
            blob_signing_key_file: Some("/nonexistent/key".into()),
            ..Default::default()
        };
        let e = cfg.validate("f").unwrap_err().to_string();
        assert!(
            e.contains("blob_signing_key_file") && e.contains("/nonexistent/key"),
            "{e}"
        );
    }

    #[test]
    fn toml_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nbogus = 3\n").unwrap();
        let e = FileConfig::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("k.toml") && e.contains("line 2") && e.contains("bogus"),
            "{e}"
        );
    }

    #[test]
    fn volume_tables_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "s3cret\n").unwrap();
        let text = format!(
            "blob_signing_key_file = {key:?}\nvolumes = [\"/a\", {{ path = \"/b\", read_only = true, min_free = \"1GiB\", storage_classes = [\"archive\"] }}]\n"
        );
        let path = dir.path().join("k.toml");
        std::fs::write(&path, text).unwrap();
        let c = FileConfig::load(&path).unwrap().validate("k.toml").unwrap();
        assert!(c.signing_key.is_some());
        assert!(c.volumes[0].allow_write && !c.volumes[1].allow_write && !c.volumes[1].allow_trash);
        assert_eq!(c.volumes[1].min_free_bytes, 1 << 30);
        assert_eq!(c.volumes[1].storage_classes, vec!["archive".to_owned()]);
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("2G").unwrap(), 2 << 30);
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("99999999999TiB").is_err());
    }
}
