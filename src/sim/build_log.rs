//! DownloadBuildRealTimeLog's window over a build's log
//! (`GET /v1/log/{job_id}/{build_no}/real-time-log?start_offset&end_offset&sort&size`).
//!
//! The reference names the parameters ("where the query begins", "where it ends", "sorting
//! order" `ASC` (spelt `AES` there) or `DESC`, "length of the returned content", default 1000)
//! without saying what an offset counts. The simulator counts **lines**, from 0:
//! - `ASC` (the default): from line `start_offset`, at most `size` lines, not past
//!   `end_offset` (exclusive; 0 means the end of the log);
//! - `DESC`: the last `size` lines before `end_offset` (0: the end of the log), not before
//!   `start_offset`: the tail. The lines still read top to bottom.
//!
//! The answer's `start_offset`/`end_offset` (strings, as the SDK types them) are the window
//! actually returned, `[start, end)`, so the next page back is `end_offset = start_offset`;
//! `has_more` says whether the log has lines beyond the window in the reading direction
//! (after it for `ASC`, before it for `DESC`), whatever the offsets bounded.

use serde_json::{Value, json};

use super::reply::{self, Documented};

/// `size` when none is given (the reference's default).
pub(crate) const DEFAULT_SIZE: usize = 1000;

/// The query of one log call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    start: usize,
    /// 0: the end of the log.
    end: usize,
    descending: bool,
    size: usize,
}

impl Window {
    /// Reads the query; a value that is not a non-negative number, or a `sort` other than
    /// `ASC`/`AES`/`DESC` (any case), is the API's invalid parameter. Other keys are ignored.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, Documented> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
            .map_err(|_| reply::INVALID_PARAMETER)?;
        let mut window = Window {
            start: 0,
            end: 0,
            descending: false,
            size: DEFAULT_SIZE,
        };
        let number = |value: &str| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| reply::INVALID_PARAMETER)
        };
        for (key, value) in pairs {
            match key.as_str() {
                "start_offset" => window.start = number(&value)?,
                "end_offset" => window.end = number(&value)?,
                "size" => window.size = number(&value)?,
                "sort" => {
                    window.descending = match value.to_ascii_uppercase().as_str() {
                        "ASC" | "AES" => false,
                        "DESC" => true,
                        _ => return Err(reply::INVALID_PARAMETER),
                    }
                }
                _ => {}
            }
        }
        Ok(window)
    }

    /// The `result` object for `log`.
    pub(crate) fn result(&self, log: &str) -> Value {
        let lines: Vec<&str> = if log.is_empty() {
            Vec::new()
        } else {
            log.strip_suffix('\n').unwrap_or(log).split('\n').collect()
        };
        let total = lines.len();
        let limit = if self.end == 0 {
            total
        } else {
            self.end.min(total)
        };
        let (first, last, has_more) = if self.descending {
            let first = limit.saturating_sub(self.size).max(self.start).min(limit);
            (first, limit, first > 0)
        } else {
            let first = self.start.min(limit);
            let last = first.saturating_add(self.size).min(limit);
            (first, last, last < total)
        };
        json!({
            "log": lines[first..last].join("\n"),
            "has_more": has_more,
            "start_offset": first.to_string(),
            "end_offset": last.to_string(),
            "location": "sim",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "l0\nl1\nl2\nl3\nl4\n";

    fn window(query: &str) -> Value {
        Window::parse(Some(query)).unwrap().result(LOG)
    }

    #[test]
    fn ascending_reads_from_the_start() {
        let w = window("");
        assert_eq!(w["log"], "l0\nl1\nl2\nl3\nl4");
        assert_eq!(
            (w["start_offset"].as_str(), w["end_offset"].as_str()),
            (Some("0"), Some("5"))
        );
        assert_eq!(w["has_more"], false);
        let w = window("start_offset=1&size=2&sort=AES");
        assert_eq!(w["log"], "l1\nl2");
        assert_eq!(w["has_more"], true);
        let w = window("start_offset=1&end_offset=2");
        assert_eq!(w["log"], "l1");
        assert_eq!(w["has_more"], true, "lines 2 to 4 are after the window");
    }

    #[test]
    fn descending_reads_the_tail_top_to_bottom_and_pages_back() {
        let w = window("sort=DESC&size=2");
        assert_eq!(w["log"], "l3\nl4");
        assert_eq!(w["start_offset"], "3");
        assert_eq!(w["has_more"], true);
        let w = window("sort=desc&size=2&end_offset=3");
        assert_eq!(w["log"], "l1\nl2");
        let w = window("sort=DESC&size=10&end_offset=1");
        assert_eq!(
            (w["log"].as_str(), w["has_more"].as_bool()),
            (Some("l0"), Some(false))
        );
        let w = window("sort=DESC&size=10&start_offset=2");
        assert_eq!(w["log"], "l2\nl3\nl4");
        assert_eq!(w["has_more"], true, "lines 0 and 1 are before the window");
    }

    #[test]
    fn past_the_end_and_empty_logs_are_empty_windows() {
        let w = window("start_offset=50");
        assert_eq!(
            (w["log"].as_str(), w["start_offset"].as_str()),
            (Some(""), Some("5"))
        );
        let w = Window::parse(None).unwrap().result("");
        assert_eq!(w["log"], "");
        assert_eq!(w["has_more"], false);
    }

    #[test]
    fn bad_parameters_are_invalid() {
        for bad in ["size=-1", "sort=UP", "start_offset=a", "end_offset=1.5"] {
            assert_eq!(
                Window::parse(Some(bad)),
                Err(reply::INVALID_PARAMETER),
                "{bad}"
            );
        }
    }
}
