//! minijinja templating of recipe strings. Variables come from `vars:` (later files and
//! `--set` win), may use earlier variables, and every string in the recipe may use them
//! together with the image's derived identifiers (`{{ partitions.root.partuuid }}`).
//! An undefined name is an error, never an empty string.

use super::error::{RecipeError, did_you_mean};
use super::merge::{Origins, join, origin_of};
use minijinja::{Environment, UndefinedBehavior};
use serde_norway::Value;
use std::path::Path;

/// A template engine configured for recipes.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // Booleans print as YAML and the shell spell them (`true`), not as Python does
    // (`True`, minijinja's default since 2.x): rendered values land in step environments
    // (`[ "$WIFI" = true ]`), YAML and configuration files.
    env.set_formatter(|out, state, value| {
        if value.kind() == minijinja::value::ValueKind::Bool {
            return write!(out, "{}", value.is_true()).map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

/// An engine where undefined names render empty (for the pass that derives IDs).
pub fn lenient_environment() -> Environment<'static> {
    let mut env = environment();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env
}

fn needs_render(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Renders one string; `field` and `file` name it in errors.
pub fn render_str(
    env: &Environment,
    text: &str,
    ctx: &minijinja::Value,
    file: &Path,
    field: &str,
) -> Result<String, RecipeError> {
    if !needs_render(text) {
        return Ok(text.to_string());
    }
    env.render_str(text, ctx).map_err(|e| RecipeError::Field {
        file: file.to_path_buf(),
        field: field.to_string(),
        message: template_message(&e, ctx, text),
    })
}

/// The part of `source` an error points at (`{{ nolabel }}`), for the message.
pub fn quoted_span(e: &minijinja::Error, source: &str) -> Option<String> {
    let span = source.get(e.range()?)?.trim();
    (!span.is_empty()).then(|| {
        format!(
            " in `{}`",
            crate::report::bounded::line(&span.chars().take(80).collect::<String>())
        )
    })
}

fn template_message(e: &minijinja::Error, ctx: &minijinja::Value, source: &str) -> String {
    let mut msg = format!("template error: {}", e.kind());
    if let Some(detail) = e.detail() {
        msg.push_str(&format!(": {detail}"));
    }
    msg.push_str(&quoted_span(e, source).unwrap_or_default());
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        let known: Vec<String> = ctx
            .try_iter()
            .map(|it| it.filter_map(|k| k.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        msg.push_str(&format!(
            "; defined names: {}; define it under `vars:` or pass `--set NAME=VALUE`",
            known.join(", ")
        ));
    }
    msg
}

/// Applies `--set` overrides to the merged `vars` map. Only declared variables can be
/// set, so a typo is caught instead of silently ignored.
pub fn apply_sets(vars: &mut serde_norway::Mapping, sets: &[(String, String)]) -> Result<(), RecipeError> {
    for (key, raw) in sets {
        let k = Value::String(key.clone());
        if !vars.contains_key(&k) {
            let names: Vec<&str> = vars.keys().filter_map(|k| k.as_str()).collect();
            let message = match did_you_mean(key, names.iter().copied()) {
                Some(best) => format!("the recipe has no variable `{key}`; did you mean `{best}`?"),
                None if names.is_empty() => {
                    format!("the recipe has no variable `{key}` (it declares no `vars:`)")
                }
                None => format!("the recipe has no variable `{key}` (it has: {})", names.join(", ")),
            };
            return Err(RecipeError::Set {
                key: key.clone(),
                message,
            });
        }
        // `--set n=3` gives a number and `--set x=true` a bool, as YAML would.
        let value = match serde_norway::from_str::<Value>(raw) {
            Ok(v @ (Value::Bool(_) | Value::Number(_) | Value::String(_))) => v,
            _ => Value::String(raw.clone()),
        };
        vars.insert(k, value);
    }
    Ok(())
}

/// Renders the variables in order, each seeing the ones before it.
pub fn render_vars(
    env: &Environment,
    vars: &mut serde_norway::Mapping,
    base: &serde_json::Map<String, serde_json::Value>,
    origins: &Origins,
    default_file: &Path,
) -> Result<(), RecipeError> {
    let mut ctx = base.clone();
    let keys: Vec<Value> = vars.keys().cloned().collect();
    for k in keys {
        let name = k.as_str().unwrap_or_default().to_string();
        let field = join("vars", &name);
        if let Some(v) = vars.get_mut(&k) {
            let c = minijinja::Value::from_serialize(&ctx);
            render_tree(env, v, &c, &field, origins, default_file, None)?;
            ctx.insert(name, serde_json::to_value(&*v).unwrap_or_default());
        }
    }
    Ok(())
}

/// Renders every string in `value` (keys excepted), skipping the subtree at `skip`.
pub fn render_tree(
    env: &Environment,
    value: &mut Value,
    ctx: &minijinja::Value,
    field: &str,
    origins: &Origins,
    default_file: &Path,
    skip: Option<&str>,
) -> Result<(), RecipeError> {
    if skip == Some(field) {
        return Ok(());
    }
    match value {
        Value::String(s) => {
            let file = origin_of(origins, field, default_file);
            *s = render_str(env, s, ctx, &file, field)?;
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().unwrap_or_default();
                render_tree(env, v, ctx, &join(field, key), origins, default_file, skip)?;
            }
        }
        Value::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                render_tree(env, v, ctx, &format!("{field}[{i}]"), origins, default_file, skip)?;
            }
        }
        Value::Tagged(t) => render_tree(env, &mut t.value, ctx, field, origins, default_file, skip)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn booleans_render_as_yaml_and_the_shell_spell_them() {
        let env = super::environment();
        let ctx = minijinja::context! { wifi => true, open => false, n => 3 };
        let out = env
            .render_str("{{ wifi }} {{ open }} {{ n }} {{ wifi and not open }}", ctx)
            .unwrap();
        assert_eq!(out, "true false 3 true");
    }

    use super::*;

    fn map(s: &str) -> serde_norway::Mapping {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn vars_see_earlier_vars() {
        let env = environment();
        let mut vars = map("{host: pi, fqdn: '{{ host }}.example.org'}");
        render_vars(
            &env,
            &mut vars,
            &Default::default(),
            &Origins::new(),
            Path::new("r.yaml"),
        )
        .unwrap();
        assert_eq!(vars["fqdn"], Value::String("pi.example.org".into()));
    }

    #[test]
    fn set_overrides_and_types_values() {
        let mut vars = map("{host: pi, count: 1}");
        apply_sets(
            &mut vars,
            &[("count".into(), "3".into()), ("host".into(), "x y".into())],
        )
        .unwrap();
        assert_eq!(vars["count"], Value::Number(3.into()));
        assert_eq!(vars["host"], Value::String("x y".into()));
    }

    #[test]
    fn set_of_unknown_var_suggests() {
        let mut vars = map("{hostname: pi}");
        let err = apply_sets(&mut vars, &[("hostnme".into(), "x".into())]).unwrap_err();
        assert!(err.to_string().contains("did you mean `hostname`?"), "{err}");
    }

    #[test]
    fn undefined_name_is_an_error_naming_the_field() {
        let env = environment();
        let mut v: Value = serde_norway::from_str("image: {size: '{{ nope }}'}").unwrap();
        let ctx = minijinja::Value::from_serialize(serde_json::json!({"host": "x"}));
        let err = render_tree(&env, &mut v, &ctx, "", &Origins::new(), Path::new("r.yaml"), None).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("r.yaml: image.size: template error"), "{text}");
        assert!(text.contains("host"), "{text}");
    }
}
