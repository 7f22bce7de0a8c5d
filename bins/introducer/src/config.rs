//! Configuration in two stages: the TOML file's fields (all optional),
//! overridden by flags, then checked into what the server runs with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use keep_introducer::ClusterKey;
use serde::Deserialize;

/// The address the introducer listens on by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:25108";
/// The state directory by default.
pub const DEFAULT_STATE_DIR: &str = "./introducer-state";
/// The key file used, and created if missing, when none is configured.
pub const GENERATED_KEY_FILE: &str = "cluster-key";

/// Command-line flags; each overrides the same field of the config file.
#[derive(Debug, Parser)]
#[command(
    name = "introducer",
    version,
    about = "Keep introducer: nodes publish their services here and learn their peers"
)]
pub struct Flags {
    /// TOML config file with the fields listen, state_dir, cluster_key_file, status_pages.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:25108].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Where announcements survive restarts [default: ./introducer-state].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The cluster's shared secret [default: STATE_DIR/cluster-key, created if missing].
    #[arg(long, value_name = "FILE")]
    pub cluster_key_file: Option<PathBuf>,
}

/// The config file's fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    state_dir: Option<PathBuf>,
    cluster_key_file: Option<PathBuf>,
    /// Whether `GET /` (to a browser) and `/_status.json` answer the
    /// status page (default true).
    status_pages: Option<bool>,
}

/// What the introducer runs with.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub cluster_key: ClusterKey,
    /// The key file, and whether it was just generated.
    pub key_file: PathBuf,
    pub key_generated: bool,
    /// Whether the status page and `/_status.json` are served.
    pub status_pages: bool,
}

impl Flags {
    /// Reads the config file if any, applies the flags over it and checks
    /// the result. Errors name the field and where it came from.
    pub fn resolve(self) -> anyhow::Result<Config> {
        let (file, origin) = match &self.config {
            Some(path) => (read_file(path)?, format!("config file {}", path.display())),
            None => (FileConfig::default(), "defaults".to_owned()),
        };
        let (listen, listen_origin) = match (self.listen, file.listen) {
            (Some(flag), _) => (flag, "flag --listen".to_owned()),
            (None, Some(v)) => (v, format!("field `listen` in {origin}")),
            (None, None) => (DEFAULT_LISTEN.to_owned(), "default".to_owned()),
        };
        let listen: SocketAddr = listen.parse().with_context(|| {
            format!("{listen_origin}: {listen:?} is not an address like 127.0.0.1:25108")
        })?;
        let state_dir = self
            .state_dir
            .or(file.state_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let (cluster_key, key_file, key_generated) =
            match (self.cluster_key_file, file.cluster_key_file) {
                (Some(path), _) => (load_key(&path, "flag --cluster-key-file")?, path, false),
                (None, Some(path)) => {
                    let what = format!("field `cluster_key_file` in {origin}");
                    (load_key(&path, &what)?, path, false)
                }
                (None, None) => {
                    std::fs::create_dir_all(&state_dir).with_context(|| {
                        format!("cannot create state_dir {}", state_dir.display())
                    })?;
                    let path = state_dir.join(GENERATED_KEY_FILE);
                    let (key, created) = ClusterKey::load_or_create(&path)?;
                    (key, path, created)
                }
            };
        Ok(Config {
            listen,
            state_dir,
            cluster_key,
            key_file,
            key_generated,
            status_pages: file.status_pages.unwrap_or(true),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    match toml::from_str(&text) {
        Ok(config) => Ok(config),
        Err(e) => bail!("config file {}: {e}", path.display()),
    }
}

fn load_key(path: &Path, what: &str) -> anyhow::Result<ClusterKey> {
    ClusterKey::from_file(path).with_context(|| what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::try_parse_from(std::iter::once("introducer").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "secret\n").unwrap();
        let file = dir.path().join("introducer.toml");
        std::fs::write(
            &file,
            format!(
                "listen = \"127.0.0.1:7000\"\nstate_dir = \"{}\"\ncluster_key_file = \"{}\"\n",
                dir.path().join("st").display(),
                key.display()
            ),
        )
        .unwrap();
        let c = flags(&["-c", file.to_str().unwrap()]).resolve().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.state_dir, dir.path().join("st"));
        let c = flags(&["-c", file.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .resolve()
            .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:0");
        assert!(!c.key_generated);
    }

    #[test]
    fn errors_name_the_field_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        let file_s = file.to_str().unwrap();
        for (content, field) in [
            ("listen = \"nowhere\"\n", "listen"),
            ("listen = 5\n", "listen"),
            ("lisen = \"127.0.0.1:1\"\n", "lisen"),
            (
                "cluster_key_file = \"/nonexistent/key\"\n",
                "cluster_key_file",
            ),
        ] {
            std::fs::write(&file, content).unwrap();
            let err = format!("{:#}", flags(&["-c", file_s]).resolve().unwrap_err());
            assert!(err.contains(field), "{field} in {err}");
            assert!(err.contains(file_s), "{file_s} in {err}");
        }
    }

    #[test]
    fn without_a_key_file_one_is_generated_in_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let c = flags(&["--state-dir", state.to_str().unwrap()])
            .resolve()
            .unwrap();
        assert!(c.key_generated);
        assert_eq!(c.key_file, state.join(GENERATED_KEY_FILE));
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        let again = flags(&["--state-dir", state.to_str().unwrap()])
            .resolve()
            .unwrap();
        assert!(!again.key_generated);
    }
}
