//! The ShowJobInfo parser on arbitrary bytes: never panics, and whatever it accepts survives
//! a round trip through the stored form.
#![no_main]

use codearts_bot::codearts::model::{JobInfo, parse_job_info};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(info) = parse_job_info(body) {
        let stored = serde_json::to_string(&info).expect("a parsed JobInfo serialises");
        let back: JobInfo = serde_json::from_str(&stored).expect("the stored form parses");
        assert_eq!(back, info);
    }
});
