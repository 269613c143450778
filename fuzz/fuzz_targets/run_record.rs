//! A run record as `blast report`, `blast merge` and the HTML page read it: untrusted input
//! that gets an error, never a panic.
#![no_main]

use blast_report::merge::Shards;
use blast_report::RunRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(record) = RunRecord::from_json(text) else {
        return;
    };
    let _ = blast_report::html::render(&record);
    let _ = blast_p43::results::render(std::slice::from_ref(&record), "charts");
    let parts = vec![("a".to_string(), record.clone()), ("b".to_string(), record)];
    if let Ok(shards) = Shards::new(parts) {
        let _ = shards.replay(&mut |_, _| {});
    }
});
