//! What can be proven of a Rockchip board's image without the board (QEMU has no RK3399
//! machine), read from the image alone with independent tools: the boot ROM's first
//! stage at sector 64 with a header it accepts, U-Boot's FIT at sector 16384 that
//! `dumpimage` lists, neither overlapped by the other or a partition, the extlinux entry
//! U-Boot will boot naming files that are there, a root PARTUUID that is this disk's,
//! and a device tree for the board U-Boot was built for.

use super::extlinux;
use crate::process::Cmd;
use crate::verify::inspect::{FoundPartition, Inspection, cat};
use anyhow::{Context, Result};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Where Rockchip's boot ROM looks for the first stage (idbloader.img).
pub const IDBLOADER_SECTOR: u64 = 64;
/// Where the SPL looks for U-Boot proper (u-boot.itb) on SD and eMMC.
pub const ITB_SECTOR: u64 = 16384;
const SECTOR: u64 = 512;
/// header0's magic once RC4-decoded (tools/rkcommon.c `RK_MAGIC`).
const RK_MAGIC: u32 = 0x0ff0_aa55;
/// The fixed key the boot ROM decodes header0 with (tools/rkcommon.c `rc4_key`).
const RC4_KEY: [u8; 16] = [124, 78, 3, 4, 85, 5, 9, 7, 45, 44, 123, 56, 23, 13, 23, 17];
/// Where extlinux.conf may be, as U-Boot's extlinux boot method looks for it.
pub const EXTLINUX_PATHS: &[&str] = &["/boot/extlinux/extlinux.conf", "/extlinux/extlinux.conf"];

/// The checks' outcome: what passed (for the report) and what failed.
#[derive(Debug, Default)]
pub struct Checked {
    pub passed: Vec<String>,
    pub failures: Vec<String>,
    /// The extlinux.conf U-Boot boots, and the partition holding it.
    pub extlinux: Option<(FoundPartition, String)>,
}

/// The partition whose file system holds an extlinux.conf, and the file's text.
pub fn find_extlinux(image: &Path, i: &Inspection) -> Option<(FoundPartition, &'static str, String)> {
    for p in i.partitions.iter().filter(|p| p.filesystem.kind.starts_with("ext")) {
        for path in EXTLINUX_PATHS {
            if let Ok(b) = cat(image, path, Some(p.number)) {
                return Some((p.clone(), path, String::from_utf8_lossy(&b).into_owned()));
            }
        }
    }
    None
}

/// RC4 as the boot ROM applies it to header0 (encoding and decoding are one operation).
fn rc4(data: &mut [u8], key: &[u8]) {
    let mut s: [u8; 256] = std::array::from_fn(|i| i as u8);
    let mut j: u8 = 0;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, j as usize);
    }
    let (mut i, mut j) = (0u8, 0u8);
    for b in data {
        i = i.wrapping_add(1);
        j = j.wrapping_add(s[i as usize]);
        s.swap(i as usize, j as usize);
        *b ^= s[s[i as usize].wrapping_add(s[j as usize]) as usize];
    }
}

/// idbloader's header0 decoded: (init_offset, init_boot_size) in 512-byte blocks, or why
/// the boot ROM would not accept it.
pub fn idbloader_header(block: &[u8; 512]) -> Result<(u16, u16), String> {
    let mut h = *block;
    rc4(&mut h, &RC4_KEY);
    let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    if magic != RK_MAGIC {
        return Err(format!(
            "sector {IDBLOADER_SECTOR} holds no Rockchip boot header (RC4-decoded magic {magic:#010x}, want {RK_MAGIC:#010x}): the boot ROM would skip the card"
        ));
    }
    let init_offset = u16::from_le_bytes([h[12], h[13]]);
    let init_boot_size = u16::from_le_bytes([h[508], h[509]]);
    Ok((init_offset, init_boot_size))
}

/// Runs the checks on `image`, using `work` for extracted files.
pub fn check(image: &Path, i: &Inspection, work: &Path) -> Result<Checked> {
    let mut c = Checked::default();
    let file = fs_err::File::open(image)?;
    let read = |at: u64, len: usize| -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        file.file()
            .read_exact_at(&mut buf, at)
            .with_context(|| format!("reading {} at byte {at}", image.display()))?;
        Ok(buf)
    };
    let first_partition = i.partitions.iter().map(|p| p.start).min().unwrap_or(i.size);

    // The first stage: header0, then the SPL's own header where header0 says.
    let mut idb_end = IDBLOADER_SECTOR * SECTOR;
    let header: [u8; 512] = read(IDBLOADER_SECTOR * SECTOR, 512)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("short read"))?;
    match idbloader_header(&header) {
        Err(e) => c.failures.push(e),
        Ok((offset, size)) => {
            let spl_at = (IDBLOADER_SECTOR + u64::from(offset)) * SECTOR;
            let magic = read(spl_at, 4)?;
            idb_end = (IDBLOADER_SECTOR + u64::from(offset) + u64::from(size)) * SECTOR;
            if magic == b"RK33" {
                c.passed.push(format!(
                    "idbloader at sector {IDBLOADER_SECTOR}: Rockchip boot header, RK3399 SPL at sector {} (bytes {}..{})",
                    IDBLOADER_SECTOR + u64::from(offset),
                    IDBLOADER_SECTOR * SECTOR,
                    idb_end
                ));
            } else {
                c.failures.push(format!(
                    "the first stage at sector {} has no RK3399 SPL header (`RK33`): found {:02x?}",
                    IDBLOADER_SECTOR + u64::from(offset),
                    magic
                ));
            }
        }
    }

    // U-Boot proper: a FIT that dumpimage lists, with the board's device tree.
    let itb_at = ITB_SECTOR * SECTOR;
    let mut board_fdt = None;
    if itb_at >= first_partition {
        c.failures.push(format!(
            "the first partition starts at byte {first_partition}, before U-Boot's place at sector {ITB_SECTOR}"
        ));
    } else {
        let region = read(itb_at, (first_partition - itb_at).min(i.size - itb_at) as usize)?;
        let itb = work.join("u-boot.itb");
        fs_err::write(&itb, &region)?;
        match Cmd::new("dumpimage").arg("-l").arg(&itb).run_stdout() {
            Ok(listed) if listed.contains("FIT description") => {
                let end = itb_at + fit_extent(&itb, &region)?;
                c.passed.push(format!(
                    "u-boot.itb at sector {ITB_SECTOR}: a FIT image dumpimage lists ({} images; bytes {itb_at}..{end})",
                    listed.matches(" Image ").count()
                ));
                if idb_end > itb_at {
                    c.failures.push(format!(
                        "idbloader (to byte {idb_end}) runs into u-boot.itb at byte {itb_at}"
                    ));
                }
                if end > first_partition {
                    c.failures.push(format!(
                        "u-boot.itb (to byte {end}) runs into the first partition at byte {first_partition}"
                    ));
                } else {
                    c.passed.push(format!(
                        "no partition overlaps the loaders (first partition at byte {first_partition})"
                    ));
                }
                // binman names it `fdt-rockchip/rk3399-rock-4c-plus`, mkimage -f auto by the file.
                board_fdt = fdtget(&itb, "/images/fdt-1", "description").ok().map(|d| {
                    let last = d.rsplit('/').next().unwrap_or_default();
                    last.trim_end_matches(".dtb").to_string()
                });
            }
            Ok(listed) => c.failures.push(format!(
                "sector {ITB_SECTOR} holds no FIT image: dumpimage -l says {}",
                listed.lines().next().unwrap_or_default()
            )),
            Err(e) => c.failures.push(format!(
                "sector {ITB_SECTOR} holds no FIT image U-Boot's SPL would load: {e}"
            )),
        }
    }

    // The extlinux entry U-Boot boots, and what it names.
    let Some((part, path, text)) = find_extlinux(image, i) else {
        c.failures.push(format!(
            "no ext4 partition has {}: U-Boot's standard boot would find nothing to boot",
            EXTLINUX_PATHS.join(" or ")
        ));
        return Ok(c);
    };
    let conf = extlinux::parse(&text);
    let Some(entry) = conf.default_entry() else {
        c.failures
            .push(format!("{path} on partition {} has no entry to boot", part.number));
        return Ok(c);
    };
    let mut named = Vec::new();
    for (what, file) in [("linux", &entry.kernel), ("initrd", &entry.initrd), ("fdt", &entry.fdt)] {
        match file {
            None => c
                .failures
                .push(format!("{path}: entry `{}` has no `{what}` line", entry.label)),
            Some(f) => match cat(image, f, Some(part.number)) {
                Ok(bytes) => named.push((what, f.clone(), bytes)),
                Err(_) => c.failures.push(format!(
                    "{path}: entry `{}` names {what} {f}, which partition {} does not have",
                    entry.label, part.number
                )),
            },
        }
    }
    if named.len() == 3 {
        c.passed.push(format!(
            "{path} (partition {}): entry `{}` names {}, all present",
            part.number,
            entry.label,
            named.iter().map(|(_, f, _)| f.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    let root = entry
        .append
        .split_whitespace()
        .find_map(|a| a.strip_prefix("root=PARTUUID="));
    match root {
        Some(id) if id.eq_ignore_ascii_case(&part.partuuid) => c.passed.push(format!(
            "root=PARTUUID={id}: partition {}, the one holding the entry",
            part.number
        )),
        Some(id) => match i.partitions.iter().find(|p| p.partuuid.eq_ignore_ascii_case(id)) {
            Some(p) => c.passed.push(format!("root=PARTUUID={id}: partition {}", p.number)),
            None => c
                .failures
                .push(format!("root=PARTUUID={id} names no partition of this disk")),
        },
        None => c.failures.push(format!(
            "{path}: entry `{}` gives no root=PARTUUID= (`{}`): device names change between SD card and eMMC",
            entry.label, entry.append
        )),
    }

    // The device tree names the board, the same one U-Boot was built for.
    if let Some((_, f, bytes)) = named.iter().find(|(w, _, _)| *w == "fdt") {
        let dtb = work.join("board.dtb");
        fs_err::write(&dtb, bytes)?;
        let stem = Path::new(f)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // `rk3399-rock-4c-plus` → the board part `rock-4c-plus`.
        let board = stem.split_once('-').map_or(stem.as_str(), |(_, b)| b);
        match fdtget(&dtb, "/", "compatible") {
            Ok(compatible) if compatible.split_whitespace().any(|c| c.ends_with(&format!(",{board}"))) => {
                c.passed.push(format!("{f}: compatible `{compatible}` names the board"));
            }
            Ok(compatible) => c.failures.push(format!(
                "{f}: compatible `{compatible}` does not name the board `{board}`"
            )),
            Err(e) => c.failures.push(format!("{f} is not a device tree: {e}")),
        }
        match &board_fdt {
            Some(d) if *d == stem => c.passed.push(format!("U-Boot was built for the same board ({d})")),
            Some(d) => c.failures.push(format!(
                "U-Boot was built for {d}, but the extlinux entry boots the device tree {stem}"
            )),
            None => {}
        }
    }
    c.extlinux = Some((part, text));
    Ok(c)
}

/// How far a FIT with external data reaches: its device tree, then each image's data at
/// `data-offset` after it (aligned to 4 bytes, as mkimage -E places it).
fn fit_extent(itb: &Path, bytes: &[u8]) -> Result<u64> {
    let total = bytes
        .get(4..8)
        .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        .unwrap_or(0);
    let base = total.div_ceil(4) * 4;
    let images = Cmd::new("fdtget").arg("-l").arg(itb).arg("/images").run_stdout()?;
    let mut end = total;
    for name in images.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let node = format!("/images/{name}");
        let (Ok(off), Ok(size)) = (
            fdtget_u64(itb, &node, "data-offset"),
            fdtget_u64(itb, &node, "data-size"),
        ) else {
            continue;
        };
        end = end.max(base + off + size);
    }
    Ok(end)
}

fn fdtget(file: &Path, node: &str, prop: &str) -> Result<String> {
    let out = Cmd::new("fdtget").arg(file).arg(node).arg(prop).run_stdout()?;
    Ok(out.trim().to_string())
}

fn fdtget_u64(file: &Path, node: &str, prop: &str) -> Result<u64> {
    let out = Cmd::new("fdtget")
        .args(["-t", "u"])
        .arg(file)
        .arg(node)
        .arg(prop)
        .run_stdout()?;
    out.trim()
        .parse()
        .with_context(|| format!("{node} {prop}: `{}` is not a number", out.trim()))
}

/// The board's U-Boot `.config` against the values its recipe demanded: each a line,
/// passed or failed.
pub fn check_config(config: &str, want: &[(String, String)], c: &mut Checked) {
    let wrong = crate::firmware::uboot::config_mismatches(config, want);
    for (name, value) in want {
        if wrong.iter().all(|(n, _, _)| n != name) {
            c.passed.push(format!("U-Boot .config: {name}={value}"));
        }
    }
    for (name, value, got) in wrong {
        c.failures.push(format!(
            "U-Boot .config: {name} is {}, the recipe wants {value}",
            got.as_deref().unwrap_or("not set")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header0_is_decoded_as_the_boot_rom_does() {
        // Made as tools/rkcommon.c does: magic, init_offset 4, sizes, then RC4.
        let mut h = [0u8; 512];
        h[..4].copy_from_slice(&RK_MAGIC.to_le_bytes());
        h[12..14].copy_from_slice(&4u16.to_le_bytes());
        h[506..508].copy_from_slice(&300u16.to_le_bytes());
        h[508..510].copy_from_slice(&420u16.to_le_bytes());
        rc4(&mut h, &RC4_KEY);
        assert_ne!(&h[..4], &RK_MAGIC.to_le_bytes(), "scrambled");
        assert_eq!(idbloader_header(&h), Ok((4, 420)));
        h[0] ^= 1;
        assert!(idbloader_header(&h).unwrap_err().contains("no Rockchip boot header"));
    }

    #[test]
    fn rc4_matches_a_published_vector() {
        // RFC 6229's first vector: key 0x0102030405, first output bytes b2 39 63 05.
        let mut d = [0u8; 4];
        rc4(&mut d, &[1, 2, 3, 4, 5]);
        assert_eq!(d, [0xb2, 0x39, 0x63, 0x05]);
    }
}
