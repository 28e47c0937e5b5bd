//! What the commands share: the [`Call`] each one runs with, reading a job id, asking CodeArts
//! through the shared answer cache, the project allow-list, and the words users are told when
//! CodeArts or the database fails (the details go to the log).

use tracing::warn;

use crate::chat::invoker::Invoker;
use crate::chat::limits::AnswerCache;
use crate::chat::reply::Reply;
use crate::codearts::{self, JobId, JobInfo};
use crate::domain::ids::parse_job_id;
use crate::engine::Ctx;
use crate::engine::silences::SilenceError;

/// What a command runs with: the bot's ctx, the answer cache `/job` and `/watch` share, and who
/// asked.
pub(crate) struct Call<'a> {
    pub ctx: &'a Ctx,
    pub cache: &'a AnswerCache,
    pub who: &'a Invoker,
}

impl Call<'_> {
    /// The job's answer (shared by queries of the same job within `commands.cache_secs`),
    /// refused when its project is not one chat may query.
    pub(crate) async fn query(&self, raw: &str) -> Result<(JobId, JobInfo), String> {
        let id = parse_job_id(raw)?;
        let (ctx, job) = (self.ctx.clone(), id.clone());
        let answer = self
            .cache
            .get_or_fetch(&id, || async move {
                ctx.limiter.acquire().await;
                crate::engine::poller::query(&ctx, &job).await
            })
            .await;
        let info = answer.map_err(|e| api_failure(&id, &e))?;
        let allowed = &self.ctx.config.commands.projects;
        if !allowed.is_empty()
            && !info
                .project_id
                .as_deref()
                .is_some_and(|p| allowed.iter().any(|a| a == p))
        {
            return Err(format!(
                "Job `{id}` belongs to a CodeArts project this chat may not query \
                 (allowed: commands.projects in the bot's config)."
            ));
        }
        Ok((id, info))
    }

    /// With `commands.projects` set, refuses a job whose stored snapshot is in another project
    /// (store-only commands must not show what `/job` would refuse).
    pub(crate) async fn check_stored_project(&self, id: &JobId) -> Result<(), String> {
        let allowed = &self.ctx.config.commands.projects;
        if allowed.is_empty() {
            return Ok(());
        }
        self.ctx
            .snapshots
            .ensure_loaded(&self.ctx.store)
            .await
            .map_err(store_failure)?;
        let project = self
            .ctx
            .snapshots
            .get(id)
            .and_then(|s| s.info.as_ref().and_then(|i| i.project_id.clone()));
        match project {
            Some(p) if allowed.contains(&p) => Ok(()),
            _ => Err(format!(
                "Job {id} is not in a CodeArts project this chat may query \
                 (allowed: commands.projects in the bot's config)."
            )),
        }
    }
}

/// What the invoker is told when CodeArts would not answer; the details go to the log.
pub(crate) fn api_failure(id: &JobId, e: &codearts::Error) -> String {
    warn!(job_id = %id, error = %e, kind = e.kind(), request_id = e.request_id().unwrap_or("-"), "chat query failed");
    match e {
        codearts::Error::NotFound(_) => {
            format!("CodeArts has no job {id} (404): check the id, or the job was deleted.")
        }
        codearts::Error::Forbidden(_) => format!(
            "The bot's credentials may not see job {id} (403): ask for read access to its project."
        ),
        codearts::Error::BadRequest(_) => format!("CodeArts refused the id {id} (400)."),
        codearts::Error::RateLimited { .. } => {
            "CodeArts is throttling the bot right now: try again in a few seconds.".to_owned()
        }
        codearts::Error::Unauthorized(_) | codearts::Error::Auth(_) => {
            "The bot's CodeArts credentials are being refused: tell whoever runs the bot."
                .to_owned()
        }
        _ => format!(
            "CodeArts could not be reached ({}): try again in a minute.",
            e.kind().replace('_', " ")
        ),
    }
}

/// What the invoker is told when the database fails; the details go to the log.
pub(crate) fn store_failure(e: crate::store::Error) -> String {
    warn!(error = %e, "chat command: the database failed");
    "The bot's database failed: try again, and tell whoever runs the bot if it keeps failing."
        .to_owned()
}

/// A silence service's answer as a command's: the change made, or why not.
pub(crate) fn silence_reply(result: Result<String, SilenceError>) -> Result<Reply, String> {
    match result {
        Ok(done) => Ok(Reply::Done(done)),
        Err(SilenceError::Refused(why)) => Err(why),
        Err(SilenceError::Store(e)) => Err(store_failure(e)),
    }
}
