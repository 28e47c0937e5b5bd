//! Identity in the simulator: IAM password tokens (`POST /v3/auth/tokens`) with a lifetime and
//! early revocation, and AK/SK signature verification with the same signer the bot uses, so
//! both of the bot's long-lived auth methods run for real over loopback.
//!
//! - Users come from `--iam-user DOMAIN/USER:PASSWORD`; tokens live `--token-ttl-secs`.
//! - A token that expired or was revoked (`DELETE /_sim/tokens`) answers the gateway's 401
//!   `APIGW.0301 ... token expires`.
//! - With `--ak`/`--sk`, a request whose `Authorization` is `SDK-HMAC-SHA256 ...` is verified:
//!   a wrong key or signature answers 401 `APIGW.0301 ... verify aksk signature fail`, an
//!   `X-Sdk-Date` more than 15 minutes away answers 401 `APIGW.0303`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use chrono::{NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::reply::{self, Documented};
use crate::codearts::signer::{self, SignableRequest};

/// The gateway rejects a signature whose date is further than this from its clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// An IAM user the simulator accepts: `DOMAIN/USER:PASSWORD`.
#[derive(Clone, PartialEq, Eq)]
pub struct IamUser {
    pub domain: String,
    pub user: String,
    pub password: String,
}

impl fmt::Debug for IamUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IamUser({}/{}:***)", self.domain, self.user)
    }
}

impl std::str::FromStr for IamUser {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let (who, password) = raw
            .split_once(':')
            .ok_or("expected DOMAIN/USER:PASSWORD (no ':' found)")?;
        let (domain, user) = who
            .split_once('/')
            .ok_or("expected DOMAIN/USER:PASSWORD (no '/' found)")?;
        if domain.is_empty() || user.is_empty() || password.is_empty() {
            return Err("expected DOMAIN/USER:PASSWORD with none of them empty".to_owned());
        }
        Ok(Self {
            domain: domain.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// The identity settings of a simulator.
#[derive(Clone, Default)]
pub(crate) struct IdentityConfig {
    pub(crate) users: Vec<IamUser>,
    pub(crate) token_ttl: Duration,
    pub(crate) aksk: Option<(String, String)>,
}

/// Issued tokens and the counters tests read.
pub(crate) struct Identity {
    config: IdentityConfig,
    issued: Mutex<HashMap<String, Instant>>,
    pub(crate) token_requests: AtomicU64,
    pub(crate) tokens_issued: AtomicU64,
    pub(crate) aksk_failures: AtomicU64,
}

/// What a call's credentials turned out to be.
pub(crate) enum Verdict {
    Accepted,
    Refused(Documented),
    /// Not an identity this module knows: the caller checks the static token.
    NotMine,
}

const SIGNATURE_FAIL: Documented = reply::gateway(
    StatusCode::UNAUTHORIZED,
    "APIGW.0301",
    "Incorrect IAM authentication information: verify aksk signature fail",
);

const DATE_SKEW: Documented = reply::gateway(
    StatusCode::UNAUTHORIZED,
    "APIGW.0303",
    "Incorrect app authentication information: the x-sdk-date is missing or more than 15 minutes away",
);

impl Identity {
    pub(crate) fn new(config: IdentityConfig) -> Self {
        Self {
            config,
            issued: Mutex::new(HashMap::new()),
            token_requests: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            aksk_failures: AtomicU64::new(0),
        }
    }

    /// Checks an issued token or an AK/SK signature.
    pub(crate) fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Verdict {
        if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok())
            && auth.starts_with(signer::ALGORITHM)
        {
            return self.verify_signature(method, uri, headers, body, auth);
        }
        let Some(token) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) else {
            return Verdict::NotMine;
        };
        let Ok(issued) = self.issued.lock() else {
            return Verdict::NotMine;
        };
        match issued.get(token) {
            Some(expires) if Instant::now() < *expires => Verdict::Accepted,
            Some(_) => Verdict::Refused(reply::TOKEN_EXPIRED),
            None => Verdict::NotMine,
        }
    }

    fn verify_signature(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        authorization: &str,
    ) -> Verdict {
        let verdict = self.check_signature(method, uri, headers, body, authorization);
        if let Verdict::Refused(_) = verdict {
            self.aksk_failures.fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }

    fn check_signature(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        authorization: &str,
    ) -> Verdict {
        let Some((ak, sk)) = &self.config.aksk else {
            return Verdict::Refused(SIGNATURE_FAIL);
        };
        let fields = parse_authorization(authorization);
        let (Some(access), Some(signed_headers), Some(_)) = (
            fields.get("Access"),
            fields.get("SignedHeaders"),
            fields.get("Signature"),
        ) else {
            return Verdict::Refused(SIGNATURE_FAIL);
        };
        let date = headers.get("x-sdk-date").and_then(|v| v.to_str().ok());
        let Some(date) = date.filter(|d| within_skew(d)) else {
            return Verdict::Refused(DATE_SKEW);
        };
        if access != ak || !signed_headers.split(';').any(|h| h == "x-sdk-date") {
            return Verdict::Refused(SIGNATURE_FAIL);
        }
        let mut signed: Vec<(String, String)> = Vec::new();
        for name in signed_headers.split(';') {
            let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else {
                return Verdict::Refused(SIGNATURE_FAIL);
            };
            signed.push((name.to_owned(), value.to_owned()));
        }
        let query: Vec<(String, String)> = uri
            .query()
            .map(|q| {
                q.split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (percent_decode(k), percent_decode(v))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let expected = signer::authorization(
            ak,
            sk,
            &SignableRequest {
                method: method.as_str(),
                path: &percent_decode(uri.path()),
                query: &query,
                headers: &signed,
                body,
            },
        );
        debug_assert!(expected.contains(date) || !expected.is_empty());
        if constant_time_eq(expected.as_bytes(), authorization.as_bytes()) {
            Verdict::Accepted
        } else {
            Verdict::Refused(SIGNATURE_FAIL)
        }
    }

    /// `POST /v3/auth/tokens`.
    pub(crate) fn issue(&self, body: &[u8]) -> (StatusCode, Option<String>, Value) {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        let Ok(request) = serde_json::from_slice::<TokenRequest>(body) else {
            return iam_error(StatusCode::BAD_REQUEST, "The request body is invalid.");
        };
        let password = &request.auth.identity.password.user;
        let Some(scope) = request.auth.scope.and_then(|s| s.project) else {
            return iam_error(
                StatusCode::BAD_REQUEST,
                "CodeArts needs a project-scoped token: scope.project is missing.",
            );
        };
        if !request
            .auth
            .identity
            .methods
            .iter()
            .any(|m| m == "password")
        {
            return iam_error(
                StatusCode::BAD_REQUEST,
                "Only the password method is simulated.",
            );
        }
        let known = self.config.users.iter().any(|u| {
            u.domain == password.domain.name
                && u.user == password.name
                && constant_time_eq(u.password.as_bytes(), password.password.as_bytes())
        });
        if !known {
            return iam_error(
                StatusCode::UNAUTHORIZED,
                "The username or password is wrong.",
            );
        }
        let token = format!("MIIsim{}", hex::encode(rand::random::<[u8; 24]>()));
        let ttl = self.config.token_ttl;
        if let Ok(mut issued) = self.issued.lock() {
            issued.insert(token.clone(), Instant::now() + ttl);
        }
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(ttl).unwrap_or_default();
        let format = "%Y-%m-%dT%H:%M:%S%.6fZ";
        let body = json!({"token": {
            "expires_at": expires.format(format).to_string(),
            "issued_at": now.format(format).to_string(),
            "methods": ["password"],
            "project": {"id": scope.id, "name": scope.name},
            "user": {"name": password.name, "domain": {"name": password.domain.name}},
        }});
        (StatusCode::CREATED, Some(token), body)
    }

    /// `DELETE /_sim/tokens`: every issued token stops working now.
    pub(crate) fn revoke_all(&self) -> usize {
        self.issued.lock().map_or(0, |mut issued| {
            let n = issued.len();
            for expiry in issued.values_mut() {
                *expiry = Instant::now();
            }
            n
        })
    }

    pub(crate) fn snapshot(&self) -> Value {
        json!({
            "token_requests": self.token_requests.load(Ordering::Relaxed),
            "tokens_issued": self.tokens_issued.load(Ordering::Relaxed),
            "aksk_failures": self.aksk_failures.load(Ordering::Relaxed),
        })
    }

    pub(crate) fn reset(&self) {
        self.token_requests.store(0, Ordering::Relaxed);
        self.tokens_issued.store(0, Ordering::Relaxed);
        self.aksk_failures.store(0, Ordering::Relaxed);
    }
}

fn iam_error(status: StatusCode, message: &str) -> (StatusCode, Option<String>, Value) {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        None,
        json!({"error": {"code": status.as_u16(), "message": message, "title": title}}),
    )
}

#[derive(Deserialize)]
struct TokenRequest {
    auth: AuthBody,
}

#[derive(Deserialize)]
struct AuthBody {
    identity: IdentityBody,
    scope: Option<ScopeBody>,
}

#[derive(Deserialize)]
struct IdentityBody {
    methods: Vec<String>,
    password: PasswordBody,
}

#[derive(Deserialize)]
struct PasswordBody {
    user: UserBody,
}

#[derive(Deserialize)]
struct UserBody {
    name: String,
    password: String,
    domain: NameBody,
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

#[derive(Deserialize)]
struct ScopeBody {
    project: Option<ProjectBody>,
}

#[derive(Deserialize)]
struct ProjectBody {
    id: Option<String>,
    name: Option<String>,
}

/// `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex` into its fields.
fn parse_authorization(raw: &str) -> HashMap<&str, &str> {
    raw.trim_start_matches(signer::ALGORITHM)
        .split(',')
        .filter_map(|part| part.trim().split_once('='))
        .collect()
}

fn within_skew(date: &str) -> bool {
    NaiveDateTime::parse_from_str(date, signer::DATE_FORMAT).is_ok_and(|d| {
        let skew = (Utc::now().naive_utc() - d).num_seconds().unsigned_abs();
        skew <= MAX_SKEW.as_secs()
    })
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = raw.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity::new(IdentityConfig {
            users: vec!["acme/bot:pw".parse().unwrap()],
            token_ttl: Duration::from_secs(60),
            aksk: Some(("AKIDEXAMPLE".to_owned(), "secretExample".to_owned())),
        })
    }

    fn token_body(password: &str) -> Vec<u8> {
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "bot", "password": password, "domain": {"name": "acme"}}}},
            "scope": {"project": {"name": "cn-north-4"}}}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn users_parse_from_the_flag_and_hide_their_password() {
        let user: IamUser = "acme/bot:s3cret".parse().unwrap();
        assert_eq!((user.domain.as_str(), user.user.as_str()), ("acme", "bot"));
        assert!(!format!("{user:?}").contains("s3cret"));
        assert!("acme-bot:pw".parse::<IamUser>().is_err());
    }

    #[test]
    fn tokens_are_issued_to_known_users_and_stop_working_when_revoked() {
        let id = identity();
        let (status, token, body) = id.issue(&token_body("pw"));
        assert_eq!(status, StatusCode::CREATED);
        assert!(body["token"]["expires_at"].as_str().unwrap().ends_with('Z'));
        let token = token.unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-auth-token", token.parse().unwrap());
        let uri: Uri = "/v1/job/x/info".parse().unwrap();
        assert!(matches!(
            id.verify(&Method::GET, &uri, &headers, b""),
            Verdict::Accepted
        ));
        assert_eq!(id.revoke_all(), 1);
        assert!(matches!(
            id.verify(&Method::GET, &uri, &headers, b""),
            Verdict::Refused(r) if r.message.contains("token expires")
        ));
        let (status, token, _) = id.issue(&token_body("wrong"));
        assert_eq!((status, token), (StatusCode::UNAUTHORIZED, None));
    }

    #[test]
    fn signatures_verify_with_the_sdk_algorithm_and_skew_is_refused() {
        let id = identity();
        let date = Utc::now().format(signer::DATE_FORMAT).to_string();
        let signed = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("host".to_owned(), "127.0.0.1:8080".to_owned()),
            ("x-sdk-date".to_owned(), date.clone()),
        ];
        let path = "/v1/job/abcdefABCDEF0123456789abcdef0123/info";
        let auth = signer::authorization(
            "AKIDEXAMPLE",
            "secretExample",
            &SignableRequest {
                method: "GET",
                path,
                query: &[],
                headers: &signed,
                body: b"",
            },
        );
        let mut headers = HeaderMap::new();
        for (k, v) in &signed {
            headers.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        headers.insert("authorization", auth.parse().unwrap());
        let uri: Uri = path.parse().unwrap();
        assert!(matches!(
            id.verify(&Method::GET, &uri, &headers, b""),
            Verdict::Accepted
        ));

        let tampered: Uri = "/v1/job/abcdefABCDEF0123456789abcdef0124/info"
            .parse()
            .unwrap();
        assert!(matches!(
            id.verify(&Method::GET, &tampered, &headers, b""),
            Verdict::Refused(r) if r.code == "APIGW.0301"
        ));
        headers.insert("x-sdk-date", "20200101T000000Z".parse().unwrap());
        assert!(matches!(
            id.verify(&Method::GET, &uri, &headers, b""),
            Verdict::Refused(r) if r.code == "APIGW.0303"
        ));
        assert_eq!(id.aksk_failures.load(Ordering::Relaxed), 2);
    }
}
