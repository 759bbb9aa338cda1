//! A Paxos node: Basic Paxos write-once registers and a Multi-Paxos replicated log
//! behind a linearizable key-value store.
//!
//! The crate is layered so that the protocol logic can be driven both for real and in
//! a deterministic simulation:
//! - [`seam`]: the trait every consensus core implements, so that one shell and one
//!   simulation drive any of them;
//! - [`core`]: the bundled sans-IO Paxos state machine (events in, actions out);
//! - [`commit`]: the order of a burst's records, sync and effects, driven by the
//!   shell and by the deterministic simulation (`chaos sim`, in the harness);
//! - [`rules`]: its steps as the protocol's rules read them, and the [`journal`]
//!   the shell writes them to;
//! - [`wal`]: the checksummed write-ahead log that makes acceptor state durable,
//!   over the file system of [`fs`] (the operating system's, or a simulated one);
//! - [`client`]: the JSON-lines client protocol (parsing never panics);
//! - [`shell`]: the tokio server that runs one core over TCP;
//! - [`stdio`]: the same server over Maelstrom's node protocol on stdin and stdout;
//! - [`cli`]: the `paxos-node` command line, shared with `chaos node`.

pub mod cli;
pub mod client;
pub mod commit;
pub mod core;
pub mod fs;
pub mod journal;
pub mod msg;
pub mod raft;
pub mod rules;
pub mod seam;
pub mod shell;
pub mod stdio;
pub mod types;
pub mod wal;
