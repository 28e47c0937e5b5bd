//! The config loader on arbitrary text: every input is either a config or an error message
//! that never echoes a secret's value.
#![no_main]

use codearts_bot::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let env = |name: &str| (name == "SECRET").then(|| "s3cr3t-value".to_owned());
    match Config::from_toml(text, "fuzz.toml", &env) {
        Ok(config) => {
            let shown = format!("{config:?}");
            assert!(!shown.contains("s3cr3t-value"));
            let _ = config.effective_toml();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
