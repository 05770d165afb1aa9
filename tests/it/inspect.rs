//! `imgbuild inspect` reads images back without mounting: partitions, file systems,
//! labels, UUIDs and used space; `--cat` prints files from FAT and ext4.

use crate::common::*;

#[test]
fn inspect_shows_table_filesystems_and_reads_files() {
    let tmp = tempfile::tempdir().unwrap();
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let r = write(
        tmp.path(),
        "pi.yaml",
        "rootfs: {tar: rootfs.tar}\nimage:\n  table: mbr\n  partitions:\n    boot: {filesystem: vfat, size: 64MiB, mount: /boot/firmware, bootable: true}\n    root: {filesystem: ext4, mount: /}\noutput: {compression: none}\n",
    );
    let out = tmp.path().join("out");
    ok(imgbuild().arg("--out").arg(&out).arg(&r));
    let img = out.join("pi.img");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();

    let table = text(&ok(imgbuild().arg("inspect").arg(&img)));
    assert!(table.contains("table: mbr"), "{table}");
    assert!(
        table.contains("vfat (FAT32)") && table.contains("BOOT") && table.contains("ext4"),
        "{table}"
    );
    for p in m["partitions"].as_array().unwrap() {
        assert!(table.contains(p["uuid"].as_str().unwrap()), "uuid missing:\n{table}");
        assert!(
            table.contains(p["partuuid"].as_str().unwrap()),
            "partuuid missing:\n{table}"
        );
    }

    let v: serde_json::Value =
        serde_json::from_slice(&ok(imgbuild().args(["inspect", "--json"]).arg(&img)).stdout).unwrap();
    assert_eq!(v["disk_id"], m["disk_id"]);
    let root = &v["partitions"][1]["filesystem"];
    assert_eq!(root["label"], "root");
    assert!(
        root["used"].as_u64().unwrap() > SPARSE_SIZE,
        "used space counts the files"
    );
    assert!(v["partitions"][0]["bootable"].as_bool().unwrap());

    let cfg = ok(imgbuild()
        .args(["inspect", "--cat", "/config.txt", "--partition", "1"])
        .arg(&img));
    assert_eq!(cfg.stdout, b"arm_64bit=1\nenable_uart=1\n");
    let via_fstab = ok(imgbuild()
        .args(["inspect", "--cat", "/boot/firmware/config.txt"])
        .arg(&img));
    assert_eq!(
        via_fstab.stdout, cfg.stdout,
        "the booted system's path finds the FAT partition through /etc/fstab"
    );
    let host = ok(imgbuild().args(["inspect", "--cat", "/etc/hostname"]).arg(&img));
    assert_eq!(host.stdout, b"fixture\n");
    let (code, err) = fails(imgbuild().args(["inspect", "--cat", "/etc/nothing"]).arg(&img));
    assert_eq!(code, 1);
    assert!(err.contains("`/etc/nothing` not found"), "{err}");
}

#[test]
fn inspect_refuses_non_images_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("x.img");
    std::fs::write(&f, vec![0u8; 4096]).unwrap();
    let (_, err) = fails(imgbuild().arg("inspect").arg(&f));
    assert!(err.contains("no partition table"), "{err}");
    let xz = tmp.path().join("x.img.xz");
    std::fs::write(&xz, [0xfd, b'7', b'z', b'X', b'Z', 0, 0, 0]).unwrap();
    let (_, err) = fails(imgbuild().arg("inspect").arg(&xz));
    assert!(err.contains("is compressed"), "{err}");
}

/// CRC-32 (IEEE), as the GPT's header and entry array carry it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A GPT whose entry ends before it starts (checksums intact, so only the numbers are
/// wrong): `inspect` names the partition and fails, it does not print a wrapped size.
#[test]
fn inspect_refuses_a_gpt_entry_that_ends_before_it_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("gpt.img");
    std::fs::write(&img, vec![0u8; 4 << 20]).unwrap();
    let mut sfdisk = tool("sfdisk")
        .arg("-q")
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: gpt\nstart=2048, size=2048\n")
        .unwrap();
    assert!(sfdisk.wait().unwrap().success());
    let mut disk = std::fs::read(&img).unwrap();
    let sectors = disk.len() / 512;
    for header_lba in [1, sectors - 1] {
        let h = header_lba * 512;
        let array = u64::from_le_bytes(disk[h + 72..h + 80].try_into().unwrap()) as usize * 512;
        // The first entry: first LBA 2048, last LBA 100.
        disk[array + 40..array + 48].copy_from_slice(&100u64.to_le_bytes());
        let array_crc = crc32(&disk[array..array + 128 * 128]);
        disk[h + 88..h + 92].copy_from_slice(&array_crc.to_le_bytes());
        disk[h + 16..h + 20].copy_from_slice(&[0; 4]);
        let header_crc = crc32(&disk[h..h + 92]);
        disk[h + 16..h + 20].copy_from_slice(&header_crc.to_le_bytes());
    }
    std::fs::write(&img, &disk).unwrap();
    let (code, err) = fails(imgbuild().arg("inspect").arg(&img));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("gpt.img") && err.contains("partition 1"), "{err}");
    assert!(
        !err.contains("TiB") && err.contains("ends at sector 100 before it starts at sector 2048"),
        "{err}"
    );
    let dir_err = fails(imgbuild().arg("inspect").arg(tmp.path())).1;
    assert!(
        dir_err.contains(&format!("{} is a directory", tmp.path().display())),
        "{dir_err}"
    );
}
