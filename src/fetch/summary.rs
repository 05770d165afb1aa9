//! What the content holds, as plain data for templates: the image's landing page
//! (an overlay `index.html.j2`) lists the lessons, installers, mirrors and repositories
//! the recipe actually mirrored, read from the plan and the lock after fetching.

use super::lock::LockFile;
use crate::recipe::plan_content::{ContentPlan, SourcePlan};
use serde_json::{Value, json};

/// `content` in the template context; the same shape (empty lists, `null` mirrors)
/// when the recipe has no content, so a template can test it without special cases.
pub fn of(plan: Option<&ContentPlan>, lock: &LockFile) -> Value {
    let (mut pypi, mut cran) = (Value::Null, Value::Null);
    let (mut lessons, mut git) = (Vec::new(), Vec::new());
    for s in plan.iter().flat_map(|p| &p.sources) {
        let files = lock
            .sources
            .get(&s.id())
            .map(|e| e.files.as_slice())
            .unwrap_or_default();
        match s {
            SourcePlan::Pypi(p) => {
                let platforms: Vec<&str> = p.platforms.iter().map(|(n, _)| n.as_str()).collect();
                pypi = json!({"path": p.path, "python": p.python, "platforms": platforms,
                    "files": files.iter().filter(|f| f.path.is_some()).count()});
            }
            SourcePlan::Cran(c) => {
                cran = json!({"path": c.path, "r_version": c.r_version, "types": c.types,
                    "files": files.iter().filter(|f| f.path.is_some()).count()});
            }
            SourcePlan::Site(site) => lessons.push(json!({"name": site.name, "group": site.group,
                "title": site.title, "path": format!("{}/", site.path)})),
            // Listed from `served_files` below.
            SourcePlan::File(_) | SourcePlan::Npm(_) | SourcePlan::Pip(_) => {}
            SourcePlan::Git(g) => git.push(json!({"name": g.name, "path": g.path})),
        }
    }
    let downloads = plan.map(|p| served_files(p, lock)).unwrap_or_default();
    json!({"base_url": plan.map(|p| p.base_url.as_str()),
        "dest": plan.map(|p| format!("/{}", p.dest)), "pypi": pypi, "cran": cran,
        "lessons": lessons, "downloads": downloads, "git": git})
}

/// One installer (a `content.files` entry) as served.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Download {
    /// The recipe's name for it.
    pub name: String,
    /// Its path below the content root.
    pub path: String,
    /// Its file name.
    pub file: String,
    pub size: u64,
    /// `windows`, `macos`, `linux` or `other`, from the file name.
    pub os: &'static str,
}

/// The served single files, in recipe order (`files:` downloads into the root file
/// system are not served).
pub fn served_files(plan: &ContentPlan, lock: &LockFile) -> Vec<Download> {
    let mut out = Vec::new();
    for s in &plan.sources {
        let SourcePlan::File(f) = s else { continue };
        if f.target.is_some() {
            continue;
        }
        let files = lock
            .sources
            .get(&s.id())
            .map(|e| e.files.as_slice())
            .unwrap_or_default();
        for lf in files {
            let Some(path) = lf.path.clone() else { continue };
            let file = path.rsplit('/').next().unwrap_or_default().to_string();
            out.push(Download {
                name: f.name.clone(),
                os: os_of(&file),
                file,
                path,
                size: lf.size,
            });
        }
    }
    out
}

/// The operating system an installer is for, from its file name.
fn os_of(file: &str) -> &'static str {
    let f = file.to_ascii_lowercase();
    if f.ends_with(".exe") || f.ends_with(".msi") {
        "windows"
    } else if f.ends_with(".pkg") || f.ends_with(".dmg") {
        "macos"
    } else if f.ends_with(".deb") || f.ends_with(".rpm") || f.ends_with(".appimage") {
        "linux"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn installers_are_sorted_by_operating_system() {
        assert_eq!(super::os_of("R-4.5.2-win.exe"), "windows");
        assert_eq!(super::os_of("RStudio-2025.09.2-418.dmg"), "macos");
        assert_eq!(super::os_of("python-3.12.10-macos11.pkg"), "macos");
        assert_eq!(super::os_of("tool.tar.gz"), "other");
    }
}
