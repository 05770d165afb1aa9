//! Which QEMU machine can boot an image: the kernel's architecture from its header and
//! the device trees in the boot partition decide. Pure functions over bytes and names.

use std::fmt;
use std::io::Read;

/// The QEMU machines `boot-test` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// `qemu-system-aarch64 -M raspi3b`: the Pi 3/4/Zero 2 family's arm64 kernel with the
    /// Pi 3 device tree, root on the emulated SD card.
    Raspi3b,
    /// `qemu-system-arm -M raspi0`: an armel/armv6 kernel with the Pi Zero device tree.
    Raspi0,
    /// `qemu-system-aarch64 -M virt -cpu cortex-a72`: any arm64 kernel, virtio disk (Pi 5
    /// images, whose board QEMU does not emulate).
    Virt,
    /// `qemu-system-x86_64 -M q35` with SeaBIOS: a PC booting the image by BIOS (GRUB's
    /// boot.img and core.img), from a USB stick.
    PcBios,
    /// The same with OVMF (UEFI), from the ESP's removable-media path.
    PcUefi,
    /// OVMF with Secure Boot enforced and Microsoft's keys enrolled: shim, signed GRUB
    /// and the signed kernel must all pass the firmware's checks.
    PcSecureBoot,
    /// `qemu-system-aarch64 -M virt` started by U-Boot built for QEMU from the same
    /// source as the board's, booting the image's own extlinux entry from a virtio disk
    /// (a Rockchip board's image: QEMU has no RK3399 machine).
    UbootVirt,
}

/// Every machine, for `--machine`'s list.
pub const ALL: &[Machine] = &[
    Machine::Raspi3b,
    Machine::Raspi0,
    Machine::Virt,
    Machine::PcBios,
    Machine::PcUefi,
    Machine::PcSecureBoot,
    Machine::UbootVirt,
];

impl Machine {
    pub fn name(self) -> &'static str {
        match self {
            Machine::Raspi3b => "raspi3b",
            Machine::Raspi0 => "raspi0",
            Machine::Virt => "virt",
            Machine::PcBios => "pc-bios",
            Machine::PcUefi => "pc-uefi",
            Machine::PcSecureBoot => "pc-secure-boot",
            Machine::UbootVirt => "u-boot-virt",
        }
    }

    /// A PC: booted by its firmware from the image alone, no `-kernel`.
    pub fn is_pc(self) -> bool {
        matches!(self, Machine::PcBios | Machine::PcUefi | Machine::PcSecureBoot)
    }

    /// The config.txt conditional section the firmware applies on the board this
    /// machine stands for.
    pub fn model_filter(self) -> &'static str {
        match self {
            Machine::Raspi3b => "pi3",
            Machine::Raspi0 => "pi0",
            Machine::Virt => "pi5",
            // No config.txt on a PC or a U-Boot board.
            Machine::PcBios | Machine::PcUefi | Machine::PcSecureBoot => "pc",
            Machine::UbootVirt => "u-boot",
        }
    }

    /// The kernel architecture the machine runs.
    pub fn kernel_kind(self) -> KernelKind {
        match self {
            Machine::Raspi3b | Machine::Virt | Machine::UbootVirt => KernelKind::Arm64,
            Machine::Raspi0 => KernelKind::Arm32,
            Machine::PcBios | Machine::PcUefi | Machine::PcSecureBoot => KernelKind::X86,
        }
    }

    /// What a passing boot on this machine shows about the image.
    pub fn proves(self) -> &'static str {
        match self {
            Machine::Raspi3b => {
                "the image's own arm64 kernel, initramfs and Pi 3 device tree find the root \
                 file system on the (emulated) SD card, and its userspace and first-boot \
                 services start from it"
            }
            Machine::Raspi0 => {
                "the image's own armel kernel, initramfs and Pi Zero device tree find the root \
                 file system on the (emulated) SD card, and its userspace and first-boot \
                 services start from it"
            }
            Machine::Virt => {
                "the image's kernel, initramfs, userspace and first-boot services of this root \
                 file system start (on a generic arm64 machine)"
            }
            Machine::PcBios => {
                "a BIOS boots the image from a USB stick: boot.img in the protective MBR, \
                 core.img in the BIOS boot partition, GRUB's grub.cfg, the kernel and \
                 initramfs finding the root by PARTUUID, and its userspace"
            }
            Machine::PcUefi => {
                "a UEFI firmware boots the image from a USB stick by the removable-media path \
                 EFI/BOOT/BOOTX64.EFI (shim, GRUB, the ESP's grub.cfg, the root's), then the \
                 kernel, initramfs and userspace"
            }
            Machine::PcSecureBoot => {
                "as pc-uefi, with Secure Boot enforced by a firmware holding Microsoft's keys: \
                 shim, GRUB and the kernel are all accepted (the guest reports Secure Boot on)"
            }
            Machine::UbootVirt => {
                "the loaders' headers and places, the board's U-Boot configuration and device \
                 tree (static checks); then U-Boot's standard boot, built from the board's \
                 U-Boot source for QEMU, boots the image's own extlinux entry: its kernel, \
                 initramfs and root by PARTUUID, to multi-user"
            }
        }
    }

    /// What it does not show.
    pub fn does_not_prove(self) -> &'static str {
        match self {
            Machine::Raspi3b => {
                "the GPU firmware stage (bootcode.bin/start*.elf reading config.txt; QEMU \
                 loads kernel, initramfs and DTB itself), and drivers only a Pi 4 or Zero 2 \
                 needs (the machine is a Pi 3)"
            }
            Machine::Raspi0 => {
                "the GPU firmware stage, and the board's power-management/watchdog block \
                 (disabled in a test copy of the DTB because QEMU lacks it)"
            }
            Machine::Virt => {
                "anything about the Pi 5 board: its firmware, device tree, and SD/RP1 \
                 drivers (virt has a virtio disk and no Pi hardware)"
            }
            Machine::PcBios | Machine::PcUefi | Machine::PcSecureBoot => {
                "a real laptop's firmware quirks, its Wi-Fi card and drivers (QEMU's PC has \
                 an Ethernet card and no radio)"
            }
            Machine::UbootVirt => {
                "the board itself: QEMU has no RK3399 machine, so neither the board's own \
                 U-Boot and device tree nor its SD/eMMC drivers run (the device-tree line is \
                 dropped in the test copy; QEMU gives its own)"
            }
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Machine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ALL.iter().copied().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|m| m.name()).collect();
            format!("unknown machine `{s}` (valid: auto, {})", names.join(", "))
        })
    }
}

/// A kernel image's architecture, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// arm64 `Image` (magic "ARM\x64" at byte 56), possibly gzip-compressed.
    Arm64,
    /// 32-bit ARM `zImage` (magic 0x016f2818 at byte 36).
    Arm32,
    /// An x86 `bzImage` (boot protocol magic "HdrS" at byte 0x202), booted by GRUB.
    X86,
    Unknown,
}

impl fmt::Display for KernelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelKind::Arm64 => "arm64 Image",
            KernelKind::Arm32 => "32-bit ARM zImage",
            KernelKind::X86 => "x86 bzImage",
            KernelKind::Unknown => "unrecognised kernel",
        })
    }
}

/// How many leading bytes [`kernel_kind`] needs.
pub const KERNEL_HEAD: usize = 64;

/// The architecture of a kernel file from its first bytes (at least [`KERNEL_HEAD`];
/// a gzip-compressed kernel is looked into, as QEMU and the Pi 4 firmware accept those).
pub fn kernel_kind(head: &[u8]) -> KernelKind {
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut inner = Vec::with_capacity(KERNEL_HEAD);
        let decoder = flate2::read::GzDecoder::new(head);
        // A truncated stream still yields its first bytes, which is all we need.
        let _ = decoder.take(KERNEL_HEAD as u64).read_to_end(&mut inner);
        if inner.starts_with(&[0x1f, 0x8b]) {
            return KernelKind::Unknown;
        }
        return kernel_kind(&inner);
    }
    if head.len() >= 60 && &head[56..60] == b"ARM\x64" {
        KernelKind::Arm64
    } else if head.len() >= 40 && head[36..40] == 0x016f_2818u32.to_le_bytes() {
        KernelKind::Arm32
    } else {
        KernelKind::Unknown
    }
}

/// Device trees that let QEMU's raspi3b boot a kernel, best first.
const PI3_DTBS: &[&str] = &["bcm2837-rpi-3-b.dtb", "bcm2710-rpi-3-b.dtb"];
/// Device trees for raspi0, best first.
const PI0_DTBS: &[&str] = &[
    "bcm2835-rpi-zero.dtb",
    "bcm2835-rpi-zero-w.dtb",
    "bcm2708-rpi-zero.dtb",
    "bcm2708-rpi-zero-w.dtb",
];

/// The device tree from `dtbs` (file names in the boot partition) that `machine`
/// boots with; virt needs none (QEMU makes its own).
pub fn dtb_for(machine: Machine, dtbs: &[String]) -> Option<String> {
    let wanted = match machine {
        Machine::Raspi3b => PI3_DTBS,
        Machine::Raspi0 => PI0_DTBS,
        Machine::Virt | Machine::PcBios | Machine::PcUefi | Machine::PcSecureBoot | Machine::UbootVirt => return None,
    };
    wanted
        .iter()
        .find_map(|w| dtbs.iter().find(|d| d.eq_ignore_ascii_case(w)))
        .cloned()
}

fn is_pi5(dtbs: &[String], kernel: &str) -> bool {
    kernel.contains("2712") || dtbs.iter().any(|d| d.to_ascii_lowercase().starts_with("bcm2712"))
}

/// The machine for an image, and why: an arm64 kernel with Pi 5 (bcm2712) device trees
/// → virt; an arm64 kernel with the Pi 3 device tree → raspi3b; a 32-bit kernel with a
/// Pi Zero device tree → raspi0. Anything else is an error saying what was found.
pub fn choose(kind: KernelKind, kernel: &str, dtbs: &[String]) -> Result<(Machine, String), String> {
    let found = if dtbs.is_empty() {
        "no device trees".to_string()
    } else {
        format!("device trees {}", dtbs.join(", "))
    };
    match kind {
        KernelKind::Arm64 if is_pi5(dtbs, kernel) => Ok((
            Machine::Virt,
            match dtb_for(Machine::Raspi3b, dtbs) {
                // Debian trixie's kernel ships every Pi's device trees: an image for a Pi 4
                // looks like one for a Pi 5 from its files alone.
                Some(d) => format!(
                    "arm64 kernel {kernel} with Pi 5 (bcm2712) device trees: QEMU has no Pi 5, so virt \
                     (it also has {d}: --machine raspi3b boots it as a Pi 3 instead)"
                ),
                None => format!("arm64 kernel {kernel} with Pi 5 (bcm2712) device trees: QEMU has no Pi 5, so virt"),
            },
        )),
        KernelKind::Arm64 => match dtb_for(Machine::Raspi3b, dtbs) {
            Some(d) => Ok((
                Machine::Raspi3b,
                format!("arm64 kernel {kernel} with {d}: booted as a Pi 3"),
            )),
            None => Err(format!(
                "arm64 kernel {kernel} but no Pi 3 device tree ({}) and no Pi 5 one; found {found}; \
                 use --machine virt to boot it on a generic arm64 machine",
                PI3_DTBS.join(" or ")
            )),
        },
        KernelKind::Arm32 => match dtb_for(Machine::Raspi0, dtbs) {
            Some(d) => Ok((
                Machine::Raspi0,
                format!("32-bit ARM kernel {kernel} with {d}: booted as a Pi Zero"),
            )),
            None => Err(format!(
                "32-bit ARM kernel {kernel} but no Pi Zero device tree ({}); found {found}",
                PI0_DTBS.join(", ")
            )),
        },
        KernelKind::X86 => Err(format!(
            "{kernel} is an x86 kernel in a Raspberry Pi boot partition; a PC image boots by its firmware (--machine pc-uefi)"
        )),
        KernelKind::Unknown => Err(format!(
            "{kernel} is neither an arm64 Image nor an ARM zImage (no header magic)"
        )),
    }
}
