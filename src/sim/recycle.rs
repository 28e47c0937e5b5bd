//! The recycle bin: jobs deleted through the control API, as ListRecyclingJob
//! (`GET /v1/job/recycling-jobs?page_no&page_size&search`) shows them, in the SDK's
//! `RecyclingJob` shape.

use serde_json::{Map, Value, json};

use super::builds::{self, SIM_USER};
use super::reply::{self, Documented};

/// The largest `page_size`, as the job lists take.
const MAX_PAGE_SIZE: usize = 100;

/// Days a deleted job stays in the bin (`keep_time`; the unit is not documented).
pub(crate) const KEEP_DAYS: u64 = 30;

/// A deleted job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recycled {
    pub(crate) job_id: String,
    job_name: String,
    project_id: String,
    creator: String,
    /// Unix ms, when the job's `create_time` could be read.
    created_ms: Option<i64>,
    deleted_ms: i64,
}

impl Recycled {
    /// The bin's entry for job `id` with these fields, deleted at `now_ms`.
    pub(crate) fn of(id: &str, fields: &Map<String, Value>, now_ms: i64) -> Self {
        let text = |key: &str| {
            fields
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let created_ms = match fields.get("create_time") {
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        let creator = Some(text("job_creator"))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| SIM_USER.to_owned());
        Self {
            job_id: id.to_owned(),
            job_name: text("job_name"),
            project_id: text("project_id"),
            creator,
            created_ms,
            deleted_ms: now_ms,
        }
    }

    /// The SDK's `RecyclingJob`: times as `YYYY-MM-DD HH:MM:SS` (UTC) and as strings of ms.
    fn entry(&self) -> Value {
        let when = |ms: Option<i64>| {
            ms.and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        };
        json!({
            "job_id": self.job_id,
            "job_name": self.job_name,
            "project_id": self.project_id,
            "creator_name": self.creator,
            "creator_id": builds::user_id(&self.creator),
            "create_time": when(self.created_ms),
            "delete_time": when(Some(self.deleted_ms)),
            "create_time_stamp": self.created_ms.map(|ms| ms.to_string()),
            "delete_time_stamp": self.deleted_ms.to_string(),
        })
    }
}

/// `page_no` (from 1, default 1), `page_size` (1..=100, default 10) and `search` (part of a
/// job name, case-insensitive) from a query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Query {
    page_no: usize,
    page_size: usize,
    search: Option<String>,
}

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, Documented> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
            .map_err(|_| reply::INVALID_PARAMETER)?;
        let mut parsed = Query {
            page_no: 1,
            page_size: 10,
            search: None,
        };
        for (key, value) in pairs {
            match key.as_str() {
                "page_no" => match value.parse() {
                    Ok(n) if n >= 1 => parsed.page_no = n,
                    _ => return Err(reply::INVALID_PARAMETER),
                },
                "page_size" => match value.parse() {
                    Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => parsed.page_size = n,
                    _ => return Err(reply::INVALID_PARAMETER),
                },
                "search" if !value.is_empty() => parsed.search = Some(value.to_lowercase()),
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// ListRecyclingJob's body for the bin's content (oldest deletion first, as kept): the
/// deleted jobs newest deletion first, one page, in the SDK's envelope.
pub(crate) fn answer(mut bin: Vec<Recycled>, query: &Query) -> Value {
    bin.reverse();
    let matching: Vec<&Recycled> = bin
        .iter()
        .filter(|r| {
            query
                .search
                .as_deref()
                .is_none_or(|s| r.job_name.to_lowercase().contains(s))
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip((query.page_no - 1).saturating_mul(query.page_size))
        .take(query.page_size)
        .map(|r| r.entry())
        .collect();
    json!({
        "success": true,
        "message": "",
        "err_code": "",
        "status": "success",
        "result": {"keep_time": KEEP_DAYS, "total": matching.len(), "job_list": page},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_pages_from_one_and_decodes_search() {
        assert_eq!(
            Query::parse(None),
            Ok(Query {
                page_no: 1,
                page_size: 10,
                search: None
            })
        );
        assert_eq!(
            Query::parse(Some("page_no=2&page_size=100&search=Web%20App")),
            Ok(Query {
                page_no: 2,
                page_size: 100,
                search: Some("web app".to_owned())
            })
        );
        for bad in ["page_no=0", "page_size=101", "page_size=0", "page_no=x"] {
            assert_eq!(
                Query::parse(Some(bad)),
                Err(reply::INVALID_PARAMETER),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_entry_has_every_sdk_field_with_both_time_forms() {
        let fields = crate::sim::state::default_fields(
            "f5af662119404ad187437cd272b5099b",
            Some("web".to_owned()),
            1_721_793_407_000,
        );
        let entry = Recycled::of(
            "f5af662119404ad187437cd272b5099b",
            &fields,
            1_721_793_407_000,
        )
        .entry();
        assert_eq!(entry.as_object().unwrap().len(), 9);
        assert_eq!(entry["job_name"], "web");
        assert_eq!(entry["delete_time"], "2024-07-24 03:56:47");
        assert_eq!(entry["delete_time_stamp"], "1721793407000");
        assert!(entry["create_time_stamp"].is_string());
        assert_eq!(entry["creator_name"], SIM_USER);
    }
}
