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

/// `NAME.yaml` in `dir`: the fixture root archive as a FAT boot partition of `boot_type`
/// and an ext4 root, in a `table` partition table, uncompressed.
fn fixture_recipe(dir: &Path, name: &str, table: &str, boot_type: &str) -> std::path::PathBuf {
    rootfs_tar(&dir.join("rootfs.tar"));
    write(
        dir,
        &format!("{name}.yaml"),
        &format!(
            "rootfs: {{tar: rootfs.tar}}
image:
  table: {table}
  partitions:
    boot: {{type: {boot_type}, filesystem: vfat, size: 64MiB, mount: /boot/firmware}}
    root: {{type: linux, filesystem: ext4, size: auto, mount: /}}
output: {{compression: none}}
"
        ),
    )
}

/// The ranges the image stage reports hold everything that matters: with every other
/// byte of a copy overwritten with random data, the table, both file systems and their
/// files read back, and bmaptool copies the image with the bmap made from them.
#[test]
fn the_mapped_ranges_are_all_an_image_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = fixture_recipe(tmp.path(), "r", "gpt", "esp");
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

fn sha256_of(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// `imgbuild release` with a small part limit: the download, its parts (each under the
/// limit, joined with `cat` the whole file), the bmap, SHA256SUMS that `sha256sum -c`
/// accepts, release.json whose sizes and checksums are the files', bmaptool flashing the
/// download, and a second release of the same image identical to the first.
#[test]
fn a_release_has_parts_under_the_limit_sums_and_a_bmap_and_repeats_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = fixture_recipe(tmp.path(), "rel", "mbr", "fat32-lba");
    let release = |out: &Path| {
        ok(imgbuild()
            .current_dir(tmp.path())
            .args(["release", "--part-size", "16KiB", "--out"])
            .arg(out)
            .arg(&recipe));
    };
    let (r1, r2) = (tmp.path().join("r1"), tmp.path().join("r2"));
    release(&r1);
    assert!(
        tmp.path().join("images/rel/rel.img").is_file(),
        "the missing image was built first"
    );
    release(&r2);

    let whole = std::fs::read(r1.join("rel.img.xz")).unwrap();
    let mut joined = Vec::new();
    let mut n = 0;
    while let Ok(part) = std::fs::read(r1.join(format!("rel.img.xz.{:03}", n + 1))) {
        assert!(part.len() as u64 <= 16 * 1024, "part {} is {} bytes", n + 1, part.len());
        joined.extend_from_slice(&part);
        n += 1;
    }
    assert!(n >= 2, "{} bytes of xz made {n} parts", whole.len());
    let cat = ok(tool("sh")
        .arg("-c")
        .arg("cat rel.img.xz.0* | sha256sum")
        .current_dir(&r1));
    assert!(
        text(&cat).starts_with(&sha256_of(&whole)),
        "cat of the parts is not the file"
    );
    assert!(joined == whole);
    ok(tool("sha256sum").arg("-c").arg("SHA256SUMS").current_dir(&r1));
    ok(tool("xz").arg("-t").arg(r1.join("rel.img.xz")));

    let facts: serde_json::Value = serde_json::from_slice(&std::fs::read(r1.join("release.json")).unwrap()).unwrap();
    let raw = std::fs::read(tmp.path().join("images/rel/rel.img")).unwrap();
    assert_eq!(facts[0]["download_size"].as_u64(), Some(whole.len() as u64));
    assert_eq!(facts[0]["download_sha256"].as_str(), Some(sha256_of(&whole).as_str()));
    assert_eq!(facts[0]["extract_size"].as_u64(), Some(raw.len() as u64));
    assert_eq!(facts[0]["extract_sha256"].as_str(), Some(sha256_of(&raw).as_str()));
    assert_eq!(facts[0]["parts"].as_array().unwrap().len(), n);

    let flashed = tmp.path().join("flashed.img");
    ok(tool("bmaptool")
        .arg("copy")
        .arg("--bmap")
        .arg(r1.join("rel.bmap"))
        .arg(r1.join("rel.img.xz"))
        .arg(&flashed));
    let (_, parts) = sfdisk(&flashed);
    let root = tmp.path().join("flashed.ext4");
    extract(&flashed, &parts[1], &root);
    e2fsck_clean(&root);

    // A release with a larger limit into the same directory leaves no stale part.
    ok(imgbuild()
        .current_dir(tmp.path())
        .args(["release", "--part-size", "1MiB", "--out"])
        .arg(&r2)
        .arg(&recipe));
    assert!(!r2.join("rel.img.xz.001").exists(), "a stale part was left");
    ok(tool("sha256sum").arg("-c").arg("SHA256SUMS").current_dir(&r2));
    release(&r2);

    for e in std::fs::read_dir(&r1).unwrap() {
        let name = e.unwrap().file_name();
        let (a, b) = (
            std::fs::read(r1.join(&name)).unwrap(),
            std::fs::read(r2.join(&name)).unwrap(),
        );
        assert!(a == b, "{name:?} differs between two releases");
    }
}

#[test]
fn a_release_needs_an_out_directory() {
    let (code, err) = fails(imgbuild().args(["release", "x.yaml"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`imgbuild release` needs --out DIR"), "{err}");
}

fn imager_schema() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imager/os-list.schema.json")
}

/// A Pi recipe with Imager tags, and a container, released together: the Imager
/// repository file validates against our JSON Schema of Imager's documented format
/// (check-jsonschema), every size and checksum in it is recomputed from the files, its
/// icon and bmap URLs name files of the release, the container is published as its
/// archive with no Imager entry, and the notes list both. A download in parts has no
/// Imager entry without a whole-file host, and points there with one; zstd works too.
#[test]
fn the_imager_repository_validates_and_its_facts_are_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let pi = fixture_recipe(tmp.path(), "pi", "mbr", "fat32-lba");
    let body = std::fs::read_to_string(&pi).unwrap();
    write(
        tmp.path(),
        "pi.yaml",
        &format!(
            "description: \"Workshop server for the Pi 3 and 4\"
release:
  title: Workshop server
  boards: [Raspberry Pi 4, Raspberry Pi 3]
  imager_devices: [pi4-64bit, pi3-64bit]
  website: https://example.org/
{body}"
        ),
    );
    let ctr = write(
        tmp.path(),
        "ctr.yaml",
        "rootfs: {tar: rootfs.tar, architecture: amd64}\noutput: {format: oci}\n",
    );
    let out = tmp.path().join("rel");
    let release = |extra: &[&str]| {
        let mut c = imgbuild();
        c.current_dir(tmp.path())
            .args(["release", "--url", "https://example.org/assets/", "--out"])
            .arg(&out)
            .args(extra)
            .arg(&pi)
            .arg(&ctr);
        c
    };
    ok(&mut release(&[]));
    let repo_file = out.join("rpi-imager.json");
    ok(tool("check-jsonschema")
        .arg("--schemafile")
        .arg(imager_schema())
        .arg(&repo_file));
    let repo: serde_json::Value = serde_json::from_slice(&std::fs::read(&repo_file).unwrap()).unwrap();
    let list = repo["os_list"].as_array().unwrap();
    assert_eq!(list.len(), 1, "one entry, the Pi image: {repo}");
    let e = &list[0];
    let xz = std::fs::read(out.join("pi.img.xz")).unwrap();
    let raw = ok(tool("xz").arg("-dc").arg(out.join("pi.img.xz"))).stdout;
    assert_eq!(e["name"], "Workshop server");
    assert_eq!(e["description"], "Workshop server for the Pi 3 and 4");
    assert_eq!(e["url"], "https://example.org/assets/pi.img.xz");
    assert_eq!(e["image_download_size"].as_u64(), Some(xz.len() as u64));
    assert_eq!(e["image_download_sha256"].as_str(), Some(sha256_of(&xz).as_str()));
    assert_eq!(e["extract_size"].as_u64(), Some(raw.len() as u64));
    assert_eq!(e["extract_sha256"].as_str(), Some(sha256_of(&raw).as_str()));
    assert_eq!(e["devices"], serde_json::json!(["pi4-64bit", "pi3-64bit"]));
    assert_eq!(e["website"], "https://example.org/");
    for (field, file) in [("icon", "imgbuild-icon.svg"), ("bmap_url", "pi.bmap")] {
        assert_eq!(
            e[field].as_str(),
            Some(format!("https://example.org/assets/{file}").as_str())
        );
        assert!(out.join(file).is_file(), "{file} is published");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("images/pi/manifest.json")).unwrap()).unwrap();
    let epoch = manifest["source_date_epoch"].as_i64().unwrap();
    let date = text(&ok(tool("date").args(["-u", "-d", &format!("@{epoch}"), "+%F"])));
    assert_eq!(e["release_date"].as_str(), Some(date.trim()));

    let archive = std::fs::read(tmp.path().join("images/ctr/ctr.oci.tar")).unwrap();
    assert!(
        std::fs::read(out.join("ctr.oci.tar")).unwrap() == archive,
        "the archive as built"
    );
    ok(tool("sha256sum").arg("-c").arg("SHA256SUMS").current_dir(&out));
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(
        sums.contains("  ctr.oci.tar\n") && sums.contains("  pi.bmap\n"),
        "{sums}"
    );
    let notes = std::fs::read_to_string(out.join("RELEASE-NOTES.md")).unwrap();
    for want in [
        "## Workshop server (`pi`)",
        "Raspberry Pi 4, Raspberry Pi 3",
        &sha256_of(&xz),
        &sha256_of(&raw),
        "## ctr (`ctr`)",
        &sha256_of(&archive),
        "rpi-imager --repo https://example.org/assets/rpi-imager.json",
        "bmaptool copy --bmap pi.bmap pi.img.xz",
        // Where instructors set this card's secrets, and where the made ones are.
        "open `imgbuild-settings.txt` on the card's boot partition",
        "`imgbuild-credentials.txt`",
    ] {
        assert!(notes.contains(want), "notes lack {want:?}:\n{notes}");
    }

    // In parts: Imager cannot join them, so the entry needs a host of whole files.
    let (code, err) = fails(&mut release(&["--part-size", "16KiB"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pi.img.xz") && err.contains("--whole-url"), "{err}");
    ok(&mut release(&[
        "--part-size",
        "16KiB",
        "--whole-url",
        "https://big.example.org/v1",
    ]));
    let repo: serde_json::Value = serde_json::from_slice(&std::fs::read(&repo_file).unwrap()).unwrap();
    assert_eq!(repo["os_list"][0]["url"], "https://big.example.org/v1/pi.img.xz");
    let notes = std::fs::read_to_string(out.join("RELEASE-NOTES.md")).unwrap();
    for want in [
        "cat pi.img.xz.001 pi.img.xz.002",
        "copy /b pi.img.xz.001+pi.img.xz.002",
        "cmd /c copy /b",
        "Get-FileHash",
        "https://big.example.org/v1/pi.img.xz",
    ] {
        assert!(notes.contains(want), "notes lack {want:?}:\n{notes}");
    }

    // zstd: Imager reads .zst too. The directory holds this release only.
    ok(&mut release(&["--compression", "zstd"]));
    let zst = out.join("pi.img.zst");
    for gone in ["pi.img.xz", "pi.img.xz.001", "ctr.oci.tar.001"] {
        assert!(!out.join(gone).exists(), "{gone} of the earlier release was left");
    }
    let raw2 = ok(tool("zstd").arg("-dc").arg(&zst)).stdout;
    assert!(raw2 == raw, "the zstd download is the same image");
    ok(tool("check-jsonschema")
        .arg("--schemafile")
        .arg(imager_schema())
        .arg(&repo_file));
}

/// The build's own `.img.xz` is the download (not compressed again), also when only it
/// and the manifest were handed on (a CI job's artifact): the raw image is then unpacked
/// for the bmap, and the facts are the same as with the raw image there.
#[test]
fn the_builds_xz_is_released_as_it_is_even_without_the_raw_image() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = fixture_recipe(tmp.path(), "cx", "gpt", "esp");
    let body = std::fs::read_to_string(&recipe)
        .unwrap()
        .replace("output: {compression: none}", "output: {compression: xz}");
    std::fs::write(&recipe, body).unwrap();
    let release = |out: &Path| {
        ok(imgbuild()
            .current_dir(tmp.path())
            .args(["release", "--out"])
            .arg(out)
            .arg(&recipe));
        std::fs::read_to_string(out.join("release.json")).unwrap()
    };
    let with_raw = release(&tmp.path().join("a"));
    let built = tmp.path().join("images/cx");
    assert!(
        std::fs::read(built.join("cx.img.xz")).unwrap() == std::fs::read(tmp.path().join("a/cx.img.xz")).unwrap(),
        "the download is the build's file"
    );
    std::fs::remove_file(built.join("cx.img")).unwrap();
    let without_raw = release(&tmp.path().join("b"));
    assert_eq!(with_raw, without_raw);
    for f in ["cx.bmap", "SHA256SUMS", "rpi-imager.json", "RELEASE-NOTES.md"] {
        assert!(
            std::fs::read(tmp.path().join("a").join(f)).unwrap()
                == std::fs::read(tmp.path().join("b").join(f)).unwrap(),
            "{f} differs"
        );
    }
    assert!(
        !tmp.path().join("b/cx.img").exists(),
        "the unpacked image is not published"
    );
    // A download changed after the build is refused, not published.
    std::fs::write(built.join("cx.img.xz"), b"not the build's").unwrap();
    let (code, err) = fails(
        imgbuild()
            .current_dir(tmp.path())
            .args(["release", "--out"])
            .arg(tmp.path().join("c"))
            .arg(&recipe),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("changed since `cx` was built"), "{err}");
}
