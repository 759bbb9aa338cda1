//! [`apply`](crate::apply) against a recording fake: every fault kind reaches the
//! right call, and each outcome comes out as documented.

use std::cell::RefCell;

use crate::*;

#[derive(Default)]
struct Fake {
    calls: RefCell<Vec<String>>,
    down: Vec<NodeId>,
    broken: Option<NodeId>,
    no_links: bool,
    /// A node this backend cannot pause (it did nothing there).
    unpausable: Option<NodeId>,
    /// The backend's heal fails part-way.
    torn_heal: bool,
}

impl Nodes for Fake {
    fn kill(&self, id: NodeId) -> Acted {
        self.calls.borrow_mut().push(format!("kill {id}"));
        if self.broken == Some(id) {
            return Err(FaultError::Unknown("signal failed".into()));
        }
        Ok(!self.down.contains(&id))
    }
    fn pause(&self, id: NodeId) -> Acted {
        self.calls.borrow_mut().push(format!("pause {id}"));
        if self.unpausable == Some(id) {
            return Err(FaultError::Cannot("no signals here".into()));
        }
        Ok(!self.down.contains(&id))
    }
    fn resume(&self, id: NodeId) -> Acted {
        self.calls.borrow_mut().push(format!("resume {id}"));
        Ok(true)
    }
    fn restart(&self, id: NodeId) -> Acted {
        self.calls.borrow_mut().push(format!("restart {id}"));
        Ok(self.down.contains(&id))
    }
}

impl Links for Fake {
    fn cut(&self, links: &[(NodeId, NodeId)]) -> Result<(), FaultError> {
        self.calls.borrow_mut().push(format!("cut {links:?}"));
        Ok(())
    }
    fn heal(&self) -> Result<(), FaultError> {
        self.calls.borrow_mut().push("heal".into());
        if self.torn_heal {
            return Err(FaultError::Unknown(
                "two of three rule sets rewritten".into(),
            ));
        }
        Ok(())
    }
    fn degrade(&self, targets: &[NodeId], _: &LinkFaults) -> Result<(), FaultError> {
        if self.no_links {
            return Err(FaultError::Cannot("this backend has no link faults".into()));
        }
        self.calls.borrow_mut().push(format!("degrade {targets:?}"));
        Ok(())
    }
    fn restore(&self) -> Result<(), FaultError> {
        self.calls.borrow_mut().push("restore".into());
        Ok(())
    }
}

fn at(fault: Fault, targets: &[NodeId]) -> ScheduledFault {
    ScheduledFault {
        at_ms: 0,
        fault,
        targets: targets.to_vec(),
        role: None,
    }
}

#[test]
fn every_fault_kind_reaches_its_executor() {
    let f = Fake::default();
    let link = LinkFaults {
        loss: 0.1,
        delay_ms: 0,
        jitter_ms: 0,
        duplicate: 0.0,
        reorder: 0.0,
    };
    let shape = Shape::IsolateOne { node: 1 };
    let faults = [
        at(
            Fault::Partition {
                cut: grudge(&shape, 3),
                shape,
            },
            &[1],
        ),
        at(Fault::Heal, &[]),
        at(Fault::Kill, &[2]),
        at(Fault::Restart, &[2]),
        at(Fault::Pause, &[3]),
        at(Fault::Resume, &[3]),
        at(Fault::Links(link), &[1]),
        at(Fault::LinksHeal, &[]),
    ];
    let outcomes: Vec<NemesisOutcome> = faults.iter().map(|s| apply(&f, &f, s)).collect();
    let calls = f.calls.borrow().join("; ");
    assert!(
        calls.starts_with("cut [(1, 2), (1, 3), (2, 1), (3, 1)]; heal; kill 2"),
        "{calls}"
    );
    assert!(
        calls.ends_with("pause 3; resume 3; degrade [1]; restore"),
        "{calls}"
    );
    // The restart found node 2 up (the fake never goes down): skipped, not installed.
    assert!(
        matches!(outcomes[3], NemesisOutcome::Skipped(_)),
        "{outcomes:?}"
    );
    let others = outcomes.iter().enumerate().filter(|(i, _)| *i != 3);
    assert!(others.clone().all(|(_, o)| *o == NemesisOutcome::Installed));
}

#[test]
fn outcomes_say_partial_skipped_and_indeterminate() {
    let f = Fake {
        down: vec![2],
        broken: Some(3),
        no_links: true,
        ..Fake::default()
    };
    assert_eq!(
        apply(&f, &f, &at(Fault::Kill, &[1, 2])),
        NemesisOutcome::PartiallyInstalled {
            applied: vec![1],
            skipped: vec![2]
        }
    );
    assert!(matches!(
        apply(&f, &f, &at(Fault::Kill, &[2])),
        NemesisOutcome::Skipped(_)
    ));
    match apply(&f, &f, &at(Fault::Kill, &[1, 3])) {
        NemesisOutcome::Indeterminate(why) => {
            assert!(why.contains("node 3") && why.contains("[1]"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let link = Fault::Links(LinkFaults {
        loss: 1.0,
        delay_ms: 0,
        jitter_ms: 0,
        duplicate: 0.0,
        reorder: 0.0,
    });
    assert_eq!(
        apply(&f, &f, &at(link, &[1])),
        NemesisOutcome::Skipped("this backend has no link faults".into())
    );
    // The recorded forms.
    let json = |o: &NemesisOutcome| serde_json::to_string(o).unwrap();
    assert_eq!(json(&NemesisOutcome::Installed), "\"installed\"");
    assert_eq!(
        json(&NemesisOutcome::Skipped("x".into())),
        "{\"skipped\":\"x\"}"
    );
}

#[test]
fn the_class_of_a_backend_error_decides_the_outcome() {
    let f = Fake {
        unpausable: Some(2),
        torn_heal: true,
        ..Fake::default()
    };
    // Cannot: nothing was done there; the reason is kept when nothing took effect.
    assert_eq!(
        apply(&f, &f, &at(Fault::Pause, &[2])),
        NemesisOutcome::Skipped("node 2: no signals here".into())
    );
    assert_eq!(
        apply(&f, &f, &at(Fault::Pause, &[1, 2])),
        NemesisOutcome::PartiallyInstalled {
            applied: vec![1],
            skipped: vec![2]
        }
    );
    // Unknown: the network may be half-changed.
    assert_eq!(
        apply(&f, &f, &at(Fault::Heal, &[])),
        NemesisOutcome::Indeterminate("two of three rule sets rewritten".into())
    );
}
