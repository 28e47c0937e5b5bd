//! Signing in to the board: the middleware in front of the pages and the API (the rule
//! itself is [`super::access`]), and the login form, which sets an HttpOnly, SameSite=Strict
//! session cookie, and its sign-out.

use std::time::Duration;

use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::access::COOKIE_MAX_AGE_SECS;
use super::pages::login_page;
use super::state::Board;

/// A wrong token at the login form waits this long: guessing is slow, and a typo is not.
const WRONG_TOKEN_DELAY: Duration = Duration::from_millis(400);

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

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_target(Some("/jobs/x?y=1")), "/jobs/x?y=1");
        for bad in ["//evil.example/", "https://evil.example/", "/\\evil", ""] {
            assert_eq!(local_target(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_target(None), "/");
    }
}
