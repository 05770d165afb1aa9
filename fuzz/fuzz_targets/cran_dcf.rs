//! CRAN's PACKAGES (DCF) parser and its dependency lists on any text; what parses must
//! render and parse again to the same stanzas.
#![no_main]
use libfuzzer_sys::fuzz_target;
use imgbuild::fetch::cran::{closure, dcf};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(stanzas) = dcf::parse(text) {
        for s in &stanzas {
            let _ = closure::deps(s);
        }
        let again = dcf::parse(&dcf::render(&stanzas)).expect("a rendered PACKAGES file parses");
        assert_eq!(again.len(), stanzas.len());
    }
});
