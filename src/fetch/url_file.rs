//! (being written)

use super::Cx;
use super::lock::LockedSource;
use crate::recipe::plan_content::FilePlan;
use anyhow::{Result, bail};

pub fn resolve(_plan: &FilePlan, _cx: &Cx) -> Result<LockedSource> {
    bail!("not implemented yet")
}
