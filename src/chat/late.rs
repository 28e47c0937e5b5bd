//! Answering after the platform's window: both Discord and Slack want an HTTP answer within
//! 3 s, so a command still running after [`DEFER_AFTER`] is acknowledged at once and its reply
//! is sent later (a deferred Discord interaction's edit, a Slack `response_url`).

use std::time::Duration;

use tracing::warn;

use super::reply::Reply;

/// How long a command may take before the answer is deferred (Discord allows 3 s in all).
pub const DEFER_AFTER: Duration = Duration::from_millis(2_000);

/// The reply if it is ready within [`DEFER_AFTER`], else the task still running.
pub async fn deadline(
    mut task: tokio::task::JoinHandle<Reply>,
) -> Result<Reply, tokio::task::JoinHandle<Reply>> {
    match tokio::time::timeout(DEFER_AFTER, &mut task).await {
        Ok(joined) => Ok(joined.unwrap_or_else(|_| Reply::Error("The command failed.".to_owned()))),
        Err(_) => Err(task),
    }
}

/// The HTTP client for answers sent after the request returned (a deferred Discord
/// interaction's edit, a Slack `response_url`).
pub(crate) fn follow_up_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// Sends the reply of a command that outlived its request once it is done: `request` builds
/// the call that carries the rendered reply.
pub(crate) fn answer_later(
    task: tokio::task::JoinHandle<Reply>,
    platform: &'static str,
    request: impl FnOnce(&Reply) -> reqwest::RequestBuilder + Send + 'static,
) {
    tokio::spawn(async move {
        let reply = task
            .await
            .unwrap_or_else(|_| Reply::Error("The command failed.".to_owned()));
        match request(&reply).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => warn!(
                platform,
                status = r.status().as_u16(),
                "the late answer was refused"
            ),
            Err(e) => {
                warn!(platform, error = %crate::util::http::without_url(&e), "cannot send the late answer")
            }
        }
    });
}
