//! The verify stage: reading built images back without mounting them.

pub mod inspect;
pub mod probe;
