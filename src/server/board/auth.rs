//! Who may read the board: with `[http] board_token` set (required when the listener is not
//! loopback, see `src/config/http.rs`), every page and `/api/v1` answer asks for it, either as
//! `Authorization: Bearer <token>` (scripts) or through the login form, which sets an
//! HttpOnly, SameSite=Strict cookie (browsers).
//!
//! The cookie does not hold the token: it holds an HMAC of a fixed label keyed with the token,
//! so a stolen cookie does not reveal the token, and changing the token signs everyone out.
//! Every comparison runs in constant time (both sides hashed first, then compared without an
//! early exit). The token is held as a [`Secret`] and never logged.

use std::time::Duration;

use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Board;
use super::pages::login_page;
use crate::config::HttpConfig;
use crate::util::secret::Secret;

/// The session cookie's name.
pub const COOKIE: &str = "codearts_board";
/// How long a browser stays signed in.
const COOKIE_MAX_AGE_SECS: u64 = 7 * 86_400;
/// A wrong token at the login form waits this long: guessing is slow, and a typo is not.
const WRONG_TOKEN_DELAY: Duration = Duration::from_millis(400);
/// What the cookie's HMAC signs.
const SESSION_LABEL: &[u8] = b"codearts-bot board session v1";

/// The board's access rule, built once from `[http]`.
pub struct Access {
    token: Option<Secret>,
    /// The cookie value a signed-in browser holds.
    session: Option<Secret>,
    /// Mark the cookie `Secure` (the board is reached over https).
    secure: bool,
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

    fn token_matches(&self, presented: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| same(presented.trim().as_bytes(), t.expose().as_bytes()))
    }

    fn set_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
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

/// The middleware in front of the pages and the API: lets a request with the token through;
/// sends a browser to the login form, and answers an API client 401.
pub async fn guard(State(board): State<Board>, request: Request, next: Next) -> Response {
    if board.access.allows(request.headers()) {
        return next.run(request).await;
    }
    let uri = request.uri();
    if uri.path().starts_with("/api/") {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({
                "error": "the board needs its token: send Authorization: Bearer <board_token>"
            })),
        )
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"codearts-bot board\""),
        );
        return response;
    }
    let wanted = uri.path_and_query().map_or("/", |p| p.as_str());
    let target = serde_urlencoded::to_string([("next", wanted)]).unwrap_or_default();
    Redirect::to(&format!("/login?{target}")).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginQuery {
    next: Option<String>,
}

/// The login form fields. Not `Debug`: it holds the token as typed.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// Where to go after signing in: a path on this site only (never `//host` or a URL, so the
/// form cannot be used to send someone elsewhere).
fn local_target(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// `GET /login`.
pub async fn login_form(State(board): State<Board>, Query(q): Query<LoginQuery>) -> Response {
    if !board.access.required() {
        return Redirect::to("/").into_response();
    }
    login_page(StatusCode::OK, &local_target(q.next.as_deref()), None)
}

/// `POST /login`: the right token sets the session cookie and goes on to `next`.
pub async fn login(State(board): State<Board>, Form(form): Form<LoginForm>) -> Response {
    let target = local_target(form.next.as_deref());
    if !board.access.token_matches(&form.token) {
        tokio::time::sleep(WRONG_TOKEN_DELAY).await;
        return login_page(
            StatusCode::UNAUTHORIZED,
            &target,
            Some("That is not the board's token."),
        );
    }
    let Some(session) = &board.access.session else {
        return Redirect::to("/").into_response();
    };
    let mut response = Redirect::to(&target).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        board
            .access
            .set_cookie(session.expose(), COOKIE_MAX_AGE_SECS),
    );
    response
}

/// `POST /logout`: forgets the session cookie.
pub async fn logout(State(board): State<Board>) -> Response {
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, board.access.set_cookie("", 0));
    response
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

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_target(Some("/jobs/x?y=1")), "/jobs/x?y=1");
        for bad in ["//evil.example/", "https://evil.example/", "/\\evil", ""] {
            assert_eq!(local_target(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_target(None), "/");
    }
}
