//! `imgbuild inspect`: the partition table and each partition's file system, label,
//! UUID/PARTUUID, size and used space, and files read out of ext4 or FAT partitions —
//! all from the image file, without mounting anything.

use super::probe::{FsInfo, probe};
use crate::recipe::ids::mbr_partuuid;
use anyhow::{Context, Result, anyhow, bail};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// One partition as found in the image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FoundPartition {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub bootable: bool,
    pub name: Option<String>,
    pub partuuid: String,
    pub filesystem: FsInfo,
}

/// The whole image as found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    pub size: u64,
    pub table: String,
    pub disk_id: String,
    pub partitions: Vec<FoundPartition>,
}

/// Reads the partition table and probes every partition.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let mut file = open_image(path)?;
    let size = file.seek(SeekFrom::End(0))?;
    let mut sector = [0u8; 512];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut sector)
        .with_context(|| format!("{} is too small to be a disk image", path.display()))?;
    if sector[510..512] != [0x55, 0xAA] {
        bail!("{}: no partition table (no MBR signature in sector 0)", path.display());
    }
    let is_gpt = sector[446 + 4] == 0xEE;
    let mut parts = Vec::new();
    let (table, disk_id) = if is_gpt {
        let disk = gpt::GptConfig::new()
            .writable(false)
            .open_from_device(&mut file)
            .with_context(|| format!("{}: reading the GPT", path.display()))?;
        for (n, p) in disk.partitions() {
            if !p.is_used() {
                continue;
            }
            // A damaged or hostile table: sizes are checked, never wrapped.
            let bytes = p
                .last_lba
                .checked_sub(p.first_lba)
                .and_then(|n| n.checked_add(1))
                .and_then(|n| n.checked_mul(512));
            let (Some(start), Some(psize)) = (p.first_lba.checked_mul(512), bytes) else {
                bail!(
                    "{}: GPT partition {n} is broken: it ends at sector {} before it starts at sector {}, or beyond any disk",
                    path.display(),
                    p.last_lba,
                    p.first_lba
                );
            };
            parts.push(FoundPartition {
                number: *n,
                start,
                size: psize,
                kind: p.part_type_guid.guid.to_string().to_uppercase(),
                bootable: p.flags & (1 << 2) != 0,
                name: Some(p.name.clone()),
                partuuid: p.part_guid.to_string(),
                filesystem: FsInfo::default(),
            });
        }
        ("gpt".to_string(), disk.guid().to_string())
    } else {
        let sig = u32::from_le_bytes([sector[440], sector[441], sector[442], sector[443]]);
        for i in 0..4 {
            let e = &sector[446 + i * 16..446 + (i + 1) * 16];
            let sys = e[4];
            let lba = u32::from_le_bytes([e[8], e[9], e[10], e[11]]) as u64;
            let count = u32::from_le_bytes([e[12], e[13], e[14], e[15]]) as u64;
            if sys == 0 || count == 0 {
                continue;
            }
            parts.push(FoundPartition {
                number: i as u32 + 1,
                start: lba * 512,
                size: count * 512,
                kind: format!("0x{sys:02x}"),
                bootable: e[0] == 0x80,
                name: None,
                partuuid: mbr_partuuid(sig, i as u32 + 1),
                filesystem: FsInfo::default(),
            });
        }
        ("mbr".to_string(), format!("0x{sig:08x}"))
    };
    for p in &mut parts {
        let end = p.start.checked_add(p.size);
        if end.is_none_or(|end| end > size) {
            bail!(
                "{}: partition {} ends at byte {} beyond the image's {} bytes",
                path.display(),
                p.number,
                end.map_or_else(|| "2^64 or more".to_string(), |e| e.to_string()),
                size
            );
        }
        p.filesystem = probe(&file, p.start, p.size)?;
    }
    Ok(Inspection {
        size,
        table,
        disk_id,
        partitions: parts,
    })
}

/// Reads `inner` from partition `partition`, or — a path as the booted system sees it —
/// from the partition mounted above it per the root partition's /etc/fstab, or else from
/// the first partition that has it.
pub fn cat(path: &Path, inner: &str, partition: Option<u32>) -> Result<Vec<u8>> {
    let info = inspect(path)?;
    let file = open_image(path)?;
    if let Some(n) = partition {
        let p = info
            .partitions
            .iter()
            .find(|p| p.number == n)
            .ok_or_else(|| anyhow!("{}: there is no partition {n}", path.display()))?;
        return read_from(&file, p, inner)
            .map_err(|e| anyhow!("{}: `{inner}` not found in partition {n}: {e}", path.display()));
    }
    let mounts = fstab_mounts(&file, &info);
    let mut best: Option<(&FoundPartition, &str)> = None;
    for (mount, p) in &mounts {
        let rel = if mount == "/" {
            Some(inner)
        } else {
            inner
                .strip_prefix(mount.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'))
        };
        if let Some(rel) = rel
            && best.is_none_or(|(_, r)| rel.len() < r.len())
        {
            best = Some((p, rel));
        }
    }
    if let Some((p, rel)) = best {
        return read_from(&file, p, rel).map_err(|e| {
            anyhow!(
                "{}: `{inner}` not found (partition {}, mounted per /etc/fstab): {e}",
                path.display(),
                p.number
            )
        });
    }
    let mut tried = Vec::new();
    for p in &info.partitions {
        match read_from(&file, p, inner) {
            Ok(data) => return Ok(data),
            Err(e) => tried.push(format!("partition {}: {e}", p.number)),
        }
    }
    bail!(
        "{}: `{inner}` not found ({}); give `--partition N` and a path inside that partition",
        path.display(),
        tried.join("; ")
    )
}

fn read_from(file: &File, p: &FoundPartition, inner: &str) -> Result<Vec<u8>> {
    if p.filesystem.kind.starts_with("ext") {
        read_ext4(file, p.start, inner)
    } else if p.filesystem.kind.starts_with("vfat") {
        let mut r = crate::image::fs::fat::FatReader::open(file.try_clone()?, p.start, p.size)?;
        Ok(r.read_file(inner.trim_start_matches('/'))?)
    } else {
        bail!("no file system imgbuild can read")
    }
}

/// Mount points from the first ext4 partition's /etc/fstab, matched to partitions by
/// `UUID=`, `PARTUUID=` or `LABEL=`.
fn fstab_mounts<'a>(file: &File, info: &'a Inspection) -> Vec<(String, &'a FoundPartition)> {
    let Some(text) = info
        .partitions
        .iter()
        .filter(|p| p.filesystem.kind.starts_with("ext"))
        .find_map(|p| read_ext4(file, p.start, "/etc/fstab").ok())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut f = line.split_whitespace();
        let (Some(spec), Some(mount)) = (f.next(), f.next()) else {
            continue;
        };
        let found = info.partitions.iter().find(|p| match spec.split_once('=') {
            Some(("UUID", v)) => p.filesystem.uuid.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(v)),
            Some(("PARTUUID", v)) => p.partuuid.eq_ignore_ascii_case(v),
            Some(("LABEL", v)) => p.filesystem.label.as_deref() == Some(v),
            _ => false,
        });
        if let Some(p) = found {
            let m = mount.trim_end_matches('/');
            out.push((if m.is_empty() { "/".to_string() } else { m.to_string() }, p));
        }
    }
    out
}

struct Region {
    file: File,
    offset: u64,
}

impl ext4_view::Ext4Read for Region {
    fn read(&mut self, start: u64, dst: &mut [u8]) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        use std::os::unix::fs::FileExt;
        self.file
            .read_exact_at(dst, self.offset + start)
            .map_err(|e| Box::new(e) as _)
    }
}

fn read_ext4(file: &File, offset: u64, inner: &str) -> Result<Vec<u8>> {
    let fs = ext4_view::Ext4::load(Box::new(Region {
        file: file.try_clone()?,
        offset,
    }))
    .map_err(anyhow::Error::new)?;
    let p = if inner.starts_with('/') {
        inner.to_string()
    } else {
        format!("/{inner}")
    };
    fs.read(p.as_str()).map_err(anyhow::Error::new)
}

fn open_image(path: &Path) -> Result<File> {
    if path.is_dir() {
        bail!(
            "{} is a directory; name an image file in it (the `.img`)",
            path.display()
        );
    }
    let mut f = fs_err::File::open(path)?.into_parts().0;
    let mut magic = [0u8; 6];
    let n = f
        .read(&mut magic)
        .with_context(|| format!("reading {}", path.display()))?;
    f.seek(SeekFrom::Start(0))?;
    if n >= 6 && crate::codec::detect(&magic).is_some() {
        bail!(
            "{} is compressed; inspect the raw `.img` (or decompress it first, e.g. `xz -dk`)",
            path.display()
        );
    }
    Ok(f)
}

/// Renders an inspection as a table for people, columns as wide as their content.
pub fn render(path: &Path, i: &Inspection) -> String {
    use crate::report::human_bytes;
    let mut s = format!("{}: {} ({} bytes)\n", path.display(), human_bytes(i.size), i.size);
    s.push_str(&format!("table: {}, disk identifier {}\n", i.table, i.disk_id));
    let mut rows = vec![
        [
            "#",
            "start",
            "size",
            "type",
            "filesystem",
            "label",
            "uuid",
            "partuuid",
            "used",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in &i.partitions {
        let f = &p.filesystem;
        let used = match (f.used, f.size) {
            (Some(u), Some(t)) => format!("{} of {}", human_bytes(u), human_bytes(t)),
            _ => "-".into(),
        };
        rows.push(vec![
            format!("{}{}", p.number, if p.bootable { "*" } else { "" }),
            p.start.to_string(),
            human_bytes(p.size),
            p.kind.clone(),
            f.kind.clone(),
            f.label.clone().unwrap_or_else(|| "-".into()),
            f.uuid.clone().unwrap_or_else(|| "-".into()),
            p.partuuid.clone(),
            used,
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (v, w))| {
                if c == 1 || c == 2 {
                    format!("{v:>w$}")
                } else {
                    format!("{v:<w$}")
                }
            })
            .collect();
        s.push_str(cells.join("  ").trim_end());
        s.push('\n');
    }
    if i.partitions.iter().any(|p| p.bootable) {
        s.push_str("* bootable\n");
    }
    s
}
