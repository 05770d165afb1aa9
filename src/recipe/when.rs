//! Conditional parts of a recipe, so one layer can offer a service that a variable
//! switches on or off (`gitea: false`):
//!
//! - a mapping with a `when:` key (a step, a `files:` entry, a whole section) is kept
//!   without that key when it renders true, and dropped from its parent when false;
//! - in a list, `{when: COND, then: [a, b]}` stands for its `then` items when true and
//!   for nothing when false (lists of plain names: `packages`, `overlays`).
//!
//! Conditions are evaluated after templating, so `when: "{{ gitea }}"` follows the
//! variable. The value must be a boolean (`true`/`false`, or a template rendering to
//! one): a typo must not silently switch a service off.

use serde_norway::{Mapping, Value};

const WHEN: &str = "when";
const THEN: &str = "then";

/// Applies every condition in `value` (the `vars:` section is left alone).
/// Errors name the dotted field of the bad condition.
pub fn apply(value: &mut Value) -> Result<(), (String, String)> {
    walk(value, "", true)
}

/// Keeps both branches of every condition, for checking a file's fields before its
/// variables are known: `when` keys go, `then` items are spliced in.
pub fn flatten(value: &mut Value) {
    let _ = walk(value, "", false);
}

/// True when the file uses a condition anywhere (outside `vars:`).
pub fn any(value: &Value) -> bool {
    match value {
        Value::Mapping(m) => m
            .iter()
            .any(|(k, v)| k.as_str() == Some(WHEN) || (k.as_str() != Some("vars") && any(v))),
        Value::Sequence(s) => s.iter().any(any),
        Value::Tagged(t) => any(&t.value),
        _ => false,
    }
}

fn truth(v: &Value, field: &str) -> Result<bool, (String, String)> {
    let text = match v {
        Value::Bool(b) => return Ok(*b),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        other => serde_norway::to_string(other).unwrap_or_default().trim().to_string(),
    };
    match text.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        "" => Err((
            format!("{field}.{WHEN}"),
            "renders empty (a variable not defined in `vars:`?); write `when: true`, `when: false` or a variable holding one".into(),
        )),
        _ => Err((
            format!("{field}.{WHEN}"),
            format!("`{text}` is not true or false; write `when: true`, `when: false` or a variable holding one"),
        )),
    }
}

fn is_splice(m: &Mapping) -> bool {
    m.len() == 2 && m.contains_key(WHEN) && m.contains_key(THEN)
}

/// `evaluate` false: keep every branch (see [`flatten`]).
fn walk(value: &mut Value, field: &str, evaluate: bool) -> Result<(), (String, String)> {
    match value {
        Value::Mapping(map) => {
            let keys: Vec<Value> = map.keys().cloned().collect();
            for k in keys {
                let name = k.as_str().unwrap_or_default().to_string();
                if name == "vars" && field.is_empty() {
                    continue;
                }
                let child = super::merge::join(field, &name);
                let Some(v) = map.get_mut(&k) else { continue };
                if keep(v, &child, evaluate)? {
                    walk(v, &child, evaluate)?;
                } else {
                    map.remove(&k);
                }
            }
        }
        Value::Sequence(seq) => {
            let mut out = Vec::with_capacity(seq.len());
            for (i, mut item) in std::mem::take(seq).into_iter().enumerate() {
                let child = format!("{field}[{i}]");
                if let Value::Mapping(m) = &item
                    && is_splice(m)
                {
                    let on = !evaluate || truth(&m[WHEN], &child)?;
                    let Some(Value::Sequence(items)) = m.get(THEN).cloned() else {
                        return Err((format!("{child}.{THEN}"), "must be a list".into()));
                    };
                    if on {
                        for mut it in items {
                            walk(&mut it, &child, evaluate)?;
                            out.push(it);
                        }
                    }
                    continue;
                }
                if keep(&mut item, &child, evaluate)? {
                    walk(&mut item, &child, evaluate)?;
                    out.push(item);
                }
            }
            *seq = out;
        }
        Value::Tagged(t) => walk(&mut t.value, field, evaluate)?,
        _ => {}
    }
    Ok(())
}

/// Whether a mapping with a `when` survives; removes the key either way.
fn keep(v: &mut Value, field: &str, evaluate: bool) -> Result<bool, (String, String)> {
    let Value::Mapping(m) = v else { return Ok(true) };
    let Some(cond) = m.remove(WHEN) else { return Ok(true) };
    Ok(!evaluate || truth(&cond, field)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn drops_false_parts_and_splices_true_lists() {
        let mut v = yaml(
            "vars: {x: {when: maybe}}\nrootfs:\n  packages: [a, {when: 'true', then: [b, c]}, {when: false, then: [d]}]\nsteps:\n  - {name: s1, when: 'false', run: x}\n  - {name: s2, when: true, run: y}\ncontent:\n  files:\n    gone: {when: 'False', path: x}\n    kept: {path: y}\n",
        );
        apply(&mut v).unwrap();
        let want = yaml(
            "vars: {x: {when: maybe}}\nrootfs:\n  packages: [a, b, c]\nsteps:\n  - {name: s2, run: y}\ncontent:\n  files:\n    kept: {path: y}\n",
        );
        assert_eq!(v, want);
    }

    #[test]
    fn flatten_keeps_every_branch() {
        let mut v = yaml("packages: [a, {when: '{{ x }}', then: [b]}]\nsteps: [{name: s, when: '{{ y }}'}]\n");
        assert!(any(&v));
        flatten(&mut v);
        assert_eq!(v, yaml("packages: [a, b]\nsteps: [{name: s}]\n"));
        assert!(!any(&v));
    }

    #[test]
    fn a_condition_that_is_not_a_boolean_is_an_error_naming_the_field() {
        let mut v = yaml("steps: [{name: s, when: 'yes please'}]\n");
        let (field, msg) = apply(&mut v).unwrap_err();
        assert_eq!(field, "steps[0].when");
        assert!(msg.contains("`yes please` is not true or false"), "{msg}");
        let mut v = yaml("packages: [{when: '', then: [a]}]\n");
        let (field, msg) = apply(&mut v).unwrap_err();
        assert_eq!(field, "packages[0].when");
        assert!(msg.contains("renders empty"), "{msg}");
    }
}
