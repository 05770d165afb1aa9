//! `imgbuild inspect`'s MBR/GPT and file-system reader on any disk image. It may refuse
//! the image, never panic; a partition it reports lies inside the image.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile::NamedTempFile::new_in("/dev/shm").expect("a temporary file");
    std::io::Write::write_all(&mut f, data).expect("writing it");
    if let Ok(i) = imgbuild::verify::inspect::inspect(f.path()) {
        for p in &i.partitions {
            assert!(p.start.checked_add(p.size).is_some_and(|end| end <= i.size));
        }
    }
});
