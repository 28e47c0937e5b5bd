//! URL checks shared by every section that takes an endpoint or a webhook: the problem is
//! reported without the URL, because a webhook URL is its own credential.

use std::fmt;

#[derive(Debug)]
pub(crate) enum UrlProblem {
    Invalid(String),
    Scheme(String),
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlProblem::Invalid(e) => write!(f, "not a valid URL ({e})"),
            UrlProblem::Scheme(s) => write!(f, "scheme {s:?} is not http or https"),
        }
    }
}

impl UrlProblem {
    pub(crate) fn redacted(&self) -> String {
        self.to_string()
    }
}

pub(crate) fn validate_url(raw: &str) -> Result<(), UrlProblem> {
    let url = reqwest::Url::parse(raw).map_err(|e| UrlProblem::Invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(UrlProblem::Scheme(other.to_owned())),
    }
}
