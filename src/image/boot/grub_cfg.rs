//! The GRUB configuration both firmware paths end in (`/boot/grub/grub.cfg` on the root
//! file system), the short one each loader starts with to find it by the root file
//! system's UUID, all from the image's own identifiers.

use crate::recipe::plan_boot::BootloaderPlan;

/// The serial port the test and headless entries use (QEMU's and most boards' first).
const SERIAL: &str = "console=ttyS0,115200n8";

/// What the configuration needs beyond the plan: the root's identifiers.
pub struct RootIds<'a> {
    pub fs_uuid: &'a str,
    pub partuuid: &'a str,
}

/// The first lines every loader runs: find the root file system by UUID (never by
/// disk order: a laptop's own disk comes first on some firmware) and make it GRUB's
/// `$root` and `$prefix`.
pub fn find_root(ids: &RootIds) -> String {
    format!(
        "search --no-floppy --fs-uuid --set=root {uuid}\nset prefix=($root)/boot/grub\n",
        uuid = ids.fs_uuid
    )
}

/// The ESP's `EFI/debian/grub.cfg`, which Debian's signed GRUB reads first (its prefix
/// is built in and signed): it hands over to the root's configuration.
pub fn efi_stub(ids: &RootIds) -> String {
    format!(
        "# Written by imgbuild (image.bootloader): Debian's signed GRUB reads this first.\n{}configfile $prefix/grub.cfg\n",
        find_root(ids)
    )
}

/// `/boot/grub/grub.cfg`. Kernel and initramfs by Debian's `/vmlinuz` and `/initrd.img`
/// links, which the kernel package keeps pointing at the newest kernel.
pub fn main(plan: &BootloaderPlan, ids: &RootIds) -> String {
    let root = format!("root=PARTUUID={} ro", ids.partuuid);
    let args = plan.kernel_args.trim();
    let entry = |title: &str, id: &str, consoles: &str, extra: &str| {
        let line: Vec<&str> = [root.as_str(), consoles, args, extra]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        format!(
            "menuentry \"{title}\" --id {id} {{\n  {find}  echo \"Loading {title}...\"\n  linux /vmlinuz {line}\n  initrd /initrd.img\n}}\n",
            find = find_root(ids).replace('\n', "\n  "),
            line = line.join(" ")
        )
    };
    let title = &plan.title;
    // The screen last: it becomes /dev/console, where systemd reports; the kernel's
    // messages go to both.
    let usual = format!("{SERIAL} console=tty0");
    let serial = format!("console=tty0 {SERIAL}");
    format!(
        "# Written by imgbuild from the image's own identifiers (image.bootloader); GRUB for\n\
         # BIOS and for UEFI both end here.\n\
         set default=default\n\
         set timeout={timeout}\n\
         # The serial port as well as the screen: a headless machine, and the boot tests.\n\
         serial --unit=0 --speed=115200\n\
         terminal_input console serial\n\
         terminal_output console serial\n\
         \n\
         {usual_entry}\n\
         # Everything on the serial port, systemd's messages too.\n\
         {serial_entry}\n\
         # A root shell without a password (the workshop server's root account is locked):\n\
         # whoever holds the stick can read it anyway.\n\
         {rescue_entry}",
        timeout = plan.timeout,
        usual_entry = entry(title, "default", &usual, ""),
        serial_entry = entry(&format!("{title} (serial console)"), "serial", &serial, ""),
        rescue_entry = entry(
            &format!("{title} (rescue shell)"),
            "rescue",
            &usual,
            "systemd.unit=rescue.target systemd.setenv=SYSTEMD_SULOGIN_FORCE=1"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_boots_the_images_root_by_its_own_ids() {
        let plan = BootloaderPlan {
            bios: Some("bios".into()),
            efi: None,
            root: "root".into(),
            title: "Workshop server".into(),
            kernel_args: "quiet".into(),
            timeout: 5,
            defined_in: "r.yaml".into(),
        };
        let ids = RootIds {
            fs_uuid: "0a1b2c3d-0000-4000-8000-000000000001",
            partuuid: "9f8e7d6c-0000-4000-8000-000000000002",
        };
        let cfg = main(&plan, &ids);
        assert_eq!(cfg.matches("menuentry ").count(), 3);
        assert_eq!(
            cfg.matches("root=PARTUUID=9f8e7d6c-0000-4000-8000-000000000002 ro")
                .count(),
            3
        );
        assert_eq!(
            cfg.matches("--fs-uuid --set=root 0a1b2c3d-0000-4000-8000-000000000001")
                .count(),
            3
        );
        assert!(cfg.contains("set timeout=5"));
        assert!(cfg.contains("console=tty0 console=ttyS0,115200n8 quiet\n"), "{cfg}");
        assert!(cfg.contains("systemd.unit=rescue.target"));
        assert!(efi_stub(&ids).ends_with("configfile $prefix/grub.cfg\n"));
    }
}
