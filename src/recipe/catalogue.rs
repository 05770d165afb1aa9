//! The content catalogue: the named PyPI and CRAN sets, the Carpentries lesson groups and
//! the defaults a `content:` section starts from. Data only — the plan (`plan_content.rs`)
//! expands it, the fetch stage and the tests read it; nothing here imports anything.

pub const DEFAULT_DEST: &str = "var/www/html";
pub const DEFAULT_BASE_URL: &str = "http://192.168.1.1";
pub const DEFAULT_PYPI_INDEX: &str = "https://pypi.org/simple";
pub const DEFAULT_CRAN_REPO: &str = "https://cloud.r-project.org";

/// PyPI sets, as offlinedatasci defines them.
pub const PYPI_SETS: &[(&str, &[&str])] = &[
    (
        "data-carpentry",
        &["pandas", "notebook", "numpy", "matplotlib", "plotnine"],
    ),
    ("software-carpentry", &["matplotlib", "notebook", "numpy", "pandas"]),
    (
        "data-science",
        &[
            "scipy",
            "numpy",
            "pandas",
            "matplotlib",
            "keras",
            "scikit-learn",
            "beautifulsoup4",
            "seaborn",
            "torch",
        ],
    ),
];
/// CRAN sets, as offlinedatasci defines them.
pub const CRAN_SETS: &[(&str, &[&str])] = &[
    ("data-carpentry", &["tidyverse", "RSQLite"]),
    (
        "data-science",
        &[
            "dplyr",
            "ggplot2",
            "shiny",
            "lubridate",
            "knitr",
            "esquisse",
            "mlr3",
            "DT",
        ],
    ),
];
pub const CRAN_TYPES: &[&str] = &[
    "source",
    "win.binary",
    "mac.binary.big-sur-x86_64",
    "mac.binary.big-sur-arm64",
];
/// Friendly platform names → uv `--python-platform` targets.
pub const PYPI_PLATFORMS: &[(&str, &str)] = &[
    ("win_amd64", "x86_64-pc-windows-msvc"),
    ("win_arm64", "aarch64-pc-windows-msvc"),
    ("macosx_arm64", "aarch64-apple-darwin"),
    ("macosx_x86_64", "x86_64-apple-darwin"),
    ("manylinux_x86_64", "x86_64-manylinux_2_28"),
    ("manylinux_aarch64", "aarch64-manylinux_2_28"),
];
/// The Carpentries lessons CarpentriesOffline serves, by group.
pub const LESSONS: &[(&str, &str, &[&str])] = &[
    (
        "data-carpentry",
        "https://datacarpentry.org/",
        &[
            "ecology-workshop",
            "spreadsheet-ecology-lesson",
            "OpenRefine-ecology-lesson",
            "R-ecology-lesson",
            "python-ecology-lesson",
            "sql-ecology-lesson",
        ],
    ),
    (
        "library-carpentry",
        "https://librarycarpentry.org/",
        &["lc-overview", "lc-data-intro", "lc-shell", "lc-open-refine", "lc-git"],
    ),
    (
        "software-carpentry",
        "https://swcarpentry.github.io/",
        &[
            "shell-novice",
            "git-novice",
            "python-novice-inflammation",
            "python-novice-gapminder",
            "r-novice-inflammation",
            "r-novice-gapminder",
            "shell-novice-es",
            "git-novice-es",
            "r-novice-gapminder-es",
        ],
    ),
];
