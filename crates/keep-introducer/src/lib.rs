//! Service discovery for Keep nodes (placeholder docs, expanded below).

pub mod announcement;
mod crashsafe;
mod key;
pub mod server;
pub mod store;
pub mod wire;

pub use announcement::{
    Announcement, AnnouncementError, DOWNLOAD_STORAGE, SignedAnnouncement, UPLOAD_STORAGE,
    new_nonce,
};
pub use key::{ClusterKey, KeyError};
