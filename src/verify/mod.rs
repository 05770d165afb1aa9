//! The verify stage: reading built images back without mounting them, and booting them
//! in QEMU (`boot`).

pub mod boot;
pub mod inspect;
pub mod probe;
