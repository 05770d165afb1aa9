//! `imgbuild fetch RECIPE --out DIR`: the content tree written beside the old one and
//! swapped in only when every source succeeded, so a failed or interrupted refresh of a
//! USB drive or laptop mirror leaves the previous mirror whole.

use super::{FetchOptions, Stats};
use crate::cache::Cache;
use crate::recipe::plan_content::ContentPlan;
use crate::report::Reporter;
use anyhow::{Context, Result, bail};
use fs_err as fs;
use std::path::Path;

const NEW: &str = ".imgbuild-new";
const OLD: &str = ".imgbuild-old";

/// Fetches `plan` and replaces the matching entries of `out` with the new tree.
pub fn fetch_to_dir(
    plan: &ContentPlan,
    lock_path: &Path,
    opts: FetchOptions,
    cache: &Cache,
    out: &Path,
    reporter: &dyn Reporter,
) -> Result<Stats> {
    fs::create_dir_all(out)?;
    let new = out.join(NEW);
    let old = out.join(OLD);
    for d in [&new, &old] {
        if d.exists() {
            fs::remove_dir_all(d)?;
        }
    }
    crate::interrupt::remove_on_interrupt(new.clone());
    let result = super::fetch(plan, lock_path, opts, cache, &new, None, reporter);
    crate::interrupt::forget(&new);
    let stats = match result {
        Ok((s, _)) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&new);
            return Err(e);
        }
    };
    swap_in(&new, out, &old).with_context(|| format!("replacing the mirror in {}", out.display()))?;
    Ok(stats)
}

/// Moves each top-level entry of `new` over its namesake in `out`.
fn swap_in(new: &Path, out: &Path, old: &Path) -> Result<()> {
    fs::create_dir_all(old)?;
    for entry in fs::read_dir(new)? {
        let entry = entry?;
        let name = entry.file_name();
        let dest = out.join(&name);
        if dest.symlink_metadata().is_ok() {
            fs::rename(&dest, old.join(&name))?;
        }
        fs::rename(entry.path(), &dest)?;
    }
    fs::remove_dir_all(old)?;
    fs::remove_dir(new)?;
    Ok(())
}

/// The content plan of a recipe, or an error saying it has none.
pub fn require(plan: Option<&ContentPlan>, recipe: &Path) -> Result<ContentPlan> {
    match plan {
        Some(p) => Ok(p.clone()),
        None => bail!(crate::recipe::RecipeError::Field {
            file: recipe.to_path_buf(),
            field: "content".into(),
            message: "missing; `imgbuild fetch` needs a `content:` section (see README, Content)".into(),
        }),
    }
}
