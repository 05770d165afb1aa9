//! Writer tests. Every image is checked with independent tools: `fsck.fat`
//! (dosfstools) must find it clean and mtools (`mdir`, `mtype`) must read
//! back the names and the exact bytes.

use std::fs::File;
use std::os::unix::fs::MetadataExt;

use super::layout;
use super::test_util::{Fixture, MIB, fsck, fsck_region, mdir, mtype, opts, pattern};
use super::*;

#[test]
fn fat12_small_volume() {
    let mut fx = Fixture::new();
    fx.file("config.txt", b"arm_64bit=1\n".to_vec());
    fx.file("README.TXT", b"upper\n".to_vec());
    fx.file("Mixed Case Name.txt", b"mixed\n".to_vec());
    fx.file("empty.dat", Vec::new());
    fx.file("sub/dir/deeper/file.bin", pattern(3000, 1));
    let (img, f) = fx.image("fat12.img", MIB);
    let st = write(&f, 0, MIB, &fx.nodes, &opts("boot", None)).unwrap();
    assert_eq!(st.fat_type, FatType::Fat12);
    fsck(&img);
    fx.verify(&img, 0, MIB);
    let root = mdir(&img, 0, "");
    for n in ["config.txt", "README.TXT", "Mixed Case Name.txt", "empty.dat", "sub/"] {
        assert!(root.contains(&n.to_string()), "{n} missing from {root:?}");
    }
    let info = FatReader::open(File::open(&img).unwrap(), 0, MIB).unwrap().info();
    assert_eq!(info.label, "BOOT");
    assert_eq!(info.volume_id, 0x1234_ABCD);
    assert_eq!(info.free_clusters, st.clusters_total - st.clusters_used);
}

#[test]
fn fat16_nested_long_and_unicode_names() {
    let mut fx = Fixture::new();
    fx.dir("a");
    fx.file("a/b/c/d/deep file with a rather long name.txt", b"deep\n".to_vec());
    fx.file("café-ünïcode.txt", "unicode ✓\n".as_bytes().to_vec());
    fx.file("日本語のファイル名.txt", "日本語\n".as_bytes().to_vec());
    fx.file("exactly13char", b"13".to_vec());
    fx.file(".hidden", b"dot\n".to_vec());
    fx.file("big.bin", pattern(3 * MIB as usize + 777, 2));
    fx.file("a/empty", Vec::new());
    let (img, f) = fx.image("fat16.img", 16 * MIB);
    let st = write(&f, 0, 16 * MIB, &fx.nodes, &opts("", None)).unwrap();
    assert_eq!(st.fat_type, FatType::Fat16);
    assert!(
        3 * MIB / u64::from(st.cluster_size) > 1000,
        "big file spans many clusters"
    );
    let report = fsck(&img);
    assert!(
        report.contains(&format!("{}/{} clusters", st.clusters_used, st.clusters_total)),
        "{report}"
    );
    fx.verify(&img, 0, 16 * MIB);
    assert_eq!(mdir(&img, 0, "a/b/c/d"), ["deep file with a rather long name.txt"]);
    let root = mdir(&img, 0, "");
    assert!(root.contains(&"日本語のファイル名.txt".to_string()), "{root:?}");
    assert!(root.contains(&"café-ünïcode.txt".to_string()), "{root:?}");
    let info = FatReader::open(File::open(&img).unwrap(), 0, 16 * MIB).unwrap().info();
    assert_eq!(info.label, "");
}

#[test]
fn fat32_at_offset_with_2000_entry_directory() {
    let mut fx = Fixture::new();
    // All 2,000 small files are ranges of one shared source file, like
    // members of a tar archive.
    let shared = fx.dir.path().join("archive.tar");
    let mut blob = pattern(4096, 3);
    let mut expect = Vec::new();
    for i in 0..2000 {
        let data = format!("contents of file number {i}\n").into_bytes();
        let range = DataRange {
            path: shared.clone(),
            offset: blob.len() as u64,
            len: data.len() as u64,
        };
        blob.extend_from_slice(&data);
        let path = format!("many/a file with a long name number {i:04}.txt");
        fx.nodes.push(Node {
            path: path.clone(),
            kind: NodeKind::File(range),
            mtime: 1_500_000_000 + i,
        });
        expect.push((path, data));
    }
    let big = pattern(5 * MIB as usize, 4);
    fx.nodes.push(Node {
        path: "kernel8.img".into(),
        kind: NodeKind::File(DataRange {
            path: shared.clone(),
            offset: blob.len() as u64,
            len: big.len() as u64,
        }),
        mtime: 1_700_000_000,
    });
    blob.extend_from_slice(&big);
    blob.extend_from_slice(b"trailing bytes that are not part of any file");
    fs_err::write(&shared, &blob).unwrap();
    expect.push(("kernel8.img".into(), big));
    fx.expect = expect;

    let (offset, size) = (MIB, 64 * MIB);
    let (img, f) = fx.image("fat32.img", offset + size + MIB);
    let st = write(&f, offset, size, &fx.nodes, &opts("RPI-BOOT", None)).unwrap();
    assert_eq!(st.fat_type, FatType::Fat32);
    fsck_region(&img, offset, size);
    let listed = mdir(&img, offset, "many");
    assert_eq!(listed.len(), 2000);
    assert!(listed.contains(&"a file with a long name number 1999.txt".to_string()));
    for i in [0, 1, 999, 1999, 2000] {
        let (path, data) = &fx.expect[i];
        assert!(mtype(&img, offset, path) == *data, "mtype {path}");
    }
    let mut r = FatReader::open(File::open(&img).unwrap(), offset, size).unwrap();
    assert_eq!(r.list("many").unwrap().len(), 2000);
    for (path, data) in &fx.expect {
        assert!(r.read_file(path).unwrap() == *data, "{path}");
    }
    assert_eq!(r.info().label, "RPI-BOOT");
    // Nothing outside the region was touched.
    let all = fs_err::read(&img).unwrap();
    assert!(all[..offset as usize].iter().all(|&b| b == 0));
    assert!(all[(offset + size) as usize..].iter().all(|&b| b == 0));
}

fn node(path: &str) -> Node {
    Node {
        path: path.into(),
        kind: NodeKind::Dir,
        mtime: 0,
    }
}

#[test]
fn invalid_trees_are_errors() {
    let o = opts("", None);
    let err = |paths: &[&str]| {
        let nodes: Vec<Node> = paths.iter().map(|p| node(p)).collect();
        min_size(&nodes, &o).unwrap_err()
    };
    assert!(matches!(err(&["a.txt", "A.TXT"]), FatError::NameClash { .. }));
    assert!(matches!(err(&["Boot/x", "boot/y"]), FatError::NameClash { .. }));
    assert!(matches!(err(&["Café", "CAFÉ"]), FatError::NameClash { .. }));
    assert!(matches!(err(&["x", "x"]), FatError::Duplicate { .. }));
    for bad in ["/abs", "a/../b", "a//b", "a:b", "a/./b", "dot.", ""] {
        assert!(matches!(err(&[bad]), FatError::InvalidPath { .. }), "{bad}");
    }
    let mut fx = Fixture::new();
    fx.file("f", b"x".to_vec());
    fx.nodes.push(node("f/child"));
    assert!(matches!(min_size(&fx.nodes, &o), Err(FatError::ParentIsFile { .. })));
    let (_, f) = fx.image("clash.img", 4 * MIB);
    let nodes = [node("Docs"), node("docs/readme")];
    let e = write(&f, 0, 4 * MIB, &nodes, &o).unwrap_err();
    assert!(e.to_string().contains("differ only in letter case"), "{e}");
    assert!(matches!(
        check_label_err("way too long label"),
        FatError::InvalidLabel { .. }
    ));
    assert!(matches!(check_label_err("a*b"), FatError::InvalidLabel { .. }));
}

fn check_label_err(label: &str) -> FatError {
    min_size(&[], &opts(label, None)).unwrap_err()
}

#[test]
fn output_is_deterministic() {
    let mut fx = Fixture::new();
    for i in 0..50 {
        fx.file(&format!("d{}/Some File {i}.txt", i % 3), pattern(5000 + i, i as u64));
    }
    let mut reversed = fx.nodes.clone();
    reversed.reverse();
    let (p1, f1) = fx.image("one.img", 40 * MIB);
    let (p2, f2) = fx.image("two.img", 40 * MIB);
    write(&f1, 0, 40 * MIB, &fx.nodes, &opts("SAME", None)).unwrap();
    write(&f2, 0, 40 * MIB, &reversed, &opts("SAME", None)).unwrap();
    assert!(fs_err::read(&p1).unwrap() == fs_err::read(&p2).unwrap());
}

#[test]
fn too_small_reports_the_size_needed() {
    let mut fx = Fixture::new();
    fx.file("big.bin", pattern(3 * MIB as usize, 5));
    let (img, f) = fx.image("small.img", 8 * MIB);
    let e = write(&f, 0, 2 * MIB, &fx.nodes, &opts("", None)).unwrap_err();
    let FatError::TooSmall { size, needed } = e else {
        panic!("{e}")
    };
    assert_eq!(size, 2 * MIB);
    assert!(needed > 3 * MIB && needed <= 8 * MIB, "{needed}");
    assert_eq!(needed, min_size(&fx.nodes, &opts("", None)).unwrap());
    write(&f, 0, needed, &fx.nodes, &opts("", None)).unwrap();
    fsck_region(&img, 0, needed);
    fx.verify(&img, 0, needed);
}

#[test]
fn min_size_suffices_for_every_type() {
    let mut fx = Fixture::new();
    for i in 0..40 {
        fx.file(
            &format!("dir {}/file number {i}.bin", i % 4),
            pattern(20_000 * (i + 1), i as u64),
        );
    }
    for t in [None, Some(FatType::Fat12), Some(FatType::Fat16), Some(FatType::Fat32)] {
        let o = opts("MIN", t);
        let size = min_size(&fx.nodes, &o).unwrap();
        let (img, f) = fx.image("min.img", size);
        let st = write(&f, 0, size, &fx.nodes, &o).unwrap();
        if let Some(t) = t {
            assert_eq!(st.fat_type, t);
        }
        fsck(&img);
        fx.verify(&img, 0, size);
        // One MiB less must not fit.
        let (_, f) = fx.image("less.img", size);
        let e = write(&f, 0, size - MIB, &fx.nodes, &o).unwrap_err();
        assert!(
            matches!(e, FatError::TooSmall { needed, .. } if needed == size),
            "{t:?}: {e}"
        );
    }
}

#[test]
fn fixed_root_directory_overflow() {
    let nodes: Vec<Node> = (0..600).map(|i| node(&format!("dir{i:03}"))).collect();
    let e = min_size(&nodes, &opts("", Some(FatType::Fat16))).unwrap_err();
    assert!(
        matches!(
            e,
            FatError::RootDirFull {
                entries: 600,
                max: 512,
                ..
            }
        ),
        "{e}"
    );
    let size = min_size(&nodes, &opts("", None)).unwrap();
    assert!(size >= 33 * MIB, "needs FAT32: {size}");
    let fx = Fixture::new();
    let (img, f) = fx.image("root.img", size);
    assert_eq!(
        write(&f, 0, size, &nodes, &opts("", None)).unwrap().fat_type,
        FatType::Fat32
    );
    fsck(&img);
    assert_eq!(mdir(&img, 0, "").len(), 600);
}

#[test]
fn big_mostly_empty_fat32_stays_sparse() {
    let mut fx = Fixture::new();
    fx.file("start.elf", pattern(100_000, 6));
    fx.file("zeros.bin", vec![0; 2 * MIB as usize]);
    let size = 2048 * MIB;
    let (img, f) = fx.image("sparse.img", size);
    let st = write(&f, 0, size, &fx.nodes, &opts("", None)).unwrap();
    assert_eq!((st.fat_type, st.cluster_size), (FatType::Fat32, 4096));
    let allocated = fs_err::metadata(&img).unwrap().blocks() * 512;
    assert!(allocated < 2 * MIB, "{allocated} bytes allocated");
    fsck(&img);
    fx.verify(&img, 0, size);
}

#[test]
fn source_errors_name_the_path() {
    let mut fx = Fixture::new();
    fx.file("ok.txt", b"12345".to_vec());
    let o = opts("", None);
    let (_, f) = fx.image("src.img", 4 * MIB);
    let mut nodes = fx.nodes.clone();
    if let NodeKind::File(r) = &mut nodes[0].kind {
        r.offset = 2; // 3 bytes left, 5 wanted
    }
    let e = write(&f, 0, 4 * MIB, &nodes, &o).unwrap_err();
    assert!(
        matches!(
            &e,
            FatError::SourceTooShort {
                got: 3,
                expected: 5,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("src-0") && e.to_string().contains("ok.txt"),
        "{e}"
    );
    if let NodeKind::File(r) = &mut nodes[0].kind {
        r.path = fx.dir.path().join("missing");
    }
    let e = write(&f, 0, 4 * MIB, &nodes, &o).unwrap_err();
    assert!(
        matches!(&e, FatError::Source { .. }) && e.to_string().contains("missing"),
        "{e}"
    );
}

#[test]
fn empty_volumes_of_every_type() {
    let fx = Fixture::new();
    for t in [FatType::Fat12, FatType::Fat16, FatType::Fat32] {
        let o = opts("EMPTY", Some(t));
        let size = min_size(&[], &o).unwrap();
        let (img, f) = fx.image("empty.img", size);
        assert_eq!(write(&f, 0, size, &[], &o).unwrap().fat_type, t);
        fsck(&img);
        assert!(mdir(&img, 0, "").is_empty());
    }
}

/// The sizes where FAT16 and FAT32 first become possible sit right at the
/// cluster-count limits (4085 and 65525); an off-by-one there makes fsck.fat
/// read the FAT with the wrong entry width.
#[test]
fn type_boundaries_pass_fsck() {
    let mut fx = Fixture::new();
    fx.file("a.txt", b"boundary\n".to_vec());
    let first_ok = |t: FatType, from: u64| (from..from + 4096).find(|&s| layout::for_type(s, t).is_ok()).unwrap();
    let fat16 = first_ok(FatType::Fat16, 4000);
    let fat32 = first_ok(FatType::Fat32, 65_000);
    // Largest FAT12 volume with 512-byte clusters.
    let fat12 = (4000..5000)
        .filter(|&s| layout::compute(s, FatType::Fat12, 1).is_some_and(|g| g.cluster_count == 4084))
        .max()
        .unwrap();
    let count = |s, t| layout::for_type(s, t).unwrap().cluster_count;
    assert_eq!(count(fat16, FatType::Fat16), 4085);
    assert_eq!(count(fat32, FatType::Fat32), 65_525);
    assert_eq!(count(fat12, FatType::Fat12), 4084);
    for (sectors, t) in [
        (fat16, FatType::Fat16),
        (fat32, FatType::Fat32),
        (fat12, FatType::Fat12),
    ] {
        let g = layout::for_type(sectors, t).unwrap();
        let size = sectors * 512;
        let (img, f) = fx.image("edge.img", size);
        let st = write(&f, 0, size, &fx.nodes, &opts("", Some(t))).unwrap();
        assert_eq!((st.fat_type, st.clusters_total), (t, g.cluster_count));
        let report = fsck(&img);
        assert!(report.contains(&format!("/{} clusters", g.cluster_count)), "{report}");
        fx.verify(&img, 0, size);
    }
}
