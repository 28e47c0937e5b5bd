//! `[codearts]` and `[codearts.auth]`: where the API is and how the bot signs in (a static
//! token, an IAM password, or an access key pair), each method checked for its own keys.

use serde::{Deserialize, Serialize};

use crate::codearts::region;
use crate::config::env::Env;
use crate::config::url::validate_url;
use crate::util::secret::Secret;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CodeArtsConfig {
    /// One of the SDKs' regions; decides the endpoint unless `endpoint` is set.
    pub region: String,
    /// Overrides the region's endpoint (a proxy, or the simulator on loopback).
    pub endpoint: Option<String>,
    pub auth: AuthConfig,
    /// The link every chat card carries, e.g.
    /// `https://devcloud.cn-north-4.huaweicloud.com/cloudbuild/project/{project_id}/job/{job_id}/detail`:
    /// `{job_id}` is required, `{project_id}` optional (empty when unknown). No link when absent.
    pub link_template: Option<String>,
}

/// `[codearts.auth]`: exactly one method.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `token` (the default when `token` is set), `password` or `aksk`.
    pub method: Option<AuthMethod>,
    /// A static IAM token sent as `X-Auth-Token`.
    pub token: Option<Secret>,
    /// password: the account (domain) name.
    pub domain: Option<String>,
    /// password: the IAM user name.
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// password: scope tokens to this project id (default: the region's project by name).
    pub project_id: Option<String>,
    /// password: scope tokens to this project name (default: the region name).
    pub project_name: Option<String>,
    /// password: IAM base URL (default `https://iam.{region}.myhuaweicloud.com`).
    pub iam_endpoint: Option<String>,
    /// password: renew this long before expiry (default 3600).
    pub refresh_margin_secs: Option<u64>,
    /// aksk: the access key id (default: `$CLOUD_SDK_AK`).
    pub ak: Option<String>,
    /// aksk: the secret access key (default: `$CLOUD_SDK_SK`).
    pub sk: Option<Secret>,
    /// aksk: temporary credentials' security token, sent as `X-Security-Token`.
    pub security_token: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Token,
    Password,
    Aksk,
}

impl CodeArtsConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        match &self.endpoint {
            Some(endpoint) => {
                if let Err(e) = validate_url(endpoint) {
                    problems.push(format!("codearts.endpoint: {e}"));
                }
            }
            None if region::endpoint(&self.region).is_none() => problems.push(format!(
                "codearts.region: {:?} is not a region CodeArts Build serves (known: {}); \
                 set codearts.endpoint to use another host",
                self.region,
                region::REGIONS.join(", ")
            )),
            None => {}
        }
        if let Some(template) = &self.link_template
            && let Err(e) = validate_link_template(template)
        {
            problems.push(format!("codearts.link_template: {e}"));
        }
        self.auth.validate(problems);
    }
}

impl AuthConfig {
    /// The method in effect: `method`, or `token` when only a token is given.
    pub fn effective_method(&self) -> Option<AuthMethod> {
        self.method
            .or_else(|| self.token.as_ref().map(|_| AuthMethod::Token))
    }

    pub fn iam_endpoint(&self, region: &str) -> String {
        self.iam_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://iam.{region}.myhuaweicloud.com"))
    }

    /// As the official SDK samples do: with `method = "aksk"`, an access key pair missing from
    /// the file is taken from `$CLOUD_SDK_AK` / `$CLOUD_SDK_SK` (an empty variable counts as
    /// unset).
    pub(crate) fn fill_from_sdk_env(&mut self, env: Env<'_>) {
        if self.method == Some(AuthMethod::Aksk) {
            if self.ak.is_none() {
                self.ak = env("CLOUD_SDK_AK").filter(|v| !v.is_empty());
            }
            if self.sk.is_none() {
                self.sk = env("CLOUD_SDK_SK")
                    .filter(|v| !v.is_empty())
                    .map(Secret::new);
            }
        }
    }

    fn validate(&self, problems: &mut Vec<String>) {
        let key = "codearts.auth";
        let set = |name: &'static str, present: bool| present.then_some(name);
        let token_keys: Vec<&str> = [set("token", self.token.is_some())]
            .into_iter()
            .flatten()
            .collect();
        let password_keys: Vec<&str> = [
            set("domain", self.domain.is_some()),
            set("user", self.user.is_some()),
            set("password", self.password.is_some()),
            set("project_name", self.project_name.is_some()),
            set("iam_endpoint", self.iam_endpoint.is_some()),
            set("refresh_margin_secs", self.refresh_margin_secs.is_some()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let aksk_keys: Vec<&str> = [
            set("ak", self.ak.is_some()),
            set("sk", self.sk.is_some()),
            set("security_token", self.security_token.is_some()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let foreign = |method: &str, keys: &[&str]| {
            (!keys.is_empty()).then(|| {
                format!(
                    "{key}: {} belong to another method than method = {method:?}; configure exactly one method",
                    keys.join(", ")
                )
            })
        };
        let missing = |method: &str, name: &str, present: bool| {
            (!present).then(|| format!("{key}.{name}: required with method = {method:?}"))
        };
        let mut out: Vec<Option<String>> = Vec::new();
        match self.effective_method() {
            None => out.push(Some(format!(
                "{key}: no method configured: set token = \"...\", or method = \"password\" (domain, user, password) or method = \"aksk\" (ak, sk, project_id)"
            ))),
            Some(AuthMethod::Token) => {
                out.push(missing("token", "token", self.token.is_some()));
                let mut others = password_keys.clone();
                others.extend(&aksk_keys);
                if self.project_id.is_some() {
                    others.push("project_id");
                }
                out.push(foreign("token", &others));
                if self.token.as_ref().is_some_and(Secret::is_empty) {
                    out.push(Some(format!("{key}.token: is empty (is the environment variable it names set to nothing?)")));
                }
            }
            Some(AuthMethod::Password) => {
                out.push(missing("password", "domain", self.domain.is_some()));
                out.push(missing("password", "user", self.user.is_some()));
                out.push(missing("password", "password", self.password.is_some()));
                let mut others = token_keys.clone();
                others.extend(&aksk_keys);
                out.push(foreign("password", &others));
                if self.project_id.is_some() && self.project_name.is_some() {
                    out.push(Some(format!("{key}: project_id and project_name both set; keep one")));
                }
                if let Some(endpoint) = &self.iam_endpoint
                    && let Err(e) = validate_url(endpoint)
                {
                    out.push(Some(format!("{key}.iam_endpoint: {e}")));
                }
                if self.refresh_margin_secs.is_some_and(|m| m > 23 * 3600) {
                    out.push(Some(format!("{key}.refresh_margin_secs: at most 82800 (tokens live 24 hours)")));
                }
            }
            Some(AuthMethod::Aksk) => {
                out.push(self.ak.is_none().then(|| format!("{key}.ak: required with method = \"aksk\" (or set CLOUD_SDK_AK)")));
                out.push(self.sk.is_none().then(|| format!("{key}.sk: required with method = \"aksk\" (or set CLOUD_SDK_SK)")));
                out.push(missing("aksk", "project_id", self.project_id.is_some()));
                let mut others = token_keys.clone();
                others.extend(&password_keys);
                out.push(foreign("aksk", &others));
            }
        }
        problems.extend(out.into_iter().flatten());
    }
}

/// A link template must name `{job_id}`, use no other placeholder than `{project_id}`, and
/// give an http(s) URL once filled in.
fn validate_link_template(template: &str) -> Result<(), String> {
    if !template.contains("{job_id}") {
        return Err(format!(
            "{template:?} does not contain {{job_id}}, so every card would link to the same page"
        ));
    }
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let tail = &rest[start..];
        let end = tail.find('}').map_or(tail.len(), |e| e + 1);
        let placeholder = &tail[..end];
        if placeholder != "{job_id}" && placeholder != "{project_id}" {
            return Err(format!(
                "{placeholder:?} is not a placeholder (known: {{job_id}}, {{project_id}})"
            ));
        }
        rest = &tail[end..];
    }
    // Filled in as `notify::render_link` does (ids need no encoding).
    let sample = template
        .replace("{job_id}", "f5af662119404ad187437cd272b5099b")
        .replace("{project_id}", "85caf40575794f989920-5216d1148af6");
    validate_url(&sample).map_err(|e| format!("once filled in, {e}"))
}

#[cfg(test)]
mod tests {
    use crate::config::load::Config;
    use crate::config::tests::{BASE, with};

    #[test]
    fn link_template_needs_job_id_and_must_give_a_url() {
        let set = |t: &str| {
            Config::from_toml(
                &BASE.replace(
                    "region = \"cn-north-4\"",
                    &format!("region = \"cn-north-4\"\nlink_template = \"{t}\""),
                ),
                "test.toml",
                &|_| None,
            )
        };
        let ok = set("https://console.example/project/{project_id}/job/{job_id}").unwrap();
        assert_eq!(
            ok.codearts.link_template.as_deref(),
            Some("https://console.example/project/{project_id}/job/{job_id}")
        );
        let missing = set("https://console.example/jobs").unwrap_err().to_string();
        assert!(
            missing.contains("codearts.link_template: ") && missing.contains("{job_id}"),
            "{missing}"
        );
        let typo = set("https://console.example/{jobid}/{job_id}")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("\"{jobid}\" is not a placeholder"), "{typo}");
        let not_url = set("console/{job_id}").unwrap_err().to_string();
        assert!(
            not_url.contains("once filled in, not a valid URL"),
            "{not_url}"
        );
        assert!(with("").unwrap().codearts.link_template.is_none());
    }
}
