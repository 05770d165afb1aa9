//! U-Boot for the Rock 4C+ from Debian's own source package and arm-trusted-firmware's
//! bl31, both fetched through the archive's signed index, cross-compiled natively.

use crate::common::*;
use imgbuild::fetch::debian_archive::Archive;
use imgbuild::fetch::http::Client;
use imgbuild::fetch::store::Store;
use imgbuild::firmware::{sources, uboot};

const UBOOT: &str = "2025.01-3+deb13u1";
const ATF: &str = "2.12.1+dfsg-1";

#[test]
#[ignore = "tier debian: the Debian archive (33 MB of u-boot source) and a one-minute cross build"]
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
    let store = Store::open(&dir.join("cache")).unwrap();
    let client = Client::new(vec![]);
    let archive = Archive {
        base: "http://deb.debian.org/debian".into(),
        suite: "trixie".into(),
        component: "main".into(),
        keyring: "/usr/share/keyrings/debian-archive-keyring.gpg".into(),
    };
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let src = archive
        .source(&client, &store, &work, ("u-boot", UBOOT), &sources::wanted)
        .unwrap();
    assert!(src.files.iter().any(|f| f.name == "u-boot_2025.01.orig.tar.bz2"));
    assert!(
        !src.files.iter().any(|f| f.name.ends_with(".dsc")),
        "what the index already said is not fetched"
    );
    let atf = archive
        .binary(&client, &store, &work, "arm-trusted-firmware", ATF, "arm64")
        .unwrap();
    let bl31 = sources::deb_file(&atf, "usr/lib/arm-trusted-firmware/rk3399/bl31.elf", &dir.join("atf")).unwrap();

    let build = |defconfig: &str| {
        uboot::build(
            &uboot::Build {
                source: &src,
                bl31: &bl31,
                defconfig,
                epoch: 1_700_000_000,
                work: &work,
                log: &dir.join("u-boot.log"),
                jobs: 2,
            },
            &dir.join("out"),
        )
    };
    let e = build("rock-4c-rk3399_defconfig").unwrap_err();
    assert!(
        format!("{e:#}").contains("close ones: rock-4c-plus-rk3399_defconfig"),
        "{e:#}"
    );

    let board = "rock-4c-plus-rk3399_defconfig";
    let cache = imgbuild::cache::Cache::open(dir.join("stages"), true).unwrap();
    let job = uboot::Build {
        source: &src,
        bl31: &bl31,
        defconfig: board,
        epoch: 1_700_000_000,
        work: &work,
        log: &dir.join("u-boot.log"),
        jobs: 2,
    };
    let (built, hit) = uboot::cached(&cache, &job).unwrap();
    assert!(!hit, "the first build is built");
    let again = std::time::Instant::now();
    let (cached, hit) = uboot::cached(&cache, &job).unwrap();
    assert!(hit, "the same inputs come from the stage cache");
    eprintln!("firmware: cached rebuild in {:.2} s", again.elapsed().as_secs_f64());
    assert_eq!(cached.files, built.files);
    // A second build from scratch is byte-identical (SOURCE_DATE_EPOCH, fixed build user).
    let second = build(board).unwrap();
    for (a, b) in built.files.iter().zip(&second.files) {
        assert_eq!(
            std::fs::read(a).unwrap(),
            std::fs::read(b).unwrap(),
            "{} differs between two builds",
            b.display()
        );
    }
    // Checked by the build itself too (uboot::check_outputs); here independently.
    let idb = std::fs::read(&built.files[0]).unwrap();
    assert_eq!(
        &idb[uboot::RK_SPL_START..uboot::RK_SPL_START + 4],
        uboot::RK3399_MAGIC,
        "idbloader.img: the RK3399 boot ROM's SPL header after the (RC4-scrambled) header block"
    );
    let itb = std::fs::read(&built.files[1]).unwrap();
    assert_eq!(itb[..4], uboot::FDT_MAGIC, "u-boot.itb is a FIT");
    let listed = text(&ok(tool("dumpimage").arg("-l").arg(&built.files[1])));
    assert!(listed.contains("FIT description") && listed.contains("atf"), "{listed}");
    let config = std::fs::read_to_string(&built.config).unwrap();
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
}
