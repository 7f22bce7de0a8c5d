//! The open-file limit a node needs: every connection, every volume's
//! files, the node's own state and its connections to peers and S3 each
//! hold a descriptor. A node raises its soft limit at start, or refuses to
//! start when even the hard limit is too low, instead of failing requests
//! (or its journal) with `EMFILE` under load.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::config::Config;

/// Descriptors kept for the node itself: its state files, the pull index,
/// logs, and its own connections to peers, introducers and S3.
pub const RESERVED: u64 = 512;
/// Descriptors per volume: the journal, its placer, locks, open blocks.
pub const PER_VOLUME: u64 = 64;
/// The soft limit is raised at most this far (as Go's runtime does).
pub const CEILING: u64 = 1 << 20;

/// The open-file limit a node with `config` needs.
pub fn open_files_needed(config: &Config) -> u64 {
    config.max_connections as u64 + RESERVED + PER_VOLUME * config.volumes.len() as u64
}

/// The limit was too low and could not be raised.
#[derive(Debug, thiserror::Error)]
#[error(
    "the open-file limit (RLIMIT_NOFILE) is {hard} at most, below the {needed} that \
     max_connections = {max_connections} and {volumes} volume(s) need: raise the hard limit \
     (ulimit -Hn, systemd's LimitNOFILE=) or lower max_connections"
)]
pub struct LimitError {
    /// The hard limit.
    pub hard: u64,
    /// What the node needs.
    pub needed: u64,
    /// Its `max_connections`.
    pub max_connections: usize,
    /// Its volumes.
    pub volumes: usize,
}

/// Raises this process's soft open-file limit to its hard limit (at most
/// [`CEILING`]) when it is below what `config` needs; the soft limit now
/// in force. Errs, changing nothing, when the hard limit is below the need.
pub fn raise_open_files(config: &Config) -> Result<u64, LimitError> {
    let needed = open_files_needed(config);
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return Ok(soft);
    }
    let error = || LimitError {
        hard,
        needed,
        max_connections: config.max_connections,
        volumes: config.volumes.len(),
    };
    if hard < needed {
        return Err(error());
    }
    let raised = hard.min(CEILING).max(needed);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(raised),
            maximum: limit.maximum,
        },
    )
    .map_err(|_| error())?;
    tracing::info!(
        from = soft,
        to = raised,
        needed,
        "raised the open-file limit"
    );
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_need_grows_with_connections_and_volumes() {
        let mut config = Config::embedded_default();
        config.max_connections = 1000;
        let one = open_files_needed(&config);
        assert_eq!(one, 1000 + RESERVED + PER_VOLUME);
        config.volumes.push(config.volumes[0].clone());
        assert_eq!(open_files_needed(&config), one + PER_VOLUME);
    }

    #[test]
    fn a_need_within_the_soft_limit_changes_nothing() {
        let mut config = Config::embedded_default();
        config.max_connections = 1;
        let before = getrlimit(Resource::Nofile);
        let soft = raise_open_files(&config).unwrap();
        assert_eq!(Some(soft), before.current.or(Some(u64::MAX)));
        assert_eq!(getrlimit(Resource::Nofile), before);
    }
}
