//! Running QEMU: the argument vector for each machine (pure, tested), and the one
//! long-running child process of imgbuild, watched until the probe has reported and the
//! guest powered off, the time limit passes, or the user interrupts — and always
//! killed and reaped before this returns, so no QEMU outlives a test.

use super::detect::Machine;
use super::probe;
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What QEMU boots: files extracted from the image's boot partition and the disk copy.
#[derive(Debug, Clone)]
pub struct BootFiles {
    /// The kernel QEMU loads itself (the Pis, virt); `None` on a PC, whose firmware
    /// boots the disk.
    pub kernel: Option<PathBuf>,
    /// A PC's UEFI firmware: OVMF's code and a copy of its variable store.
    pub uefi: Option<Uefi>,
    /// A boot loader QEMU starts instead of a kernel (`-bios`: U-Boot for virt).
    pub bios: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub dtb: Option<PathBuf>,
    pub cmdline: String,
    pub disk: PathBuf,
    pub serial_log: PathBuf,
    /// Forward this localhost port to the guest's port 80 (user-mode networking).
    pub http_port: Option<u16>,
}

/// OVMF's two flash images.
#[derive(Debug, Clone)]
pub struct Uefi {
    pub code: PathBuf,
    /// A writable copy (the firmware keeps its boot entries there).
    pub vars: PathBuf,
}

/// Debian's OVMF (package ovmf): plain, and with Secure Boot whose variable store has
/// Microsoft's keys enrolled (what laptops ship with, and what Debian's shim is signed by).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
pub const OVMF_SECBOOT_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";
pub const OVMF_MS_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";

/// The OVMF files for `machine` (code, variable store to copy); `None` for BIOS.
pub fn ovmf_files(machine: Machine) -> Option<(&'static str, &'static str)> {
    match machine {
        Machine::PcUefi => Some((OVMF_CODE, OVMF_VARS)),
        Machine::PcSecureBoot => Some((OVMF_SECBOOT_CODE, OVMF_MS_VARS)),
        _ => None,
    }
}

/// QEMU's `-opt key=value,...` syntax doubles commas inside a value.
fn escape(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

/// The QEMU program and arguments that boot `files` on `machine`. Every serial port
/// goes to the one log through a multiplexed chardev, so the console is captured
/// whichever UART the image's cmdline names (the Pi 3's mini UART is the second port).
pub fn command(machine: Machine, files: &BootFiles) -> (&'static str, Vec<OsString>) {
    if machine.is_pc() {
        return ("qemu-system-x86_64", pc_command(machine, files));
    }
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |v: &[&str]| a.extend(v.iter().map(OsString::from));
    let program = match machine {
        Machine::Raspi3b => {
            push(&["-M", "raspi3b"]);
            "qemu-system-aarch64"
        }
        Machine::Raspi0 => {
            push(&["-M", "raspi0"]);
            "qemu-system-arm"
        }
        Machine::Virt | Machine::UbootVirt => {
            push(&["-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "2048"]);
            "qemu-system-aarch64"
        }
        Machine::PcBios | Machine::PcUefi | Machine::PcSecureBoot => unreachable!("handled above"),
    };
    if let Some(b) = &files.bios {
        a.push("-bios".into());
        a.push(b.clone().into_os_string());
    }
    if let Some(k) = &files.kernel {
        a.push("-kernel".into());
        a.push(k.clone().into_os_string());
    }
    if let Some(i) = &files.initrd {
        a.push("-initrd".into());
        a.push(i.clone().into_os_string());
    }
    if let Some(d) = &files.dtb {
        a.push("-dtb".into());
        a.push(d.clone().into_os_string());
    }
    if files.kernel.is_some() {
        a.push("-append".into());
        a.push(files.cmdline.clone().into());
    }
    let disk = escape(&files.disk);
    match machine {
        Machine::Raspi3b | Machine::Raspi0 => {
            a.push("-drive".into());
            a.push(format!("file={disk},if=sd,format=raw").into());
            // The emulated Pis have no Ethernet of their own: a USB network adapter.
            if let Some(port) = files.http_port {
                a.push("-netdev".into());
                a.push(format!("user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:80").into());
                a.push("-device".into());
                a.push("usb-net,netdev=net0".into());
            }
        }
        Machine::Virt | Machine::UbootVirt => {
            a.push("-drive".into());
            a.push(format!("file={disk},if=none,format=raw,id=disk0").into());
            a.push("-device".into());
            a.push("virtio-blk-pci,drive=disk0".into());
            // No network unless HTTP is checked: QEMU's default NIC would add a device
            // the image's units may wait for.
            a.push("-nic".into());
            match files.http_port {
                Some(port) => a.push(format!("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:80").into()),
                None => a.push("none".into()),
            }
        }
        Machine::PcBios | Machine::PcUefi | Machine::PcSecureBoot => unreachable!("handled above"),
    }
    a.push("-chardev".into());
    a.push(format!("file,id=serial,path={},mux=on", escape(&files.serial_log)).into());
    let ports = if matches!(machine, Machine::Virt | Machine::UbootVirt) {
        1
    } else {
        2
    };
    for _ in 0..ports {
        a.push("-serial".into());
        a.push("chardev:serial".into());
    }
    for w in ["-display", "none", "-monitor", "none", "-no-reboot"] {
        a.push(w.into());
    }
    (program, a)
}

/// A PC booting the disk by its firmware alone, the disk a USB stick on an xHCI
/// controller (as on the laptop). Emulated (TCG), never KVM: a nested KVM that exists
/// but cannot run OVMF stops the guest with an internal error instead of falling back.
fn pc_command(machine: Machine, files: &BootFiles) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |v: &[&str]| a.extend(v.iter().map(|s| OsString::from(*s)));
    // Secure Boot needs SMM, so the variable store is only writable by the firmware.
    let q35 = if machine == Machine::PcSecureBoot {
        "q35,smm=on"
    } else {
        "q35"
    };
    push(&[
        "-machine",
        q35,
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-m",
        "2048",
        "-smp",
        "2",
    ]);
    if machine == Machine::PcSecureBoot {
        push(&[
            "-global",
            "driver=cfi.pflash01,property=secure,value=on",
            "-global",
            "ICH9-LPC.disable_s3=1",
        ]);
    }
    if let Some(u) = &files.uefi {
        a.push("-drive".into());
        a.push(format!("if=pflash,format=raw,unit=0,readonly=on,file={}", escape(&u.code)).into());
        a.push("-drive".into());
        a.push(format!("if=pflash,format=raw,unit=1,file={}", escape(&u.vars)).into());
    }
    a.push("-drive".into());
    a.push(format!("file={},if=none,format=raw,id=stick", escape(&files.disk)).into());
    a.extend(
        [
            "-device",
            "qemu-xhci,id=xhci",
            "-device",
            "usb-storage,bus=xhci.0,drive=stick,bootindex=1",
        ]
        .map(OsString::from),
    );
    // Two Ethernet ports, as on a PC with a dock: the first the uplink the host reaches
    // the guest's port 80 through, the second (isolated) the learners' network the
    // image chooses at boot when no Wi-Fi card can be an access point.
    match files.http_port {
        Some(port) => a.extend(
            // Fixed PCI slots, so the kernel's names sort the uplink first (enp0s16, enp0s17).
            [
                "-netdev".to_string(),
                format!("user,id=uplink,hostfwd=tcp:127.0.0.1:{port}-:80"),
                "-device".to_string(),
                "e1000,netdev=uplink,addr=0x10".to_string(),
                "-netdev".to_string(),
                "user,id=learners,restrict=on".to_string(),
                "-device".to_string(),
                "e1000,netdev=learners,addr=0x11".to_string(),
            ]
            .map(OsString::from),
        ),
        None => a.extend(["-nic", "none"].map(OsString::from)),
    }
    a.push("-chardev".into());
    a.push(format!("file,id=serial,path={}", escape(&files.serial_log)).into());
    a.extend(
        [
            "-serial",
            "chardev:serial",
            "-display",
            "none",
            "-vga",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ]
        .map(OsString::from),
    );
    a
}

/// How a QEMU run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The probe reported and the guest powered off (QEMU exited or was stopped after).
    Reported,
    /// QEMU exited on its own before the probe reported.
    Exited { status: String, stderr: String },
    /// The boot stopped for good before the probe reported (why, from the log).
    Stuck(&'static str),
    /// The time limit passed.
    TimedOut,
    /// The user interrupted (Ctrl-C, SIGTERM).
    Interrupted,
}

/// The outcome of a run: how it ended, the serial log, and how long after QEMU started
/// the probe began reporting.
#[derive(Debug)]
pub struct Run {
    pub ending: Ending,
    pub log: String,
    pub to_probe: Option<Duration>,
    pub elapsed: Duration,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Ctrl-C and SIGTERM set a flag the watch loop sees, so QEMU is killed and the copy
/// removed before imgbuild exits. (A handler may already be installed, e.g. by a test
/// harness; then the default handling stays, and QEMU still dies with us, below.)
pub fn install_interrupt_flag() {
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
}

/// After the probe's report, how long to wait for the guest to power off and QEMU to
/// exit; a raspi0 with its watchdog disabled halts but cannot switch off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(120);
/// After the log shows the boot is stuck, how long to keep reading it (the lines after
/// a panic or an initramfs error say why).
const STUCK_GRACE: Duration = Duration::from_secs(5);
/// After the kernel says it powers off, how long before QEMU is stopped.
const POWEROFF_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(250);

/// Runs QEMU and watches the serial log until one of the endings; QEMU is never left
/// running.
/// `after_report`: (forwarded port, checks to run once the probe has reported, while the
/// guest holds; QEMU is stopped when they return).
pub fn run(
    program: &str,
    args: &[OsString],
    log_path: &Path,
    timeout: Duration,
    after_report: Option<(u16, &mut dyn FnMut(u16))>,
) -> Result<Run> {
    fs_err::write(log_path, b"")?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches only imgbuild, which then
        // stops QEMU itself, in order.
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // prctl(2), which is async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            // If imgbuild dies (even by SIGKILL), the kernel kills QEMU too.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(crate::process::ProcessError::NotFound {
                program: program.to_string(),
            }
            .into());
        }
        Err(e) => return Err(e).with_context(|| format!("starting {program}")),
    };
    let mut stderr_pipe = child.stderr.take();
    let stderr_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = stderr_pipe.as_mut() {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let watched = watch(&mut child, log_path, timeout, started, after_report);
    // Whatever happened, QEMU is gone before we go on.
    let exit = match child.try_wait() {
        Ok(Some(status)) => Some(status),
        _ => {
            let _ = child.kill();
            child.wait().ok()
        }
    };
    let stderr = stderr_thread.join().unwrap_or_default();
    let (mut ending, to_probe) = watched?;
    if let Ending::Exited { status, stderr: e } = &mut ending {
        *status = exit.map_or("unknown status".into(), |s| s.to_string());
        *e = String::from_utf8_lossy(&stderr).trim().to_string();
    }
    let log = String::from_utf8_lossy(&fs_err::read(log_path)?).into_owned();
    Ok(Run {
        ending,
        log,
        to_probe,
        elapsed: started.elapsed(),
    })
}

/// Polls QEMU and the log. Returns how the run ended and when the probe began.
fn watch(
    child: &mut Child,
    log_path: &Path,
    timeout: Duration,
    started: Instant,
    mut after_report: Option<(u16, &mut dyn FnMut(u16))>,
) -> Result<(Ending, Option<Duration>)> {
    let mut log = Vec::new();
    let mut file = fs_err::File::open(log_path)?;
    let mut to_probe = None;
    let mut reported_at: Option<Instant> = None;
    let mut off_at: Option<Instant> = None;
    let mut stuck: Option<(Instant, &'static str)> = None;
    loop {
        // Read what QEMU appended since the last poll.
        file.read_to_end(&mut log).context("reading the serial log")?;
        let text = String::from_utf8_lossy(&log);
        if to_probe.is_none() && text.contains(&format!("{}begin", probe::MARKER)) {
            to_probe = Some(started.elapsed());
        }
        let reported = probe::parse(&text).is_some_and(|r| r.complete);
        if reported && reported_at.is_none() {
            reported_at = Some(Instant::now());
            // The guest holds after its report (the probe waits): check it now, then
            // stop QEMU; the copy is thrown away.
            if let Some((port, checks)) = after_report.take() {
                checks(port);
                return Ok((Ending::Reported, to_probe));
            }
        }
        if reported && off_at.is_none() && probe::powered_off(&text) {
            off_at = Some(Instant::now());
        }
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            return Ok(if reported {
                (Ending::Reported, to_probe)
            } else {
                (
                    Ending::Exited {
                        status: status.to_string(),
                        stderr: String::new(),
                    },
                    to_probe,
                )
            });
        }
        if !reported && stuck.is_none() {
            stuck = probe::stuck(&text).map(|why| (Instant::now(), why));
        }
        if let Some((at, why)) = stuck
            && at.elapsed() >= STUCK_GRACE
        {
            return Ok((Ending::Stuck(why), to_probe));
        }
        if off_at.is_some_and(|t| t.elapsed() >= POWEROFF_GRACE)
            || reported_at.is_some_and(|t| t.elapsed() >= SHUTDOWN_GRACE)
        {
            return Ok((Ending::Reported, to_probe));
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Ok((Ending::Interrupted, to_probe));
        }
        if started.elapsed() >= timeout {
            return Ok((Ending::TimedOut, to_probe));
        }
        std::thread::sleep(POLL);
    }
}

/// Fails early, with the package to install, when the QEMU program is missing.
pub fn require(program: &str) -> Result<()> {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    if !found {
        bail!(crate::process::ProcessError::NotFound {
            program: program.to_string()
        });
    }
    Ok(())
}
