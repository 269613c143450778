//! URLs and the values of blast's flags: targets, durations, stages, rates, criteria, and the
//! redaction of a command line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = blast_engine::Target::parse(text);
    let _ = blast_scenarios::parse_duration(text);
    let _ = blast_scenarios::parse_stages(text);
    let _ = blast_scenarios::parse_rate(text);
    let _ = blast_scenarios::Criterion::parse(text);
    let words: Vec<&str> = text.split(' ').collect();
    let _ = blast_engine::redact::arguments(&words);
    let _ = blast_engine::redact::text(text);
});
