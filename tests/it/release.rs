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
