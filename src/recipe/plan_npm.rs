//! A `files:` directory filled by an npm package installed as an application
//! (`/opt/etherpad/src: {npm: ep_etherpad-lite@1.8.14}`).

use super::checker::Checker;
use super::error::RecipeError;
use serde::Serialize;

/// The npm registry packages come from (a `content.fetch_from` entry may redirect it).
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NpmPlan {
    /// The package name, scoped or not (`ep_etherpad-lite`, `@scope/name`).
    pub name: String,
    /// An exact version or a dist-tag (`1.8.14`, `latest`); the lock pins the version.
    pub version: String,
    pub registry: String,
    /// The directory in the root file system (no leading `/`).
    pub target: String,
}

/// Splits `name@version` (the name may be scoped: `@scope/name@1.0.0`), or says what
/// is wrong in words fit for the recipe error.
pub fn parse_spec(spec: &str) -> Result<(String, String), String> {
    let hint = "give `NAME@VERSION`, e.g. `ep_etherpad-lite@1.8.14`";
    let at = spec.get(1..).and_then(|rest| rest.find('@')).map(|i| i + 1);
    let Some(at) = at else {
        return Err(format!("`{spec}` names no version; {hint}"));
    };
    let (name, version) = (&spec[..at], &spec[at + 1..]);
    let name_ok = {
        let bare = name.strip_prefix('@').map_or(Some(name), |n| {
            n.split_once('/')
                .filter(|(s, p)| !s.is_empty() && !p.is_empty())
                .map(|(_, p)| p)
        });
        let chars = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.~".contains(c))
        };
        bare.is_some_and(|b| !b.is_empty() && !b.starts_with('.') && chars(b))
            && name.split('/').count() <= 2
            && name.strip_prefix('@').is_none_or(|n| chars(&n.replace('/', "")))
    };
    if !name_ok {
        return Err(format!("`{name}` is not an npm package name; {hint}"));
    }
    let version_ok = !version.is_empty() && version.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    if !version_ok {
        return Err(format!(
            "`{version}` is not a version or dist-tag (ranges are not pinned); {hint}"
        ));
    }
    Ok((name.to_string(), version.to_string()))
}

/// Checks the `npm` of the `files:` entry `field` (`target` is its normalized path).
pub fn plan(spec: &str, field: &str, target: String, ck: &Checker) -> Result<NpmPlan, RecipeError> {
    let (name, version) = parse_spec(spec).map_err(|m| ck.err(&format!("{field}.npm"), m))?;
    Ok(NpmPlan {
        name,
        version,
        registry: DEFAULT_REGISTRY.into(),
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_split_at_the_version() {
        assert_eq!(
            parse_spec("ep_etherpad-lite@1.8.14"),
            Ok(("ep_etherpad-lite".into(), "1.8.14".into()))
        );
        assert_eq!(
            parse_spec("@types/node@latest"),
            Ok(("@types/node".into(), "latest".into()))
        );
    }

    #[test]
    fn bad_specs_say_why() {
        assert!(parse_spec("ep_etherpad-lite").unwrap_err().contains("names no version"));
        assert!(parse_spec("../x@1").unwrap_err().contains("not an npm package name"));
        assert!(parse_spec("Foo@1").unwrap_err().contains("not an npm package name"));
        assert!(parse_spec("@scope@1").unwrap_err().contains("not an npm package name"));
        assert!(parse_spec("x@^1.2").unwrap_err().contains("ranges are not pinned"));
    }
}
