//! The watch-list syncs as a pure diff: what the stored `watched_jobs` rows must become for a
//! config file's jobs or a project listing, computed in memory with hash maps.
//!
//! The syncs used to upsert every wanted row one statement at a time and test membership with
//! a linear scan per stored row (quadratic: 100 million comparisons at 10,000 jobs), so a
//! restart with an unchanged config rewrote the whole list. Keeping the decision here, apart
//! from the SQL, lets it be tested without a database and lets the store write only the rows
//! the diff names (nothing at all when nothing changed).

use std::collections::{HashMap, HashSet};

use crate::codearts::JobId;

/// A stored `watched_jobs` row as the diff needs it: the raw `source` and `channels` text, so
/// "unchanged" means exactly "the upsert would write the same values".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredWatch {
    pub(super) source: String,
    /// The stored JSON array of channel names, or `None` (NULL) for every channel.
    pub(super) channels: Option<String>,
}

/// The stored rows by job id.
pub(super) type StoredWatches = HashMap<String, StoredWatch>;

/// One row to write: the job id and its channels as stored (JSON text, `None` for NULL).
pub(super) type WatchRow = (String, Option<String>);

/// What a sync must write. `added` and `changed` go through the same upsert as before (its
/// `ON CONFLICT` clause decides how an existing row changes); `removed` is deleted first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct WatchDiff {
    /// Jobs with no row (after `removed` is applied): inserted with `added_at = now`.
    pub(super) added: Vec<WatchRow>,
    /// Jobs whose row exists but whose source or channels the sync changes.
    pub(super) changed: Vec<WatchRow>,
    /// Jobs whose row is deleted.
    pub(super) removed: Vec<String>,
    /// Wanted jobs whose row already says what the sync would write.
    pub(super) unchanged: usize,
}

impl WatchDiff {
    /// Whether the sync writes nothing.
    pub(super) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// The stored form of a channel list: a JSON array of names.
pub(super) fn channels_json(channels: &[String]) -> String {
    serde_json::json!(channels).to_string()
}

/// Keeps the last occurrence of each job id, in the order of those last occurrences: the old
/// per-row upserts let a later duplicate overwrite an earlier one, and so does this.
fn last_wins<T>(items: &[(JobId, T)]) -> impl Iterator<Item = &(JobId, T)> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for (i, (job, _)) in items.iter().enumerate() {
        last.insert(job.as_str(), i);
    }
    items
        .iter()
        .enumerate()
        .filter(move |(i, (job, _))| last.get(job.as_str()) == Some(i))
        .map(|(_, item)| item)
}

/// The config file's jobs against the stored rows. A wanted job with no row is added; one
/// whose row is not `config` (chat-added or discovered) or has other channels is changed (it
/// becomes `config` with the file's channels, keeping its `added_at`); a `config` row no
/// longer in the file is removed. Chat and project rows not in the file are left alone.
pub(super) fn config_diff(
    stored: &StoredWatches,
    wanted: &[(JobId, Option<Vec<String>>)],
) -> WatchDiff {
    let mut diff = WatchDiff::default();
    let mut wanted_ids: HashSet<&str> = HashSet::with_capacity(wanted.len());
    for (job, channels) in last_wins(wanted) {
        wanted_ids.insert(job.as_str());
        let channels = channels.as_deref().map(channels_json);
        match stored.get(job.as_str()) {
            None => diff.added.push((job.as_str().to_owned(), channels)),
            Some(row) if row.source != "config" || row.channels != channels => {
                diff.changed.push((job.as_str().to_owned(), channels));
            }
            Some(_) => diff.unchanged += 1,
        }
    }
    diff.removed = stored
        .iter()
        .filter(|(id, row)| row.source == "config" && !wanted_ids.contains(id.as_str()))
        .map(|(id, _)| id.clone())
        .collect();
    // A stable order: the hash map's would differ from run to run.
    diff.removed.sort_unstable();
    diff
}

/// A project listing against the stored rows. The `project` rows of `dropped` are removed
/// first; then a listed job with no row (or one just removed) is added as `project`, a
/// `project` row with other channels is changed, and a job the config or a chat command
/// watches keeps its row as it is.
pub(super) fn project_diff(
    stored: &StoredWatches,
    listed: &[(JobId, Vec<String>)],
    dropped: &[JobId],
) -> WatchDiff {
    let mut diff = WatchDiff::default();
    let mut removed: HashSet<&str> = HashSet::with_capacity(dropped.len());
    for job in dropped {
        let is_project = stored
            .get(job.as_str())
            .is_some_and(|row| row.source == "project");
        if is_project && removed.insert(job.as_str()) {
            diff.removed.push(job.as_str().to_owned());
        }
    }
    for (job, channels) in last_wins(listed) {
        let channels = channels_json(channels);
        let row = stored
            .get(job.as_str())
            .filter(|_| !removed.contains(job.as_str()));
        match row {
            None => diff.added.push((job.as_str().to_owned(), Some(channels))),
            Some(row) if row.source == "project" && row.channels.as_deref() != Some(&channels) => {
                diff.changed.push((job.as_str().to_owned(), Some(channels)));
            }
            Some(_) => diff.unchanged += 1,
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    //! The diff on hand-built stored rows: added, removed, channels changed, unchanged, and
    //! the cases where a row's source decides (chat and project jobs pinned in the config).

    use super::*;

    fn id(n: u32) -> JobId {
        JobId::parse(&format!("{n:032x}")).expect("job id")
    }

    fn key(n: u32) -> String {
        id(n).as_str().to_owned()
    }

    fn row(source: &str, channels: Option<&[&str]>) -> StoredWatch {
        StoredWatch {
            source: source.to_owned(),
            channels: channels
                .map(|c| channels_json(&c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())),
        }
    }

    fn names(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn config_added_removed_changed_unchanged() {
        let stored: StoredWatches = [
            (key(1), row("config", None)),           // unchanged
            (key(2), row("config", Some(&["ops"]))), // channels change
            (key(3), row("config", None)),           // no longer in the file: removed
            (key(4), row("chat", Some(&["dev"]))),   // pinned in the file: becomes config
            (key(5), row("project", Some(&["ci"]))), // pinned in the file: becomes config
            (key(6), row("chat", None)),             // not in the file: left alone
            (key(7), row("project", Some(&["ci"]))), // not in the file: left alone
            (key(8), row("config", Some(&["ops"]))), // unchanged, with channels
            (key(9), row("config", Some(&["ops"]))), // becomes every channel
        ]
        .into_iter()
        .collect();
        let wanted = vec![
            (id(1), None),
            (id(2), Some(names(&["ops", "dev"]))),
            (id(4), Some(names(&["dev"]))),
            (id(5), Some(names(&["ci"]))),
            (id(8), Some(names(&["ops"]))),
            (id(9), None),
            (id(10), Some(names(&["new"]))), // added
        ];
        let diff = config_diff(&stored, &wanted);
        assert_eq!(diff.added, vec![(key(10), Some(r#"["new"]"#.to_owned()))]);
        assert_eq!(
            diff.changed,
            vec![
                (key(2), Some(r#"["ops","dev"]"#.to_owned())),
                (key(4), Some(r#"["dev"]"#.to_owned())),
                (key(5), Some(r#"["ci"]"#.to_owned())),
                (key(9), None),
            ]
        );
        assert_eq!(diff.removed, vec![key(3)]);
        assert_eq!(diff.unchanged, 2);
        assert!(!diff.is_empty());
    }

    #[test]
    fn config_same_list_twice_is_empty_and_duplicates_keep_the_last() {
        let wanted = vec![
            (id(1), Some(names(&["a"]))),
            (id(2), None),
            (id(1), Some(names(&["b"]))),
        ];
        let first = config_diff(&StoredWatches::new(), &wanted);
        assert_eq!(
            first.added,
            vec![(key(2), None), (key(1), Some(r#"["b"]"#.to_owned()))]
        );
        let stored: StoredWatches = first
            .added
            .into_iter()
            .map(|(id, channels)| {
                let source = "config".to_owned();
                (id, StoredWatch { source, channels })
            })
            .collect();
        let second = config_diff(&stored, &wanted);
        assert!(second.is_empty(), "{second:?}");
        assert_eq!(second.unchanged, 2);
    }

    #[test]
    fn config_empty_file_removes_only_config_rows() {
        let stored: StoredWatches = [
            (key(1), row("config", None)),
            (key(2), row("chat", None)),
            (key(3), row("project", Some(&["ci"]))),
        ]
        .into_iter()
        .collect();
        let diff = config_diff(&stored, &[]);
        assert_eq!(diff.removed, vec![key(1)]);
        assert!(diff.added.is_empty() && diff.changed.is_empty());
    }

    #[test]
    fn project_added_removed_changed_unchanged() {
        let stored: StoredWatches = [
            (key(1), row("project", Some(&["ci"]))), // unchanged
            (key(2), row("project", Some(&["ci"]))), // channels change
            (key(3), row("project", Some(&["ci"]))), // dropped: removed
            (key(4), row("config", None)),           // listed but pinned: kept as is
            (key(5), row("chat", Some(&["dev"]))),   // listed but chat-added: kept as is
            (key(6), row("config", None)),           // dropped but not a project row: kept
        ]
        .into_iter()
        .collect();
        let listed = vec![
            (id(1), names(&["ci"])),
            (id(2), names(&["ci", "ops"])),
            (id(4), names(&["ci"])),
            (id(5), names(&["ci"])),
            (id(7), names(&["ci"])), // added
        ];
        let dropped = vec![id(3), id(6), id(8), id(3)];
        let diff = project_diff(&stored, &listed, &dropped);
        assert_eq!(diff.added, vec![(key(7), Some(r#"["ci"]"#.to_owned()))]);
        assert_eq!(
            diff.changed,
            vec![(key(2), Some(r#"["ci","ops"]"#.to_owned()))]
        );
        assert_eq!(diff.removed, vec![key(3)]);
        assert_eq!(diff.unchanged, 3);
    }

    #[test]
    fn project_dropped_and_listed_is_removed_then_added() {
        // The old code deleted `dropped` before upserting `listed`, so such a job came back
        // as a new row (a new `added_at`); the diff keeps that.
        let stored: StoredWatches = [(key(1), row("project", Some(&["ci"])))]
            .into_iter()
            .collect();
        let diff = project_diff(&stored, &[(id(1), names(&["ci"]))], &[id(1)]);
        assert_eq!(diff.removed, vec![key(1)]);
        assert_eq!(diff.added, vec![(key(1), Some(r#"["ci"]"#.to_owned()))]);
        assert_eq!(diff.unchanged, 0);
    }
}
