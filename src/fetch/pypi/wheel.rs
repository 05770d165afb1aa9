//! Reads a wheel's core metadata (`<name>-<version>.dist-info/METADATA`) straight from
//! the zip archive in the store: the end-of-central-directory record (zip64 too), the
//! central directory, then the one member, stored or deflated. This is the file PEP 658
//! serves as `<wheel URL>.metadata`, so a wheel we already downloaded needs no request
//! to tell its `Requires-Python`.

use anyhow::{Context, Result, anyhow, bail};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
/// METADATA is a few kilobytes; anything this large is not what we are looking for.
const MAX_METADATA: u64 = 16 << 20;

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| anyhow!("truncated zip record"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| anyhow!("truncated zip record"))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| anyhow!("truncated zip record"))
}

fn read_at(f: &mut std::fs::File, offset: u64, len: u64) -> Result<Vec<u8>> {
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.take(len).read_to_end(&mut buf)?;
    if (buf.len() as u64) < len {
        bail!("truncated zip file");
    }
    Ok(buf)
}

/// The text of the wheel's `.dist-info/METADATA`.
pub fn metadata(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    read_metadata(&mut f).with_context(|| format!("reading the wheel metadata of {}", path.display()))
}

fn read_metadata(f: &mut std::fs::File) -> Result<String> {
    let len = f.metadata()?.len();
    // The end record is 22 bytes plus a comment of at most 64 KiB.
    let tail_len = len.min(22 + 65535 + 20);
    let tail = read_at(f, len - tail_len, tail_len)?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i).ok() == Some(EOCD))
        .ok_or_else(|| anyhow!("not a zip file (no end of central directory)"))?;
    let mut entries = u64::from(u16_at(&tail, eocd + 10)?);
    let mut cd_size = u64::from(u32_at(&tail, eocd + 12)?);
    let mut cd_offset = u64::from(u32_at(&tail, eocd + 16)?);
    if (entries == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF)
        && eocd >= 20
        && u32_at(&tail, eocd - 20)? == ZIP64_LOCATOR
    {
        let at = u64_at(&tail, eocd - 20 + 8)?;
        let rec = read_at(f, at, 56)?;
        if u32_at(&rec, 0)? != ZIP64_EOCD {
            bail!("bad zip64 end of central directory");
        }
        entries = u64_at(&rec, 32)?;
        cd_size = u64_at(&rec, 40)?;
        cd_offset = u64_at(&rec, 48)?;
    }
    if cd_offset.saturating_add(cd_size) > len {
        bail!("the central directory lies outside the file");
    }
    let cd = read_at(f, cd_offset, cd_size)?;
    let mut found: Vec<(String, Member)> = Vec::new();
    let mut at = 0usize;
    for _ in 0..entries {
        if u32_at(&cd, at)? != CENTRAL {
            bail!("bad central directory entry");
        }
        let method = u16_at(&cd, at + 10)?;
        let mut compressed = u64::from(u32_at(&cd, at + 20)?);
        let mut size = u64::from(u32_at(&cd, at + 24)?);
        let name_len = usize::from(u16_at(&cd, at + 28)?);
        let extra_len = usize::from(u16_at(&cd, at + 30)?);
        let comment_len = usize::from(u16_at(&cd, at + 32)?);
        let mut offset = u64::from(u32_at(&cd, at + 42)?);
        let name_bytes = cd
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| anyhow!("truncated zip record"))?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let is_metadata = name
            .strip_suffix(".dist-info/METADATA")
            .is_some_and(|dir| !dir.is_empty() && !dir.contains('/'));
        if is_metadata {
            // Sizes and offset too large for 32 bits are in the zip64 extra field, in
            // this order, each present only when its 32-bit field is all ones.
            let extra = cd
                .get(at + 46 + name_len..at + 46 + name_len + extra_len)
                .ok_or_else(|| anyhow!("truncated zip record"))?;
            let mut e = 0;
            while e + 4 <= extra.len() {
                let (id, n) = (u16_at(extra, e)?, usize::from(u16_at(extra, e + 2)?));
                if id == 1 {
                    let mut p = e + 4;
                    for field in [&mut size, &mut compressed, &mut offset] {
                        if *field == 0xFFFF_FFFF {
                            *field = u64_at(extra, p)?;
                            p += 8;
                        }
                    }
                }
                e += 4 + n;
            }
            found.push((
                name,
                Member {
                    method,
                    compressed,
                    size,
                    offset,
                },
            ));
        }
        at += 46 + name_len + extra_len + comment_len;
    }
    let (name, m) = match found.len() {
        0 => bail!("no .dist-info/METADATA in the wheel"),
        1 => found.remove(0),
        n => bail!("{n} .dist-info directories in the wheel"),
    };
    if m.size > MAX_METADATA || m.compressed > MAX_METADATA {
        bail!("{name} is implausibly large ({} bytes)", m.size);
    }
    let local = read_at(f, m.offset, 30)?;
    if u32_at(&local, 0)? != LOCAL {
        bail!("bad local header for {name}");
    }
    let skip = 30 + u64::from(u16_at(&local, 26)?) + u64::from(u16_at(&local, 28)?);
    let data = read_at(f, m.offset + skip, m.compressed)?;
    let text = match m.method {
        0 => data,
        8 => {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(&data[..])
                .take(MAX_METADATA)
                .read_to_end(&mut out)
                .with_context(|| format!("inflating {name}"))?;
            out
        }
        other => bail!("{name} uses zip compression method {other}, which wheels do not"),
    };
    Ok(String::from_utf8_lossy(&text).into_owned())
}

struct Member {
    method: u16,
    compressed: u64,
    size: u64,
    offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal zip writer for the tests: stored or raw-deflated members.
    fn zip(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, body, deflate) in members {
            let data = if *deflate {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(body).unwrap();
                e.finish().unwrap()
            } else {
                body.to_vec()
            };
            let method: u16 = if *deflate { 8 } else { 0 };
            let offset = out.len() as u32;
            out.extend(LOCAL.to_le_bytes());
            out.extend([20, 0, 0, 0]);
            out.extend(method.to_le_bytes());
            out.extend([0; 8]); // time, date, crc (not checked)
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((body.len() as u32).to_le_bytes());
            out.extend((name.len() as u16).to_le_bytes());
            out.extend(3u16.to_le_bytes()); // a local extra field the central one lacks
            out.extend(name.as_bytes());
            out.extend([0xAA; 3]);
            out.extend(&data);
            central.extend(CENTRAL.to_le_bytes());
            central.extend([20, 0, 20, 0, 0, 0]);
            central.extend(method.to_le_bytes());
            central.extend([0; 8]);
            central.extend((data.len() as u32).to_le_bytes());
            central.extend((body.len() as u32).to_le_bytes());
            central.extend((name.len() as u16).to_le_bytes());
            central.extend([0; 12]); // extra, comment, disk, attributes
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        out.extend(EOCD.to_le_bytes());
        out.extend([0; 4]);
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(5u16.to_le_bytes());
        out.extend(b"hello");
        out
    }

    fn read(bytes: &[u8]) -> Result<String> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.whl");
        fs_err::write(&p, bytes).unwrap();
        metadata(&p)
    }

    #[test]
    fn finds_the_metadata_stored_or_deflated() {
        let meta = b"Metadata-Version: 2.1\nName: x\nRequires-Python: >=3.9\n\nbody";
        for deflate in [false, true] {
            let z = zip(&[
                ("x/__init__.py", b"print()", deflate),
                ("x-1.0.dist-info/RECORD", b"", false),
                ("x-1.0.dist-info/METADATA", meta, deflate),
                ("x/sub.dist-info/METADATA", b"not this one", false),
            ]);
            assert_eq!(read(&z).unwrap().as_bytes(), meta);
        }
    }

    #[test]
    fn refuses_what_is_not_a_wheel() {
        assert!(read(b"plain text").unwrap_err().to_string().contains("wheel metadata"));
        let z = zip(&[("x/__init__.py", b"", false)]);
        assert!(format!("{:#}", read(&z).unwrap_err()).contains("no .dist-info/METADATA"));
    }
}
