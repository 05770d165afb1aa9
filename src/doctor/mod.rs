//! `imgbuild doctor [RECIPE...]`, and the same checks a build runs before its first slow
//! stage: the programs the recipes need (at the version needed, from the host-program
//! table), foreign architectures registered with binfmt_misc, mke2fs reading tar, free
//! disk space, and the archives and content hosts the recipes name reachable. Every
//! problem comes with the exact command (or `--set` switch) that fixes it here.

pub mod reach;

use crate::host::{Problem, binfmt, probe};
use crate::process::programs::{self, Use};
use crate::recipe::plan::{Plan, RootfsSource};
use crate::recipe::plan_content::SourcePlan;
use crate::recipe::plan_firmware::FirmwareSource;
use crate::recipe::{self, model::FsKind};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const GIB: u64 = 1 << 30;

/// What building a set of recipes asks of this host.
#[derive(Debug, Default, Clone)]
pub struct Needs {
    pub uses: BTreeSet<Use>,
    /// Architectures of root file systems (checked against binfmt_misc when foreign).
    pub architectures: BTreeSet<String>,
    /// Directory → (bytes, for what): the most any one recipe needs there.
    pub disk: BTreeMap<PathBuf, (u64, String)>,
    /// Hosts contacted, each with the URL that first named it.
    pub hosts: BTreeMap<reach::Endpoint, HostUse>,
}

/// Why a host is contacted and how to do without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostUse {
    pub url: String,
    pub recipe: PathBuf,
    /// The `--set NAME=false` that leaves its source out, when the recipe has one.
    pub switch: Option<String>,
}

/// Where a build of the recipe writes: its output and cache directories.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub out: PathBuf,
    pub cache: PathBuf,
}

impl Needs {
    /// Adds one resolved recipe. `sets` are the `--set` pairs it was resolved with (the
    /// switches that leave a host out are found by resolving it again with more).
    /// `recipe` is the path as the user gave it (messages show it so).
    pub fn add(&mut self, recipe: &Path, resolved: &recipe::Resolved, dirs: &Dirs, sets: &[(String, String)]) {
        let plan = &resolved.plan;
        self.add_programs_and_disk(plan, dirs);
        let hosts = hosts_of(plan);
        let switches = switches(&plan.recipe_file, &plan.name, sets, &resolved.vars, &hosts);
        for (endpoint, url) in hosts {
            let switch = switches.get(&endpoint).cloned();
            self.hosts.entry(endpoint).or_insert(HostUse {
                url,
                recipe: recipe.to_path_buf(),
                switch,
            });
        }
    }

    fn add_programs_and_disk(&mut self, plan: &Plan, dirs: &Dirs) {
        let mut cache_need = 0;
        if let Some(RootfsSource::Bootstrap(b)) = &plan.rootfs {
            self.uses.insert(Use::Bootstrap);
            self.architectures.insert(b.architecture.clone());
            if !binfmt::is_native(&b.architecture) {
                self.uses.insert(Use::Foreign);
            }
            // The bootstrap's and the steps' archives, and mmdebstrap's .deb cache.
            cache_need += 4 * GIB;
        }
        if plan.partitions.iter().any(|p| p.filesystem == FsKind::Ext4) {
            self.uses.insert(Use::Ext4);
        }
        if plan.bootloader.as_ref().is_some_and(|b| b.bios.is_some()) {
            self.uses.insert(Use::Grub);
        }
        if plan
            .firmware
            .iter()
            .any(|f| matches!(f.source, FirmwareSource::Debian(_)))
        {
            self.uses.insert(Use::Firmware);
            // The unpacked source tree and its build (a cached build needs nothing).
            cache_need += GIB;
        }
        for s in plan.content.iter().flat_map(|c| &c.sources) {
            match s {
                SourcePlan::Git(_) => self.uses.insert(Use::Git),
                SourcePlan::Pypi(_) | SourcePlan::Pip(_) => self.uses.insert(Use::Pypi),
                SourcePlan::Npm(_) => self.uses.insert(Use::Npm),
                _ => false,
            };
            // The full mirrors (PyPI for every platform, CRAN's binaries) run to GBs.
            if matches!(s, SourcePlan::Pypi(_) | SourcePlan::Cran(_)) {
                cache_need += 8 * GIB;
            }
        }
        // A Debian server's raw image, its compressed copy and the staging copies of its
        // root archive; with mirrors, those too. Archives and directories given as the
        // root are as large as the user made them: no estimate (the build reports a full
        // disk as such).
        if cache_need > 0 {
            self.need_disk(&dirs.out, 2 * GIB + cache_need, format!("the image of {}", plan.name));
            self.need_disk(&dirs.cache, cache_need, format!("the stage cache of {}", plan.name));
        }
    }

    /// Recipes build one at a time: a directory needs what the largest asks for.
    fn need_disk(&mut self, dir: &Path, bytes: u64, what: String) {
        let e = self.disk.entry(dir.to_path_buf()).or_insert((0, String::new()));
        if bytes > e.0 {
            *e = (bytes, what);
        }
    }
}

/// Every host the plan contacts (after `content.fetch_from`), with the first URL naming it.
pub fn hosts_of(plan: &Plan) -> BTreeMap<reach::Endpoint, String> {
    let mut urls: Vec<String> = Vec::new();
    if let Some(RootfsSource::Bootstrap(b)) = &plan.rootfs {
        urls.push(b.mirror.clone());
        for s in &b.sources {
            urls.push(s.uris.clone());
            if let crate::recipe::plan_rootfs::KeyPlan::Url { url, .. } = &s.key {
                urls.push(url.clone());
            }
        }
    }
    for f in &plan.firmware {
        match &f.source {
            FirmwareSource::Debian(u) => urls.push(u.mirror.clone()),
            FirmwareSource::Url(files) => urls.extend(files.iter().map(|p| p.url.clone())),
        }
    }
    if let Some(c) = &plan.content {
        let client = crate::fetch::http::Client::new(c.fetch_from.clone());
        for s in &c.sources {
            let upstream: Vec<&str> = match s {
                SourcePlan::Pypi(p) => vec![&p.index_url],
                SourcePlan::Pip(p) => vec![&p.index_url],
                SourcePlan::Cran(p) => vec![&p.repo],
                SourcePlan::Site(p) => vec![&p.url],
                SourcePlan::Git(p) => vec![&p.url],
                SourcePlan::Npm(p) => vec![&p.registry],
                SourcePlan::File(f) => f
                    .url
                    .iter()
                    .chain(f.latest.iter().map(|(i, _)| i))
                    .map(String::as_str)
                    .collect(),
            };
            urls.extend(upstream.into_iter().map(|u| client.via(u)));
        }
    }
    let mut out = BTreeMap::new();
    for u in urls {
        if let Some(e) = reach::Endpoint::of(&u) {
            out.entry(e).or_insert(u);
        }
    }
    out
}

/// For each host, the recipe's boolean variable whose `--set NAME=false` leaves it out:
/// the recipe is resolved again with each switch off, and the switch that drops the
/// fewest other hosts names it (`gitea` for dl.gitea.com, `mirrors` for CRAN).
fn switches(
    recipe_file: &Path,
    image: &str,
    sets: &[(String, String)],
    vars: &serde_json::Map<String, serde_json::Value>,
    hosts: &BTreeMap<reach::Endpoint, String>,
) -> BTreeMap<reach::Endpoint, String> {
    let mut best: BTreeMap<reach::Endpoint, (usize, String)> = BTreeMap::new();
    for (name, value) in vars {
        if value != &serde_json::Value::Bool(true) || sets.iter().any(|(k, _)| k == name) {
            continue;
        }
        let mut with = sets.to_vec();
        with.push((name.clone(), "false".into()));
        // The same image of the recipe (one of its `images:`, or its only one).
        let Some(r) = recipe::resolve_all(recipe_file, &with)
            .ok()
            .and_then(|all| all.into_iter().find(|r| r.plan.name == image))
        else {
            continue;
        };
        let left = hosts_of(&r.plan);
        let dropped: Vec<_> = hosts.keys().filter(|h| !left.contains_key(h)).collect();
        for h in &dropped {
            let better = best.get(*h).is_none_or(|(n, _)| dropped.len() < *n);
            if better {
                best.insert((*h).clone(), (dropped.len(), format!("--set {name}=false")));
            }
        }
    }
    best.into_iter().map(|(h, (_, s))| (h, s)).collect()
}

/// The host checks: programs, binfmt, mke2fs reading tar, disk space (no network).
pub fn check_host(needs: &Needs) -> Vec<Problem> {
    let mut problems = Vec::new();
    for p in programs::all() {
        if p.used_by.iter().any(|u| needs.uses.contains(u))
            && let Err(e) = probe::program(p)
        {
            problems.push(e);
        }
    }
    let mut emulators = BTreeSet::new();
    for arch in &needs.architectures {
        // armel and armhf share one emulator: one line for both.
        if binfmt::is_native(arch) || !emulators.insert(binfmt::emulator(arch)) {
            continue;
        }
        if let Err(e) = binfmt::check(arch) {
            problems.push(e);
        }
    }
    let mke2fs_present = programs::locate("mke2fs").is_some();
    if needs.uses.contains(&Use::Ext4)
        && mke2fs_present
        && let Err(e) = probe::mke2fs_reads_tar()
    {
        problems.push(e);
    }
    for (dir, (bytes, what)) in &needs.disk {
        if let Err(e) = probe::disk_space(dir, *bytes, what) {
            problems.push(e);
        }
    }
    problems
}

/// The network check: each host the recipes contact answers a TCP connection within
/// `timeout`; the problem names the host, the URL and the switch that leaves it out.
pub fn check_network(needs: &Needs, timeout: std::time::Duration) -> Vec<Problem> {
    let endpoints: Vec<reach::Endpoint> = needs.hosts.keys().cloned().collect();
    let results = reach::probe_all(&endpoints, timeout);
    let mut problems = Vec::new();
    for (endpoint, result) in endpoints.iter().zip(results) {
        let Err(why) = result else { continue };
        let used = &needs.hosts[endpoint];
        let fix = match &used.switch {
            Some(s) => format!("build {} with `{s}` to leave it out", used.recipe.display()),
            None => format!(
                "make {} reachable from this host, or point the recipe at a mirror that is (see README, Offline builds)",
                endpoint.host
            ),
        };
        problems.push(Problem::new(
            format!("{} is unreachable ({why}), needed for {}", endpoint.host, used.url),
            fix,
        ));
    }
    problems
}

/// The recipes `imgbuild doctor` checks when none are named: every recipe under
/// `recipes/` that builds something.
pub fn default_recipes(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs_err::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
