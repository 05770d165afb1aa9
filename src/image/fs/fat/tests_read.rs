//! Reader tests: [`FatReader`] on volumes made by an independent writer
//! (`mkfs.fat` + mtools' `mmd`/`mcopy`) for all three FAT types, and on
//! our own images (round trip of names, sizes, free space).

use std::fs::File;
use std::path::Path;

use super::test_util::{Fixture, MIB, fsck, host_tool, opts, pattern};
use super::*;

fn mtools(tool: &str, args: &[&str]) {
    let out = host_tool(tool, args);
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Used clusters as fsck.fat counts them ("N files, USED/TOTAL clusters").
fn fsck_used_total(report: &str) -> (u64, u64) {
    let line = report.lines().rev().find(|l| l.ends_with(" clusters")).unwrap();
    let nums = line.rsplit(", ").next().unwrap().trim_end_matches(" clusters");
    let (u, t) = nums.split_once('/').unwrap();
    (u.parse().unwrap(), t.parse().unwrap())
}

#[test]
fn reads_volumes_made_by_mkfs_fat_and_mcopy() {
    let fx = Fixture::new();
    let big = pattern(300_000, 7);
    let bigp = fx.dir.path().join("big.bin");
    fs_err::write(&bigp, &big).unwrap();
    let small = fx.dir.path().join("small.txt");
    fs_err::write(&small, b"hello from mtools\n").unwrap();
    for (fat, kib, t) in [
        ("12", 2048, FatType::Fat12),
        ("16", 16384, FatType::Fat16),
        ("32", 65536, FatType::Fat32),
    ] {
        let img = fx.dir.path().join(format!("mkfs{fat}.img"));
        let _ = fs_err::remove_file(&img);
        let out = host_tool(
            "mkfs.fat",
            &[
                "-C",
                "-F",
                fat,
                "-n",
                "MKFSVOL",
                "-i",
                "CAFE1234",
                img.to_str().unwrap(),
                &kib.to_string(),
            ],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let i = img.to_str().unwrap();
        mtools("mmd", &["-i", i, "::/Sub Dir", "::/Sub Dir/Nested"]);
        mtools(
            "mcopy",
            &["-i", i, bigp.to_str().unwrap(), "::/Sub Dir/Nested/Big Binary File.bin"],
        );
        mtools("mcopy", &["-i", i, small.to_str().unwrap(), "::/readme.txt"]);
        mtools("mcopy", &["-i", i, small.to_str().unwrap(), "::/Ünïcödé 日本.txt"]);
        let size = kib * 1024;
        let mut r = FatReader::open(File::open(&img).unwrap(), 0, size).unwrap();
        let info = r.info();
        assert_eq!(info.fat_type, t);
        assert_eq!(info.label, "MKFSVOL");
        assert_eq!(info.volume_id, 0xCAFE_1234);
        assert_eq!(info.size_bytes, size);
        let (used, total) = fsck_used_total(&fsck(&img));
        assert_eq!(
            (info.total_clusters - info.free_clusters, info.total_clusters),
            (used, total),
            "FAT{fat}"
        );
        assert_eq!(r.read_file("sub dir/NESTED/big binary file.BIN").unwrap(), big);
        assert_eq!(r.read_file("/README.TXT").unwrap(), b"hello from mtools\n");
        assert_eq!(r.read_file("ünïcödé 日本.txt").unwrap(), b"hello from mtools\n");
        let mut names: Vec<(String, bool, u64)> = r
            .list("")
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.is_dir, e.size))
            .collect();
        names.sort();
        let name_only: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(name_only, ["Sub Dir", "readme.txt", "Ünïcödé 日本.txt"], "FAT{fat}");
        let nested = r.list("Sub Dir/Nested").unwrap();
        assert_eq!(nested.len(), 1);
        assert_eq!(
            (nested[0].name.as_str(), nested[0].size),
            ("Big Binary File.bin", big.len() as u64)
        );
        assert!(matches!(r.read_file("nope.txt"), Err(FatError::NotFound { .. })));
        assert!(matches!(r.read_file("Sub Dir"), Err(FatError::IsADirectory { .. })));
        assert!(matches!(r.list("readme.txt"), Err(FatError::NotADirectory { .. })));
    }
}

#[test]
fn reads_back_our_own_images() {
    let mut fx = Fixture::new();
    fx.file("config.txt", b"dtoverlay=vc4-kms-v3d\n".to_vec());
    fx.file("Overlays/README", b"overlays\n".to_vec());
    fx.file("Overlays/vc4-kms-v3d.dtbo", pattern(40_000, 8));
    fx.file("ünï/日本語.txt", "日本語\n".as_bytes().to_vec());
    fx.file("empty", Vec::new());
    for (t, size) in [
        (FatType::Fat12, MIB),
        (FatType::Fat16, 8 * MIB),
        (FatType::Fat32, 40 * MIB),
    ] {
        let (img, f) = fx.image("own.img", size);
        let st = write(&f, 0, size, &fx.nodes, &opts("Own", Some(t))).unwrap();
        let mut r = FatReader::open(File::open(&img).unwrap(), 0, size).unwrap();
        let info = r.info();
        assert_eq!(info.fat_type, t);
        assert_eq!(info.label, "OWN");
        assert_eq!(info.oem_name, "imgbuild");
        assert_eq!(info.cluster_size, st.cluster_size);
        assert_eq!(info.total_clusters, st.clusters_total);
        assert_eq!(info.free_clusters, st.clusters_total - st.clusters_used);
        assert_eq!(info.used_bytes, st.clusters_used * u64::from(st.cluster_size));
        let root = r.list("/").unwrap();
        let names: Vec<&str> = root.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Overlays", "config.txt", "empty", "ünï"]);
        // Lowercase 8.3 names use the NT case flags instead of long names.
        assert_eq!(root[1].short_name, "CONFIG.TXT");
        assert_eq!(root[1].mtime, 1_700_000_000);
        let sub = r.list("OVERLAYS").unwrap();
        assert_eq!(sub.iter().map(|e| e.size).collect::<Vec<_>>(), [9, 40_000]);
        check_dot_entries(&img, &info, root[0].first_cluster);
        for (path, data) in &fx.expect {
            assert_eq!(&r.read_file(&path.to_uppercase()).unwrap(), data, "{path}");
        }
    }
}

/// Checks the raw `.` and `..` entries of a first-level directory: `..` must
/// be cluster 0 because its parent is the root (on FAT32 too).
fn check_dot_entries(img: &Path, info: &FatInfo, cluster: u32) {
    let data = fs_err::read(img).unwrap();
    let boot = &data[..512];
    let reserved = u64::from(u16::from_le_bytes([boot[14], boot[15]]));
    let fat_len = match u16::from_le_bytes([boot[22], boot[23]]) {
        0 => u64::from(u32::from_le_bytes([boot[36], boot[37], boot[38], boot[39]])),
        n => u64::from(n),
    };
    let root_entries = u64::from(u16::from_le_bytes([boot[17], boot[18]]));
    let data_start = (reserved + 2 * fat_len) * 512 + root_entries * 32;
    let cluster = u64::from(cluster);
    let at = (data_start + (cluster - 2) * u64::from(info.cluster_size)) as usize;
    let dot = &data[at..at + 32];
    let dotdot = &data[at + 32..at + 64];
    assert_eq!(&dot[..11], b".          ");
    assert_eq!(u16::from_le_bytes([dot[26], dot[27]]) as u64, cluster);
    assert_eq!(&dotdot[..11], b"..         ");
    assert_eq!(&dotdot[20..22], &[0, 0]);
    assert_eq!(&dotdot[26..28], &[0, 0]);
}
