//! Compresses the raw image while hashing both sides in the same pass: xz with
//! liblzma's multithreaded encoder (multi-block, so it also decompresses in parallel),
//! zstd with its worker threads, or gzip.

use crate::digest::HashingWriter;
use crate::recipe::model::Compression;
use crate::report::Task;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::Path;

/// Digests of one compression pass.
#[derive(Debug, Clone)]
pub struct Compressed {
    pub raw_sha256: String,
    pub raw_size: u64,
    pub sha256: String,
    pub size: u64,
}

/// The file name suffix for a compression.
pub fn extension(c: Compression) -> Option<&'static str> {
    match c {
        Compression::Xz => Some("xz"),
        Compression::Zstd => Some("zst"),
        Compression::Gz => Some("gz"),
        Compression::None => None,
    }
}

/// Streams `raw` through the compressor into `dest`, hashing both.
pub fn compress(
    raw: &Path,
    dest: &Path,
    c: Compression,
    level: Option<u32>,
    threads: u32,
    task: &mut dyn Task,
) -> Result<Compressed> {
    let out = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, fs_err::File::create(dest)?));
    let ctx = || format!("compressing {} into {}", raw.display(), dest.display());
    let (raw_sha256, raw_size, out) = match c {
        Compression::Xz => {
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(threads)
                .preset(level.unwrap_or(6))
                .check(liblzma::stream::Check::Crc64)
                .encoder()
                .with_context(ctx)?;
            let mut enc = liblzma::write::XzEncoder::new_stream(out, stream);
            let (h, n) = pump(raw, &mut enc, task).with_context(ctx)?;
            (h, n, enc.finish().with_context(ctx)?)
        }
        Compression::Zstd => {
            let mut enc = zstd::Encoder::new(out, level.unwrap_or(10) as i32).with_context(ctx)?;
            enc.multithread(threads).with_context(ctx)?;
            let (h, n) = pump(raw, &mut enc, task).with_context(ctx)?;
            (h, n, enc.finish().with_context(ctx)?)
        }
        Compression::Gz => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(level.unwrap_or(6)));
            let (h, n) = pump(raw, &mut enc, task).with_context(ctx)?;
            (h, n, enc.finish().with_context(ctx)?)
        }
        Compression::None => anyhow::bail!("nothing to compress"),
    };
    let (mut file, sha256, size) = out.finish();
    file.flush().with_context(ctx)?;
    file.into_inner()
        .map_err(|e| e.into_error())
        .with_context(ctx)?
        .sync_all()?;
    Ok(Compressed {
        raw_sha256,
        raw_size,
        sha256,
        size,
    })
}

/// Copies `raw` into `w`, returning the raw side's sha256 and length.
fn pump(raw: &Path, w: &mut dyn Write, task: &mut dyn Task) -> Result<(String, u64)> {
    let mut f = fs_err::File::open(raw)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        w.write_all(&buf[..n])?;
        total += n as u64;
        task.advance(n as u64);
    }
    Ok((hex::encode(hasher.finalize()), total))
}
