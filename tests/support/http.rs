//! A small blocking HTTP client for tests (ureq, statuses not turned into errors).

use std::io::{Read, Write};
use std::time::Duration;

/// An answer: status, headers of interest, body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Every header, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, trimmed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
}

/// A client for one base URL.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl Client {
    /// A client for `base` (like `http://127.0.0.1:1234`).
    pub fn new(base: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_owned(),
            agent,
            token: None,
        }
    }

    /// The same client, sending `Authorization: Bearer token`.
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request with optional body and extra headers; panics if the
    /// exchange fails (a status is not a failure).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.try_call(method, path, body, headers)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Client::call`], returning the failure of the exchange itself.
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let url = format!("{}{}", self.base, path);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            resp.body_mut()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()
                .map_err(|e| format!("{method} {url}: reading body: {e}"))?
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None, &[])
    }

    /// `PUT path` with `body`.
    pub fn put(&self, path: &str, body: &[u8]) -> Reply {
        self.call("PUT", path, Some(body), &[])
    }

    /// Stores `data` and returns the locator the node answered.
    pub fn put_block(&self, data: &[u8]) -> String {
        let r = self.put(&format!("/{}", crate::md5_hex(data)), data);
        assert_eq!(r.status, 200, "PUT failed: {}", r.text());
        r.text()
    }
}

/// Sends raw bytes on a fresh connection and returns the raw answer as
/// text (for requests a well-behaved client cannot make, like a short body).
pub fn raw(addr: &str, request: &[u8], close_write: bool) -> String {
    String::from_utf8_lossy(&raw_bytes(addr, request, close_write)).into_owned()
}

/// Like [`raw`], returning the answer's bytes.
pub fn raw_bytes(addr: &str, request: &[u8], close_write: bool) -> Vec<u8> {
    let host = addr.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.write_all(request).expect("send");
    if close_write {
        s.shutdown(std::net::Shutdown::Write).ok();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}
