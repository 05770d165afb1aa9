//! `imgbuild boot-test IMAGE`: boots a built image in QEMU with the kernel, initramfs and
//! device tree from its own boot partition, on a grown copy of the image (the image is
//! never modified), and checks that systemd reaches multi-user.target with no failed
//! unit and that the first boot grew the root partition and its file system.
//!
//! This file owns the sequence and the verdict; the parts are
//! - `config`: config.txt / cmdline.txt as the firmware reads them, and `root=`;
//! - `detect`: the kernel's architecture and the machine to boot it on;
//! - `disk`: the grown sparse copy and the probe written into it with debugfs;
//! - `probe`: the probe script/unit and the serial-log parser;
//! - `qemu`: QEMU's arguments and the watched QEMU process;
//! - `uboot`, `rockchip`, `extlinux`: a U-Boot board's image — static checks of its
//!   loaders and extlinux entry, and U-Boot built for QEMU booting that entry.

pub mod config;
pub mod detect;
pub mod disk;
pub mod extlinux;
pub mod http;
pub mod probe;
pub mod qemu;
pub mod rockchip;
pub mod uboot;

use crate::image::fs::fat::FatReader;
use crate::process::Cmd;
use crate::report::{Reporter, human_bytes, step};
use crate::verify::inspect::{FoundPartition, Inspection, inspect};
use anyhow::{Context, Result, anyhow, bail};
use config::FirmwareConfig;
use detect::Machine;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct BootOptions {
    /// `None` = choose from the image.
    pub machine: Option<Machine>,
    /// Give up (and stop QEMU) after this long.
    pub timeout: Duration,
    /// Keep the booted copy as `<image>.boot-test.img`.
    pub keep_copy: bool,
    /// Paths the guest's port 80 must answer with 200, checked from the host through a
    /// forwarded port once the probe has reported (empty: no network at all).
    pub http: Vec<String>,
    /// A simulated Wi-Fi radio in the guest (mac80211_hwsim, loaded in the copy).
    pub wifi_radio: bool,
    /// Units that must be active once start-up has finished.
    pub expect_active: Vec<String>,
    /// The stage cache (U-Boot for QEMU is built through it).
    pub cache_dir: PathBuf,
}

/// The checks beyond the boot itself, as the command line gives them.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub http: Vec<String>,
    pub wifi_radio: bool,
    pub expect_active: Vec<String>,
}

/// The user interrupted the test; QEMU was stopped and the copy removed.
#[derive(Debug, thiserror::Error)]
#[error("boot test interrupted; QEMU was stopped and the test copy removed")]
pub struct Interrupted;

impl crate::fault::Fault for Interrupted {
    fn kind(&self) -> crate::fault::Kind {
        crate::fault::Kind::Interrupted
    }
}

/// The image booted (or not) and missed a criterion; the hints say where to look.
#[derive(Debug, thiserror::Error)]
#[error("boot test failed: {}", .failures.join("; "))]
pub struct Failed {
    pub failures: Vec<String>,
    pub hints: Vec<String>,
}

impl crate::fault::Fault for Failed {
    fn kind(&self) -> crate::fault::Kind {
        crate::fault::Kind::Environment
    }
    fn hints(&self) -> Vec<String> {
        self.hints.clone()
    }
}

/// A root partition's size and its ext4 file system's size, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootSize {
    pub partition: u64,
    pub filesystem: Option<u64>,
}

/// The outcome of a boot test.
#[derive(Debug)]
pub struct BootReport {
    pub image: PathBuf,
    pub machine: Machine,
    /// Why this machine (auto) or "chosen with --machine".
    pub reason: String,
    pub image_size: u64,
    /// The `--http` checks, in the order asked.
    pub http: Vec<http::HttpCheck>,
    pub disk_size: u64,
    pub qemu_command: String,
    pub serial_log: PathBuf,
    pub kept_copy: Option<PathBuf>,
    pub ending: qemu::Ending,
    /// From QEMU's start to the probe's first line.
    pub to_probe: Option<Duration>,
    pub elapsed: Duration,
    pub probe: Option<probe::ProbeReport>,
    pub root_before: RootSize,
    pub root_after: Option<RootSize>,
    /// Every pass criterion that failed, one line each; empty = passed.
    pub failures: Vec<String>,
    /// Known failure signs found in the log.
    pub hints: Vec<String>,
    pub log_tail: String,
    /// Checks of the image made before booting it, that passed (a U-Boot board's loaders).
    pub checked: Vec<String>,
}

impl BootReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Lines of the serial log kept for the failure report.
const TAIL_LINES: usize = 40;

/// Boots `image` and judges the boot. Errors are problems running the test (a missing
/// file, tool or device tree); a boot that fails a criterion is a report with failures.
pub fn run(image: &Path, opts: &BootOptions, reporter: &dyn Reporter) -> Result<BootReport> {
    qemu::install_interrupt_flag();
    let before = inspect(image)?;
    let work = tempfile::Builder::new()
        .prefix("imgbuild-boot-test-")
        .tempdir()
        .context("creating a temporary directory")?;
    let Prepared {
        machine,
        reason,
        kernel,
        initrd,
        dtb,
        cmdline,
        root,
        bios,
        replace,
        checked,
    } = match pc_firmware(&before, opts.machine) {
        Some(m) => prepare_pc(image, &before, m, opts.machine.is_some())?,
        None if is_uboot_image(image, &before, opts.machine) => {
            let p = uboot::prepare(image, &before, &opts.cache_dir, work.path(), reporter)?;
            Prepared {
                machine: Machine::UbootVirt,
                reason: if opts.machine.is_some() {
                    "chosen with --machine".into()
                } else {
                    "an extlinux.conf for U-Boot and no PC boot partition: a U-Boot board, booted by U-Boot built for QEMU".into()
                },
                kernel: None,
                initrd: None,
                dtb: None,
                cmdline: String::new(),
                root: p.root,
                bios: Some(p.bios),
                replace: p.replace,
                checked: p.checked,
            }
        }
        None => prepare(image, &before, opts.machine, work.path())?,
    };
    let uefi = match qemu::ovmf_files(machine) {
        Some((code, vars)) => {
            for f in [code, vars] {
                if !Path::new(f).exists() {
                    bail!(missing_ovmf(f));
                }
            }
            let copy = work.path().join("OVMF_VARS.fd");
            fs_err::copy(vars, &copy)?;
            Some(qemu::Uefi {
                code: code.into(),
                vars: copy,
            })
        }
        None => None,
    };
    let root_before = RootSize {
        partition: root.size,
        filesystem: root.filesystem.size,
    };

    // The disk: a grown copy next to the image, with the probe in its root.
    let disk_size = disk::grown_size(before.size)
        .ok_or_else(|| anyhow!("cannot size a test disk for an image of {} bytes", before.size))?;
    let dir = image
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let copy = tempfile::Builder::new()
        .prefix(".imgbuild-boot-test-")
        .suffix(".img")
        .tempfile_in(dir)
        .with_context(|| format!("creating the test copy in {}", dir.display()))?;
    step(
        reporter,
        &format!("copy image ({} → {})", human_bytes(before.size), human_bytes(disk_size)),
        || disk::sparse_copy(image, copy.as_file(), disk_size, reporter),
    )?;
    let hold = !opts.http.is_empty();
    step(reporter, "write boot probe into the copy", || {
        disk::inject_probe(
            copy.path(),
            &root,
            work.path(),
            &disk::ProbeSetup {
                hold,
                tty: probe::console_of(machine),
                wifi_radio: opts.wifi_radio,
                units: &opts.expect_active,
            },
        )
    })?;
    if !replace.is_empty() {
        step(
            reporter,
            "drop the device-tree line from the copy's extlinux.conf",
            || disk::replace_files(copy.path(), &root, work.path(), &replace),
        )?;
    }
    let http_port = if hold {
        Some(http::free_port().context("finding a free port for QEMU's HTTP forward")?)
    } else {
        None
    };

    let serial_log = sidecar(image, "boot-test.log");
    let files = qemu::BootFiles {
        kernel,
        uefi,
        bios,
        initrd,
        dtb,
        cmdline,
        disk: copy.path().to_path_buf(),
        serial_log: serial_log.clone(),
        http_port,
    };
    let (program, args) = qemu::command(machine, &files);
    qemu::require(program)?;
    let qemu_command = Cmd::new(program).args(&args).to_string();
    reporter.detail(&qemu_command);
    let mut http_checks = Vec::new();
    let mut after_report = |port: u16| http_checks = http::check(port, &opts.http);
    let run = step(
        reporter,
        &format!("boot {machine} (up to {} s)", opts.timeout.as_secs()),
        || {
            let hook = http_port.map(|p| (p, &mut after_report as &mut dyn FnMut(u16)));
            qemu::run(program, &args, &serial_log, opts.timeout, hook)
        },
    )?;
    if run.ending == qemu::Ending::Interrupted {
        bail!(Interrupted);
    }

    let after = inspect(copy.path()).ok();
    let root_after = after.as_ref().and_then(|a| {
        a.partitions.iter().find(|p| p.number == root.number).map(|p| RootSize {
            partition: p.size,
            filesystem: p.filesystem.size,
        })
    });
    let probe = probe::parse(&run.log);
    let mut failures = checked.failures;
    failures.extend(judge(&run.ending, probe.as_ref(), root_before, root_after));
    if let Some(p) = probe.as_ref().filter(|p| p.complete) {
        failures.extend(firmware_failures(machine, p));
        if machine == Machine::UbootVirt && !uboot::booted_extlinux(&run.log) {
            failures.push(
                "U-Boot did not boot the image's extlinux entry (no `Booting bootflow … with extlinux` in the log)"
                    .into(),
            );
        }
        for unit in &opts.expect_active {
            let state = p.units.iter().find(|(u, _)| u == unit).map(|(_, s)| s.as_str());
            if state != Some("active") {
                failures.push(format!("{unit} is `{}`, not `active`", state.unwrap_or("not reported")));
            }
        }
    }
    for device in probe::device_timeouts(&run.log) {
        failures.push(format!(
            "the boot waited for the device `{device}` until it timed out: a unit that needs hardware the machine may lack must not hold up the boot"
        ));
    }
    if hold && probe.as_ref().is_some_and(|p| p.complete) {
        for c in http_checks.iter().filter(|c| !c.passed()) {
            failures.push(format!("http {}: {}", c.path, c.error.as_deref().unwrap_or("failed")));
        }
        if http_checks.iter().any(|c| c.status.is_none())
            && let Some(net) = probe::last_network(&run.log)
        {
            failures.push(format!("the guest's network, as it last reported it: {net}"));
        }
    }
    let kept_copy = if opts.keep_copy {
        let to = sidecar(image, "boot-test.img");
        copy.persist(&to)
            .map_err(|e| anyhow!("keeping the test copy as {}: {}", to.display(), e.error))?;
        Some(to)
    } else {
        None
    };
    Ok(BootReport {
        image: image.to_path_buf(),
        machine,
        reason,
        image_size: before.size,
        disk_size,
        qemu_command,
        serial_log,
        kept_copy,
        hints: hints(machine, &failures, &run.log),
        log_tail: probe::tail(&run.log, TAIL_LINES),
        ending: run.ending,
        to_probe: run.to_probe,
        elapsed: run.elapsed,
        probe,
        root_before,
        root_after,
        http: http_checks,
        failures,
        checked: checked.passed,
    })
}

/// The machine and what it boots, taken from the image's boot partition.
struct Prepared {
    machine: Machine,
    reason: String,
    /// `None`: the machine's firmware boots the disk.
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    dtb: Option<PathBuf>,
    cmdline: String,
    /// The partition `root=` names.
    root: FoundPartition,
    /// A boot loader QEMU starts (U-Boot for virt).
    bios: Option<PathBuf>,
    /// Files replaced in the copy before it boots.
    replace: Vec<(String, String)>,
    /// Checks of the image before the boot.
    checked: rockchip::Checked,
}

/// An image U-Boot boots by extlinux (a Rock board's): chosen with `--machine
/// u-boot-virt`, or found when no PC claims the image and its root has an
/// extlinux.conf (a Pi's firmware never reads one; a FAT partition beside it holds
/// settings, not a boot loader).
fn is_uboot_image(image: &Path, i: &Inspection, forced: Option<Machine>) -> bool {
    match forced {
        Some(m) => m == Machine::UbootVirt,
        None => rockchip::find_extlinux(image, i).is_some(),
    }
}

/// Reads config.txt and cmdline.txt, picks the machine (unless `forced`), and extracts
/// the kernel, initramfs and device tree it boots into `work`.
fn prepare(image: &Path, before: &Inspection, forced: Option<Machine>, work: &Path) -> Result<Prepared> {
    let boot_part = boot_partition(before).ok_or_else(|| anyhow!("{}: no FAT boot partition", image.display()))?;
    let file = fs_err::File::open(image)?.into_parts().0;
    let mut fat = FatReader::open(file, boot_part.start, boot_part.size)
        .with_context(|| format!("{}: reading the boot partition", image.display()))?;
    let names: Vec<String> = fat
        .list("")
        .context("listing the boot partition")?
        .into_iter()
        .filter(|e| !e.is_dir)
        .map(|e| e.name)
        .collect();
    let dtbs: Vec<String> = names
        .iter()
        .filter(|n| n.to_ascii_lowercase().ends_with(".dtb"))
        .cloned()
        .collect();
    let cfg = match fat.read_file("config.txt") {
        Ok(b) => FirmwareConfig::parse(&String::from_utf8_lossy(&b)),
        Err(_) => FirmwareConfig::default(),
    };
    let exists = |n: &str| names.iter().any(|m| m.eq_ignore_ascii_case(n));

    // The machine: from the kernel's header and the device trees, unless given.
    let first_kernel = cfg.kernel(None, &exists).ok_or_else(|| {
        anyhow!("config.txt names no kernel and none of the firmware's default kernel names is in the boot partition")
    })?;
    let mut kernel = extract(&mut fat, &first_kernel, work)?;
    // A compressed kernel needs more than its first bytes to show its header.
    let mut head = Vec::new();
    fs_err::File::open(&kernel)?.take(1 << 16).read_to_end(&mut head)?;
    let kind = detect::kernel_kind(&head);
    let (machine, reason) = match forced {
        Some(m) => {
            if kind != m.kernel_kind() {
                bail!(
                    "--machine {m} boots a {} but {first_kernel} is a {kind}",
                    m.kernel_kind()
                );
            }
            (m, format!("chosen with --machine ({kind} {first_kernel})"))
        }
        None => detect::choose(kind, &first_kernel, &dtbs).map_err(|e| anyhow!("{e}"))?,
    };

    // The files the firmware would load on that board (a `[pi3]` section may name
    // others than the unconditional lines).
    let model = Some(machine.model_filter());
    let kernel_name = cfg.kernel(model, &exists).unwrap_or(first_kernel.clone());
    if kernel_name != first_kernel {
        kernel = extract(&mut fat, &kernel_name, work)?;
    }
    let initrd = match cfg.initramfs(model, &kernel_name) {
        Some(n) => Some(extract(&mut fat, &n, work)?),
        None => None,
    };
    let dtb = match machine {
        Machine::Virt => None,
        m => {
            let name = detect::dtb_for(m, &dtbs).ok_or_else(|| {
                anyhow!(
                    "the boot partition has no device tree for {m} (found: {})",
                    dtbs.join(", ")
                )
            })?;
            let path = extract(&mut fat, &name, work)?;
            if m == Machine::Raspi0 {
                disable_pi0_watchdog(&path)?;
            }
            Some(path)
        }
    };
    let cmdline_file = cfg.cmdline_file(model);
    let mut cmdline = config::parse_cmdline(&String::from_utf8_lossy(&read_boot_file(&mut fat, &cmdline_file)?));
    if machine == Machine::Virt {
        // virt's serial port is a PL011; the Pi's console names mean nothing there.
        cmdline = config::replace_consoles(&cmdline, "ttyAMA0");
    }
    let root_spec = config::cmdline_param(&cmdline, "root")
        .ok_or_else(|| anyhow!("{cmdline_file} has no root= parameter: {cmdline}"))?;
    let root = config::root_partition(root_spec, &before.partitions)
        .ok_or_else(|| anyhow!("root={root_spec} in {cmdline_file} matches no partition of the image"))?
        .clone();
    if !root.filesystem.kind.starts_with("ext") {
        bail!(
            "root={root_spec} is partition {} with {}; boot-test needs an ext4 root",
            root.number,
            root.filesystem.kind
        );
    }
    Ok(Prepared {
        machine,
        reason,
        kernel: Some(kernel),
        initrd,
        dtb,
        cmdline,
        root,
        bios: None,
        replace: Vec::new(),
        checked: Default::default(),
    })
}

// GPT partition types only a PC's boot loaders use, as the recipe stage names them.
use crate::recipe::part_type::{GPT_BIOS_BOOT, GPT_ESP, GPT_ROOT_X86_64};

/// The PC machine to boot, when `forced` names one or the image is a PC's (a BIOS boot
/// partition, or an ESP with no Raspberry Pi config.txt beside it: UEFI then).
fn pc_firmware(i: &Inspection, forced: Option<Machine>) -> Option<Machine> {
    if let Some(m) = forced {
        return m.is_pc().then_some(m);
    }
    let has = |t: &str| i.partitions.iter().any(|p| p.kind == t);
    if has(GPT_ESP) {
        Some(Machine::PcUefi)
    } else if has(GPT_BIOS_BOOT) {
        Some(Machine::PcBios)
    } else {
        None
    }
}

/// A PC boots by its firmware from the image alone: nothing to extract; the probe goes
/// into the ext4 root (the x86-64 root type, else the first ext4 partition).
fn prepare_pc(image: &Path, before: &Inspection, machine: Machine, forced: bool) -> Result<Prepared> {
    let ext4 = |p: &&FoundPartition| p.filesystem.kind.starts_with("ext");
    let root = before
        .partitions
        .iter()
        .filter(ext4)
        .find(|p| p.kind == GPT_ROOT_X86_64)
        .or_else(|| before.partitions.iter().find(ext4))
        .ok_or_else(|| anyhow!("{}: no ext4 root partition to boot", image.display()))?
        .clone();
    let reason = if forced {
        "chosen with --machine".to_string()
    } else {
        "a GPT with an EFI system partition: a PC booted by UEFI (--machine pc-bios or pc-secure-boot for the others)"
            .to_string()
    };
    Ok(Prepared {
        machine,
        reason,
        kernel: None,
        initrd: None,
        dtb: None,
        cmdline: String::new(),
        root,
        bios: None,
        replace: Vec::new(),
        checked: Default::default(),
    })
}

fn missing_ovmf(file: &str) -> anyhow::Error {
    anyhow!("the UEFI firmware {file} is missing; install Debian's OVMF with `apt-get install ovmf`")
}

/// What the guest said of its firmware against what the machine promised: a pass on
/// pc-secure-boot needs Secure Boot reported on, so a firmware that skipped it fails.
pub fn firmware_failures(machine: Machine, p: &probe::ProbeReport) -> Vec<String> {
    let want = match machine {
        Machine::PcBios => "bios",
        Machine::PcUefi => "uefi",
        Machine::PcSecureBoot => "uefi secure-boot",
        _ => return Vec::new(),
    };
    if p.firmware == want {
        Vec::new()
    } else {
        vec![format!(
            "the guest booted by `{}`, not `{want}` as {machine} should",
            if p.firmware.is_empty() {
                "an unreported firmware"
            } else {
                &p.firmware
            }
        )]
    }
}

/// The pass criteria; each failed one as a line.
pub fn judge(
    ending: &qemu::Ending,
    probe: Option<&probe::ProbeReport>,
    before: RootSize,
    after: Option<RootSize>,
) -> Vec<String> {
    let mut f = Vec::new();
    let why_no_report = || match ending {
        qemu::Ending::TimedOut => "the time limit passed first".to_string(),
        qemu::Ending::Stuck(why) => format!("{why}; stopped QEMU"),
        qemu::Ending::Exited { status, stderr } if stderr.is_empty() => {
            format!("QEMU exited ({status}) first")
        }
        qemu::Ending::Exited { status, stderr } => {
            format!("QEMU exited ({status}) first: {stderr}")
        }
        qemu::Ending::Interrupted => "interrupted".to_string(),
        qemu::Ending::Reported => "its report is incomplete".to_string(),
    };
    match probe {
        Some(p) if p.complete => {
            if p.multi_user != "active" {
                f.push(format!("multi-user.target is `{}`, not `active`", p.multi_user));
            }
            if !p.failed_units.is_empty() {
                f.push(format!("failed units: {}", p.failed_units.join(", ")));
            }
            if p.state != "running" {
                f.push(format!("systemd's state is `{}`, not `running`", p.state));
            }
        }
        Some(_) => f.push(format!("the boot probe's report is incomplete ({})", why_no_report())),
        None => f.push(format!(
            "systemd never finished starting up: the boot probe did not report ({})",
            why_no_report()
        )),
    }
    match after {
        None => f.push("the booted copy could not be inspected".to_string()),
        Some(a) => {
            if a.partition <= before.partition {
                f.push(format!(
                    "the root partition did not grow ({} → {} bytes)",
                    before.partition, a.partition
                ));
            }
            match (before.filesystem, a.filesystem) {
                (Some(b), Some(x)) if x > b => {}
                (b, x) => f.push(format!(
                    "the root file system did not grow ({} → {} bytes)",
                    b.map_or("?".into(), |v| v.to_string()),
                    x.map_or("?".into(), |v| v.to_string())
                )),
            }
        }
    }
    f
}

/// Renders the report for people.
pub fn render(r: &BootReport) -> String {
    let size = |s: Option<u64>| s.map_or("?".to_string(), human_bytes);
    let mut s = format!("boot-test {}\n", r.image.display());
    s.push_str(&format!("machine:     {} — {}\n", r.machine, r.reason));
    s.push_str(&format!("proves:      {}\n", r.machine.proves()));
    s.push_str(&format!("not proven:  {}\n", r.machine.does_not_prove()));
    for c in &r.checked {
        s.push_str(&format!("checked:     {c}\n"));
    }
    s.push_str(&format!(
        "disk:        a copy grown from {} to {}\n",
        human_bytes(r.image_size),
        human_bytes(r.disk_size)
    ));
    match &r.probe {
        Some(p) if p.complete => {
            let uptime = p.uptime.map_or("?".into(), |u| format!("{u:.1} s"));
            let wall = r.to_probe.map_or("?".into(), |d| format!("{:.1} s", d.as_secs_f64()));
            s.push_str(&format!(
                "multi-user:  {} after {uptime} of guest uptime ({wall} from QEMU's start)\n",
                p.multi_user
            ));
            if !p.analyze.is_empty() {
                s.push_str(&format!("systemd:     {}\n", p.analyze));
            }
            for (unit, state) in &p.units {
                s.push_str(&format!("unit:        {unit} {state}\n"));
            }
            if !p.firmware.is_empty() && r.machine.is_pc() {
                let kernel = if p.secure_boot_kernel.is_empty() {
                    String::new()
                } else {
                    format!(" (kernel: {})", p.secure_boot_kernel)
                };
                s.push_str(&format!("firmware:    {}{kernel}\n", p.firmware));
            }
            s.push_str(&format!(
                "failed:      {}\n",
                if p.failed_units.is_empty() {
                    "none".to_string()
                } else {
                    p.failed_units.join(", ")
                }
            ));
        }
        _ => s.push_str("multi-user:  not reported\n"),
    }
    let b = r.root_before;
    match r.root_after {
        Some(a) => s.push_str(&format!(
            "root:        partition {} → {}, ext4 {} → {}\n",
            human_bytes(b.partition),
            human_bytes(a.partition),
            size(b.filesystem),
            size(a.filesystem)
        )),
        None => s.push_str(&format!(
            "root:        partition {}, ext4 {} (after: unknown)\n",
            human_bytes(b.partition),
            size(b.filesystem)
        )),
    }
    if let Some(p) = r.probe.as_ref().filter(|p| p.complete) {
        s.push_str(&format!(
            "  in guest:  {} partition {}, file system {} (df)\n",
            p.root_dev,
            size(p.root_part_bytes),
            size(p.root_fs_bytes)
        ));
    }
    for c in &r.http {
        let status = c.status.map_or("no answer".to_string(), |s| format!("HTTP {s}"));
        s.push_str(&format!(
            "http:        {} → {status}, {}\n",
            c.path,
            human_bytes(c.bytes)
        ));
    }
    s.push_str(&format!("time:        {:.1} s in QEMU\n", r.elapsed.as_secs_f64()));
    s.push_str(&format!("serial log:  {}\n", r.serial_log.display()));
    if let Some(k) = &r.kept_copy {
        s.push_str(&format!("booted copy: {}\n", k.display()));
    }
    if r.passed() {
        s.push_str("result:      PASS\n");
    } else {
        s.push_str("result:      FAIL\n");
        for f in &r.failures {
            s.push_str(&format!("  - {f}\n"));
        }
    }
    s
}

/// Known failure signs in the log, with what they mean on this machine.
fn hints(machine: Machine, failures: &[String], log: &str) -> Vec<String> {
    if failures.is_empty() {
        return Vec::new();
    }
    let mut h = probe::hints(log);
    if machine == Machine::Virt && log.contains("Gave up waiting for root") {
        h.push(
            "on virt the disk is virtio: the initramfs needs virtio_pci and virtio_blk \
             (add them to /etc/initramfs-tools/modules with MODULES=list)"
                .to_string(),
        );
    }
    h
}

/// The first FAT partition, preferring a bootable one.
fn boot_partition(i: &Inspection) -> Option<&FoundPartition> {
    let fat = |p: &&FoundPartition| p.filesystem.kind.starts_with("vfat");
    i.partitions
        .iter()
        .filter(fat)
        .find(|p| p.bootable)
        .or_else(|| i.partitions.iter().find(fat))
}

fn read_boot_file(fat: &mut FatReader, name: &str) -> Result<Vec<u8>> {
    fat.read_file(name)
        .map_err(|e| anyhow!("reading {name} from the boot partition: {e}"))
}

/// Extracts a file of the boot partition into `dir` (flat: names in config.txt may
/// not contain directories the firmware would accept anyway).
fn extract(fat: &mut FatReader, name: &str, dir: &Path) -> Result<PathBuf> {
    let base = Path::new(name)
        .file_name()
        .ok_or_else(|| anyhow!("`{name}` is not a file name"))?;
    let path = dir.join(base);
    fs_err::write(&path, read_boot_file(fat, name)?)?;
    Ok(path)
}

/// QEMU does not emulate the BCM2835 power-management/watchdog block, and the Pi Zero
/// kernel crashes probing it; the test copy of the DTB (never the image's) disables it.
fn disable_pi0_watchdog(dtb: &Path) -> Result<()> {
    Cmd::new("fdtput")
        .args(["-t", "s"])
        .arg(dtb)
        .args(["/soc/watchdog@7e100000", "status", "disabled"])
        .run()
        .context("disabling the watchdog node in the test copy of the Pi Zero DTB")?;
    Ok(())
}

/// `<image>.<suffix>`, next to the image.
fn sidecar(image: &Path, suffix: &str) -> PathBuf {
    let mut s = image.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}
