//! The web UI's `POST /swarm` body, decoded and checked by the CLI's own form module.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../cli/src/web/form.rs"]
#[allow(dead_code)]
mod form;

fuzz_target!(|body: &[u8]| {
    if let Ok(swarm) = form::Swarm::parse(body) {
        let _ = swarm.peak_users();
    }
});
