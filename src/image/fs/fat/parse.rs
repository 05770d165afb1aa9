//! Parsing raw directory bytes into entries: long-name reassembly (sequence
//! numbers and checksum checked, orphans dropped), short names with the NT
//! lowercase flags, the volume label, and the little-endian field helpers
//! shared with the reader.

use super::DirEntryInfo;
use super::dir::{self, ATTR_DIRECTORY, ATTR_LFN, ATTR_VOLUME_ID, LFN_CHARS, LFN_OFFSETS, NT_LOWER_BASE, NT_LOWER_EXT};

pub fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Trimmed, space-padded ASCII field as a string (bytes above 0x7F are read
/// as Latin-1: the OEM code page is unknown).
pub fn field(b: &[u8]) -> String {
    b.iter()
        .map(|&c| char::from(c))
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// Long name being collected from LFN entries (they precede their short
/// entry, last part first).
struct Lfn {
    units: Vec<u16>,
    checksum: u8,
    /// Sequence number of the entry expected next, counting down to 1.
    expect: u8,
}

/// Parses directory bytes; the high cluster word only counts on FAT32
/// (FAT12/16 used those bytes for other things).
pub fn parse_dir(bytes: &[u8], fat32: bool) -> (Vec<DirEntryInfo>, Option<String>) {
    let mut out = Vec::new();
    let mut label = None;
    let mut lfn: Option<Lfn> = None;
    for e in bytes.chunks_exact(32) {
        match e[0] {
            0x00 => break,
            0xE5 => {
                lfn = None;
                continue;
            }
            _ => {}
        }
        let attr = e[11];
        if attr & 0x3F == ATTR_LFN {
            let seq = e[0] & 0x1F;
            let chars = LFN_OFFSETS.iter().map(|&at| le16(e, at));
            if e[0] & 0x40 != 0 && seq > 0 {
                let mut units = vec![0u16; usize::from(seq) * LFN_CHARS];
                units[usize::from(seq - 1) * LFN_CHARS..]
                    .iter_mut()
                    .zip(chars)
                    .for_each(|(d, s)| *d = s);
                lfn = Some(Lfn {
                    units,
                    checksum: e[13],
                    expect: seq - 1,
                });
            } else if let Some(l) = lfn
                .as_mut()
                .filter(|l| l.expect == seq && seq > 0 && l.checksum == e[13])
            {
                let at = usize::from(seq - 1) * LFN_CHARS;
                l.units[at..at + LFN_CHARS]
                    .iter_mut()
                    .zip(chars)
                    .for_each(|(d, s)| *d = s);
                l.expect = seq - 1;
            } else {
                // An orphaned part: drop the whole long name.
                lfn = None;
            }
            continue;
        }
        let long = lfn.take();
        let mut short = [0u8; 11];
        short.copy_from_slice(&e[..11]);
        if attr & ATTR_VOLUME_ID != 0 {
            label = Some(field(&short));
            continue;
        }
        if short[0] == b'.' {
            continue; // "." and ".."
        }
        let long = long
            .filter(|l| l.expect == 0 && l.checksum == dir::lfn_checksum(&short))
            .map(|l| {
                let end = l.units.iter().position(|&u| u == 0).unwrap_or(l.units.len());
                char::decode_utf16(l.units[..end].iter().copied())
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect::<String>()
            });
        if short[0] == 0x05 {
            short[0] = 0xE5; // 0xE5 as a first character is stored as 0x05
        }
        let (base, ext) = (field(&short[..8]), field(&short[8..]));
        let join = |b: &str, e: &str| {
            if e.is_empty() {
                b.to_string()
            } else {
                format!("{b}.{e}")
            }
        };
        let short_name = join(&base, &ext);
        let shown = || {
            let b = if e[12] & NT_LOWER_BASE != 0 {
                base.to_ascii_lowercase()
            } else {
                base.clone()
            };
            let x = if e[12] & NT_LOWER_EXT != 0 {
                ext.to_ascii_lowercase()
            } else {
                ext.clone()
            };
            join(&b, &x)
        };
        let is_dir = attr & ATTR_DIRECTORY != 0;
        out.push(DirEntryInfo {
            name: long.unwrap_or_else(shown),
            short_name,
            is_dir,
            size: if is_dir { 0 } else { u64::from(le32(e, 28)) },
            mtime: dir::unix_time(le16(e, 24), le16(e, 22)),
            first_cluster: if fat32 { u32::from(le16(e, 20)) << 16 } else { 0 } | u32::from(le16(e, 26)),
        });
    }
    (out, label)
}
