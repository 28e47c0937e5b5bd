//! The board's token rule: whether a request carries `[http] board_token`, either as
//! `Authorization: Bearer <token>` or as the session cookie the login form sets
//! (`super::auth`).
//!
//! The cookie does not hold the token: it holds an HMAC of a fixed label keyed with the token,
//! so a stolen cookie does not reveal the token, and changing the token signs everyone out.
//! Every comparison runs in constant time (both sides hashed first, then compared without an
//! early exit). The token is held as a [`Secret`] and never logged.

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::HttpConfig;
use crate::util::secret::Secret;

/// The session cookie's name.
pub const COOKIE: &str = "codearts_board";
/// How long a browser stays signed in.
pub const COOKIE_MAX_AGE_SECS: u64 = 7 * 86_400;
/// What the cookie's HMAC signs.
const SESSION_LABEL: &[u8] = b"codearts-bot board session v1";

/// The board's access rule, built once from `[http]`.
pub struct Access {
    token: Option<Secret>,
    /// The cookie value a signed-in browser holds.
    pub session: Option<Secret>,
    /// Mark the cookie `Secure` (the board is reached over https).
    pub secure: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("required", &self.required())
            .field("secure", &self.secure)
            .finish()
    }
}

impl Access {
    pub fn from_config(http: &HttpConfig) -> Self {
        let token = http.board_token.clone().filter(|t| !t.is_empty());
        let session = token.as_ref().map(|t| {
            // HMAC takes a key of any length: this cannot fail.
            let mut mac = Hmac::<Sha256>::new_from_slice(t.expose().as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
            mac.update(SESSION_LABEL);
            Secret::new(hex::encode(mac.finalize().into_bytes()))
        });
        let secure = http
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        Self {
            token,
            session,
            secure,
        }
    }

    /// Whether a token is asked for at all.
    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether the request carries the token (header) or a session (cookie).
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let (Some(token), Some(session)) = (&self.token, &self.session) else {
            return true;
        };
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.strip_prefix("Bearer ").map(str::trim))
            .any(|presented| same(presented.as_bytes(), token.expose().as_bytes()));
        bearer
            || cookie(headers, COOKIE)
                .is_some_and(|v| same(v.as_bytes(), session.expose().as_bytes()))
    }

    pub fn token_matches(&self, presented: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| same(presented.trim().as_bytes(), t.expose().as_bytes()))
    }

    pub fn set_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("codearts_board=; Max-Age=0"))
    }
}

/// Equal in constant time: both sides are hashed first (so their lengths do not show) and
/// the digests compared without an early exit.
fn same(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The value of cookie `name` among the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(token: Option<&str>) -> Access {
        let http = HttpConfig {
            board: true,
            board_token: token.map(Secret::new),
            ..HttpConfig::default()
        };
        Access::from_config(&http)
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_or_session_cookie_and_nothing_else() {
        let a = access(Some("0123456789abcdef-token"));
        assert!(!a.allows(&HeaderMap::new()));
        assert!(a.allows(&headers(&[(
            header::AUTHORIZATION,
            "Bearer 0123456789abcdef-token"
        )])));
        assert!(!a.allows(&headers(&[(
            header::AUTHORIZATION,
            "Bearer 0123456789abcdef-tokeX"
        )])));
        let session = a.session.as_ref().unwrap().expose().to_owned();
        assert!(!session.contains("token"));
        assert!(a.allows(&headers(&[(
            header::COOKIE,
            &format!("a=b; {COOKIE}={session}")
        )])));
        // The token itself is not a session.
        assert!(!a.allows(&headers(&[(
            header::COOKIE,
            &format!("{COOKIE}=0123456789abcdef-token")
        )])));
        assert!(access(None).allows(&HeaderMap::new()));
        assert!(!format!("{a:?}").contains("0123456789abcdef"));
    }
}
