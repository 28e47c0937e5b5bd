//! The status board (`[http] board = true`, docs/board.md) over HTTP: failing jobs first,
//! hostile job names shown as text, the JSON API's shapes, the security headers, and the
//! token (bearer, login form, cookie) on a listener that is not loopback. The real browser's
//! view is `browser.rs`.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::support::harness::{Env, serve, start_bot, tick};

const TOKEN: &str = "board-token-0123456789abcdef";
const SCRIPT_NAME: &str = "<script>alert(1)</script>";
const ATTR_NAME: &str = "\"onmouseover=alert(1) x=\"";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn assert_security_headers(headers: &HeaderMap, what: &str) {
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{what}: {csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert!(headers.contains_key("server-timing"), "{what}");
}

/// Three watched jobs: 0 fails, 1 and 2 carry hostile names.
async fn board_env() -> (Env, codearts_bot::engine::Ctx) {
    let env = Env::start(3).await;
    for (i, name) in [(1, SCRIPT_NAME), (2, ATTR_NAME)] {
        env.sim
            .control()
            .put_job(&env.job(i), json!({ "job_name": name }))
            .await
            .expect("simulator renames");
    }
    let toml = env.toml().jobs(3).http(Some(
        "listen = \"127.0.0.1:0\"\nboard = true\npublic_url = \"https://bot.example\"",
    ));
    let bot = start_bot(toml.config()).await;
    tick(&bot).await;
    env.fail(&env.job(0), 1_900_000_000_000).await;
    tick(&bot).await;
    (env, bot)
}

#[tokio::test]
async fn the_board_lists_failing_first_and_shows_hostile_names_as_text() {
    let (env, bot) = board_env().await;
    let served = serve(&bot).await;
    let http = client();
    let base = format!("http://{}", served.addr);
    let response = http.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(response.headers(), "/");
    let page = response.text().await.expect("body");
    let first_row = page
        .split("<tr class=\"job ")
        .nth(1)
        .expect("a job row")
        .to_owned();
    assert!(
        first_row.starts_with("state-failing") && first_row.contains(&env.job(0)),
        "{first_row}"
    );
    assert!(
        first_row.contains("Failing"),
        "colour and words: {first_row}"
    );
    assert!(page.contains("<svg class=\"sparkline\""), "{page}");
    assert!(!page.contains(SCRIPT_NAME), "a job name became markup");
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        !page.contains("\"onmouseover"),
        "an attribute escaped its quotes"
    );
    assert!(
        page.contains("onmouseover=alert(1) x="),
        "the name is shown"
    );
    assert!(page.contains("this replica leads") && page.contains("Open incidents"));

    // The job page: its history.
    let job = http
        .get(format!("{base}/jobs/{}", env.job(0)))
        .send()
        .await
        .expect("job page");
    assert_eq!(job.status(), StatusCode::OK);
    assert_security_headers(job.headers(), "/jobs/{id}");
    let text = job.text().await.expect("body");
    for part in ["Builds", "build_failed", "<svg class=\"chart\"", "Events"] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let hostile = http
        .get(format!("{base}/jobs/{}", env.job(1)))
        .send()
        .await
        .expect("hostile job page")
        .text()
        .await
        .expect("body");
    assert!(!hostile.contains(SCRIPT_NAME), "{hostile}");
    let missing = http
        .get(format!("{base}/jobs/ffffffffffffffffffffffffffffffff"))
        .send()
        .await
        .expect("unknown job");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Filtered to one job (what a storm summary links to).
    let filtered = http
        .get(format!("{base}/?jobs={}", env.job(2)))
        .send()
        .await
        .expect("filtered")
        .text()
        .await
        .expect("body");
    assert_eq!(
        filtered.matches("<tr class=\"job ").count(),
        1,
        "{filtered}"
    );

    // The assets the CSP allows.
    let css = http
        .get(format!("{base}/assets/board.css"))
        .send()
        .await
        .expect("css");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(
        css.text()
            .await
            .unwrap()
            .contains("prefers-color-scheme: dark")
    );
}

#[tokio::test]
async fn the_api_answers_jobs_one_job_events_and_incidents() {
    let (env, bot) = board_env().await;
    let served = serve(&bot).await;
    let http = client();
    let base = format!("http://{}", served.addr);
    let get = |path: String| {
        let http = http.clone();
        async move {
            let r = http.get(path).send().await.expect("API answers");
            let status = r.status();
            assert_security_headers(r.headers(), "api");
            (status, r.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, jobs) = get(format!("{base}/api/v1/jobs")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jobs["total"], 3);
    assert_eq!(jobs["counts"]["failing"], 1);
    assert_eq!(jobs["page"], 1);
    let first = &jobs["jobs"][0];
    assert_eq!(first["id"], env.job(0));
    assert_eq!(first["state"], "failing");
    assert_eq!(first["last_build_status"], "failed");
    assert!(first["incident"]["opened_at"].is_string(), "{first}");
    assert_eq!(
        first["board_url"],
        format!("https://bot.example/jobs/{}", env.job(0))
    );
    assert!(
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == SCRIPT_NAME)
    );

    let (status, paged) = get(format!("{base}/api/v1/jobs?per_page=2&page=2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            paged["pages"].as_u64(),
            paged["jobs"].as_array().map(Vec::len)
        ),
        (Some(2), Some(1))
    );
    let (status, bad) = get(format!("{base}/api/v1/jobs?status=purple")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["error"].as_str().unwrap().contains("purple"), "{bad}");

    let (status, one) = get(format!("{base}/api/v1/jobs/{}", env.job(0))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["job"]["state"], "failing");
    assert!(
        one["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "build_failed"),
        "{one}"
    );
    assert!(!one["builds"].as_array().unwrap().is_empty(), "{one}");
    assert!(!one["health"].as_array().unwrap().is_empty(), "{one}");
    assert!(one["deliveries"].is_array() && one.get("failure_context").is_some());
    let (status, _) = get(format!("{base}/api/v1/jobs/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, events) = get(format!("{base}/api/v1/events?limit=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events["events"].as_array().map(Vec::len), Some(1));
    let cursor = events["next_before"]
        .as_i64()
        .expect("a cursor while more remain");
    let (_, older) = get(format!("{base}/api/v1/events?before={cursor}")).await;
    assert!(
        older["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["id"].as_i64() < Some(cursor))
    );

    let (status, incidents) = get(format!("{base}/api/v1/incidents")).await;
    assert_eq!(status, StatusCode::OK);
    let open = incidents["incidents"].as_array().expect("list");
    assert_eq!(open.len(), 1, "{incidents}");
    assert_eq!(open[0]["job_id"], env.job(0));
    assert!(
        open[0]["open_secs"].is_u64() && open[0]["failed_builds"] == 1,
        "{incidents}"
    );
}

#[tokio::test]
async fn a_board_on_a_public_listener_asks_for_its_token() {
    let env = Env::start(1).await;
    let toml = env.toml().jobs(1).http(Some(&format!(
        "listen = \"0.0.0.0:0\"\nboard = true\nboard_token = \"{TOKEN}\""
    )));
    let config = toml.config();
    assert!(!format!("{config:?}").contains(TOKEN), "the token in Debug");
    assert!(
        !config.effective_toml().contains(TOKEN),
        "the token in config check"
    );
    assert!(
        config.secrets().iter().any(|s| s == TOKEN),
        "the redactor must know it"
    );
    let bot = start_bot(config).await;
    tick(&bot).await;
    // Bound on every interface, reached through loopback: the rule follows the configured
    // address, not the client's.
    let (listener, addr) = codearts_bot::server::bind("0.0.0.0:0".parse().unwrap())
        .await
        .expect("binds");
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(codearts_bot::server::serve(listener, bot.clone(), async {
        let _ = stopped.await;
    }));
    let base = format!("http://127.0.0.1:{}", addr.port());
    let http = client();

    let page = http
        .get(format!("{base}/jobs/{}", env.job(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let location = page.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("/login?next=%2Fjobs%2F"), "{location}");
    assert_security_headers(page.headers(), "redirect");
    let login = http.get(format!("{base}{location}")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let form = login.text().await.unwrap();
    assert!(
        form.contains("name=\"token\"") && form.contains("type=\"password\""),
        "{form}"
    );

    let api = http
        .get(format!("{base}/api/v1/jobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert!(
        api.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = http
        .get(format!("{base}/api/v1/jobs"))
        .bearer_auth("board-token-0123456789abcdeX")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = http
        .get(format!("{base}/api/v1/jobs"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);

    let refused = http
        .post(format!("{base}/login"))
        .form(&[("token", "not-the-token-at-all"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get(SET_COOKIE).is_none());
    let signed_in = http
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN), ("next", "/?status=failing")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()[LOCATION], "/?status=failing");
    let cookie = signed_in.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the cookie must not carry the token"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = http
        .get(format!("{base}/"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);
    assert!(with_cookie.text().await.unwrap().contains(&env.job(0)));
    let forged = http
        .get(format!("{base}/"))
        .header("cookie", format!("codearts_board={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::SEE_OTHER);

    // Health and metrics keep their own rules.
    let healthz = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
    assert!(healthz.headers().get("content-security-policy").is_none());
}

#[test]
fn a_public_board_without_a_token_is_refused_by_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let text = codearts_bot_toml(&dir, "listen = \"0.0.0.0:9464\"\nboard = true");
    let err = codearts_bot::config::Config::from_toml(&text, "t", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("http.board_token: required"), "{err}");
    let short = codearts_bot_toml(&dir, "board = true\nboard_token = \"short-secret\"");
    let err = codearts_bot::config::Config::from_toml(&short, "t", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("too short") && !err.contains("short-secret"),
        "{err}"
    );
    // Loopback needs no token; public_url must be a URL.
    let local = codearts_bot_toml(&dir, "listen = \"127.0.0.1:9464\"\nboard = true");
    assert!(codearts_bot::config::Config::from_toml(&local, "t", &|_| None).is_ok());
    let bad_url = codearts_bot_toml(&dir, "public_url = \"ftp://x\"");
    let err = codearts_bot::config::Config::from_toml(&bad_url, "t", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("http.public_url"), "{err}");
}

fn codearts_bot_toml(dir: &tempfile::TempDir, http: &str) -> String {
    format!(
        "[codearts]\nregion = \"cn-north-4\"\n[codearts.auth]\ntoken = \"t\"\n[store]\npath = \"{}\"\n[http]\n{http}\n",
        dir.path().join("bot.db").display()
    )
}
