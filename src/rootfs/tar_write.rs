//! Writes root-file-system entries as a POSIX pax tar archive, the form `mke2fs -d`
//! (via libarchive) reads: long and non-ASCII names, large ids and xattrs
//! (`SCHILY.xattr.*`) go into pax records, file data is copied from its source range.

use super::entry::{Entry, EntryKind};
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

const BLOCK: usize = 512;

/// A streaming pax tar writer.
pub struct TarWriter<W: Write> {
    out: W,
}

/// Where a regular file's bytes come from.
pub trait DataSource {
    fn copy_to(&mut self, entry: &Entry, out: &mut dyn Write) -> io::Result<u64>;
}

/// Reads regular files' bytes by offset out of a tree's data files (the archive,
/// rendered overlays), so a [`super::RootTree`] is written out again without unpacking it.
pub struct SourceFiles<'a> {
    paths: &'a [PathBuf],
    open: HashMap<u32, std::fs::File>,
}

impl<'a> SourceFiles<'a> {
    /// `paths` are the tree's [`super::RootTree::sources`].
    pub fn new(paths: &'a [PathBuf]) -> Self {
        SourceFiles {
            paths,
            open: HashMap::new(),
        }
    }
}

impl DataSource for SourceFiles<'_> {
    fn copy_to(&mut self, entry: &Entry, out: &mut dyn Write) -> io::Result<u64> {
        let EntryKind::File {
            size,
            data_offset,
            source,
        } = entry.kind
        else {
            return Ok(0);
        };
        let file = match self.open.entry(source) {
            std::collections::hash_map::Entry::Occupied(f) => f.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let path = self
                    .paths
                    .get(source as usize)
                    .ok_or_else(|| io::Error::other(format!("no data source {source}")))?;
                v.insert(fs_err::File::open(path)?.into_parts().0)
            }
        };
        file.seek(SeekFrom::Start(data_offset))?;
        io::copy(&mut file.take(size), out)
    }
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Appends one entry; `path` is written as given (the caller rebases it).
    pub fn append(&mut self, entry: &Entry, data: &mut dyn DataSource) -> io::Result<()> {
        let name = if entry.is_dir() && !entry.path.is_empty() {
            format!("./{}/", entry.path)
        } else if entry.path.is_empty() {
            "./".to_string()
        } else {
            format!("./{}", entry.path)
        };
        let (typeflag, link, size) = match &entry.kind {
            EntryKind::Dir => (b'5', None, 0),
            EntryKind::File { size, .. } => (b'0', None, *size),
            EntryKind::Symlink { target } => (b'2', Some(target.clone()), 0),
            EntryKind::HardLink { target } => (b'1', Some(format!("./{target}")), 0),
            EntryKind::CharDevice { .. } => (b'3', None, 0),
            EntryKind::BlockDevice { .. } => (b'4', None, 0),
            EntryKind::Fifo => (b'6', None, 0),
        };
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        if name.len() > 100 || !name.is_ascii() {
            records.push(("path".into(), name.clone().into_bytes()));
        }
        if let Some(l) = &link
            && (l.len() > 100 || !l.is_ascii())
        {
            records.push(("linkpath".into(), l.clone().into_bytes()));
        }
        if entry.uid > 0o7777777 {
            records.push(("uid".into(), entry.uid.to_string().into_bytes()));
        }
        if entry.gid > 0o7777777 {
            records.push(("gid".into(), entry.gid.to_string().into_bytes()));
        }
        if size > 0o77777777777 {
            records.push(("size".into(), size.to_string().into_bytes()));
        }
        for (k, v) in &entry.xattrs {
            records.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
        if !records.is_empty() {
            let body = pax_body(&records);
            let mut h = header(
                b"./PaxHeaders/entry",
                b'x',
                body.len() as u64,
                0o644,
                0,
                0,
                entry.mtime.max(0) as u64,
                None,
                (0, 0),
            );
            checksum(&mut h);
            self.out.write_all(&h)?;
            self.out.write_all(&body)?;
            pad(&mut self.out, body.len() as u64)?;
        }
        let dev = match entry.kind {
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => (major, minor),
            _ => (0, 0),
        };
        let mut h = header(
            name.as_bytes(),
            typeflag,
            size,
            entry.mode,
            entry.uid.min(0o7777777),
            entry.gid.min(0o7777777),
            entry.mtime.max(0) as u64,
            link.as_deref().map(str::as_bytes),
            dev,
        );
        checksum(&mut h);
        self.out.write_all(&h)?;
        if let EntryKind::File { .. } = entry.kind {
            let n = data.copy_to(entry, &mut self.out)?;
            if n != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{}: expected {size} bytes, got {n}", entry.path),
                ));
            }
            pad(&mut self.out, size)?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn pad(out: &mut dyn Write, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        out.write_all(&vec![0u8; BLOCK - rem])?;
    }
    Ok(())
}

/// Encodes pax records: each is "<len> <key>=<value>\n" where len counts itself.
fn pax_body(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len = len.to_string().len() + rest;
        }
        body.extend_from_slice(len.to_string().as_bytes());
        body.push(b' ');
        body.extend_from_slice(k.as_bytes());
        body.push(b'=');
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    body
}

fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    let bytes = s.as_bytes();
    let start = bytes.len().saturating_sub(width);
    field[..width].copy_from_slice(&bytes[start..]);
    field[width] = 0;
}

#[allow(clippy::too_many_arguments)]
fn header(
    name: &[u8],
    typeflag: u8,
    size: u64,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<&[u8]>,
    dev: (u32, u32),
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], uid);
    octal(&mut h[116..124], gid);
    octal(&mut h[124..136], size.min(0o77777777777));
    octal(&mut h[136..148], mtime.min(0o77777777777));
    h[156] = typeflag;
    if let Some(l) = link {
        let n = l.len().min(100);
        h[157..157 + n].copy_from_slice(&l[..n]);
    }
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], dev.0 as u64);
    octal(&mut h[337..345], dev.1 as u64);
    h
}

fn checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let body = pax_body(&[("path".into(), b"a".to_vec())]);
        assert_eq!(body, b"9 path=a\n");
        let long = "x".repeat(95);
        let body = pax_body(&[("path".into(), long.clone().into_bytes())]);
        let text = String::from_utf8(body).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), text.len());
    }
}
