//! `[[jobs]]`: the build jobs watched from the file, and the channels each one reports to.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::codearts::JobId;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub id: String,
    /// Channel names; absent means every channel.
    pub channels: Option<Vec<String>>,
    /// The CodeArts project the job belongs to, so `list` polling can read it through its
    /// project's job list from the first cycle (otherwise learnt from its first answer).
    pub project: Option<String>,
}

/// Checks every job: its id, that it is listed once, and that the channels it names exist
/// (`channel_names`, from the `[[channels]]` check).
pub(crate) fn validate_jobs(
    jobs: &[JobConfig],
    channel_names: &HashSet<&str>,
    problems: &mut Vec<String>,
) {
    let mut ids = HashSet::new();
    for (i, job) in jobs.iter().enumerate() {
        match JobId::parse(&job.id) {
            Ok(id) => {
                if !ids.insert(id) {
                    problems.push(format!("jobs[{i}].id: {:?} is listed twice", job.id));
                }
            }
            Err(e) => problems.push(format!("jobs[{i}].id: {e}")),
        }
        if let Some(project) = &job.project
            && let Err(e) = crate::codearts::listing::check_project_id(project)
        {
            problems.push(format!("jobs[{i}].project: {e}"));
        }
        for (j, name) in job.channels.iter().flatten().enumerate() {
            if !channel_names.contains(name.as_str()) {
                problems.push(format!(
                    "jobs[{i}].channels[{j}]: no channel is named {name:?}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::with;

    #[test]
    fn a_jobs_project_is_checked_before_it_reaches_a_url() {
        let job = "[[jobs]]\nid = \"f5af662119404ad187437cd272b5099b\"\n";
        let ok = with(&format!(
            "{job}project = \"85caf40575794f989920-5216d1148af6\""
        ))
        .unwrap();
        assert_eq!(
            ok.jobs[0].project.as_deref(),
            Some("85caf40575794f989920-5216d1148af6")
        );
        let err = with(&format!("{job}project = \"../v1/job\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("jobs[0].project"), "{err}");
    }
}
