//! The command line (clap): `imgbuild RECIPE`, `build`, `check`, `inspect`, `schema`,
//! `boot-test`,
//! and what each does with the library. `main` only parses, runs and renders errors.

pub mod explain;

use crate::pipeline::{self, BuildOptions};
use crate::recipe;
use crate::report::{self, Verbosity};
use crate::verify::boot;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "imgbuild",
    version,
    about = "Builds flashable disk images for offline teaching servers from YAML recipes"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Recipe to build (same as `imgbuild build RECIPE`).
    pub recipe: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Output directory (default: images/<recipe name>).
    #[arg(long, global = true, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Override a recipe variable; repeatable.
    #[arg(long = "set", global = true, value_name = "NAME=VALUE", value_parser = parse_set)]
    pub sets: Vec<(String, String)>,
    /// Say more (timings, sizes).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Say nothing but errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Build every stage afresh instead of reusing cached ones.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// The stage cache (default: $IMGBUILD_CACHE_DIR, else ~/.cache/imgbuild).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Content: use only the lock file and the cache; never touch the network.
    #[arg(long, global = true)]
    pub offline: bool,
    /// Content: fail instead of changing the recipe's lock file.
    #[arg(long, global = true)]
    pub locked: bool,
    /// Network: a connection, answer or download that makes no progress for this many
    /// seconds fails and is tried again.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub net_timeout: u64,
    /// Network: the most one download may take, all its attempts included, in seconds.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..))]
    pub net_deadline: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the recipe's image.
    Build { recipe: PathBuf },
    /// Fetch the recipe's `content:` (mirrors, sites, installers) into a directory
    /// (--out, default images/<name>/content) without building an image.
    Fetch {
        recipe: PathBuf,
        /// Resolve every source again and rewrite the lock file.
        #[arg(long)]
        update: bool,
    },
    /// Validate a recipe and print it fully resolved (parents merged, templates rendered).
    Check { recipe: PathBuf },
    /// Show an image's partitions and file systems, or print a file from inside it.
    Inspect {
        image: PathBuf,
        /// Print this file from an ext4 or FAT partition instead.
        #[arg(long, value_name = "PATH")]
        cat: Option<String>,
        /// With --cat: the partition number to read from (default: the first that has it).
        #[arg(long, value_name = "N")]
        partition: Option<u32>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the recipe format (for editor completion).
    Schema,
    /// Check this host for building the recipes (default: every recipe in recipes/):
    /// programs and versions, binfmt_misc for foreign architectures, mke2fs reading
    /// tar, free disk space, and the hosts the recipes download from. Each problem is
    /// one line with the command that fixes it; exit 0 when all is well, 1 otherwise.
    Doctor {
        recipes: Vec<PathBuf>,
        /// Seconds to wait for each host to answer.
        #[arg(long, default_value_t = 3, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Boot a built image in QEMU (on a grown copy) and check that it reaches
    /// multi-user.target with no failed unit and grows its root on first boot.
    BootTest {
        image: PathBuf,
        /// The QEMU machine (auto: from the image's kernel and device trees; a PC image by
        /// UEFI). A PC image boots by its firmware: pc-bios (SeaBIOS), pc-uefi (OVMF) or
        /// pc-secure-boot (OVMF enforcing Secure Boot with Microsoft's keys). A U-Boot
        /// board's image (Rock 4C+) is checked statically, then booted by U-Boot built
        /// for QEMU from the same source: u-boot-virt.
        #[arg(long, default_value = "auto", value_parser = ["auto", "raspi3b", "raspi0", "virt", "pc-bios", "pc-uefi", "pc-secure-boot", "u-boot-virt"])]
        machine: String,
        /// Give up after this many seconds (QEMU without KVM is slow).
        #[arg(long, default_value_t = 900, value_name = "SECONDS")]
        timeout: u64,
        /// Keep the booted copy as IMAGE.boot-test.img.
        #[arg(long)]
        keep: bool,
        /// Also check that the guest's web server answers PATH with 200, from the host
        /// through a forwarded port (repeatable: `--http / --http /pypi/`).
        #[arg(long, value_name = "PATH", value_parser = http_path)]
        http: Vec<String>,
        /// Give the guest a simulated Wi-Fi radio that can be an access point (the
        /// kernel's mac80211_hwsim, loaded in the test copy only).
        #[arg(long)]
        wifi_radio: bool,
        /// Also require this unit to be active once start-up has finished (repeatable:
        /// `--expect-active hostapd.service`).
        #[arg(long, value_name = "UNIT", value_parser = unit_name)]
        expect_active: Vec<String>,
    },
    /// Write the release of the recipes' images into --out (building any not built
    /// yet into images/<name>): each image as NAME.img.xz (multi-block xz), its bmap,
    /// parts under --part-size when larger, SHA256SUMS and release.json.
    Release {
        #[arg(required = true)]
        recipes: Vec<PathBuf>,
        /// Files larger than this are also published as NAME.img.xz.001, .002, …
        #[arg(long, value_name = "SIZE", default_value = "2047MiB", value_parser = crate::recipe::size::parse_bytes)]
        part_size: u64,
        /// How disk images are compressed for download: xz (multi-block) or zstd.
        #[arg(long, value_name = "FORMAT", default_value = "xz", value_parser = ["xz", "zstd"])]
        compression: String,
        /// Base URL the release's files are downloaded from, for the Imager repository
        /// file (a GitHub release's `…/releases/download/TAG/`); default the recipes'
        /// `release.url`, else this directory as a file:// URL.
        #[arg(long, value_name = "URL", value_parser = base_url)]
        url: Option<String>,
        /// Base URL of a host without the 2 GiB asset limit that also serves each whole
        /// download: Imager fetches images in parts from there.
        #[arg(long, value_name = "URL", value_parser = base_url)]
        whole_url: Option<String>,
    },
    /// List or prune the stage cache.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Internal: run a command inside a root file system (used for steps).
    #[command(hide = true)]
    InternalRunInRoot {
        #[arg(long)]
        root: PathBuf,
        /// NAME=VALUE for the command's environment.
        #[arg(long = "env")]
        env: Vec<String>,
        /// Names of variables passed on from this process's environment (secrets).
        #[arg(long = "pass")]
        pass: Vec<String>,
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Show every cache entry: stage, key, size, last use.
    List,
    /// Remove entries unused for a number of days (default 30), or everything.
    Prune {
        #[arg(long, default_value_t = 30)]
        days: u64,
        #[arg(long)]
        all: bool,
    },
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

impl Global {
    fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
    fn timeouts(&self) -> crate::fetch::http::Timeouts {
        crate::fetch::http::Timeouts {
            stall: std::time::Duration::from_secs(self.net_timeout),
            deadline: std::time::Duration::from_secs(self.net_deadline),
        }
    }

    fn build_options(&self) -> BuildOptions {
        BuildOptions {
            no_cache: self.no_cache,
            cache_dir: self.cache_dir.clone(),
            out_dir: self.out.clone(),
            sets: self.sets.clone(),
            fetch: crate::fetch::FetchOptions {
                update: false,
                offline: self.offline,
                locked: self.locked,
                timeouts: self.timeouts(),
            },
        }
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match (cli.command, cli.recipe) {
        (Some(Command::Build { recipe }), _) | (None, Some(recipe)) => build(g, &recipe),
        (Some(Command::Fetch { recipe, update }), _) => fetch(g, &recipe, update),
        (Some(Command::Check { recipe }), _) => {
            // One YAML document per image.
            let mut yaml = String::new();
            for (i, resolved) in recipe::resolve_all(&recipe, &g.sets)?.iter().enumerate() {
                if i > 0 {
                    yaml.push_str("---\n");
                }
                yaml.push_str(&serde_norway::to_string(&resolved.recipe).context("printing the recipe")?);
            }
            print(&yaml)
        }
        (
            Some(Command::Inspect {
                image,
                cat,
                partition,
                json,
            }),
            _,
        ) => match cat {
            Some(p) => {
                let data = crate::verify::inspect::cat(&image, &p, partition)?;
                std::io::stdout().write_all(&data).context("writing to stdout")
            }
            None => {
                let i = crate::verify::inspect::inspect(&image)?;
                if json {
                    print(&(serde_json::to_string_pretty(&i)? + "\n"))
                } else {
                    print(&crate::verify::inspect::render(&image, &i))
                }
            }
        },
        (Some(Command::Cache { action }), _) => cache_command(g, action),
        (
            Some(Command::Release {
                recipes,
                part_size,
                compression,
                url,
                whole_url,
            }),
            _,
        ) => {
            let opts = crate::release::ReleaseOptions {
                part_limit: part_size,
                compression: if compression == "zstd" {
                    crate::recipe::model::Compression::Zstd
                } else {
                    crate::recipe::model::Compression::Xz
                },
                url,
                whole_url,
            };
            release(g, &recipes, opts)
        }
        (Some(Command::InternalRunInRoot { root, env, pass, argv }), _) => {
            let mut vars = crate::rootfs::chroot::base_env();
            for kv in env {
                let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                vars.push((k.to_string(), v.to_string()));
            }
            for name in pass {
                vars.push((name.clone(), std::env::var(&name).unwrap_or_default()));
            }
            let code = crate::rootfs::chroot::run_in_root(&root, &vars, &argv)?;
            std::process::exit(code)
        }
        (Some(Command::Doctor { recipes, timeout }), _) => doctor(g, recipes, timeout),
        (Some(Command::Schema), _) => print(&(serde_json::to_string_pretty(&recipe::schema::recipe())? + "\n")),
        (
            Some(Command::BootTest {
                image,
                machine,
                timeout,
                keep,
                http,
                wifi_radio,
                expect_active,
            }),
            _,
        ) => boot_test(
            g,
            &image,
            &machine,
            timeout,
            keep,
            boot::Extras {
                http,
                wifi_radio,
                expect_active,
            },
        ),
        (None, None) => {
            use clap::CommandFactory;
            Cli::command().print_help().context("printing help")?;
            anyhow::bail!(crate::recipe::RecipeError::Set {
                key: "RECIPE".into(),
                message: "no recipe given; run `imgbuild RECIPE`, e.g. `imgbuild recipes/example-mbr.yaml`".into()
            })
        }
    }
}

fn cache_command(g: &Global, action: CacheAction) -> Result<()> {
    use crate::report::human_bytes;
    let cache = crate::cache::Cache::open(
        g.cache_dir.clone().unwrap_or_else(crate::cache::Cache::default_dir),
        true,
    )?;
    match action {
        CacheAction::List => {
            let entries = cache.list()?;
            let mut text = format!("{}\n", cache.root().display());
            let now = std::time::SystemTime::now();
            let mut total = 0;
            for e in &entries {
                let days = now
                    .duration_since(e.last_used)
                    .map(|d| d.as_secs() / 86400)
                    .unwrap_or(0);
                text.push_str(&format!(
                    "{:<10} {}  {:>10}  used {days}d ago  {}\n",
                    e.bucket,
                    &e.key[..12.min(e.key.len())],
                    human_bytes(e.bytes),
                    e.describe
                ));
                total += e.bytes;
            }
            text.push_str(&format!("{} entries, {}\n", entries.len(), human_bytes(total)));
            print(&text)
        }
        CacheAction::Prune { days, all } => {
            let (n, bytes) = cache.prune(if all {
                None
            } else {
                Some(std::time::Duration::from_secs(days * 86400))
            })?;
            print(&format!("removed {n} entries, {}\n", human_bytes(bytes)))
        }
    }
}

/// `imgbuild release`: the recipes' built outputs (built first where missing) into --out.
fn release(g: &Global, recipes: &[PathBuf], release_opts: crate::release::ReleaseOptions) -> Result<()> {
    crate::interrupt::install();
    let Some(out) = &g.out else {
        return Err(crate::recipe::RecipeError::CommandLine {
            message: "`imgbuild release` needs --out DIR: the directory to write the release into".into(),
        }
        .into());
    };
    let reporter = report::for_stderr(g.verbosity());
    let mut opts = g.build_options();
    // Each image is built into its own images/<name>, not into the release directory.
    opts.out_dir = None;
    let mut dirs = Vec::new();
    for r in recipes {
        let images = recipe::resolve_all(r, &opts.sets)?;
        let outs = pipeline::out_dirs(&images, &opts);
        if outs.iter().any(|d| !d.join("manifest.json").is_file()) {
            pipeline::build(r, &opts, reporter.as_ref())?;
        }
        dirs.extend(outs);
    }
    let released = crate::release::make(&dirs, out, &release_opts, reporter.as_ref())?;
    let list: String = released
        .iter()
        .map(|r| format!("{}\n", out.join(&r.file).display()))
        .collect();
    print(&list)
}

fn build(g: &Global, recipe: &std::path::Path) -> Result<()> {
    crate::interrupt::install();
    let reporter = report::for_stderr(g.verbosity());
    let started = std::time::Instant::now();
    let published = pipeline::build(recipe, &g.build_options(), reporter.as_ref())?;
    if g.verbosity() > Verbosity::Quiet {
        let names: Vec<&str> = published.iter().map(|p| p.manifest.name.as_str()).collect();
        eprintln!(
            "imgbuild: built {} in {:.1}s:",
            names.join(", "),
            started.elapsed().as_secs_f64()
        );
        // The outputs are published by now: a closed or full stdout ends the command
        // with a clear error (or none, for a closed pipe), never a panic.
        let list: String = published
            .iter()
            .flat_map(|p| &p.files)
            .map(|f| format!("{}\n", f.display()))
            .collect();
        print(&list)?;
    }
    Ok(())
}

fn fetch(g: &Global, recipe_path: &std::path::Path, update: bool) -> Result<()> {
    crate::interrupt::install();
    let reporter = report::for_stderr(g.verbosity());
    let started = std::time::Instant::now();
    // A recipe with several images fetches one content for all of them (the recipe's).
    let all = recipe::resolve_all(recipe_path, &g.sets)?;
    let name = match all.as_slice() {
        [one] => one.plan.name.clone(),
        _ => recipe_path
            .file_stem()
            .map_or_else(|| "content".into(), |s| s.to_string_lossy().into_owned()),
    };
    let Some(resolved) = all.into_iter().next() else {
        anyhow::bail!("{}: no image to fetch content for", recipe_path.display());
    };
    let plan = crate::fetch::publish::require(resolved.plan.content.as_ref(), recipe_path)?;
    let out = g
        .out
        .clone()
        .unwrap_or_else(|| std::path::Path::new("images").join(&name).join("content"));
    let cache = crate::cache::Cache::open(
        g.cache_dir.clone().unwrap_or_else(crate::cache::Cache::default_dir),
        true,
    )?;
    let mut opts = g.build_options().fetch;
    opts.update = update;
    let lock = crate::fetch::lock::path_for(recipe_path);
    let stats = crate::fetch::publish::fetch_to_dir(&plan, &lock, opts, &cache, &out, reporter.as_ref())?;
    if g.verbosity() > Verbosity::Quiet {
        use crate::report::human_bytes;
        eprintln!(
            "imgbuild: fetched {} files ({}) into {} in {:.1}s; {} downloaded; lock {}",
            stats.files,
            human_bytes(stats.bytes),
            out.display(),
            started.elapsed().as_secs_f64(),
            human_bytes(stats.downloaded),
            lock.display()
        );
    }
    Ok(())
}

fn doctor(g: &Global, recipes: Vec<PathBuf>, timeout: u64) -> Result<()> {
    use crate::doctor::{self, Needs};
    let recipes = if recipes.is_empty() {
        doctor::default_recipes(std::path::Path::new("recipes"))
    } else {
        recipes
    };
    let mut needs = Needs::default();
    if recipes.is_empty() {
        // No recipes here: everything a build can need, for the targets imgbuild knows.
        use crate::process::programs::Use;
        needs.uses.extend([
            Use::Bootstrap,
            Use::Foreign,
            Use::Ext4,
            Use::Grub,
            Use::Git,
            Use::Pypi,
            Use::Npm,
        ]);
        needs.architectures.extend(["arm64".to_string(), "armel".to_string()]);
    }
    for r in &recipes {
        let images = recipe::resolve_all(r, &g.sets)?;
        for (resolved, out) in images.iter().zip(pipeline::out_dirs(&images, &g.build_options())) {
            let dirs = doctor::Dirs {
                out,
                cache: g.cache_dir.clone().unwrap_or_else(crate::cache::Cache::default_dir),
            };
            needs.add(r, resolved, &dirs, &g.sets);
        }
    }
    let mut problems = doctor::check_host(&needs);
    if !g.offline {
        problems.extend(doctor::check_network(&needs, std::time::Duration::from_secs(timeout)));
    }
    let mut text = String::new();
    for p in &problems {
        text.push_str(&format!("problem: {p}\n"));
    }
    let names: Vec<String> = recipes.iter().map(|r| r.display().to_string()).collect();
    let checked = format!(
        "{} programs, {} architectures, {} hosts{}",
        crate::process::programs::all()
            .iter()
            .filter(|p| p.used_by.iter().any(|u| needs.uses.contains(u)))
            .count(),
        needs.architectures.len(),
        if g.offline { 0 } else { needs.hosts.len() },
        if names.is_empty() {
            String::new()
        } else {
            format!(" for {}", names.join(", "))
        }
    );
    if problems.is_empty() {
        text.push_str(&format!("doctor: all is well ({checked})\n"));
        print(&text)
    } else {
        print(&text)?;
        anyhow::bail!(DoctorFailed(problems.len(), checked))
    }
}

/// `imgbuild doctor` found problems (exit 1: the host, not the recipe, needs fixing).
#[derive(Debug, thiserror::Error)]
#[error("doctor: {0} problem(s) ({1}); run the fixes above, then `imgbuild doctor` again")]
pub struct DoctorFailed(usize, String);

/// A `--expect-active` unit: a systemd unit name (letters, digits, `:-_.@`), so the
/// probe script can print it as it is.
fn unit_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.contains('.') && s.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.@".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a systemd unit name (such as hostapd.service)"))
    }
}

/// A `--http` path: absolute, no scheme or host (the host is the guest).
fn base_url(s: &str) -> Result<String, String> {
    if ["https://", "http://", "file://"].iter().any(|p| s.starts_with(p)) && !s.chars().any(char::is_whitespace) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not an http(s):// or file:// URL"))
    }
}

fn http_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') && !s.chars().any(char::is_whitespace) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a path such as `/` or `/pypi/`"))
    }
}

fn boot_test(
    g: &Global,
    image: &std::path::Path,
    machine: &str,
    timeout: u64,
    keep_copy: bool,
    extras: boot::Extras,
) -> Result<()> {
    let reporter = report::for_stderr(g.verbosity());
    let opts = boot::BootOptions {
        // clap admits only the names `Machine` parses, and "auto".
        machine: machine.parse().ok(),
        timeout: std::time::Duration::from_secs(timeout),
        keep_copy,
        http: extras.http,
        wifi_radio: extras.wifi_radio,
        expect_active: extras.expect_active,
        cache_dir: g.cache_dir.clone().unwrap_or_else(crate::cache::Cache::default_dir),
    };
    // An interruption comes back as `boot::Interrupted`: main exits 130 for it.
    let r = boot::run(image, &opts, reporter.as_ref())?;
    print(&boot::render(&r))?;
    if !r.passed() {
        eprintln!("--- last lines of {}:\n{}", r.serial_log.display(), r.log_tail);
        return Err(boot::Failed {
            failures: r.failures,
            hints: r.hints,
        }
        .into());
    }
    Ok(())
}

fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        // A closed pipe (`imgbuild check x | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
