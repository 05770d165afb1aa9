//! The raw `content:` section: mirrors and downloads fetched on the build host and
//! served from the image's web root (or written to a directory by `imgbuild fetch`).

use super::merge_list::MergeList;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Content prefetched on the build host.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentSpec {
    /// Where the content goes in the image. Default `/var/www/html`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    /// The address learners reach the server at, used in the generated help page and
    /// pip.conf / Rprofile snippets. Default `http://192.168.1.1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// A partial PyPI mirror (PEP 503 simple index).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pypi: Option<PypiSpec>,
    /// A partial CRAN mirror (standard CRAN tree with PACKAGES indexes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cran: Option<CranSpec>,
    /// Groups of built-in Carpentries lesson sites to mirror: `data-carpentry`,
    /// `library-carpentry`, `software-carpentry`, `hpc-carpentry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lessons: Option<MergeList<String>>,
    /// Extra static web sites to mirror, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sites: Option<IndexMap<String, Option<SiteSpec>>>,
    /// Single files (installers), by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<IndexMap<String, Option<UrlSpec>>>,
    /// Git repositories mirrored bare, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git: Option<IndexMap<String, Option<GitSpec>>>,
    /// Where to download from instead of upstream: URL prefix → replacement prefix
    /// (`"https://cloud.r-project.org/": "http://cran.lan/"`), for a local mirror or a
    /// test fixture. The lock, the mirror's layout and its links keep the upstream URLs,
    /// so a lock written either way serves the same content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch_from: Option<IndexMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PypiSpec {
    /// Requirements (`numpy`, `pandas>=2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<MergeList<String>>,
    /// Named sets: `data-carpentry`, `software-carpentry`, `data-science`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sets: Option<MergeList<String>>,
    /// Python versions (`"3.12"`); the closure is resolved for each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<MergeList<String>>,
    /// Target platforms: `win_amd64`, `win_arm64`, `macosx_arm64`, `macosx_x86_64`,
    /// `manylinux_x86_64`, `manylinux_aarch64` (or a uv `--python-platform` name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platforms: Option<MergeList<String>>,
    /// Also mirror each package's source distribution. Default false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdists: Option<bool>,
    /// The upstream simple index. Default `https://pypi.org/simple`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_url: Option<String>,
    /// Directory under the content root. Default `pypi`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CranSpec {
    /// Package names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<MergeList<String>>,
    /// Named sets: `data-carpentry`, `data-science`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sets: Option<MergeList<String>>,
    /// R version `X.Y` the binary packages are for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r_version: Option<String>,
    /// Package types: `source`, `win.binary`, `mac.binary.big-sur-x86_64`,
    /// `mac.binary.big-sur-arm64`. Default all four.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub types: Option<MergeList<String>>,
    /// The upstream CRAN mirror. Default `https://cloud.r-project.org`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Directory under the content root. Default `cran`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    /// The site's start URL; crawling stays below its directory.
    pub url: String,
    /// Lesson group the site is listed under on the index page. Default `sites`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Title on the index page. Default: the name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlSpec {
    /// The file's URL (or, with `latest`, none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The expected SHA-256 (required unless `latest` is given; the lock pins that).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Find the newest version on an index page instead of a fixed URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest: Option<LatestSpec>,
    /// Directory under the content root, e.g. `R/windows`.
    pub path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatestSpec {
    /// The page that links every version.
    pub index: String,
    /// A regular expression matched against the page's links, with a named group
    /// `version`; the link with the highest version wins.
    pub pattern: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitSpec {
    /// Clone URL.
    pub url: String,
    /// Directory under the content root. Default `git/<name>.git`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}
