//! HTTP plumbing shared by the `keepstore` and `introducer` services.
//!
//! - [`serve()`]: an accept loop that survives `accept()` errors, bounds the
//!   number of open connections, sets `TCP_NODELAY`, and shuts down
//!   gracefully: stop accepting, let in-flight requests finish within a
//!   deadline, then close what is left.
//! - [`body`]: the boxed response body type and small constructors.
//! - [`signal`]: a future that resolves on SIGTERM or SIGINT.
//! - [`request_id`]: request ids as Arvados formats them.
//!
//! One request served on a free port, until shutdown:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use http::{Request, StatusCode};
//! use hyper::body::Incoming;
//! use keep_http::{ServeOptions, body, serve};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let handler = |req: Request<Incoming>| async move {
//!     body::text(StatusCode::OK, format!("hello from {}", req.uri().path()))
//! };
//! let server = serve(
//!     listener,
//!     handler,
//!     async {
//!         let _ = stopped.await;
//!     },
//!     ServeOptions::default(),
//! );
//! let client = async {
//!     let mut conn = TcpStream::connect(addr).await?;
//!     conn.write_all(b"GET /keep HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
//!         .await?;
//!     let mut answer = String::new();
//!     conn.read_to_string(&mut answer).await?;
//!     let _ = stop.send(());
//!     Ok::<_, std::io::Error>(answer)
//! };
//! let (drained, answer) = tokio::join!(server, client);
//! let answer = answer?;
//! assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
//! assert!(answer.ends_with("\r\n\r\nhello from /keep\n"), "{answer}");
//! assert!(drained, "every connection closed within the grace period");
//! # Ok(())
//! # }
//! ```

pub mod body;
pub mod deadline;
pub mod request_id;
pub mod serve;
pub mod signal;

pub use body::{Body, BoxError};
pub use serve::{ServeOptions, serve};
