//! Whole-file tests of the config: loading, defaults, expansion through every key, the
//! problems a file can have and the lines they point at, secrets kept out of every message.

use super::*;

/// The smallest valid file: a region and a static token.
pub(crate) const BASE: &str = r#"
    [codearts]
    region = "cn-north-4"
    [codearts.auth]
    token = "t"
"#;

/// [`BASE`] plus `extra`, parsed with no environment: shared by the section files' tests.
pub(crate) fn with(extra: &str) -> Result<Config, ConfigError> {
    Config::from_toml(&format!("{BASE}\n{extra}"), "test.toml", &|_| None)
}

const MINIMAL: &str = r#"
    [codearts]
    region = "cn-north-4"
    [codearts.auth]
    token = "${CODEARTS_TOKEN}"
    [[jobs]]
    id = "f5af662119404ad187437cd272b5099b"
    [[channels]]
    name = "ops"
    type = "webhook"
    url = "${HOOK_URL}"
    secret = "s3cret"
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "CODEARTS_TOKEN" => Some("tok-123".to_owned()),
        "HOOK_URL" => Some("https://example.invalid/hook?key=SECRETKEY".to_owned()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, "test.toml", &env)
}

#[test]
fn minimal_config_loads_with_defaults_and_expanded_secrets() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.codearts.auth.token.as_ref().unwrap().expose(), "tok-123");
    assert_eq!(c.poll.schedule, "0 * * * * *");
    assert_eq!(c.poll.concurrency, 8);
    assert_eq!(
        c.endpoint(),
        "https://cloudbuild-ext.cn-north-4.myhuaweicloud.com"
    );
    assert_eq!(c.job_ids().len(), 1);
    assert!(!format!("{c:?}").contains("tok-123"));
    assert!(!format!("{c:?}").contains("SECRETKEY"));
}

#[test]
fn unknown_key_is_named() {
    let err = load(&MINIMAL.replace("[[jobs]]", "colour = 1\n[[jobs]]")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("unknown field `colour`"), "{text}");
}

#[test]
fn missing_env_var_is_named() {
    let err = load(&MINIMAL.replace("CODEARTS_TOKEN", "NOPE_TOKEN")).unwrap_err();
    assert!(
        err.to_string()
            .contains("codearts.auth.token: environment variable NOPE_TOKEN is not set"),
        "{err}"
    );
}

#[test]
fn bad_cron_bad_job_id_and_unknown_channel_are_all_reported() {
    let text = MINIMAL
        .replace("[[jobs]]", "[poll]\nschedule = \"*/5 * * * *\"\n[[jobs]]")
        .replace("f5af662119404ad187437cd272b5099b", "not-an-id")
        .replace("[[channels]]", "channels = [\"nope\"]\n[[channels]]");
    let err = load(&text).unwrap_err().to_string();
    assert!(
        err.contains("poll.schedule: \"*/5 * * * *\" has 5 fields"),
        "{err}"
    );
    assert!(
        err.contains("jobs[0].id: \"not-an-id\" is not a CodeArts job id"),
        "{err}"
    );
    assert!(
        err.contains("jobs[0].channels[0]: no channel is named \"nope\""),
        "{err}"
    );
}

#[test]
fn invalid_webhook_url_does_not_echo_the_url() {
    let err = load(&MINIMAL.replace("${HOOK_URL}", "ftp://host/SECRETKEY")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("channels[0].url: scheme \"ftp\""), "{text}");
    assert!(!text.contains("SECRETKEY"), "{text}");
}

#[test]
fn problems_point_at_the_line_of_their_key() {
    let text = MINIMAL.replace("f5af662119404ad187437cd272b5099b", "short");
    let err = load(&text).unwrap_err().to_string();
    assert!(err.contains("line 7: jobs[0].id: \"short\""), "{err}");
    let text = MINIMAL.replace("CODEARTS_TOKEN", "UNSET_VAR");
    let err = load(&text).unwrap_err().to_string();
    assert!(
        err.contains("line 5: codearts.auth.token: environment variable UNSET_VAR"),
        "{err}"
    );
}

#[test]
fn the_effective_config_masks_every_secret() {
    let shown = load(MINIMAL).unwrap().effective_toml();
    assert!(shown.contains("schedule = \"0 * * * * *\""), "{shown}");
    assert!(shown.contains("token = \"***\""), "{shown}");
    assert!(
        !shown.contains("tok-123") && !shown.contains("SECRETKEY") && !shown.contains("s3cret"),
        "{shown}"
    );
}

fn with_auth(auth: &str) -> Result<Config, ConfigError> {
    let text = MINIMAL.replace("token = \"${CODEARTS_TOKEN}\"", auth);
    Config::from_toml(&text, "test.toml", &|name| match name {
        "CLOUD_SDK_AK" => Some("AKFROMENV".to_owned()),
        "CLOUD_SDK_SK" => Some("SKFROMENV".to_owned()),
        other => env(other),
    })
}

#[test]
fn exactly_one_auth_method_and_the_error_names_the_keys() {
    let two = with_auth(
        "token = \"t\"\nmethod = \"password\"\ndomain = \"d\"\nuser = \"u\"\npassword = \"p\"",
    );
    let err = two.unwrap_err().to_string();
    assert!(
        err.contains("codearts.auth: token belong to another method"),
        "{err}"
    );
    let none = with_auth("").unwrap_err().to_string();
    assert!(
        none.contains("codearts.auth: no method configured"),
        "{none}"
    );
    let incomplete = with_auth("method = \"password\"\nuser = \"u\"")
        .unwrap_err()
        .to_string();
    assert!(
        incomplete.contains("codearts.auth.domain: required"),
        "{incomplete}"
    );
    assert!(
        incomplete.contains("codearts.auth.password: required"),
        "{incomplete}"
    );
    let stray = with_auth("token = \"t\"\nak = \"x\"")
        .unwrap_err()
        .to_string();
    assert!(stray.contains("ak belong to another method"), "{stray}");
}

#[test]
fn password_and_aksk_methods_load_and_aksk_falls_back_to_cloud_sdk_env() {
    let password = with_auth(
        "method = \"password\"\ndomain = \"acme\"\nuser = \"bot\"\npassword = \"${CODEARTS_TOKEN}\"",
    )
    .unwrap();
    assert_eq!(
        password.codearts.auth.effective_method(),
        Some(AuthMethod::Password)
    );
    assert_eq!(
        password.codearts.auth.password.as_ref().unwrap().expose(),
        "tok-123"
    );
    assert_eq!(
        password.codearts.auth.iam_endpoint("cn-north-4"),
        "https://iam.cn-north-4.myhuaweicloud.com"
    );
    let aksk = with_auth("method = \"aksk\"\nproject_id = \"p1\"").unwrap();
    assert_eq!(aksk.codearts.auth.ak.as_deref(), Some("AKFROMENV"));
    assert_eq!(
        aksk.codearts.auth.sk.as_ref().unwrap().expose(),
        "SKFROMENV"
    );
    assert!(!format!("{aksk:?}").contains("SKFROMENV"));
    let no_project = with_auth("method = \"aksk\"").unwrap_err().to_string();
    assert!(
        no_project.contains("codearts.auth.project_id: required"),
        "{no_project}"
    );
}

#[test]
fn unknown_region_without_endpoint_is_an_error() {
    let err = load(&MINIMAL.replace("cn-north-4", "mars-1")).unwrap_err();
    assert!(
        err.to_string().contains("codearts.region: \"mars-1\""),
        "{err}"
    );
    let ok = load(&MINIMAL.replace(
        "region = \"cn-north-4\"",
        "region = \"mars-1\"\nendpoint = \"http://127.0.0.1:8080\"",
    ));
    assert!(ok.is_ok());
}

#[test]
fn every_string_is_expanded_without_being_listed() {
    // None of these keys was in the hand-kept list that expansion used to follow.
    let text = MINIMAL
        .replace("type = \"webhook\"", "type = \"${KIND}\"")
        .replace(
            "[[jobs]]",
            "[discord]\nguilds = [\"${GUILD}\"]\n\
             [rules]\nfailure_statuses = [\"${FAILED}\", \"error\"]\n\
             [[maintenance]]\nname = \"${WINDOW}\"\nstart = \"0 0 22 * * SAT\"\n\
             duration_mins = 60\ntimezone = \"${TZ_NAME}\"\n[[jobs]]",
        );
    let config = Config::from_toml(&text, "test.toml", &|name| match name {
        "KIND" => Some("webhook".to_owned()),
        "GUILD" => Some("123456789012345678".to_owned()),
        "FAILED" => Some("failed".to_owned()),
        "WINDOW" => Some("saturday night".to_owned()),
        "TZ_NAME" => Some("Asia/Shanghai".to_owned()),
        other => env(other),
    })
    .unwrap();
    assert_eq!(config.channels[0].kind, ChannelType::Webhook);
    assert_eq!(config.discord.guilds, ["123456789012345678"]);
    assert_eq!(config.rules.failure_statuses, ["failed", "error"]);
    assert_eq!(config.maintenance[0].name, "saturday night");
    assert_eq!(config.maintenance[0].timezone, "Asia/Shanghai");
    // `$${` still stands for a literal `${` in any key, listed before or not.
    let literal = load(&MINIMAL.replace(
        "[[jobs]]",
        "[[maintenance]]\nname = \"cost $${X} $5\"\nstart = \"0 0 22 * * SAT\"\n\
         duration_mins = 60\n[[jobs]]",
    ))
    .unwrap();
    assert_eq!(literal.maintenance[0].name, "cost ${X} $5");
}

#[test]
fn an_unset_variable_in_an_unlisted_key_names_the_key_and_line() {
    let text = MINIMAL.replace(
        "[[jobs]]",
        "[[maintenance]]\nname = \"w\"\nstart = \"0 0 22 * * SAT\"\nduration_mins = 60\n\
         timezone = \"${NO_SUCH_TZ}\"\n[[jobs]]",
    );
    let err = load(&text).unwrap_err().to_string();
    assert!(
        err.contains(
            "line 10: maintenance[0].timezone: environment variable NO_SUCH_TZ is not set \
             (referenced as ${NO_SUCH_TZ})"
        ),
        "{err}"
    );
    let in_array = load(&MINIMAL.replace(
        "[[jobs]]",
        "[discord]\nroles = [\"1\", \"${NO_ROLE}\"]\n[[jobs]]",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        in_array.contains("discord.roles[1]: environment variable NO_ROLE is not set"),
        "{in_array}"
    );
}

#[test]
fn a_type_error_still_comes_before_expansion_problems_and_secrets_stay_out() {
    // As before expansion moved onto the tree: the unknown key is the one problem shown.
    let text = MINIMAL
        .replace("[[jobs]]", "colour = 1\n[[jobs]]")
        .replace("CODEARTS_TOKEN", "NOPE_TOKEN");
    let err = load(&text).unwrap_err().to_string();
    assert!(err.contains("unknown field `colour`"), "{err}");
    assert!(!err.contains("NOPE_TOKEN is not set"), "{err}");
    // An expanded secret is never quoted back, not even by a TOML error elsewhere.
    let err = load(&MINIMAL.replace("[[jobs]]", "colour = 1\n[[jobs]]"))
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains("SECRETKEY") && !err.contains("tok-123"),
        "{err}"
    );
}
