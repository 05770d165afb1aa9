//! The release notes (Markdown): per image the boards, the Debian suite and the key
//! package versions from the image's own dpkg status, what its mirrors hold, its files
//! with sizes and checksums, how to join parts, and how to flash it.

use super::Released;
use super::built::Built;
use super::imager::{self, Urls};
use crate::report::human_bytes;
use serde_json::Value;
use std::fmt::Write;

pub const FILE: &str = "RELEASE-NOTES.md";

/// Debian packages worth naming, by name prefix, in this order.
const KEY_PACKAGES: &[(&str, &str)] = &[
    ("linux-image-", "Linux kernel"),
    ("raspi-firmware", "Raspberry Pi firmware"),
    ("nginx", "nginx"),
    ("hostapd", "hostapd"),
    ("dnsmasq", "dnsmasq"),
    ("jupyterhub", "JupyterHub"),
    ("python3", "Python"),
    ("r-base-core", "R"),
    ("nodejs", "Node.js"),
    ("slurm-wlm", "Slurm"),
    ("munge", "Munge"),
];

/// Software the recipes install from upstream releases: the variable pinning its
/// version, the variable switching it on, its name.
const PINNED: &[(&str, &str, &str)] = &[
    ("gitea_version", "gitea", "Gitea"),
    ("etherpad_version", "etherpad", "Etherpad"),
];

/// The whole notes text.
pub fn write(released: &[Released], built: &[Built], urls: &Urls) -> String {
    let mut md = String::new();
    let date = released.iter().map(|r| r.release_date.as_str()).max().unwrap_or("");
    let _ = writeln!(md, "# Images of {date}\n");
    let _ = writeln!(
        md,
        "| Image | For | Download | Size | Unpacked |\n|---|---|---|---|---|"
    );
    for r in released {
        let unpacked = r.extract_size.map(human_bytes).unwrap_or_else(|| "–".into());
        let boards = if r.boards.is_empty() {
            r.description.clone()
        } else {
            r.boards.join(", ")
        };
        let _ = writeln!(
            md,
            "| {} | {boards} | `{}`{} | {} | {unpacked} |",
            r.title,
            r.file,
            if r.parts.is_empty() {
                String::new()
            } else {
                format!(" ({} parts)", r.parts.len())
            },
            human_bytes(r.download_size)
        );
    }
    let _ = writeln!(md);
    for (r, b) in released.iter().zip(built) {
        image_section(&mut md, r, b, urls);
    }
    flashing(&mut md, released, urls);
    md
}

fn image_section(md: &mut String, r: &Released, b: &Built, urls: &Urls) {
    let _ = writeln!(md, "## {} (`{}`)\n", r.title, r.name);
    if !r.description.is_empty() {
        let _ = writeln!(md, "{}\n", r.description);
    }
    if !r.boards.is_empty() {
        let _ = writeln!(md, "- Boards: {}", r.boards.join(", "));
    }
    if let Some(suite) = &r.suite {
        let arch = r.architecture.as_deref().unwrap_or("");
        let _ = writeln!(md, "- Debian {suite} {arch}, built {}", r.release_date);
    }
    if let Some(tag) = &r.container_tag {
        let _ = writeln!(md, "- Container image `{tag}`: `podman load -i {}`", r.file);
    }
    let versions = key_versions(b);
    if !versions.is_empty() {
        let _ = writeln!(md, "- Software: {}", versions.join(", "));
    }
    for line in mirrors(&b.content) {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md, "\n| File | Size | SHA-256 |\n|---|---|---|");
    let _ = writeln!(
        md,
        "| `{}` | {} | `{}` |",
        r.file,
        human_bytes(r.download_size),
        r.download_sha256
    );
    if let (Some(size), Some(sha)) = (r.extract_size, &r.extract_sha256) {
        let raw = r.file.rsplit_once('.').map_or(r.file.as_str(), |(stem, _)| stem);
        let _ = writeln!(md, "| `{raw}` (unpacked) | {} | `{sha}` |", human_bytes(size));
    }
    if let (Some(bmap), Some(sha)) = (&r.bmap, &r.bmap_sha256) {
        let _ = writeln!(md, "| `{bmap}` | | `{sha}` |");
    }
    for p in &r.parts {
        let _ = writeln!(md, "| `{}` | {} | `{}` |", p.name, human_bytes(p.size), p.sha256);
    }
    let _ = writeln!(md);
    if !r.parts.is_empty() {
        join_instructions(md, r, urls);
    }
}

/// Versions of the key packages, from the image's dpkg status, and of what the recipe
/// pins (the lock holds those downloads' checksums).
fn key_versions(b: &Built) -> Vec<String> {
    let mut out = Vec::new();
    for (prefix, label) in KEY_PACKAGES {
        let exact = !prefix.ends_with('-');
        for (name, version) in &b.packages {
            let hit = if exact {
                name == prefix
            } else {
                name.starts_with(prefix)
            };
            // The kernel's meta package (`linux-image-arm64`) only repeats the versioned
            // one (`linux-image-6.1.0-28-arm64`).
            let meta = name
                .strip_prefix("linux-image-")
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()));
            if hit && !meta {
                out.push(format!("{label} {version}"));
                if exact {
                    break;
                }
            }
        }
    }
    for (var, switch, label) in PINNED {
        // A service switched off (`--set gitea=false`) leaves its version variable behind.
        let on = b
            .vars
            .get(*switch)
            .is_none_or(|s| s != &Value::Bool(false) && s != "false");
        if let Some(v) = b.vars.get(*var).and_then(Value::as_str).filter(|v| on && !v.is_empty()) {
            out.push(format!("{label} {v}"));
        }
    }
    out
}

/// A JSON list of strings, comma-separated.
fn words(list: &Value) -> String {
    let words: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    words.join(", ")
}

/// One line per mirror kind, from the manifest's content summary.
fn mirrors(c: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = c.get("pypi").filter(|p| !p.is_null()) {
        out.push(format!(
            "PyPI mirror: {} files for Python {} on {}",
            p["files"],
            p["python"].as_str().unwrap_or("?"),
            words(&p["platforms"])
        ));
    }
    if let Some(r) = c.get("cran").filter(|r| !r.is_null()) {
        out.push(format!(
            "CRAN mirror: {} files for R {} ({})",
            r["files"],
            r["r_version"].as_str().unwrap_or("?"),
            words(&r["types"])
        ));
    }
    let titles = |key: &str, field: &str| -> Vec<String> {
        c[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l[field].as_str().or(l["name"].as_str()).map(str::to_string))
            .collect()
    };
    let lessons = titles("lessons", "title");
    if !lessons.is_empty() {
        out.push(format!("Lessons ({}): {}", lessons.len(), lessons.join(", ")));
    }
    let installers: Vec<String> = c["downloads"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "{} ({})",
                d["file"].as_str().unwrap_or("?"),
                d["os"].as_str().unwrap_or("other")
            )
        })
        .collect();
    if !installers.is_empty() {
        out.push(format!("Installers ({}): {}", installers.len(), installers.join(", ")));
    }
    let git = titles("git", "name");
    if !git.is_empty() {
        out.push(format!("Git repositories ({}): {}", git.len(), git.join(", ")));
    }
    out
}

fn join_instructions(md: &mut String, r: &Released, urls: &Urls) {
    let f = &r.file;
    let names: Vec<&str> = r.parts.iter().map(|p| p.name.as_str()).collect();
    let _ = writeln!(
        md,
        "`{f}` is over the hosting limit: it is published as {} parts. Download them all \
         into one folder and join them in order:\n",
        names.len()
    );
    let _ = writeln!(md, "- Linux, macOS: `cat {} > {f}`", names.join(" "));
    let plus = names.join("+");
    let _ = writeln!(md, "- Windows (Command Prompt): `copy /b {plus} {f}`");
    let _ = writeln!(md, "- Windows (PowerShell): `cmd /c copy /b {plus} {f}`");
    let _ = writeln!(
        md,
        "\nThen check it: `sha256sum {f}` (Linux), `shasum -a 256 {f}` (macOS), \
         `certutil -hashfile {f} SHA256` (Command Prompt) or `Get-FileHash {f}` (PowerShell) \
         must print `{}`.",
        r.download_sha256
    );
    if let Some(whole) = urls.whole {
        let _ = writeln!(md, "\nThe whole file is also at <{}>.", imager::join(whole, f));
    }
    let _ = writeln!(md);
}

fn flashing(md: &mut String, released: &[Released], urls: &Urls) {
    let _ = writeln!(md, "## Flashing\n");
    if released.iter().any(|r| !r.devices.is_empty()) {
        let _ = writeln!(
            md,
            "**Raspberry Pi Imager** (Windows, macOS, Linux): App Options → Content Repository → \
             Use custom URL `{}`, or `rpi-imager --repo {}`; choose your board, the image and \
             the card. Imager checks the image's SHA-256 as it writes.\n",
            imager::join(urls.assets, imager::FILE),
            imager::join(urls.assets, imager::FILE)
        );
    }
    if let Some(r) = released.iter().find(|r| r.bmap.is_some()) {
        let bmap = r.bmap.as_deref().unwrap_or_default();
        let _ = writeln!(
            md,
            "**bmaptool** (Linux; writes only the blocks the image uses and checks them): \
             `sudo bmaptool copy --bmap {bmap} {} /dev/sdX`\n",
            r.file
        );
        let _ = writeln!(
            md,
            "**dd** (any Unix): `xz -dc {} | sudo dd of=/dev/sdX bs=4M conv=fsync status=progress` \
             (`zstd -dc` for `.zst`).\n",
            r.file
        );
    }
    let _ = writeln!(
        md,
        "Replace `/dev/sdX` with the card (check `lsblk`): everything on it is overwritten. \
         Then, before the first boot, open `imgbuild-settings.txt` on the card's boot partition \
         (the small one every computer shows) with any text editor and set the Wi-Fi passphrase \
         and passwords; a value left empty the server makes at its first boot and writes to \
         `imgbuild-credentials.txt` there and to its console. The image itself holds none."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::built::Payload;

    #[test]
    fn key_versions_name_the_kernel_and_only_services_switched_on() {
        let packages = [
            ("linux-image-arm64", "6.1+1"),
            ("linux-image-6.1.0-28-arm64", "6.1.119-1"),
            ("nginx", "1.22.1-9"),
            ("nginx-common", "1.22.1-9"),
        ];
        let vars = serde_json::json!({"gitea_version": "1.22.6", "gitea": false, "etherpad_version": "1.8.14", "etherpad": true});
        let b = Built {
            name: "x".into(),
            payload: Payload::Container {
                archive: "x".into(),
                tag: "x".into(),
            },
            epoch: 0,
            description: String::new(),
            release: Default::default(),
            suite: None,
            architecture: None,
            packages: packages.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            vars: vars.as_object().cloned().unwrap_or_default(),
            content: Value::Null,
        };
        assert_eq!(
            key_versions(&b),
            ["Linux kernel 6.1.119-1", "nginx 1.22.1-9", "Etherpad 1.8.14"]
        );
    }
}
