//! A `files:` directory filled by Python packages installed for the image's Python
//! (`/usr/local/lib/python3.11/dist-packages: {pip: {packages: [pandas], python: "3.11"}}`).

use super::catalogue::DEFAULT_PYPI_INDEX;
use super::checker::Checker;
use super::error::RecipeError;
use super::model::PipInstallSpec;
use super::plan_content::{check_requirement, check_url, items};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipPlan {
    pub requirements: Vec<String>,
    /// The image's Python version (`3.11` on Debian bookworm).
    pub python: String,
    /// uv's `--python-platform` for the image.
    pub uv_platform: String,
    pub index_url: String,
    /// The directory in the root file system (no leading `/`).
    pub target: String,
    /// Only the packages named, not their dependencies.
    pub no_deps: bool,
}

/// uv's platform for a Debian architecture: manylinux_2_28 wheels run on bookworm's glibc
/// 2.36 and anything newer.
pub fn platform_for(architecture: &str) -> Option<&'static str> {
    Some(match architecture {
        "amd64" => "x86_64-manylinux_2_28",
        "arm64" => "aarch64-manylinux_2_28",
        _ => return None,
    })
}

/// Checks the `pip` of the `files:` entry `field` (`target` is its normalized path);
/// None when it lists no packages (a layer's empty entry for recipes to fill).
pub fn plan(
    p: &PipInstallSpec,
    architecture: Option<&str>,
    field: &str,
    target: String,
    ck: &Checker,
) -> Result<Option<PipPlan>, RecipeError> {
    let requirements = items(&p.packages);
    if requirements.is_empty() {
        return Ok(None);
    }
    for r in &requirements {
        check_requirement(r, &format!("{field}.pip.packages"), ck)?;
    }
    let Some(python) = p.python.clone() else {
        return Err(ck.err(
            &format!("{field}.pip.python"),
            "missing; give the image's Python version, e.g. \"3.11\" for Debian bookworm",
        ));
    };
    // Both go to uv as option values: a version and a platform tag, nothing else.
    if !(python.contains('.')
        && python
            .split('.')
            .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())))
    {
        return Err(ck.err(
            &format!("{field}.pip.python"),
            format!("`{python}` is not a Python version such as \"3.11\""),
        ));
    }
    let uv_platform = match (&p.platform, architecture) {
        (Some(p), _) => p.clone(),
        (None, Some(a)) => match platform_for(a) {
            Some(p) => p.to_string(),
            None => {
                return Err(ck.err(
                    &format!("{field}.pip.platform"),
                    format!("no default for architecture `{a}`; give uv's platform, e.g. `armv7l-manylinux_2_31`"),
                ));
            }
        },
        (None, None) => {
            return Err(ck.err(
                &format!("{field}.pip.platform"),
                "no default without `rootfs.architecture`; give uv's platform, e.g. `x86_64-manylinux_2_28`",
            ));
        }
    };
    let tag = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
    if uv_platform.starts_with('-') || !uv_platform.chars().all(tag) {
        return Err(ck.err(
            &format!("{field}.pip.platform"),
            format!("`{uv_platform}` is not a platform such as `aarch64-manylinux_2_36`"),
        ));
    }
    let index_url = p.index_url.clone().unwrap_or_else(|| DEFAULT_PYPI_INDEX.into());
    check_url(&index_url, &format!("{field}.pip.index_url"), ck)?;
    Ok(Some(PipPlan {
        requirements,
        python,
        uv_platform,
        index_url,
        target,
        no_deps: p.no_deps.unwrap_or(false),
    }))
}
