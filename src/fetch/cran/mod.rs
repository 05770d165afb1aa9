//! (being written)

pub mod closure;
pub mod dcf;

use super::Cx;
use super::lock::LockedSource;
use crate::recipe::plan_content::*;
use anyhow::{Result, bail};
use std::path::Path;

pub fn resolve(_plan: &CranPlan, _cx: &Cx) -> Result<LockedSource> {
    bail!("not implemented yet")
}

pub fn materialize(_plan: &CranPlan, _entry: &LockedSource, _cx: &Cx, _out: &Path) -> Result<()> {
    bail!("not implemented yet")
}
