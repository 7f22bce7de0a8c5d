//! Local reads: the volumes asked for a block, in placement order, the
//! healthy ones first and the suspect ones when the caller says so (after
//! the peers, for a node in a cluster).

use std::sync::Arc;

use keep_locator::BlockHash;
use keep_volume::{Volume, VolumeError};

use crate::verify::{Source, VerifiedBlock};
use crate::{Store, StoreError};

/// What a read found.
#[derive(Debug)]
pub enum Found {
    /// The block exists, with this size (a `HEAD`: nothing was read).
    Exists(u64),
    /// The block, verified as it is handed on.
    Block(VerifiedBlock),
}

/// One block looked for on the local volumes: [`Lookup::healthy`] asks
/// the volumes that did not fail recently, [`Lookup::suspect`] the
/// others, and [`Lookup::verdict`] tells what was found short of the
/// block.
#[derive(Debug)]
pub struct Lookup<'a> {
    store: &'a Store,
    hash: BlockHash,
    head: bool,
    healthy: Vec<&'a Arc<dyn Volume>>,
    suspect: Vec<&'a Arc<dyn Volume>>,
    fault: Option<VolumeError>,
    corrupt: bool,
}

impl Store {
    /// Starts looking for `hash`; with `head`, only whether it exists.
    pub fn lookup(&self, hash: BlockHash, head: bool) -> Lookup<'_> {
        let (suspect, healthy) = self
            .volumes_for(&hash)
            .into_iter()
            .partition(|v| self.health().is_suspect(&v.params().uuid));
        Lookup {
            store: self,
            hash,
            head,
            healthy,
            suspect,
            fault: None,
            corrupt: false,
        }
    }

    /// The size of `hash` if a volume holds it (healthy volumes asked
    /// first, suspect ones after); `None` if none does. A volume fault
    /// with no copy found is an error: "not here" is not known then.
    pub async fn holds(&self, hash: &BlockHash) -> Result<Option<u64>, StoreError> {
        let mut lookup = self.lookup(*hash, true);
        let found = match lookup.healthy().await? {
            Some(found) => Some(found),
            None => lookup.suspect().await?,
        };
        match found {
            Some(Found::Exists(size)) => Ok(Some(size)),
            Some(Found::Block(block)) => Ok(Some(block.size)),
            None => match lookup.verdict() {
                StoreError::NotFound => Ok(None),
                e => Err(e),
            },
        }
    }
}

impl Lookup<'_> {
    /// Asks the volumes that did not fail recently.
    pub async fn healthy(&mut self) -> Result<Option<Found>, StoreError> {
        let volumes = std::mem::take(&mut self.healthy);
        self.ask(&volumes).await
    }

    /// Asks the volumes that failed recently.
    pub async fn suspect(&mut self) -> Result<Option<Found>, StoreError> {
        let volumes = std::mem::take(&mut self.suspect);
        self.ask(&volumes).await
    }

    /// What the volumes asked so far came to, short of the block: the
    /// last volume failure, else corrupt copies, else not found.
    pub fn verdict(self) -> StoreError {
        match (self.fault, self.corrupt) {
            (Some(e), _) => e.into(),
            (None, true) => StoreError::Corrupt,
            (None, false) => StoreError::NotFound,
        }
    }

    async fn ask(&mut self, volumes: &[&Arc<dyn Volume>]) -> Result<Option<Found>, StoreError> {
        for vol in volumes {
            let reader = match vol.open(&self.hash).await {
                Ok(r) => r,
                Err(VolumeError::NotFound) => continue,
                Err(e) => {
                    self.fault = Some(e);
                    continue;
                }
            };
            if self.head {
                return Ok(Some(Found::Exists(reader.size)));
            }
            let src = Source::local((*vol).clone(), reader);
            match self.store.verify(src, self.hash).await {
                Ok(block) => return Ok(Some(Found::Block(block))),
                Err(StoreError::Corrupt) => self.corrupt = true,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}
