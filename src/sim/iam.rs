//! Identity in the simulator: IAM password tokens (`POST /v3/auth/tokens`) with a lifetime and
//! early revocation, and AK/SK signature verification with the same signer the bot uses, so
//! both of the bot's long-lived auth methods run for real over loopback.
//!
//! - Users come from `--iam-user DOMAIN/USER:PASSWORD`; tokens live `--token-ttl-secs`.
//! - A token that expired or was revoked (`DELETE /_sim/tokens`) answers the gateway's 401
//!   `APIGW.0301 ... token expires`.
//! - With `--ak`/`--sk`, a request whose `Authorization` is `SDK-HMAC-SHA256 ...` is verified:
//!   a wrong signature answers 401 `APIGW.0301 ... verify aksk signature fail`, an unknown
//!   access key `APIGW.0301 ... Get secretKey failed`, an `X-Sdk-Date` that is missing or more
//!   than 15 minutes away 401 `APIGW.0303`; more than five consecutive failures lock the key
//!   for five minutes, as the real gateway does.
//!
//! The wordings are the ones Huawei Cloud's API signing FAQ documents; the reference is
//! docs/simulator.md ("Identity").

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::reply::{self, Documented, Refusal};
use crate::codearts::signer::{self, SignableRequest};

/// The gateway rejects a signature whose date is further than this from its clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// More consecutive signature failures than this lock the access key...
const LOCK_AFTER_FAILURES: u32 = 5;
/// ...for this long (even correctly signed calls are refused meanwhile).
const LOCK_FOR: Duration = Duration::from_secs(5 * 60);
/// Expired tokens are forgotten once more than this many are stored.
const PRUNE_ABOVE: usize = 1024;
/// IAM's time format: RFC 3339 in UTC with microseconds, e.g. `2020-01-08T03:50:07.574000Z`.
const IAM_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// `APIGW.0301` for a signature that does not match.
const SIGNATURE_FAIL: Documented = reply::gateway(
    StatusCode::UNAUTHORIZED,
    "APIGW.0301",
    "Incorrect IAM authentication information: verify aksk signature fail",
);
/// `APIGW.0301` while the key is locked after too many failures.
const KEY_LOCKED: Documented = reply::gateway(
    StatusCode::UNAUTHORIZED,
    "APIGW.0301",
    "Incorrect IAM authentication information: AK access failed to reach the limit,forbidden.",
);

/// An IAM user the simulator accepts: `DOMAIN/USER:PASSWORD` (split at the first `/` and the
/// first `:` after it, so the password may contain both).
#[derive(Clone, PartialEq, Eq)]
pub struct IamUser {
    /// The account (domain) name.
    pub domain: String,
    /// The IAM user name.
    pub user: String,
    /// The user's password.
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
        let (domain, rest) = raw
            .split_once('/')
            .ok_or("expected DOMAIN/USER:PASSWORD (no '/' found)")?;
        let (user, password) = rest
            .split_once(':')
            .ok_or("expected DOMAIN/USER:PASSWORD (no ':' after the user)")?;
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

/// One issued token.
struct Issued {
    /// For the checks (monotonic).
    expires: Instant,
    /// For the listing.
    expires_at: DateTime<Utc>,
    user: String,
    domain: String,
    project: String,
}

/// The configured access key and its lock state.
struct AccessKey {
    ak: String,
    sk: String,
    lock: Mutex<KeyLock>,
}

#[derive(Default)]
struct KeyLock {
    consecutive_failures: u32,
    locked_until: Option<Instant>,
}

impl KeyLock {
    fn locked(&mut self, now: Instant) -> bool {
        match self.locked_until {
            Some(until) if now < until => true,
            Some(_) => {
                self.locked_until = None;
                false
            }
            None => false,
        }
    }

    fn failed(&mut self, now: Instant) {
        self.consecutive_failures += 1;
        if self.consecutive_failures > LOCK_AFTER_FAILURES {
            self.consecutive_failures = 0;
            self.locked_until = Some(now + LOCK_FOR);
        }
    }
}

/// Issued tokens, the access key, and the counters tests read.
pub(crate) struct Identity {
    users: Vec<IamUser>,
    token_ttl: Duration,
    key: Option<AccessKey>,
    issued: Mutex<HashMap<String, Issued>>,
    token_requests: AtomicU64,
    tokens_issued: AtomicU64,
    token_refusals: AtomicU64,
    aksk_failures: AtomicU64,
}

/// What a call's credentials turned out to be.
#[derive(Debug)]
pub(crate) enum Verdict {
    Accepted,
    Refused(Refusal),
    /// Not an identity this module knows: the caller checks the static token.
    NotMine,
}

/// The parts of an API call its credentials are checked against.
pub(crate) struct Call<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

impl Identity {
    pub(crate) fn new(config: IdentityConfig) -> Self {
        Self {
            users: config.users,
            token_ttl: config.token_ttl,
            key: config.aksk.map(|(ak, sk)| AccessKey {
                ak,
                sk,
                lock: Mutex::new(KeyLock::default()),
            }),
            issued: Mutex::new(HashMap::new()),
            token_requests: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            token_refusals: AtomicU64::new(0),
            aksk_failures: AtomicU64::new(0),
        }
    }

    /// Checks an AK/SK signature or an issued token, now.
    pub(crate) fn verify(&self, call: &Call<'_>) -> Verdict {
        self.verify_at(call, Utc::now(), Instant::now())
    }

    /// [`Identity::verify`] with the clock given (tests pass the published vectors' dates).
    fn verify_at(&self, call: &Call<'_>, now: DateTime<Utc>, instant: Instant) -> Verdict {
        if let Some(authorization) = call.headers.get("authorization")
            && authorization
                .as_bytes()
                .starts_with(signer::ALGORITHM.as_bytes())
        {
            let verdict = match authorization.to_str() {
                Ok(authorization) => self.check_signature(call, authorization, now, instant),
                Err(_) => Err(SIGNATURE_FAIL.into()),
            };
            return match verdict {
                Ok(()) => Verdict::Accepted,
                Err(refusal) => {
                    self.aksk_failures.fetch_add(1, Ordering::Relaxed);
                    Verdict::Refused(refusal)
                }
            };
        }
        let Some(token) = call.headers.get("x-auth-token") else {
            return Verdict::NotMine;
        };
        let Ok(token) = token.to_str() else {
            return Verdict::NotMine;
        };
        let issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        match issued.get(token) {
            Some(t) if instant < t.expires => Verdict::Accepted,
            Some(_) => Verdict::Refused(reply::TOKEN_EXPIRED.into()),
            None => Verdict::NotMine,
        }
    }

    /// The gateway's AK/SK check, in its order: the key exists, it is not locked, the date is
    /// present and close, the signature matches.
    fn check_signature(
        &self,
        call: &Call<'_>,
        authorization: &str,
        now: DateTime<Utc>,
        instant: Instant,
    ) -> Result<(), Refusal> {
        let fields = parse_authorization(authorization);
        let (Some(access), Some(signed_headers), Some(signature)) = (
            fields.get("Access"),
            fields.get("SignedHeaders"),
            fields.get("Signature"),
        ) else {
            return Err(SIGNATURE_FAIL.into());
        };
        let Some(key) = self.key.as_ref().filter(|k| k.ak == *access) else {
            return Err(Refusal::unauthorized(
                "APIGW.0301",
                format!(
                    "Incorrect IAM authentication information: Get secretKey failed,ak:{access},err:ak not exist"
                ),
            ));
        };
        let mut lock = key.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if lock.locked(instant) {
            return Err(KEY_LOCKED.into());
        }
        let checked = check_date(call.headers, now).and_then(|()| {
            let expected = expected_signature(key, call, signed_headers)?;
            if constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
                Ok(())
            } else {
                Err(SIGNATURE_FAIL.into())
            }
        });
        match &checked {
            Ok(()) => lock.consecutive_failures = 0,
            Err(_) => lock.failed(instant),
        }
        checked
    }

    /// `POST /v3/auth/tokens`: the status, the token for `X-Subject-Token`, and the body.
    pub(crate) fn issue(&self, body: &[u8]) -> (StatusCode, Option<String>, Value) {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        let request = match serde_json::from_slice::<TokenRequest>(body) {
            Ok(request) => request,
            Err(e) => {
                return iam_error(
                    StatusCode::BAD_REQUEST,
                    &format!("The request body is invalid: {e}"),
                );
            }
        };
        let auth = request.auth;
        if !auth.identity.methods.iter().any(|m| m == "password") {
            return iam_error(
                StatusCode::BAD_REQUEST,
                "Only the password method is simulated: auth.identity.methods must contain \"password\".",
            );
        }
        let Some(password) = auth.identity.password.map(|p| p.user) else {
            return iam_error(
                StatusCode::BAD_REQUEST,
                "auth.identity.password is missing.",
            );
        };
        let Some((project_id, project_name)) =
            auth.scope
                .and_then(|s| s.project)
                .and_then(|p| match (p.id, p.name) {
                    (Some(id), name) if !id.is_empty() => {
                        let name = name.unwrap_or_else(|| id.clone());
                        Some((id, name))
                    }
                    (_, Some(name)) if !name.is_empty() => Some((derived_project_id(&name), name)),
                    _ => None,
                })
        else {
            return iam_error(
                StatusCode::BAD_REQUEST,
                "auth.scope.project (id or name) is required: CodeArts Build refuses tokens that are not scoped to a project.",
            );
        };
        let known = self.users.iter().any(|u| {
            u.domain == password.domain.name
                && u.user == password.name
                && constant_time_eq(u.password.as_bytes(), password.password.as_bytes())
        });
        if !known {
            self.token_refusals.fetch_add(1, Ordering::Relaxed);
            return iam_error(
                StatusCode::UNAUTHORIZED,
                "The username or password is wrong.",
            );
        }
        let token = format!("MIIsim{}", hex::encode(rand::random::<[u8; 24]>()));
        let now = Utc::now();
        let expires_at = now + chrono::Duration::from_std(self.token_ttl).unwrap_or_default();
        {
            let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
            let instant = Instant::now();
            if issued.len() >= PRUNE_ABOVE {
                issued.retain(|_, t| instant < t.expires);
            }
            issued.insert(
                token.clone(),
                Issued {
                    expires: instant + self.token_ttl,
                    expires_at,
                    user: password.name.clone(),
                    domain: password.domain.name.clone(),
                    project: project_name.clone(),
                },
            );
        }
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
        let body = json!({"token": {
            "expires_at": expires_at.format(IAM_TIME_FORMAT).to_string(),
            "issued_at": now.format(IAM_TIME_FORMAT).to_string(),
            "methods": ["password"],
            "project": {"id": project_id, "name": project_name,
                        "domain": {"name": password.domain.name}},
            "user": {"name": password.name, "domain": {"name": password.domain.name}},
        }});
        (StatusCode::CREATED, Some(token), body)
    }

    /// `DELETE /_sim/tokens`: every issued token stops working now. Returns how many were
    /// still valid.
    pub(crate) fn revoke_all(&self) -> usize {
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let valid = issued.values().filter(|t| now < t.expires).count();
        issued.clear();
        valid
    }

    /// `GET /_sim/tokens`: the issued tokens that still work, soonest expiry first.
    pub(crate) fn tokens(&self) -> Value {
        let issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let mut valid: Vec<(&String, &Issued)> =
            issued.iter().filter(|(_, t)| now < t.expires).collect();
        valid.sort_by_key(|(_, t)| t.expires);
        let tokens: Vec<Value> = valid
            .into_iter()
            .map(|(token, t)| {
                json!({
                    "token": token,
                    "user": t.user,
                    "domain": t.domain,
                    "project": t.project,
                    "expires_at": t.expires_at.format(IAM_TIME_FORMAT).to_string(),
                })
            })
            .collect();
        json!({"total": tokens.len(), "tokens": tokens})
    }

    /// The counters `GET /_sim/stats` adds.
    pub(crate) fn snapshot(&self) -> Value {
        let now = Instant::now();
        let active = self
            .issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|t| now < t.expires)
            .count();
        let locked = self.key.as_ref().is_some_and(|k| {
            k.lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .locked(now)
        });
        json!({
            "token_requests": self.token_requests.load(Ordering::Relaxed),
            "tokens_issued": self.tokens_issued.load(Ordering::Relaxed),
            "token_refusals": self.token_refusals.load(Ordering::Relaxed),
            "tokens_active": active,
            "aksk_failures": self.aksk_failures.load(Ordering::Relaxed),
            "aksk_locked": locked,
        })
    }

    /// Zeroes the counters (issued tokens and the key's lock are state, not counters: kept).
    pub(crate) fn reset(&self) {
        self.token_requests.store(0, Ordering::Relaxed);
        self.tokens_issued.store(0, Ordering::Relaxed);
        self.token_refusals.store(0, Ordering::Relaxed);
        self.aksk_failures.store(0, Ordering::Relaxed);
    }
}

/// `APIGW.0303` unless `X-Sdk-Date` is present, well formed and within 15 minutes of `now`.
fn check_date(headers: &HeaderMap, now: DateTime<Utc>) -> Result<(), Refusal> {
    let refuse = |detail: String| {
        Err(Refusal::unauthorized(
            "APIGW.0303",
            format!("Incorrect app authentication information: {detail}"),
        ))
    };
    let Some(raw) = headers.get("x-sdk-date") else {
        return refuse("x-sdk-date not found".to_owned());
    };
    let raw = String::from_utf8_lossy(raw.as_bytes());
    let Ok(date) = NaiveDateTime::parse_from_str(&raw, signer::DATE_FORMAT) else {
        return refuse(format!(
            "x-sdk-date {raw:?} is not in the form YYYYMMDDTHHMMSSZ"
        ));
    };
    let skew = (now.naive_utc() - date).num_seconds().unsigned_abs();
    if skew > MAX_SKEW.as_secs() {
        return refuse(format!(
            "signature expired, signature time:{raw},server time:{}",
            now.format(signer::DATE_FORMAT)
        ));
    }
    Ok(())
}

/// The signature the key makes over the call, covering the headers `SignedHeaders` lists
/// with the values actually received.
fn expected_signature(
    key: &AccessKey,
    call: &Call<'_>,
    signed_headers: &str,
) -> Result<String, Refusal> {
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"x-sdk-date") {
        return Err(SIGNATURE_FAIL.into());
    }
    let mut headers: Vec<(String, String)> = Vec::with_capacity(names.len());
    for name in names {
        let value = call
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Refusal::from(SIGNATURE_FAIL))?;
        headers.push((name.to_owned(), value.to_owned()));
    }
    let query: Vec<(String, String)> = call
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (
                        signer::percent_decode(k, true),
                        signer::percent_decode(v, true),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let (canonical, _) = signer::canonical_request(&SignableRequest {
        method: call.method.as_str(),
        path: &signer::percent_decode(call.uri.path(), false),
        query: &query,
        headers: &headers,
        body: call.body,
    });
    let date = call
        .headers
        .get("x-sdk-date")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(signer::signature(
        &key.sk,
        &signer::string_to_sign(date.trim(), &canonical),
    ))
}

fn iam_error(status: StatusCode, message: &str) -> (StatusCode, Option<String>, Value) {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        None,
        json!({"error": {"code": status.as_u16(), "message": message, "title": title}}),
    )
}

/// A stable 32-hex-character project id for a project named in a token request.
fn derived_project_id(name: &str) -> String {
    hex::encode(&Sha256::digest(format!("sim-project-{name}").as_bytes())[..16])
}

/// The body of `POST /v3/auth/tokens`, as far as the password method needs it.
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
    password: Option<PasswordBody>,
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
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderName;

    const AK: &str = "AccessKey";
    const SK: &str = "SecretKey";

    fn identity(ttl: Duration) -> Identity {
        Identity::new(IdentityConfig {
            users: vec!["acme/bot:pw:with/odd:chars".parse().unwrap()],
            token_ttl: ttl,
            aksk: Some((AK.to_owned(), SK.to_owned())),
        })
    }

    fn token_body(password: &str) -> Vec<u8> {
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "bot", "password": password, "domain": {"name": "acme"}}}},
            "scope": {"project": {"name": "cn-north-4"}}}})
        .to_string()
        .into_bytes()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn verify(id: &Identity, method: &Method, uri: &str, headers: &HeaderMap) -> Verdict {
        let uri: Uri = uri.parse().unwrap();
        id.verify(&Call {
            method,
            uri: &uri,
            headers,
            body: b"",
        })
    }

    fn refused_with(verdict: &Verdict) -> (&'static str, String) {
        match verdict {
            Verdict::Refused(r) => (r.code, r.message.clone()),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn users_parse_from_the_flag_and_hide_their_password() {
        let user: IamUser = "acme/bot:s3cret:with/slash".parse().unwrap();
        assert_eq!(
            (
                user.domain.as_str(),
                user.user.as_str(),
                user.password.as_str()
            ),
            ("acme", "bot", "s3cret:with/slash")
        );
        assert!(!format!("{user:?}").contains("s3cret"));
        for bad in [
            "acme-bot:pw",
            "acme/bot",
            "/bot:pw",
            "acme/:pw",
            "acme/bot:",
        ] {
            assert!(bad.parse::<IamUser>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_known_user_gets_a_project_scoped_token_in_iams_shape() {
        let id = identity(Duration::from_secs(60));
        let (status, token, body) = id.issue(&token_body("pw:with/odd:chars"));
        assert_eq!(status, StatusCode::CREATED);
        assert!(token.is_some_and(|t| t.len() > 40));
        let expires_at = body["token"]["expires_at"].as_str().unwrap();
        let parsed = DateTime::parse_from_rfc3339(expires_at).unwrap();
        assert!(
            expires_at.ends_with('Z') && expires_at.len() == 27,
            "{expires_at}"
        );
        let left = parsed.with_timezone(&Utc) - Utc::now();
        assert!((55..=60).contains(&left.num_seconds()), "{left}");
        assert_eq!(body["token"]["project"]["name"], "cn-north-4");
        assert_eq!(body["token"]["user"]["domain"]["name"], "acme");
        assert_eq!(body["token"]["methods"], json!(["password"]));
    }

    #[test]
    fn wrong_credentials_and_unscoped_or_malformed_bodies_are_refused_like_iam() {
        let id = identity(Duration::from_secs(60));
        let (status, token, body) = id.issue(&token_body("wrong"));
        assert_eq!((status, token), (StatusCode::UNAUTHORIZED, None));
        assert_eq!(
            body,
            json!({"error": {"code": 401, "message": "The username or password is wrong.",
                             "title": "Unauthorized"}})
        );
        let unscoped = json!({"auth": {"identity": {"methods": ["password"], "password":
            {"user": {"name": "bot", "password": "pw:with/odd:chars", "domain": {"name": "acme"}}}}}});
        let domain_scoped = json!({"auth": {"identity": {"methods": ["password"], "password":
            {"user": {"name": "bot", "password": "pw:with/odd:chars", "domain": {"name": "acme"}}}},
            "scope": {"domain": {"name": "acme"}}}});
        for body in [
            unscoped.to_string().into_bytes(),
            domain_scoped.to_string().into_bytes(),
            b"not json".to_vec(),
            b"{\"auth\": {\"identity\": {\"methods\": [\"token\"]}}}".to_vec(),
        ] {
            let (status, token, answer) = id.issue(&body);
            assert_eq!((status, token), (StatusCode::BAD_REQUEST, None), "{answer}");
            assert_eq!(answer["error"]["code"], 400);
        }
        let stats = id.snapshot();
        assert_eq!(
            (
                &stats["token_requests"],
                &stats["tokens_issued"],
                &stats["token_refusals"]
            ),
            (&json!(5), &json!(0), &json!(1))
        );
    }

    #[test]
    fn tokens_work_until_they_expire_or_are_revoked() {
        let id = identity(Duration::from_secs(60));
        let (_, token, _) = id.issue(&token_body("pw:with/odd:chars"));
        let with_token = headers(&[("x-auth-token", &token.unwrap())]);
        let uri: Uri = "/v1/job/x/info".parse().unwrap();
        let call = Call {
            method: &Method::GET,
            uri: &uri,
            headers: &with_token,
            body: b"",
        };
        assert!(matches!(id.verify(&call), Verdict::Accepted));
        let later = Instant::now() + Duration::from_secs(61);
        let (code, message) = refused_with(&id.verify_at(&call, Utc::now(), later));
        assert_eq!(code, "APIGW.0301");
        assert!(message.ends_with("token expires"), "{message}");

        assert_eq!(id.tokens()["total"], 1);
        assert_eq!(id.revoke_all(), 1);
        assert_eq!(id.tokens()["total"], 0);
        assert!(
            matches!(id.verify(&call), Verdict::NotMine),
            "a revoked token is unknown: the static-token check answers `token expires`"
        );
        let other = headers(&[("x-auth-token", "sim-token")]);
        assert!(matches!(
            verify(&id, &Method::GET, "/v1/job/x/info", &other),
            Verdict::NotMine
        ));
    }

    /// The SDKs' published unit-test vectors, verified at their own date.
    #[test]
    fn the_published_sdk_vectors_are_accepted_at_their_date_and_refused_when_skewed() {
        let vector_date = "20200608T023900Z";
        let at = NaiveDateTime::parse_from_str(vector_date, signer::DATE_FORMAT)
            .unwrap()
            .and_utc();
        let id = identity(Duration::from_secs(60));
        let signed = headers(&[
            ("host", "service.endpoint.myhuaweicloud.com"),
            ("x-sdk-date", vector_date),
            (
                "authorization",
                "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, \
                 Signature=cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842",
            ),
        ]);
        let uri: Uri = "/resources?size=1".parse().unwrap();
        let get = Call {
            method: &Method::GET,
            uri: &uri,
            headers: &signed,
            body: b"",
        };
        assert!(matches!(
            id.verify_at(&get, at, Instant::now()),
            Verdict::Accepted
        ));
        let mut post_headers = signed.clone();
        post_headers.insert(
            "authorization",
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, \
             Signature=436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f"
                .parse()
                .unwrap(),
        );
        let post = Call {
            method: &Method::POST,
            uri: &uri,
            headers: &post_headers,
            body: br#"{"name":"test","id":1}"#,
        };
        assert!(matches!(
            id.verify_at(&post, at, Instant::now()),
            Verdict::Accepted
        ));

        let sixteen_minutes_later = at + chrono::Duration::minutes(16);
        let (code, message) =
            refused_with(&id.verify_at(&get, sixteen_minutes_later, Instant::now()));
        assert_eq!(code, "APIGW.0303");
        assert!(
            message.starts_with(
                "Incorrect app authentication information: signature expired, signature time:20200608T023900Z,server time:"
            ),
            "{message}"
        );
        assert!(matches!(
            id.verify_at(&get, at + chrono::Duration::minutes(14), Instant::now()),
            Verdict::Accepted
        ));
    }

    #[test]
    fn a_wrong_key_signature_or_date_is_refused_with_the_gateways_codes() {
        let id = identity(Duration::from_secs(60));
        let date = Utc::now().format(signer::DATE_FORMAT).to_string();
        let path = "/v1/job/abcdefABCDEF0123456789abcdef0123/info";
        let sign = |ak: &str, sk: &str| {
            let signed = vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("host".to_owned(), "127.0.0.1:8080".to_owned()),
                ("x-sdk-date".to_owned(), date.clone()),
            ];
            signer::authorization(
                ak,
                sk,
                &SignableRequest {
                    method: "GET",
                    path,
                    query: &[],
                    headers: &signed,
                    body: b"",
                },
            )
        };
        let with = |authorization: &str, date: Option<&str>| {
            let mut map = headers(&[
                ("content-type", "application/json"),
                ("host", "127.0.0.1:8080"),
                ("authorization", authorization),
            ]);
            if let Some(date) = date {
                map.insert("x-sdk-date", date.parse().unwrap());
            }
            map
        };
        let good = sign(AK, SK);
        assert!(matches!(
            verify(&id, &Method::GET, path, &with(&good, Some(&date))),
            Verdict::Accepted
        ));
        let cases = [
            (
                with(&sign(AK, "another"), Some(&date)),
                path,
                "APIGW.0301",
                "verify aksk signature fail",
            ),
            (
                with(&good, Some(&date)),
                "/v1/job/abcdefABCDEF0123456789abcdef0124/info",
                "APIGW.0301",
                "verify aksk signature fail",
            ),
            (
                with(&sign("OtherKey", SK), Some(&date)),
                path,
                "APIGW.0301",
                "Get secretKey failed,ak:OtherKey,err:ak not exist",
            ),
            (
                with(&good, None),
                path,
                "APIGW.0303",
                "x-sdk-date not found",
            ),
            (
                with(&good, Some("yesterday")),
                path,
                "APIGW.0303",
                "is not in the form YYYYMMDDTHHMMSSZ",
            ),
            (
                with("SDK-HMAC-SHA256 nonsense", Some(&date)),
                path,
                "APIGW.0301",
                "verify aksk signature fail",
            ),
        ];
        for (headers, uri, code, message) in &cases {
            let (got_code, got_message) = refused_with(&verify(&id, &Method::GET, uri, headers));
            assert_eq!(got_code, *code, "{got_message}");
            assert!(got_message.ends_with(message), "{got_message}");
        }
        assert_eq!(id.snapshot()["aksk_failures"], json!(cases.len()));
    }

    #[test]
    fn more_than_five_consecutive_failures_lock_the_key_for_five_minutes() {
        let mut lock = KeyLock::default();
        let start = Instant::now();
        for _ in 0..LOCK_AFTER_FAILURES {
            lock.failed(start);
            assert!(!lock.locked(start));
        }
        lock.failed(start);
        assert!(lock.locked(start + Duration::from_secs(299)));
        assert!(!lock.locked(start + Duration::from_secs(301)));
        assert_eq!(lock.consecutive_failures, 0, "unlocked with a clean slate");
    }

    #[test]
    fn a_locked_key_refuses_even_a_correct_signature() {
        let id = identity(Duration::from_secs(60));
        let date = Utc::now().format(signer::DATE_FORMAT).to_string();
        let signed = |sk: &str| {
            let pairs = vec![
                ("host".to_owned(), "sim".to_owned()),
                ("x-sdk-date".to_owned(), date.clone()),
            ];
            let authorization = signer::authorization(
                AK,
                sk,
                &SignableRequest {
                    method: "GET",
                    path: "/v1/job/x/info",
                    query: &[],
                    headers: &pairs,
                    body: b"",
                },
            );
            headers(&[
                ("host", "sim"),
                ("x-sdk-date", &date),
                ("authorization", &authorization),
            ])
        };
        for _ in 0..=LOCK_AFTER_FAILURES {
            let verdict = verify(&id, &Method::GET, "/v1/job/x/info", &signed("wrong"));
            assert!(
                refused_with(&verdict)
                    .1
                    .ends_with("verify aksk signature fail")
            );
        }
        assert_eq!(id.snapshot()["aksk_locked"], true);
        let (_, message) = refused_with(&verify(&id, &Method::GET, "/v1/job/x/info", &signed(SK)));
        assert!(
            message.ends_with("AK access failed to reach the limit,forbidden."),
            "{message}"
        );
    }
}
