//! A scenario file, parsed and compiled into the engine's script: an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(scenario) = blast_scenarios::parse("fuzz.toml", text) {
        let (target, _) = blast_engine::Target::parse("http://127.0.0.1:9/").unwrap();
        let _ = scenario.script_with_headers(&target, &[]);
    }
});
