//! Release files, checked by the tools instructors use: Debian's `bmaptool`.

use crate::common::*;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

const MIB: u64 = 1 << 20;

/// A sparse 20 MiB image with data at `ranges`.
fn image(path: &Path, ranges: &[(u64, u64)]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.set_len(20 * MIB).unwrap();
    for (i, &(s, e)) in ranges.iter().enumerate() {
        f.seek(SeekFrom::Start(s)).unwrap();
        let data: Vec<u8> = (s..e).map(|b| (b as u8) ^ (i as u8 + 1)).collect();
        f.write_all(&data).unwrap();
    }
}

#[test]
fn bmaptool_copies_with_our_bmap_and_checks_its_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("x.img");
    let ranges = [
        (0, 4096),
        (MIB, MIB + 10_000),
        (10 * MIB - 100, 10 * MIB + 5000),
        (20 * MIB - 1, 20 * MIB),
    ];
    image(&img, &ranges);
    let bmap = tmp.path().join("x.bmap");
    imgbuild::release::bmap::write(&img, &ranges, &bmap).unwrap();
    let out = tmp.path().join("copy.img");
    ok(tool("bmaptool")
        .arg("copy")
        .arg("--bmap")
        .arg(&bmap)
        .arg(&img)
        .arg(&out));
    let (a, b) = (std::fs::read(&img).unwrap(), std::fs::read(&out).unwrap());
    assert_eq!(a.len(), b.len());
    for &(s, e) in &ranges {
        assert!(
            a[s as usize..e as usize] == b[s as usize..e as usize],
            "range {s}..{e} differs"
        );
    }
    let text = std::fs::read_to_string(&bmap).unwrap();
    assert!(text.contains("<MappedBlocksCount> 8 </MappedBlocksCount>"), "{text}");

    // A changed byte inside a mapped range: bmaptool's range checksum catches it.
    let mut f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.seek(SeekFrom::Start(MIB + 5)).unwrap();
    f.write_all(b"!").unwrap();
    drop(f);
    let bad = tool("bmaptool")
        .arg("copy")
        .arg("--bmap")
        .arg(&bmap)
        .arg(&img)
        .arg(&out)
        .output()
        .unwrap();
    assert!(!bad.status.success(), "bmaptool accepted a changed range");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("checksum mismatch"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // A changed bmap: its own checksum catches it.
    std::fs::write(
        &bmap,
        text.replace("<BlockSize> 4096 </BlockSize>", "<BlockSize>  4096 </BlockSize>"),
    )
    .unwrap();
    let bad = tool("bmaptool")
        .arg("copy")
        .arg("--bmap")
        .arg(&bmap)
        .arg(&img)
        .arg(&out)
        .output()
        .unwrap();
    assert!(!bad.status.success(), "bmaptool accepted a changed bmap");
}

/// The ranges the image stage reports hold everything that matters: with every other
/// byte of a copy overwritten with random data, the table, both file systems and their
/// files read back, and bmaptool copies the image with the bmap made from them.
#[test]
fn the_mapped_ranges_are_all_an_image_needs() {
    let tmp = tempfile::tempdir().unwrap();
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let recipe = write(
        tmp.path(),
        "r.yaml",
        "rootfs: {tar: rootfs.tar}
image:
  table: gpt
  partitions:
    boot: {type: esp, filesystem: vfat, size: 64MiB, mount: /boot/firmware}
    root: {type: linux, filesystem: ext4, size: auto, mount: /}
output: {compression: none}
",
    );
    let out = tmp.path().join("out");
    ok(imgbuild().arg("--out").arg(&out).arg(&recipe));
    let img = out.join("r.img");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let mapped: Vec<(u64, u64)> = serde_json::from_value(m["mapped"].clone()).unwrap();
    let size = std::fs::metadata(&img).unwrap().len();
    let listed: u64 = mapped.iter().map(|(s, e)| e - s).sum();
    assert!(listed > 0 && listed < size / 2, "{listed} of {size} bytes mapped");

    // A copy whose unmapped bytes are all random.
    let copy = tmp.path().join("copy.img");
    std::fs::copy(&img, &copy).unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut at = 0;
    for &(s, e) in mapped.iter().chain([(size, size)].iter()) {
        if s > at {
            let noise: Vec<u8> = (at..s)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&noise).unwrap();
        }
        at = at.max(e);
    }
    drop(f);
    let (label, parts) = sfdisk(&copy);
    assert_eq!((label.as_str(), parts.len()), ("gpt", 2));
    let (boot, root) = (tmp.path().join("boot.fat"), tmp.path().join("root.ext4"));
    extract(&copy, &parts[0], &boot);
    extract(&copy, &parts[1], &root);
    fsck_fat_clean(&boot);
    e2fsck_clean(&root);
    assert_eq!(mtype(&boot, "/config.txt"), b"arm_64bit=1\nenable_uart=1\n");
    let (orig_root, orig_boot) = (tmp.path().join("orig.ext4"), tmp.path().join("orig.fat"));
    let (_, orig_parts) = sfdisk(&img);
    extract(&img, &orig_parts[1], &orig_root);
    extract(&img, &orig_parts[0], &orig_boot);
    for file in ["/etc/hostname", "/usr/bin/passwd"] {
        assert_eq!(
            debugfs(&root, &format!("cat {file}")),
            debugfs(&orig_root, &format!("cat {file}")),
            "{file}"
        );
    }
    assert!(
        mtype(&boot, "/kernel8.img") == mtype(&orig_boot, "/kernel8.img"),
        "kernel8.img differs"
    );

    let bmap = tmp.path().join("r.bmap");
    imgbuild::release::bmap::write(&img, &mapped, &bmap).unwrap();
    let flashed = tmp.path().join("flashed.img");
    ok(tool("bmaptool")
        .arg("copy")
        .arg("--bmap")
        .arg(&bmap)
        .arg(&img)
        .arg(&flashed));
    let (_, flashed_parts) = sfdisk(&flashed);
    let flashed_root = tmp.path().join("flashed.ext4");
    extract(&flashed, &flashed_parts[1], &flashed_root);
    e2fsck_clean(&flashed_root);
}
