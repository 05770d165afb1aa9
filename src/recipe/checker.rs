//! The recipe field checker every `plan_*.rs` uses: it names the file a field came from
//! (a layer or the recipe itself) and resolves paths against it. A leaf of `recipe/`, so
//! `plan.rs` and the `plan_*.rs` it calls do not import one another.

use super::error::RecipeError;
use super::merge::{Origins, origin_of};
use super::size::{SECTOR, parse_bytes};
use std::path::{Path, PathBuf};

/// Context for checking: which file each field came from.
pub struct Checker<'a> {
    pub origins: &'a Origins,
    pub main_file: &'a Path,
}

impl Checker<'_> {
    pub fn err(&self, field: &str, message: impl Into<String>) -> RecipeError {
        RecipeError::Field {
            file: origin_of(self.origins, field, self.main_file),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Resolves a path written in the recipe relative to the file that wrote it.
    pub fn path(&self, field: &str, text: &str) -> PathBuf {
        let file = origin_of(self.origins, field, self.main_file);
        let dir = file.parent().unwrap_or(Path::new("."));
        dir.join(text)
    }

    pub(super) fn bytes(&self, field: &str, text: &str) -> Result<u64, RecipeError> {
        parse_bytes(text).map_err(|m| self.err(field, m))
    }

    pub(super) fn alignment(&self, field: &str, text: &str) -> Result<u64, RecipeError> {
        let a = self.bytes(field, text)?;
        if a == 0 || a % SECTOR != 0 {
            return Err(self.err(
                field,
                format!("alignment `{text}` must be a non-zero multiple of 512 bytes, e.g. `1MiB`"),
            ));
        }
        Ok(a)
    }
}
