//! The firmware stage. From Debian's source: U-Boot for the Rock 4C+ from Debian's own
//! source package and arm-trusted-firmware's bl31, both fetched through the archive's
//! signed index, cross-compiled natively, cached by the recipe's inputs (debian tier).
//! Published files: downloaded by URL and SHA-256 and placed as blobs (fast tier, a local
//! HTTP fixture).

use crate::common::*;
use crate::http_fixture::Server;
use imgbuild::fetch::http::Client;
use imgbuild::fetch::store::Store;
use imgbuild::firmware::{self, uboot};
use imgbuild::recipe::plan_firmware::{Bl31Plan, FirmwarePlan, FirmwareSource, UbootFromDebian};
use std::path::Path;

const UBOOT: &str = "2025.01-3+deb13u1";
const ATF: &str = "2.12.1+dfsg-1";

fn rock_4c_plus(defconfig: &str, platform: &str) -> FirmwarePlan {
    FirmwarePlan {
        name: "u-boot".into(),
        source: FirmwareSource::Debian(UbootFromDebian {
            mirror: "http://deb.debian.org/debian".into(),
            suite: "trixie".into(),
            package: "u-boot".into(),
            version: UBOOT.into(),
            defconfig: defconfig.into(),
            bl31: Some(Bl31Plan {
                package: "arm-trusted-firmware".into(),
                version: ATF.into(),
                platform: platform.into(),
            }),
            check_config: vec![
                ("CONFIG_PMIC_RK8XX".into(), "y".into()),
                ("CONFIG_MMC_DW_ROCKCHIP".into(), "y".into()),
                ("CONFIG_MMC_SDHCI_ROCKCHIP".into(), "y".into()),
                ("CONFIG_BOOTSTD".into(), "y".into()),
            ],
        }),
        defined_in: "rock.yaml".into(),
    }
}

fn stage(dir: &Path, plan: &FirmwarePlan, read_cache: bool) -> anyhow::Result<firmware::Outputs> {
    let cache = imgbuild::cache::Cache::open(dir.join("stages"), read_cache).unwrap();
    let store = Store::open(&dir.join("stages")).unwrap();
    let client = Client::new(vec![]);
    firmware::build(
        std::slice::from_ref(plan),
        &firmware::Ctx {
            cache: &cache,
            store: &store,
            client: &client,
            work: dir.join("work"),
            log_dir: dir.join("logs"),
            reporter: &imgbuild::report::Silent,
            jobs: 2,
            offline: false,
        },
    )
}

#[test]
#[ignore = "tier debian: the Debian archive (33 MB of u-boot source) and two one-minute cross builds"]
fn rock_4c_plus_uboot_builds_from_debians_source_tier_debian() {
    for t in [
        "gpgv",
        "patch",
        "dpkg-deb",
        "make",
        "aarch64-linux-gnu-gcc",
        "dumpimage",
    ] {
        tool(t);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // The recipe's mistakes are named by their field, before anything is compiled.
    let e = stage(dir, &rock_4c_plus("rock-4c-rk3399_defconfig", "rk3399"), true).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("firmware.u-boot.defconfig") && msg.contains("close ones: rock-4c-plus-rk3399_defconfig"),
        "{msg}"
    );
    assert!(
        e.downcast_ref::<imgbuild::recipe::RecipeError>().is_some(),
        "a user error (exit 2): {msg}"
    );
    let e = stage(dir, &rock_4c_plus("rock-4c-plus-rk3399_defconfig", "rk9999"), true).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("firmware.u-boot.bl31.platform")
            && msg.contains("has no /usr/lib/arm-trusted-firmware/rk9999/bl31.elf")
            && msg.contains("rk3399"),
        "{msg}"
    );

    let plan = rock_4c_plus("rock-4c-plus-rk3399_defconfig", "rk3399");
    let built = stage(dir, &plan, true).unwrap();
    let made = &built.made[0];
    assert!(!made.cached, "the first build is built");
    assert!(
        made.inputs.iter().any(|i| i.name == "u-boot_2025.01.orig.tar.bz2")
            && made.inputs.iter().any(|i| i.name.starts_with("arm-trusted-firmware_")),
        "the verified inputs are recorded: {:?}",
        made.inputs
    );
    assert!(
        !made.inputs.iter().any(|i| i.name.ends_with(".dsc")),
        "what the index already said is not fetched"
    );
    let log = std::fs::read_to_string(dir.join("logs/firmware-u-boot.log")).unwrap();
    assert!(
        log.contains("BINMAN"),
        "the build's log is kept: {}",
        &log[..log.len().min(400)]
    );

    let again = std::time::Instant::now();
    let cached = stage(dir, &plan, true).unwrap();
    assert!(cached.made[0].cached, "the same inputs come from the stage cache");
    eprintln!("firmware: cached rebuild in {:.2} s", again.elapsed().as_secs_f64());
    // A second build from scratch (the cache not read) is byte-identical: the changelog's
    // date as SOURCE_DATE_EPOCH, a fixed build user and host.
    let scratch = stage(dir, &plan, false).unwrap();
    assert!(!scratch.made[0].cached);
    for f in &made.files {
        let other = scratch.file("u-boot", &f.name).unwrap();
        let other_sha = imgbuild::digest::sha256_file(other).unwrap().0;
        assert_eq!(f.sha256, other_sha, "{} differs between two builds", f.name);
    }

    // Checked by the build itself too (uboot::check_outputs); here independently.
    let idb = std::fs::read(built.file("u-boot", "idbloader.img").unwrap()).unwrap();
    assert_eq!(
        &idb[uboot::RK_SPL_START..uboot::RK_SPL_START + 4],
        uboot::RK3399_MAGIC,
        "idbloader.img: the RK3399 boot ROM's SPL header after the (RC4-scrambled) header block"
    );
    let itb_path = built.file("u-boot", "u-boot.itb").unwrap();
    let itb = std::fs::read(itb_path).unwrap();
    assert_eq!(itb[..4], uboot::FDT_MAGIC, "u-boot.itb is a FIT");
    let listed = text(&ok(tool("dumpimage").arg("-l").arg(itb_path)));
    assert!(listed.contains("FIT description") && listed.contains("atf"), "{listed}");
    let config = std::fs::read_to_string(dir.join("logs/firmware-u-boot.config")).unwrap();
    for (name, want) in [
        ("CONFIG_PMIC_RK8XX", "y"),
        ("CONFIG_MMC_DW_ROCKCHIP", "y"),
        ("CONFIG_MMC_SDHCI_ROCKCHIP", "y"),
        ("CONFIG_BOOTSTD", "y"),
        ("CONFIG_DEFAULT_DEVICE_TREE", "\"rockchip/rk3399-rock-4c-plus\""),
    ] {
        assert_eq!(
            uboot::config_value(&config, name),
            Some(want),
            "{name} in the board's .config"
        );
    }

    // A check the board's configuration fails is the recipe's error, naming the symbol;
    // checked on the cached build too (the checks are not part of what is built).
    let mut wrong = plan.clone();
    if let FirmwareSource::Debian(u) = &mut wrong.source {
        u.check_config.push(("CONFIG_BOOTSTD".into(), "n".into()));
        u.check_config
            .push(("CONFIG_IMGBUILD_NO_SUCH_SYMBOL".into(), "y".into()));
    }
    let entries = || {
        std::fs::read_dir(dir.join("stages/firmware-u-boot-v2"))
            .unwrap()
            .count()
    };
    let before = entries();
    let e = stage(dir, &wrong, true).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("firmware.u-boot.check_config")
            && msg.contains("CONFIG_BOOTSTD=n (built: y)")
            && msg.contains("CONFIG_IMGBUILD_NO_SUCH_SYMBOL=y (built: not set)"),
        "{msg}"
    );
    assert_eq!(
        entries(),
        before,
        "the failed check came from the cached build: nothing was built"
    );
}

/// A firmware file whose first bytes say what it is, served by the fixture.
fn served(dir: &Path, name: &str, fill: u8, len: usize) -> String {
    let body = vec![fill; len];
    std::fs::write(dir.join(name), &body).unwrap();
    imgbuild::digest::sha256_hex(&body)
}

#[test]
fn published_firmware_is_downloaded_checked_placed_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let idb_sha = served(&www, "idbloader.img", 0x11, 100_000);
    let itb_sha = served(&www, "u-boot.itb", 0x22, 700_000);
    let server = Server::start(&www);
    rootfs_tar(&dir.join("rootfs.tar"));
    let recipe = write(
        dir,
        "r.yaml",
        &format!(
            "rootfs: {{tar: rootfs.tar}}\nfirmware:\n  u-boot:\n    source: url\n    files:\n      idbloader.img: {{url: '{}', sha256: {idb_sha}}}\n      u-boot.itb: {{url: '{}', sha256: {itb_sha}}}\nimage:\n  table: gpt\n  blobs:\n    idbloader: {{firmware: u-boot/idbloader.img, sector: 64}}\n    u-boot: {{firmware: u-boot/u-boot.itb, sector: 16384}}\n  partitions:\n    root: {{filesystem: ext4, mount: /, start: 16MiB}}\noutput: {{compression: none}}\n",
            server.url("/idbloader.img"),
            server.url("/u-boot.itb"),
        ),
    );
    let build = |extra: &[&str]| {
        let mut c = imgbuild();
        c.args(extra)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .arg("--out")
            .arg(dir.join("out"))
            .arg(&recipe);
        ok(&mut c)
    };
    build(&[]);
    let image = std::fs::read(dir.join("out/r.img")).unwrap();
    assert!(image[64 * 512..64 * 512 + 100_000].iter().all(|&b| b == 0x11));
    assert!(image[16384 * 512..16384 * 512 + 700_000].iter().all(|&b| b == 0x22));
    let (_, parts) = sfdisk(&dir.join("out/r.img"));
    assert_eq!(parts[0].start, 16 << 20, "the root starts at 16 MiB, after the loaders");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/manifest.json")).unwrap()).unwrap();
    let fw = &manifest["firmware"][0];
    assert_eq!(fw["name"], "u-boot");
    assert_eq!(fw["files"][0]["sha256"], idb_sha.as_str());
    assert_eq!(fw["files"][1]["sha256"], itb_sha.as_str());

    // Offline, the store serves it: the server is not asked again.
    let asked = server.log().len();
    build(&["--offline"]);
    assert_eq!(server.log().len(), asked, "an offline rebuild asked the server");
    assert_eq!(std::fs::read(dir.join("out/r.img")).unwrap(), image);
}

/// A Rock-like image made with U-Boot's own tools (mkimage's Rockchip header and FIT, a
/// device tree from dtc): what `boot-test`'s static checks accept, and what they catch.
struct RockLike {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
}

impl RockLike {
    /// `board` is the device tree the extlinux entry names; `fit_board` the one U-Boot's
    /// FIT carries; `initrd` whether the entry's initrd is in the root.
    fn build(board: &str, fit_board: &str, initrd: bool, partuuid: &str) -> RockLike {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let www = dir.join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("spl.bin"), vec![0x5au8; 30_000]).unwrap();
        ok(tool("mkimage")
            .args(["-n", "rk3399", "-T", "rksd", "-d"])
            .arg(www.join("spl.bin"))
            .arg(www.join("idbloader.img")));
        let dtb = |name: &str, dest: &Path| {
            let dts = dir.join(format!("{name}.dts"));
            std::fs::write(
                &dts,
                format!(
                    "/dts-v1/;\n/ {{ compatible = \"radxa,{name}\", \"rockchip,rk3399\"; model = \"{name}\"; }};\n"
                ),
            )
            .unwrap();
            ok(tool("dtc").args(["-I", "dts", "-O", "dtb", "-o"]).arg(dest).arg(&dts));
        };
        let fit_dtb = www.join(format!("rk3399-{fit_board}.dtb"));
        dtb(fit_board, &fit_dtb);
        std::fs::write(www.join("u-boot-nodtb.bin"), vec![0xa5u8; 300_000]).unwrap();
        ok(tool("mkimage")
            .args([
                "-f", "auto", "-A", "arm64", "-O", "u-boot", "-T", "firmware", "-C", "none",
            ])
            .args(["-a", "0x200000", "-e", "0x200000", "-n", "U-Boot", "-E", "-d"])
            .arg(www.join("u-boot-nodtb.bin"))
            .arg("-b")
            .arg(&fit_dtb)
            .arg(www.join("u-boot.itb")));
        let root = dir.join("root");
        let k = "6.12.0-test-arm64";
        let dtb_dir = root.join(format!("usr/lib/linux-image-{k}/rockchip"));
        std::fs::create_dir_all(&dtb_dir).unwrap();
        dtb(board, &dtb_dir.join(format!("rk3399-{board}.dtb")));
        std::fs::create_dir_all(root.join("boot/extlinux")).unwrap();
        std::fs::write(root.join(format!("boot/vmlinuz-{k}")), b"kernel").unwrap();
        if initrd {
            std::fs::write(root.join(format!("boot/initrd.img-{k}")), b"initrd").unwrap();
        }
        let overlay = dir.join("overlay/boot/extlinux");
        std::fs::create_dir_all(&overlay).unwrap();
        std::fs::write(
            overlay.join("extlinux.conf.j2"),
            format!(
                "default l0\nprompt 1\ntimeout 30\n\nlabel l0\n\tlinux /boot/vmlinuz-{k}\n\tinitrd /boot/initrd.img-{k}\n\tfdt /usr/lib/linux-image-{k}/rockchip/rk3399-{board}.dtb\n\tappend root=PARTUUID={partuuid} ro rootwait\n"
            ),
        )
        .unwrap();
        let server = Server::start(&www);
        let sha = |n: &str| imgbuild::digest::sha256_file(&www.join(n)).unwrap().0;
        let recipe = write(
            &dir,
            "rock.yaml",
            &format!(
                "rootfs: {{dir: root}}\noverlays: [overlay]\nfirmware:\n  u-boot:\n    source: url\n    files:\n      idbloader.img: {{url: '{}', sha256: {}}}\n      u-boot.itb: {{url: '{}', sha256: {}}}\nimage:\n  table: gpt\n  blobs:\n    idbloader: {{firmware: u-boot/idbloader.img, sector: 64}}\n    u-boot: {{firmware: u-boot/u-boot.itb, sector: 16384}}\n  partitions:\n    root: {{type: root-arm64, filesystem: ext4, mount: /, start: 16MiB, bootable: true}}\noutput: {{compression: none}}\n",
                server.url("/idbloader.img"),
                sha("idbloader.img"),
                server.url("/u-boot.itb"),
                sha("u-boot.itb"),
            ),
        );
        ok(imgbuild()
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .arg("--out")
            .arg(dir.join("out"))
            .arg(&recipe));
        RockLike { _tmp: tmp, dir }
    }

    fn image(&self) -> std::path::PathBuf {
        self.dir.join("out/rock.img")
    }

    fn check(&self) -> imgbuild::verify::boot::rockchip::Checked {
        let i = imgbuild::verify::inspect::inspect(&self.image()).unwrap();
        let work = self.dir.join("check");
        std::fs::create_dir_all(&work).unwrap();
        imgbuild::verify::boot::rockchip::check(&self.image(), &i, &work).unwrap()
    }
}

#[test]
fn the_static_checks_accept_a_sound_rockchip_image_and_name_each_fault() {
    let sound = RockLike::build("rock-4c-plus", "rock-4c-plus", true, "{{ partitions.root.partuuid }}");
    let c = sound.check();
    assert!(c.failures.is_empty(), "{:#?}", c.failures);
    let passed = c.passed.join("\n");
    for want in [
        "idbloader at sector 64: Rockchip boot header, RK3399 SPL at sector 68",
        "u-boot.itb at sector 16384: a FIT image dumpimage lists",
        "no partition overlaps the loaders (first partition at byte 16777216)",
        "entry `l0` names /boot/vmlinuz-6.12.0-test-arm64, /boot/initrd.img-6.12.0-test-arm64",
        "partition 1, the one holding the entry",
        "compatible `radxa,rock-4c-plus rockchip,rk3399` names the board",
        "U-Boot was built for the same board (rk3399-rock-4c-plus)",
    ] {
        assert!(passed.contains(want), "`{want}` not among:\n{passed}");
    }

    // The boot ROM's header scrambled: the card would be skipped.
    let mut bytes = std::fs::read(sound.image()).unwrap();
    bytes[64 * 512] ^= 0xff;
    std::fs::write(sound.image(), &bytes).unwrap();
    let c = sound.check();
    assert!(
        c.failures
            .iter()
            .any(|f| f.contains("sector 64 holds no Rockchip boot header")),
        "{:#?}",
        c.failures
    );

    // A missing initrd, a device tree of another board than U-Boot's, a foreign PARTUUID.
    let bad = RockLike::build(
        "rock-4se",
        "rock-4c-plus",
        false,
        "0badc0de-0000-4000-8000-000000000000",
    );
    let f = bad.check().failures.join("\n");
    for want in [
        "names initrd /boot/initrd.img-6.12.0-test-arm64, which partition 1 does not have",
        "root=PARTUUID=0badc0de-0000-4000-8000-000000000000 names no partition of this disk",
        "U-Boot was built for rk3399-rock-4c-plus, but the extlinux entry boots the device tree rk3399-rock-4se",
    ] {
        assert!(f.contains(want), "`{want}` not among:\n{f}");
    }
}

/// Without the cross compiler, `imgbuild doctor` and a build's pre-flight name it and the
/// package that has it, before anything is fetched or built.
#[test]
fn a_missing_cross_compiler_is_named_with_its_package_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    rootfs_tar(&dir.join("rootfs.tar"));
    let recipe = write(
        dir,
        "r.yaml",
        "rootfs: {tar: rootfs.tar}\nfirmware:\n  u-boot: {source: debian, suite: trixie, version: 2025.01-3+deb13u1, defconfig: rock-4c-plus-rk3399_defconfig}\nimage:\n  table: gpt\n  blobs:\n    u-boot: {firmware: u-boot/u-boot-rockchip.bin, sector: 64}\n  partitions:\n    root: {filesystem: ext4, mount: /, start: 16MiB}\n",
    );
    let empty = dir.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = imgbuild()
        .env("PATH", &empty)
        .args(["doctor", "--timeout", "1"])
        .arg(&recipe)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("aarch64-linux-gnu-gcc"))
        .unwrap_or_else(|| panic!("the cross compiler is not named:\n{stdout}"));
    assert!(line.contains("gcc-aarch64-linux-gnu"), "{line}");

    let (code, err) = fails(
        imgbuild()
            .env("PATH", &empty)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .arg("--out")
            .arg(dir.join("out"))
            .arg(&recipe),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("aarch64-linux-gnu-gcc") && err.contains("gcc-aarch64-linux-gnu"),
        "{err}"
    );
    assert!(!dir.join("cache/firmware-u-boot-v2").exists(), "nothing was built");
}
