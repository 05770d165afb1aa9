//! SHA-256 as every stage writes it: lowercase hex of bytes, of a file, or of what passes
//! through a writer. A leaf: downloads, the root file system, images and outputs all
//! hash the same way without importing one another.

use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::path::Path;

/// The sha256 of `bytes`, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The sha256 of a file and its length (the error names the file: fs-err).
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let n = io::copy(&mut f, &mut hasher)
        .map_err(|e| io::Error::new(e.kind(), format!("hashing {}: {e}", path.display())))?;
    Ok((hex::encode(hasher.finalize()), n))
}

/// A writer that hashes and counts what passes through.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_file_and_writer_agree() {
        let data = b"imgbuild";
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs_err::write(&p, data).unwrap();
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(data).unwrap();
        let (out, sum, n) = w.finish();
        assert_eq!(out, data);
        assert_eq!(n, 8);
        assert_eq!(sha256_file(&p).unwrap(), (sum.clone(), 8));
        assert_eq!(sha256_hex(data), sum);
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
