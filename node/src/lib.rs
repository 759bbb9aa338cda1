//! A Paxos node: Basic Paxos write-once registers and a Multi-Paxos replicated log
//! behind a linearizable key-value store.
//!
//! The crate is layered so that the protocol logic can be driven both for real and in
//! a deterministic simulation:
//! - [`core`]: the sans-IO state machine (events in, actions out);
//! - [`sim`]: a seeded in-process cluster of cores with a faulty network and crashes;
//! - [`commit`]: the order of a burst's records, sync and effects (shell and sim);
//! - [`wal`]: the checksummed write-ahead log that makes acceptor state durable;
//! - [`client`]: the JSON-lines client protocol (parsing never panics);
//! - [`shell`]: the tokio server that runs one core over TCP;
//! - [`cli`]: the `paxos-node` command line, shared with `chaos node`.

pub mod cli;
pub mod client;
pub mod commit;
pub mod core;
pub mod msg;
pub mod shell;
pub mod sim;
pub mod types;
pub mod wal;
