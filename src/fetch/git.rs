//! (being written)

use super::Cx;
use super::lock::LockedSource;
use crate::recipe::plan_content::GitPlan;
use anyhow::{Result, bail};
use std::path::Path;

pub fn resolve(_plan: &GitPlan, _cx: &Cx) -> Result<LockedSource> {
    bail!("not implemented yet")
}

pub fn materialize(_plan: &GitPlan, _entry: &LockedSource, _cx: &Cx, _out: &Path) -> Result<()> {
    bail!("not implemented yet")
}
