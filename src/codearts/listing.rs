//! A project's job list: `GET /v3/{project_id}/jobs?page_index&page_size`
//! (ShowJobListByProjectId), which lets a channel subscribe to every job of a project.
//!
//! Only what discovery needs is kept: each job's id and name, and the total. The answer is
//! read as leniently as ShowJobInfo's: a number may come as a string, unknown fields are
//! ignored, and an entry whose id is not a valid job id is skipped (and counted) rather than
//! failing the whole page.

use serde::Deserialize;

use super::model::{JobId, ParseError, preview};

/// Most jobs one page may hold (the documented maximum of `page_size`).
pub const MAX_PAGE_SIZE: u32 = 100;

/// A CodeArts project id as the API puts it in a path: 1 to 64 ASCII letters, digits or `-`
/// (the documented examples look like `85caf40575794f989920-5216d1148af6`).
pub fn check_project_id(raw: &str) -> Result<(), String> {
    if raw.is_empty() || raw.len() > 64 {
        return Err(format!(
            "{raw:?} is not a CodeArts project id (1 to 64 letters, digits or '-')"
        ));
    }
    match raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        Some(bad) => Err(format!(
            "{raw:?} is not a CodeArts project id: {bad:?} is not a letter, digit or '-' \
             (copy the id from the project's URL in the CodeArts console)"
        )),
        None => Ok(()),
    }
}

/// One job of a project listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedJob {
    pub id: JobId,
    pub name: String,
}

/// One page of a project listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobPage {
    pub jobs: Vec<ListedJob>,
    /// How many jobs the project has in all, as the API reports it.
    pub total: u64,
    /// Entries skipped because their id was missing or not a job id.
    pub skipped: usize,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    jobs: Option<Vec<RawJob>>,
    #[serde(default, deserialize_with = "super::model::lenient::opt_i64")]
    total: Option<i64>,
    status: Option<String>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJob {
    id: Option<serde_json::Value>,
    job_name: Option<serde_json::Value>,
}

/// Parses a ShowJobListByProjectId 200 body.
pub fn parse_job_page(body: &[u8]) -> Result<JobPage, ParseError> {
    let raw: RawPage = serde_json::from_slice(body)
        .map_err(|e| ParseError::Malformed(format!("{e} (body starts {})", preview(body))))?;
    if let Some(status) = raw.status.as_deref()
        && !status.eq_ignore_ascii_case("success")
    {
        let reason = match raw.error {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Null) | None => "no reason given".to_owned(),
            Some(other) => other.to_string(),
        };
        return Err(ParseError::Failed(format!("{status}: {reason}")));
    }
    let Some(entries) = raw.jobs else {
        return Err(ParseError::Malformed(format!(
            "`jobs` is missing (body starts {})",
            preview(body)
        )));
    };
    let mut page = JobPage {
        total: u64::try_from(raw.total.unwrap_or(0)).unwrap_or(0),
        ..JobPage::default()
    };
    for entry in entries {
        let id = match &entry.id {
            Some(serde_json::Value::String(s)) => JobId::parse(s).ok(),
            _ => None,
        };
        let Some(id) = id else {
            page.skipped += 1;
            continue;
        };
        let name = match entry.job_name {
            Some(serde_json::Value::String(s)) => s,
            _ => String::new(),
        };
        page.jobs.push(ListedJob { id, name });
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let body = br#"{"total": 35, "jobs": [
            {"id": "d62d64d7782545c696ffaacc9ac9c69a", "job_name": "Build-Create_Image",
             "last_build_time": 1598438571000, "health_score": 100, "last_build_status": "blue",
             "is_finished": true, "disabled": false, "favorite": true},
            {"id": "4485de11a8e74ffdb9c9f85bafb85f83", "job_name": "build-SWR"}]}"#;
        let page = parse_job_page(body).unwrap();
        assert_eq!(page.total, 35);
        assert_eq!(page.jobs.len(), 2);
        assert_eq!(page.jobs[0].id.as_str(), "d62d64d7782545c696ffaacc9ac9c69a");
        assert_eq!(page.jobs[1].name, "build-SWR");
        assert_eq!(page.skipped, 0);
    }

    #[test]
    fn bad_entries_are_skipped_and_a_string_total_is_read() {
        let body = br#"{"total": "3", "jobs": [{"id": "short"}, {"job_name": "x"},
            {"id": "4485de11a8e74ffdb9c9f85bafb85f83", "job_name": 7}]}"#;
        let page = parse_job_page(body).unwrap();
        assert_eq!((page.total, page.jobs.len(), page.skipped), (3, 1, 2));
        assert_eq!(page.jobs[0].name, "");
    }

    #[test]
    fn html_and_failures_are_errors() {
        assert!(matches!(
            parse_job_page(b"<html>"),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_job_page(br#"{"status":"fail","error":"busy"}"#),
            Err(ParseError::Failed(_))
        ));
        assert!(matches!(
            parse_job_page(br#"{"total": 1}"#),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn project_ids_are_checked_before_they_reach_a_url() {
        assert!(check_project_id("85caf40575794f989920-5216d1148af6").is_ok());
        assert!(check_project_id("").is_err());
        assert!(check_project_id("../v1/job").unwrap_err().contains("'.'"));
        assert!(check_project_id(&"a".repeat(65)).is_err());
    }
}
