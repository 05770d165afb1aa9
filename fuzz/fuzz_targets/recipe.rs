//! The recipe loader on any text: the limits, then the parser into the typed model. It
//! may refuse the text, never panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("fuzz.yaml");
    if imgbuild::recipe::limits::check_depth(path, text).is_ok() {
        let _ = imgbuild::recipe::load::parse_file(path, text);
    }
});
