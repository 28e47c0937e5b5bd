//! `/log <id> [lines]`: the last lines of a job's last build log, redacted, shown only to the
//! invoker. Three CodeArts calls at most: the job (through the shared answer cache, which also
//! applies the project allow-list), its running status for the last build's number, and the
//! log's tail.

use tracing::warn;

use super::shared::{Call, api_failure};
use crate::chat::reply::{LogExcerpt, Reply};
use crate::codearts::{self, JobId};
use crate::config::MAX_LOG_LINES;

pub(crate) async fn run(call: &Call<'_>, raw: &str, lines: Option<i64>) -> Result<Reply, String> {
    let (id, info) = call.query(raw).await?;
    let ctx = call.ctx;
    let asked = wanted_lines(lines, ctx.config.context.log_lines);
    ctx.limiter.acquire().await;
    let status = ctx
        .client
        .running_status(&id)
        .await
        .map_err(|e| api_failure(&id, &e))?;
    let Some(build_no) = status.last_build_no else {
        return Err(format!(
            "Job {id} has no build yet: there is no log to show."
        ));
    };
    ctx.limiter.acquire().await;
    let tail = ctx
        .client
        .log_tail(&id, build_no, asked)
        .await
        .map_err(|e| log_failure(&id, build_no, &e))?;
    Ok(Reply::Log(Box::new(LogExcerpt {
        job: info.display_name().to_owned(),
        id,
        build_no,
        // Nothing fetched from a build is shown before the redactor has seen it.
        lines: ctx.redactor.lines(&tail.lines),
    })))
}

/// How many lines to fetch: what was asked, else the config's `context.log_lines`, within 1
/// and [`MAX_LOG_LINES`] (a platform may show fewer: its renderer says so).
fn wanted_lines(asked: Option<i64>, configured: usize) -> usize {
    let lines = asked.map_or(configured, |n| usize::try_from(n).unwrap_or(1));
    lines.clamp(1, MAX_LOG_LINES)
}

/// A log call's 404 is about the build or its log, not the job (which was just read).
fn log_failure(id: &JobId, build_no: u32, e: &codearts::Error) -> String {
    match e {
        codearts::Error::NotFound(_) => {
            warn!(job_id = %id, build_no, error = %e, "chat /log: CodeArts has no such log");
            format!("CodeArts has no log for build #{build_no} of job {id} (404).")
        }
        _ => api_failure(id, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_count_defaults_to_the_config_and_stays_in_range() {
        assert_eq!(wanted_lines(None, 20), 20);
        assert_eq!(wanted_lines(Some(5), 20), 5);
        assert_eq!(wanted_lines(Some(500), 20), MAX_LOG_LINES);
        assert_eq!(wanted_lines(Some(0), 20), 1);
        assert_eq!(wanted_lines(Some(-3), 20), 1);
        assert_eq!(wanted_lines(None, 5000), MAX_LOG_LINES);
    }
}
