//! Two builds of one recipe on different days give the same image: the build's time
//! comes from its inputs, and `build.date` (which the landing page and motd show) is the
//! file systems' date, not the clock's. The clock is faked with libfaketime, for imgbuild
//! and every program it starts.

use crate::common::*;
use std::path::Path;

const RECIPE: &str = "rootfs: {tar: rootfs.tar}
overlays: [ov]
image:
  table: mbr
  partitions:
    boot: {type: fat32-lba, filesystem: vfat, size: 64MiB, mount: /boot/firmware}
    root: {type: linux, filesystem: ext4, size: auto, mount: /}
output: {compression: none}
";

/// Builds `recipe` into `out` with the clock at `when`; returns the manifest.
fn build_on(when: &str, recipe: &Path, out: &Path) -> serde_json::Value {
    ok(tool("faketime")
        .arg(when)
        .arg(env!("CARGO_BIN_EXE_imgbuild"))
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("--out")
        .arg(out)
        .arg(recipe));
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn a_recipe_showing_build_date_built_a_day_apart_gives_identical_images() {
    let tmp = tempfile::tempdir().unwrap();
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    write(
        &tmp.path().join("ov/etc"),
        "motd.j2",
        "built {{ build.date }} ({{ build.epoch }})\n",
    );
    write(
        &tmp.path().join("ov/boot/firmware"),
        "built.txt.j2",
        "{{ build.date }}\n",
    );
    let recipe = write(tmp.path(), "day.yaml", RECIPE);
    let (out1, out2) = (tmp.path().join("day1"), tmp.path().join("day2"));
    let m1 = build_on("2031-03-01 09:00:00", &recipe, &out1);
    let m2 = build_on("2031-03-02 17:30:00", &recipe, &out2);

    let (img1, img2) = (
        std::fs::read(out1.join("day.img")).unwrap(),
        std::fs::read(out2.join("day.img")).unwrap(),
    );
    assert!(img1 == img2, "the images of the two days differ");
    assert_eq!(m1["outputs"], m2["outputs"]);

    // The time is the inputs' (the archive's newest entry), and the templates show it.
    let epoch = m1["source_date_epoch"].as_i64().unwrap();
    assert_eq!(
        epoch, 1_700_000_000,
        "the build's time is the archive's, not the faked clock's"
    );
    let date = imgbuild::build_info::civil_date(epoch);
    let (_, parts) = sfdisk(&out1.join("day.img"));
    let root = tmp.path().join("root.ext4");
    extract(&out1.join("day.img"), &parts[1], &root);
    let motd = debugfs(&root, "cat /etc/motd");
    assert_eq!(motd, format!("built {date} ({epoch})\n"));
    let stat = debugfs(&root, "stat /etc/motd");
    assert!(
        stat.contains(&format!("mtime: 0x{epoch:08x}")),
        "motd's mtime is not the build's time:\n{stat}"
    );
    let boot = tmp.path().join("boot.fat");
    extract(&out1.join("day.img"), &parts[0], &boot);
    assert_eq!(mtype(&boot, "/built.txt"), format!("{date}\n").as_bytes());
}
