//! `imgbuild boot-test`: the pure parts (config.txt/cmdline.txt, kernel headers and
//! machine choice, disk sizing, QEMU arguments, serial-log parsing, the verdict), the
//! command driven against a stand-in QEMU (a script that writes a serial log, or hangs),
//! and — ignored by default, minutes long — real boots of real Debian images:
//! `IMGBUILD_BOOT_IMAGE=path/to.img cargo test -- --ignored boot`.

use crate::common::*;
use imgbuild::verify::boot::config::{self, FirmwareConfig};
use imgbuild::verify::boot::detect::{self, KernelKind, Machine};
use imgbuild::verify::boot::probe;
use imgbuild::verify::boot::qemu::{self, BootFiles, Ending};
use imgbuild::verify::boot::{RootSize, disk, judge};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

// ---- config.txt and cmdline.txt ----

const DEBIAN_CONFIG: &str = "# Do not modify this file!\n\narm_64bit=1\n\nenable_uart=1\nupstream_kernel=1\n\nkernel=vmlinuz-6.1.0-50-arm64\n# For details on the initramfs directive, see\ninitramfs initrd.img-6.1.0-50-arm64\n";

#[test]
fn config_txt_from_debian_raspi_firmware() {
    let c = FirmwareConfig::parse(DEBIAN_CONFIG);
    let none = |_: &str| false;
    assert_eq!(c.kernel(None, &none).as_deref(), Some("vmlinuz-6.1.0-50-arm64"));
    assert_eq!(
        c.initramfs(None, "vmlinuz-6.1.0-50-arm64").as_deref(),
        Some("initrd.img-6.1.0-50-arm64")
    );
    assert_eq!(c.cmdline_file(None), "cmdline.txt");
}

#[test]
fn config_txt_sections_apply_only_to_their_board() {
    let c = FirmwareConfig::parse(
        "kernel=a.img\n[pi4]\nkernel=b.img\n[pi3]\nkernel=c.img\ncmdline=pi3.txt\n[all]\ninitramfs x followkernel\n[gpio4=1]\nkernel=d.img\n",
    );
    let none = |_: &str| false;
    assert_eq!(c.kernel(None, &none).as_deref(), Some("a.img"));
    assert_eq!(c.kernel(Some("pi3"), &none).as_deref(), Some("c.img"));
    assert_eq!(c.kernel(Some("pi4"), &none).as_deref(), Some("b.img"));
    assert_eq!(c.cmdline_file(Some("pi3")), "pi3.txt");
    assert_eq!(c.cmdline_file(None), "cmdline.txt");
    assert_eq!(c.initramfs(Some("pi3"), "c.img").as_deref(), Some("x"));
}

#[test]
fn config_txt_firmware_defaults_and_auto_initramfs() {
    let c = FirmwareConfig::parse("arm_64bit=1\nauto_initramfs=1\n");
    let has = |n: &str| n == "kernel8.img";
    assert_eq!(c.kernel(Some("pi3"), &has).as_deref(), Some("kernel8.img"));
    assert_eq!(c.initramfs(None, "kernel8.img").as_deref(), Some("initramfs8"));
    assert_eq!(c.initramfs(None, "kernel_2712.img").as_deref(), Some("initramfs_2712"));
    let c = FirmwareConfig::parse("");
    let has = |n: &str| n == "kernel.img";
    assert_eq!(c.kernel(Some("pi0"), &has).as_deref(), Some("kernel.img"));
    assert_eq!(c.kernel(None, &|_| false), None);
    assert_eq!(c.initramfs(None, "kernel.img"), None);
}

#[test]
fn cmdline_txt_is_one_line_and_root_is_found() {
    let line = config::parse_cmdline(" console=tty0 console=ttyS1,115200 root=PARTUUID=7e57b007-02 rw  rootwait \n");
    assert_eq!(
        line,
        "console=tty0 console=ttyS1,115200 root=PARTUUID=7e57b007-02 rw rootwait"
    );
    assert_eq!(config::cmdline_param(&line, "root"), Some("PARTUUID=7e57b007-02"));
    assert_eq!(config::cmdline_param(&line, "console"), Some("ttyS1,115200"));
    assert_eq!(config::cmdline_param(&line, "init"), None);
    assert_eq!(
        config::replace_consoles(&line, "ttyAMA0"),
        "root=PARTUUID=7e57b007-02 rw rootwait console=ttyAMA0"
    );
}

fn part(number: u32, partuuid: &str, uuid: &str, label: &str) -> imgbuild::verify::inspect::FoundPartition {
    imgbuild::verify::inspect::FoundPartition {
        number,
        start: 0,
        size: 0,
        kind: "0x83".into(),
        bootable: false,
        name: None,
        partuuid: partuuid.into(),
        filesystem: imgbuild::verify::probe::FsInfo {
            kind: "ext4".into(),
            label: Some(label.into()),
            uuid: Some(uuid.into()),
            size: None,
            used: None,
        },
    }
}

#[test]
fn root_partition_by_partuuid_uuid_label_or_device() {
    let parts = [
        part(1, "7e57b007-01", "7C06-C146", "BOOT"),
        part(2, "7e57b007-02", "98ad3d88-a307", "root"),
    ];
    let n = |r: &str| config::root_partition(r, &parts).map(|p| p.number);
    assert_eq!(n("PARTUUID=7E57B007-02"), Some(2));
    assert_eq!(n("UUID=98ad3d88-a307"), Some(2));
    assert_eq!(n("LABEL=BOOT"), Some(1));
    assert_eq!(n("/dev/mmcblk0p2"), Some(2));
    assert_eq!(n("/dev/sda1"), Some(1));
    assert_eq!(n("PARTUUID=deadbeef-02"), None);
    assert_eq!(n("/dev/root"), None);
}

// ---- kernels and machines ----

fn arm64_image() -> Vec<u8> {
    let mut k = vec![0u8; 128];
    k[56..60].copy_from_slice(b"ARM\x64");
    k
}

fn arm_zimage() -> Vec<u8> {
    let mut k = vec![0u8; 128];
    k[36..40].copy_from_slice(&0x016f_2818u32.to_le_bytes());
    k
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn kernel_headers_give_the_architecture() {
    assert_eq!(detect::kernel_kind(&arm64_image()), KernelKind::Arm64);
    assert_eq!(detect::kernel_kind(&arm_zimage()), KernelKind::Arm32);
    assert_eq!(detect::kernel_kind(&[0u8; 128]), KernelKind::Unknown);
    assert_eq!(detect::kernel_kind(b"short"), KernelKind::Unknown);
    // A gzip-compressed Image (Image.gz) is looked into.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &arm64_image()).unwrap();
    assert_eq!(detect::kernel_kind(&gz.finish().unwrap()), KernelKind::Arm64);
}

#[test]
fn machine_follows_kernel_and_device_trees() {
    let pi4 = names(&[
        "bcm2711-rpi-4-b.dtb",
        "bcm2837-rpi-3-b-plus.dtb",
        "bcm2837-rpi-3-b.dtb",
        "bcm2837-rpi-zero-2-w.dtb",
    ]);
    let (m, why) = detect::choose(KernelKind::Arm64, "vmlinuz-6.1.0-50-arm64", &pi4).unwrap();
    assert_eq!(m, Machine::Raspi3b);
    assert!(why.contains("bcm2837-rpi-3-b.dtb"), "{why}");
    assert_eq!(
        detect::dtb_for(Machine::Raspi3b, &pi4).as_deref(),
        Some("bcm2837-rpi-3-b.dtb"),
        "the Pi 3 B tree, not the 3 B+ one that sorts first"
    );

    let pi5 = names(&["bcm2712-rpi-5-b.dtb", "bcm2712d0-rpi-5-b.dtb"]);
    let (m, _) = detect::choose(KernelKind::Arm64, "vmlinuz-6.16-arm64", &pi5).unwrap();
    assert_eq!(m, Machine::Virt);
    assert_eq!(detect::dtb_for(Machine::Virt, &pi5), None);
    // Debian trixie's kernel ships every Pi's trees: virt, and the way to a Pi 3 boot.
    let every: Vec<String> = pi4.iter().chain(&pi5).cloned().collect();
    let (m, why) = detect::choose(KernelKind::Arm64, "vmlinuz-6.12.117+deb13-arm64", &every).unwrap();
    assert_eq!(m, Machine::Virt);
    assert!(why.contains("--machine raspi3b"), "{why}");

    let zero = names(&["bcm2835-rpi-zero-w.dtb", "bcm2835-rpi-zero.dtb", "bcm2835-rpi-b.dtb"]);
    let (m, _) = detect::choose(KernelKind::Arm32, "vmlinuz-6.1.0-50-rpi", &zero).unwrap();
    assert_eq!(m, Machine::Raspi0);
    assert_eq!(
        detect::dtb_for(Machine::Raspi0, &zero).as_deref(),
        Some("bcm2835-rpi-zero.dtb")
    );

    let err = detect::choose(KernelKind::Arm64, "k", &names(&["bcm2711-rpi-4-b.dtb"])).unwrap_err();
    assert!(err.contains("--machine virt"), "{err}");
    let err = detect::choose(KernelKind::Arm32, "k", &pi4).unwrap_err();
    assert!(err.contains("no Pi Zero device tree"), "{err}");
    assert!(detect::choose(KernelKind::Unknown, "k", &pi4).is_err());
}

// ---- disk size and QEMU arguments ----

#[test]
fn copy_size_is_a_power_of_two_at_least_twice_the_image() {
    assert_eq!(disk::grown_size(1_143_996_416), Some(4 << 30));
    assert_eq!(disk::grown_size(1 << 30), Some(2 << 30));
    assert_eq!(disk::grown_size((1 << 30) + 1), Some(4 << 30));
    assert_eq!(disk::grown_size(1), Some(2));
    assert_eq!(disk::grown_size(0), None);
    assert_eq!(disk::grown_size(u64::MAX / 2 + 2), None);
    for n in [3u64, 1000, 123_456_789, 7 << 33] {
        let g = disk::grown_size(n).unwrap();
        assert!(g.is_power_of_two() && g >= 2 * n && g < 4 * n, "{n} → {g}");
    }
}

fn files(dtb: bool) -> BootFiles {
    BootFiles {
        kernel: Some("/w/vmlinuz".into()),
        uefi: None,
        bios: None,
        initrd: Some("/w/initrd.img".into()),
        dtb: dtb.then(|| PathBuf::from("/w/bcm2837-rpi-3-b.dtb")),
        cmdline: "console=ttyS1,115200 root=PARTUUID=7e57b007-02 rw".into(),
        disk: "/images/a,b.img".into(),
        serial_log: "/images/x.log".into(),
        http_port: None,
    }
}

fn strings(args: &[std::ffi::OsString]) -> Vec<String> {
    args.iter().map(|a| a.to_string_lossy().into_owned()).collect()
}

#[test]
fn qemu_arguments_per_machine() {
    let (prog, args) = qemu::command(Machine::Raspi3b, &files(true));
    let a = strings(&args);
    assert_eq!(prog, "qemu-system-aarch64");
    let joined = a.join(" ");
    for want in [
        "-M raspi3b",
        "-kernel /w/vmlinuz",
        "-initrd /w/initrd.img",
        "-dtb /w/bcm2837-rpi-3-b.dtb",
        // QEMU's option syntax needs commas doubled.
        "-drive file=/images/a,,b.img,if=sd,format=raw",
        "-chardev file,id=serial,path=/images/x.log,mux=on",
        "-no-reboot",
    ] {
        assert!(joined.contains(want), "{want} missing: {joined}");
    }
    let i = a.iter().position(|w| w == "-append").unwrap();
    assert_eq!(a[i + 1], "console=ttyS1,115200 root=PARTUUID=7e57b007-02 rw");
    assert_eq!(
        a.iter().filter(|w| *w == "chardev:serial").count(),
        2,
        "both UARTs (PL011 and the Pi 3's mini UART) go to the log"
    );

    let (prog, args) = qemu::command(Machine::Raspi0, &files(true));
    assert_eq!(prog, "qemu-system-arm");
    assert!(strings(&args).join(" ").contains("-M raspi0"));

    let (prog, args) = qemu::command(Machine::Virt, &files(false));
    let joined = strings(&args).join(" ");
    assert_eq!(prog, "qemu-system-aarch64");
    for want in [
        "-M virt -cpu cortex-a72",
        "if=none,format=raw,id=disk0",
        "-device virtio-blk-pci,drive=disk0",
    ] {
        assert!(joined.contains(want), "{want} missing: {joined}");
    }
    assert!(!joined.contains("-dtb") && !joined.contains("if=sd"), "{joined}");
    assert!(
        joined.contains("-nic none"),
        "no network unless HTTP is checked: {joined}"
    );

    // `--http`: the guest's port 80 forwarded from a localhost port.
    let with_http = BootFiles {
        http_port: Some(18080),
        ..files(true)
    };
    let joined = strings(&qemu::command(Machine::Raspi3b, &with_http).1).join(" ");
    assert!(
        joined.contains("-netdev user,id=net0,hostfwd=tcp:127.0.0.1:18080-:80 -device usb-net,netdev=net0"),
        "{joined}"
    );
    let joined = strings(&qemu::command(Machine::Virt, &with_http).1).join(" ");
    assert!(
        joined.contains("-nic user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:18080-:80"),
        "{joined}"
    );
}

#[test]
fn qemu_arguments_for_u_boot_start_it_instead_of_a_kernel() {
    let f = BootFiles {
        kernel: None,
        initrd: None,
        dtb: None,
        cmdline: String::new(),
        bios: Some("/w/u-boot.bin".into()),
        ..files(false)
    };
    let (prog, args) = qemu::command(Machine::UbootVirt, &f);
    let joined = strings(&args).join(" ");
    assert_eq!(prog, "qemu-system-aarch64");
    for want in [
        "-M virt -cpu cortex-a72",
        "-bios /w/u-boot.bin",
        "-device virtio-blk-pci,drive=disk0",
    ] {
        assert!(joined.contains(want), "{want} missing: {joined}");
    }
    for unwanted in ["-kernel", "-initrd", "-append", "-dtb"] {
        assert!(
            !joined.contains(unwanted),
            "U-Boot loads the image's own files: {joined}"
        );
    }
}

#[test]
fn qemu_arguments_for_a_pc_boot_the_stick_by_its_firmware() {
    let pc = |m: Machine, uefi: bool| {
        let f = BootFiles {
            kernel: None,
            initrd: None,
            dtb: None,
            cmdline: String::new(),
            uefi: uefi.then(|| qemu::Uefi {
                code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd".into(),
                vars: "/w/VARS.fd".into(),
            }),
            http_port: Some(18080),
            ..files(false)
        };
        let (prog, args) = qemu::command(m, &f);
        assert_eq!(prog, "qemu-system-x86_64");
        strings(&args).join(" ")
    };
    let bios = pc(Machine::PcBios, false);
    assert!(
        !bios.contains("-kernel") && !bios.contains("pflash"),
        "SeaBIOS boots the disk: {bios}"
    );
    assert!(
        bios.contains("-device usb-storage,bus=xhci.0,drive=stick,bootindex=1"),
        "{bios}"
    );
    assert!(
        bios.contains(
            "-netdev user,id=uplink,hostfwd=tcp:127.0.0.1:18080-:80 -device e1000,netdev=uplink,addr=0x10 \
             -netdev user,id=learners,restrict=on -device e1000,netdev=learners,addr=0x11"
        ),
        "an uplink the host reaches port 80 through, and a learners' port: {bios}"
    );
    let sb = pc(Machine::PcSecureBoot, true);
    for want in [
        "-machine q35,smm=on",
        "driver=cfi.pflash01,property=secure,value=on",
        "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
        "if=pflash,format=raw,unit=1,file=/w/VARS.fd",
    ] {
        assert!(sb.contains(want), "{want} missing: {sb}");
    }
    assert!(!pc(Machine::PcUefi, true).contains("smm=on"));
    assert_eq!(
        qemu::ovmf_files(Machine::PcSecureBoot),
        Some((qemu::OVMF_SECBOOT_CODE, qemu::OVMF_MS_VARS))
    );
    assert_eq!(qemu::ovmf_files(Machine::PcBios), None);
    assert_eq!("pc-secure-boot".parse::<Machine>(), Ok(Machine::PcSecureBoot));
    assert!("pc".parse::<Machine>().unwrap_err().contains("pc-bios"));
}

#[test]
fn the_probe_reports_the_firmware_it_booted_by() {
    let log = GOOD_LOG.replace(
        "@@imgbuild-probe end",
        "@@imgbuild-probe firmware uefi secure-boot\n@@imgbuild-probe secureboot-kernel [ 0.000000] secureboot: Secure boot enabled\n@@imgbuild-probe end",
    );
    let r = probe::parse(&log).unwrap();
    assert_eq!(r.firmware, "uefi secure-boot");
    assert!(r.secure_boot_kernel.contains("Secure boot enabled"));
    assert_eq!(probe::parse(GOOD_LOG).unwrap().firmware, "", "a Pi reports none");
    assert!(imgbuild::verify::boot::firmware_failures(Machine::PcSecureBoot, &r).is_empty());
    let skipped = probe::ProbeReport {
        firmware: "uefi".into(),
        ..r.clone()
    };
    let f = imgbuild::verify::boot::firmware_failures(Machine::PcSecureBoot, &skipped);
    assert_eq!(f.len(), 1, "a firmware that did not enforce Secure Boot fails the test");
    assert!(f[0].contains("`uefi`, not `uefi secure-boot`"), "{f:?}");
    assert_eq!(imgbuild::verify::boot::firmware_failures(Machine::PcBios, &r).len(), 1);
    assert!(probe::unit(probe::console_of(Machine::PcBios)).contains("TTYPath=/dev/ttyS0"));
    assert!(probe::unit(probe::console_of(Machine::Raspi3b)).contains("TTYPath=/dev/console"));
    assert_eq!(
        probe::getty_of("/dev/ttyS0").as_deref(),
        Some("/etc/systemd/system/serial-getty@ttyS0.service"),
        "the port's login prompt would hang the probe up"
    );
    assert_eq!(probe::getty_of("/dev/console"), None);
}

// ---- the serial log and the verdict ----

const GOOD_LOG: &str = "\
[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd034]
[  OK  ] Reached target \u{1b}[0;1;39mmulti-user.target\u{1b}[0m - Multi-User System.
@@imgbuild-probe begin\r
@@imgbuild-probe state running
[   99.1] some kernel line @@imgbuild-probe uptime 97.42
@@imgbuild-probe multi-user active
@@imgbuild-probe analyze Startup finished in 16.0s (kernel) + 1min 21.3s (userspace) = 1min 37.3s multi-user.target reached after 1min 21.2s in userspace
@@imgbuild-probe root-dev /dev/mmcblk0p2
@@imgbuild-probe root-part-bytes 4025483264
@@imgbuild-probe root-fs-bytes 3951128576
@@imgbuild-probe end
[  101.2] reboot: Power down
";

#[test]
fn serial_log_probe_report_is_parsed() {
    let r = probe::parse(GOOD_LOG).unwrap();
    assert!(r.complete);
    assert_eq!(r.state, "running");
    assert_eq!(r.uptime, Some(97.42), "a marker after a kernel line's start");
    assert_eq!(r.multi_user, "active");
    assert!(r.analyze.starts_with("Startup finished in 16.0s"));
    assert!(r.failed_units.is_empty());
    assert_eq!(r.root_dev, "/dev/mmcblk0p2");
    assert_eq!(r.root_part_bytes, Some(4_025_483_264));
    assert_eq!(r.root_fs_bytes, Some(3_951_128_576));
    assert!(probe::powered_off(GOOD_LOG));
    assert!(probe::hints(GOOD_LOG).is_empty());
}

#[test]
fn serial_log_failed_units_and_incomplete_reports() {
    let log = "@@imgbuild-probe begin\n@@imgbuild-probe state degraded\n\
               @@imgbuild-probe failed growroot.service\n@@imgbuild-probe failed ssh.service\n\
               @@imgbuild-probe end\n";
    let r = probe::parse(log).unwrap();
    assert_eq!(r.failed_units, ["growroot.service", "ssh.service"]);
    assert_eq!(r.state, "degraded");
    assert!(r.complete);

    let cut = "@@imgbuild-probe begin\n@@imgbuild-probe state running\n";
    assert!(!probe::parse(cut).unwrap().complete);
    assert_eq!(probe::parse("[ 1.0] no probe here\n"), None);
    // The script itself names the markers; a log that shows it (cat of the unit) is
    // not a report.
    assert!(probe::parse(&probe::script(&[])).is_none_or(|r| !r.complete));

    let panic = "[ 3.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n";
    let hints = probe::hints(panic);
    assert!(hints.iter().any(|h| h.contains("panicked")), "{hints:?}");
    assert_eq!(probe::stuck(panic), Some("the kernel panicked"));
    let initramfs = "Gave up waiting for root file system device.\n\
                     ALERT!  PARTUUID=x does not exist.  Dropping to a shell!\n";
    assert!(probe::hints(initramfs).iter().any(|h| h.contains("module list")));
    assert!(probe::stuck(initramfs).unwrap().contains("initramfs"));
    assert_eq!(probe::stuck(GOOD_LOG), None);
    assert_eq!(
        probe::strip_control("[\u{1b}[0;32m  OK  \u{1b}[0m] Started\r"),
        "[  OK  ] Started"
    );
}

#[test]
fn verdict_names_each_failed_criterion() {
    let before = RootSize {
        partition: 834 << 20,
        filesystem: Some(834 << 20),
    };
    let grown = Some(RootSize {
        partition: 3 << 30,
        filesystem: Some(3 << 30),
    });
    let good = probe::parse(GOOD_LOG).unwrap();
    assert!(judge(&Ending::Reported, Some(&good), before, grown).is_empty());

    let mut bad = good.clone();
    bad.state = "degraded".into();
    bad.failed_units = vec!["growroot.service".into()];
    let f = judge(&Ending::Reported, Some(&bad), before, Some(before));
    let all = f.join("\n");
    assert!(all.contains("failed units: growroot.service"), "{all}");
    assert!(all.contains("`degraded`"), "{all}");
    assert!(all.contains("root partition did not grow"), "{all}");
    assert!(all.contains("root file system did not grow"), "{all}");

    let f = judge(&Ending::TimedOut, None, before, grown);
    assert_eq!(f.len(), 1);
    assert!(f[0].contains("did not report") && f[0].contains("time limit"), "{f:?}");
    let f = judge(
        &Ending::Exited {
            status: "exit status: 1".into(),
            stderr: "Invalid SD card size".into(),
        },
        None,
        before,
        None,
    );
    assert!(f[0].contains("Invalid SD card size"), "{f:?}");
    assert!(f[1].contains("could not be inspected"), "{f:?}");
    let f = judge(&Ending::Stuck("the kernel panicked"), None, before, grown);
    assert!(f[0].contains("the kernel panicked"), "{f:?}");
}

// ---- the command, with a stand-in QEMU ----

/// A small Pi-3-like image: FAT boot partition with config.txt, cmdline.txt, a fake
/// arm64 kernel and DTB; ext4 root. Returns the image path.
fn fake_pi_image(dir: &Path) -> PathBuf {
    let fw = dir.join("tree/boot/firmware");
    std::fs::create_dir_all(&fw).unwrap();
    std::fs::write(fw.join("vmlinuz-6.1.0-50-arm64"), arm64_image()).unwrap();
    std::fs::write(fw.join("initrd.img-6.1.0-50-arm64"), b"initrd").unwrap();
    std::fs::write(fw.join("bcm2837-rpi-3-b.dtb"), b"dtb").unwrap();
    std::fs::write(fw.join("config.txt"), DEBIAN_CONFIG).unwrap();
    std::fs::write(
        fw.join("cmdline.txt"),
        "console=tty0 console=ttyS1,115200 root=PARTUUID=7e57b007-02 rw rootwait\n",
    )
    .unwrap();
    write(&dir.join("tree"), "etc/hostname", "fake\n");
    write(&dir.join("tree"), "etc/systemd/system/.keep", "");
    let recipe = write(
        dir,
        "fake.yaml",
        "rootfs: {dir: tree}\nimage:\n  table: mbr\n  disk_id: \"0x7e57b007\"\n  partitions:\n    boot: {filesystem: vfat, size: 40MiB, mount: /boot/firmware, bootable: true}\n    root: {filesystem: ext4, mount: /}\noutput: {compression: none}\n",
    );
    let out = dir.join("out");
    ok(imgbuild().arg("--out").arg(&out).arg(&recipe));
    out.join("fake.img")
}

/// Puts a `qemu-system-aarch64` shell script first on PATH for one imgbuild run.
fn with_fake_qemu(dir: &Path, body: &str) -> std::process::Command {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let q = bin.join("qemu-system-aarch64");
    std::fs::write(
        &q,
        format!(
            "#!/bin/sh\n# stand-in QEMU: finds the serial log in the -chardev argument\n\
             for a in \"$@\"; do case \"$a\" in file,id=serial,path=*) log=${{a#file,id=serial,path=}}; log=${{log%,mux=on}};; esac; done\n\
             printf '%s\\n' \"$@\" > \"{}/args\"\necho $$ > \"{}/pid\"\n{body}\n",
            dir.display(),
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = imgbuild();
    c.env(
        "PATH",
        format!(
            "{}:{}:/usr/sbin:/sbin",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    c
}

fn sha256(path: &Path) -> String {
    text(&ok(tool("sha256sum").arg(path)))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("boot-test") && !n.ends_with(".boot-test.log"))
        .collect()
}

#[test]
fn boot_test_reports_failed_units_and_no_growth_and_leaves_the_image_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let img = fake_pi_image(tmp.path());
    let sum = sha256(&img);
    let report = "@@imgbuild-probe begin\n@@imgbuild-probe state degraded\n\
                  @@imgbuild-probe uptime 12.5\n@@imgbuild-probe multi-user active\n\
                  @@imgbuild-probe failed growroot.service\n@@imgbuild-probe end\nreboot: Power down\n";
    let mut cmd = with_fake_qemu(tmp.path(), &format!("printf '%s' '{report}' >> \"$log\"\nexit 0"));
    let out = cmd.arg("boot-test").arg(&img).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("machine:     raspi3b"), "{stdout}");
    assert!(stdout.contains("failed:      growroot.service"), "{stdout}");
    assert!(stdout.contains("result:      FAIL"), "{stdout}");
    assert!(stderr.contains("root partition did not grow"), "{stderr}");
    assert!(stderr.contains("last lines of"), "{stderr}");

    // QEMU got the image's own boot files and command line, and a power-of-two SD card.
    let args = std::fs::read_to_string(tmp.path().join("args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert!(after("-kernel").ends_with("/vmlinuz-6.1.0-50-arm64"));
    assert!(after("-initrd").ends_with("/initrd.img-6.1.0-50-arm64"));
    assert!(after("-dtb").ends_with("/bcm2837-rpi-3-b.dtb"));
    assert_eq!(
        after("-append"),
        "console=tty0 console=ttyS1,115200 root=PARTUUID=7e57b007-02 rw rootwait"
    );
    assert!(after("-drive").ends_with(",if=sd,format=raw"));

    // The image is unchanged, the log is kept next to it, the copy is gone.
    assert_eq!(sha256(&img), sum);
    let log = std::fs::read_to_string(img.with_extension("img.boot-test.log")).unwrap();
    assert!(log.contains("@@imgbuild-probe failed growroot.service"));
    assert!(leftovers(img.parent().unwrap()).is_empty());
}

#[test]
fn boot_test_kills_qemu_at_the_time_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let img = fake_pi_image(tmp.path());
    let mut cmd = with_fake_qemu(tmp.path(), "echo '[    0.0] Booting Linux' >> \"$log\"\nexec sleep 300");
    let started = std::time::Instant::now();
    let out = cmd
        .args(["boot-test", "--timeout", "3", "--keep"])
        .arg(&img)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed().as_secs() < 60, "returned promptly");
    assert!(stderr.contains("time limit"), "{stderr}");
    assert!(stderr.contains("Booting Linux"), "the log's tail is shown: {stderr}");
    let pid = std::fs::read_to_string(tmp.path().join("pid")).unwrap();
    assert!(!alive(&pid), "the stand-in QEMU (pid {}) was killed", pid.trim());
    // --keep keeps the booted copy, grown to a power of two.
    let copy = img.with_extension("img.boot-test.img");
    let len = std::fs::metadata(&copy).unwrap().len();
    assert!(len.is_power_of_two() && len >= 2 * std::fs::metadata(&img).unwrap().len());
}

fn alive(pid: &str) -> bool {
    std::process::Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn boot_test_interrupted_stops_qemu_and_removes_the_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let img = fake_pi_image(tmp.path());
    let mut cmd = with_fake_qemu(tmp.path(), "exec sleep 300");
    let child = cmd
        .arg("boot-test")
        .arg(&img)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = tmp.path().join("pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !pid_file.exists() {
        assert!(std::time::Instant::now() < deadline, "QEMU never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let qemu = std::fs::read_to_string(&pid_file).unwrap();
    assert!(!alive(&qemu), "QEMU (pid {}) was stopped", qemu.trim());
    assert!(leftovers(img.parent().unwrap()).is_empty());
}

#[test]
fn boot_test_stops_at_once_when_the_boot_is_stuck() {
    let tmp = tempfile::tempdir().unwrap();
    let img = fake_pi_image(tmp.path());
    let mut cmd = with_fake_qemu(
        tmp.path(),
        "echo 'ALERT!  PARTUUID=7e57b007-02 does not exist.  Dropping to a shell!' >> \"$log\"\n\
         exec sleep 300",
    );
    let started = std::time::Instant::now();
    let (code, err) = fails(cmd.arg("boot-test").arg(&img));
    assert_eq!(code, 1);
    assert!(started.elapsed().as_secs() < 60, "did not wait for the time limit");
    assert!(err.contains("dropped to a shell; stopped QEMU"), "{err}");
    assert!(err.contains("hint: the initramfs dropped to a shell"), "{err}");
}

#[test]
fn boot_test_refuses_an_image_without_a_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("tree"), "boot/firmware/config.txt", "enable_uart=1\n");
    write(&tmp.path().join("tree"), "etc/hostname", "x\n");
    let recipe = write(
        tmp.path(),
        "nok.yaml",
        "rootfs: {dir: tree}\nimage:\n  table: mbr\n  partitions:\n    boot: {filesystem: vfat, size: 40MiB, mount: /boot/firmware}\n    root: {filesystem: ext4, mount: /}\noutput: {compression: none}\n",
    );
    ok(imgbuild().arg("--out").arg(tmp.path()).arg(&recipe));
    let (code, err) = fails(imgbuild().arg("boot-test").arg(tmp.path().join("nok.img")));
    assert_eq!(code, 1);
    assert!(err.contains("names no kernel"), "{err}");
    let (code, err) = fails(imgbuild().args(["boot-test", "--machine", "pi9", "x.img"]));
    assert_eq!(code, 2);
    assert!(err.contains("'pi9'") && err.contains("raspi3b"), "{err}");
}

// ---- real boots (minutes under TCG) ----

/// Boots the image named by IMGBUILD_BOOT_IMAGE (e.g. a pi4-family image built from a
/// Debian bookworm arm64 root file system) and expects a pass.
#[test]
#[ignore = "tier qemu: needs QEMU and a real Debian image in IMGBUILD_BOOT_IMAGE; takes minutes"]
fn boot_real_image_auto_tier_qemu() {
    real_boot("IMGBUILD_BOOT_IMAGE", "auto");
}

/// The same arm64 image on QEMU's generic virt machine (what a Pi 5 image gets).
#[test]
#[ignore = "tier qemu: needs QEMU and a real arm64 Debian image in IMGBUILD_BOOT_IMAGE whose initramfs has virtio_blk; takes minutes"]
fn boot_real_image_virt_tier_qemu() {
    real_boot("IMGBUILD_BOOT_IMAGE", "virt");
}

/// A Pi Zero (armel) image named by IMGBUILD_BOOT_IMAGE_PI0.
#[test]
#[ignore = "tier qemu: needs QEMU and a real Debian armel Pi Zero image in IMGBUILD_BOOT_IMAGE_PI0; takes many minutes"]
fn boot_real_image_pi0_tier_qemu() {
    real_boot("IMGBUILD_BOOT_IMAGE_PI0", "raspi0");
}

fn real_boot(var: &str, machine: &str) {
    let img = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("set {var} to a built image"));
    let sum = sha256(&img);
    let out = ok(imgbuild()
        .env(
            "PATH",
            format!("{}:/usr/sbin:/sbin", std::env::var("PATH").unwrap_or_default()),
        )
        .args(["boot-test", "--machine", machine])
        .arg(&img));
    let report = text(&out);
    assert!(report.contains("result:      PASS"), "{report}");
    assert!(report.contains("failed:      none"), "{report}");
    assert_eq!(sha256(&img), sum, "the image itself is never modified");
}

#[test]
fn http_checks_pass_on_200_and_do_not_wait_out_a_404() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("index.html"), "<h1>landing</h1>").unwrap();
    let srv = crate::http_fixture::Server::start(tmp.path());
    let port: u16 = srv.base.rsplit(':').next().unwrap().parse().unwrap();
    let started = std::time::Instant::now();
    let got = imgbuild::verify::boot::http::check(port, &["/".to_string(), "/missing/".to_string()]);
    assert!(got[0].passed() && got[0].bytes == 16, "{got:?}");
    assert_eq!(got[1].status, Some(404));
    assert!(!got[1].passed());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "a 404 is an answer, not worth waiting on"
    );
}
