//! Small deterministic scenarios, driven message by message, for the two bugs that
//! break linearizability rather than agreement: `stale-read` and `early-ack`. Each
//! runs the same schedule against the correct core to show the difference.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use paxos_node::core::{Action, Config, Event, Node, TimerId};
use paxos_node::msg::PeerMessage;
use paxos_node::types::{Bug, ClientOp, ErrorCode, KvOp, NodeId, OpResult};

/// A hand-driven cluster: messages wait in one FIFO until `deliver` is called with a
/// filter that says which links are up. Timers fire only when a test fires them.
struct Net {
    nodes: BTreeMap<NodeId, Node>,
    inbox: VecDeque<(NodeId, NodeId, PeerMessage)>,
    replies: BTreeMap<u64, OpResult>,
}

impl Net {
    fn new(n: usize, bugs: &[Bug]) -> Net {
        let mut net = Net {
            nodes: BTreeMap::new(),
            inbox: VecDeque::new(),
            replies: BTreeMap::new(),
        };
        for id in 1..=n as NodeId {
            let mut cfg = Config::new(id, n, 1);
            cfg.bugs = bugs.iter().copied().collect::<BTreeSet<_>>();
            let (node, actions) = Node::start(cfg, vec![]);
            net.nodes.insert(id, node);
            net.apply(id, actions);
        }
        net
    }

    fn apply(&mut self, id: NodeId, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { to, msg } => self.inbox.push_back((id, to, msg)),
                Action::Reply { token, result } => {
                    assert!(
                        self.replies.insert(token, result).is_none(),
                        "answered twice"
                    );
                }
                Action::Persist(_) | Action::Snapshot { .. } | Action::SetTimer { .. } => {}
            }
        }
    }

    fn step(&mut self, id: NodeId, event: Event) {
        let actions = self.nodes.get_mut(&id).unwrap().step(event);
        self.apply(id, actions);
    }

    fn client(&mut self, id: NodeId, token: u64, op: KvOp) {
        self.step(
            id,
            Event::Client {
                token,
                op: ClientOp::Kv(op),
            },
        );
    }

    /// Fires the election timer until `id` asks for pre-votes (a follower that heard
    /// a leader first only re-arms), after the others' leader-contact timers: the
    /// leader has been silent for the shortest election timeout, so they grant them.
    /// Delivering then runs the pre-vote and the campaign.
    fn campaign(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|n| *n != id).collect();
        for other in others {
            self.step(other, Event::Timer(TimerId::LeaderContact));
        }
        for _ in 0..2 {
            self.step(id, Event::Timer(TimerId::Election));
        }
    }

    /// Delivers messages until none is left; a message on a link `up` refuses is lost.
    fn deliver(&mut self, up: impl Fn(NodeId, NodeId) -> bool) {
        let mut budget = 10_000;
        while let Some((from, to, msg)) = self.inbox.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message storm");
            if up(from, to) {
                self.step(to, Event::Peer { from, msg });
            }
        }
    }
}

fn all_up(_: NodeId, _: NodeId) -> bool {
    true
}

fn write(value: i64) -> KvOp {
    KvOp::Write {
        key: "a".into(),
        value,
    }
}

fn read() -> KvOp {
    KvOp::Read { key: "a".into() }
}

/// Node 3 is cut off after the election; a write completes on the majority; then a
/// read is invoked at node 3. Linearizability demands the read see the write.
fn stale_read_schedule(bugs: &[Bug]) -> Net {
    let mut net = Net::new(3, bugs);
    net.campaign(1);
    net.deliver(all_up);
    assert!(net.nodes[&1].is_leader());
    let cut_3 = |f: NodeId, t: NodeId| f != 3 && t != 3;
    net.client(1, 1, write(1));
    net.deliver(cut_3);
    assert_eq!(
        net.replies.get(&1),
        Some(&OpResult::Done),
        "the write completed"
    );
    net.client(3, 2, read()); // invoked after the write completed
    net.deliver(cut_3);
    net
}

#[test]
fn stale_read_bug_returns_a_value_overwritten_before_the_read_began() {
    let net = stale_read_schedule(&[Bug::StaleRead]);
    assert_eq!(
        net.replies.get(&2),
        Some(&OpResult::Value(None)),
        "the buggy node answers from its stale local state"
    );
}

#[test]
fn without_the_bug_the_cut_off_node_cannot_answer_until_it_reaches_the_leader() {
    let mut net = stale_read_schedule(&[]);
    assert_eq!(net.replies.get(&2), None, "no answer while partitioned");
    // Node 3 forwarded the read once and the partition lost it, so the op times out
    // (indefinite). A new read after the heal sees the write.
    net.step(3, Event::Timer(TimerId::Request(2)));
    assert_eq!(
        net.replies.get(&2),
        Some(&OpResult::Error(ErrorCode::Timeout))
    );
    net.client(3, 3, read());
    net.deliver(all_up);
    assert_eq!(net.replies.get(&3), Some(&OpResult::Value(Some(1))));
}

/// Leader 1 is cut off from the others when a client writes through it; nodes 2 and
/// 3 elect a new leader and a client reads through it.
fn early_ack_schedule(bugs: &[Bug]) -> Net {
    let mut net = Net::new(3, bugs);
    net.campaign(1);
    net.deliver(all_up);
    assert!(net.nodes[&1].is_leader());
    let cut_1 = |f: NodeId, t: NodeId| f != 1 && t != 1;
    net.client(1, 1, write(1));
    net.deliver(cut_1);
    net.campaign(2);
    net.deliver(cut_1);
    assert!(net.nodes[&2].is_leader());
    net.client(2, 2, read());
    net.deliver(cut_1);
    net
}

#[test]
fn early_ack_bug_acknowledges_a_write_that_is_then_lost() {
    let mut net = early_ack_schedule(&[Bug::EarlyAck]);
    assert_eq!(net.replies.get(&1), Some(&OpResult::Done), "acknowledged");
    assert_eq!(
        net.replies.get(&2),
        Some(&OpResult::Value(None)),
        "a read that began after the acknowledgement does not see the write"
    );
    // Even after the heal the write never reappears: it was never chosen.
    net.deliver(all_up);
    net.client(3, 3, read());
    net.deliver(all_up);
    assert_eq!(net.replies.get(&3), Some(&OpResult::Value(None)));
}

#[test]
fn without_the_bug_the_cut_off_leader_does_not_acknowledge() {
    let net = early_ack_schedule(&[]);
    assert_eq!(net.replies.get(&1), None, "not chosen, so not acknowledged");
    assert_eq!(net.replies.get(&2), Some(&OpResult::Value(None)));
}
