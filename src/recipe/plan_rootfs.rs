//! The checked plan of the root file system stages: the Debian bootstrap, the steps run
//! in the target, the overlays and per-path modes and owners.

use super::checker::Checker;
use super::error::RecipeError;
use super::model::{Recipe, RootfsSpec};
use serde::Serialize;
use std::path::PathBuf;

/// Debian architectures mmdebstrap can bootstrap.
pub const ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "armel", "armhf", "i386", "mips64el", "ppc64el", "riscv64", "s390x", "loong64",
];
/// mmdebstrap's variants.
pub const VARIANTS: &[&str] = &[
    "extract",
    "custom",
    "essential",
    "apt",
    "required",
    "minbase",
    "buildd",
    "important",
    "debootstrap",
    "standard",
];
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// How an extra apt source is authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPlan {
    /// The archive keyring Debian already trusts.
    DebianKeyring,
    File(PathBuf),
    Url {
        url: String,
        fingerprint: String,
    },
}

/// An extra apt source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourcePlan {
    pub name: String,
    pub uris: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub key: KeyPlan,
}

/// A root file system bootstrapped from a Debian archive with mmdebstrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootstrapPlan {
    pub suite: String,
    pub architecture: String,
    pub variant: String,
    pub mirror: String,
    pub components: Vec<String>,
    pub sources: Vec<SourcePlan>,
    pub packages: Vec<String>,
    /// Not serialized: the bootstrap's cache key takes the preseed trees' digest, and
    /// where the checkout happens to be must not change it.
    #[serde(skip_serializing)]
    pub preseed: Vec<PathBuf>,
    pub initramfs_modules: Vec<String>,
}

/// What a step runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepCommand {
    Run(String),
    Script(PathBuf),
}

/// One step in the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepPlan {
    pub name: String,
    pub command: StepCommand,
    pub env: Vec<(String, String)>,
    /// Host environment variables passed in (values never stored).
    pub secrets: Vec<Secret>,
}

/// A secret a step receives from the build host's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secret {
    pub name: String,
    /// Written `NAME?` in the recipe: the step runs without it when it is unset.
    pub optional: bool,
}

/// Mode and owner set on a path after the overlays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilePlan {
    pub path: String,
    pub mode: Option<u32>,
    pub owner: Option<(u64, u64)>,
}

fn is_simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c))
}

/// An archive's URI as one word of a `deb` line: http(s) or file, nothing apt would
/// split or read as options.
fn is_archive_uri(u: &str) -> bool {
    let scheme_ok = ["http://", "https://", "file://"].iter().any(|p| u.starts_with(p));
    scheme_ok
        && !u
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '[' || c == ']')
}

/// A package as apt takes it: `name`, `name=version` or `name/suite`.
fn is_package(s: &str) -> bool {
    let first = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.=/:~_".contains(c))
}

pub(crate) fn is_env_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks the bootstrap part of `rootfs` (when it names a suite).
pub fn bootstrap(r: &RootfsSpec, ck: &Checker) -> Result<BootstrapPlan, RecipeError> {
    let suite = r.suite.clone().unwrap_or_default();
    if !is_simple_name(&suite) {
        return Err(ck.err(
            "rootfs.suite",
            format!("`{suite}` is not a suite name such as `bookworm` or `trixie`"),
        ));
    }
    let architecture = r.architecture.clone().ok_or_else(|| {
        ck.err(
            "rootfs.architecture",
            format!("missing; one of {}", ARCHITECTURES.join(", ")),
        )
    })?;
    if !ARCHITECTURES.contains(&architecture.as_str()) {
        let hint = super::error::did_you_mean(&architecture, ARCHITECTURES.iter().copied())
            .map(|b| format!("did you mean `{b}`? "))
            .unwrap_or_default();
        return Err(ck.err(
            "rootfs.architecture",
            format!(
                "unknown architecture `{architecture}`; {hint}use one of {}",
                ARCHITECTURES.join(", ")
            ),
        ));
    }
    let variant = r.variant.clone().unwrap_or_else(|| "minbase".into());
    if !VARIANTS.contains(&variant.as_str()) {
        return Err(ck.err(
            "rootfs.variant",
            format!("unknown variant `{variant}`; use one of {}", VARIANTS.join(", ")),
        ));
    }
    let mirror = r.mirror.clone().unwrap_or_else(|| DEFAULT_MIRROR.into());
    if !is_archive_uri(&mirror) {
        return Err(ck.err(
            "rootfs.mirror",
            format!("`{mirror}` is not an http://, https:// or file:// URL"),
        ));
    }
    let components = r
        .components
        .as_ref()
        .map(|c| c.items.clone())
        .unwrap_or_else(|| vec!["main".into()]);
    if let Some(c) = components.iter().find(|c| !is_simple_name(c)) {
        return Err(ck.err(
            "rootfs.components",
            format!("`{c}` is not a component name such as `main` or `non-free-firmware`"),
        ));
    }
    let mut packages: Vec<String> = Vec::new();
    for p in r.packages.iter().flat_map(|l| l.items.iter()) {
        if !is_package(p) {
            return Err(ck.err(
                "rootfs.packages",
                format!("`{p}` is not a package name (write `name`, `name=version` or `name/suite`)"),
            ));
        }
        if !packages.contains(p) {
            packages.push(p.clone());
        }
    }
    let mut sources = Vec::new();
    for (name, s) in r.sources.iter().flatten() {
        let Some(s) = s else { continue };
        let f = |k: &str| format!("rootfs.sources.{name}.{k}");
        let key = match (&s.key, &s.key_url, &s.fingerprint, s.debian_keyring.unwrap_or(false)) {
            (Some(k), None, None, false) => KeyPlan::File(ck.path(&f("key"), k)),
            (None, Some(u), Some(fp), false) => KeyPlan::Url { url: u.clone(), fingerprint: fp.replace(' ', "").to_uppercase() },
            (None, Some(_), None, false) => return Err(ck.err(&f("fingerprint"), "missing; a key fetched by URL must be pinned by its fingerprint")),
            (None, None, _, true) => KeyPlan::DebianKeyring,
            (None, None, _, false) => return Err(ck.err(&format!("rootfs.sources.{name}"), "missing its signing key; give `key: FILE`, `key_url` + `fingerprint`, or `debian_keyring: true` for Debian's own suites")),
            _ => return Err(ck.err(&format!("rootfs.sources.{name}"), "give exactly one of `key`, `key_url` (+ `fingerprint`) or `debian_keyring: true`")),
        };
        // Each value becomes a word of a `deb` line mmdebstrap and apt read: one that
        // held a space or `[` could add options (`[trusted=yes]`) or suites.
        if !is_archive_uri(&s.uris) {
            return Err(ck.err(
                &f("uris"),
                format!("`{}` is not an http://, https:// or file:// URL", s.uris),
            ));
        }
        if let Some(bad) = s.suites.to_vec().iter().find(|x| !is_simple_name(x)) {
            return Err(ck.err(
                &f("suites"),
                format!("`{bad}` is not a suite name such as `trixie-backports`"),
            ));
        }
        if let Some(bad) = s.components.iter().flatten().find(|x| !is_simple_name(x)) {
            return Err(ck.err(
                &f("components"),
                format!("`{bad}` is not a component name such as `main`"),
            ));
        }
        if let KeyPlan::Url { url, fingerprint } = &key {
            super::plan_content::check_url(url, &f("key_url"), ck)?;
            if fingerprint.len() != 40 || !fingerprint.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ck.err(
                    &f("fingerprint"),
                    format!("`{fingerprint}` is not a 40-digit OpenPGP fingerprint"),
                ));
            }
        }
        sources.push(SourcePlan {
            name: name.clone(),
            uris: s.uris.clone(),
            suites: s.suites.to_vec(),
            components: s.components.clone().unwrap_or_else(|| vec!["main".into()]),
            key,
        });
    }
    let preseed = r
        .preseed
        .iter()
        .flat_map(|l| l.items.iter())
        .map(|p| ck.path("rootfs.preseed", p))
        .collect();
    let initramfs_modules: Vec<String> = r.initramfs_modules.iter().flat_map(|l| l.items.clone()).collect();
    if let Some(m) = initramfs_modules
        .iter()
        .find(|m| !m.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)))
    {
        return Err(ck.err("rootfs.initramfs_modules", format!("`{m}` is not a kernel module name")));
    }
    Ok(BootstrapPlan {
        suite,
        architecture,
        variant,
        mirror,
        components,
        sources,
        packages,
        preseed,
        initramfs_modules,
    })
}

/// Checks `steps`.
pub fn steps(recipe: &Recipe, ck: &Checker) -> Result<Vec<StepPlan>, RecipeError> {
    let mut out: Vec<StepPlan> = Vec::new();
    for (i, s) in recipe.steps.iter().flat_map(|l| l.items.iter()).enumerate() {
        let field = format!("steps[{i}]");
        if s.name.trim().is_empty() {
            return Err(ck.err(&field, "a step needs a `name`"));
        }
        if out.iter().any(|o| o.name == s.name) {
            return Err(ck.err(
                &format!("{field}.name"),
                format!(
                    "two steps are named `{}`; names identify steps in logs and the cache",
                    s.name
                ),
            ));
        }
        let command = match (&s.run, &s.script) {
            (Some(r), None) => StepCommand::Run(r.clone()),
            (None, Some(p)) => StepCommand::Script(ck.path(&format!("{field}.script"), p)),
            _ => {
                return Err(ck.err(
                    &field,
                    format!(
                        "step `{}` needs exactly one of `run: COMMAND` or `script: FILE`",
                        s.name
                    ),
                ));
            }
        };
        let env: Vec<(String, String)> = s.env.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
        let secrets: Vec<Secret> = s
            .secrets
            .iter()
            .flatten()
            .map(|n| match n.strip_suffix('?') {
                Some(name) => Secret {
                    name: name.to_string(),
                    optional: true,
                },
                None => Secret {
                    name: n.clone(),
                    optional: false,
                },
            })
            .collect();
        if let Some(bad) = env
            .iter()
            .map(|(k, _)| k)
            .chain(secrets.iter().map(|s| &s.name))
            .find(|k| !is_env_name(k))
        {
            return Err(ck.err(&field, format!("`{bad}` is not an environment variable name")));
        }
        out.push(StepPlan {
            name: s.name.clone(),
            command,
            env,
            secrets,
        });
    }
    // Steps with secrets run last, in their order: a step given a secret is never cached,
    // nor is anything after it, so this keeps every other step cached and — for the
    // images of one recipe — built once (debian-server's `password` step would otherwise
    // leave everything after the base layer to run again for each image).
    let (mut plain, with_secrets): (Vec<StepPlan>, Vec<StepPlan>) = out.into_iter().partition(|s| s.secrets.is_empty());
    plain.extend(with_secrets);
    Ok(plain)
}

/// Checks `overlays`.
pub fn overlays(recipe: &Recipe, ck: &Checker) -> Vec<PathBuf> {
    recipe
        .overlays
        .iter()
        .flat_map(|l| l.items.iter())
        .map(|p| ck.path("overlays", p))
        .collect()
}

/// Checks `files`.
pub fn files(recipe: &Recipe, ck: &Checker) -> Result<Vec<FilePlan>, RecipeError> {
    let mut out = Vec::new();
    for (path, attrs) in recipe.files.iter().flatten() {
        let Some(a) = attrs else { continue };
        let field = format!("files.{path}");
        let rel = crate::rootpath::normalize(path).map_err(|m| ck.err(&field, m))?;
        // Only a download (`url`, `npm`, `pip`): nothing to set afterwards, and a `pip`
        // entry with no packages fills nothing, so its path need not exist.
        if a.mode.is_none() && a.owner.is_none() {
            continue;
        }
        let mode = a
            .mode
            .as_deref()
            .map(|m| {
                u32::from_str_radix(m.trim_start_matches("0o"), 8)
                    .ok()
                    .filter(|v| *v <= 0o7777)
                    .ok_or_else(|| {
                        ck.err(
                            &format!("{field}.mode"),
                            format!("`{m}` is not an octal mode such as `0644` or `4755`"),
                        )
                    })
            })
            .transpose()?;
        let owner = a
            .owner
            .as_deref()
            .map(|o| {
                let parse = |s: &str| s.parse::<u64>().ok();
                match o.split_once(':') {
                    Some((u, g)) if parse(u).is_some() && parse(g).is_some() => {
                        Ok((parse(u).unwrap_or(0), parse(g).unwrap_or(0)))
                    }
                    _ => Err(ck.err(
                        &format!("{field}.owner"),
                        format!("`{o}` is not `UID:GID` with numbers, e.g. `0:0` or `1000:1000`"),
                    )),
                }
            })
            .transpose()?;
        out.push(FilePlan { path: rel, mode, owner });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::merge::Origins;
    use std::path::Path;

    #[test]
    fn steps_with_secrets_run_after_the_others_in_their_order() {
        let recipe: Recipe = serde_norway::from_str(
            "steps:\n  - {name: user, run: 'true'}\n  - {name: password, run: 'true', secrets: ['PW?']}\n  - {name: tools, run: 'true'}\n  - {name: psk, run: 'true', secrets: [PSK]}\n  - {name: services, run: 'true'}\n",
        )
        .unwrap();
        let origins = Origins::new();
        let ck = Checker {
            origins: &origins,
            main_file: Path::new("r.yaml"),
        };
        let names: Vec<String> = steps(&recipe, &ck).unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["user", "tools", "services", "password", "psk"]);
    }
}
