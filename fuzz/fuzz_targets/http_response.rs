//! A server's answer to a GET, in two writes split anywhere (the first byte says where): the
//! raw client ends the exchange with a status or a failure class, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b));
    blast_engine::fuzzing::http_response(data.get(1..).unwrap_or_default(), split);
});
