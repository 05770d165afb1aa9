//! Every kind of bad input gets one clear line naming the file, the place and the fix,
//! a non-zero exit (2 for the user's errors), and leaves no output behind.

use crate::common::*;
use std::path::Path;

/// Writes `body` as `r.yaml` (plus a rootfs fixture) and runs `imgbuild check` or a build.
fn run(dir: &Path, body: &str, build: bool) -> (i32, String) {
    let recipe = write(dir, "r.yaml", body);
    let mut c = imgbuild();
    if build {
        c.arg("--out").arg(dir.join("out")).arg(&recipe);
    } else {
        c.arg("check").arg(&recipe);
    }
    fails(&mut c)
}

fn check_err(body: &str) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    run(tmp.path(), body, false)
}

fn build_err(body: &str) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let r = run(tmp.path(), body, true);
    let out = tmp.path().join("out");
    if out.exists() {
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "a failed build left {left:?}");
    }
    r
}

const BASE: &str = "image:\n  table: mbr\n  partitions:\n";

#[test]
fn unknown_key_gets_position_and_suggestion() {
    let (code, err) = check_err("image:\n  table: mbr\n  partiton: {}\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("r.yaml:3:3: image: unknown field `partiton`, did you mean `partitions`?"),
        "{err}"
    );
    assert_eq!(err.lines().next().map(|l| l.starts_with("error: ")), Some(true));
}

#[test]
fn unknown_partition_field_suggests() {
    let (code, err) = check_err(&format!("{BASE}    root: {{filesytem: ext4}}\n"));
    assert_eq!(code, 2, "a user error exits 2: {err}");
    assert!(
        err.contains("r.yaml:4:") && err.contains("did you mean `filesystem`?"),
        "{err}"
    );
}

#[test]
fn wrong_type_is_located() {
    let (code, err) = check_err(&format!(
        "{BASE}    root:\n      filesystem: ext4\n      bootable: maybe\n"
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("r.yaml:6:17:") && err.contains("bootable: invalid type"),
        "{err}"
    );
}

#[test]
fn unknown_filesystem_suggests_nearest() {
    let (code, err) = check_err(&format!("{BASE}    root: {{filesystem: ext5}}\n"));
    assert_eq!(code, 2, "a user error exits 2: {err}");
    assert!(err.contains("unknown value `ext5`, did you mean `ext4`?"), "{err}");
}

#[test]
fn extends_cycle_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a.yaml", "extends: b.yaml\n");
    write(tmp.path(), "b.yaml", "extends: [a.yaml]\n");
    let (code, err) = fails(imgbuild().arg("check").arg(tmp.path().join("a.yaml")));
    assert_eq!(code, 2);
    assert!(
        err.contains("`extends` forms a cycle") && err.contains("a.yaml -> ") && err.contains("b.yaml"),
        "{err}"
    );
}

#[test]
fn missing_parent_is_named() {
    let (code, err) = check_err("extends: nowhere.yaml\n");
    assert_eq!(code, 2, "a user error exits 2: {err}");
    assert!(
        err.contains("r.yaml: extends: parent recipe `nowhere.yaml` not found"),
        "{err}"
    );
}

#[test]
fn size_that_does_not_parse() {
    let (code, err) = check_err(&format!("{BASE}    root: {{filesystem: ext4, size: 12XB}}\n"));
    assert_eq!(code, 2);
    assert!(
        err.contains("r.yaml: image.partitions.root.size: cannot parse `12XB` as a size"),
        "{err}"
    );
}

#[test]
fn missing_table_says_how_to_choose() {
    let (code, err) = check_err("image:\n  partitions:\n    root: {filesystem: ext4}\n");
    assert_eq!(code, 2, "a user error exits 2: {err}");
    assert!(err.contains("image.table: missing; write `table: mbr`"), "{err}");
}

#[test]
fn mbr_limits_and_gpt_only_types() {
    let five: String = (1..=5)
        .map(|i| format!("    p{i}: {{filesystem: none, size: 1MiB}}\n"))
        .collect();
    let (code, err) = check_err(&format!("{BASE}{five}"));
    assert_eq!(code, 2, "a user error exits 2: {err}");
    assert!(err.contains("at most 4 primary partitions"), "{err}");
    let (code, err) = check_err(&format!(
        "{BASE}    bios: {{type: bios-boot, filesystem: none, size: 1MiB}}\n"
    ));
    assert_eq!(code, 2, "a user error exits 2: {err}");
    assert!(
        err.contains("image.partitions.bios.type: type `bios-boot` exists only in GPT"),
        "{err}"
    );
    let (code, err) = check_err(&format!(
        "{BASE}    root: {{filesystem: ext4, partuuid: 11111111-2222-4333-8444-555555555555}}\n"
    ));
    assert_eq!(code, 2, "a user error exits 2: {err}");
    assert!(
        err.contains("image.partitions.root.partuuid") && err.contains("pin `image.disk_id`"),
        "{err}"
    );
}

#[test]
fn overlapping_partitions_are_refused() {
    let (code, err) = build_err(&format!(
        "rootfs: {{tar: rootfs.tar}}\n{BASE}    a: {{filesystem: none, size: 8MiB}}\n    b: {{filesystem: none, size: 1MiB, start: 4MiB}}\n    root: {{filesystem: ext4, mount: /}}\n"
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("image.partitions.b.start: partition `b` starts at byte 4194304, inside partition `a`"),
        "{err}"
    );
}

#[test]
fn overlapping_blob_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("u-boot.bin"), vec![1u8; 2 << 20]).unwrap();
    let (code, err) = run(
        tmp.path(),
        "image:\n  table: gpt\n  blobs:\n    uboot: {file: u-boot.bin, sector: 1024}\n  partitions:\n    data: {filesystem: none, size: 4MiB}\n",
        true,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("image.blobs.uboot: blob `uboot`") && err.contains("overlaps partition `data`"),
        "{err}"
    );
}

#[test]
fn fixed_fat_partition_too_small() {
    let (code, err) = build_err(&format!(
        "rootfs: {{tar: rootfs.tar}}\n{BASE}    boot: {{filesystem: vfat, size: 2MiB, mount: /boot/firmware}}\n    root: {{filesystem: ext4, mount: /}}\n"
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("image.partitions.boot.size") && err.contains("too small"),
        "{err}"
    );
}

#[test]
fn fixed_ext4_partition_too_small() {
    let (code, err) = build_err(&format!(
        "rootfs: {{tar: rootfs.tar}}\n{BASE}    root: {{filesystem: ext4, size: 8MiB, mount: /}}\n"
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("image.partitions.root.size") && err.contains("too small"),
        "{err}"
    );
}

#[test]
fn undefined_template_variable() {
    let (code, err) = check_err(&format!(
        "vars: {{host: pi}}\n{BASE}    root: {{filesystem: ext4, label: '{{{{ hots }}}}'}}\n"
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("r.yaml: image.partitions.root.label: template error") && err.contains("host"),
        "{err}"
    );
}

#[test]
fn set_of_unknown_variable_suggests() {
    let tmp = tempfile::tempdir().unwrap();
    let r = write(
        tmp.path(),
        "r.yaml",
        &format!("vars: {{hostname: pi}}\n{BASE}    root: {{filesystem: ext4}}\n"),
    );
    let (code, err) = fails(imgbuild().args(["check", "--set", "hostnam=x"]).arg(&r));
    assert_eq!(code, 2);
    assert!(
        err.contains("--set hostnam: the recipe has no variable `hostnam`; did you mean `hostname`?"),
        "{err}"
    );
}

#[test]
fn missing_rootfs_archive() {
    let (code, err) = build_err(&format!(
        "rootfs: {{tar: nothere.tar}}\n{BASE}    root: {{filesystem: ext4, mount: /}}\n"
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("rootfs.tar:") && err.contains("nothere.tar does not exist"),
        "{err}"
    );
}

#[test]
fn fat_partition_refuses_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(tmp.path().join("rootfs.tar")).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "./boot/firmware/link", "config.txt").unwrap();
    b.finish().unwrap();
    drop(b);
    let (code, err) = run(
        tmp.path(),
        &format!(
            "rootfs: {{tar: rootfs.tar}}\n{BASE}    boot: {{filesystem: vfat, mount: /boot/firmware}}\n    root: {{filesystem: ext4, mount: /}}\n"
        ),
        true,
    );
    assert_eq!(code, 2, "a user error exits 2: {err}");
    assert!(
        err.contains("partition `boot` is FAT, which cannot hold `/boot/firmware/link` (a symbolic link)"),
        "{err}"
    );
}

#[test]
fn archive_entry_escaping_the_root_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // The tar crate refuses to write `..`, so patch the name into the header by hand.
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(4);
    h.set_mode(0o644);
    h.as_old_mut().name[..13].copy_from_slice(b"../etc/passwd");
    h.set_cksum();
    let mut data = h.as_bytes().to_vec();
    data.extend_from_slice(b"evil");
    data.resize(data.len() + 508 + 1024, 0);
    std::fs::write(tmp.path().join("rootfs.tar"), data).unwrap();
    let (code, err) = run(
        tmp.path(),
        &format!("rootfs: {{tar: rootfs.tar}}\n{BASE}    root: {{filesystem: ext4, mount: /}}\n"),
        true,
    );
    assert_eq!(code, 2, "a user error exits 2: {err}");
    assert!(
        err.contains("`../etc/passwd` would land outside the root file system"),
        "{err}"
    );
}

#[test]
fn old_e2fsprogs_is_detected_with_a_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("mke2fs");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'mke2fs 1.47.0 (5-Feb-2023)' >&2\necho '\tUsing EXT2FS Library version 1.47.0' >&2\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let recipe = write(
        tmp.path(),
        "r.yaml",
        &format!("rootfs: {{tar: rootfs.tar}}\n{BASE}    root: {{filesystem: ext4, mount: /}}\n"),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let (code, err) = fails(
        imgbuild()
            .env("PATH", path)
            .arg("--out")
            .arg(tmp.path().join("out"))
            .arg(&recipe),
    );
    // Caught by the build's host check, before anything is built; a host problem (1).
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("`mke2fs` is version 1.47.0, imgbuild needs 1.47.1 or newer; fix: apt-get install")
            && err.contains(" e2fsprogs libarchive13"),
        "{err}"
    );
    assert!(!tmp.path().join("out").exists(), "nothing was started: {err}");
}

#[test]
fn pip_requirements_cannot_be_options_or_extra_lines() {
    for bad in ["-r /etc/passwd", "--index-url=http://x/", "numpy>=1\\n-r /etc/passwd"] {
        let (code, err) = check_err(&format!(
            "rootfs: {{suite: bookworm, architecture: amd64}}\noutput: {{format: oci}}\nfiles:\n  /opt/py: {{pip: {{packages: [\"{bad}\"], python: '3.11'}}}}\n"
        ));
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(
            err.contains("files./opt/py.pip.packages") && err.contains("is not a requirement"),
            "{bad}: {err}"
        );
        assert!(
            !err.contains("root:x:0:0"),
            "{bad}: a host file reached the error: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{bad}: {err}");
    }
}

/// The README lists `4096` (bytes) as a size: YAML reads it as a number, which is
/// accepted as bytes; a negative or fractional number is refused naming the field.
#[test]
fn sizes_may_be_plain_numbers_of_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let r = write(
        tmp.path(),
        "r.yaml",
        "image:\n  table: mbr\n  size: 134217728\n  partitions:\n    data: {filesystem: none, size: 67108864, start: 2048s, alignment: 4096}\n",
    );
    let out = text(&ok(imgbuild().arg("check").arg(&r)));
    assert!(
        out.contains("size: '67108864'") && out.contains("size: '134217728'"),
        "{out}"
    );
    for (bad, what) in [("-5", "integer `-5`"), ("1.5", "floating point `1.5`")] {
        let (code, err) = check_err(&format!("{BASE}    data: {{filesystem: none, size: {bad}}}\n"));
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("r.yaml:4:") && err.contains("image.partitions.data.size") && err.contains(what),
            "{err}"
        );
    }
}

/// A uid above 2^32 (PAX allows any number) would be truncated into another owner by
/// the file system: refused, naming the archive and the entry.
#[test]
fn archive_owner_beyond_32_bits_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("uid", b"4294967297".as_slice())]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "etc/owned", b"x\n".as_slice()).unwrap();
    std::fs::write(tmp.path().join("rootfs.tar"), b.into_inner().unwrap()).unwrap();
    let (code, err) = run(
        tmp.path(),
        &format!("rootfs: {{tar: rootfs.tar}}\n{BASE}    root: {{filesystem: ext4, mount: /}}\n"),
        true,
    );
    assert_eq!(code, 2, "the archive is the user's input: {err}");
    assert!(
        err.contains("rootfs.tar: `etc/owned` has uid 4294967297, above the 32-bit ids"),
        "{err}"
    );
    assert!(!tmp.path().join("out/r.img").exists());
}

#[test]
fn a_source_date_epoch_that_is_no_number_is_the_users_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let recipe = write(
        tmp.path(),
        "r.yaml",
        &format!("rootfs: {{tar: rootfs.tar}}\n{BASE}    root: {{filesystem: ext4, mount: /}}\n"),
    );
    let (code, err) = fails(
        imgbuild()
            .env("SOURCE_DATE_EPOCH", "yesterday")
            .arg("--out")
            .arg(tmp.path().join("out"))
            .arg(&recipe),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("error: SOURCE_DATE_EPOCH=`yesterday` is not a whole number of seconds"),
        "{err}"
    );
    assert!(err.contains("\nhint: set it to seconds since 1970"), "{err}");
    assert!(!tmp.path().join("out/r.img").exists());
}
