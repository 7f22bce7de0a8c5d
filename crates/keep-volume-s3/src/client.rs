//! The S3 requests the volume makes: rusty-s3 signs them (presigned
//! SigV4 URLs, payload unsigned), reqwest carries them.
//!
//! Every request whose body can be sent again is retried with backoff on
//! connection failures, 5xx answers and throttling; a streamed PUT is
//! sent once, since its body is consumed as it goes.

use std::future::Future;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use keep_locator::BlockHash;
use reqwest::header::{CONTENT_LENGTH, ETAG, LAST_MODIFIED};
use reqwest::{Method, RequestBuilder, Response};
use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::error::{S3Error, xml_field};
use crate::options::{RetryPolicy, S3Options};
use crate::time::{http_date_secs, iso_secs};

/// How long a presigned URL stays valid: requests are signed right
/// before they are sent, so this only needs to cover clock skew.
const SIGN_FOR: Duration = Duration::from_secs(15 * 60);

/// The most of an error answer's body that is read.
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// The most of a listing page that is read (1000 keys take about 300 KiB).
const LISTING_LIMIT: usize = 16 << 20;

/// What a HEAD tells about an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjectMeta {
    /// Its size in bytes.
    pub(crate) size: u64,
    /// Its LastModified, unix seconds.
    pub(crate) modified: i64,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The full key.
    pub(crate) key: String,
    /// Size and LastModified.
    pub(crate) meta: ObjectMeta,
}

/// One page of a listing and where the next one starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListPage {
    /// The objects, in key order.
    pub(crate) objects: Vec<Listed>,
    /// The token for the next page, if there is one.
    pub(crate) next: Option<String>,
}

/// A bucket and the means to talk to it.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    bucket: Bucket,
    credentials: Option<Credentials>,
    retry: RetryPolicy,
    /// How long one try may wait for the store.
    patience: Duration,
}

impl Client {
    /// A client for the bucket the options name. Makes no request.
    pub(crate) fn new(opts: &S3Options) -> Result<Client, String> {
        let spec = &opts.spec;
        let style = if spec.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(
            spec.endpoint.clone(),
            style,
            spec.bucket.clone(),
            spec.region.clone(),
        )
        .map_err(|e| {
            format!(
                "cannot address bucket {} at {}: {e:?}",
                spec.bucket, spec.endpoint
            )
        })?;
        let credentials = (!opts.access_key.is_empty())
            .then(|| Credentials::new(opts.access_key.clone(), opts.secret_key.clone()));
        let http = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client {
            http,
            bucket,
            credentials,
            retry: opts.retry,
            patience: opts.read_timeout,
        })
    }

    fn creds(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// How long the store may stay silent (see `S3Options::read_timeout`).
    pub(crate) fn patience(&self) -> Duration {
        self.patience
    }

    /// Runs `op` until it succeeds, fails for good, or runs out of tries.
    async fn retrying<T, F, Fut>(&self, what: &str, op: F) -> Result<T, S3Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, S3Error>>,
    {
        self.retrying_within(what, self.patience, op).await
    }

    /// As [`retrying`](Self::retrying), each try given at most `limit`.
    async fn retrying_within<T, F, Fut>(
        &self,
        what: &str,
        limit: Duration,
        mut op: F,
    ) -> Result<T, S3Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, S3Error>>,
    {
        let mut attempt = 1;
        loop {
            let tried = tokio::time::timeout(limit, op()).await.unwrap_or_else(|_| {
                Err(S3Error::Transport(format!(
                    "{what}: no answer within {}s",
                    limit.as_secs_f32()
                )))
            });
            match tried {
                Err(e) if e.is_retryable() && attempt < self.retry.max_attempts.max(1) => {
                    let base = self.retry.delay(attempt);
                    let jitter = base.mul_f64(rand::random::<f64>() / 2.0);
                    tracing::debug!(what, attempt, error = %e, "S3 request failed; retrying");
                    tokio::time::sleep(base + jitter).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Whether the bucket exists and answers.
    pub(crate) async fn head_bucket(&self) -> Result<(), S3Error> {
        self.retrying("HEAD bucket", || async {
            let url = self.bucket.head_bucket(self.creds()).sign(SIGN_FOR);
            send(self.http.request(Method::HEAD, url)).await?;
            Ok(())
        })
        .await
    }

    /// One HEAD of the bucket, no retries: a cheap liveness probe.
    pub(crate) async fn probe_bucket(&self, limit: Duration) -> Result<(), S3Error> {
        let url = self.bucket.head_bucket(self.creds()).sign(SIGN_FOR);
        match tokio::time::timeout(limit, send(self.http.request(Method::HEAD, url))).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err(S3Error::Transport("HEAD bucket: no answer in time".into())),
        }
    }

    /// Size and LastModified of an object.
    pub(crate) async fn head(&self, key: &str) -> Result<ObjectMeta, S3Error> {
        self.head_tagged(key).await.map(|(meta, _)| meta)
    }

    /// [`head`](Self::head), and the object's ETag as S3 sent it (quotes
    /// included): it changes whenever the object is written with other
    /// content.
    pub(crate) async fn head_tagged(
        &self,
        key: &str,
    ) -> Result<(ObjectMeta, Option<String>), S3Error> {
        self.retrying("HEAD", || async {
            let url = self.bucket.head_object(self.creds(), key).sign(SIGN_FOR);
            let resp = send(self.http.request(Method::HEAD, url)).await?;
            let size = header(&resp, CONTENT_LENGTH.as_str())?
                .parse()
                .map_err(|_| S3Error::Protocol("bad Content-Length".into()))?;
            let modified = http_date_secs(&header(&resp, LAST_MODIFIED.as_str())?)
                .ok_or_else(|| S3Error::Protocol("bad Last-Modified".into()))?;
            Ok((
                ObjectMeta { size, modified },
                header(&resp, ETAG.as_str()).ok(),
            ))
        })
        .await
    }

    /// Starts reading an object; the answer's body streams its bytes.
    pub(crate) async fn get(&self, key: &str) -> Result<(u64, Response), S3Error> {
        self.retrying("GET", || async {
            let url = self.bucket.get_object(self.creds(), key).sign(SIGN_FOR);
            let resp = send(self.http.request(Method::GET, url)).await?;
            let size = header(&resp, CONTENT_LENGTH.as_str())?
                .parse()
                .map_err(|_| S3Error::Protocol("bad Content-Length".into()))?;
            Ok((size, resp))
        })
        .await
    }

    /// Stores the bytes of `parts`, in order, at `key`, with `Content-MD5`
    /// when `md5` is given. The parts are shared, not copied, between tries.
    pub(crate) async fn put_parts(
        &self,
        key: &str,
        parts: &[Bytes],
        md5: Option<&BlockHash>,
    ) -> Result<(), S3Error> {
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        // Sending from memory: allow one more second per MiB.
        let limit = self.patience + Duration::from_secs(len >> 20);
        self.retrying_within("PUT", limit, || async {
            let body = match parts {
                [] => reqwest::Body::from(Bytes::new()),
                [one] => reqwest::Body::from(one.clone()),
                many => {
                    let chunks: Vec<Result<Bytes, std::convert::Infallible>> =
                        many.iter().cloned().map(Ok).collect();
                    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
                }
            };
            send(self.put_request(key, len, md5).body(body)).await?;
            Ok(())
        })
        .await
    }

    /// Writes an empty object (an mtime marker), which sets its
    /// LastModified to now.
    pub(crate) async fn put_empty(&self, key: &str) -> Result<(), S3Error> {
        self.put_parts(key, &[], None).await
    }

    /// Stores a streamed body of exactly `len` bytes at `key`, once.
    pub(crate) async fn put_stream(
        &self,
        key: &str,
        len: u64,
        md5: &BlockHash,
        body: reqwest::Body,
    ) -> Result<(), S3Error> {
        send(self.put_request(key, len, Some(md5)).body(body)).await?;
        Ok(())
    }

    fn put_request(&self, key: &str, len: u64, md5: Option<&BlockHash>) -> RequestBuilder {
        let url = self.bucket.put_object(self.creds(), key).sign(SIGN_FOR);
        let mut req = self
            .http
            .request(Method::PUT, url)
            .header(CONTENT_LENGTH, len)
            .header("content-type", "application/octet-stream");
        if let Some(md5) = md5 {
            req = req.header("content-md5", content_md5(md5));
        }
        req
    }

    /// Copies the object at `from` to `to` inside the bucket.
    pub(crate) async fn copy(&self, from: &str, to: &str) -> Result<(), S3Error> {
        let source = format!("/{}/{from}", self.bucket.name());
        self.retrying("COPY", || async {
            let mut action = self.bucket.put_object(self.creds(), to);
            action
                .headers_mut()
                .insert("x-amz-copy-source", source.as_str());
            let url = action.sign(SIGN_FOR);
            let req = self
                .http
                .request(Method::PUT, url)
                .header("x-amz-copy-source", source.as_str())
                .header(CONTENT_LENGTH, 0);
            // S3 may report a failed copy inside a 200 answer.
            let body = read_limited(send(req).await?).await?;
            if body.contains("<Error>") {
                return Err(S3Error::Status {
                    status: 200,
                    code: xml_field(&body, "Code").unwrap_or_default(),
                    message: xml_field(&body, "Message").unwrap_or_default(),
                });
            }
            Ok(())
        })
        .await
    }

    /// Deletes an object (deleting a missing one succeeds, as in S3).
    pub(crate) async fn delete(&self, key: &str) -> Result<(), S3Error> {
        self.retrying("DELETE", || async {
            let url = self.bucket.delete_object(self.creds(), key).sign(SIGN_FOR);
            match send(self.http.request(Method::DELETE, url)).await {
                Ok(_) | Err(S3Error::NotFound) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// One page of the keys under `prefix`, at most `max_keys` long.
    pub(crate) async fn list(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: u32,
    ) -> Result<ListPage, S3Error> {
        self.retrying("LIST", || async {
            let mut action = self.bucket.list_objects_v2(self.creds());
            action.with_prefix(prefix);
            action.with_max_keys(max_keys.max(1) as usize);
            if let Some(token) = token {
                action.with_continuation_token(token);
            }
            let url = action.sign(SIGN_FOR);
            let body = read_limited_to(send(self.http.get(url)).await?, LISTING_LIMIT).await?;
            parse_listing(&body)
        })
        .await
    }
}

/// The `Content-MD5` value of a block: base64 of the 16 digest bytes.
pub(crate) fn content_md5(hash: &BlockHash) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash.as_bytes())
}

/// Sends a request and turns a non-2xx answer into its error.
async fn send(req: RequestBuilder) -> Result<Response, S3Error> {
    let resp = req.send().await?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body = read_limited(resp).await.unwrap_or_default();
    Err(S3Error::from_answer(status, &body))
}

async fn read_limited(resp: Response) -> Result<String, S3Error> {
    read_limited_to(resp, ERROR_BODY_LIMIT).await
}

/// The body as text, cut at `limit` bytes.
async fn read_limited_to(mut resp: Response, limit: usize) -> Result<String, S3Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= limit {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn header(resp: &Response, name: &str) -> Result<String, S3Error> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| S3Error::Protocol(format!("answer has no {name} header")))
}

/// A ListObjectsV2 answer as a page of keys with sizes and times.
fn parse_listing(body: &str) -> Result<ListPage, S3Error> {
    let parsed = ListObjectsV2::parse_response(body)
        .map_err(|e| S3Error::Protocol(format!("bad listing: {e}")))?;
    let mut objects = Vec::with_capacity(parsed.contents.len());
    for c in parsed.contents {
        let modified = c
            .last_modified
            .as_deref()
            .and_then(iso_secs)
            .ok_or_else(|| {
                S3Error::Protocol(format!("listing of {} has no LastModified", c.key))
            })?;
        objects.push(Listed {
            key: c.key,
            meta: ObjectMeta {
                size: c.size.unwrap_or(0),
                modified,
            },
        });
    }
    Ok(ListPage {
        objects,
        next: parsed.next_continuation_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_md5_is_base64_of_the_digest() {
        assert_eq!(
            content_md5(&BlockHash::of(b"foo")),
            "rL0Y20zC+Fzt72VPzMSk2A=="
        );
        assert_eq!(content_md5(&BlockHash::EMPTY), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }

    #[test]
    fn parses_a_listing() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated><Contents><Key>v/acb</Key><LastModified>2026-11-21T21:31:55.000Z</LastModified><ETag>"x"</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents><Name>bkt</Name><Prefix>v/</Prefix><MaxKeys>1</MaxKeys><EncodingType>url</EncodingType><KeyCount>1</KeyCount><NextContinuationToken>tok</NextContinuationToken></ListBucketResult>"#;
        let page = parse_listing(xml).unwrap();
        assert_eq!(page.next.as_deref(), Some("tok"));
        assert_eq!(page.objects.len(), 1);
        assert_eq!(page.objects[0].key, "v/acb");
        assert_eq!(page.objects[0].meta.size, 3);
        assert_eq!(
            page.objects[0].meta.modified,
            iso_secs("2026-11-21T21:31:55Z").unwrap()
        );
        assert!(matches!(
            parse_listing("<nope/>"),
            Err(S3Error::Protocol(_))
        ));
    }
}
