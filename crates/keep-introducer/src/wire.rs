//! Names and shapes both sides of the protocol share: routes, headers, the
//! announce reply and the query of the announcements route.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::announcement::is_token;

/// Where publishers send announcements (`POST` or `PUT`).
pub const ANNOUNCE_PATH: &str = "/v1/announce";
/// Where subscribers read announcements (`GET`).
pub const ANNOUNCEMENTS_PATH: &str = "/v1/announcements";
/// The response header carrying the version token of the answer.
pub const VERSION_HEADER: &str = "x-introducer-version";
/// The largest announce body accepted, in bytes.
pub const MAX_ANNOUNCE_BODY: usize = 64 * 1024;

/// The body of every answer to an announce request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceReply {
    /// `accepted`, `duplicate`, `replay`, `bad_signature`, `invalid`,
    /// `malformed` or `error`.
    pub outcome: String,
    /// For a replay: the seqnum the introducer keeps for that (service, uuid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_seqnum: Option<u64>,
    /// What was wrong, for refusals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The query of `GET /v1/announcements`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `service=NAME`, repeatable; none means every service.
    pub services: Vec<String>,
    /// `since=TOKEN`: answer once the version token differs from this one.
    pub since: Option<String>,
    /// `wait=SECONDS`: how long to hold the request when nothing changed.
    pub wait: Duration,
    /// `withdrawn=true`: answer the tombstones (signed withdrawals) too,
    /// so a client that merges several introducers can honour them.
    pub withdrawn: bool,
}

impl ListQuery {
    /// Parses a query string. Unknown keys are ignored; values are never
    /// percent-encoded because every valid one is a plain token.
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut out = ListQuery::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "service" if is_token(v) => out.services.push(v.to_owned()),
                "service" => return Err(format!("invalid service name {v:?}")),
                "since" if is_token(v) => out.since = Some(v.to_owned()),
                "since" => return Err(format!("invalid since token {v:?}")),
                "wait" => {
                    let secs: u64 = v.parse().map_err(|_| format!("invalid wait {v:?}"))?;
                    out.wait = Duration::from_secs(secs);
                }
                "withdrawn" => {
                    out.withdrawn = match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(format!("invalid withdrawn {v:?}")),
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The query string for this query, without the `?`.
    pub fn to_query(&self) -> String {
        let mut parts: Vec<String> = self
            .services
            .iter()
            .map(|s| format!("service={s}"))
            .collect();
        if let Some(since) = &self.since {
            parts.push(format!("since={since}"));
        }
        if !self.wait.is_zero() {
            parts.push(format!("wait={}", self.wait.as_secs().max(1)));
        }
        if self.withdrawn {
            parts.push("withdrawn=true".into());
        }
        parts.join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip() {
        let q = ListQuery {
            services: vec!["upload_storage".into(), "download_storage".into()],
            since: Some("0123abcd-7".into()),
            wait: Duration::from_secs(20),
            withdrawn: true,
        };
        assert_eq!(ListQuery::parse(Some(&q.to_query())).unwrap(), q);
        let plain = ListQuery {
            withdrawn: false,
            ..q.clone()
        };
        assert_eq!(ListQuery::parse(Some(&plain.to_query())).unwrap(), plain);
        assert!(ListQuery::parse(Some("withdrawn=1")).unwrap().withdrawn);
        assert!(ListQuery::parse(Some("withdrawn=yes")).is_err());
        assert_eq!(ListQuery::parse(None).unwrap(), ListQuery::default());
        assert_eq!(
            ListQuery::parse(Some("service=a&x=y&&")).unwrap().services,
            vec!["a".to_string()]
        );
        assert!(ListQuery::parse(Some("service=a%20b")).is_err());
        assert!(ListQuery::parse(Some("wait=soon")).is_err());
        assert!(ListQuery::parse(Some("since=")).is_err());
    }
}
