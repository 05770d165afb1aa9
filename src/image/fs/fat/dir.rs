//! Names and directory entries: validating long names, folding case the way
//! FAT compares names, choosing 8.3 short names (direct, NT-lowercase flags,
//! or `BASIS~N` plus long-name entries), encoding the 32-byte entries, and
//! converting unix times to and from DOS date/time fields.

use std::collections::{HashMap, HashSet};

/// Attribute bits of a directory entry.
pub const ATTR_VOLUME_ID: u8 = 0x08;
pub const ATTR_DIRECTORY: u8 = 0x10;
pub const ATTR_ARCHIVE: u8 = 0x20;
pub const ATTR_LFN: u8 = 0x0F;
/// NT flags in byte 12: the base / extension is displayed in lowercase.
pub const NT_LOWER_BASE: u8 = 0x08;
pub const NT_LOWER_EXT: u8 = 0x10;
/// UTF-16 code units per long-name entry.
pub const LFN_CHARS: usize = 13;
/// Longest long name, in UTF-16 code units.
pub const MAX_NAME_UNITS: usize = 255;

/// Rejects names that FAT (or Windows/Linux reading FAT) cannot represent.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty path component".into());
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' components are not allowed".into());
    }
    if let Some(c) = name
        .chars()
        .find(|&c| (c as u32) < 0x20 || "\"*/:<>?\\|\u{7f}".contains(c))
    {
        return Err(format!("character {c:?} is not allowed in FAT names"));
    }
    // Windows and Linux vfat strip trailing dots and spaces on lookup, so
    // such a name could never be opened again.
    if name.ends_with('.') || name.ends_with(' ') {
        return Err("names cannot end with '.' or ' ' on FAT".into());
    }
    if name.encode_utf16().count() > MAX_NAME_UNITS {
        return Err(format!("component longer than {MAX_NAME_UNITS} UTF-16 units"));
    }
    Ok(())
}

/// Case folding used to compare names: a one-to-one uppercase mapping per
/// character, like the upcase table FAT drivers use (so "ß" stays "ß" and
/// does not clash with "SS").
pub fn fold(name: &str) -> String {
    name.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Characters allowed in short names besides A-Z and 0-9.
fn short_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'()-@^_`{}~".contains(c)
}

/// How one long name is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortName {
    /// 8 + 3 bytes, space padded, uppercase.
    pub name: [u8; 11],
    /// Byte 12 of the entry (NT lowercase flags).
    pub nt_flags: u8,
    /// Whether long-name entries are needed to preserve the name.
    pub needs_lfn: bool,
}

fn pack(base: &str, ext: &str) -> [u8; 11] {
    let mut n = [b' '; 11];
    n[..base.len()].copy_from_slice(base.as_bytes());
    n[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    n
}

/// Case of the letters in a part: `Some(true)` all lowercase, `Some(false)`
/// all uppercase or no letters, `None` mixed.
fn part_case(s: &str) -> Option<bool> {
    let lower = s.chars().any(|c| c.is_ascii_lowercase());
    let upper = s.chars().any(|c| c.is_ascii_uppercase());
    match (lower, upper) {
        (true, true) => None,
        (l, _) => Some(l),
    }
}

/// The short name for a name that is already a valid 8.3 name ignoring
/// case, without a numeric tail. `None` when a tail must be generated.
pub fn direct_short_name(name: &str) -> Option<ShortName> {
    let (base, ext) = match name.split_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    let fits = (1..=8).contains(&base.len())
        && ext.len() <= 3
        && ext.is_empty() != name.contains('.')
        && !ext.contains('.')
        && base.chars().chain(ext.chars()).all(short_char_ok);
    if !fits {
        return None;
    }
    let packed = pack(&base.to_ascii_uppercase(), &ext.to_ascii_uppercase());
    Some(match (part_case(base), part_case(ext)) {
        (Some(lb), Some(le)) => ShortName {
            name: packed,
            nt_flags: if lb { NT_LOWER_BASE } else { 0 } | if le { NT_LOWER_EXT } else { 0 },
            needs_lfn: false,
        },
        // Mixed case inside a part: keep it in a long name; the short name
        // is the plain uppercase form (what Windows NT does too).
        _ => ShortName {
            name: packed,
            nt_flags: 0,
            needs_lfn: true,
        },
    })
}

/// Basis name and extension for the `BASIS~N` form, following the FAT
/// specification: uppercase, characters without a short form become '_',
/// spaces and leading dots dropped, base cut to 8 and extension to 3.
fn basis(name: &str) -> (String, String) {
    let conv = |s: &str| -> String {
        s.chars()
            .filter(|&c| c != ' ')
            .map(|c| {
                if c == '.' {
                    '.'
                } else if short_char_ok(c) {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    let stripped = name.trim_start_matches(['.', ' ']);
    let (base, ext) = match stripped.rfind('.') {
        Some(i) => (&stripped[..i], &stripped[i + 1..]),
        None => (stripped, ""),
    };
    let mut b: String = conv(base).chars().filter(|&c| c != '.').take(8).collect();
    let e: String = conv(ext).chars().take(3).collect();
    if b.is_empty() {
        b.push('_');
    }
    (b, e)
}

/// Assigns short names to all names of one directory, in the given order.
/// Direct 8.3 names are reserved first so generated `~N` names never take
/// them.
pub fn assign_short_names(names: &[&str]) -> Vec<ShortName> {
    let direct: Vec<Option<ShortName>> = names.iter().map(|n| direct_short_name(n)).collect();
    let mut used: HashSet<[u8; 11]> = direct.iter().flatten().map(|s| s.name).collect();
    // Next tail number to try per basis: keeps a 2,000-file directory with a
    // shared basis linear instead of quadratic.
    let mut next: HashMap<(String, String), u32> = HashMap::new();
    names
        .iter()
        .zip(direct)
        .map(|(name, d)| {
            if let Some(d) = d {
                return d;
            }
            let (b, e) = basis(name);
            let n = next.entry((b.clone(), e.clone())).or_insert(1);
            loop {
                let tail = format!("~{n}");
                let keep = b.len().min(8 - tail.len());
                let cand = pack(&format!("{}{tail}", &b[..keep]), &e);
                *n += 1;
                if used.insert(cand) {
                    return ShortName {
                        name: cand,
                        nt_flags: 0,
                        needs_lfn: true,
                    };
                }
            }
        })
        .collect()
}

/// Checksum of a short name, stored in each of its long-name entries.
pub fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &c| ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(c))
}

/// Number of long-name entries for a name.
pub fn lfn_entry_count(name: &str) -> usize {
    name.encode_utf16().count().div_ceil(LFN_CHARS)
}

/// Byte offsets of the 13 UTF-16 characters inside a long-name entry.
pub const LFN_OFFSETS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// Long-name entries for `name`, in on-disk order (last part first).
pub fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let mut units: Vec<u16> = name.encode_utf16().collect();
    let count = units.len().div_ceil(LFN_CHARS);
    // A name that does not fill its last entry is terminated by 0x0000 and
    // padded with 0xFFFF.
    if units.len() % LFN_CHARS != 0 {
        units.push(0);
    }
    units.resize(count * LFN_CHARS, 0xFFFF);
    let sum = lfn_checksum(short);
    (1..=count)
        .rev()
        .map(|seq| {
            let mut e = [0u8; 32];
            e[0] = seq as u8 | if seq == count { 0x40 } else { 0 };
            e[11] = ATTR_LFN;
            e[13] = sum;
            let part = &units[(seq - 1) * LFN_CHARS..seq * LFN_CHARS];
            for (&at, &u) in LFN_OFFSETS.iter().zip(part) {
                e[at..at + 2].copy_from_slice(&u.to_le_bytes());
            }
            e
        })
        .collect()
}

/// A DOS timestamp: date, time (2-second units) and the 10 ms remainder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DosTime {
    pub date: u16,
    pub time: u16,
    pub tenths: u8,
}

/// Days since 1970-01-01 to a civil (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds (UTC) to DOS fields, clamped to 1980-01-01..2107-12-31.
pub fn dos_time(unix: i64) -> DosTime {
    let (y, mo, d) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    let (y, mo, d, secs) = if y < 1980 {
        (1980, 1, 1, 0)
    } else if y > 2107 {
        (2107, 12, 31, 86_399)
    } else {
        (y, mo, d, secs)
    };
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    DosTime {
        date: (((y - 1980) as u16) << 9) | ((mo as u16) << 5) | d as u16,
        time: ((h as u16) << 11) | ((mi as u16) << 5) | (s / 2) as u16,
        tenths: ((s % 2) * 100) as u8,
    }
}

/// DOS date and time fields back to unix seconds (UTC).
pub fn unix_time(date: u16, time: u16) -> i64 {
    let y = 1980 + i64::from(date >> 9);
    let m = u32::from((date >> 5) & 0xF).clamp(1, 12);
    let d = u32::from(date & 0x1F).max(1);
    let secs = i64::from(time >> 11) * 3600 + i64::from((time >> 5) & 0x3F) * 60 + i64::from(time & 0x1F) * 2;
    days_from_civil(y, m, d) * 86_400 + secs
}

/// A 32-byte short entry. Creation and access times equal the modification
/// time: the inputs carry only one time, and this keeps output deterministic.
pub fn short_entry(name: &[u8; 11], attr: u8, nt_flags: u8, cluster: u32, size: u32, t: DosTime) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(name);
    e[11] = attr;
    e[12] = nt_flags;
    e[13] = t.tenths;
    e[14..16].copy_from_slice(&t.time.to_le_bytes());
    e[16..18].copy_from_slice(&t.date.to_le_bytes());
    e[18..20].copy_from_slice(&t.date.to_le_bytes());
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[22..24].copy_from_slice(&t.time.to_le_bytes());
    e[24..26].copy_from_slice(&t.date.to_le_bytes());
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

#[cfg(test)]
mod unit {
    use super::*;

    fn s(n: &[u8; 11]) -> String {
        String::from_utf8_lossy(n).into_owned()
    }

    #[test]
    fn short_names() {
        let d = direct_short_name("README.TXT").unwrap();
        assert_eq!(
            (s(&d.name).as_str(), d.nt_flags, d.needs_lfn),
            ("README  TXT", 0, false)
        );
        let d = direct_short_name("config.txt").unwrap();
        assert_eq!((d.nt_flags, d.needs_lfn), (NT_LOWER_BASE | NT_LOWER_EXT, false));
        let d = direct_short_name("kernel8.IMG").unwrap();
        assert_eq!((d.nt_flags, d.needs_lfn), (NT_LOWER_BASE, false));
        assert!(direct_short_name("Readme.txt").unwrap().needs_lfn);
        for bad in [
            "toolongname.txt",
            "a.b.c",
            ".bashrc",
            "a b.txt",
            "x.html",
            "café.txt",
            "a+b",
        ] {
            assert!(direct_short_name(bad).is_none(), "{bad}");
        }
        let got = assign_short_names(&[
            "long file name.txt",
            "LONGFI~1.TXT",
            "Long File Other.txt",
            ".bashrc",
            "café-ünïcode.txt",
        ]);
        let got: Vec<String> = got.iter().map(|g| s(&g.name)).collect();
        assert_eq!(
            got,
            [
                "LONGFI~2TXT",
                "LONGFI~1TXT",
                "LONGFI~3TXT",
                "BASHRC~1   ",
                "CAF_-_~1TXT"
            ]
        );
        let many: Vec<String> = (0..120).map(|i| format!("same prefix {i}.dat")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let got = assign_short_names(&refs);
        assert_eq!(s(&got[9].name), "SAMEP~10DAT");
        assert_eq!(s(&got[99].name), "SAME~100DAT");
        let set: HashSet<_> = got.iter().map(|g| g.name).collect();
        assert_eq!(set.len(), 120);
    }

    #[test]
    fn lfn_layout() {
        let short = *b"LONGFI~1TXT";
        let e = lfn_entries("long file name.txt", &short);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0][0], 0x42);
        assert_eq!(e[1][0], 0x01);
        assert!(e.iter().all(|x| x[11] == ATTR_LFN && x[13] == lfn_checksum(&short)));
        // 18 chars: entry 2 holds 5 chars, then 0x0000, then 0xFFFF padding.
        assert_eq!(&e[0][3..5], &[b'.', 0]);
        assert_eq!(&e[0][LFN_OFFSETS[5]..LFN_OFFSETS[5] + 2], &[0, 0]);
        assert_eq!(&e[0][LFN_OFFSETS[6]..LFN_OFFSETS[6] + 2], &[0xFF, 0xFF]);
        // Exactly 13 units: no terminator.
        let e = lfn_entries("abcdefghijklm", &short);
        assert_eq!(e.len(), 1);
        assert_eq!(&e[0][30..32], &[b'm', 0]);
    }

    #[test]
    fn times() {
        let t = dos_time(946_684_800); // 2000-01-01 00:00:00
        assert_eq!((t.date, t.time), ((20 << 9) | (1 << 5) | 1, 0));
        let t = dos_time(1_700_000_001); // 2023-11-14 22:13:21
        assert_eq!(t.date, (43 << 9) | (11 << 5) | 14);
        assert_eq!(t.time, (22 << 11) | (13 << 5) | 10);
        assert_eq!(t.tenths, 100);
        assert_eq!(unix_time(t.date, t.time), 1_700_000_000);
        assert_eq!(dos_time(0), dos_time(315_532_800));
        assert_eq!(dos_time(i64::MAX / 2).date, (127 << 9) | (12 << 5) | 31);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn validation_and_fold() {
        assert!(validate_name("a:b").is_err());
        assert!(validate_name("trailing.").is_err());
        assert!(validate_name(&"x".repeat(256)).is_err());
        assert!(validate_name("日本語のファイル.txt").is_ok());
        assert_eq!(fold("Café"), fold("CAFÉ"));
        assert_ne!(fold("straße"), fold("STRASSE"));
    }
}
