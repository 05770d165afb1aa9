//! How a recipe merges with the recipes it `extends` (written down in the README):
//!
//! - maps merge key by key, recursively (so a child recipe changes one field of one
//!   partition by naming just that);
//! - lists append to the parent's list, unless tagged `!replace`, which replaces it;
//! - any other value replaces the parent's;
//! - `null` (`key: ~` or `key:` with nothing) removes the parent's value, e.g. a partition.
//!
//! Merging also records which file set each field last, so later errors can name it.

use super::merge_list::REPLACE_TAG;
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// For each dotted field path, the recipe file that set it last.
pub type Origins = BTreeMap<String, PathBuf>;

/// Joins a dotted field path.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

fn record(value: &Value, path: &str, file: &Path, origins: &mut Origins) {
    origins.insert(path.to_string(), file.to_path_buf());
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                record(v, &join(path, &key_text(k)), file, origins);
            }
        }
        // A list's items by their place in the merged list (`steps[3]`), which is where
        // conditions are evaluated: a bad `when:` names the file the item came from.
        Value::Sequence(items) => record_items(items, 0, path, file, origins),
        Value::Tagged(t) => record(&t.value, path, file, origins),
        _ => {}
    }
}

fn record_items(items: &[Value], first: usize, path: &str, file: &Path, origins: &mut Origins) {
    for (i, v) in items.iter().enumerate() {
        record(v, &format!("{path}[{}]", first + i), file, origins);
    }
}

fn is_replace(value: &Value) -> bool {
    matches!(value, Value::Tagged(t) if t.tag == REPLACE_TAG)
}

/// Merges `overlay` (from `file`) onto `base`, at dotted `path`.
pub fn merge(base: &mut Value, overlay: Value, file: &Path, path: &str, origins: &mut Origins) {
    record_self(path, file, origins);
    match (base, overlay) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let child = join(path, &key_text(&k));
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v, file, &child, origins),
                    None => {
                        record(&v, &child, file, origins);
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) => {
            record_items(&o, b.len(), path, file, origins);
            b.extend(o);
        }
        (b, o) => {
            let o = if is_replace(&o) {
                match o {
                    Value::Tagged(t) => t.value,
                    other => other,
                }
            } else {
                o
            };
            record(&o, path, file, origins);
            *b = o;
        }
    }
}

fn record_self(path: &str, file: &Path, origins: &mut Origins) {
    origins.insert(path.to_string(), file.to_path_buf());
}

/// After the last merge: drops `null` map entries (removals) and unwraps `!replace`
/// tags that had nothing to replace.
pub fn finish(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            map.retain(|_, v| !v.is_null());
            for (_, v) in map.iter_mut() {
                finish(v);
            }
        }
        Value::Sequence(seq) => seq.iter_mut().for_each(finish),
        Value::Tagged(t) if t.tag == REPLACE_TAG => {
            let mut inner = std::mem::take(&mut t.value);
            finish(&mut inner);
            *value = inner;
        }
        _ => {}
    }
}

/// The file that set `field` (or its nearest ancestor) last, else `default`.
pub fn origin_of(origins: &Origins, field: &str, default: &Path) -> PathBuf {
    let mut f = field;
    loop {
        if let Some(p) = origins.get(f) {
            return p.clone();
        }
        match f.rfind('.') {
            Some(i) => f = &f[..i],
            None => return default.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    fn merged(parent: &str, child: &str) -> (Value, Origins) {
        let mut origins = Origins::new();
        let mut base = Value::Mapping(Default::default());
        merge(&mut base, yaml(parent), Path::new("parent.yaml"), "", &mut origins);
        merge(&mut base, yaml(child), Path::new("child.yaml"), "", &mut origins);
        finish(&mut base);
        (base, origins)
    }

    #[test]
    fn maps_merge_deeply_and_later_scalars_win() {
        let (v, origins) = merged(
            "image: {table: mbr, partitions: {boot: {size: 64MiB, label: BOOT}}}",
            "image: {partitions: {boot: {size: 128MiB}}}",
        );
        assert_eq!(
            v,
            yaml("image: {table: mbr, partitions: {boot: {size: 128MiB, label: BOOT}}}")
        );
        assert_eq!(origins["image.partitions.boot.size"], Path::new("child.yaml"));
        assert_eq!(origins["image.partitions.boot.label"], Path::new("parent.yaml"));
    }

    #[test]
    fn lists_append() {
        let (v, _) = merged("vars: {pkgs: [a, b]}", "vars: {pkgs: [c]}");
        assert_eq!(v, yaml("vars: {pkgs: [a, b, c]}"));
    }

    #[test]
    fn replace_tag_replaces_a_list() {
        let (v, _) = merged("vars: {pkgs: [a, b]}", "vars: {pkgs: !replace [c]}");
        assert_eq!(v, yaml("vars: {pkgs: [c]}"));
    }

    #[test]
    fn replace_tag_without_parent_is_plain() {
        let (v, _) = merged("{}", "vars: {pkgs: !replace [c]}");
        assert_eq!(v, yaml("vars: {pkgs: [c]}"));
    }

    #[test]
    fn null_removes_the_parents_value() {
        let (v, _) = merged(
            "image: {partitions: {boot: {size: 1MiB}, data: {size: 2MiB}}}",
            "image: {partitions: {data: ~}}",
        );
        assert_eq!(v, yaml("image: {partitions: {boot: {size: 1MiB}}}"));
    }

    #[test]
    fn partition_order_is_the_parents_then_new_ones() {
        let (v, _) = merged(
            "image: {partitions: {boot: {}, root: {}}}",
            "image: {partitions: {data: {}, boot: {label: B}}}",
        );
        let keys: Vec<_> = v["image"]["partitions"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, ["boot", "root", "data"]);
    }

    #[test]
    fn origin_falls_back_to_ancestor() {
        let (_, origins) = merged("image: {table: mbr}", "name: x");
        assert_eq!(
            origin_of(&origins, "image.table.nothing", Path::new("d")),
            Path::new("parent.yaml")
        );
        assert_eq!(origin_of(&origins, "zzz", Path::new("d")), Path::new("d"));
    }

    #[test]
    fn a_merged_list_item_names_the_file_it_came_from() {
        let (_, origins) = merged("steps: [{name: a, when: x}]", "steps: [{name: b}]");
        let of = |f: &str| origin_of(&origins, f, Path::new("d"));
        assert_eq!(of("steps[0].when"), Path::new("parent.yaml"));
        assert_eq!(of("steps[1].name"), Path::new("child.yaml"));
    }
}
