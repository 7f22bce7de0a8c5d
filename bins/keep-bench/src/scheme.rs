//! Where blocks go on each kind of server.
//!
//! - `keep`: a Keep node. `PUT /{md5}`; the answer's body is the locator
//!   (`{md5}+{size}[+hints]`), which the GET uses as its path.
//! - `webdav`: a plain HTTP file server with WebDAV PUT (nginx's `dav_methods
//!   PUT`). `PUT /blocks/{md5}`, `GET /blocks/{md5}`.

use serde::Serialize;

/// A path scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// A Keep node.
    Keep,
    /// A WebDAV file server serving `/blocks/`.
    Webdav,
}

impl Scheme {
    /// The path a block is PUT to.
    pub fn put_path(self, md5_hex: &str) -> String {
        match self {
            Scheme::Keep => format!("/{md5_hex}"),
            Scheme::Webdav => format!("/blocks/{md5_hex}"),
        }
    }

    /// The path a block is read from when no PUT answer is at hand (the
    /// blocks were stored by an earlier run).
    pub fn get_path(self, md5_hex: &str, size: u64) -> String {
        match self {
            Scheme::Keep => format!("/{md5_hex}+{size}"),
            Scheme::Webdav => format!("/blocks/{md5_hex}"),
        }
    }

    /// The path to read a block from, given the body of a successful PUT:
    /// the returned locator for Keep (checked to name the block), the fixed
    /// path for WebDAV.
    pub fn get_path_after_put(
        self,
        md5_hex: &str,
        size: u64,
        put_body: &[u8],
    ) -> Result<String, String> {
        match self {
            Scheme::Keep => {
                let text = std::str::from_utf8(put_body)
                    .map_err(|_| "PUT answer is not UTF-8".to_owned())?
                    .trim();
                let expected = format!("{md5_hex}+{size}");
                let names_block = text
                    .strip_prefix(&expected)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('+'));
                if names_block {
                    Ok(format!("/{text}"))
                } else {
                    Err(format!(
                        "PUT answered locator {text:?}, expected {expected}[+hints]"
                    ))
                }
            }
            Scheme::Webdav => Ok(self.get_path(md5_hex, size)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD5: &str = "acbd18db4cc2f85cedef654fccc4a4d8";

    #[test]
    fn keep_paths() {
        assert_eq!(Scheme::Keep.put_path(MD5), format!("/{MD5}"));
        assert_eq!(Scheme::Keep.get_path(MD5, 3), format!("/{MD5}+3"));
        assert_eq!(
            Scheme::Keep.get_path_after_put(MD5, 3, format!("{MD5}+3\n").as_bytes()),
            Ok(format!("/{MD5}+3"))
        );
        let signed = format!("{MD5}+3+A0123abcd@65f00000");
        assert_eq!(
            Scheme::Keep.get_path_after_put(MD5, 3, signed.as_bytes()),
            Ok(format!("/{signed}"))
        );
    }

    #[test]
    fn keep_refuses_a_locator_for_another_block() {
        assert!(
            Scheme::Keep
                .get_path_after_put(MD5, 3, format!("{MD5}+4").as_bytes())
                .is_err()
        );
        assert!(
            Scheme::Keep
                .get_path_after_put(MD5, 3, format!("{MD5}+30").as_bytes())
                .is_err()
        );
        assert!(Scheme::Keep.get_path_after_put(MD5, 3, b"").is_err());
        assert!(
            Scheme::Keep
                .get_path_after_put(MD5, 3, &[0xff, 0xfe])
                .is_err()
        );
    }

    #[test]
    fn webdav_paths() {
        assert_eq!(Scheme::Webdav.put_path(MD5), format!("/blocks/{MD5}"));
        assert_eq!(Scheme::Webdav.get_path(MD5, 3), format!("/blocks/{MD5}"));
        assert_eq!(
            Scheme::Webdav.get_path_after_put(MD5, 3, b""),
            Ok(format!("/blocks/{MD5}"))
        );
    }

    #[test]
    fn serializes_lowercase() {
        assert_eq!(
            serde_json::to_string(&Scheme::Webdav).unwrap(),
            "\"webdav\""
        );
    }
}
