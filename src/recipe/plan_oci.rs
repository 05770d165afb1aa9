//! The checked plan of a container build (`output.format: oci`): the image's name, its
//! platform (from the Debian architecture) and its run-time defaults. Everything a
//! container runtime would only reject at `load` or `run` time is refused here, naming
//! the field.

use super::checker::Checker;
use super::error::RecipeError;
use super::model::{OciSpec, OutputFormat, Port, Recipe};
use serde::Serialize;

/// What `cmd` defaults to: the root file system's init, so the container boots its
/// services with systemd as the disk image does.
pub const DEFAULT_CMD: &str = "/sbin/init";
/// The search path every Debian image sets (the runtimes' own default, written down so
/// `podman image inspect` shows it).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Longest image name docker accepts.
const MAX_NAME: usize = 255;

/// An OCI platform: Go's names for the CPU, as image configs and indexes spell them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}

/// A container image to build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OciPlan {
    /// `NAME:TAG` as docker and podman show it.
    pub tag: String,
    pub platform: Platform,
    pub cmd: Vec<String>,
    /// `80/tcp`, `53/udp`, ...
    pub ports: Vec<String>,
    /// `NAME=VALUE`, `PATH` first.
    pub env: Vec<String>,
    pub labels: Vec<(String, String)>,
    /// gzip level of the layer.
    pub level: u32,
}

/// The recipe's output format (default `image`).
pub fn format_of(recipe: &Recipe) -> OutputFormat {
    recipe
        .output
        .as_ref()
        .and_then(|o| o.format)
        .unwrap_or(OutputFormat::Image)
}

/// Checks that the recipe has the sections its format needs and none it can't use.
/// Runs before anything else reads `image`, so a container recipe never hears about a
/// missing partition table.
pub fn check_format(recipe: &Recipe, ck: &Checker) -> Result<(), RecipeError> {
    let output = recipe.output.clone().unwrap_or_default();
    match format_of(recipe) {
        OutputFormat::Oci => {
            if recipe.image.is_some() {
                return Err(ck.err(
                    "image",
                    "`output.format: oci` builds a container image, which has no disk layout; remove `image:` (in a recipe that extends one with it, write `image: ~`) or set `output.format: image`",
                ));
            }
            if recipe.rootfs.is_none() {
                return Err(ck.err(
                    "rootfs",
                    "missing; `output.format: oci` packs the root file system into a container image: add `rootfs:` (`suite` + `architecture`, or `tar`/`dir` + `architecture`)",
                ));
            }
            if output.compression.is_some() || output.keep_raw.is_some() {
                let field = if output.compression.is_some() {
                    "output.compression"
                } else {
                    "output.keep_raw"
                };
                return Err(ck.err(
                    field,
                    "applies to disk images only; a container archive is a plain tar whose layer is always gzip (`output.level` sets its level); remove it",
                ));
            }
        }
        OutputFormat::Image => {
            if output.oci.is_some() {
                return Err(ck.err(
                    "output.oci",
                    "only used with `output.format: oci`; set `output.format: oci` or remove `output.oci`",
                ));
            }
            if recipe.image.is_none() && recipe.content.is_none() {
                return Err(ck.err(
                    "image",
                    "missing; a disk image needs `image:` (`table` and `partitions`), or set `output.format: oci` to build a container image",
                ));
            }
        }
    }
    Ok(())
}

/// The container plan of a recipe whose format is `oci` (None for a disk image).
pub fn oci(recipe: &Recipe, name: &str, ck: &Checker) -> Result<Option<OciPlan>, RecipeError> {
    if format_of(recipe) != OutputFormat::Oci {
        return Ok(None);
    }
    let out = recipe.output.clone().unwrap_or_default();
    let spec: OciSpec = out.oci.unwrap_or_default();
    let arch = recipe.rootfs.as_ref().and_then(|r| r.architecture.clone()).ok_or_else(|| {
        ck.err(
            "rootfs.architecture",
            "missing; a container image records its architecture: write `architecture: amd64` (or arm64, armhf, ...) in `rootfs`",
        )
    })?;
    let platform = platform_of(&arch).ok_or_else(|| {
        ck.err(
            "rootfs.architecture",
            format!(
                "`{arch}` has no container platform; use one of {}",
                DEBIAN_TO_OCI.iter().map(|(d, _, _)| *d).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let tag = match &spec.tag {
        Some(t) => with_default_tag(t),
        None => format!("{}:latest", name.to_lowercase()),
    };
    if let Err(why) = check_reference(&tag) {
        let hint = if spec.tag.is_none() {
            format!(" (made from the recipe name `{name}`); set `output.oci.tag: NAME:TAG`")
        } else {
            String::new()
        };
        return Err(ck.err("output.oci.tag", format!("`{tag}` is not an image name: {why}{hint}")));
    }
    let cmd = spec
        .cmd
        .map(|c| c.items)
        .unwrap_or_else(|| vec![DEFAULT_CMD.to_string()]);
    if cmd.first().is_none_or(|c| c.trim().is_empty()) {
        return Err(ck.err(
            "output.oci.cmd",
            "the command is empty; write the program and its arguments, e.g. `[/sbin/init]`",
        ));
    }
    let mut ports = Vec::new();
    for p in spec.ports.iter().flat_map(|l| l.items.iter()) {
        let port = parse_port(p).map_err(|m| ck.err("output.oci.ports", m))?;
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    let mut env = vec![format!("PATH={DEFAULT_PATH}")];
    for (k, v) in spec.env.iter().flatten() {
        if !super::plan_rootfs::is_env_name(k) {
            return Err(ck.err("output.oci.env", format!("`{k}` is not an environment variable name")));
        }
        let line = format!("{k}={v}");
        match env.iter().position(|e| e.split_once('=').is_some_and(|(n, _)| n == k)) {
            Some(i) => env[i] = line,
            None => env.push(line),
        }
    }
    let labels: Vec<(String, String)> = spec
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if labels.iter().any(|(k, _)| k.trim().is_empty()) {
        return Err(ck.err("output.oci.labels", "a label needs a name"));
    }
    let level = out.level.unwrap_or(6);
    if !(1..=9).contains(&level) {
        return Err(ck.err(
            "output.level",
            format!("level {level} is outside 1..=9 for the container's gzip layer"),
        ));
    }
    Ok(Some(OciPlan {
        tag,
        platform,
        cmd,
        ports,
        env,
        labels,
        level,
    }))
}

/// Debian architecture → OCI architecture and variant (Go's GOARCH/GOARM names).
const DEBIAN_TO_OCI: &[(&str, &str, Option<&str>)] = &[
    ("amd64", "amd64", None),
    ("arm64", "arm64", None),
    // Debian's armhf baseline is ARMv7 with VFPv3-D16; armel is ARMv5TE.
    ("armhf", "arm", Some("v7")),
    ("armel", "arm", Some("v5")),
    ("i386", "386", None),
    ("ppc64el", "ppc64le", None),
    ("s390x", "s390x", None),
    ("riscv64", "riscv64", None),
    ("mips64el", "mips64le", None),
    ("loong64", "loong64", None),
];

/// The OCI platform of a Debian architecture.
pub fn platform_of(debian_arch: &str) -> Option<Platform> {
    DEBIAN_TO_OCI
        .iter()
        .find(|(d, _, _)| *d == debian_arch)
        .map(|&(_, architecture, variant)| Platform { architecture, variant })
}

/// `name` → `name:latest`; a name with a tag stays as it is. The last `:` after the last
/// `/` starts the tag (a registry's `host:port/` comes before a `/`).
fn with_default_tag(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

/// Checks a `[registry/]path:tag` reference the way docker's reference grammar does:
/// lower-case path components joined by `.`, `_`, `__` or dashes; a tag of word
/// characters, `.` and `-`, at most 128, not starting with either.
fn check_reference(reference: &str) -> Result<(), String> {
    let (name, tag) = reference
        .rsplit_once(':')
        .filter(|(n, _)| !n.is_empty())
        .ok_or("it needs a name before the `:TAG`")?;
    let tag_ok = tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !tag_ok {
        return Err(format!(
            "tag `{tag}` must be letters, digits, `_`, `.` and `-` (at most 128, not starting with `.` or `-`)"
        ));
    }
    if name.len() > MAX_NAME {
        return Err(format!("the name is longer than {MAX_NAME} characters"));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first part with `.` or `:`, or `localhost`, is a registry host (`host:5000`).
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let host_ok = host
            .split(':')
            .next()
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)))
            && host
                .split_once(':')
                .is_none_or(|(_, port)| !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()));
        if !host_ok {
            return Err(format!("`{host}` is not a registry host"));
        }
    }
    let component = regex::Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").map_err(|e| e.to_string())?;
    match parts.iter().find(|p| !component.is_match(p)) {
        Some(bad) => Err(format!(
            "`{bad}` must be lower-case letters and digits, joined by `.`, `_`, `__` or `-`"
        )),
        None => Ok(()),
    }
}

/// `80`, `"8080"`, `"53/udp"` → `80/tcp`, `8080/tcp`, `53/udp`.
fn parse_port(p: &Port) -> Result<String, String> {
    let (number, proto) = match p {
        Port::Number(n) => (n.to_string(), "tcp"),
        Port::Text(t) => match t.split_once('/') {
            Some((n, proto)) => (n.trim().to_string(), proto.trim()),
            None => (t.trim().to_string(), "tcp"),
        },
    };
    let valid = number.parse::<u16>().is_ok_and(|n| n > 0);
    if !valid || !["tcp", "udp", "sctp"].contains(&proto) {
        let shown = match p {
            Port::Number(n) => n.to_string(),
            Port::Text(t) => t.clone(),
        };
        return Err(format!(
            "`{shown}` is not a port; write a number (TCP) or `NUMBER/udp` such as `53/udp`"
        ));
    }
    Ok(format!("{number}/{proto}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_architectures_map_to_oci_platforms() {
        let p = |a| platform_of(a).map(|p| (p.architecture, p.variant));
        assert_eq!(p("amd64"), Some(("amd64", None)));
        assert_eq!(p("arm64"), Some(("arm64", None)));
        assert_eq!(p("armhf"), Some(("arm", Some("v7"))));
        assert_eq!(p("armel"), Some(("arm", Some("v5"))));
        assert_eq!(p("i386"), Some(("386", None)));
        assert_eq!(p("ppc64el"), Some(("ppc64le", None)));
        assert_eq!(p("mips64el"), Some(("mips64le", None)));
        assert_eq!(p("x86_64"), None);
        // Every architecture the bootstrap accepts has a platform.
        for a in super::super::plan_rootfs::ARCHITECTURES {
            assert!(platform_of(a).is_some(), "{a}");
        }
    }

    #[test]
    fn references_follow_dockers_grammar() {
        for ok in [
            "server:latest",
            "carpentries/server:2024.1",
            "registry.example.org:5000/a/b-c__d:v1",
            "localhost/x:1",
            "a.b_c:_x",
        ] {
            assert_eq!(check_reference(ok), Ok(()), "{ok}");
        }
        for bad in [
            "Server:latest",
            "server:",
            ":x",
            "ser--ver-:x",
            "a//b:x",
            "x:.bad",
            "x:a b",
            "-x:1",
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
        assert_eq!(with_default_tag("server"), "server:latest");
        assert_eq!(with_default_tag("host:5000/server"), "host:5000/server:latest");
        assert_eq!(with_default_tag("server:1.0"), "server:1.0");
    }

    #[test]
    fn ports_default_to_tcp() {
        assert_eq!(parse_port(&Port::Number(80)).unwrap(), "80/tcp");
        assert_eq!(parse_port(&Port::Text("8080".into())).unwrap(), "8080/tcp");
        assert_eq!(parse_port(&Port::Text("53/udp".into())).unwrap(), "53/udp");
        assert!(parse_port(&Port::Number(0)).is_err());
        assert!(parse_port(&Port::Text("53/dns".into())).is_err());
        assert!(parse_port(&Port::Text("http".into())).is_err());
    }
}
