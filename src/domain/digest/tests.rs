use chrono::TimeZone;

use super::*;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, h, m, 0).unwrap()
}

fn green_inputs() -> Inputs {
    Inputs {
        period: Period {
            from: Utc.with_ymd_and_hms(2026, 12, 1, 1, 0, 0).unwrap(),
            to: at(1, 0),
        },
        timezone: chrono_tz::Asia::Shanghai,
        failing: Vec::new(),
        flaky: Vec::new(),
        builds: vec![Build {
            job_name: "web".into(),
            project: Some("p1".into()),
            outcome: Outcome::Success,
            seconds: Some(65.0),
        }],
        failed_stages: Vec::new(),
        blind_since: None,
    }
}

fn build(job: &str, project: Option<&str>, outcome: Outcome, seconds: Option<f64>) -> Build {
    Build {
        job_name: job.into(),
        project: project.map(str::to_owned),
        outcome,
        seconds,
    }
}

#[test]
fn a_period_with_nothing_wrong_is_all_green() {
    let digest = super::build(&green_inputs(), at(1, 0));
    assert!(digest.green);
    assert_eq!(digest.title, "all green");
    assert_eq!(
        digest.summary(),
        "Period: 2026-12-01 09:00 → 2026-12-02 09:00 Asia/Shanghai (24h 00m)\n\
         Failing now: none\n\
         Success ratio: p1 100% (1 of 1)\n\
         Slowest builds: web 1m 05s"
    );
    let event = digest.event(at(1, 0));
    assert_eq!(event.kind, EventKind::Digest);
    assert!(event.job_id.is_empty(), "about no job in particular");
    assert_eq!(event.job_name, "all green");
}

#[test]
fn failing_flaky_ratios_slowest_and_stages_are_summed_up() {
    let mut inputs = green_inputs();
    inputs.failing = vec![
        Failing {
            job_name: "api".into(),
            since: at(0, 50),
            failed_builds: 1,
        },
        Failing {
            job_name: "web\nFailing now: forged".into(),
            since: Utc.with_ymd_and_hms(2026, 12, 1, 23, 0, 0).unwrap(),
            failed_builds: 3,
        },
    ];
    inputs.flaky = vec![Flaky {
        job_name: "nightly".into(),
        flips: 5,
        outcomes: "FSFSFFSSFS".into(),
    }];
    inputs.builds = vec![
        build("web", Some("p1"), Outcome::Failure, Some(600.0)),
        build("web", Some("p1"), Outcome::Success, Some(30.0)),
        build("api", Some("p2"), Outcome::Failure, None),
        build("api", Some("p2"), Outcome::Other, Some(7200.0)),
        build("lib", None, Outcome::Success, Some(5.0)),
    ];
    inputs.failed_stages = vec![
        "compile".into(),
        "test".into(),
        "compile".into(),
        " ".into(),
    ];
    inputs.blind_since = Some(at(0, 30));
    let digest = super::build(&inputs, at(1, 0));
    assert!(!digest.green);
    assert_eq!(digest.title, "2 failing · 1 flaky");
    let text = digest.summary();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1..],
        [
            "CodeArts: not reachable since 2026-12-02 08:30: what follows is as of then",
            // The longest failing first; a newline in a name cannot forge a section.
            "Failing now: 2: web Failing now: forged for 2h 00m (3 failed builds), \
             api for 10m 00s (1 failed build)",
            "Flaky: 1: nightly 5 flips (FSFSFFSSFS)",
            // The worst project first; the aborted build is not counted.
            "Success ratio: p2 0% (0 of 1), p1 50% (1 of 2), unknown project 100% (1 of 1)",
            "Slowest builds: api 2h 00m, web 10m 00s, web 30s, lib 5.0s",
            "Failed stages: compile ×2, test ×1",
        ]
    );
}

#[test]
fn failed_builds_that_were_fixed_are_not_green_and_long_lists_are_counted() {
    let mut inputs = green_inputs();
    inputs
        .builds
        .push(build("web", Some("p1"), Outcome::Failure, None));
    let digest = super::build(&inputs, at(1, 0));
    assert!(!digest.green, "a failure in the period is news");
    assert_eq!(digest.title, "1 failed build");

    inputs.failing = (0..25)
        .map(|i| Failing {
            job_name: format!("job-{i:02}"),
            since: at(0, 0),
            failed_builds: 1,
        })
        .collect();
    inputs.builds.clear();
    let text = super::build(&inputs, at(1, 0)).summary();
    assert!(
        text.contains("Failing now: 25: job-00 for 1h 00m (1 failed build)")
            && text.contains("job-09 for 1h 00m (1 failed build) and 15 more")
            && !text.contains("job-10"),
        "{text}"
    );
    assert!(
        text.contains("Success ratio: no finished builds in the period"),
        "{text}"
    );
    assert!(!text.contains("Slowest builds"), "{text}");
}
