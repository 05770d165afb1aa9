//! Recipes: YAML → merged tree (`extends`) → templated → typed [`model::Recipe`] →
//! validated [`plan::Plan`]. Nothing here touches anything but the recipe files.

pub mod catalogue;
pub mod checker;
pub mod error;
pub mod ids;
pub mod limits;
pub mod load;
pub mod merge;
pub mod merge_list;
pub mod model;
pub mod model_cluster;
pub mod model_content;
pub mod model_firmware;
pub mod part_type;
pub mod plan;
pub mod plan_boot;
pub mod plan_cluster;
pub mod plan_content;
pub mod plan_firmware;
pub mod plan_npm;
pub mod plan_oci;
pub mod plan_pip;
pub mod plan_rootfs;
pub mod schema;
pub mod size;
pub mod template;
pub mod when;

pub use error::RecipeError;
pub use model::Recipe;
pub use plan::Plan;

use merge::Origins;
use serde_norway::Value;
use std::path::{Path, PathBuf};

/// A recipe after merging and templating, with its plan.
#[derive(Debug)]
pub struct Resolved {
    /// The fully resolved recipe: parents merged, templates rendered, derived IDs filled in.
    pub recipe: Recipe,
    pub plan: Plan,
    /// The rendered variables (for overlays and manifests).
    pub vars: serde_json::Map<String, serde_json::Value>,
}

/// Loads, merges, templates and checks the recipe at `path`; `sets` are `--set` pairs.
pub fn resolve(path: &Path, sets: &[(String, String)]) -> Result<Resolved, RecipeError> {
    resolve_merged(load::load(path)?, sets)
}

/// Every image the recipe at `path` makes, resolved: one, or one per entry of its
/// `images:`.
pub fn resolve_all(path: &Path, sets: &[(String, String)]) -> Result<Vec<Resolved>, RecipeError> {
    load::load_all(path)?
        .into_iter()
        .map(|m| resolve_merged(m, sets))
        .collect()
}

fn resolve_merged(merged: load::Merged, sets: &[(String, String)]) -> Result<Resolved, RecipeError> {
    let load::Merged {
        file,
        files,
        mut value,
        origins,
    } = merged;
    let env = template::environment();

    // 1. Variables: merged, overridden by --set, then rendered in order.
    let mut vars_map = match value.get("vars") {
        Some(Value::Mapping(m)) => m.clone(),
        _ => Default::default(),
    };
    template::apply_sets(&mut vars_map, sets)?;
    let mut builtins = builtin_context(&file);
    // The target's Debian architecture, for names that differ per architecture (a
    // service's download); empty when the recipe has no bootstrap.
    let arch = value
        .get("rootfs")
        .and_then(|r| r.get("architecture"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    builtins.insert("architecture".into(), serde_json::Value::String(arch.into()));
    template::render_vars(&env, &mut vars_map, &builtins, &origins, &file)?;
    let vars: serde_json::Map<String, serde_json::Value> = serde_json::to_value(&vars_map)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    set_key(&mut value, "vars", Value::Mapping(vars_map));

    // 2. The name (it seeds derived IDs), rendered with the variables.
    let mut ctx = builtins.clone();
    ctx.extend(vars.clone());
    ctx.insert("vars".into(), serde_json::Value::Object(vars.clone()));
    let name = match value.get("name").and_then(Value::as_str) {
        Some(n) => template::render_str(&env, n, &minijinja::Value::from_serialize(&ctx), &file, "name")?,
        None => file_stem(&file),
    };
    set_key(&mut value, "name", Value::String(name.clone()));

    // 3. Identifiers, from the variables-only rendering of the recipe.
    // Every string but the (already rendered) variables.
    let render_all = |env: &minijinja::Environment, v: &mut Value, ctx: &serde_json::Map<String, serde_json::Value>| {
        template::render_tree(
            env,
            v,
            &minijinja::Value::from_serialize(ctx),
            "",
            &origins,
            &file,
            Some("vars"),
        )
    };
    let ck = checker::Checker {
        origins: &origins,
        main_file: &file,
    };
    let mut pre = value.clone();
    // Names only defined in step 4 (`partitions`) render empty here; the fields IDs come
    // from cannot sensibly use them.
    let lenient = template::lenient_environment();
    render_all(&lenient, &mut pre, &ctx)?;
    conditions(&mut pre, &origins, &file)?;
    let pre_recipe = typed(&pre, &origins, &file)?;
    let ids = plan::derive_ids(&name, &pre_recipe, &ck)?;

    // 4. Everything else, with identifiers available to templates.
    ctx.insert(
        "recipe".into(),
        serde_json::json!({"name": name, "file": file.display().to_string()}),
    );
    ctx.insert("image".into(), serde_json::json!({"disk_id": ids.0.to_string()}));
    ctx.insert("partitions".into(), serde_json::to_value(&ids.1).unwrap_or_default());
    render_all(&env, &mut value, &ctx)?;
    conditions(&mut value, &origins, &file)?;
    let mut recipe = typed(&value, &origins, &file)?;
    let plan = plan::plan(name, &recipe, files, &ck, ids.clone())?;
    fill_derived(&mut recipe, &plan);
    Ok(Resolved { recipe, plan, vars })
}

/// Keeps or drops the recipe's `when:` parts (see [`when`]), now that they are rendered.
fn conditions(value: &mut Value, origins: &Origins, file: &Path) -> Result<(), RecipeError> {
    when::apply(value).map_err(|(field, message)| RecipeError::Field {
        file: merge::origin_of(origins, &field, file),
        field,
        message,
    })
}

fn builtin_context(file: &Path) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert(
        "imgbuild".into(),
        serde_json::json!({"version": env!("CARGO_PKG_VERSION")}),
    );
    m.insert(
        "recipe".into(),
        serde_json::json!({"name": file_stem(file), "file": file.display().to_string()}),
    );
    m
}

fn file_stem(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

fn set_key(value: &mut Value, key: &str, v: Value) {
    if let Value::Mapping(m) = value {
        m.insert(Value::String(key.into()), v);
    }
}

/// Converts the merged tree to the typed model. Each file was already checked on its own,
/// so a failure here comes from templating (e.g. a number field rendered from text).
fn typed(value: &Value, origins: &Origins, file: &Path) -> Result<Recipe, RecipeError> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let field = e.path().to_string();
        let text = e.into_inner().to_string();
        RecipeError::Field {
            file: merge::origin_of(origins, &field, file),
            field,
            message: error::suggest_in_message(&text),
        }
    })
}

/// Writes derived defaults (labels, IDs, a container's tag and command) into the resolved
/// recipe so `check` shows them.
fn fill_derived(recipe: &mut Recipe, plan: &Plan) {
    recipe.name = Some(plan.name.clone());
    if let (Some(oci), Some(output)) = (&plan.output.oci, recipe.output.as_mut()) {
        let spec = output.oci.get_or_insert_with(Default::default);
        spec.tag = Some(oci.tag.clone());
        spec.cmd = Some(merge_list::MergeList {
            items: oci.cmd.clone(),
            replace: false,
        });
    }
    if let Some(image) = recipe.image.as_mut() {
        image.disk_id = Some(plan.disk_id.to_string());
        for p in &plan.partitions {
            if let Some(Some(spec)) = image.partitions.as_mut().and_then(|m| m.get_mut(&p.name)) {
                spec.label = Some(p.label.clone());
                spec.uuid = Some(p.fs_uuid.clone());
                if plan.table == model::TableKind::Gpt {
                    spec.partuuid = Some(p.partuuid.clone());
                }
            }
        }
    }
}

/// All recipe files reachable from `path` (for manifests and cache keys).
pub fn files_of(resolved: &Resolved) -> &[PathBuf] {
    &resolved.plan.recipe_files
}
