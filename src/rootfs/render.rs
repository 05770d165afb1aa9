//! Copies a directory from the repository (an overlay or preseed) with `*.j2` files
//! rendered by minijinja and stripped of the suffix, and digests directory trees for
//! cache keys.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Renders one template file's text.
pub fn render_text(text: &str, ctx: &serde_json::Value, origin: &Path) -> Result<String> {
    let env = crate::recipe::template::environment();
    env.render_str(text, minijinja::Value::from_serialize(ctx))
        .map_err(|e| {
            let mut msg = format!("{}: template error: {}", origin.display(), e.kind());
            if let Some(d) = e.detail() {
                msg.push_str(&format!(": {d}"));
            }
            msg.push_str(&crate::recipe::template::quoted_span(&e, text).unwrap_or_default());
            if let Some(line) = e.line() {
                msg.push_str(&format!(" (line {line})"));
            }
            // The overlay is the recipe author's input: a user error.
            anyhow::Error::new(crate::recipe::RecipeError::Input { message: msg })
        })
}

/// Copies `src` into `dest`, rendering `*.j2` files. Symlinks are copied as links.
pub fn render_dir(src: &Path, dest: &Path, ctx: &serde_json::Value) -> Result<()> {
    if !src.is_dir() {
        return Err(crate::recipe::RecipeError::Input {
            message: format!("{} is not a directory; paths are relative to the recipe", src.display()),
        }
        .into());
    }
    for entry in walk(src)? {
        let rel = entry.strip_prefix(src).unwrap_or(&entry);
        let meta = fs_err::symlink_metadata(&entry)?;
        let mut out = dest.join(rel);
        if meta.is_dir() {
            fs_err::create_dir_all(&out)?;
        } else if meta.file_type().is_symlink() {
            let _ = fs_err::remove_file(&out);
            std::os::unix::fs::symlink(fs_err::read_link(&entry)?, &out)?;
        } else if let Some(name) = out
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".j2"))
        {
            out = out.with_file_name(name);
            let text =
                fs_err::read_to_string(&entry).with_context(|| format!("reading template {}", entry.display()))?;
            fs_err::write(&out, render_text(&text, ctx, &entry)?)?;
            fs_err::set_permissions(&out, meta.permissions())?;
        } else {
            fs_err::copy(&entry, &out).with_context(|| format!("copying {}", entry.display()))?;
        }
    }
    Ok(())
}

/// Every path below `root` (not `root` itself), sorted, parents before children.
pub fn walk(root: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut names: Vec<_> = fs_err::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for p in names.into_iter().rev() {
            if fs_err::symlink_metadata(&p)?.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// A digest of a tree's paths, modes, link targets and contents.
pub fn tree_digest(root: &Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut h = Sha256::new();
    for p in walk(root)? {
        let rel = p.strip_prefix(root).unwrap_or(&p);
        let meta = fs_err::symlink_metadata(&p)?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update(meta.permissions().mode().to_le_bytes());
        if meta.file_type().is_symlink() {
            h.update(fs_err::read_link(&p)?.to_string_lossy().as_bytes());
        } else if meta.is_file() {
            h.update(fs_err::read(&p)?);
        }
        h.update([0]);
    }
    Ok(hex::encode(h.finalize()))
}
