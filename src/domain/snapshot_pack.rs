//! A [`Snapshot`] packed for the in-memory cache: every string in one allocation, the
//! options as bits, and the job id left out when it is the cache key.
//!
//! The cache holds one snapshot per watched job for the life of the process. As plain
//! structs (a `JobInfo` of 22 optional fields, ten strings each in its own allocation) that was
//! about 1 KB a job: 100 MB at 100,000 jobs, most of the peak (docs/benchmarks.md,
//! "Start-up"). Packed it is one 100-byte value and one small string. Packing is lossless:
//! [`PackedSnapshot::unpack`] gives back the snapshot that was packed, field for field, so the
//! detector and chat see exactly what they saw before.

use crate::codearts::JobInfo;
use crate::domain::snapshot::{Presence, Snapshot};

/// Strings kept in [`PackedSnapshot::text`], in this order.
const ID: usize = 0;
const PROJECT_ID: usize = 1;
const JOB_NAME: usize = 2;
const LAST_BUILD_STATUS: usize = 3;
const RUNNING_STATUS: usize = 4;
const BUILD_TIME: usize = 5;
const CHARGE_TIME: usize = 6;
const SOURCE_CODE: usize = 7;
const SETTLED_STATUS: usize = 8;
const OUTCOMES: usize = 9;
const STRINGS: usize = 10;

/// A snapshot as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedSnapshot {
    /// The strings end to end; string `i` ends at `ends[i]` and starts where `i - 1` ends.
    text: Box<str>,
    ends: [u32; STRINGS],
    /// Bit `i`: string `i` is present (`Some`, possibly empty).
    strings: u16,
    /// `last_build_time`, `health_score`, `create_time`; bit `i` of `numbers_set`: present.
    numbers: [i64; 3],
    numbers_set: u8,
    /// The 11 flags in field order: bit `i` of `flags_set` present, of `flags` its value.
    flags_set: u16,
    flags: u16,
    /// `info` is `Some`; `id_is_key`: its `id` is the key's id, not kept in `text`.
    has_info: bool,
    id_is_key: bool,
    presence: Presence,
    missing_polls: u32,
}

impl PackedSnapshot {
    /// Packs `snapshot`, the snapshot of job `key`.
    pub fn pack(key: &str, snapshot: &Snapshot) -> Self {
        let mut packer = Packer::default();
        let mut has_info = false;
        let mut id_is_key = false;
        let mut numbers = [0; 3];
        let mut numbers_set = 0;
        let mut flags_set = 0;
        let mut flags = 0;
        if let Some(info) = &snapshot.info {
            has_info = true;
            // Every field by name: a field added to `JobInfo` does not compile until it is
            // packed too.
            let JobInfo {
                id,
                project_id,
                job_name,
                last_build_status,
                last_build_time,
                health_score,
                disabled,
                running_status,
                build_time,
                charge_time,
                create_time,
                source_code,
                favorite,
                new_build,
                project_permission_switch,
                is_copy,
                is_delete,
                is_execute,
                is_forbidden,
                is_manager,
                is_modify,
                is_view,
            } = info;
            id_is_key = id.as_deref() == Some(key);
            packer.push(ID, if id_is_key { None } else { id.as_deref() });
            packer.push(PROJECT_ID, project_id.as_deref());
            packer.push(JOB_NAME, job_name.as_deref());
            packer.push(LAST_BUILD_STATUS, last_build_status.as_deref());
            packer.push(RUNNING_STATUS, running_status.as_deref());
            packer.push(BUILD_TIME, build_time.as_deref());
            packer.push(CHARGE_TIME, charge_time.as_deref());
            packer.push(SOURCE_CODE, source_code.as_deref());
            for (i, n) in [last_build_time, health_score, create_time]
                .into_iter()
                .enumerate()
            {
                if let Some(n) = n {
                    numbers[i] = *n;
                    numbers_set |= 1 << i;
                }
            }
            let all_flags = [
                disabled,
                favorite,
                new_build,
                project_permission_switch,
                is_copy,
                is_delete,
                is_execute,
                is_forbidden,
                is_manager,
                is_modify,
                is_view,
            ];
            for (i, flag) in all_flags.into_iter().enumerate() {
                if let Some(flag) = flag {
                    flags_set |= 1 << i;
                    flags |= u16::from(*flag) << i;
                }
            }
        }
        packer.push(SETTLED_STATUS, snapshot.settled_status.as_deref());
        packer.push(OUTCOMES, Some(&snapshot.outcomes));
        PackedSnapshot {
            text: packer.text.into_boxed_str(),
            ends: packer.ends,
            strings: packer.present,
            numbers,
            numbers_set,
            flags_set,
            flags,
            has_info,
            id_is_key,
            presence: snapshot.presence,
            missing_polls: snapshot.missing_polls,
        }
    }

    /// The snapshot that was packed (`key` is the job it was packed under).
    pub fn unpack(&self, key: &str) -> Snapshot {
        let info = self.has_info.then(|| {
            let s = |i| self.string(i).map(str::to_owned);
            let n = |i: usize| (self.numbers_set & (1 << i) != 0).then_some(self.numbers[i]);
            let f =
                |i: usize| (self.flags_set & (1 << i) != 0).then_some(self.flags & (1 << i) != 0);
            JobInfo {
                id: if self.id_is_key {
                    Some(key.to_owned())
                } else {
                    s(ID)
                },
                project_id: s(PROJECT_ID),
                job_name: s(JOB_NAME),
                last_build_status: s(LAST_BUILD_STATUS),
                last_build_time: n(0),
                health_score: n(1),
                disabled: f(0),
                running_status: s(RUNNING_STATUS),
                build_time: s(BUILD_TIME),
                charge_time: s(CHARGE_TIME),
                create_time: n(2),
                source_code: s(SOURCE_CODE),
                favorite: f(1),
                new_build: f(2),
                project_permission_switch: f(3),
                is_copy: f(4),
                is_delete: f(5),
                is_execute: f(6),
                is_forbidden: f(7),
                is_manager: f(8),
                is_modify: f(9),
                is_view: f(10),
            }
        });
        Snapshot {
            info,
            presence: self.presence,
            settled_status: self.string(SETTLED_STATUS).map(str::to_owned),
            missing_polls: self.missing_polls,
            outcomes: self.string(OUTCOMES).unwrap_or_default().to_owned(),
        }
    }

    /// The job's `project_id`, without unpacking the rest.
    pub fn project_id(&self) -> Option<&str> {
        self.string(PROJECT_ID)
    }

    fn string(&self, i: usize) -> Option<&str> {
        if self.strings & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize)
    }
}

/// Builds the text and its ends, string after string.
#[derive(Default)]
struct Packer {
    text: String,
    ends: [u32; STRINGS],
    present: u16,
}

impl Packer {
    fn push(&mut self, i: usize, s: Option<&str>) {
        if let Some(s) = s {
            self.text.push_str(s);
            self.present |= 1 << i;
        }
        self.end(i);
    }

    /// Marks where string `i` ends (`ends` are positions, so an absent string ends where the
    /// one before it ended). A snapshot's strings are far below 4 GiB together; `u32` keeps
    /// the packed value small.
    fn end(&mut self, i: usize) {
        self.ends[i] = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "f5af662119404ad187437cd272b5099b";

    fn full() -> JobInfo {
        JobInfo {
            id: Some(KEY.to_owned()),
            project_id: Some("85caf40575794f989920-5216d1148af6".to_owned()),
            job_name: Some("nightly · 夜间".to_owned()),
            last_build_status: Some("failed".to_owned()),
            last_build_time: Some(1_721_793_407_000),
            health_score: Some(-3),
            disabled: Some(false),
            running_status: Some(String::new()),
            build_time: Some("27.51".to_owned()),
            charge_time: Some("0".to_owned()),
            create_time: Some(i64::MIN),
            source_code: Some("codehub".to_owned()),
            favorite: Some(true),
            new_build: None,
            project_permission_switch: Some(true),
            is_copy: Some(false),
            is_delete: None,
            is_execute: Some(true),
            is_forbidden: Some(false),
            is_manager: Some(true),
            is_modify: None,
            is_view: Some(true),
        }
    }

    fn round_trip(snapshot: &Snapshot) {
        let packed = PackedSnapshot::pack(KEY, snapshot);
        assert_eq!(&packed.unpack(KEY), snapshot);
    }

    #[test]
    fn every_field_comes_back_as_it_was_packed() {
        let mut snapshot = Snapshot {
            info: Some(full()),
            presence: Presence::Present,
            settled_status: Some("failed".to_owned()),
            missing_polls: 2,
            outcomes: "SFSF".to_owned(),
        };
        round_trip(&snapshot);
        // Another id than the key's, no id, an empty info, no info at all.
        for id in [Some("another".to_owned()), None] {
            snapshot.info.as_mut().expect("info").id = id;
            round_trip(&snapshot);
        }
        snapshot.info = Some(JobInfo::default());
        snapshot.settled_status = Some(String::new());
        snapshot.outcomes.clear();
        round_trip(&snapshot);
        snapshot.info = None;
        snapshot.presence = Presence::NotFound;
        snapshot.settled_status = None;
        round_trip(&snapshot);
    }

    #[test]
    fn each_flag_and_number_is_its_own() {
        // One field set at a time: a wrong bit would show up as another field.
        let flags: [fn(&mut JobInfo) -> &mut Option<bool>; 11] = [
            |i| &mut i.disabled,
            |i| &mut i.favorite,
            |i| &mut i.new_build,
            |i| &mut i.project_permission_switch,
            |i| &mut i.is_copy,
            |i| &mut i.is_delete,
            |i| &mut i.is_execute,
            |i| &mut i.is_forbidden,
            |i| &mut i.is_manager,
            |i| &mut i.is_modify,
            |i| &mut i.is_view,
        ];
        for flag in flags {
            for value in [true, false] {
                let mut info = JobInfo::default();
                *flag(&mut info) = Some(value);
                round_trip(&Snapshot {
                    info: Some(info),
                    presence: Presence::Forbidden,
                    settled_status: None,
                    missing_polls: 0,
                    outcomes: String::new(),
                });
            }
        }
        let numbers: [fn(&mut JobInfo) -> &mut Option<i64>; 3] = [
            |i| &mut i.last_build_time,
            |i| &mut i.health_score,
            |i| &mut i.create_time,
        ];
        for number in numbers {
            let mut info = JobInfo::default();
            *number(&mut info) = Some(0);
            round_trip(&Snapshot {
                info: Some(info),
                presence: Presence::Present,
                settled_status: None,
                missing_polls: u32::MAX,
                outcomes: "S".to_owned(),
            });
        }
    }

    #[test]
    fn the_project_id_is_read_without_unpacking() {
        let snapshot = Snapshot {
            info: Some(full()),
            presence: Presence::Present,
            settled_status: None,
            missing_polls: 0,
            outcomes: String::new(),
        };
        let packed = PackedSnapshot::pack(KEY, &snapshot);
        assert_eq!(
            packed.project_id(),
            Some("85caf40575794f989920-5216d1148af6")
        );
        assert!(std::mem::size_of::<PackedSnapshot>() <= 112);
    }
}
