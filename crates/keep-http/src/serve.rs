//! The accept loop.
//!
//! Architecture invariant: nothing a client does can end the loop. A failed
//! `accept()` (for example EMFILE) is logged and retried after a pause; only
//! the shutdown future stops it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::Body;
use crate::deadline::WriteDeadline;

/// Limits of the accept loop.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Open connections at most; past it the loop stops accepting until one closes.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long a write of an answer may wait for the client to read: past
    /// it the connection ends (a client that never reads holds no slot).
    pub write_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves HTTP/1.1 on `listener` with `handler` until `shutdown` resolves,
/// then stops accepting and waits up to `opts.shutdown_grace` for open
/// requests to finish. Returns whether every connection closed in time.
pub async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
    opts: ServeOptions,
) -> bool
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    handle_accept_error(&e).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %peer, "set_nodelay failed");
        }
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let fut = handler(req);
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let stream = WriteDeadline::new(stream, opts.write_timeout);
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!(grace = ?opts.shutdown_grace, "stopped accepting; draining open connections");
    match tokio::time::timeout(opts.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => true,
        Err(_) => {
            tracing::warn!("shutdown grace period ended with connections still open");
            false
        }
    }
}

/// Logs an `accept()` failure and pauses: longer when out of file
/// descriptors, so the process can recover instead of spinning.
async fn handle_accept_error(e: &std::io::Error) {
    let fd_exhausted = matches!(e.raw_os_error(), Some(23 | 24)); // ENFILE, EMFILE
    let pause = if fd_exhausted {
        Duration::from_millis(500)
    } else {
        Duration::from_millis(20)
    };
    tracing::error!(error = %e, ?pause, "accept failed; retrying");
    tokio::time::sleep(pause).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_and_drains_on_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let started = Arc::new(tokio::sync::Notify::new());
        let seen = started.clone();
        let server = tokio::spawn(serve(
            listener,
            move |_req| {
                let seen = seen.clone();
                async move {
                    seen.notify_one();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Response::new(body::full("hi"))
                }
            },
            async {
                let _ = rx.await;
            },
            ServeOptions::default(),
        ));
        let first = get(addr).await;
        started.notified().await; // consume the first request's permit
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        assert!(first.ends_with("hi"), "{first}");
        // A request in flight when shutdown starts still completes.
        let slow = tokio::spawn(get(addr));
        started.notified().await;
        tx.send(()).unwrap();
        assert!(slow.await.unwrap().ends_with("hi"));
        assert!(server.await.unwrap(), "drained in time");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_client_that_never_reads_gives_its_slot_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = ServeOptions {
            max_connections: 1,
            write_timeout: Duration::from_millis(300),
            ..ServeOptions::default()
        };
        tokio::spawn(serve(
            listener,
            |req: Request<Incoming>| async move {
                let big = req.uri().path() == "/big";
                Response::new(body::full(if big {
                    vec![0u8; 64 << 20]
                } else {
                    b"ok".to_vec()
                }))
            },
            std::future::pending(),
            opts,
        ));
        // The only slot: a client asks for 64 MiB and reads none of it.
        let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        // Another client is served once the stalled write times out.
        let answer = tokio::time::timeout(Duration::from_secs(10), get(addr))
            .await
            .expect("served while the slot's client stalls");
        assert!(answer.ends_with("ok"), "{answer}");
        drop(stalled);
    }
}
