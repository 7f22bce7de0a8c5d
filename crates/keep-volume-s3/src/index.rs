//! The index: a merge-join of two sorted listings, the data objects and
//! their `recent/` markers, page by page, so memory stays at two pages
//! whatever the number of blocks.

use std::collections::VecDeque;

use keep_locator::BlockHash;
use keep_volume::{IndexEntry, IndexSender, VolumeError};

use crate::client::{Client, Listed};
use crate::error::S3Error;
use crate::time::secs_to_nanos;
use crate::volume::Inner;

/// A listing read one page at a time.
struct Lister<'a> {
    client: &'a Client,
    prefix: String,
    page_size: u32,
    buffered: VecDeque<Listed>,
    token: Option<String>,
    done: bool,
}

impl<'a> Lister<'a> {
    fn new(client: &'a Client, prefix: String, page_size: u32) -> Self {
        Lister {
            client,
            prefix,
            page_size,
            buffered: VecDeque::new(),
            token: None,
            done: false,
        }
    }

    async fn next(&mut self) -> Result<Option<Listed>, S3Error> {
        while self.buffered.is_empty() && !self.done {
            let page = self
                .client
                .list(&self.prefix, self.token.as_deref(), self.page_size)
                .await?;
            self.buffered.extend(page.objects);
            self.done = page.next.is_none();
            self.token = page.next;
        }
        Ok(self.buffered.pop_front())
    }
}

/// Sends every block whose hash starts with `prefix`, with its size and
/// mtime (the marker's time, or the data's when the marker is missing).
pub(crate) async fn index(
    inner: &Inner,
    prefix: &str,
    out: IndexSender,
) -> Result<(), VolumeError> {
    if prefix.len() > 32
        || !prefix
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Ok(());
    }
    let layout = &inner.layout;
    let page = inner.index_page_size;
    let end = layout.data_end();
    let mut data = Lister::new(&inner.client, layout.data_listing(prefix), page);
    let mut markers = Lister::new(&inner.client, layout.recent_listing(prefix), page);
    let mut marker = next_marker(inner, &mut markers).await?;
    while let Some(obj) = data.next().await? {
        if obj.key >= end {
            break;
        }
        let Some(hash) = layout.parse_data(&obj.key) else {
            continue;
        };
        let mut mtime = obj.meta.modified;
        while let Some((marked, at)) = marker {
            if marked > hash {
                break;
            }
            if marked == hash {
                mtime = at;
            }
            marker = next_marker(inner, &mut markers).await?;
        }
        let entry = IndexEntry {
            hash,
            size: obj.meta.size,
            mtime: secs_to_nanos(mtime),
        };
        if out.send(entry).await.is_err() {
            // The reader went away: nobody wants the rest.
            return Ok(());
        }
    }
    Ok(())
}

/// The next marker of a block, skipping keys that are not markers.
async fn next_marker(
    inner: &Inner,
    markers: &mut Lister<'_>,
) -> Result<Option<(BlockHash, i64)>, S3Error> {
    while let Some(obj) = markers.next().await? {
        if let Some(hash) = inner.layout.parse_recent(&obj.key) {
            return Ok(Some((hash, obj.meta.modified)));
        }
    }
    Ok(None)
}
