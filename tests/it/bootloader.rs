//! `image.bootloader`: GRUB for BIOS patched exactly as GRUB's own installer patches it,
//! a whole build installing the loaders from the root file system's files, and the
//! errors for a layout or a root file system the loaders cannot use.

use crate::common::*;
use imgbuild::image::boot::{self, BiosLoader};
use std::path::Path;
use std::process::Command;

const GRUB_DIR: &str = "/usr/lib/grub/i386-pc";
const BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";

/// A 16 MiB GPT disk with a BIOS boot partition at sector 2048 and a Linux one after.
fn gpt_disk(path: &Path) {
    std::fs::File::create(path).unwrap().set_len(16 << 20).unwrap();
    let mut c = tool("sfdisk");
    c.arg("--quiet").arg(path).stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("label: gpt\nstart=2048, size=2048, type={BIOS_BOOT}\nstart=4096, type=linux\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// grub-bios-setup on the disk image `disk`, with `dir` holding boot.img and core.img. It
/// asks the mount table where `dir` lives; a stand-in mountinfo, bound over this
/// process's own in a private mount namespace, says on the image (as mkosi does).
fn grub_bios_setup(disk: &Path, dir: &Path) {
    tool("grub-bios-setup");
    tool("unshare");
    let setup = imgbuild::process::programs::locate("grub-bios-setup").unwrap();
    let script = r#"printf '1 0 1:1 / / rw - ext2 %s rw\n' "$1" > "$2/mountinfo"
mount --bind "$2/mountinfo" /proc/$$/mountinfo
exec "$3" --no-rs-codes --skip-fs-probe --directory "$2" "$1""#;
    ok(Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(disk)
        .arg(dir)
        .arg(&setup));
}

#[test]
#[ignore = "tier root: a private mount namespace for grub-bios-setup"]
fn grub_bios_patching_matches_grub_bios_setup_byte_for_byte_tier_root() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let early = write(
        dir,
        "early.cfg",
        "search --no-floppy --fs-uuid --set=root 1234\nset prefix=($root)/boot/grub\n",
    );
    let core = dir.join("core.img");
    boot::grub_bios::make_core(Path::new(GRUB_DIR), &early, &core).unwrap();
    std::fs::copy(Path::new(GRUB_DIR).join("boot.img"), dir.join("boot.img")).unwrap();

    let ours = dir.join("ours.img");
    gpt_disk(&ours);
    let theirs = dir.join("theirs.img");
    std::fs::copy(&ours, &theirs).unwrap();

    let loader = BiosLoader {
        partition: "bios".into(),
        boot_img: std::fs::read(dir.join("boot.img")).unwrap(),
        core_img: std::fs::read(&core).unwrap(),
    };
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&ours).unwrap();
    let (start, end) = boot::write_bios(&mut f, &loader, 2048 * 512, 2048 * 512).unwrap();
    drop(f);
    assert_eq!(start, 2048 * 512);
    assert_eq!(end - start, loader.core_img.len().div_ceil(512) as u64 * 512);

    grub_bios_setup(&theirs, dir);
    let (a, b) = (std::fs::read(&ours).unwrap(), std::fs::read(&theirs).unwrap());
    let differ: Vec<usize> = a
        .iter()
        .zip(&b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, _)| i)
        .collect();
    assert!(
        differ.is_empty(),
        "{} bytes differ from grub-bios-setup's, the first at {:#x?}",
        differ.len(),
        &differ[..differ.len().min(16)]
    );
    // Nothing vacuous: the installer wrote boot.img and core.img, and so did we.
    assert_ne!(a[..440], vec![0u8; 440][..], "sector 0 has boot code");
    let at = 2048 * 512;
    assert_eq!(
        a[at..at + 0x1e8],
        loader.core_img[..0x1e8],
        "core.img's first sector, up to its block list"
    );
    assert_eq!(
        a[at + 512..at + loader.core_img.len()],
        loader.core_img[512..],
        "the rest of core.img as made"
    );
}

/// A root file system with just what GRUB for BIOS needs: the host's i386-pc modules.
fn grub_root(root: &Path) {
    let lib = root.join("usr/lib/grub/i386-pc");
    std::fs::create_dir_all(&lib).unwrap();
    for e in std::fs::read_dir(GRUB_DIR).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), lib.join(e.file_name())).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("boot")).unwrap();
    std::fs::write(root.join("boot/vmlinuz-6.1.0-test"), b"kernel").unwrap();
    std::os::unix::fs::symlink("boot/vmlinuz-6.1.0-test", root.join("vmlinuz")).unwrap();
}

const PC: &str = r#"
rootfs:
  dir: root
image:
  table: gpt
  bootloader:
    install: [grub-bios]
    title: Test server
  partitions:
    bios: {type: bios-boot, filesystem: none, size: 1MiB}
    root: {type: root-x86-64, filesystem: ext4, size: auto, mount: /}
output:
  compression: none
"#;

#[test]
fn a_build_installs_grub_for_bios_from_the_root_file_systems_own_modules() {
    tool("grub-mkimage");
    let tmp = tempfile::tempdir().unwrap();
    grub_root(&tmp.path().join("root"));
    let recipe = write(tmp.path(), "pc.yaml", PC);
    let out = tmp.path().join("out");
    ok(imgbuild().arg("--out").arg(&out).arg(&recipe));
    let image = out.join("pc.img");
    let bytes = std::fs::read(&image).unwrap();
    let (_, parts) = sfdisk(&image);
    let bios = parts
        .iter()
        .find(|p| p.kind == BIOS_BOOT)
        .expect("a BIOS boot partition");
    let core_lba = u64::from_le_bytes(bytes[0x5c..0x64].try_into().unwrap());
    assert_eq!(core_lba * 512, bios.start, "boot.img points at the BIOS boot partition");
    let boot_img = std::fs::read(Path::new(GRUB_DIR).join("boot.img")).unwrap();
    assert_eq!(
        bytes[0x68..0x1b8],
        boot_img[0x68..0x1b8],
        "boot.img's code is in sector 0"
    );
    let core = &bytes[bios.start as usize..];
    assert_eq!(
        u64::from_le_bytes(core[0x1f4..0x1fc].try_into().unwrap()),
        bios.start / 512 + 1,
        "diskboot's block list names the rest of core.img"
    );
    let root = parts.iter().find(|p| p.kind != BIOS_BOOT).unwrap();
    let fs = tmp.path().join("root.ext4");
    extract(&image, root, &fs);
    e2fsck_clean(&fs);
    let cfg = debugfs(&fs, "cat /boot/grub/grub.cfg");
    assert!(
        cfg.contains(&format!(
            "root=PARTUUID={} ro",
            root.uuid.clone().unwrap().to_lowercase()
        )),
        "{cfg}"
    );
    assert_eq!(cfg.matches("menuentry \"Test server").count(), 3, "{cfg}");
    let normal = debugfs(&fs, "stat /boot/grub/i386-pc/normal.mod");
    assert!(
        normal.contains("Type: regular"),
        "GRUB finds its modules where grub-install puts them: {normal}"
    );
}

#[test]
fn a_root_without_grub_is_an_error_naming_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("root/etc")).unwrap();
    let recipe = write(tmp.path(), "pc.yaml", PC);
    let (code, err) = fails(imgbuild().arg("--out").arg(tmp.path().join("out")).arg(&recipe));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("image.bootloader.install"), "{err}");
    assert!(
        err.contains("/usr/lib/grub/i386-pc/boot.img") && err.contains("add `grub-pc-bin` to `rootfs.packages`"),
        "{err}"
    );
}

#[test]
fn loaders_without_their_partitions_are_errors_naming_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let check = |body: &str| {
        let recipe = write(tmp.path(), "pc.yaml", body);
        fails(imgbuild().arg("check").arg(&recipe))
    };
    let no_bios = PC.replace("    bios: {type: bios-boot, filesystem: none, size: 1MiB}\n", "");
    let (code, err) = check(&no_bios);
    assert_eq!(code, 2);
    assert!(
        err.contains("image.bootloader.install") && err.contains("type: bios-boot"),
        "{err}"
    );

    let no_esp = PC.replace("[grub-bios]", "[grub-efi, shim]");
    let (code, err) = check(&no_esp);
    assert_eq!(code, 2);
    assert!(
        err.contains("grub-efi needs an EFI system partition") && err.contains("type: esp"),
        "{err}"
    );

    let shim_alone = PC.replace("[grub-bios]", "[grub-bios, shim]");
    let (_, err) = check(&shim_alone);
    assert!(err.contains("add `grub-efi`"), "{err}");

    let unmounted_esp = PC.replace("[grub-bios]", "[grub-efi]").replace(
        "    root:",
        "    esp: {type: esp, filesystem: vfat, size: 64MiB}\n    root:",
    );
    let (_, err) = check(&unmounted_esp);
    assert!(
        err.contains("image.partitions.esp.mount") && err.contains("mount: /boot/efi"),
        "{err}"
    );

    let mbr = PC
        .replace("table: gpt", "table: mbr")
        .replace("type: bios-boot, ", "")
        .replace("type: root-x86-64, ", "");
    let (_, err) = check(&mbr);
    assert!(err.contains("image.table: gpt"), "{err}");
}

#[test]
fn an_esp_too_small_for_shim_and_grub_is_an_error_naming_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    // Stand-ins of the signed loaders' sizes (shim ~1 MB, monolithic GRUB ~4 MB).
    for (path, size) in [
        ("usr/lib/shim/shimx64.efi.signed", 1 << 20),
        ("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed", 4 << 20),
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, vec![0x5a; size]).unwrap();
    }
    let body = PC.replace("[grub-bios]", "[grub-efi, shim]").replace(
        "    bios: {type: bios-boot, filesystem: none, size: 1MiB}\n",
        "    esp: {type: esp, filesystem: vfat, size: 2MiB, mount: /boot/firmware}\n",
    );
    let recipe = write(tmp.path(), "pc.yaml", &body);
    let out = tmp.path().join("out");
    let (code, err) = fails(imgbuild().arg("--out").arg(&out).arg(&recipe));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("image.partitions.esp.size") && err.contains("too small"),
        "{err}"
    );
    assert!(!out.join("pc.img").exists(), "no image under its final name");

    // Large enough, the loaders are where the firmware looks, and the stub finds the root.
    let recipe = write(tmp.path(), "pc.yaml", &body.replace("size: 2MiB", "size: 64MiB"));
    ok(imgbuild().arg("--out").arg(&out).arg(&recipe));
    let image = out.join("pc.img");
    let (_, parts) = sfdisk(&image);
    let esp = tmp.path().join("esp.fat");
    extract(&image, &parts[0], &esp);
    fsck_fat_clean(&esp);
    assert_eq!(
        mtype(&esp, "/EFI/BOOT/BOOTX64.EFI").len(),
        1 << 20,
        "shim at the removable path"
    );
    assert_eq!(mtype(&esp, "/EFI/BOOT/grubx64.efi").len(), 4 << 20, "GRUB beside it");
    let stub = String::from_utf8(mtype(&esp, "/EFI/debian/grub.cfg")).unwrap();
    assert!(
        stub.contains("search --no-floppy --fs-uuid --set=root") && stub.contains("configfile"),
        "{stub}"
    );
}
