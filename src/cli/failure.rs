//! What a failed command tells the user, and the exit codes (also in the README): 0 success;
//! 1 a runtime failure (database, I/O); 2 bad usage or configuration; 3 CodeArts could not be
//! reached or refused our credentials; 4 the job does not exist or is not visible to our
//! credentials (`check`).

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_CONFIG: u8 = 2;
pub const EXIT_SOURCE: u8 = 3;
pub const EXIT_JOB: u8 = 4;

/// A command's failure: the exit code and what to tell the user.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn runtime(e: &anyhow::Error) -> Self {
        Self::new(EXIT_RUNTIME, format!("{e:#}"))
    }
}
