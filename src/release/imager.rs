//! The Raspberry Pi Imager repository file (`rpi-imager --repo URL`): an `os_list` with
//! one entry per image that declares Imager device tags, in Imager's documented format
//! (rpi-imager `doc/json-schema/os-list-schema.json`; `tests/fixtures/imager` holds our
//! JSON Schema of it, which the tests validate against).

use super::Released;
use anyhow::Result;
use serde_json::{Value, json};

/// Its file name in the release directory.
pub const FILE: &str = "rpi-imager.json";
/// Our icon, published beside the images.
pub const ICON: &str = "imgbuild-icon.svg";
pub const ICON_SVG: &str = include_str!("icon.svg");

/// Where the release's files are downloaded from.
pub struct Urls<'a> {
    /// The release assets (a GitHub release: every file, big ones in parts).
    pub assets: &'a str,
    /// A host without the asset limit holding the whole downloads, when there is one.
    pub whole: Option<&'a str>,
}

/// `base` + `file`, with exactly one `/` between.
pub fn join(base: &str, file: &str) -> String {
    format!("{}/{file}", base.trim_end_matches('/'))
}

/// The repository file's JSON, or an error naming an image Imager could not fetch.
pub fn repository(released: &[Released], urls: &Urls) -> Result<Value> {
    let mut list = Vec::new();
    for r in released.iter().filter(|r| !r.devices.is_empty()) {
        let (Some(extract_size), Some(extract_sha256)) = (r.extract_size, &r.extract_sha256) else {
            continue;
        };
        // Imager downloads one file: a download in parts must come from the whole-file host.
        let url = match (r.parts.is_empty(), urls.whole) {
            (true, _) => join(urls.assets, &r.file),
            (false, Some(whole)) => join(whole, &r.file),
            (false, None) => {
                return Err(crate::recipe::RecipeError::CommandLine {
                    message: format!(
                        "{} is {} parts (over the asset limit) and Raspberry Pi Imager cannot join parts; \
                         give the base URL of a host without the limit with --whole-url URL (or release.whole_url)",
                        r.file,
                        r.parts.len()
                    ),
                }
                .into());
            }
        };
        let mut entry = json!({
            "name": r.title,
            "description": r.description,
            "icon": join(urls.assets, ICON),
            "url": url,
            "extract_size": extract_size,
            "extract_sha256": extract_sha256,
            "image_download_size": r.download_size,
            "image_download_sha256": r.download_sha256,
            "release_date": r.release_date,
            "devices": r.devices,
            // The images read their own settings file from the boot partition (see
            // docs/flashing.md): none of Imager's customisation formats applies.
            "init_format": "none",
        });
        if let Some(a) = imager_architecture(r.architecture.as_deref()) {
            entry["architecture"] = json!(a);
        }
        if let Some(w) = &r.website {
            entry["website"] = json!(w);
        }
        if let Some(b) = &r.bmap {
            entry["bmap_url"] = json!(join(urls.assets, b));
        }
        list.push(entry);
    }
    Ok(json!({ "os_list": list }))
}

/// Debian's architecture as Imager names it.
fn imager_architecture(debian: Option<&str>) -> Option<&'static str> {
    match debian? {
        "arm64" => Some("armv8"),
        "armhf" => Some("armhf"),
        "armel" => Some("armel"),
        _ => None,
    }
}
