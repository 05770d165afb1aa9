//! Reading recipe files: each file is parsed on its own first (so unknown keys and wrong
//! types are reported with the file, line and column where they are written), then its
//! `extends` parents are loaded depth-first and everything is merged in order.

use super::error::{RecipeError, suggest_in_message};
use super::merge::{self, Origins};
use super::model::Recipe;
use serde_norway::Value;
use std::path::{Path, PathBuf};

/// A recipe with all its parents merged, not yet templated or checked.
#[derive(Debug)]
pub struct Merged {
    /// The file named on the command line.
    pub file: PathBuf,
    /// Every file read, in merge order (parents first).
    pub files: Vec<PathBuf>,
    /// The merged tree.
    pub value: Value,
    /// Which file set each field.
    pub origins: Origins,
}

/// Loads `path` and everything it extends: one merged tree, or one per entry of its
/// `images:` (see [`load_all`]), which this refuses.
pub fn load(path: &Path) -> Result<Merged, RecipeError> {
    let mut all = load_all(path)?;
    if all.len() > 1 {
        return Err(RecipeError::Field {
            file: all[0].file.clone(),
            field: "images".into(),
            message: "this recipe makes several images; build it with `imgbuild RECIPE`".into(),
        });
    }
    Ok(all.remove(0))
}

/// Loads `path` and everything it extends. A recipe with `images:` gives one merged tree
/// per image: the recipe (without `images`) with the image's entry merged over it — the
/// entry's own `extends` first, in order, then the entry — named `<name>-<image>`.
pub fn load_all(path: &Path) -> Result<Vec<Merged>, RecipeError> {
    let file = absolute(path);
    let mut files = Vec::new();
    let mut origins = Origins::new();
    let mut value = Value::Mapping(Default::default());
    let mut stack = Vec::new();
    load_into(&file, &mut stack, &mut files, &mut value, &mut origins)?;
    let own_name = read_own_name(&file)?;
    let images = match &mut value {
        Value::Mapping(map) => map.remove("images"),
        _ => None,
    };
    let finish = |mut value: Value, name: Option<String>, files, origins| {
        merge::finish(&mut value);
        if let Value::Mapping(map) = &mut value {
            map.remove("extends");
            // A recipe's name belongs to the file that was asked for, never to a parent.
            map.remove("name");
            if let Some(name) = name {
                map.insert(Value::String("name".into()), Value::String(name));
            }
        }
        Merged {
            file: file.clone(),
            files,
            value,
            origins,
        }
    };
    let Some(Value::Mapping(images)) = images else {
        return Ok(vec![finish(value, own_name, files, origins)]);
    };
    let base_name = own_name.unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into())
    });
    let mut out = Vec::new();
    for (key, entry) in images {
        let image = match &key {
            Value::String(s) => s.clone(),
            other => serde_norway::to_string(other).unwrap_or_default().trim().to_string(),
        };
        let field = format!("images.{image}");
        let defined_in = merge::origin_of(&origins, &field, &file);
        if entry.is_null() {
            continue;
        }
        let Value::Mapping(mut entry) = entry else {
            return Err(RecipeError::Field {
                file: defined_in,
                field,
                message: "an image is a recipe fragment (a mapping); write `{}` for the recipe as it is".into(),
            });
        };
        for own in ["name", "images", "content"] {
            if entry.contains_key(own) {
                return Err(RecipeError::Field {
                    file: defined_in,
                    field: format!("{field}.{own}"),
                    message: match own {
                        "name" => "an image's name is `<recipe>-<image>`; rename the entry instead".into(),
                        "images" => "images cannot have images of their own".into(),
                        _ => "content is fetched once for all the images: move it to the recipe itself".into(),
                    },
                });
            }
        }
        let (mut acc, mut iorigins, mut ifiles) = (value.clone(), origins.clone(), files.clone());
        let dir = defined_in.parent().unwrap_or(Path::new(".")).to_path_buf();
        let parents: Vec<String> = match entry.remove("extends") {
            Some(v) => serde_norway::from_value::<super::model::OneOrMany>(v)
                .map(|e| e.to_vec())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        for parent in parents {
            let parent_path = dir.join(&parent);
            if !parent_path.is_file() {
                return Err(RecipeError::Field {
                    file: defined_in,
                    field: format!("{field}.extends"),
                    message: format!(
                        "parent recipe `{parent}` not found (looked for {}); paths are relative to this file",
                        parent_path.display()
                    ),
                });
            }
            let mut istack = vec![file.clone()];
            load_into(
                &absolute(&parent_path),
                &mut istack,
                &mut ifiles,
                &mut acc,
                &mut iorigins,
            )?;
        }
        let mut entry = Value::Mapping(entry);
        anchor_list_paths(&mut entry, &dir);
        merge::merge(&mut acc, entry, &defined_in, "", &mut iorigins);
        out.push(finish(acc, Some(format!("{base_name}-{image}")), ifiles, iorigins));
    }
    if out.is_empty() {
        return Err(RecipeError::Field {
            file: file.clone(),
            field: "images".into(),
            message: "lists no image; name at least one, or remove `images`".into(),
        });
    }
    Ok(out)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Reads a recipe file, refusing one too large or too deeply nested to be a recipe
/// before the parser sees it (see [`super::limits`]).
fn read_text(path: &Path) -> Result<String, RecipeError> {
    use std::io::Read;
    let read_error = |source| RecipeError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    // One byte past the limit is enough to know it is exceeded (a pipe has no length).
    file.take(super::limits::MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    super::limits::check_size(path, bytes.len() as u64)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        ))
    })?;
    super::limits::check_depth(path, &text)?;
    Ok(text)
}

/// Parses one file into the typed model, with positions on errors.
pub fn parse_file(path: &Path, text: &str) -> Result<(Recipe, Value), RecipeError> {
    let parse_error = |e: serde_norway::Error| {
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
        RecipeError::Parse {
            file: path.to_path_buf(),
            line,
            column,
            message: suggest_in_message(&strip_location(&e.to_string())),
        }
    };
    // An empty file is an empty recipe.
    if text.trim().is_empty() {
        return Ok((Recipe::default(), Value::Mapping(Default::default())));
    }
    let value: Value = serde_norway::from_str(text).map_err(parse_error)?;
    let recipe: Recipe = match serde_norway::from_str(text) {
        Ok(r) => r,
        // A templated value (`compression: "{{ compression }}"`) has its type only once
        // rendered; the merged, rendered recipe is checked again as a whole.
        Err(e) if e.to_string().contains("{{") => lenient_parse(&value),
        // `when:` / `then:` are not fields of the model: check the file with every
        // branch kept (positions are lost, the field path names the place instead).
        Err(_) if super::when::any(&value) => {
            let mut flat = value.clone();
            super::when::flatten(&mut flat);
            match serde_path_to_error::deserialize::<_, Recipe>(flat) {
                Ok(r) => r,
                Err(e) if e.inner().to_string().contains("{{") => lenient_parse(&value),
                Err(e) => {
                    return Err(RecipeError::Field {
                        file: path.to_path_buf(),
                        field: e.path().to_string(),
                        message: suggest_in_message(&e.into_inner().to_string()),
                    });
                }
            }
        }
        Err(e) => return Err(parse_error(e)),
    };
    Ok((recipe, value))
}

/// The parts of a file with a templated value that matter before templating: `extends`.
fn lenient_parse(value: &Value) -> Recipe {
    let extends = value
        .get("extends")
        .and_then(|v| serde_norway::from_value(v.clone()).ok());
    Recipe {
        extends,
        ..Recipe::default()
    }
}

/// serde_norway appends " at line L column C"; we print the position in front instead.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn read_own_name(file: &Path) -> Result<Option<String>, RecipeError> {
    let (recipe, _) = parse_file(file, &read_text(file)?)?;
    Ok(recipe.name)
}

fn load_into(
    file: &Path,
    stack: &mut Vec<PathBuf>,
    files: &mut Vec<PathBuf>,
    acc: &mut Value,
    origins: &mut Origins,
) -> Result<(), RecipeError> {
    if let Some(i) = stack.iter().position(|p| same_file(p, file)) {
        let mut chain = stack[i..].to_vec();
        chain.push(file.to_path_buf());
        return Err(RecipeError::Cycle { chain });
    }
    // A parent reached twice (a diamond) is merged once, so its lists do not repeat.
    if files.iter().any(|p| same_file(p, file)) {
        return Ok(());
    }
    let text = read_text(file)?;
    let (recipe, value) = parse_file(file, &text)?;
    stack.push(file.to_path_buf());
    let dir = file.parent().unwrap_or(Path::new("."));
    for parent in recipe.extends.iter().flat_map(|e| e.to_vec()) {
        let parent_path = dir.join(&parent);
        if !parent_path.is_file() {
            return Err(RecipeError::Field {
                file: file.to_path_buf(),
                field: "extends".into(),
                message: format!(
                    "parent recipe `{parent}` not found (looked for {}); paths are relative to this file",
                    parent_path.display()
                ),
            });
        }
        load_into(&absolute(&parent_path), stack, files, acc, origins)?;
    }
    stack.pop();
    let mut value = value;
    anchor_list_paths(&mut value, dir);
    merge::merge(acc, value, file, "", origins);
    files.push(file.to_path_buf());
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Paths held in lists (`overlays`, `rootfs.preseed`, each step's `script`) are made
/// absolute against the file that wrote them before files merge: list items have no
/// field path of their own to remember their file by, and `when:` may drop items and
/// shift the rest. (Paths in map fields keep their origin through the merge.)
fn anchor_list_paths(value: &mut Value, dir: &Path) {
    fn anchor(v: &mut Value, dir: &Path) {
        match v {
            Value::String(s) if !s.starts_with('/') && !s.starts_with("{{") && !s.is_empty() => {
                *s = lexical(&dir.join(&*s)).to_string_lossy().into_owned();
            }
            // `{when: …, then: [paths]}` and `!replace [paths]`.
            Value::Mapping(m) => {
                if let Some(Value::Sequence(items)) = m.get_mut("then") {
                    items.iter_mut().for_each(|i| anchor(i, dir));
                }
            }
            Value::Sequence(items) => items.iter_mut().for_each(|i| anchor(i, dir)),
            Value::Tagged(t) => anchor(&mut t.value, dir),
            _ => {}
        }
    }
    let Value::Mapping(top) = value else { return };
    if let Some(v) = top.get_mut("overlays") {
        anchor(v, dir);
    }
    if let Some(v) = top.get_mut("rootfs").and_then(|r| r.get_mut("preseed")) {
        anchor(v, dir);
    }
    if let Some(steps) = top.get_mut("steps") {
        let steps = match steps {
            Value::Tagged(t) => &mut t.value,
            other => other,
        };
        let mut each = |step: &mut Value| {
            if let Some(script) = step.get_mut("script") {
                anchor(script, dir);
            }
        };
        if let Value::Sequence(items) = steps {
            for item in items {
                match item.get_mut("then") {
                    Some(Value::Sequence(inner)) => inner.iter_mut().for_each(&mut each),
                    _ => each(item),
                }
            }
        }
    }
}

/// `a/b/../c` → `a/c` without touching the file system (so error messages and the
/// resolved recipe show the path a person would write).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
