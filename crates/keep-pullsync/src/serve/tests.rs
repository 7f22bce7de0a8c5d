//! The serving side in process: a store over a volume in memory, a pull
//! index in a temporary folder fed with the blocks put into the store.

mod deliver;
mod fixture;
mod offers;
mod read;
