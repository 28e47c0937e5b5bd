//! The simulator over real loopback HTTP: the documented shapes, errors, the control API, the
//! faults, and the crate's own CodeArts client against it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::codearts::auth::Auth;
use crate::codearts::{Client, Error, JobInfo};
use crate::util::secret::Secret;

const DOC_ID: &str = "f5af662119404ad187437cd272b5099b";

/// The documented example's `result`, field for field.
fn documented_result() -> Value {
    json!({
        "id": DOC_ID,
        "project_id": "85caf40575794f989920-5216d1148af6",
        "project_permission_switch": true,
        "build_time": "27.51",
        "charge_time": "15.17",
        "create_time": "1717574458000",
        "disabled": false,
        "favorite": false,
        "source_code": "test",
        "running_status": "Finished",
        "new_build": false,
        "job_name": "jobname",
        "is_copy": true, "is_delete": true, "is_execute": true, "is_forbidden": true,
        "is_manager": true, "is_modify": true, "is_view": true,
        "last_build_status": "success",
        "last_build_time": 1721793407000_i64,
        "health_score": 74
    })
}

async fn start(jobs: usize) -> SimHandle {
    spawn(SimConfig {
        jobs,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts on loopback")
}

async fn get_info(sim: &SimHandle, id: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}/v1/job/{id}/info", sim.base_url()));
    if let Some(token) = token {
        request = request.header("X-Auth-Token", token);
    }
    request.send().await.expect("the simulator answers")
}

async fn info_of(sim: &SimHandle, id: &str) -> (StatusCode, Value) {
    let response = get_info(sim, id, Some(sim.token())).await;
    let status = response.status();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

fn client_for(sim: &SimHandle) -> Client {
    Client::new(
        &sim.base_url(),
        Auth::Token(Secret::new(sim.token())),
        Duration::from_secs(5),
    )
    .expect("a client")
}

#[tokio::test]
async fn job_info_answers_the_documented_shape_with_create_time_as_a_string() {
    let sim = start(3).await;
    let id = seeded_job_id(1);

    let response = get_info(&sim, id.as_str(), Some(DEFAULT_TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers().get("x-request-id").cloned();
    assert_eq!(request_id.map(|v| v.len()), Some(32));
    let body: Value = response.json().await.unwrap();

    assert_eq!(body["status"], "success");
    assert_eq!(body["error"], Value::Null);
    let result = body["result"].as_object().unwrap();
    let documented = documented_result();
    let mut names: Vec<&String> = result.keys().collect();
    let mut expected: Vec<&String> = documented.as_object().unwrap().keys().collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected, "exactly the 22 documented fields");
    assert_eq!(result["id"], id.as_str());
    assert_eq!(result["job_name"], "sim-job-0001");
    assert!(
        result["create_time"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );
    assert!(result["last_build_time"].is_i64());
    assert!(
        result["build_time"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .is_ok()
    );
    assert!(
        result["charge_time"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .is_ok()
    );
    assert!(result["health_score"].is_i64());
    assert_eq!(result["last_build_status"], "success");
    assert!(result["disabled"].is_boolean());
    sim.stop().await;
}

#[tokio::test]
async fn the_documented_example_round_trips_exactly() {
    let sim = start(0).await;
    let control = sim.control();
    let stored = control.put_job(DOC_ID, documented_result()).await.unwrap();
    assert_eq!(stored, documented_result());

    let (status, body) = info_of(&sim, DOC_ID).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"result": documented_result(), "status": "success", "error": null})
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_call_without_or_with_a_wrong_token_is_refused_by_the_gateway() {
    let sim = start(1).await;
    let id = seeded_job_id(0);

    let response = get_info(&sim, id.as_str(), None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "APIGW.0301");
    assert_eq!(
        body["error_msg"],
        "Incorrect IAM authentication information: x-auth-token not found"
    );
    assert!(body["request_id"].is_string());

    let response = get_info(&sim, id.as_str(), Some("stale")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error_msg"]
            .as_str()
            .unwrap()
            .ends_with("token expires")
    );

    let refused = Control::new(&sim.base_url(), "stale")
        .jobs()
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(401));
    sim.stop().await;
}

#[tokio::test]
async fn an_unknown_job_is_404_url_not_found() {
    let sim = start(1).await;
    let (status, body) = info_of(&sim, &"0".repeat(32)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error_code": "CB.00060214", "error_msg": "URL not found"})
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_malformed_id_is_400_invalid_task_id() {
    let sim = start(0).await;
    for bad in [
        "short",
        &"a".repeat(33),
        "f5af662119404ad187437cd272b5099_",
        "f5af662119404ad187437cd272b5099%21",
    ] {
        let (status, body) = info_of(&sim, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            body,
            json!({"error_code": "CB.00060201", "error_msg": "invalid task id"}),
            "{bad}"
        );
    }
    let refused = sim.control().put_job("short", json!({})).await.unwrap_err();
    assert_eq!(refused.status(), Some(400));
    assert!(refused.to_string().contains("CB.00060201"), "{refused}");
    sim.stop().await;
}

#[tokio::test]
async fn put_merges_fields_verbatim_including_numbers_as_strings() {
    let sim = start(1).await;
    let id = seeded_job_id(0);
    let control = sim.control();

    let stored = control
        .put_job(
            id.as_str(),
            json!({"last_build_status": "error", "health_score": "41", "create_time": 5}),
        )
        .await
        .unwrap();
    assert_eq!(stored["last_build_status"], "error");
    assert_eq!(stored["job_name"], "sim-job-0000", "other fields kept");

    let (_, body) = info_of(&sim, id.as_str()).await;
    assert_eq!(body["result"]["last_build_status"], "error");
    assert_eq!(body["result"]["health_score"], "41");
    assert_eq!(body["result"]["create_time"], 5);
    assert_eq!(body["result"]["job_name"], "sim-job-0000");
    sim.stop().await;
}

#[tokio::test]
async fn a_forbidden_job_answers_403_and_the_flag_never_shows_in_the_info() {
    let sim = start(1).await;
    let id = seeded_job_id(0);
    let control = sim.control();

    let stored = control
        .put_job(id.as_str(), json!({"_sim_forbidden": true}))
        .await
        .unwrap();
    assert_eq!(stored["_sim_forbidden"], true);
    let (status, body) = info_of(&sim, id.as_str()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"error_code": "CB.00060403", "error_msg": "no permission"})
    );

    control
        .put_job(id.as_str(), json!({"_sim_forbidden": false}))
        .await
        .unwrap();
    let (status, body) = info_of(&sim, id.as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["result"].get("_sim_forbidden").is_none());

    let refused = control
        .put_job(id.as_str(), json!({"_sim_forbiden": true}))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400));
    sim.stop().await;
}

#[tokio::test]
async fn a_fault_with_count_2_applies_twice_then_calls_are_normal() {
    let sim = start(1).await;
    let id = seeded_job_id(0);
    sim.control()
        .set_fault(json!({"status": 500, "count": 2}))
        .await
        .unwrap();

    for _ in 0..2 {
        let (status, body) = info_of(&sim, id.as_str()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            json!({"error_code": "CB.00060101", "error_msg": "internal error"})
        );
    }
    let (status, _) = info_of(&sim, id.as_str()).await;
    assert_eq!(status, StatusCode::OK);
    sim.stop().await;
}

#[tokio::test]
async fn a_429_fault_sets_retry_after_and_the_gateway_body() {
    let sim = start(1).await;
    sim.control()
        .set_fault(json!({"status": 429, "retry_after": 3}))
        .await
        .unwrap();

    let response = get_info(&sim, seeded_job_id(0).as_str(), Some(DEFAULT_TOKEN)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "APIG.0308");
    assert!(
        body["error_msg"]
            .as_str()
            .unwrap()
            .starts_with("policy user over ratelimit, limit:")
    );

    let err = client_for(&sim)
        .job_info(&seeded_job_id(0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3)),
        "{err:?}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_raw_body_fault_is_sent_verbatim_and_the_client_calls_it_malformed() {
    let sim = start(1).await;
    let html = "<html><body>502 Bad Gateway</body></html>";
    sim.control()
        .set_fault(json!({"body": html, "count": 1}))
        .await
        .unwrap();

    let response = get_info(&sim, seeded_job_id(0).as_str(), Some(DEFAULT_TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(response.text().await.unwrap(), html);

    sim.control()
        .set_fault(json!({"body": html, "count": 1}))
        .await
        .unwrap();
    let err = client_for(&sim)
        .job_info(&seeded_job_id(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err:?}");

    sim.control()
        .set_fault(json!({"status": 502, "body": "not json"}))
        .await
        .unwrap();
    let err = client_for(&sim)
        .job_info(&seeded_job_id(0))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Server { status: 502, .. }), "{err:?}");
    sim.stop().await;
}

#[tokio::test]
async fn a_drop_fault_breaks_the_connection_then_calls_recover() {
    let sim = start(1).await;
    let id = seeded_job_id(0);
    sim.control()
        .set_fault(json!({"drop": true, "count": 1}))
        .await
        .unwrap();

    let client = client_for(&sim);
    let err = client.job_info(&id).await.unwrap_err();
    assert!(
        matches!(err, Error::Connect(_) | Error::Malformed(_)),
        "{err:?}"
    );
    let info = client.job_info(&id).await.unwrap();
    assert_eq!(info.job_name.as_deref(), Some("sim-job-0000"));

    let stats = sim.control().stats().await.unwrap();
    assert_eq!(stats["dropped"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn a_delay_only_fault_delays_then_serves_normally() {
    let sim = start(1).await;
    sim.control()
        .set_fault(json!({"delay_ms": 150, "count": 1}))
        .await
        .unwrap();

    let started = Instant::now();
    let (status, _) = info_of(&sim, seeded_job_id(0).as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));

    sim.control()
        .set_fault(json!({"delay_ms": 2000}))
        .await
        .unwrap();
    let quick = Client::new(
        &sim.base_url(),
        Auth::Token(Secret::new(DEFAULT_TOKEN)),
        Duration::from_millis(200),
    )
    .unwrap();
    let err = quick.job_info(&seeded_job_id(0)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    sim.control().clear_faults().await.unwrap();
    let (status, _) = info_of(&sim, seeded_job_id(0).as_str()).await;
    assert_eq!(status, StatusCode::OK);
    sim.stop().await;
}

#[tokio::test]
async fn faults_apply_to_the_api_only_never_to_the_control_api() {
    let sim = start(1).await;
    let control = sim.control();
    control.set_fault(json!({"status": 503})).await.unwrap();
    assert_eq!(control.jobs().await.unwrap().len(), 1);
    let faults = control.faults().await.unwrap();
    assert_eq!(faults["faults"][0]["status"], 503);

    let (status, body) = info_of(&sim, seeded_job_id(0).as_str()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error_code"], "CB.00060100");

    let refused = control
        .set_fault(json!({"status": 500, "delay": 1}))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400));
    sim.stop().await;
}

#[tokio::test]
async fn a_deleted_job_answers_404() {
    let sim = start(2).await;
    let id = seeded_job_id(1);
    let control = sim.control();

    control.delete_job(id.as_str()).await.unwrap();
    let (status, _) = info_of(&sim, id.as_str()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(control.jobs().await.unwrap().len(), 1);
    let again = control.delete_job(id.as_str()).await.unwrap_err();
    assert_eq!(again.status(), Some(404));
    sim.stop().await;
}

#[tokio::test]
async fn stats_count_every_api_call_by_status_but_not_control_calls() {
    let sim = start(1).await;
    let control = sim.control();
    let id = seeded_job_id(0);

    info_of(&sim, id.as_str()).await;
    info_of(&sim, id.as_str()).await;
    info_of(&sim, &"0".repeat(32)).await;
    get_info(&sim, id.as_str(), None).await;
    control
        .set_fault(json!({"status": 500, "count": 1}))
        .await
        .unwrap();
    info_of(&sim, id.as_str()).await;

    let stats = control.stats().await.unwrap();
    assert_eq!(stats["requests"], 5);
    assert_eq!(
        stats["by_status"],
        json!({"200": 2, "401": 1, "404": 1, "500": 1})
    );
    assert_eq!(stats["dropped"], 0);
    assert_eq!(stats["jobs"], 1);

    control.reset_stats().await.unwrap();
    assert_eq!(control.stats().await.unwrap()["requests"], 0);
    sim.stop().await;
}

#[tokio::test]
async fn seeded_ids_are_deterministic_32_char_hex() {
    let id = seeded_job_id(0);
    assert_eq!(id, seeded_job_id(0));
    assert_ne!(id, seeded_job_id(1));
    assert_eq!(id.as_str().len(), 32);
    assert!(
        id.as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(seeded_job_ids(3)[2], seeded_job_id(2));
    assert_eq!(seeded_job_name(1), "sim-job-0001");

    let extra = JobId::parse(DOC_ID).unwrap();
    let sim = spawn(SimConfig {
        jobs: 2,
        job_ids: vec![extra.clone()],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let ids: Vec<Value> = sim
        .control()
        .jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|job| job["id"].clone())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&json!(extra.as_str())));
    sim.stop().await;
}

#[tokio::test]
async fn the_crate_client_parses_the_simulator_into_the_expected_job_info() {
    let sim = start(0).await;
    let id = JobId::parse(DOC_ID).unwrap();
    sim.control()
        .put_job(id.as_str(), documented_result())
        .await
        .unwrap();

    let info = client_for(&sim).job_info(&id).await.unwrap();
    let expected = JobInfo {
        id: Some(DOC_ID.to_owned()),
        project_id: Some("85caf40575794f989920-5216d1148af6".to_owned()),
        job_name: Some("jobname".to_owned()),
        last_build_status: Some("success".to_owned()),
        last_build_time: Some(1_721_793_407_000),
        health_score: Some(74),
        disabled: Some(false),
        running_status: Some("Finished".to_owned()),
        build_time: Some("27.51".to_owned()),
        charge_time: Some("15.17".to_owned()),
        create_time: Some(1_717_574_458_000),
        source_code: Some("test".to_owned()),
        favorite: Some(false),
        new_build: Some(false),
        project_permission_switch: Some(true),
        is_copy: Some(true),
        is_delete: Some(true),
        is_execute: Some(true),
        is_forbidden: Some(true),
        is_manager: Some(true),
        is_modify: Some(true),
        is_view: Some(true),
    };
    assert_eq!(info, expected);
    sim.stop().await;
}

#[tokio::test]
async fn the_crate_client_classifies_simulator_errors() {
    let sim = start(1).await;
    let client = client_for(&sim);
    let id = seeded_job_id(0);

    sim.control()
        .set_fault(json!({"status": 500, "count": 1}))
        .await
        .unwrap();
    let err = client.job_info(&id).await.unwrap_err();
    assert!(matches!(err, Error::Server { status: 500, .. }), "{err:?}");
    assert!(err.request_id().is_some(), "the X-Request-Id is kept");

    let unknown = JobId::parse(&"9".repeat(32)).unwrap();
    let err = client.job_info(&unknown).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");

    sim.control()
        .put_job(id.as_str(), json!({"_sim_forbidden": true}))
        .await
        .unwrap();
    let err = client.job_info(&id).await.unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");

    sim.control()
        .put_job(
            id.as_str(),
            json!({"_sim_forbidden": false, "_sim_fail": "busy"}),
        )
        .await
        .unwrap();
    let err = client.job_info(&id).await.unwrap_err();
    assert!(matches!(err, Error::Failed(_)), "{err:?}");

    let stale = Client::new(
        &sim.base_url(),
        Auth::Token(Secret::new("stale")),
        Duration::from_secs(5),
    )
    .unwrap();
    let err = stale.job_info(&id).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");
    sim.stop().await;
}

#[tokio::test]
async fn unknown_api_paths_get_the_gateway_404_with_a_request_id() {
    let sim = start(0).await;
    let response = reqwest::Client::new()
        .get(format!("{}/v3/jobs/x/history", sim.base_url()))
        .header("X-Auth-Token", DEFAULT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "APIGW.0101");
    sim.stop().await;
}

#[tokio::test]
async fn ten_thousand_seeded_jobs_are_served_concurrently() {
    let sim = start(10_000).await;
    let client = client_for(&sim);
    let mut calls = tokio::task::JoinSet::new();
    for i in (0..10_000).step_by(50) {
        let client = client.clone();
        calls.spawn(async move { client.job_info(&seeded_job_id(i)).await });
    }
    let mut ok = 0;
    while let Some(done) = calls.join_next().await {
        assert!(done.unwrap().is_ok());
        ok += 1;
    }
    assert_eq!(ok, 200);
    assert_eq!(sim.control().stats().await.unwrap()["jobs"], 10_000);
    sim.stop().await;
}

const IAM_PASSWORD: &str = "pa55:w/ord";

async fn start_with_identity(ttl: Duration) -> SimHandle {
    spawn(SimConfig {
        jobs: 1,
        iam_users: vec![format!("acme/bot:{IAM_PASSWORD}").parse().unwrap()],
        token_ttl: ttl,
        aksk: Some(("AKSIM".to_owned(), "sk-sim-secret".to_owned())),
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts on loopback")
}

/// `POST /v3/auth/tokens?nocatalog=true` as the bot sends it; the token and the body.
async fn obtain_token(sim: &SimHandle, password: &str) -> (StatusCode, Option<String>, Value) {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "bot", "password": password, "domain": {"name": "acme"}}}},
        "scope": {"project": {"name": "cn-north-4"}}}});
    let response = reqwest::Client::new()
        .post(format!("{}/v3/auth/tokens?nocatalog=true", sim.base_url()))
        .json(&body)
        .send()
        .await
        .expect("the simulator answers");
    let status = response.status();
    let token = response
        .headers()
        .get("x-subject-token")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, token, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn an_issued_token_works_until_its_lifetime_ends_then_gets_the_gateways_401() {
    let sim = start_with_identity(Duration::from_millis(1500)).await;
    let id = seeded_job_id(0);
    let (status, token, body) = obtain_token(&sim, IAM_PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = token.expect("X-Subject-Token carries the token");
    assert!(body["token"]["expires_at"].as_str().unwrap().ends_with('Z'));

    let ok = get_info(&sim, id.as_str(), Some(&token)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let listed = sim.control().tokens().await.unwrap();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["tokens"][0]["token"], token.as_str());
    assert_eq!(listed["tokens"][0]["user"], "bot");

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let expired = get_info(&sim, id.as_str(), Some(&token)).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let body: Value = expired.json().await.unwrap();
    assert_eq!(body["error_code"], "APIGW.0301");
    assert_eq!(
        body["error_msg"],
        "Incorrect IAM authentication information: token expires"
    );
    assert!(body["request_id"].is_string());
    let stats = sim.control().stats().await.unwrap();
    assert_eq!(
        (&stats["token_requests"], &stats["tokens_issued"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(stats["tokens_active"], 0);
    sim.stop().await;
}

#[tokio::test]
async fn a_wrong_password_gets_iams_401_and_no_token() {
    let sim = start_with_identity(Duration::from_secs(60)).await;
    let (status, token, body) = obtain_token(&sim, "pa55").await;
    assert_eq!((status, token), (StatusCode::UNAUTHORIZED, None));
    assert_eq!(
        body["error"]["message"],
        "The username or password is wrong."
    );
    assert_eq!(sim.control().stats().await.unwrap()["token_refusals"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn revoked_tokens_are_refused_while_the_static_token_keeps_working() {
    let sim = start_with_identity(Duration::from_secs(3600)).await;
    let id = seeded_job_id(0);
    let (_, token, _) = obtain_token(&sim, IAM_PASSWORD).await;
    let token = token.unwrap();
    let control = sim.control();

    assert_eq!(control.revoke_tokens().await.unwrap(), 1);
    assert_eq!(control.tokens().await.unwrap()["total"], 0);
    let revoked = get_info(&sim, id.as_str(), Some(&token)).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    let body: Value = revoked.json().await.unwrap();
    assert_eq!(body["error_code"], "APIGW.0301");
    let (status, _) = info_of(&sim, id.as_str()).await;
    assert_eq!(status, StatusCode::OK, "the static token is never revoked");
    assert_eq!(control.revoke_tokens().await.unwrap(), 0);
    sim.stop().await;
}

#[tokio::test]
async fn the_control_api_takes_only_the_static_token() {
    let sim = start_with_identity(Duration::from_secs(3600)).await;
    let (_, token, _) = obtain_token(&sim, IAM_PASSWORD).await;
    let refused = Control::new(&sim.base_url(), &token.unwrap())
        .stats()
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(401));
    sim.stop().await;
}

fn aksk_client(sim: &SimHandle, sk: &str) -> Client {
    use crate::codearts::auth::{AkSk, AkSkSettings};
    Client::new(
        &sim.base_url(),
        Auth::AkSk(AkSk::new(AkSkSettings {
            ak: "AKSIM".to_owned(),
            sk: Secret::new(sk),
            project_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".to_owned(),
            security_token: Some(Secret::new("temporary-security-token")),
        })),
        Duration::from_secs(5),
    )
    .expect("a client")
}

#[tokio::test]
async fn the_crate_clients_aksk_signature_is_accepted_and_a_wrong_sk_is_refused() {
    let sim = start_with_identity(Duration::from_secs(3600)).await;
    let id = seeded_job_id(0);
    let info = aksk_client(&sim, "sk-sim-secret")
        .job_info(&id)
        .await
        .expect("a correctly signed call is served");
    assert_eq!(info.job_name.as_deref(), Some("sim-job-0000"));

    let refused = aksk_client(&sim, "sk-wrong")
        .job_info(&id)
        .await
        .unwrap_err();
    match &refused {
        Error::Unauthorized(e) => {
            assert_eq!(e.code.as_deref(), Some("APIGW.0301"));
            assert_eq!(
                e.message.as_deref(),
                Some("Incorrect IAM authentication information: verify aksk signature fail")
            );
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    let stats = sim.control().stats().await.unwrap();
    assert_eq!(stats["aksk_failures"], 1);
    assert_eq!(stats["aksk_locked"], false);
    sim.stop().await;
}

#[tokio::test]
async fn a_signature_dated_sixteen_minutes_ago_gets_apigw_0303() {
    use crate::codearts::signer::{self, SignableRequest};
    let sim = start_with_identity(Duration::from_secs(3600)).await;
    let id = seeded_job_id(0);
    let host = sim.addr().to_string();
    let date = (chrono::Utc::now() - chrono::Duration::minutes(16))
        .format(signer::DATE_FORMAT)
        .to_string();
    let path = format!("/v1/job/{id}/info");
    let signed = vec![
        ("host".to_owned(), host),
        ("x-sdk-date".to_owned(), date.clone()),
    ];
    let authorization = signer::authorization(
        "AKSIM",
        "sk-sim-secret",
        &SignableRequest {
            method: "GET",
            path: &path,
            query: &[],
            headers: &signed,
            body: b"",
        },
    );
    let response = reqwest::Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .header("X-Sdk-Date", &date)
        .header("Authorization", authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], "APIGW.0303");
    let message = body["error_msg"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Incorrect app authentication information: signature expired, signature time:{date},server time:"
        )),
        "{message}"
    );
    sim.stop().await;
}

// ---- Job listings: ListProjectJobs, ListJob, and by_api ----

/// `GET {path}` with the static token (or none); status and JSON body.
async fn api_get(
    sim: &SimHandle,
    path_and_query: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path_and_query}", sim.base_url()));
    if let Some(token) = token {
        request = request.header("X-Auth-Token", token);
    }
    let response = request.send().await.expect("the simulator answers");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

async fn start_spread(jobs: usize, projects: usize) -> SimHandle {
    spawn(SimConfig {
        jobs,
        projects,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts on loopback")
}

#[tokio::test]
async fn list_project_jobs_answers_the_sdk_job_shape_from_the_jobs_fields() {
    let sim = start(3).await;
    let project = seeded_project_id(0);
    let control = sim.control();
    let id = seeded_job_id(1);
    control
        .put_job(id.as_str(), json!({"health_score": 42, "disabled": true}))
        .await
        .unwrap();
    let (status, body) = api_get(
        &sim,
        &format!("/v1/job/{project}/list"),
        Some(DEFAULT_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 3);
    let jobs = body["jobs"].as_array().unwrap();
    let stored = control.job(id.as_str()).await.unwrap();
    let entry = jobs.iter().find(|j| j["id"] == id.as_str()).unwrap();
    for key in [
        "job_name",
        "last_build_status",
        "health_score",
        "disabled",
        "last_build_time",
    ] {
        assert_eq!(entry[key], stored[key], "{key}");
    }
    assert_eq!(entry["health_score"], 42);
    assert_eq!(entry["disabled"], true);
    for key in [
        "last_build_user",
        "last_build_user_id",
        "trigger_type",
        "is_finished",
        "last_job_running_status",
        "build_project_id",
        "scm_web_url",
        "scm_type",
        "repo_id",
        "source_code",
        "is_copy",
        "is_delete",
        "is_execute",
        "is_forbidden",
        "is_modify",
        "is_view",
        "favorite",
        "job_creator",
        "user_name",
    ] {
        assert!(entry.get(key).is_some(), "{key} missing from {entry}");
    }
    assert!(
        entry["build_time"].is_number(),
        "the SDK declares build_time a number"
    );
    assert!(entry.get("project_id").is_none(), "Job has no project_id");
    assert!(entry.get("_sim_forbidden").is_none());
    sim.stop().await;
}

#[tokio::test]
async fn list_job_answers_the_envelope_across_projects() {
    let sim = start_spread(7, 3).await;
    let (status, body) = api_get(
        &sim,
        "/v1/job/list?page_index=0&page_size=100",
        Some(DEFAULT_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "success");
    assert_eq!(body["result"]["total"], 7);
    let list = body["result"]["job_list"].as_array().unwrap();
    assert_eq!(list.len(), 7);
    for entry in list {
        for key in [
            "id",
            "job_name",
            "last_build_status",
            "health_score",
            "disabled",
            "last_build_time",
            "project_id",
            "project_name",
            "code_branch",
            "commit_id",
            "commit_detail_url",
            "build_number",
            "forbidden_msg",
            "tag",
            "nick_name",
            "build_type",
        ] {
            assert!(entry.get(key).is_some(), "{key} missing from {entry}");
        }
    }
    let projects: std::collections::BTreeSet<&str> = list
        .iter()
        .map(|e| e["project_id"].as_str().unwrap())
        .collect();
    assert_eq!(projects.len(), 3);
    let ids: Vec<&str> = list.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "ordered by job id");
    sim.stop().await;
}

#[tokio::test]
async fn paging_250_jobs_gives_three_pages_without_duplicates_or_gaps() {
    let sim = start(250).await;
    let project = seeded_project_id(0);
    let mut expected: Vec<String> = seeded_job_ids(250)
        .iter()
        .map(|id| id.as_str().to_owned())
        .collect();
    expected.sort_unstable();
    for list_job in [false, true] {
        let mut seen = Vec::new();
        let mut pages = 0;
        for index in 0.. {
            let path = if list_job {
                format!("/v1/job/list?page_index={index}&page_size=100")
            } else {
                format!("/v1/job/{project}/list?page_index={index}&page_size=100")
            };
            let (status, body) = api_get(&sim, &path, Some(DEFAULT_TOKEN)).await;
            assert_eq!(status, StatusCode::OK);
            let (jobs, total) = if list_job {
                (&body["result"]["job_list"], &body["result"]["total"])
            } else {
                (&body["jobs"], &body["total"])
            };
            assert_eq!(*total, 250);
            let jobs = jobs.as_array().unwrap();
            if jobs.is_empty() {
                break;
            }
            pages += 1;
            seen.extend(jobs.iter().map(|j| j["id"].as_str().unwrap().to_owned()));
        }
        assert_eq!(pages, 3, "list_job={list_job}");
        assert_eq!(
            seen, expected,
            "every job once, in id order (list_job={list_job})"
        );
    }
    sim.stop().await;
}

#[tokio::test]
async fn bad_page_parameters_are_refused_as_invalid_parameters() {
    let sim = start(1).await;
    let project = seeded_project_id(0);
    for query in [
        "page_size=101",
        "page_size=0",
        "page_index=x",
        "page_index=-1",
    ] {
        for path in [
            format!("/v1/job/{project}/list?{query}"),
            format!("/v1/job/list?{query}"),
        ] {
            let (status, body) = api_get(&sim, &path, Some(DEFAULT_TOKEN)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(
                body,
                json!({"error_code": "CB.00060200", "error_msg": "invalid parameter"}),
                "{path}"
            );
        }
    }
    let (status, _) = api_get(&sim, "/v1/job/bad.project/list", Some(DEFAULT_TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sim.stop().await;
}

#[tokio::test]
async fn list_calls_need_credentials_and_faults_apply_to_them() {
    let sim = start_with_identity(Duration::from_secs(3600)).await;
    let project = seeded_project_id(0);
    for path in [format!("/v1/job/{project}/list"), "/v1/job/list".to_owned()] {
        let (status, body) = api_get(&sim, &path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["error_code"], "APIGW.0301");
        assert!(body["request_id"].is_string());
    }
    sim.control()
        .set_fault(json!({"status": 503, "count": 2}))
        .await
        .unwrap();
    for path in [format!("/v1/job/{project}/list"), "/v1/job/list".to_owned()] {
        let (status, body) = api_get(&sim, &path, Some(DEFAULT_TOKEN)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(body["error_code"], "CB.00060100");
    }
    let (status, _) = api_get(&sim, "/v1/job/list", Some(DEFAULT_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "the fault is used up");
    sim.stop().await;
}

#[tokio::test]
async fn an_aksk_signed_list_call_with_a_query_is_accepted() {
    use crate::codearts::signer::{self, SignableRequest};
    let sim = start_with_identity(Duration::from_secs(3600)).await;
    let date = chrono::Utc::now().format(signer::DATE_FORMAT).to_string();
    let path = format!("/v1/job/{}/list", seeded_project_id(0));
    let query = vec![
        ("page_index".to_owned(), "0".to_owned()),
        ("page_size".to_owned(), "100".to_owned()),
    ];
    let signed = vec![
        ("host".to_owned(), sim.addr().to_string()),
        ("x-sdk-date".to_owned(), date.clone()),
    ];
    let authorization = signer::authorization(
        "AKSIM",
        "sk-sim-secret",
        &SignableRequest {
            method: "GET",
            path: &path,
            query: &query,
            headers: &signed,
            body: b"",
        },
    );
    let response = reqwest::Client::new()
        .get(format!(
            "{}{path}?page_index=0&page_size=100",
            sim.base_url()
        ))
        .header("X-Sdk-Date", &date)
        .header("Authorization", authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["total"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn forbidden_and_deleted_jobs_are_absent_from_lists() {
    let sim = start(4).await;
    let control = sim.control();
    control
        .put_job(seeded_job_id(0).as_str(), json!({"_sim_forbidden": true}))
        .await
        .unwrap();
    control.delete_job(seeded_job_id(1).as_str()).await.unwrap();
    control
        .put_job(
            seeded_job_id(2).as_str(),
            json!({"_sim_remove": ["health_score"]}),
        )
        .await
        .unwrap();
    let (_, body) = api_get(&sim, "/v1/job/list", Some(DEFAULT_TOKEN)).await;
    assert_eq!(body["result"]["total"], 2);
    let list = body["result"]["job_list"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&seeded_job_id(0).as_str()));
    assert!(!ids.contains(&seeded_job_id(1).as_str()));
    let removed = list
        .iter()
        .find(|e| e["id"] == seeded_job_id(2).as_str())
        .unwrap();
    assert!(
        removed.get("health_score").is_none(),
        "a removed field is left out"
    );
    sim.stop().await;
}

#[tokio::test]
async fn projects_spread_seeded_jobs_round_robin_over_deterministic_ids() {
    assert_eq!(seeded_project_id(0), "5a1e2d3c4b5a69788796-a5b4c3d2e1f0");
    assert_eq!(seeded_project_id(2), seeded_project_id(2));
    assert_ne!(seeded_project_id(1), seeded_project_id(2));
    assert!(crate::codearts::listing::check_project_id(&seeded_project_id(7)).is_ok());

    let sim = start_spread(10, 3).await;
    let mut sum = 0;
    for p in 0..3 {
        let project = seeded_project_id(p);
        let (status, body) = api_get(
            &sim,
            &format!("/v1/job/{project}/list?page_size=100"),
            Some(DEFAULT_TOKEN),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let expected: Vec<String> = (0..10)
            .filter(|i| i % 3 == p)
            .map(seeded_job_name)
            .collect();
        let mut names: Vec<String> = body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["job_name"].as_str().unwrap().to_owned())
            .collect();
        names.sort_unstable();
        assert_eq!(names, expected, "project {p}");
        assert_eq!(body["total"], expected.len());
        sum += expected.len();
        // ShowJobInfo agrees on the project.
        let (_, info) = info_of(&sim, seeded_job_id(p).as_str()).await;
        assert_eq!(info["result"]["project_id"], project.as_str());
    }
    assert_eq!(sum, 10);
    let (_, body) = api_get(
        &sim,
        &format!("/v1/job/{}/list", seeded_project_id(3)),
        Some(DEFAULT_TOKEN),
    )
    .await;
    assert_eq!(
        body,
        json!({"jobs": [], "total": 0}),
        "a project with no jobs"
    );
    sim.stop().await;
}

#[tokio::test]
async fn by_api_counts_calls_per_operation() {
    let sim = start(2).await;
    let control = sim.control();
    let project = seeded_project_id(0);
    info_of(&sim, seeded_job_id(0).as_str()).await;
    api_get(
        &sim,
        &format!("/v1/job/{project}/list"),
        Some(DEFAULT_TOKEN),
    )
    .await;
    api_get(
        &sim,
        &format!("/v1/job/{project}/list?page_size=101"),
        Some(DEFAULT_TOKEN),
    )
    .await;
    api_get(&sim, "/v1/job/list", None).await;
    api_get(&sim, &format!("/v3/{project}/jobs"), Some(DEFAULT_TOKEN)).await;
    api_get(&sim, "/v1/nothing/here", Some(DEFAULT_TOKEN)).await;

    let by_api = control.by_api().await.unwrap();
    let called: std::collections::BTreeMap<String, u64> = [
        ("ShowJobInfo", 1),
        ("ListProjectJobs", 2),
        ("ListJob", 1),
        ("ShowJobListByProjectId", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (name, count) in &by_api {
        assert_eq!(count, called.get(name).unwrap_or(&0), "{name}");
    }
    assert_eq!(
        by_api.len(),
        stats::Api::ALL.len(),
        "every operation is named"
    );
    let stats = control.stats().await.unwrap();
    assert_eq!(stats["requests"], 6, "unknown paths count in requests only");
    assert_eq!(
        stats["by_status"],
        json!({"200": 3, "400": 1, "401": 1, "404": 1})
    );
    assert_eq!(stats["jobs"], 2);
    assert_eq!(stats["faults_armed"], 0);

    control.reset_stats().await.unwrap();
    assert!(control.by_api().await.unwrap().values().all(|n| *n == 0));
    sim.stop().await;
}
