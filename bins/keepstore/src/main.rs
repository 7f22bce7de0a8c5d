//! `keepstore`: a storage node. Flags override the TOML file given with
//! `-c`; with no flags at all it serves `./keep-data` on 127.0.0.1:25107.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use keep_server::config::{FileConfig, VolumeEntry, defaults};
use keep_server::{Keepstore, Server};

#[derive(Debug, Parser)]
#[command(version, about = "A Keep storage node (Arvados keepstore compatible)")]
struct Flags {
    /// TOML config file; flags override its fields.
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, help = format!("Address to listen on [default: {}]", defaults::LISTEN))]
    listen: Option<String>,
    /// A directory path or s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME; repeatable.
    #[arg(long = "volume", help = format!(
        "A directory path or s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME; repeatable [default: {}]",
        defaults::VOLUME
    ))]
    volumes: Vec<String>,
    /// File holding the blob signing key; turns permission signatures on.
    #[arg(long)]
    blob_signing_key_file: Option<PathBuf>,
    /// Signature lifetime.
    #[arg(long, help = format!(
        "Signature lifetime [default: {}h]",
        defaults::BLOB_SIGNING_TTL.as_secs() / 3600
    ))]
    blob_signing_ttl: Option<String>,
    /// File holding the token that admin requests carry.
    #[arg(long)]
    system_root_token_file: Option<PathBuf>,
    /// Introducer URL; repeatable.
    #[arg(long = "introducer")]
    introducers: Vec<String>,
    /// File holding the secret shared by the nodes of one cluster.
    #[arg(long)]
    cluster_key_file: Option<PathBuf>,
    /// How other nodes reach this one.
    #[arg(long)]
    public_url: Option<String>,
    /// This node's uuid [default: generated once, then kept].
    #[arg(long)]
    uuid: Option<String>,
    /// The cluster's desired copies per block.
    #[arg(long, help = format!(
        "The cluster's desired copies per block [default: {}]",
        defaults::REPLICATION
    ))]
    replication: Option<u32>,
    /// Serve reads only.
    #[arg(long)]
    read_only: bool,
}

impl Flags {
    /// The file's settings with the flags laid over them.
    fn merge(self) -> anyhow::Result<(FileConfig, String)> {
        let (mut cfg, source) = match &self.config {
            Some(path) => (FileConfig::load(path)?, path.display().to_string()),
            None => (FileConfig::default(), "command line".to_owned()),
        };
        set(&mut cfg.listen, self.listen);
        set(&mut cfg.blob_signing_key_file, self.blob_signing_key_file);
        set(&mut cfg.blob_signing_ttl, self.blob_signing_ttl);
        set(&mut cfg.system_root_token_file, self.system_root_token_file);
        set(&mut cfg.cluster_key_file, self.cluster_key_file);
        set(&mut cfg.public_url, self.public_url);
        set(&mut cfg.uuid, self.uuid);
        set(&mut cfg.replication, self.replication);
        if !self.volumes.is_empty() {
            cfg.volumes = Some(self.volumes.into_iter().map(VolumeEntry::Spec).collect());
        }
        if !self.introducers.is_empty() {
            cfg.introducer = Some(self.introducers);
        }
        if self.read_only {
            cfg.read_only = Some(true);
        }
        Ok((cfg, source))
    }
}

/// Replaces `slot` with `value` when the flag was given.
fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let (file, source) = Flags::parse().merge()?;
    let config = file.validate(&source)?;
    keep_server::limits::raise_open_files(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let listen = config.listen;
        let node = Keepstore::open(config).await?;
        let server = Server::start(node)
            .await
            .with_context(|| format!("starting on {listen}"))?;
        let addr = server.local_addr()?;
        let node = server.node();
        tracing::info!(uuid = %node.uuid(), %addr, volumes = node.store().volumes().len(), "keepstore started");
        println!("listening on http://{addr}");
        let drained = server.run(keep_http::signal::terminate()).await;
        tracing::info!(drained, "keepstore stopped");
        anyhow::Ok(())
    })
}
