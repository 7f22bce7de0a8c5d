//! `introducer`: the Keep service-discovery server. Parses flags and the
//! config file, then runs `keep_introducer::server` until SIGTERM or SIGINT.

mod config;

use anyhow::Context;
use clap::Parser;
use keep_introducer::server::{self, ServerConfig};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("introducer: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("introducer: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = config::Flags::parse().resolve()?;
    if config.key_generated {
        tracing::warn!(key_file = %config.key_file.display(),
            "no cluster key configured: generated one; give nodes the same file");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    tracing::info!(%addr, state_dir = %config.state_dir.display(), "introducer started");
    let mut server_config = ServerConfig::new(config.state_dir, config.cluster_key);
    server_config.status_pages = config.status_pages;
    server::run(server_config, listener, keep_http::signal::terminate()).await?;
    tracing::info!("introducer stopped");
    Ok(())
}
