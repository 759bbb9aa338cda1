//! The words every driver and every system shares, at the bottom of the harness: a
//! node's id, a client op and how it ended, the error codes clients give, and whose
//! failure an error is. Nothing here imports another harness module.

use checker::history::Outcome;

/// A node's id, 1..=n: the nemesis's, so a fault's targets need no conversion.
pub use nemesis::NodeId;

/// The error code of an op the client gave up waiting for.
pub const CLIENT_TIMEOUT: &str = "client-timeout";
/// The error code of an op whose connection broke before its reply.
pub const CONNECTION_BROKEN: &str = "connection-broken";
/// The error code of an op whose reply was not a message of the node's protocol (not
/// JSON, or not a reply): the node misbehaved, and a `node-misbehaved` event says how.
pub const MALFORMED_REPLY: &str = "malformed-reply";
/// The error code of an op refused because no leader could take it (definite); the
/// workload backs off briefly after one.
pub const UNAVAILABLE: &str = "unavailable";

/// One workload operation (defined with the plan, which can script them).
pub use results::plan::WorkloadOp;

/// How an op ended, as its client classified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// `ok`: it happened; `fail`: it certainly did not and will not; `info`: unknown.
    /// A read that did not succeed is `fail` (it changes nothing).
    pub outcome: Outcome,
    /// What an ok read (`None`: absent) or an ok propose returned.
    pub value: Option<i64>,
    /// What an ok transaction's micro-ops read.
    pub txn: Option<Vec<checker::history::TxnMop>>,
    /// The error code of a failed or unknown op.
    pub error: Option<String>,
    /// The connection cannot be used again (it broke, or a late reply may still come).
    pub reconnect: bool,
}

impl Completion {
    pub fn ok(value: Option<i64>) -> Completion {
        Completion {
            outcome: Outcome::Ok,
            value,
            txn: None,
            error: None,
            reconnect: false,
        }
    }

    /// An ok transaction, with what its micro-ops read.
    pub fn ok_txn(txn: Vec<checker::history::TxnMop>) -> Completion {
        Completion {
            txn: Some(txn),
            ..Completion::ok(None)
        }
    }

    /// A definite refusal: the op did not and will not happen.
    pub fn fail(error: &str) -> Completion {
        Completion {
            outcome: Outcome::Fail,
            value: None,
            txn: None,
            error: Some(error.to_string()),
            reconnect: false,
        }
    }

    /// No reply the client can trust (timeout, broken connection, an indefinite error):
    /// `info`, except for a read, which is `fail` since it changes nothing.
    pub fn unknown(op: &WorkloadOp, error: &str, reconnect: bool) -> Completion {
        let outcome = if op.reads_only() {
            Outcome::Fail
        } else {
            Outcome::Info
        };
        Completion {
            outcome,
            value: None,
            txn: None,
            error: Some(error.to_string()),
            reconnect,
        }
    }
}

/// Whose failure an error is, decided where the error is made, so that every caller
/// treats it alike: the system under test's misbehaviour is data for the verdict, the
/// harness's own failure ends the run with exit 5, the user's input exit 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// The system under test misbehaved (a node exited, never became ready, answered
    /// nonsense): recorded, and judged (a liveness failure, a note).
    System,
    /// The harness could not do its part (a program it cannot spawn, a file it cannot
    /// write, a network it cannot set up).
    Harness,
    /// What the user asked for cannot be run.
    Input,
}

/// An error at a seam between the harness and a system, with its [`Blame`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct Failure {
    pub blame: Blame,
    pub what: String,
}

impl Failure {
    pub fn system(what: impl Into<String>) -> Failure {
        Failure {
            blame: Blame::System,
            what: what.into(),
        }
    }

    pub fn harness(what: impl Into<String>) -> Failure {
        Failure {
            blame: Blame::Harness,
            what: what.into(),
        }
    }

    pub fn input(what: impl Into<String>) -> Failure {
        Failure {
            blame: Blame::Input,
            what: what.into(),
        }
    }
}
