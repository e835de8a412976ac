#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../admin_checks.rs"]
mod admin_checks;

fuzz_target!(|data: &[u8]| admin_checks::check_admin_request(data));
