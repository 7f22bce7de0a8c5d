//! Embedding a storage node in another tokio program.
//!
//! Run with `cargo run -p keep-server --example embed`; it serves a node on
//! a free loopback port over a temporary directory volume, stores a block
//! through its own HTTP API, reads it back, and shuts the node down.

use std::time::Duration;

use keep_server::config::{FileConfig, VolumeEntry};
use keep_server::{Keepstore, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("keep-embed-{}", std::process::id()));
    let file = FileConfig {
        listen: Some("127.0.0.1:0".into()),
        volumes: Some(vec![VolumeEntry::Spec(dir.display().to_string())]),
        shutdown_grace: Some("5s".into()),
        ..Default::default()
    };
    let node = Keepstore::open(file.validate("example")?).await?;
    let server = Server::bind(node).await?;
    let addr = server.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let put = "PUT /acbd18db4cc2f85cedef654fccc4a4d8 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nfoo";
    println!(
        "PUT answered: {}",
        exchange(addr, put).await?.lines().last().unwrap_or("")
    );
    let get =
        "GET /acbd18db4cc2f85cedef654fccc4a4d8+3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    println!(
        "GET answered: {}",
        exchange(addr, get).await?.lines().last().unwrap_or("")
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), serving).await??;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn exchange(addr: std::net::SocketAddr, request: &str) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(request.as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}
