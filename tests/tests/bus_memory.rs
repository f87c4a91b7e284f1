//! The bus conformance suite against [`MemoryBus`].

use peerscrip_tests::bus_conformance::Rig;
use shared::bus::MemoryBus;

/// One bus; its clone is the raw sender (`MemoryBus::publish_unchecked`).
async fn rig() -> Rig<MemoryBus, MemoryBus, ()> {
    let bus = MemoryBus::new();
    Rig {
        raw: bus.clone(),
        bus,
        guard: (),
    }
}

peerscrip_tests::bus_conformance_tests!(rig);
