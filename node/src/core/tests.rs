//! Core unit tests: one event in, the exact actions out.
//!
//! Timer durations drawn from the node's random stream are normalised to 0 before
//! comparing (`norm`), so the tests pin down what is sent, persisted and replied, and
//! in which order, without depending on the random draws.

use super::*;
use crate::types::{ErrorCode, KvOp, MicroOp, MopValue};

fn cfg(id: NodeId, n: usize) -> Config {
    Config::new(id, n, 7)
}

fn with_bug(mut c: Config, bug: Bug) -> Config {
    c.bugs.insert(bug);
    c
}

fn start(c: Config, recovered: Vec<Record>) -> Node {
    Node::start(c, recovered).0
}

/// Replaces random timer durations by 0, and leaves out the leader-contact timer a
/// follower re-arms on every heartbeat (its own test checks it).
fn norm(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| {
            !matches!(
                a,
                Action::SetTimer {
                    timer: TimerId::LeaderContact,
                    ..
                }
            )
        })
        .map(|a| match a {
            Action::SetTimer { timer, .. }
                if matches!(timer, TimerId::Election | TimerId::Register(_)) =>
            {
                Action::SetTimer { timer, after_ms: 0 }
            }
            other => other,
        })
        .collect()
}

fn peer(node: &mut Node, from: NodeId, msg: PeerMessage) -> Vec<Action> {
    norm(node.step(Event::Peer { from, msg }))
}

fn send(to: NodeId, msg: PeerMessage) -> Action {
    Action::Send { to, msg }
}

fn k() -> String {
    "x".to_string()
}

fn write(node: NodeId, seq: u64, key: &str, value: i64) -> Command {
    Command {
        id: CmdId {
            node,
            incarnation: 1,
            seq,
        },
        op: KvOp::Write {
            key: key.into(),
            value,
        },
    }
}

#[test]
fn start_persists_a_new_incarnation_and_arms_the_election_timer() {
    let (node, actions) = Node::start(cfg(1, 3), vec![Record::Incarnation { incarnation: 4 }]);
    assert_eq!(node.incarnation(), 5);
    assert_eq!(
        norm(actions),
        vec![
            Action::Persist(Record::Incarnation { incarnation: 5 }),
            Action::SetTimer {
                timer: TimerId::Election,
                after_ms: 0
            },
        ]
    );
}

// ---- Basic Paxos acceptor ----

#[test]
fn prepare_above_the_promise_is_persisted_then_promised() {
    let mut a = start(cfg(1, 3), vec![]);
    let out = peer(
        &mut a,
        2,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: 5,
        },
    );
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::RegisterPromise {
                key: k().into(),
                ballot: 5
            }),
            send(
                2,
                PeerMessage::Promise {
                    key: k().into(),
                    ballot: 5,
                    accepted: None
                }
            ),
        ]
    );
}

#[test]
fn prepare_below_the_promise_is_rejected() {
    let mut a = start(cfg(1, 3), vec![]);
    peer(
        &mut a,
        2,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: 5,
        },
    );
    for ballot in [3, 4] {
        let out = peer(
            &mut a,
            3,
            PeerMessage::Prepare {
                key: k().into(),
                ballot,
            },
        );
        assert_eq!(
            out,
            vec![send(
                3,
                PeerMessage::RegisterNack {
                    key: k().into(),
                    ballot,
                    promised: 5
                }
            )]
        );
    }
    // The same number from another node than its owner is not a repeat either.
    let out = peer(
        &mut a,
        3,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: 5,
        },
    );
    assert!(matches!(
        out[..],
        [Action::Send {
            msg: PeerMessage::RegisterNack { .. },
            ..
        }]
    ));
}

#[test]
fn accept_below_the_promise_is_rejected_and_at_or_above_is_accepted() {
    let mut a = start(cfg(1, 3), vec![]);
    peer(
        &mut a,
        2,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: 5,
        },
    );
    let out = peer(
        &mut a,
        3,
        PeerMessage::Accept {
            key: k().into(),
            ballot: 4,
            value: 1,
        },
    );
    assert_eq!(
        out,
        vec![send(
            3,
            PeerMessage::RegisterNack {
                key: k().into(),
                ballot: 4,
                promised: 5
            }
        )]
    );
    let out = peer(
        &mut a,
        2,
        PeerMessage::Accept {
            key: k().into(),
            ballot: 5,
            value: 9,
        },
    );
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::RegisterAccept {
                key: k().into(),
                ballot: 5,
                value: 9
            }),
            send(
                2,
                PeerMessage::Accepted {
                    key: k().into(),
                    ballot: 5
                }
            ),
        ]
    );
    assert_eq!(
        a.register_acceptor("x"),
        Some(&RegisterAcceptor {
            promised: 5,
            accepted: Some((5, 9))
        })
    );
}

#[test]
fn a_restarted_acceptor_keeps_its_promise_and_acceptance() {
    let recovered = vec![
        Record::RegisterPromise {
            key: k().into(),
            ballot: 5,
        },
        Record::RegisterAccept {
            key: k().into(),
            ballot: 5,
            value: 7,
        },
        Record::RegisterPromise {
            key: k().into(),
            ballot: 8,
        },
        Record::LogPromise { ballot: 11 },
    ];
    let mut a = start(cfg(1, 3), recovered);
    let out = peer(
        &mut a,
        3,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: 6,
        },
    );
    assert_eq!(
        out,
        vec![send(
            3,
            PeerMessage::RegisterNack {
                key: k().into(),
                ballot: 6,
                promised: 8
            }
        )]
    );
    let out = peer(
        &mut a,
        3,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: 9,
        },
    );
    assert_eq!(
        out[1],
        send(
            3,
            PeerMessage::Promise {
                key: k().into(),
                ballot: 9,
                accepted: Some((5, 7))
            }
        )
    );
    let out = peer(
        &mut a,
        2,
        PeerMessage::LogAccept {
            ballot: 10,
            slot: 1,
            batch: vec![].into(),
        },
    );
    assert_eq!(
        out,
        vec![send(
            2,
            PeerMessage::LogNack {
                ballot: 10,
                promised: 11
            }
        )]
    );
}

#[test]
fn a_decided_register_answers_prepares_and_clients_with_the_decision() {
    let mut a = start(
        cfg(1, 3),
        vec![Record::RegisterChosen {
            key: k().into(),
            value: 4,
        }],
    );
    let out = peer(
        &mut a,
        2,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: 50,
        },
    );
    assert_eq!(
        out,
        vec![send(
            2,
            PeerMessage::Decided {
                key: k().into(),
                value: 4
            }
        )]
    );
    let out = a.step(Event::Client {
        token: 9,
        op: ClientOp::Propose {
            key: k().into(),
            value: 1,
        },
    });
    assert_eq!(
        out,
        vec![Action::Reply {
            token: 9,
            result: OpResult::Value(Some(4))
        }]
    );
}

// ---- Basic Paxos proposer: the literature's scenario ----

/// Nodes A=1 and B=2 accepted (5, 7); C=3 accepted nothing. C proposes 6 with ballot 9
/// and must end up proposing and choosing 7.
#[test]
fn proposer_adopts_the_highest_accepted_value_five_seven_then_nine_six() {
    let accepted_5_7 = vec![
        Record::RegisterPromise {
            key: k().into(),
            ballot: 5,
        },
        Record::RegisterAccept {
            key: k().into(),
            ballot: 5,
            value: 7,
        },
    ];
    let mut a = start(cfg(1, 3), accepted_5_7.clone());
    let mut b = start(cfg(2, 3), accepted_5_7);
    // C once promised 7 (node 1's second round), so its next ballot is 9.
    let mut c = start(
        cfg(3, 3),
        vec![Record::RegisterPromise {
            key: k().into(),
            ballot: 7,
        }],
    );

    let out = norm(c.step(Event::Client {
        token: 1,
        op: ClientOp::Propose {
            key: k().into(),
            value: 6,
        },
    }));
    let prepare = PeerMessage::Prepare {
        key: k().into(),
        ballot: 9,
    };
    assert_eq!(
        out,
        vec![
            Action::SetTimer {
                timer: TimerId::Request(1),
                after_ms: 2_000
            },
            Action::SetTimer {
                timer: TimerId::Register(k().into()),
                after_ms: 0
            },
            send(1, prepare.clone()),
            send(2, prepare.clone()),
            // C's own acceptor promises 9 (handled locally, after the sends).
            Action::Persist(Record::RegisterPromise {
                key: k().into(),
                ballot: 9
            }),
        ]
    );

    let promise_a = peer(&mut a, 3, prepare.clone());
    let promise = PeerMessage::Promise {
        key: k().into(),
        ballot: 9,
        accepted: Some((5, 7)),
    };
    assert_eq!(
        promise_a,
        vec![
            Action::Persist(Record::RegisterPromise {
                key: k().into(),
                ballot: 9
            }),
            send(3, promise.clone()),
        ]
    );
    // C's own promise (nothing accepted) plus A's make a majority: C proposes 7, not 6.
    let out = peer(&mut c, 1, promise);
    let accept = PeerMessage::Accept {
        key: k().into(),
        ballot: 9,
        value: 7,
    };
    assert_eq!(
        out,
        vec![
            Action::SetTimer {
                timer: TimerId::Register(k().into()),
                after_ms: 0
            },
            send(1, accept.clone()),
            send(2, accept.clone()),
            Action::Persist(Record::RegisterAccept {
                key: k().into(),
                ballot: 9,
                value: 7
            }),
        ]
    );
    let out = peer(&mut b, 3, accept);
    assert_eq!(
        out[1],
        send(
            3,
            PeerMessage::Accepted {
                key: k().into(),
                ballot: 9
            }
        )
    );
    // C accepted locally; B's acceptance makes a majority: 7 is chosen.
    let out = peer(
        &mut c,
        2,
        PeerMessage::Accepted {
            key: k().into(),
            ballot: 9,
        },
    );
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::RegisterChosen {
                key: k().into(),
                value: 7
            }),
            Action::Reply {
                token: 1,
                result: OpResult::Value(Some(7))
            },
            send(
                1,
                PeerMessage::Decided {
                    key: k().into(),
                    value: 7
                }
            ),
            send(
                2,
                PeerMessage::Decided {
                    key: k().into(),
                    value: 7
                }
            ),
        ]
    );
    assert_eq!(c.registers().get("x"), Some(&7));
}

#[test]
fn ignore_accepted_bug_proposes_its_own_value() {
    let mut c = start(
        with_bug(cfg(3, 3), Bug::IgnoreAccepted),
        vec![Record::RegisterPromise {
            key: k().into(),
            ballot: 7,
        }],
    );
    c.step(Event::Client {
        token: 1,
        op: ClientOp::Propose {
            key: k().into(),
            value: 6,
        },
    });
    let out = peer(
        &mut c,
        1,
        PeerMessage::Promise {
            key: k().into(),
            ballot: 9,
            accepted: Some((5, 7)),
        },
    );
    assert!(out.contains(&send(
        1,
        PeerMessage::Accept {
            key: k().into(),
            ballot: 9,
            value: 6
        }
    )));
}

#[test]
fn a_refused_proposer_backs_off_then_retries_with_a_higher_ballot() {
    let mut c = start(cfg(3, 3), vec![]);
    c.step(Event::Client {
        token: 1,
        op: ClientOp::Propose {
            key: k().into(),
            value: 6,
        },
    });
    let out = peer(
        &mut c,
        1,
        PeerMessage::RegisterNack {
            key: k().into(),
            ballot: 3,
            promised: 10,
        },
    );
    assert_eq!(
        out,
        vec![Action::SetTimer {
            timer: TimerId::Register(k().into()),
            after_ms: 0
        }]
    );
    let out = norm(c.step(Event::Timer(TimerId::Register(k().into()))));
    assert!(out.contains(&send(
        1,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: 12
        }
    )));
}

#[test]
fn accept_lower_ballot_bug_accepts_below_the_promise() {
    let mut a = start(with_bug(cfg(1, 3), Bug::AcceptLowerBallot), vec![]);
    peer(
        &mut a,
        2,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: 5,
        },
    );
    let out = peer(
        &mut a,
        3,
        PeerMessage::Accept {
            key: k().into(),
            ballot: 4,
            value: 1,
        },
    );
    assert_eq!(
        out[1],
        send(
            3,
            PeerMessage::Accepted {
                key: k().into(),
                ballot: 4
            }
        )
    );
}

#[test]
fn forget_promises_bug_persists_no_acceptor_state() {
    let mut a = start(with_bug(cfg(1, 3), Bug::ForgetPromises), vec![]);
    let out = peer(
        &mut a,
        2,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: 5,
        },
    );
    assert_eq!(
        out,
        vec![send(
            2,
            PeerMessage::Promise {
                key: k().into(),
                ballot: 5,
                accepted: None
            }
        )]
    );
}

#[test]
fn minority_quorum_bug_decides_alone_in_a_three_node_cluster() {
    let mut c = start(with_bug(cfg(3, 3), Bug::MinorityQuorum), vec![]);
    let out = c.step(Event::Client {
        token: 1,
        op: ClientOp::Propose {
            key: k().into(),
            value: 6,
        },
    });
    // Its own promise and acceptance are "a quorum" of 1: it decides without peers.
    assert!(out.contains(&Action::Reply {
        token: 1,
        result: OpResult::Value(Some(6))
    }));
    let mut ok = start(cfg(3, 3), vec![]);
    let out = ok.step(Event::Client {
        token: 1,
        op: ClientOp::Propose {
            key: k().into(),
            value: 6,
        },
    });
    assert!(!out.iter().any(|a| matches!(a, Action::Reply { .. })));
}

// ---- Multi-Paxos ----

/// Makes node `id` of `n` leader with ballot `ballot` via the real election path.
/// Fires the election timer and grants the pre-vote it sends from every other node
/// (until the node campaigns): every action of those steps, in order.
fn campaign(node: &mut Node) -> Vec<Action> {
    let mut out = node.step(Event::Timer(TimerId::Election));
    let ballot = out.iter().find_map(|a| match a {
        Action::Send {
            msg: PeerMessage::PreVote { ballot },
            ..
        } => Some(*ballot),
        _ => None,
    });
    if let Some(ballot) = ballot {
        for from in 1..=node.config().n as NodeId {
            if from != node.id() && matches!(node.role, Role::Follower) {
                out.extend(node.step(Event::Peer {
                    from,
                    msg: PeerMessage::PreVoteReply {
                        ballot,
                        granted: true,
                    },
                }));
            }
        }
    }
    out
}

fn leader(id: NodeId, n: usize) -> Node {
    let mut l = start(cfg(id, n), vec![]);
    let out = campaign(&mut l);
    if l.is_leader() {
        return l; // a single node is its own majority
    }
    let Some(Action::Send {
        msg: PeerMessage::LogPrepare { ballot, .. },
        ..
    }) = out.iter().find(|a| {
        matches!(
            a,
            Action::Send {
                msg: PeerMessage::LogPrepare { .. },
                ..
            }
        )
    })
    else {
        panic!("no prepare in {out:?}");
    };
    let ballot = *ballot;
    for from in 1..=n as NodeId {
        if from != id && !l.is_leader() {
            peer(
                &mut l,
                from,
                PeerMessage::LogPromise {
                    ballot,
                    entries: vec![],
                },
            );
        }
    }
    assert!(l.is_leader());
    l
}

#[test]
fn a_silent_leader_triggers_an_election_with_phase_one_for_all_later_slots() {
    let mut f = start(cfg(2, 3), vec![]);
    // First a pre-vote, which raises no ballot anywhere.
    let out = norm(f.step(Event::Timer(TimerId::Election)));
    let pre_vote = PeerMessage::PreVote { ballot: 2 };
    assert_eq!(
        out,
        vec![
            Action::SetTimer {
                timer: TimerId::Election,
                after_ms: 0
            },
            send(1, pre_vote.clone()),
            send(3, pre_vote),
        ]
    );
    assert_eq!(f.log_promised(), 0);
    // A refusal changes nothing; a grant makes a majority with this node's own.
    let refused = PeerMessage::PreVoteReply {
        ballot: 2,
        granted: false,
    };
    assert_eq!(peer(&mut f, 1, refused), vec![]);
    let granted = PeerMessage::PreVoteReply {
        ballot: 2,
        granted: true,
    };
    let out = peer(&mut f, 3, granted);
    let prepare = PeerMessage::LogPrepare {
        ballot: 2,
        from_slot: 1,
    };
    assert_eq!(
        out,
        vec![
            Action::SetTimer {
                timer: TimerId::Election,
                after_ms: 0
            },
            send(1, prepare.clone()),
            send(3, prepare),
            Action::Persist(Record::LogPromise { ballot: 2 }),
        ]
    );
    assert_eq!(f.status().campaigns, 1);
    // A follower that heard from a leader does not campaign.
    let mut g = start(cfg(3, 3), vec![]);
    peer(
        &mut g,
        1,
        PeerMessage::Commit {
            ballot: 1,
            commit: 0,
        },
    );
    let out = norm(g.step(Event::Timer(TimerId::Election)));
    assert_eq!(
        out,
        vec![Action::SetTimer {
            timer: TimerId::Election,
            after_ms: 0
        }]
    );
}

#[test]
fn log_prepare_reports_accepted_and_chosen_entries() {
    let recovered = vec![
        Record::LogAccept {
            slot: 2,
            ballot: 4,
            batch: vec![write(1, 0, "a", 1)].into(),
        },
        Record::LogChosen {
            slot: 3,
            batch: vec![].into(),
        },
    ];
    let mut a = start(cfg(1, 3), recovered);
    let out = peer(
        &mut a,
        2,
        PeerMessage::LogPrepare {
            ballot: 5,
            from_slot: 1,
        },
    );
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::LogPromise { ballot: 5 }),
            send(
                2,
                PeerMessage::LogPromise {
                    ballot: 5,
                    entries: vec![
                        ReportedEntry {
                            slot: 2,
                            ballot: Some(4),
                            batch: vec![write(1, 0, "a", 1)].into()
                        },
                        ReportedEntry {
                            slot: 3,
                            ballot: None,
                            batch: vec![].into()
                        },
                    ]
                }
            ),
        ]
    );
    let out = peer(
        &mut a,
        3,
        PeerMessage::LogPrepare {
            ballot: 3,
            from_slot: 1,
        },
    );
    assert_eq!(
        out,
        vec![send(
            3,
            PeerMessage::LogNack {
                ballot: 3,
                promised: 5
            }
        )]
    );
}

#[test]
fn a_new_leader_reproposes_the_highest_accepted_batch_and_fills_gaps_with_no_ops() {
    let mut c = start(cfg(3, 3), vec![]);
    campaign(&mut c); // ballot 3, from slot 1
    let old = vec![write(1, 0, "a", 1)];
    let newer = vec![write(2, 0, "a", 2)];
    let out = peer(
        &mut c,
        1,
        PeerMessage::LogPromise {
            ballot: 3,
            entries: vec![
                ReportedEntry {
                    slot: 1,
                    ballot: Some(1),
                    batch: old.into(),
                },
                ReportedEntry {
                    slot: 1,
                    ballot: Some(2),
                    batch: newer.clone().into(),
                },
                ReportedEntry {
                    slot: 3,
                    ballot: Some(1),
                    batch: vec![write(1, 1, "b", 5)].into(),
                },
            ],
        },
    );
    let accepts: Vec<(Slot, Vec<Command>)> = out
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                to: 1,
                msg: PeerMessage::LogAccept { slot, batch, .. },
            } => Some((*slot, batch.to_vec())),
            _ => None,
        })
        .collect();
    assert_eq!(
        accepts,
        vec![(1, newer), (2, vec![]), (3, vec![write(1, 1, "b", 5)])]
    );
    assert!(c.is_leader());
}

#[test]
fn a_leader_commits_a_write_once_a_majority_accepted_and_then_answers() {
    let mut l = leader(1, 3);
    let out = l.step(Event::Client {
        token: 7,
        op: ClientOp::Kv(KvOp::Write {
            key: "a".into(),
            value: 3,
        }),
    });
    let cmd = Command {
        id: CmdId {
            node: 1,
            incarnation: 1,
            seq: 0,
        },
        op: KvOp::Write {
            key: "a".into(),
            value: 3,
        },
    };
    let accept = PeerMessage::LogAccept {
        ballot: 1,
        slot: 1,
        batch: vec![cmd.clone()].into(),
    };
    assert_eq!(
        out,
        vec![
            Action::SetTimer {
                timer: TimerId::Request(7),
                after_ms: 2_000
            },
            send(2, accept.clone()),
            send(3, accept),
            Action::Persist(Record::LogAccept {
                slot: 1,
                ballot: 1,
                batch: vec![cmd.clone()].into()
            }),
        ]
    );
    let out = peer(&mut l, 2, PeerMessage::LogAccepted { ballot: 1, slot: 1 });
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::LogChosen {
                slot: 1,
                batch: vec![cmd].into()
            }),
            Action::Reply {
                token: 7,
                result: OpResult::Done
            },
            send(
                2,
                PeerMessage::Commit {
                    ballot: 1,
                    commit: 1
                }
            ),
            send(
                3,
                PeerMessage::Commit {
                    ballot: 1,
                    commit: 1
                }
            ),
        ]
    );
    assert_eq!(l.kv().get("a"), Some(&3));
}

#[test]
fn a_follower_learns_from_commit_in_the_accepted_ballot_and_catches_up_otherwise() {
    let mut f = start(cfg(2, 3), vec![]);
    peer(
        &mut f,
        1,
        PeerMessage::LogAccept {
            ballot: 1,
            slot: 1,
            batch: vec![write(1, 0, "a", 1)].into(),
        },
    );
    let out = peer(
        &mut f,
        1,
        PeerMessage::Commit {
            ballot: 1,
            commit: 2,
        },
    );
    assert_eq!(
        out,
        vec![
            Action::Persist(Record::LogChosen {
                slot: 1,
                batch: vec![write(1, 0, "a", 1)].into()
            }),
            send(1, PeerMessage::CatchUp { from_slot: 2 }),
        ]
    );
    assert_eq!(f.commit_index(), 1);
    let out = peer(
        &mut f,
        1,
        PeerMessage::Chosen {
            entries: vec![(2, vec![write(1, 1, "a", 2)].into())],
        },
    );
    assert_eq!(
        out,
        vec![Action::Persist(Record::LogChosen {
            slot: 2,
            batch: vec![write(1, 1, "a", 2)].into()
        })]
    );
    assert_eq!(f.commit_index(), 2);
    assert_eq!(f.kv().get("a"), Some(&2));
}

#[test]
fn a_follower_forwards_to_the_leader_and_answers_when_it_applies() {
    let mut f = start(cfg(2, 3), vec![]);
    let op = KvOp::Write {
        key: "a".into(),
        value: 1,
    };
    // No leader known: the command waits for one, at most four ticks of a quarter of
    // leader_wait_ms, then is refused, definitely.
    let out = f.step(Event::Client {
        token: 1,
        op: ClientOp::Kv(op.clone()),
    });
    let tick = f.config().timing.leader_wait_ms / 4;
    assert_eq!(
        out[1..],
        [Action::SetTimer {
            timer: TimerId::LeaderWait,
            after_ms: tick
        }]
    );
    for _ in 0..3 {
        let out = f.step(Event::Timer(TimerId::LeaderWait));
        assert_eq!(
            out,
            vec![Action::SetTimer {
                timer: TimerId::LeaderWait,
                after_ms: tick
            }]
        );
    }
    let out = f.step(Event::Timer(TimerId::LeaderWait));
    assert_eq!(
        out,
        vec![Action::Reply {
            token: 1,
            result: OpResult::Error(ErrorCode::Unavailable)
        }]
    );
    // A command that arrives before the leader is heard from is forwarded when it is.
    let waiting = f.step(Event::Client {
        token: 3,
        op: ClientOp::Kv(op.clone()),
    });
    assert!(
        !waiting
            .iter()
            .any(|a| matches!(a, Action::Reply { .. } | Action::Send { .. }))
    );
    let out = peer(
        &mut f,
        1,
        PeerMessage::Commit {
            ballot: 1,
            commit: 0,
        },
    );
    assert!(
        matches!(&out[..], [Action::Send { to: 1, msg: PeerMessage::Forward { commands } }] if commands.len() == 1),
        "{out:?}"
    );
    peer(
        &mut f,
        1,
        PeerMessage::Commit {
            ballot: 1,
            commit: 0,
        },
    );
    let out = f.step(Event::Client {
        token: 2,
        op: ClientOp::Kv(op.clone()),
    });
    let cmd = Command {
        id: CmdId {
            node: 2,
            incarnation: 1,
            seq: 2,
        },
        op,
    };
    assert_eq!(
        out[1],
        send(
            1,
            PeerMessage::Forward {
                commands: vec![cmd.clone()]
            }
        )
    );
    peer(
        &mut f,
        1,
        PeerMessage::LogAccept {
            ballot: 1,
            slot: 1,
            batch: vec![cmd].into(),
        },
    );
    let out = peer(
        &mut f,
        1,
        PeerMessage::Commit {
            ballot: 1,
            commit: 1,
        },
    );
    assert_eq!(
        out.last(),
        Some(&Action::Reply {
            token: 2,
            result: OpResult::Done
        })
    );
}

#[test]
fn a_duplicated_forward_is_proposed_once() {
    let mut l = leader(1, 3);
    let forward = PeerMessage::Forward {
        commands: vec![write(2, 0, "a", 1)],
    };
    let first = peer(&mut l, 2, forward.clone());
    assert!(first.iter().any(|a| matches!(
        a,
        Action::Send {
            msg: PeerMessage::LogAccept { .. },
            ..
        }
    )));
    let second = peer(&mut l, 2, forward);
    assert_eq!(second, vec![]);
}

#[test]
fn cas_errors_are_definite_and_reads_go_through_the_log() {
    let mut l = leader(1, 1);
    let mut ask = |op: KvOp| -> OpResult {
        let out = l.step(Event::Client {
            token: 1,
            op: ClientOp::Kv(op),
        });
        match out.into_iter().find(|a| matches!(a, Action::Reply { .. })) {
            Some(Action::Reply { result, .. }) => result,
            other => panic!("no reply: {other:?}"),
        }
    };
    let cas = |from, to| KvOp::Cas {
        key: "a".into(),
        from,
        to,
    };
    assert_eq!(ask(cas(1, 2)), OpResult::Error(ErrorCode::NotFound));
    assert_eq!(
        ask(KvOp::Write {
            key: "a".into(),
            value: 1
        }),
        OpResult::Done
    );
    assert_eq!(
        ask(cas(5, 2)),
        OpResult::Error(ErrorCode::PreconditionFailed)
    );
    assert_eq!(ask(cas(1, 2)), OpResult::Done);
    assert_eq!(
        ask(KvOp::Read { key: "a".into() }),
        OpResult::Value(Some(2))
    );
    assert!(ErrorCode::NotFound.definite() && ErrorCode::PreconditionFailed.definite());
    assert!(!ErrorCode::Timeout.definite());
}

#[test]
fn a_request_not_answered_in_time_gets_an_indefinite_timeout() {
    let mut f = start(cfg(2, 3), vec![]);
    peer(
        &mut f,
        1,
        PeerMessage::Commit {
            ballot: 1,
            commit: 0,
        },
    );
    f.step(Event::Client {
        token: 4,
        op: ClientOp::Kv(KvOp::Write {
            key: "a".into(),
            value: 1,
        }),
    });
    let out = f.step(Event::Timer(TimerId::Request(4)));
    assert_eq!(
        out,
        vec![Action::Reply {
            token: 4,
            result: OpResult::Error(ErrorCode::Timeout)
        }]
    );
    // A late firing after the answer does nothing.
    assert_eq!(f.step(Event::Timer(TimerId::Request(4))), vec![]);
}

#[test]
fn a_deposed_leader_is_told_and_steps_down() {
    let mut l = leader(1, 3);
    let mut f = start(cfg(2, 3), vec![Record::LogPromise { ballot: 5 }]);
    let out = peer(
        &mut f,
        1,
        PeerMessage::Commit {
            ballot: 1,
            commit: 0,
        },
    );
    assert_eq!(
        out,
        vec![send(
            1,
            PeerMessage::LogNack {
                ballot: 1,
                promised: 5
            }
        )]
    );
    peer(
        &mut l,
        2,
        PeerMessage::LogNack {
            ballot: 1,
            promised: 5,
        },
    );
    assert!(!l.is_leader());
}

#[test]
fn stale_read_bug_answers_locally_and_early_ack_answers_at_proposal() {
    let mut f = start(with_bug(cfg(2, 3), Bug::StaleRead), vec![]);
    let out = f.step(Event::Client {
        token: 1,
        op: ClientOp::Kv(KvOp::Read { key: "a".into() }),
    });
    assert_eq!(
        out,
        vec![Action::Reply {
            token: 1,
            result: OpResult::Value(None)
        }]
    );

    let mut l = start(with_bug(cfg(1, 3), Bug::EarlyAck), vec![]);
    campaign(&mut l);
    peer(
        &mut l,
        2,
        PeerMessage::LogPromise {
            ballot: 1,
            entries: vec![],
        },
    );
    let out = l.step(Event::Client {
        token: 2,
        op: ClientOp::Kv(KvOp::Write {
            key: "a".into(),
            value: 1,
        }),
    });
    // Acknowledged before any peer accepted it.
    assert!(out.contains(&Action::Reply {
        token: 2,
        result: OpResult::Done
    }));
}

// ---- regressions found by the fuzz tests ----

#[test]
fn an_absurd_ballot_from_a_peer_stops_proposals_without_a_panic() {
    let mut a = start(cfg(1, 3), vec![]);
    peer(
        &mut a,
        2,
        PeerMessage::LogPrepare {
            ballot: u64::MAX,
            from_slot: 1,
        },
    );
    peer(
        &mut a,
        2,
        PeerMessage::Prepare {
            key: k().into(),
            ballot: u64::MAX,
        },
    );
    // No ballot above u64::MAX exists: campaigning and proposing give up quietly.
    let out = norm(a.step(Event::Timer(TimerId::Election)));
    assert!(!out.iter().any(|x| matches!(x, Action::Send { .. })));
    let out = a.step(Event::Client {
        token: 1,
        op: ClientOp::Propose {
            key: k().into(),
            value: 1,
        },
    });
    assert!(!out.iter().any(|x| matches!(x, Action::Send { .. })));
}

#[test]
fn a_new_leader_reproposes_hundreds_of_slots_in_one_step() {
    let mut c = start(cfg(3, 3), vec![]);
    campaign(&mut c);
    let entries = (1..=300)
        .map(|slot| ReportedEntry {
            slot,
            ballot: Some(1),
            batch: vec![write(1, slot, "a", slot as i64)].into(),
        })
        .collect();
    let out = peer(&mut c, 1, PeerMessage::LogPromise { ballot: 3, entries });
    assert!(c.is_leader());
    let accepts = out
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Send {
                    to: 1,
                    msg: PeerMessage::LogAccept { .. }
                }
            )
        })
        .count();
    assert_eq!(accepts, 300);
}

/// The election timer's wait, in ms, among `actions`.
fn election_wait(actions: &[Action]) -> u64 {
    actions
        .iter()
        .find_map(|a| match a {
            Action::SetTimer {
                timer: TimerId::Election,
                after_ms,
            } => Some(*after_ms),
            _ => None,
        })
        .expect("the election timer is armed")
}

#[test]
fn campaigns_that_end_without_a_leader_back_off_until_a_leader_is_heard() {
    // A fixed range makes the draws exact: the wait is the range times the backoff.
    let mut c = cfg(2, 3);
    c.timing.election_timeout_ms = (100, 100);
    let mut n = start(c, vec![]);
    // Pre-votes that nobody answers do not back off: they raise no ballot.
    for _ in 0..3 {
        assert_eq!(election_wait(&n.step(Event::Timer(TimerId::Election))), 100);
    }
    let mut waits = vec![];
    for _ in 0..6 {
        let out = campaign(&mut n);
        let last_arm = out
            .iter()
            .rev()
            .find(|a| {
                matches!(
                    a,
                    Action::SetTimer {
                        timer: TimerId::Election,
                        ..
                    }
                )
            })
            .cloned();
        waits.push(election_wait(&last_arm.into_iter().collect::<Vec<_>>()));
    }
    // The first campaign starts from a follower; each one that times out doubles the
    // next wait, up to eight times the range.
    assert_eq!(waits, vec![100, 200, 400, 800, 800, 800]);
    assert_eq!(n.status().campaigns, 6);
    // A commit from a leader ends the streak: the next wait is back to the range.
    let ballot = n.max_ballot_seen + 1;
    peer(&mut n, 1, PeerMessage::Commit { ballot, commit: 0 });
    assert_eq!(n.failed_campaigns, 0);
    let out = campaign(&mut n);
    assert_eq!(election_wait(&out), 100);
}

#[test]
fn a_node_that_heard_its_leader_refuses_pre_votes_and_a_refused_node_raises_no_ballot() {
    let mut f = start(cfg(2, 3), vec![]);
    let ask = PeerMessage::PreVote { ballot: 9 };
    let reply = |granted| vec![send(3, PeerMessage::PreVoteReply { ballot: 9, granted })];
    // No leader heard: granted.
    assert_eq!(peer(&mut f, 3, ask.clone()), reply(true));
    // A heartbeat of the leader: refused for the shortest election timeout.
    let out = f.step(Event::Peer {
        from: 1,
        msg: PeerMessage::Commit {
            ballot: 1,
            commit: 0,
        },
    });
    assert!(out.contains(&Action::SetTimer {
        timer: TimerId::LeaderContact,
        after_ms: f.config().timing.election_timeout_ms.0
    }));
    assert_eq!(peer(&mut f, 3, ask.clone()), reply(false));
    assert_eq!(f.log_promised(), 0, "a pre-vote changes no promise");
    f.step(Event::Timer(TimerId::LeaderContact));
    assert_eq!(peer(&mut f, 3, ask.clone()), reply(true));
    // A leader refuses.
    let mut l = leader(1, 3);
    let out = peer(&mut l, 3, ask);
    assert_eq!(
        out,
        vec![send(
            3,
            PeerMessage::PreVoteReply {
                ballot: 9,
                granted: false
            }
        )]
    );
    // A node cut off from the others times out again and again without a campaign.
    let mut cut = start(cfg(3, 3), vec![]);
    for _ in 0..10 {
        let out = cut.step(Event::Timer(TimerId::Election));
        assert!(!out.iter().any(|a| matches!(
            a,
            Action::Send {
                msg: PeerMessage::LogPrepare { .. },
                ..
            }
        )));
    }
    assert_eq!((cut.status().campaigns, cut.log_promised()), (0, 0));
}

// ---- invariants asserted where records are written and where they are read ----

/// A log holding two different choices for slot 1.
fn slot_1_chosen_twice() -> Vec<Record> {
    vec![
        Record::LogChosen {
            slot: 1,
            batch: vec![write(2, 1, "a", 1)].into(),
        },
        Record::LogChosen {
            slot: 1,
            batch: vec![write(2, 2, "a", 2)].into(),
        },
    ]
}

#[test]
#[should_panic(expected = "chosen twice with different commands")]
fn a_log_that_chose_one_slot_twice_does_not_recover() {
    start(cfg(1, 3), slot_1_chosen_twice());
}

#[test]
fn with_a_bug_set_a_conflicting_log_still_recovers() {
    let node = start(
        with_bug(cfg(1, 3), Bug::MinorityQuorum),
        slot_1_chosen_twice(),
    );
    assert_eq!(
        node.chosen[&1],
        vec![write(2, 1, "a", 1)].into(),
        "the first stays"
    );
}

#[test]
#[should_panic(expected = "persisted below the promise")]
fn an_accept_below_the_promise_is_never_persisted() {
    let mut node = start(cfg(1, 3), vec![Record::LogPromise { ballot: 9 }]);
    node.persist(Record::LogAccept {
        slot: 1,
        ballot: 4,
        batch: Vec::new().into(),
    });
}

#[test]
#[should_panic(expected = "is chosen already")]
fn a_chosen_register_is_never_persisted_with_another_value() {
    let mut node = start(
        cfg(1, 3),
        vec![Record::RegisterChosen {
            key: k().into(),
            value: 5,
        }],
    );
    node.persist(Record::RegisterChosen {
        key: k().into(),
        value: 6,
    });
}

#[test]
fn a_peer_claiming_another_value_for_a_chosen_slot_changes_nothing() {
    let mut node = start(cfg(1, 3), Vec::new());
    node.learn_slot(1, vec![write(2, 1, "a", 1)].into());
    node.learn_slot(1, vec![write(2, 2, "a", 2)].into());
    assert_eq!(node.chosen[&1], vec![write(2, 1, "a", 1)].into());
    assert_eq!(node.conflicts, 1);
}

#[test]
fn with_the_old_settings_a_follower_refuses_at_once_and_campaigns_without_a_pre_vote() {
    let mut c = cfg(2, 3);
    c.timing.leader_wait_ms = 0;
    c.timing.pre_vote = false;
    let mut f = start(c, vec![]);
    let out = f.step(Event::Client {
        token: 1,
        op: ClientOp::Kv(KvOp::Read { key: "a".into() }),
    });
    assert!(out.contains(&Action::Reply {
        token: 1,
        result: OpResult::Error(ErrorCode::Unavailable)
    }));
    let out = norm(f.step(Event::Timer(TimerId::Election)));
    assert!(out.contains(&send(
        1,
        PeerMessage::LogPrepare {
            ballot: 2,
            from_slot: 1
        }
    )));
    assert_eq!(f.status().campaigns, 1);
}

#[test]
fn a_candidate_that_steps_down_keeps_its_own_queued_commands_for_the_next_leader() {
    let mut c = start(cfg(3, 3), vec![]);
    campaign(&mut c);
    let out = c.step(Event::Client {
        token: 5,
        op: ClientOp::Kv(KvOp::Read { key: "a".into() }),
    });
    assert!(
        !out.iter().any(|a| matches!(a, Action::Reply { .. })),
        "queued while campaigning"
    );
    // Node 1 wins with a higher ballot: the queued read goes to it, not back to the
    // client as unavailable.
    let out = peer(
        &mut c,
        1,
        PeerMessage::Commit {
            ballot: 4,
            commit: 0,
        },
    );
    assert!(
        !out.iter().any(|a| matches!(a, Action::Reply { .. })),
        "{out:?}"
    );
    assert!(
        out.iter().any(|a| matches!(a, Action::Send { to: 1, msg: PeerMessage::Forward { commands } } if commands.len() == 1)),
        "{out:?}"
    );
}

#[test]
fn a_candidate_too_far_behind_gets_no_promise_and_catches_up_in_bounded_replies() {
    let mut c = cfg(1, 3);
    c.timing.promise_max_commands = 10;
    // Node 1 has chosen and applied 30 one-command slots.
    let recovered = (1..=30)
        .map(|slot| Record::LogChosen {
            slot,
            batch: vec![write(2, slot, "a", slot as i64)].into(),
        })
        .collect();
    let mut ahead = start(c, recovered);
    assert_eq!(ahead.commit_index(), 30);
    // A candidate from slot 1 would need all 30: refused, and no promise is made.
    let out = peer(
        &mut ahead,
        3,
        PeerMessage::LogPrepare {
            ballot: 3,
            from_slot: 1,
        },
    );
    assert_eq!(
        out,
        vec![send(
            3,
            PeerMessage::LogBehind {
                ballot: 3,
                commit: 30
            }
        )]
    );
    assert_eq!(ahead.log_promised(), 0);
    // From slot 25 the six it reports fit.
    let out = peer(
        &mut ahead,
        3,
        PeerMessage::LogPrepare {
            ballot: 3,
            from_slot: 25,
        },
    );
    assert!(
        matches!(&out[1], Action::Send { msg: PeerMessage::LogPromise { entries, .. }, .. } if entries.len() == 6)
    );
    // Catch-up replies carry at most 10 commands each.
    let out = peer(&mut ahead, 3, PeerMessage::CatchUp { from_slot: 1 });
    assert!(
        matches!(&out[..], [Action::Send { msg: PeerMessage::Chosen { entries }, .. }] if entries.len() == 10)
    );

    // The candidate told so stops campaigning and asks for what it lacks.
    let mut behind = start(cfg(3, 3), vec![]);
    campaign(&mut behind);
    let ballot = match behind.role {
        Role::Candidate { ballot, .. } => ballot,
        _ => panic!("campaigning"),
    };
    let out = peer(
        &mut behind,
        1,
        PeerMessage::LogBehind { ballot, commit: 30 },
    );
    assert!(matches!(behind.role, Role::Follower));
    assert!(
        out.contains(&send(1, PeerMessage::CatchUp { from_slot: 1 })),
        "{out:?}"
    );
}

// ---- snapshots ----

/// A node of 3 that has chosen and applied slots 1..=n, one write each.
fn applied_node(id: NodeId, n: u64, snapshot_every: u64) -> (Node, Vec<Action>) {
    let mut c = cfg(id, 3);
    c.timing.snapshot_every = snapshot_every;
    let recovered = (1..=n)
        .map(|slot| Record::LogChosen {
            slot,
            batch: vec![write(2, slot, &format!("k{}", slot % 3), slot as i64)].into(),
        })
        .collect();
    Node::start(c, recovered)
}

#[test]
fn a_snapshot_is_taken_every_n_commands_and_the_log_before_it_leaves_memory() {
    let (node, actions) = applied_node(1, 25, 10);
    // Recovery applied 25 commands: one snapshot at the end of it, at slot 25.
    let snaps: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a, Action::Snapshot { .. }))
        .collect();
    assert_eq!(snaps.len(), 1, "{actions:?}");
    let Action::Snapshot { snapshot, keep } = snaps[0] else {
        unreachable!()
    };
    assert_eq!(snapshot.index, 25);
    assert_eq!(snapshot.kv, *node.kv());
    assert_eq!(node.snapshot_index(), 25);
    assert!(
        node.chosen_log().is_empty(),
        "the log up to the snapshot is gone"
    );
    assert!(keep.contains(&Record::Incarnation { incarnation: 1 }));
    assert!(!keep.iter().any(|r| matches!(r, Record::LogChosen { .. })));
    // The snapshot and the records kept start the node again in the same state,
    // and duplicate detection survives.
    let (again, _) = Node::start_from(cfg(1, 3), Some(snapshot.clone()), keep.clone());
    assert_eq!((again.commit_index(), again.kv()), (25, node.kv()));
    assert_eq!(again.origin_high, node.origin_high);
    // Records of slots the snapshot covers (a crash before the log was replaced)
    // are skipped.
    let stale = vec![Record::LogChosen {
        slot: 3,
        batch: vec![write(2, 99, "other", 1)].into(),
    }];
    let (skips, _) = Node::start_from(cfg(1, 3), Some(snapshot.clone()), stale);
    assert_eq!(skips.kv(), node.kv());
}

#[test]
fn a_snapshot_is_also_taken_after_m_bytes_of_commands() {
    let mut c = cfg(1, 3);
    c.timing.snapshot_every = 0;
    // Each recovered write has a 2-byte key: 66 bytes; 600 bytes is 10 writes.
    c.timing.snapshot_bytes = 600;
    let recovered: Vec<Record> = (1..=25)
        .map(|slot| Record::LogChosen {
            slot,
            batch: vec![write(2, slot, &format!("k{}", slot % 3), slot as i64)].into(),
        })
        .collect();
    let (node, actions) = Node::start(c.clone(), recovered.clone());
    assert!(actions.iter().any(|a| matches!(a, Action::Snapshot { .. })));
    assert_eq!(node.snapshot_index(), 25);
    // Neither bound: never.
    c.timing.snapshot_bytes = 0;
    let (node, _) = Node::start(c, recovered);
    assert_eq!(node.snapshot_index(), 0);
}

#[test]
fn the_slots_a_snapshot_covers_are_freed_a_few_hundred_per_step() {
    let n = 3 * RETIRE_PER_STEP as u64 - 10;
    let (mut node, _) = applied_node(1, n, n);
    assert_eq!(node.snapshot_index(), n);
    assert!(node.chosen_log().is_empty());
    assert_eq!(
        node.retired.len() as u64,
        n,
        "not freed in the snapshot's step"
    );
    for left in [2 * RETIRE_PER_STEP - 10, RETIRE_PER_STEP - 10, 0] {
        node.step(Event::Timer(TimerId::Heartbeat));
        assert_eq!(node.retired.len(), left);
    }
}

#[test]
fn a_node_behind_the_snapshot_gets_it_in_chunks_and_installs_it() {
    let (mut ahead, _) = applied_node(1, 30, 10);
    ahead.cfg.timing.snapshot_chunk_keys = 2;
    // A prepare from below the snapshot cannot be promised.
    let out = peer(
        &mut ahead,
        3,
        PeerMessage::LogPrepare {
            ballot: 3,
            from_slot: 5,
        },
    );
    assert!(matches!(
        &out[..],
        [Action::Send {
            msg: PeerMessage::LogBehind { .. },
            ..
        }]
    ));
    // Catch-up from below it: the state machine in chunks of two keys.
    let out = peer(&mut ahead, 3, PeerMessage::CatchUp { from_slot: 1 });
    let chunks: Vec<PeerMessage> = out
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { to: 3, msg } => Some(msg),
            _ => None,
        })
        .collect();
    assert_eq!(chunks.len(), 2, "3 keys in chunks of 2: {chunks:?}");
    let mut behind = start(cfg(3, 3), vec![]);
    // Chunks may come in any order; the snapshot is installed with the last one.
    let mut installed = Vec::new();
    for msg in chunks.into_iter().rev() {
        installed = peer(&mut behind, 1, msg);
    }
    assert_eq!(behind.commit_index(), 30);
    assert_eq!(behind.kv(), ahead.kv());
    assert!(
        installed
            .iter()
            .any(|a| matches!(a, Action::Snapshot { snapshot, .. } if snapshot.index == 30))
    );
    assert!(installed.contains(&send(1, PeerMessage::CatchUp { from_slot: 31 })));
    // An old snapshot changes nothing.
    let out = peer(
        &mut behind,
        1,
        PeerMessage::SnapshotChunk {
            index: 10,
            part: 0,
            parts: 1,
            kv: vec![],
            lists: vec![],
            origins: vec![],
        },
    );
    assert_eq!(out, vec![]);
    assert_eq!(behind.commit_index(), 30);
}

// ---- the test-only mistakes in rare paths (types::Mistake) ----

fn with_mistake(mut c: Config, m: Mistake) -> Config {
    c.mistakes.insert(m);
    c
}

/// A register proposer whose own acceptor accepted 3 in ballot 4 hears of 7
/// accepted in ballot 5: it must propose 7; with the mistake it takes 3.
fn value_after_disagreeing_promises(c: Config) -> i64 {
    let mut p = start(
        c,
        vec![Record::RegisterAccept {
            key: k().into(),
            ballot: 4,
            value: 3,
        }],
    );
    let out = p.step(Event::Client {
        token: 1,
        op: ClientOp::Propose {
            key: k().into(),
            value: 6,
        },
    });
    let ballot = out
        .iter()
        .find_map(|a| match a {
            Action::Send {
                msg: PeerMessage::Prepare { ballot, .. },
                ..
            } => Some(*ballot),
            _ => None,
        })
        .expect("a prepare");
    let out = peer(
        &mut p,
        1,
        PeerMessage::Promise {
            key: k().into(),
            ballot,
            accepted: Some((5, 7)),
        },
    );
    out.iter()
        .find_map(|a| match a {
            Action::Send {
                msg: PeerMessage::Accept { value, .. },
                ..
            } => Some(*value),
            _ => None,
        })
        .expect("an accept")
}

#[test]
fn lowest_promise_wins_mistake_adopts_the_lower_ballot_only_when_promises_disagree() {
    assert_eq!(value_after_disagreeing_promises(cfg(3, 3)), 7);
    assert_eq!(
        value_after_disagreeing_promises(with_mistake(cfg(3, 3), Mistake::LowestPromiseWins)),
        3
    );
}

#[test]
fn restart_drops_promise_mistake_forgets_a_promise_made_after_the_last_accept() {
    let records = vec![
        Record::LogAccept {
            slot: 1,
            ballot: 4,
            batch: vec![write(2, 0, "x", 1)].into(),
        },
        Record::LogPromise { ballot: 9 },
    ];
    assert_eq!(start(cfg(1, 3), records.clone()).log_promised, 9);
    let wrong = start(
        with_mistake(cfg(1, 3), Mistake::RestartDropsPromise),
        records,
    );
    assert_eq!(
        wrong.log_promised, 4,
        "only the accepted ballot is restored"
    );
}

#[test]
fn snapshot_skips_next_mistake_leaves_the_first_slot_after_the_snapshot_unapplied() {
    let snapshot = Snapshot {
        index: 3,
        kv: [("x".to_string(), 1)].into_iter().collect(),
        origins: Vec::new(),
        ..Default::default()
    };
    let records = vec![
        Record::LogChosen {
            slot: 4,
            batch: vec![write(2, 5, "x", 2)].into(),
        },
        Record::LogChosen {
            slot: 5,
            batch: vec![write(2, 6, "y", 3)].into(),
        },
    ];
    let (right, _) = Node::start_from(cfg(1, 3), Some(snapshot.clone()), records.clone());
    assert_eq!(right.kv.get("x"), Some(&2));
    let (wrong, _) = Node::start_from(
        with_mistake(cfg(1, 3), Mistake::SnapshotSkipsNext),
        Some(snapshot),
        records,
    );
    assert_eq!(wrong.kv.get("x"), Some(&1), "slot 4's write is skipped");
    assert_eq!(wrong.kv.get("y"), Some(&3), "slot 5 is applied");
}

// ---- transactions ----

fn mop_r(key: &str) -> MicroOp {
    MicroOp::Read {
        key: key.into(),
        value: None,
    }
}

fn mop_a(key: &str, value: i64) -> MicroOp {
    MicroOp::Append {
        key: key.into(),
        value,
    }
}

fn read_of(key: &str, list: &[i64]) -> MicroOp {
    MicroOp::Read {
        key: key.into(),
        value: Some(MopValue::List(list.to_vec())),
    }
}

fn ask_txn(node: &mut Node, token: u64, txn: Vec<MicroOp>) -> Option<OpResult> {
    let out = node.step(Event::Client {
        token,
        op: ClientOp::Kv(KvOp::Txn { txn }),
    });
    out.into_iter().find_map(|a| match a {
        Action::Reply { result, .. } => Some(result),
        _ => None,
    })
}

#[test]
fn a_transaction_is_one_command_applied_atomically_with_its_reads() {
    let mut l = leader(1, 1);
    let got = ask_txn(
        &mut l,
        1,
        vec![
            mop_a("x", 1),
            mop_r("x"),
            mop_a("y", 2),
            MicroOp::Write {
                key: "z".into(),
                value: 7,
            },
        ],
    );
    assert_eq!(
        got,
        Some(OpResult::Txn(vec![
            mop_a("x", 1),
            read_of("x", &[1]),
            mop_a("y", 2),
            MicroOp::Write {
                key: "z".into(),
                value: 7
            },
        ]))
    );
    let got = ask_txn(
        &mut l,
        2,
        vec![mop_r("x"), mop_r("y"), mop_r("z"), mop_r("w")],
    );
    assert_eq!(
        got,
        Some(OpResult::Txn(vec![
            read_of("x", &[1]),
            read_of("y", &[2]),
            MicroOp::Read {
                key: "z".into(),
                value: Some(MopValue::Int(7))
            },
            MicroOp::Read {
                key: "w".into(),
                value: None
            },
        ]))
    );
}

#[test]
fn split_txn_bug_applies_the_second_half_of_the_writes_a_slot_later() {
    let mut l = start(with_bug(cfg(1, 1), Bug::SplitTxn), vec![]);
    campaign(&mut l);
    assert!(ask_txn(&mut l, 1, vec![mop_a("x", 1), mop_a("y", 1)]).is_some());
    // The next slot sees x but not y: half of the transaction.
    assert_eq!(
        ask_txn(&mut l, 2, vec![mop_r("x"), mop_r("y")]),
        Some(OpResult::Txn(vec![
            read_of("x", &[1]),
            MicroOp::Read {
                key: "y".into(),
                value: None
            }
        ]))
    );
    // After that slot, y arrived.
    assert_eq!(
        ask_txn(&mut l, 3, vec![mop_r("y")]),
        Some(OpResult::Txn(vec![read_of("y", &[1])]))
    );
}

#[test]
fn txn_local_read_bug_answers_read_only_transactions_locally() {
    let mut f = start(with_bug(cfg(2, 3), Bug::TxnLocalRead), vec![]);
    assert_eq!(
        ask_txn(&mut f, 1, vec![mop_r("x")]),
        Some(OpResult::Txn(vec![MicroOp::Read {
            key: "x".into(),
            value: None
        }]))
    );
    // A transaction that writes goes through the log (no leader yet: no reply).
    assert_eq!(ask_txn(&mut f, 2, vec![mop_r("x"), mop_a("x", 1)]), None);
}

#[test]
fn a_record_reads_back_field_by_field_as_it_was_written() {
    use crate::seam::Wire;
    let txn = Command {
        id: CmdId {
            node: 1,
            incarnation: 2,
            seq: 3,
        },
        op: KvOp::Txn {
            txn: vec![
                MicroOp::Append {
                    key: "x".into(),
                    value: 4,
                },
                MicroOp::Read {
                    key: "x".into(),
                    value: Some(MopValue::List(vec![4])),
                },
            ],
        },
    };
    let cas = Command {
        op: KvOp::Cas {
            key: "y".into(),
            from: 1,
            to: 2,
        },
        ..txn.clone()
    };
    let read = Command {
        op: KvOp::Read { key: "y".into() },
        ..txn.clone()
    };
    let batch = vec![write(2, 7, "x", 5), txn, cas, read];
    let records = [
        Record::Incarnation { incarnation: 3 },
        Record::RegisterPromise {
            key: k().into(),
            ballot: 7,
        },
        Record::RegisterAccept {
            key: k().into(),
            ballot: 7,
            value: -2,
        },
        Record::RegisterChosen {
            key: k().into(),
            value: 9,
        },
        Record::LogPromise { ballot: 11 },
        Record::LogAccept {
            slot: 4,
            ballot: 11,
            batch: batch.clone().into(),
        },
        Record::LogChosen {
            slot: 4,
            batch: batch.into(),
        },
        Record::LogChosen {
            slot: 5,
            batch: Vec::new().into(),
        },
    ];
    for r in records {
        let mut bytes = Vec::new();
        r.encode(&mut bytes);
        assert_eq!(Record::decode(&bytes), Ok(r.clone()));
    }
    // The encoding as written before records were read field by field.
    let old = br#"{"r":"log-accept","slot":4,"ballot":11,"batch":[{"id":{"node":2,"incarnation":1,"seq":7},"op":"write","key":"x","value":5}]}"#;
    assert_eq!(
        Record::decode(old),
        Ok(Record::LogAccept {
            slot: 4,
            ballot: 11,
            batch: vec![write(2, 7, "x", 5)].into()
        })
    );
    // Fields of another kind are ignored, as the tagged reader ignored them; a
    // missing one is named; an unknown kind is refused.
    let odd = br#"{"value":4,"r":"log-promise","ballot":3,"slot":9}"#;
    assert_eq!(Record::decode(odd), Ok(Record::LogPromise { ballot: 3 }));
    let missing = br#"{"r":"register-accept","key":"x","ballot":3}"#;
    assert!(Record::decode(missing).unwrap_err().contains("`value`"));
    let no_to = br#"{"r":"log-chosen","slot":1,"batch":[{"id":{"node":2,"incarnation":1,"seq":7},"op":"cas","key":"x","from":5}]}"#;
    assert!(Record::decode(no_to).unwrap_err().contains("`to`"));
    assert!(Record::decode(br#"{"r":"nonsense","ballot":3}"#).is_err());
    assert!(Record::decode(br#"{"ballot":3}"#).is_err());
}
