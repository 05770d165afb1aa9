//! Compressed input by its magic bytes, and a reader that undoes it. A leaf: the root
//! file system unpacks a compressed `rootfs.tar` and `inspect` refuses a compressed
//! image with the same detection the output stage's names follow.

use crate::recipe::model::Compression;
use std::io::Read;
use std::path::Path;

/// The compression a file starts with, from its first six bytes (None: not compressed).
pub fn detect(magic: &[u8]) -> Option<Compression> {
    if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Compression::Xz)
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else if magic.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gz)
    } else {
        None
    }
}

/// A reader of `path`'s decompressed bytes, or None when it is not compressed.
pub fn decoder(path: &Path, c: Option<Compression>) -> std::io::Result<Option<Box<dyn Read>>> {
    let file = || fs_err::File::open(path);
    Ok(match c {
        Some(Compression::Gz) => Some(Box::new(flate2::read::MultiGzDecoder::new(file()?))),
        Some(Compression::Xz) => Some(Box::new(liblzma::read::XzDecoder::new_multi_decoder(file()?))),
        Some(Compression::Zstd) => Some(Box::new(zstd::Decoder::new(file()?)?)),
        Some(Compression::None) | None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_detected_and_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"tar bytes").unwrap();
        fs_err::write(&p, gz.finish().unwrap()).unwrap();
        let head = fs_err::read(&p).unwrap();
        assert_eq!(detect(&head), Some(Compression::Gz));
        let mut out = String::new();
        decoder(&p, detect(&head))
            .unwrap()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "tar bytes");
        assert_eq!(detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Some(Compression::Xz));
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Some(Compression::Zstd));
        assert_eq!(detect(b"ustar\0"), None);
        assert!(decoder(&p, None).unwrap().is_none());
    }
}
