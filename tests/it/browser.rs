//! The board in a real browser (issue #17 part 5): Debian's Chromium, driven through
//! chromedriver (`support::webdriver`), against a running bot and simulator whose listener is
//! bound to 0.0.0.0 with a board token. The browser is sent to the login form, signs in, and
//! sees the failing job first and red, with its sparkline; the job page shows its history;
//! the page fits a phone's width; dark mode follows `prefers-color-scheme`; the console has no
//! error. Screenshots of the board (light and dark) go to `$BOARD_SCREENSHOTS_DIR` (the
//! README's come from `BOARD_SCREENSHOTS_DIR=docs`), else to Cargo's temp dir for tests.
//!
//! Needs `chromium` and `chromium-driver`; `.ci/run` installs them. Without them the test
//! fails when `CI` is set, and skips loudly otherwise.

use std::path::PathBuf;

use chrono::Utc;
use codearts_bot::codearts::JobId;
use codearts_bot::domain::silence::{Kind, Scope};
use serde_json::{Value, json};

use crate::support::harness::{Env, start_bot, tick, tick_as_run};
use crate::support::webdriver::{self, Browser};

const TOKEN: &str = "browser-board-token-0123456789";
const PROJECTS: [&str; 2] = [
    "7d2c1e0b9a8f4c3d2e1f0a9b8c7d6e5f",
    "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
];
/// Names a reader would recognise, in two projects; the ones marked `true` fail.
const JOBS: [(&str, usize, bool); 10] = [
    ("web-frontend", 0, false),
    ("payments-api", 0, true),
    ("nightly-e2e", 0, true),
    ("search-indexer", 0, false),
    ("auth-service", 0, false),
    ("mobile-app-android", 1, false),
    ("mobile-app-ios", 1, false),
    ("billing-worker", 1, false),
    ("docs-site", 1, false),
    ("data-pipeline", 1, false),
];

fn screenshots_dir() -> PathBuf {
    std::env::var_os("BOARD_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

/// Severe console entries (errors), with what they said.
async fn console_errors(browser: &Browser) -> Vec<Value> {
    browser
        .console()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect()
}

#[tokio::test]
async fn chromium_sees_the_failing_job_first_and_red_and_its_history() {
    if !webdriver::available() {
        return;
    }
    let env = Env::start(JOBS.len()).await;
    for (i, (name, project, _)) in JOBS.iter().enumerate() {
        env.sim
            .control()
            .put_job(
                &env.job(i),
                json!({"job_name": name, "project_id": PROJECTS[*project], "health_score": 90}),
            )
            .await
            .expect("simulator takes the job");
    }
    let toml = env.toml().jobs(JOBS.len()).http(Some(&format!(
        "listen = \"0.0.0.0:0\"\nboard = true\nboard_token = \"{TOKEN}\""
    )));
    let bot = start_bot(toml.config()).await;
    tick(&bot).await;
    // A few readings of health for the sparklines, then the failures.
    for (step, health) in [84, 77, 81, 72].into_iter().enumerate() {
        for (i, (_, _, failing)) in JOBS.iter().enumerate() {
            let h = health - (i as i64 % 4) * 3 - if *failing { 10 * step as i64 } else { 0 };
            env.sim
                .control()
                .put_job(&env.job(i), json!({"health_score": h.clamp(0, 100)}))
                .await
                .expect("health");
        }
        tick(&bot).await;
    }
    let minutes_ago = |m: i64| Utc::now().timestamp_millis() - m * 60_000;
    for (i, (_, _, failing)) in JOBS.iter().enumerate() {
        if *failing {
            env.fail(&env.job(i), minutes_ago(40 + 15 * i as i64)).await;
        }
    }
    // As `run` ticks: the bot's own state (last good cycle) is recorded too.
    tick_as_run(&bot).await;
    let now = Utc::now();
    bot.store
        .add_silence(
            Kind::Mute,
            &Scope::Job(JobId::parse(&env.job(2)).expect("id")),
            "alice",
            "known flaky runner, on it",
            now,
            now + chrono::Duration::hours(2),
        )
        .await
        .expect("silence");

    let (listener, addr) = codearts_bot::server::bind("0.0.0.0:0".parse().unwrap())
        .await
        .expect("binds");
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(codearts_bot::server::serve(listener, bot.clone(), async {
        let _ = stopped.await;
    }));
    let base = format!("http://127.0.0.1:{}", addr.port());

    let browser = Browser::start(1280, 900).await;
    // Not signed in: the login form.
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_for(
            "return location.pathname === '/login' && !!document.querySelector('input[type=password]')",
            "the login form",
        )
        .await;
    browser.type_into("#token", TOKEN).await;
    browser.click("section.login button[type=submit]").await;
    browser
        .wait_for(
            "return location.pathname === '/' && !!document.querySelector('tr.job')",
            "the board after signing in",
        )
        .await;

    let first = browser
        .eval(
            "const row = document.querySelector('tr.job');
             const state = row.querySelector('td.state');
             return {cls: row.className, text: row.innerText,
                     color: getComputedStyle(state).color,
                     spark: row.querySelectorAll('svg.sparkline polyline').length,
                     sparks: document.querySelectorAll('svg.sparkline').length,
                     name: row.querySelector('td.name a').innerText};",
            json!([]),
        )
        .await;
    assert!(
        first["cls"].as_str().unwrap().contains("state-failing"),
        "{first}"
    );
    assert!(
        first["text"].as_str().unwrap().contains("Failing"),
        "{first}"
    );
    let name = first["name"].as_str().unwrap().to_owned();
    assert!(
        ["payments-api", "nightly-e2e"].contains(&name.as_str()),
        "{first}"
    );
    let rgb: Vec<u32> = first["color"]
        .as_str()
        .unwrap()
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .map(|c| c.trim().parse().unwrap_or(0))
        .collect();
    assert!(
        rgb[0] > 150 && rgb[1] < 100 && rgb[2] < 100,
        "not red: {first}"
    );
    assert_eq!(first["spark"], 1, "the row's sparkline: {first}");
    assert!(
        first["sparks"].as_u64() >= Some(JOBS.len() as u64),
        "{first}"
    );
    let errors = console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors on the board: {errors:?}");

    // Light and dark, as the reader's system prefers; screenshots of both.
    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    for (scheme, background) in [("light", "rgb(255, 255, 255)"), ("dark", "rgb(13, 17, 23)")] {
        browser
            .cdp(
                "Emulation.setEmulatedMedia",
                json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
            )
            .await;
        let bg = browser
            .eval(
                "return getComputedStyle(document.body).backgroundColor;",
                json!([]),
            )
            .await;
        assert_eq!(bg, background, "{scheme}");
        let png = browser.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(dir.join(format!("board-{scheme}.png")), png).expect("screenshot saved");
    }

    // A phone: nothing wider than the screen.
    browser
        .cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
        )
        .await;
    let fits = browser
        .eval(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            json!([]),
        )
        .await;
    assert_eq!(fits, true, "the board is wider than a phone");
    browser
        .cdp("Emulation.clearDeviceMetricsOverride", json!({}))
        .await;

    // The failing job's page: its history.
    browser.click("tr.job td.name a").await;
    browser
        .wait_for(
            "return location.pathname.startsWith('/jobs/') && !!document.querySelector('h1')",
            "the job page",
        )
        .await;
    let job = browser
        .eval(
            "return {title: document.querySelector('h1').innerText,
                     events: document.querySelectorAll('section.events tbody tr').length,
                     kinds: [...document.querySelectorAll('section.events code')].map(c => c.innerText),
                     builds: document.querySelectorAll('section.builds tbody tr').length,
                     chart: document.querySelectorAll('svg.chart polyline').length};",
            json!([]),
        )
        .await;
    assert_eq!(job["title"], name.as_str(), "{job}");
    assert!(job["events"].as_u64() >= Some(2), "{job}");
    assert!(
        job["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "build_failed"),
        "{job}"
    );
    assert!(job["builds"].as_u64() >= Some(1), "{job}");
    assert_eq!(job["chart"], 1, "{job}");
    let errors = console_errors(&browser).await;
    assert!(
        errors.is_empty(),
        "console errors on the job page: {errors:?}"
    );
    browser.quit().await;
}
