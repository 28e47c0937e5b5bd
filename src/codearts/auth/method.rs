//! The configured authentication method, and the seam with the client: [`Auth::authorize`]
//! adds credentials to a request that is about to go out and returns a [`Ticket`]; once the
//! answer is in, [`Auth::settle`] learns whether the credentials worked and says whether the
//! call is worth one retry.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;

use super::aksk::AkSk;
use super::password::IamPassword;
use super::ticket::{Ticket, set_secret_header};
use crate::codearts::error::{ApiError, AuthError};
use crate::util::secret::Secret;

/// The configured authentication method.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A static `X-Auth-Token` (an IAM token obtained elsewhere; it lives 24 hours).
    Token(Secret),
    /// IAM password authentication: project-scoped tokens obtained and renewed here.
    Password(Arc<IamPassword>),
    /// Access key signing, as the official SDKs do.
    AkSk(Arc<AkSk>),
}

impl Auth {
    /// Adds the credentials to a request that is about to be sent.
    pub async fn authorize(&self, request: &mut reqwest::Request) -> Result<Ticket, AuthError> {
        match self {
            Auth::Token(token) => {
                set_secret_header(request, "x-auth-token", token.expose())?;
                Ok(Ticket::default())
            }
            Auth::Password(iam) => {
                let token = iam.token().await?;
                set_secret_header(request, "x-auth-token", token.token.expose())?;
                Ok(Ticket {
                    used_token: Some(token),
                    ..Ticket::default()
                })
            }
            Auth::AkSk(aksk) => aksk.sign(request, Utc::now()).await,
        }
    }

    /// Called with the answer's 401 error (`None` for any other answer). Returns `true` when
    /// credentials were renewed and the call is worth one retry.
    pub async fn settle(&self, ticket: Ticket, unauthorized: Option<&ApiError>) -> bool {
        match self {
            Auth::Token(_) => false,
            Auth::Password(iam) => match unauthorized {
                Some(e) => {
                    iam.renew_after_unauthorized(ticket.used_token.as_ref(), e)
                        .await
                }
                None => {
                    if let Some(used) = &ticket.used_token {
                        used.accepted.store(true, Ordering::Relaxed);
                    }
                    false
                }
            },
            Auth::AkSk(aksk) => {
                aksk.settle(unauthorized);
                drop(ticket);
                false
            }
        }
    }

    /// Starts the background renewal where the method needs one (password tokens).
    pub fn start_background(&self) {
        if let Auth::Password(iam) = self {
            iam.spawn_refresher();
        }
    }

    /// IAM token requests so far, `(succeeded, failed)`, for methods that make them.
    pub fn token_requests(&self) -> Option<(u64, u64)> {
        match self {
            Auth::Password(iam) => Some((iam.tokens_obtained(), iam.token_failures())),
            _ => None,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            Auth::Token(_) => "token",
            Auth::Password(_) => "password",
            Auth::AkSk(_) => "aksk",
        }
    }
}
