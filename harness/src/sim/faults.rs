//! The simulated world as the executor of nemesis faults: the same
//! [`nemesis::apply`] that drives real processes and proxies drives the simulation,
//! so a plan's faults mean the same in both.

use std::cell::RefCell;

use nemesis::{LinkFaults, NodeId};

use super::core::SimCore;
use super::world::World;

pub struct Faults<'a, 'w, 'r, C: SimCore>(pub &'a RefCell<&'w mut World<'r, C>>);

impl<C: SimCore> nemesis::Nodes for Faults<'_, '_, '_, C> {
    /// The simulation makes every fault.
    fn cannot(&self, _fault: &nemesis::Fault) -> Option<&'static str> {
        None
    }
    fn kill(&self, id: NodeId) -> nemesis::Acted {
        Ok(self.0.borrow_mut().kill(id))
    }
    fn pause(&self, id: NodeId) -> nemesis::Acted {
        Ok(self.0.borrow_mut().pause(id))
    }
    fn resume(&self, id: NodeId) -> nemesis::Acted {
        Ok(self.0.borrow_mut().resume(id))
    }
    /// A refusal is the node's answer, not an error of the world: it is reported as
    /// the fault's outcome (indeterminate, with why).
    fn restart(&self, id: NodeId) -> nemesis::Acted {
        self.0
            .borrow_mut()
            .boot(id)
            .map_err(|r| nemesis::FaultError::Unknown(r.0))
    }
    fn set_clock(&self, id: NodeId, rate: f64, jump_ms: u64) -> nemesis::Acted {
        self.0.borrow_mut().set_clock(id, rate, jump_ms);
        Ok(true)
    }
    fn corrupt(&self, id: NodeId, position: u64) -> nemesis::Acted {
        Ok(self.0.borrow_mut().corrupt(id, position))
    }
}

impl<C: SimCore> nemesis::Links for Faults<'_, '_, '_, C> {
    fn cut(&self, links: &[(NodeId, NodeId)]) -> Result<(), nemesis::FaultError> {
        self.0.borrow_mut().cut(links);
        Ok(())
    }
    fn heal(&self) -> Result<(), nemesis::FaultError> {
        self.0.borrow_mut().heal_partitions();
        Ok(())
    }
    fn degrade(&self, targets: &[NodeId], faults: &LinkFaults) -> Result<(), nemesis::FaultError> {
        self.0.borrow_mut().degrade(targets, faults);
        Ok(())
    }
    fn restore(&self) -> Result<(), nemesis::FaultError> {
        self.0.borrow_mut().restore_links();
        Ok(())
    }
}
