//! The `--volume` spec of an S3 volume:
//! `s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME[&prefix_length=N]`.

use url::Url;

/// The region used when the spec names none.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The longest hash prefix that may shard the keys.
pub const MAX_PREFIX_LENGTH: usize = 32;

/// Where an S3 volume keeps its blocks, as parsed from a `--volume` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Spec {
    /// The bucket name.
    pub bucket: String,
    /// The key prefix inside the bucket, without leading or trailing `/`
    /// (empty for the bucket's root).
    pub prefix: String,
    /// The S3 endpoint (`https://s3.<region>.amazonaws.com` when the spec
    /// names none).
    pub endpoint: Url,
    /// Whether requests address the bucket in the path
    /// (`endpoint/bucket/key`, for custom endpoints) rather than in the host
    /// name (`bucket.endpoint/key`, for AWS).
    pub path_style: bool,
    /// The signing region.
    pub region: String,
    /// Shard data keys by this many leading hex digits of the hash
    /// (`abc/abc…`), as Arvados's `PrefixLength`; 0 keeps them flat.
    pub prefix_length: usize,
}

/// Why a volume spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The spec does not start with `s3://`.
    #[error("an S3 volume spec starts with s3://, got {0:?}")]
    NotS3(String),
    /// The bucket name breaks S3's naming rules.
    #[error("invalid bucket name {name:?}: {reason}")]
    BadBucket {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The key prefix has an empty segment or a character outside
    /// `A-Z a-z 0-9 . _ -`.
    #[error("invalid key prefix {prefix:?}: {reason}")]
    BadPrefix {
        /// The prefix as given.
        prefix: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The `endpoint` value is not an http(s) URL with a host.
    #[error("invalid endpoint {value:?}: {reason}")]
    BadEndpoint {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The `region` value is empty or has characters other than letters,
    /// digits and `-`.
    #[error("invalid region {0:?}")]
    BadRegion(String),
    /// The `prefix_length` value is not a number from 0 to 32.
    #[error("invalid prefix_length {0:?}: expected a number from 0 to 32")]
    BadPrefixLength(String),
    /// A query key the spec does not know.
    #[error("unknown key {0:?} in the S3 volume spec (known: endpoint, region, prefix_length)")]
    UnknownKey(String),
    /// A query key given twice.
    #[error("key {0:?} appears twice in the S3 volume spec")]
    DuplicateKey(String),
}

impl S3Spec {
    /// Parses `s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME[&prefix_length=N]`.
    ///
    /// Query values are percent-decoded. Without `endpoint` the volume uses
    /// AWS (`https://s3.<region>.amazonaws.com`, virtual-host addressing);
    /// with one it uses path-style addressing, as S3-compatible stores
    /// expect. Without `region` it signs for `us-east-1`.
    ///
    /// # Errors
    ///
    /// A [`SpecError`] naming the part that is wrong.
    pub fn parse(spec: &str) -> Result<S3Spec, SpecError> {
        let rest = spec
            .strip_prefix("s3://")
            .ok_or_else(|| SpecError::NotS3(spec.to_owned()))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        check_bucket(bucket)?;
        let prefix = check_prefix(prefix)?;

        let mut endpoint = None;
        let mut region = None;
        let mut prefix_length = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "endpoint" => &mut endpoint,
                "region" => &mut region,
                "prefix_length" => &mut prefix_length,
                other => return Err(SpecError::UnknownKey(other.to_owned())),
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(SpecError::DuplicateKey(key.into_owned()));
            }
        }

        let region = region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(SpecError::BadRegion(region));
        }
        let prefix_length = match prefix_length {
            None => 0,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n <= MAX_PREFIX_LENGTH => n,
                _ => return Err(SpecError::BadPrefixLength(v)),
            },
        };
        let (endpoint, path_style) = match endpoint {
            Some(value) => (check_endpoint(&value)?, true),
            None => {
                let aws = format!("https://s3.{region}.amazonaws.com");
                (check_endpoint(&aws)?, false)
            }
        };
        Ok(S3Spec {
            bucket: bucket.to_owned(),
            prefix,
            endpoint,
            path_style,
            region,
            prefix_length,
        })
    }

    /// `host[:port]` of the endpoint, as it appears in the device id.
    pub fn endpoint_authority(&self) -> String {
        let host = self.endpoint.host_str().unwrap_or_default();
        match self.endpoint.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }
}

impl std::fmt::Display for S3Spec {
    /// The spec in its canonical form (parses back to the same value when
    /// the endpoint was given).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        write!(f, "?endpoint={}&region={}", self.endpoint, self.region)?;
        if self.prefix_length > 0 {
            write!(f, "&prefix_length={}", self.prefix_length)?;
        }
        Ok(())
    }
}

/// S3's bucket naming rules (the subset every S3-compatible store accepts).
fn check_bucket(name: &str) -> Result<(), SpecError> {
    let bad = |reason| {
        Err(SpecError::BadBucket {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("the spec names no bucket");
    }
    if !(3..=63).contains(&name.len()) {
        return bad("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(name.as_bytes()[0]) || !alnum(name.as_bytes()[name.len() - 1]) {
        return bad("must start and end with a letter or digit");
    }
    if name.contains("..") {
        return bad("must not contain two adjacent periods");
    }
    Ok(())
}

/// A prefix of non-empty segments of safe characters, so keys need no
/// escaping anywhere (URL paths, copy sources, listings).
fn check_prefix(prefix: &str) -> Result<String, SpecError> {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let bad = |reason| {
        Err(SpecError::BadPrefix {
            prefix: prefix.to_owned(),
            reason,
        })
    };
    for segment in trimmed.split('/') {
        if segment.is_empty() {
            return bad("empty path segment");
        }
        if segment == "." || segment == ".." {
            return bad("'.' and '..' segments are not allowed");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return bad("only letters, digits, '.', '_', '-' and '/' are allowed");
        }
    }
    Ok(trimmed.to_owned())
}

fn check_endpoint(value: &str) -> Result<Url, SpecError> {
    let bad = |reason: String| SpecError::BadEndpoint {
        value: value.to_owned(),
        reason,
    };
    let url = Url::parse(value).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme must be http or https, not {}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not carry credentials (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                .to_owned(),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_spec() {
        let s = S3Spec::parse(
            "s3://bucket/some/prefix?endpoint=http://127.0.0.1:9000&region=us-west-2&prefix_length=3",
        )
        .unwrap();
        assert_eq!(s.bucket, "bucket");
        assert_eq!(s.prefix, "some/prefix");
        assert_eq!(s.endpoint.as_str(), "http://127.0.0.1:9000/");
        assert!(s.path_style);
        assert_eq!(s.region, "us-west-2");
        assert_eq!(s.prefix_length, 3);
        assert_eq!(s.endpoint_authority(), "127.0.0.1:9000");
        assert_eq!(S3Spec::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn defaults() {
        let s = S3Spec::parse("s3://my-bucket").unwrap();
        assert_eq!(s.prefix, "");
        assert_eq!(s.region, "us-east-1");
        assert_eq!(s.endpoint.as_str(), "https://s3.us-east-1.amazonaws.com/");
        assert!(!s.path_style);
        assert_eq!(s.prefix_length, 0);
        let s = S3Spec::parse("s3://my-bucket/?region=eu-west-1").unwrap();
        assert_eq!(s.prefix, "");
        assert_eq!(s.endpoint.as_str(), "https://s3.eu-west-1.amazonaws.com/");
        let s = S3Spec::parse("s3://b12/p/?endpoint=https%3A%2F%2Fminio.local%3A9000").unwrap();
        assert_eq!(s.prefix, "p");
        assert_eq!(s.endpoint_authority(), "minio.local:9000");
    }

    #[test]
    fn precise_errors() {
        let err = |s: &str| S3Spec::parse(s).unwrap_err();
        assert_eq!(err("/data/keep"), SpecError::NotS3("/data/keep".into()));
        assert!(
            matches!(err("s3://"), SpecError::BadBucket { reason, .. } if reason.contains("no bucket"))
        );
        assert!(
            matches!(err("s3://ab"), SpecError::BadBucket { reason, .. } if reason.contains("3 to 63"))
        );
        assert!(
            matches!(err("s3://My_Bucket"), SpecError::BadBucket { reason, .. } if reason.contains("lowercase"))
        );
        assert!(
            matches!(err("s3://-abc"), SpecError::BadBucket { reason, .. } if reason.contains("start and end"))
        );
        assert!(
            matches!(err("s3://a..b"), SpecError::BadBucket { reason, .. } if reason.contains("adjacent"))
        );
        assert!(
            matches!(err("s3://abc/a//b"), SpecError::BadPrefix { reason, .. } if reason.contains("empty"))
        );
        assert!(matches!(
            err("s3://abc/a/../b"),
            SpecError::BadPrefix { .. }
        ));
        assert!(matches!(err("s3://abc/a b"), SpecError::BadPrefix { .. }));
        assert!(
            matches!(err("s3://abc?endpoint=ftp://x"), SpecError::BadEndpoint { reason, .. } if reason.contains("scheme"))
        );
        assert!(matches!(
            err("s3://abc?endpoint=not%20a%20url"),
            SpecError::BadEndpoint { .. }
        ));
        assert!(
            matches!(err("s3://abc?endpoint=http://u:p@host"), SpecError::BadEndpoint { reason, .. } if reason.contains("credentials"))
        );
        assert_eq!(err("s3://abc?region="), SpecError::BadRegion(String::new()));
        assert_eq!(
            err("s3://abc?region=a/b"),
            SpecError::BadRegion("a/b".into())
        );
        assert_eq!(
            err("s3://abc?prefix_length=33"),
            SpecError::BadPrefixLength("33".into())
        );
        assert_eq!(
            err("s3://abc?prefix_length=x"),
            SpecError::BadPrefixLength("x".into())
        );
        assert_eq!(
            err("s3://abc?bucket=x"),
            SpecError::UnknownKey("bucket".into())
        );
        assert_eq!(
            err("s3://abc?region=a&region=b"),
            SpecError::DuplicateKey("region".into())
        );
        assert!(
            err("s3://abc?nope=1")
                .to_string()
                .contains("known: endpoint")
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "s3://[a-z0-9./?=&%:_-]{0,40}") {
            let _ = S3Spec::parse(&s);
        }
    }
}
