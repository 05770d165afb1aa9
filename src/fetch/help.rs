//! (being written)

use super::lock::LockFile;
use crate::recipe::plan_content::ContentPlan;
use anyhow::Result;
use std::path::Path;

pub fn write(_plan: &ContentPlan, _lock: &LockFile, _out: &Path) -> Result<()> {
    Ok(())
}
