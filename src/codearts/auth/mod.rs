//! How API calls prove who we are: a static IAM token, an IAM user's password (tokens obtained
//! and renewed by us), or an access key pair signing every request (SDK-HMAC-SHA256).
//!
//! The seam with the client: [`Auth::authorize`] adds credentials to a request that is about
//! to go out and returns a [`Ticket`]; once the answer is in, [`Auth::settle`] learns whether
//! the credentials worked and says whether the call is worth one retry.

//!
//! - [`method`]: the [`Auth`] enum and its seam with the client;
//! - [`password`]: IAM password tokens; [`aksk`]: access key signing;
//! - [`ticket`]: what the methods share.

pub mod aksk;
pub mod method;
pub mod password;
pub mod ticket;

pub use aksk::{AkSk, AkSkSettings};
pub use method::Auth;
pub use password::{IamPassword, PasswordSettings, ProjectScope};
pub use ticket::Ticket;
