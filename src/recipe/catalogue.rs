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
    // HPC Carpentry's introduction, taught on the miniHPC cluster; published from The
    // Carpentries Incubator.
    (
        "hpc-carpentry",
        "https://carpentries-incubator.github.io/",
        &["hpc-intro"],
    ),
];

/// Raspberry Pi Imager's device tags and the boards they stand for. Imager filters its
/// OS list by the tags of the device the user chose; its hardware model matches boards
/// by the tag families `pi5-`, `pi4-`, `pi2-`/`pi3-` and `pi1-` (rpi-imager
/// `src/hwlistmodel.cpp`), and its published device list names them by bitness.
pub const IMAGER_DEVICES: &[(&str, &str)] = &[
    ("pi5-64bit", "Raspberry Pi 5, 500, CM5"),
    ("pi5-32bit", "Raspberry Pi 5, 500, CM5 (32-bit)"),
    ("pi4-64bit", "Raspberry Pi 4, 400, CM4"),
    ("pi4-32bit", "Raspberry Pi 4, 400, CM4 (32-bit)"),
    ("pi3-64bit", "Raspberry Pi 3, 3+, Zero 2 W, CM3"),
    ("pi3-32bit", "Raspberry Pi 3, 3+, Zero 2 W, CM3 (32-bit)"),
    ("pi2-32bit", "Raspberry Pi 2"),
    ("pi1-32bit", "Raspberry Pi 1, Zero, Zero W"),
];
