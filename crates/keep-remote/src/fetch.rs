//! Fetching a block by its signed locator, as a pull worker does.

use std::fmt;

use http::{HeaderValue, Request, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use keep_locator::Locator;
use tokio::time::Instant;

use crate::body::{self, RequestBody};
use crate::remote::{block_answer, http_client, transport_error};
use crate::{RemoteBlock, RemoteConfig, RemoteError, check_url};

/// Fetches blocks from block servers as a Keep client does: `GET
/// {server}/{signed locator}` with `Authorization: Bearer <token>`, from a
/// peer of this cluster or an Arvados keepstore alike (a pull list may name
/// either). It sends no node credential and no `X-Keep-Local-Only`: a
/// server that is not a peer must not see the one, and a pull asks the
/// server for the block wherever it has it.
///
/// One `Fetcher` holds one pool of keep-alive connections (to every server
/// it fetched from), made as a [`crate::Remote`]'s are; clones share it.
/// Its timeouts come from the [`RemoteConfig`] it was made with:
/// `connect_timeout` to connect, `read_first_byte_timeout` for the answer
/// and the block's first bytes, `request_timeout` for each later gap
/// between chunks.
///
/// ```no_run
/// use futures::StreamExt;
/// use keep_locator::{BlockHash, Locator};
/// use keep_remote::{Fetcher, RemoteConfig};
///
/// # async fn example() -> Result<(), keep_remote::RemoteError> {
/// let fetcher = Fetcher::new(&RemoteConfig::default());
/// let locator = Locator::new(BlockHash::of(b"foo"), 3); // signed by the caller
/// let mut block = fetcher
///     .fetch("http://keep0.example:25107", &locator, "token", 3)
///     .await?;
/// while let Some(chunk) = block.chunks.next().await {
///     let chunk = chunk?; // verify against the hash as it streams
/// #   drop(chunk);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Fetcher {
    client: Client<HttpConnector, RequestBody>,
    config: RemoteConfig,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher with `config`'s timeouts. Nothing is sent until a fetch.
    pub fn new(config: &RemoteConfig) -> Fetcher {
        Fetcher {
            client: http_client(config),
            config: config.clone(),
        }
    }

    /// Fetches the block of `locator` (already signed by the caller, if
    /// the server checks signatures) from the server whose base url is
    /// `server` (`http://HOST:PORT`, see [`check_url`]): `GET
    /// {server}/{locator}` with `Authorization: Bearer {token}` (no
    /// `Authorization` when `token` is empty). The block must be `size`
    /// bytes; it is streamed as it arrives, never buffered, and not checked
    /// against its hash here (the caller does that as it stores it).
    ///
    /// The answer and the first bytes must come within
    /// `read_first_byte_timeout`, each later chunk within `request_timeout`
    /// of the one before; a stall is [`RemoteError::Timeout`] (on the
    /// stream, once it started).
    ///
    /// # Errors
    ///
    /// [`RemoteError::Connect`] for a url [`check_url`] refuses or a server
    /// that cannot be reached; [`RemoteError::Request`] when `locator`
    /// names another size or `token` cannot be a header;
    /// [`RemoteError::NotFound`] for a 404; [`RemoteError::Status`] for any
    /// other status but 200; [`RemoteError::Protocol`] when the answer's
    /// `Content-Length` is not `size`; [`RemoteError::Timeout`] when no
    /// answer came in time. The stream of chunks ends with
    /// [`RemoteError::Body`] if the block is shorter or longer than `size`.
    pub async fn fetch(
        &self,
        server: &str,
        locator: &Locator,
        token: &str,
        size: u64,
    ) -> Result<RemoteBlock, RemoteError> {
        check_url(server).map_err(RemoteError::Connect)?;
        if let Some(named) = locator.size
            && named != size
        {
            return Err(RemoteError::Request(format!(
                "locator {}+{named} asked for as {size} bytes",
                locator.hash
            )));
        }
        let url = format!("{}/{locator}", server.trim_end_matches('/'));
        let uri: Uri = url
            .parse()
            .map_err(|e| RemoteError::Request(format!("bad url {url:?}: {e}")))?;
        let mut req = Request::get(uri);
        if !token.is_empty() {
            let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| RemoteError::Request("the token cannot be a header".into()))?;
            authorization.set_sensitive(true);
            req = req.header(header::AUTHORIZATION, authorization);
        }
        let req = req
            .body(body::empty())
            .map_err(|e| RemoteError::Request(format!("bad request to {url:?}: {e}")))?;

        let first_byte = Instant::now() + self.config.read_first_byte_timeout;
        let resp = tokio::time::timeout_at(first_byte, self.client.request(req))
            .await
            .map_err(|_| RemoteError::Timeout)?
            .map_err(|e| transport_error(&e))?;
        block_answer(resp, size, first_byte, &self.config, || {
            format!("{server}, asked for {}+{size},", locator.hash)
        })
        .await
    }
}
