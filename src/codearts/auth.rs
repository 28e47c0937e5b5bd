//! How API calls prove who we are. The seam between the client and the credential methods:
//! the client builds a request, [`Auth::authorize`] adds what the method needs, and on a 401
//! [`Auth::on_unauthorized`] says whether one retry with fresh credentials makes sense.

use crate::secret::Secret;

/// The configured authentication method.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A static `X-Auth-Token` (an IAM token obtained elsewhere; it lives 24 hours).
    Token(Secret),
}

impl Auth {
    /// Adds the credentials to a request that is about to be sent.
    pub async fn authorize(&self, request: &mut reqwest::Request) -> Result<(), AuthError> {
        match self {
            Auth::Token(token) => {
                let value = reqwest::header::HeaderValue::from_str(token.expose())
                    .map_err(|_| AuthError::Config("the token contains characters not allowed in an HTTP header".to_owned()))?;
                let mut value = value;
                value.set_sensitive(true);
                request.headers_mut().insert("X-Auth-Token", value);
                Ok(())
            }
        }
    }

    /// Called after the API answered 401. Returns `true` when credentials were renewed and the
    /// call is worth one retry; a static token cannot be renewed.
    pub async fn on_unauthorized(&self) -> bool {
        match self {
            Auth::Token(_) => false,
        }
    }
}

/// Why credentials could not be attached to a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("authentication is misconfigured: {0}")]
    Config(String),
    #[error("could not obtain credentials: {0}")]
    Unavailable(String),
}
