//! The container archive's outer tar: small entries written from memory, and one large
//! entry (the layer) whose header is filled in after its data, over a block reserved for
//! it, once its name and size are known. Writing the header last is what lets the layer
//! stream straight into the archive.

use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

const BLOCK: u64 = 512;

/// A tar written entry by entry: ustar headers owned by root, mode 0644/0755, the
/// build's time.
pub struct Archive {
    out: io::BufWriter<std::fs::File>,
    /// Bytes written so far (the buffered writer can't tell without flushing).
    pos: u64,
    mtime: u64,
}

impl Archive {
    pub fn create(path: &Path, epoch: i64) -> io::Result<Archive> {
        let file = fs_err::File::create(path)?.into_parts().0;
        Ok(Archive {
            out: io::BufWriter::with_capacity(1 << 20, file),
            pos: 0,
            mtime: epoch.max(0) as u64,
        })
    }

    fn header(&self, path: &str, kind: tar::EntryType, size: u64) -> io::Result<tar::Header> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)?;
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h.set_cksum();
        Ok(h)
    }

    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        let h = self.header(path, tar::EntryType::Directory, 0)?;
        self.put(h.as_bytes())
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let h = self.header(path, tar::EntryType::Regular, data.len() as u64)?;
        self.put(h.as_bytes())?;
        self.put(data)?;
        self.pad()
    }

    /// Writes a placeholder header block for a file whose name and size come later.
    pub fn reserve_header(&mut self) -> io::Result<u64> {
        let at = self.pos;
        self.put(&[0u8; BLOCK as usize])?;
        Ok(at)
    }

    /// Names the file written since [`Self::reserve_header`] returned `at`: pads it and
    /// fills in its header (its size is what was written since).
    pub fn complete_header(&mut self, at: u64, path: &str) -> io::Result<()> {
        let size = self.pos - at - BLOCK;
        self.pad()?;
        let h = self.header(path, tar::EntryType::Regular, size)?;
        self.out.seek(SeekFrom::Start(at))?;
        self.out.write_all(h.as_bytes())?;
        self.out.seek(SeekFrom::Start(self.pos))?;
        Ok(())
    }

    fn put(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.pos += data.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = self.pos % BLOCK;
        if rem != 0 {
            self.put(&vec![0u8; (BLOCK - rem) as usize])?;
        }
        Ok(())
    }

    /// The end-of-archive marker, then everything on disk.
    pub fn finish(mut self) -> io::Result<()> {
        self.put(&[0u8; 2 * BLOCK as usize])?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

/// The data of the entry after [`Archive::reserve_header`] streams through this.
impl Write for Archive {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_header_lands_over_its_reserved_block() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.tar");
        let mut a = Archive::create(&path, 5).unwrap();
        a.file("first", b"1").unwrap();
        let at = a.reserve_header().unwrap();
        a.write_all(b"hello").unwrap();
        a.complete_header(at, "late").unwrap();
        a.file("last", b"22").unwrap();
        a.finish().unwrap();
        let mut ar = tar::Archive::new(std::fs::File::open(&path).unwrap());
        let got: Vec<(String, u64, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.size().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [("first".into(), 1, 5), ("late".into(), 5, 5), ("last".into(), 2, 5)]
        );
    }
}
