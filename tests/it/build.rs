//! Images built from generated root file systems, checked by independent tools.

use crate::common::*;
use std::path::Path;
use std::process::Command;

const MIB: u64 = 1 << 20;

fn mbr_recipe(dir: &Path) -> std::path::PathBuf {
    rootfs_tar(&dir.join("rootfs.tar"));
    write(
        dir,
        "mbr.yaml",
        "rootfs: {tar: rootfs.tar}
source_date_epoch: 1700000000
image:
  table: mbr
  partitions:
    boot: {type: fat32-lba, filesystem: vfat, size: 64MiB, mount: /boot/firmware, bootable: true}
    root: {type: linux, filesystem: ext4, size: auto, mount: /}
output: {compression: xz}
",
    )
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn mbr_image_from_tar_passes_independent_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = mbr_recipe(tmp.path());
    let out = tmp.path().join("out");
    ok(imgbuild().arg("--out").arg(&out).arg(&recipe));
    let img = out.join("mbr.img");

    // Layout, as sfdisk reads it, agrees with the manifest.
    let (label, parts) = sfdisk(&img);
    assert_eq!(label, "dos");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].kind, "c");
    assert!(parts[0].bootable);
    assert_eq!(parts[0].start, MIB);
    assert_eq!(parts[0].size, 64 * MIB);
    assert_eq!(parts[1].kind, "83");
    assert_eq!(parts[1].start % MIB, 0);
    let m = manifest(&out);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(m["partitions"][i]["start"].as_u64(), Some(p.start));
        assert_eq!(m["partitions"][i]["size"].as_u64(), Some(p.size));
    }

    // The FAT partition: clean, and every file reads back through mtools.
    let boot = tmp.path().join("boot.fat");
    extract(&img, &parts[0], &boot);
    fsck_fat_clean(&boot);
    assert_eq!(mtype(&boot, "/config.txt"), b"arm_64bit=1\nenable_uart=1\n");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    assert!(mtype(&boot, "/kernel8.img") == big, "kernel8.img differs");
    assert_eq!(
        mtype(&boot, &format!("/{UNICODE_NAME}")),
        "non-ASCII on FAT\n".as_bytes()
    );
    assert_eq!(
        mtype(&boot, &format!("/overlays/{}", &LONG_NAME[..100])),
        b"long overlay name\n"
    );
    assert_eq!(
        mtype(&boot, "/hostname-copy"),
        b"fixture\n",
        "a hard link across partitions becomes a copy"
    );

    // The ext4 partition: clean, and metadata survives.
    let root = tmp.path().join("root.ext4");
    extract(&img, &parts[1], &root);
    e2fsck_clean(&root);
    let passwd = debugfs(&root, "stat /usr/bin/passwd");
    assert!(passwd.contains("Mode:  04755"), "setuid lost:\n{passwd}");
    assert!(passwd.contains("Links: 2"), "hard link lost:\n{passwd}");
    let ino = |s: &str| s.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(ino(&passwd), ino(&debugfs(&root, "stat /usr/bin/passwd-link")));
    let cap = debugfs(&root, "ea_get -x /usr/bin/ping security.capability");
    let want: String = cap_net_raw()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(cap.contains(&want), "security.capability lost: {cap} (want {want})");
    assert!(debugfs(&root, "stat /usr/bin/pong").contains("Fast link dest: \"ping\""));
    assert!(debugfs(&root, "stat /etc/localtime").contains("/usr/share/zoneinfo/Etc/UTC"));
    let null = debugfs(&root, "stat /dev/null");
    assert!(
        null.contains("Type: character special") && null.contains("Device major/minor number: 01:03"),
        "{null}"
    );
    let loop0 = debugfs(&root, "stat /dev/loop0");
    assert!(
        loop0.contains("Type: block special") && loop0.contains("07:00"),
        "{loop0}"
    );
    assert!(debugfs(&root, "stat /run/initctl").contains("Type: FIFO"));
    assert!(debugfs(&root, "stat /etc/empty").contains("Size: 0"));
    let sparse = debugfs(&root, "stat /var/sparse.bin");
    assert!(sparse.contains(&format!("Size: {SPARSE_SIZE}")), "{sparse}");
    let home = debugfs(&root, "stat /home/usér");
    assert!(home.contains("User:  1001") && home.contains("Mode:  0700"), "{home}");
    assert_eq!(
        debugfs(&root, &format!("cat \"/home/usér/{UNICODE_NAME}\"")),
        "bonjour\n"
    );
    assert_eq!(debugfs(&root, &format!("cat /usr/share/{LONG_NAME}")), "long name\n");
    let many = debugfs(&root, "ls -p /usr/share/many");
    assert_eq!(many.lines().filter(|l| l.contains("entry-")).count(), MANY);
    // /boot/firmware is an empty mount point in the root partition.
    let fw = debugfs(&root, "ls -p /boot/firmware");
    assert!(!fw.contains("config.txt"), "boot files leaked into root:\n{fw}");

    // Checksums and compression.
    ok(tool("sha256sum").arg("-c").arg("mbr.sha256").current_dir(&out));
    let xz = ok(tool("xz").arg("-dc").arg(out.join("mbr.img.xz")));
    assert!(xz.stdout == std::fs::read(&img).unwrap(), "xz round trip differs");

    // Written sparse.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&img).unwrap();
    assert!(
        meta.blocks() * 512 < meta.len() / 2,
        "image is not sparse: {} of {}",
        meta.blocks() * 512,
        meta.len()
    );
}

#[test]
fn gpt_image_with_blob_fixed_start_and_guids() {
    let tmp = tempfile::tempdir().unwrap();
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    std::fs::write(tmp.path().join("loader.bin"), vec![0xA5u8; 100_000]).unwrap();
    let recipe = write(
        tmp.path(),
        "gpt.yaml",
        "rootfs: {tar: rootfs.tar}
image:
  table: gpt
  blobs:
    loader: {file: loader.bin, sector: 64}
  partitions:
    esp: {type: esp, filesystem: vfat, size: auto, start: 16MiB, mount: /boot/firmware}
    root: {type: root-arm64, filesystem: ext4, mount: /, partuuid: 11111111-2222-4333-8444-555555555555}
output: {compression: zstd}
",
    );
    let out = tmp.path().join("out");
    ok(imgbuild().arg("--out").arg(&out).arg(&recipe));
    let img = out.join("gpt.img");
    let (label, parts) = sfdisk(&img);
    assert_eq!(label, "gpt");
    assert_eq!(parts[0].start, 16 * MIB);
    assert_eq!(parts[0].kind, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    assert_eq!(parts[1].kind, "B921B045-1DF0-41C3-AF44-4C6F280D3FAE");
    assert_eq!(parts[1].uuid.as_deref(), Some("11111111-2222-4333-8444-555555555555"));
    let m = manifest(&out);
    assert_eq!(
        parts[0].uuid.as_deref().map(str::to_lowercase),
        m["partitions"][0]["partuuid"].as_str().map(str::to_string)
    );
    let data = std::fs::read(&img).unwrap();
    assert!(
        data[64 * 512..64 * 512 + 100_000].iter().all(|&b| b == 0xA5),
        "blob not at sector 64"
    );
    let esp = tmp.path().join("esp.fat");
    extract(&img, &parts[0], &esp);
    fsck_fat_clean(&esp);
    let root = tmp.path().join("root.ext4");
    extract(&img, &parts[1], &root);
    e2fsck_clean(&root);
    ok(tool("zstd").arg("-t").arg(out.join("gpt.img.zst")));
    ok(tool("sha256sum").arg("-c").arg("gpt.sha256").current_dir(&out));
}

#[test]
fn same_inputs_build_byte_identical_images() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = mbr_recipe(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(imgbuild().arg("--out").arg(&a).arg(&recipe));
    ok(imgbuild().arg("--out").arg(&b).arg(&recipe));
    for f in ["mbr.img", "mbr.img.xz", "mbr.sha256", "manifest.json"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs between two builds"
        );
    }
}

#[test]
#[ignore = "tier root: sets a security.capability xattr on the fixture"]
fn directory_source_keeps_links_modes_and_xattrs_tier_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("boot/firmware")).unwrap();
    std::fs::write(root.join("boot/firmware/config.txt"), "x=1\n").unwrap();
    std::fs::write(root.join("bin/tool"), "tool\n").unwrap();
    std::fs::hard_link(root.join("bin/tool"), root.join("bin/tool2")).unwrap();
    std::os::unix::fs::symlink("tool", root.join("bin/alias")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("bin/tool"), std::fs::Permissions::from_mode(0o4711)).unwrap();
    let f = std::fs::File::create(root.join("sparse")).unwrap();
    f.set_len(4 * MIB).unwrap();
    let has_cap = xattr::set(root.join("bin/tool"), "security.capability", &cap_net_raw()).is_ok();
    let recipe = write(
        tmp.path(),
        "dir.yaml",
        "rootfs: {dir: tree}
image:
  table: mbr
  partitions:
    boot: {filesystem: vfat, size: auto, mount: /boot/firmware}
    root: {filesystem: ext4, mount: /}
output: {compression: gz}
",
    );
    let out = tmp.path().join("out");
    ok(imgbuild().arg("--out").arg(&out).arg(&recipe));
    let img = out.join("dir.img");
    let (_, parts) = sfdisk(&img);
    let fs = tmp.path().join("root.ext4");
    extract(&img, &parts[1], &fs);
    e2fsck_clean(&fs);
    let tool_stat = debugfs(&fs, "stat /bin/tool");
    assert!(
        tool_stat.contains("Mode:  04711") && tool_stat.contains("Links: 2"),
        "{tool_stat}"
    );
    assert!(debugfs(&fs, "stat /bin/alias").contains("Fast link dest: \"tool\""));
    assert!(debugfs(&fs, "stat /sparse").contains(&format!("Size: {}", 4 * MIB)));
    // The suite runs as root, which may set security.* xattrs.
    assert!(has_cap, "could not set security.capability on the fixture (not root?)");
    assert!(debugfs(&fs, "ea_list /bin/tool").contains("security.capability"));
    let boot = tmp.path().join("boot.fat");
    extract(&img, &parts[0], &boot);
    fsck_fat_clean(&boot);
    assert_eq!(mtype(&boot, "/config.txt"), b"x=1\n");
    ok(tool("gzip").arg("-t").arg(out.join("dir.img.gz")));
}

#[test]
fn small_fat_partitions_use_fat16_and_stay_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write(
        tmp.path(),
        "small.yaml",
        "rootfs: {tar: rootfs.tar}
image:
  table: mbr
  partitions:
    boot: {type: fat16, filesystem: vfat, size: 20MiB, mount: /boot/firmware}
    root: {filesystem: ext4, mount: /}
output: {compression: none}
",
    );
    rootfs_tar(&tmp.path().join("rootfs.tar"));
    let out = tmp.path().join("out");
    ok(imgbuild().arg("--out").arg(&out).arg(&recipe));
    let img = out.join("small.img");
    let json = ok(imgbuild().args(["inspect", "--json"]).arg(&img));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["partitions"][0]["filesystem"]["kind"], "vfat (FAT16)");
    let (_, parts) = sfdisk(&img);
    let boot = tmp.path().join("boot.fat");
    extract(&img, &parts[0], &boot);
    fsck_fat_clean(&boot);
    assert_eq!(mtype(&boot, "/hostname-copy"), b"fixture\n");
}

#[test]
fn failed_build_keeps_previous_outputs_and_leaves_no_partial_files() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = mbr_recipe(tmp.path());
    let out = tmp.path().join("out");
    ok(imgbuild().arg("--out").arg(&out).arg(&recipe));
    let before = std::fs::read(out.join("mbr.img.xz")).unwrap();
    // The same recipe with a root partition far too small for its content.
    let text = std::fs::read_to_string(&recipe)
        .unwrap()
        .replace("ext4, size: auto", "ext4, size: 4MiB");
    std::fs::write(&recipe, text).unwrap();
    let (code, err) = fails(imgbuild().arg("--out").arg(&out).arg(&recipe));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("image.partitions.root.size") && err.contains("too small"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("mbr.img.xz")).unwrap(),
        before,
        "previous output replaced"
    );
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with('.')), "leftovers: {names:?}");
}

/// A recipe whose build spends seconds compressing: 16 MiB of incompressible noise
/// (`noise.bin`) as a raw partition, xz level 9.
fn slow_recipe(dir: &Path) -> std::path::PathBuf {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..16 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(dir.join("noise.bin"), &noise).unwrap();
    write(
        dir,
        "slow.yaml",
        "image:\n  table: gpt\n  partitions:\n    data: {filesystem: raw, source: noise.bin}\noutput: {compression: xz, level: 9}\n",
    )
}

#[test]
fn interrupted_build_leaves_nothing_and_the_next_run_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = slow_recipe(tmp.path());
    let out = tmp.path().join("out");
    let mut child = imgbuild()
        .arg("build")
        .arg("--out")
        .arg(&out)
        .arg(&recipe)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let staged = out.join(".staging/slow.img.xz");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !staged.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the build never reached compression"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended before it could be interrupted"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted builds exit 130");
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "an interrupted build left {left:?}");
    // The next run starts clean (a quicker output this time).
    std::fs::write(
        &recipe,
        std::fs::read_to_string(&recipe)
            .unwrap()
            .replace("{compression: xz, level: 9}", "{compression: none}"),
    )
    .unwrap();
    ok(imgbuild().arg("-q").arg("--out").arg(&out).arg(&recipe));
    assert!(out.join("slow.img").is_file());
}

#[test]
fn example_recipes_build_clean_images() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    for (recipe, table, fat_fs) in [("example-mbr", "dos", 0), ("example-gpt", "gpt", 0)] {
        let out = tmp.path().join(recipe);
        ok(imgbuild()
            .arg("-q")
            .arg("--out")
            .arg(&out)
            .arg(repo.join(format!("recipes/{recipe}.yaml"))));
        let img = out.join(format!("{recipe}.img"));
        let (label, parts) = sfdisk(&img);
        assert_eq!(label, table);
        let fat = tmp.path().join(format!("{recipe}.fat"));
        extract(&img, &parts[fat_fs], &fat);
        fsck_fat_clean(&fat);
        let ext = tmp.path().join(format!("{recipe}.ext4"));
        extract(&img, &parts[1], &ext);
        e2fsck_clean(&ext);
        let shown = text(&ok(imgbuild().arg("inspect").arg(&img)));
        assert!(shown.contains("vfat (FAT") && shown.contains("ext4"), "{shown}");
        let hello = ok(imgbuild().args(["inspect", "--cat", "/usr/bin/hello"]).arg(&img));
        assert!(String::from_utf8_lossy(&hello.stdout).contains("hello from the image"));
    }
}

#[test]
#[ignore = "tier root: mounts a small tmpfs as the full disk"]
fn a_full_disk_is_a_clear_error_and_leaves_nothing_tier_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the suite runs as root (it mounts a small tmpfs)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let recipe = mbr_recipe(tmp.path());
    let small = tmp.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    ok(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3M", "tmpfs"])
        .arg(&small));
    let (code, err) = fails(imgbuild().arg("--out").arg(&small).arg(&recipe));
    let left: Vec<_> = std::fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    ok(Command::new("umount").arg(&small));
    assert_eq!(code, 1);
    assert!(
        err.contains("No space left on device") && err.contains("hint: a disk is full"),
        "{err}"
    );
    assert!(left.is_empty(), "left {left:?}");
}

#[test]
fn a_rebuild_with_other_compression_removes_the_stale_file() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = mbr_recipe(tmp.path());
    let out = tmp.path().join("out");
    ok(imgbuild().arg("-q").arg("--out").arg(&out).arg(&recipe));
    assert!(out.join("mbr.img.xz").is_file());
    let text = std::fs::read_to_string(&recipe)
        .unwrap()
        .replace("compression: xz", "compression: zstd");
    std::fs::write(&recipe, text).unwrap();
    ok(imgbuild().arg("-q").arg("--out").arg(&out).arg(&recipe));
    assert!(out.join("mbr.img.zst").is_file());
    assert!(
        !out.join("mbr.img.xz").exists(),
        "a stale .xz stayed next to the new image"
    );
}

/// The list of published files goes to stdout last: a closed pipe ends the build with
/// success, a full one with a clear error; either way the image is published, never a
/// panic.
#[test]
fn closed_or_full_stdout_ends_cleanly_after_publishing() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = mbr_recipe(tmp.path());
    let out = tmp.path().join("out");
    let mut closed = imgbuild()
        .arg("--out")
        .arg(&out)
        .arg(&recipe)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(closed.stdout.take());
    let o = closed.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "closed stdout: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.join("mbr.img.xz").is_file() && out.join("mbr.sha256").is_file());

    let full = std::fs::File::create("/dev/full").unwrap();
    let o = imgbuild()
        .arg("--out")
        .arg(&out)
        .arg(&recipe)
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "full stdout: {err}");
    assert!(err.contains("writing to stdout") && !err.contains("panicked"), "{err}");
    assert!(out.join("mbr.img.xz").is_file() && out.join("mbr.sha256").is_file());
}

/// Two builds into one `--out`: the second fails at once with a clear line and leaves
/// the first alone; the first publishes an image whose checksum matches.
#[test]
fn a_second_build_into_the_same_out_fails_at_once_and_harms_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = slow_recipe(tmp.path());
    let other = write(
        tmp.path(),
        "other.yaml",
        "image:\n  table: mbr\n  partitions:\n    data: {filesystem: raw, source: noise.bin}\noutput: {compression: none}\n",
    );
    let out = tmp.path().join("out");
    let first = imgbuild()
        .arg("--out")
        .arg(&out)
        .arg(&recipe)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !out.join(".staging").exists() {
        assert!(std::time::Instant::now() < deadline, "the first build never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for r in [&recipe, &other] {
        let started = std::time::Instant::now();
        let (code, err) = fails(imgbuild().arg("--out").arg(&out).arg(r));
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!("another imgbuild build is writing to {}", out.display())),
            "{err}"
        );
        assert!(started.elapsed().as_secs() < 10, "the second build waited");
    }
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(tool("sha256sum").arg("-c").arg("slow.sha256").current_dir(&out));
    assert!(!out.join("other.img").exists());
}

/// An archive that lists a file but not its directories (as `tar -cf x.tar usr/lib/x`
/// makes it) builds: the directories are made as tar would make them (root's, 0755).
#[test]
fn an_archive_without_its_directories_gets_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(tmp.path().join("rootfs.tar")).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(3);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "usr/lib/x", &b"hi\n"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    let r = write(
        tmp.path(),
        "r.yaml",
        "rootfs: {tar: rootfs.tar}\nimage: {table: gpt, partitions: {root: {filesystem: ext4, mount: /}}}\noutput: {compression: none}\n",
    );
    ok(imgbuild().arg("--out").arg(tmp.path().join("out")).arg(&r));
    let (_, parts) = sfdisk(&tmp.path().join("out/r.img"));
    let fs = tmp.path().join("root.ext4");
    extract(&tmp.path().join("out/r.img"), &parts[0], &fs);
    e2fsck_clean(&fs);
    assert!(debugfs(&fs, "stat /usr/lib").contains("Type: directory"));
    assert_eq!(debugfs(&fs, "cat /usr/lib/x"), "hi\n");
}
