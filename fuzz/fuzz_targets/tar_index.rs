//! The root file system archive index on any bytes (written to a file: the index reads
//! archives from disk). It may refuse the archive, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile::NamedTempFile::new_in("/dev/shm").expect("a temporary file");
    std::io::Write::write_all(&mut f, data).expect("writing it");
    let _ = imgbuild::rootfs::tar_read::index(f.path());
});
