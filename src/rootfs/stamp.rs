//! Per-image values kept out of the shared stages. The bootstrap and the steps are
//! cached by what they install, so they must not see what differs between images made
//! from the same packages — partition UUIDs and PARTUUIDs, the disk ID, the image's and
//! the recipe's name. Their preseed is rendered with a placeholder for each such value;
//! whatever the packages' hooks derive from it (raspi-firmware writes the PARTUUID into
//! `/boot/firmware/cmdline.txt`) carries the placeholder, and [`apply`] writes the real
//! values into every such file once the shared stages are done.

use super::{EntryKind, RootTree};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// What every placeholder starts with; nothing else may contain it after [`apply`].
const MARK: &str = "@imgbuild-per-image:";
/// Files above this size are not searched: configuration a hook writes is small, and
/// kernels, initramfs images and libraries never hold a preseed's text.
const MAX_SEARCHED: u64 = 1 << 20;

/// The per-image values' template keys, as dotted paths.
fn per_image_keys(ctx: &Value) -> Vec<String> {
    let mut keys = vec!["image.disk_id".to_string(), "image.name".into(), "recipe.name".into()];
    if let Some(parts) = ctx.get("partitions").and_then(Value::as_object) {
        for name in parts.keys() {
            keys.push(format!("partitions.{name}.uuid"));
            keys.push(format!("partitions.{name}.partuuid"));
        }
    }
    keys
}

/// The placeholder for a template key.
fn placeholder(key: &str) -> String {
    format!("{MARK}{key}@")
}

fn slot<'a>(ctx: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    key.split('.').try_fold(ctx, |v, k| v.get_mut(k))
}

/// `ctx` with every per-image value replaced by its placeholder (what the shared stages
/// render with), and the (placeholder, real value) pairs [`apply`] writes back.
pub fn shared_context(ctx: &Value) -> (Value, Vec<(String, String)>) {
    let mut shared = ctx.clone();
    let mut pairs = Vec::new();
    for key in per_image_keys(ctx) {
        if let Some(v) = slot(&mut shared, &key)
            && let Some(real) = v.as_str().map(str::to_string)
        {
            let p = placeholder(&key);
            *v = Value::String(p.clone());
            pairs.push((p, real));
        }
    }
    (shared, pairs)
}

/// Writes the real values into every regular file of `tree` (up to 1 MiB) that holds a
/// placeholder; the new bytes go to `scratch`. Returns the paths stamped. A placeholder
/// left over (one [`shared_context`] did not make) is an error naming the file.
pub fn apply(tree: &mut RootTree, pairs: &[(String, String)], scratch: &Path) -> Result<Vec<String>> {
    fs_err::create_dir_all(scratch)?;
    let mut stamped = Vec::new();
    let mut readers: Vec<Option<fs_err::File>> = (0..tree.sources.len()).map(|_| None).collect();
    for i in 0..tree.entries.len() {
        let EntryKind::File {
            size,
            data_offset,
            source,
        } = tree.entries[i].kind
        else {
            continue;
        };
        if size == 0 || size > MAX_SEARCHED {
            continue;
        }
        let src = source as usize;
        if readers[src].is_none() {
            readers[src] = Some(fs_err::File::open(&tree.sources[src])?);
        }
        let Some(f) = readers[src].as_mut() else { continue };
        let mut data = vec![0u8; size as usize];
        f.seek(SeekFrom::Start(data_offset))?;
        f.read_exact(&mut data)
            .with_context(|| format!("reading /{} from {}", tree.entries[i].path, tree.sources[src].display()))?;
        if !contains(&data, MARK.as_bytes()) {
            continue;
        }
        let mut text = data;
        for (p, real) in pairs {
            text = replace(&text, p.as_bytes(), real.as_bytes());
        }
        let path = tree.entries[i].path.clone();
        if contains(&text, MARK.as_bytes()) {
            bail!("/{path}: holds a per-image placeholder ({MARK}…) imgbuild has no value for");
        }
        let out = scratch.join(format!("stamped-{}", stamped.len()));
        fs_err::write(&out, &text)?;
        tree.sources.push(out);
        readers.push(None);
        tree.entries[i].kind = EntryKind::File {
            size: text.len() as u64,
            data_offset: 0,
            source: (tree.sources.len() - 1) as u32,
        };
        stamped.push(path);
    }
    if !stamped.is_empty() {
        tree.pristine = false;
    }
    Ok(stamped)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut last = 0;
    for at in memchr::memmem::find_iter(hay, from) {
        out.extend_from_slice(&hay[last..at]);
        out.extend_from_slice(to);
        last = at + from.len();
    }
    out.extend_from_slice(&hay[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::Entry;

    fn file(path: &str, source: u32, size: u64) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File {
                size,
                data_offset: 0,
                source,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: vec![],
        }
    }

    #[test]
    fn the_shared_context_hides_per_image_values_and_apply_writes_them_back() {
        let ctx = serde_json::json!({
            "partitions": {"root": {"uuid": "u-1", "partuuid": "pu-1", "label": "ROOT"}},
            "image": {"disk_id": "d-1", "name": "pi4"},
            "recipe": {"name": "pi4"},
            "consoles": "tty0",
        });
        let (shared, pairs) = shared_context(&ctx);
        assert_eq!(shared["partitions"]["root"]["label"], "ROOT", "layout stays");
        assert_eq!(shared["consoles"], "tty0", "the recipe's variables stay");
        let root = shared["partitions"]["root"]["partuuid"].as_str().unwrap().to_string();
        assert!(root.starts_with(MARK), "{root}");
        let (other, _) = shared_context(&serde_json::json!({
            "partitions": {"root": {"uuid": "u-2", "partuuid": "pu-2", "label": "ROOT"}},
            "image": {"disk_id": "d-2", "name": "pi4-server"},
            "recipe": {"name": "pi4-server"},
            "consoles": "tty0",
        }));
        assert_eq!(shared, other, "two images of one package set share the context");

        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        fs_err::write(&a, format!("console=tty0 root=PARTUUID={root} rw\n")).unwrap();
        let b = tmp.path().join("b");
        fs_err::write(&b, "nothing to see\n").unwrap();
        let mut tree = RootTree {
            sources: vec![a.clone(), b],
            entries: vec![
                file("boot/firmware/cmdline.txt", 0, fs_err::metadata(&a).unwrap().len()),
                file("etc/x", 1, 15),
            ],
            pristine: true,
            key: String::new(),
            epoch: 0,
        };
        let stamped = apply(&mut tree, &pairs, &tmp.path().join("scratch")).unwrap();
        assert_eq!(stamped, ["boot/firmware/cmdline.txt"]);
        assert!(!tree.pristine);
        let EntryKind::File { source, .. } = tree.entries[0].kind else {
            panic!()
        };
        assert_eq!(
            fs_err::read_to_string(&tree.sources[source as usize]).unwrap(),
            "console=tty0 root=PARTUUID=pu-1 rw\n"
        );
        assert!(
            matches!(tree.entries[1].kind, EntryKind::File { source: 1, .. }),
            "untouched"
        );

        let c = tmp.path().join("c");
        fs_err::write(&c, format!("{MARK}unknown@")).unwrap();
        tree.sources.push(c);
        tree.entries
            .push(file("etc/bad", (tree.sources.len() - 1) as u32, MARK.len() as u64 + 8));
        let err = apply(&mut tree, &pairs, &tmp.path().join("scratch2")).unwrap_err();
        assert!(
            err.to_string().contains("/etc/bad: holds a per-image placeholder"),
            "{err}"
        );
    }
}
