//! The signature checks a receiver (and the simulator) runs on untrusted input: the webhook
//! HMAC verifier and the AK/SK canonicaliser never panic, and a signature computed over the
//! input verifies.
#![no_main]

use codearts_bot::codearts::signer::{self, SignableRequest};
use codearts_bot::notify::webhook;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.len() / 2;
    let (key, body) = data.split_at(split);
    let header = String::from_utf8_lossy(key);
    let _ = webhook::verify(key, body, &header);
    let good = webhook::signature(key, body);
    assert!(webhook::verify(key, body, &good));

    let text = String::from_utf8_lossy(data);
    let query = vec![(text.to_string(), text.to_string())];
    let headers = vec![("X-Sdk-Date".to_owned(), "20261126T000000Z".to_owned())];
    let request = SignableRequest {
        method: "GET",
        path: &text,
        query: &query,
        headers: &headers,
        body,
    };
    let _ = signer::authorization("AK", "SK", &request);
});
