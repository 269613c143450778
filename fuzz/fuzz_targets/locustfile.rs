//! A locustfile's text, translated (tick() evaluated included): a translation or diagnostics
//! with places, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let options = blast_locust::Options { lenient: text.len() % 2 == 0 };
    let _ = blast_locust::translate_with("fuzz.py", text, options);
});
