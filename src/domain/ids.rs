//! Job ids as people type them in chat or on the command line.

use crate::codearts::JobId;
use crate::util::text::{printable, truncate_chars};

/// The job id in `raw` (surrounding blanks ignored), or a sentence saying what a job id is.
pub fn parse_job_id(raw: &str) -> Result<JobId, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(
            "Give a job id: the 32 letters and digits at the end of the job's URL.".to_owned(),
        );
    }
    JobId::parse(raw).map_err(|_| {
        format!(
            "`{}` is not a job id: a job id is 32 letters and digits (copy it from the job's URL).",
            truncate_chars(&printable(raw), 64)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_id_is_named_and_explained() {
        let e = parse_job_id("12345").unwrap_err();
        assert!(e.contains("`12345` is not a job id"), "{e}");
        assert!(parse_job_id(" ").unwrap_err().contains("Give a job id"));
    }
}
