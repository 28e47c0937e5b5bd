//! Several `run` processes on one database (issue #16, docs/ha.md): one leads (polls, alerts,
//! sends), the others answer HTTP; a killed leader is replaced within a lease and a poll
//! interval, and no transition is alerted twice. Each scenario runs on a shared SQLite file
//! and on PostgreSQL (`ha::<scenario>::sqlite`, `ha::<scenario>::postgres`); a PostgreSQL
//! restart under the replicas runs on a cluster of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::harness::{BIN, BotToml, Env, Running, start_bot};
use crate::support::postgres::Cluster;

const SLACK_SECRET: &str = "slack-signing-secret-for-ha-tests";
const LEASE_SECS: u64 = 3;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A replica's config: the shared database and webhook, its own HTTP port.
fn replica(env: &Env, jobs: usize, port: u16) -> BotToml {
    env.toml()
        .poll("schedule = \"* * * * * *\"\ntimeout_secs = 5")
        .delivery("group_wait_ms = 100\ninitial_backoff_secs = 1\nmax_backoff_secs = 1")
        .http(Some(&format!("listen = \"127.0.0.1:{port}\"")))
        .jobs(jobs)
        .webhook("hooks", &env.capture.url("/hook"), "")
        .table(&format!(
            "[ha]\nlease_secs = {LEASE_SECS}\n[slack]\nsigning_secret = \"{SLACK_SECRET}\""
        ))
}

/// One config file per replica (each in its own folder), all on the shared database.
fn configs(env: &Env, jobs: usize, ports: &[u16]) -> Vec<String> {
    ports
        .iter()
        .enumerate()
        .map(|(i, &port)| {
            let dir = env.dir.path().join(format!("r{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            replica(env, jobs, port).write(&dir)
        })
        .collect()
}

async fn readyz(port: u16) -> Option<Value> {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        // Without its database a replica answers after its 2-second ping times out.
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// The port of the replica that leads, waiting up to `limit` for one to.
async fn leader(ports: &[u16], limit: Duration) -> u16 {
    let deadline = Instant::now() + limit;
    loop {
        for &port in ports {
            if readyz(port).await.is_some_and(|r| r["role"] == "leader") {
                return port;
            }
        }
        assert!(Instant::now() < deadline, "no replica leads");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The webhook deliveries received so far, per job: the distinct event ids, and all of them.
fn received(env: &Env) -> (BTreeMap<String, BTreeSet<String>>, usize) {
    let requests = env.capture.requests();
    let mut by_job: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.path == "/hook") {
        let body = r.json();
        assert_eq!(body["event"], "build_failed", "nothing else is invented");
        by_job
            .entry(body["job_id"].as_str().unwrap().to_owned())
            .or_default()
            .insert(body["id"].as_str().unwrap().to_owned());
    }
    (by_job, requests.len())
}

async fn until_received(env: &Env, jobs: usize, limit: Duration) -> Duration {
    let started = Instant::now();
    while received(env).0.len() < jobs {
        assert!(
            started.elapsed() < limit,
            "only {} of {jobs} alerts within {limit:?}",
            received(env).0.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// A signed Slack `/job <id>` to the replica on `port`.
async fn slack_job(port: u16, id: &str) -> Value {
    let body = serde_urlencoded::to_string([
        ("team_id", "T1"),
        ("channel_id", "C1"),
        ("user_id", "U1"),
        ("command", "/job"),
        ("text", id),
    ])
    .unwrap();
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(SLACK_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let signature = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/slack/commands"))
        .header("x-slack-signature", signature)
        .header("x-slack-request-timestamp", ts)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A scenario on an env of `$jobs` jobs, once with the store on SQLite and once on PostgreSQL
/// (a scratch database on the test server; skipped without one, except under CI).
macro_rules! on_both_backends {
    ($scenario:ident, $jobs:expr) => {
        mod $scenario {
            use crate::support::harness::Env;
            use codearts_bot::store::scratch::ScratchDb;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(Env::start($jobs).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(server) =
                    ScratchDb::server_or_skip(concat!("ha::", stringify!($scenario)))
                {
                    super::$scenario(Env::start($jobs).await.on_postgres(&server).await).await;
                }
            }
        }
    };
}

on_both_backends!(
    two_replicas_alert_each_change_once_and_the_follower_answers_chat,
    50
);
on_both_backends!(
    the_leader_killed_mid_burst_is_replaced_and_nothing_is_lost_or_doubled,
    200
);
on_both_backends!(
    a_leader_paused_past_its_lease_sends_nothing_when_it_resumes,
    20
);

async fn two_replicas_alert_each_change_once_and_the_follower_answers_chat(env: Env) {
    const JOBS: usize = 50;
    let ports = [free_port(), free_port()];
    let a = start_bot(replica(&env, JOBS, ports[0]).config()).await;
    let b = start_bot(replica(&env, JOBS, ports[1]).config()).await;
    let (ra, rb) = (Running::start(&a), Running::start(&b));
    let lead = leader(&ports, Duration::from_secs(10)).await;
    let follower = if lead == ports[0] { ports[1] } else { ports[0] };
    // The leader's first cycle records the baseline.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    for i in 0..JOBS {
        env.fail(&env.job(i), 9_000_000_000_000 + i as i64).await;
    }
    until_received(&env, JOBS, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // anything more would come now
    let (by_job, requests) = received(&env);
    assert_eq!(by_job.len(), JOBS);
    assert!(by_job.values().all(|ids| ids.len() == 1), "{by_job:?}");
    assert_eq!(requests, JOBS, "each alert delivered once");

    // The follower is ready (it answers chat), says who leads, and answers /job.
    let state = readyz(follower).await.unwrap();
    assert_eq!(state["role"], "follower", "{state}");
    assert_eq!(state["ready"], true, "{state}");
    assert!(state["leader"]["holder"].is_string(), "{state}");
    let card = slack_job(follower, &env.job(0)).await;
    assert!(card["blocks"].is_array(), "{card}");
    assert!(card.to_string().contains("failed"), "{card}");

    ra.stop().await;
    rb.stop().await;
}

/// `codearts-bot run` as a child process, killed on drop.
struct Replica(Child);

impl Replica {
    fn start(config: &str) -> Self {
        Self(
            Command::new(BIN)
                .args(["run", "--config", config])
                .env(
                    "RUST_LOG",
                    std::env::var("HA_LOG").unwrap_or("error".into()),
                )
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        )
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn the_leader_killed_mid_burst_is_replaced_and_nothing_is_lost_or_doubled(env: Env) {
    const JOBS: usize = 200;
    let ports = [free_port(), free_port()];
    let mut replicas: Vec<Option<Replica>> = configs(&env, JOBS, &ports)
        .iter()
        .map(|c| Some(Replica::start(c)))
        .collect();
    let lead = leader(&ports, Duration::from_secs(15)).await;
    let lead_index = ports.iter().position(|&p| p == lead).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await; // the baseline cycle

    // Each delivery takes 10 ms at the receiver, so the burst is still going at the kill.
    env.capture.script(vec![
        crate::support::capture::Reply::status(200)
            .after(Duration::from_millis(10));
        JOBS * 2
    ]);
    for i in 0..JOBS {
        env.fail(&env.job(i), 9_000_000_000_000 + i as i64).await;
    }
    while received(&env).0.len() < 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    replicas[lead_index].take().unwrap().signal("KILL");
    let killed = Instant::now();
    let survivor = ports[1 - lead_index];
    leader(&[survivor], Duration::from_secs(30)).await;
    let took_over = killed.elapsed();
    until_received(&env, JOBS, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (by_job, requests) = received(&env);
    assert_eq!(by_job.len(), JOBS, "every alert arrived");
    let doubled: Vec<_> = by_job.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        doubled.is_empty(),
        "a transition alerted twice: {doubled:?}"
    );
    assert!(
        requests <= JOBS + 1,
        "only the delivery in flight at the kill may come twice (with its id): {requests}"
    );
    eprintln!(
        "leader SIGKILLed after {} deliveries: the follower led {:.2} s later; {requests} requests for {JOBS} alerts",
        20,
        took_over.as_secs_f64()
    );
    assert!(
        took_over <= Duration::from_secs(LEASE_SECS + 2),
        "failover within the lease and a poll interval: {took_over:?}"
    );
    drop(replicas);
}

async fn a_leader_paused_past_its_lease_sends_nothing_when_it_resumes(env: Env) {
    const JOBS: usize = 20;
    let ports = [free_port(), free_port()];
    let replicas: Vec<Replica> = configs(&env, JOBS, &ports)
        .iter()
        .map(|c| Replica::start(c))
        .collect();
    let lead = leader(&ports, Duration::from_secs(15)).await;
    let lead_index = ports.iter().position(|&p| p == lead).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await; // the baseline cycle

    // Paused for two lease periods; meanwhile every job fails.
    replicas[lead_index].signal("STOP");
    for i in 0..JOBS {
        env.fail(&env.job(i), 9_000_000_000_000 + i as i64).await;
    }
    let survivor = ports[1 - lead_index];
    leader(&[survivor], Duration::from_secs(30)).await;
    until_received(&env, JOBS, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2 * LEASE_SECS).saturating_sub(Duration::from_secs(2)))
        .await;

    // Resumed: its term is over; it must find that out before it polls or sends.
    replicas[lead_index].signal("CONT");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (by_job, requests) = received(&env);
    assert_eq!(by_job.len(), JOBS);
    assert!(by_job.values().all(|ids| ids.len() == 1), "{by_job:?}");
    assert_eq!(requests, JOBS, "the resumed replica sent nothing");
    let state = readyz(lead).await.expect("the resumed replica answers");
    assert_eq!(state["role"], "follower", "{state}");
    drop(replicas);
}

/// Whether the replica on `port` answers `/readyz` as not ready because of the database.
async fn not_ready_for_the_database(port: u16) -> bool {
    readyz(port).await.is_some_and(|r| {
        r["ready"] == false
            && r["problems"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p.as_str().is_some_and(|p| p.starts_with("database")))
            })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_the_replicas_loses_and_invents_nothing() {
    const JOBS: usize = 20;
    const FAILED: usize = 10;
    // Declared first, dropped last: the scratch database goes before its server.
    let Some(cluster) = Cluster::start_or_skip("ha::postgres_restarted_under_the_replicas") else {
        return;
    };
    let env = Env::start(JOBS).await.on_postgres(cluster.url()).await;
    let ports = [free_port(), free_port()];
    let replicas: Vec<Replica> = configs(&env, JOBS, &ports)
        .iter()
        .map(|c| Replica::start(c))
        .collect();
    leader(&ports, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await; // the baseline cycle

    // The database goes away for two lease periods; meanwhile half the jobs fail.
    cluster.pause();
    let deadline = Instant::now() + Duration::from_secs(15);
    for port in ports {
        while !not_ready_for_the_database(port).await {
            assert!(
                Instant::now() < deadline,
                "replica :{port} still says ready without its database"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for i in 0..FAILED {
        env.fail(&env.job(i), 9_000_000_000_000 + i as i64).await;
    }
    tokio::time::sleep(Duration::from_secs(2 * LEASE_SECS)).await;
    assert!(
        received(&env).0.is_empty(),
        "nothing is sent without the database"
    );

    // Back: one replica leads again, every failure is alerted once, nothing else is sent.
    cluster.resume();
    leader(&ports, Duration::from_secs(30)).await;
    until_received(&env, FAILED, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (by_job, requests) = received(&env);
    assert_eq!(by_job.len(), FAILED);
    assert!(by_job.values().all(|ids| ids.len() == 1), "{by_job:?}");
    assert_eq!(
        requests, FAILED,
        "no false alert (e.g. source_unreachable) and no double"
    );
    for port in ports {
        let state = readyz(port).await.expect("answers");
        assert_eq!(state["database"], "ok", "{state}");
    }
    drop(replicas);
}
