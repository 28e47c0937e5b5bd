//! A job list body read in one pass, keeping only what [`super::job_list`] reads.
//!
//! Reading the body into a `serde_json::Value` first built a map per entry with a `String` per
//! key, every field of the entry included (the simulator's pages: 100 entries of ~30 fields),
//! then walked and freed it: a third of a 10,000-job `run --once` was spent there
//! (docs/benchmarks.md, "Start-up"). Here the body is classified as it is read: each entry
//! keeps the values of the [`KNOWN`] fields in a fixed array and skips every other field
//! without allocating. The shapes `job_list` tells apart (a body that is not an object, a list
//! that is missing, null or not a list, an entry that is not an object) are kept as such, so
//! its rules and messages are those of the `Value` version.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The fields of an entry `job_list` reads; every other field is skipped.
const KNOWN: [&str; 29] = [
    "id",
    "project_id",
    "job_name",
    "last_build_status",
    "last_build_time",
    "health_score",
    "disabled",
    "source_code",
    "favorite",
    "project_permission_switch",
    "is_copy",
    "is_delete",
    "is_execute",
    "is_forbidden",
    "is_modify",
    "is_view",
    "last_build_user",
    "last_build_user_id",
    "trigger_type",
    "is_finished",
    "last_job_running_status",
    "build_time",
    "build_project_id",
    "project_name",
    "build_number",
    "code_branch",
    "commit_id",
    "commit_detail_url",
    "forbidden_msg",
];

/// One entry of a list.
// Nearly every entry is an object: boxing the fields would only add an allocation each.
#[allow(clippy::large_enum_variant)]
pub(super) enum Entry {
    Object(Fields),
    NotObject,
}

/// The [`KNOWN`] fields of an entry (the last value of a key given twice, as `Value` keeps).
pub(super) struct Fields([Option<Value>; KNOWN.len()]);

impl Fields {
    /// Takes the value of `key`, which must be one of [`KNOWN`] (its strings move out rather
    /// than being copied: an entry is read once).
    pub(super) fn take(&mut self, key: &str) -> Option<Value> {
        let slot = known_slot(key);
        debug_assert!(slot.is_some(), "{key} is not in list_body::KNOWN");
        self.0.get_mut(slot?)?.take()
    }
}

/// The list under its key.
pub(super) enum List {
    /// Absent or null.
    Missing,
    NotAnArray,
    Entries(Vec<Entry>),
}

/// The object that holds the list and its `total` (the body for ListProjectJobs, its
/// `result` for ListJob).
pub(super) struct Holder {
    pub total: Option<Value>,
    pub list: List,
}

/// ListJob's `result`.
pub(super) enum ResultField {
    /// Absent or null.
    Missing,
    NotObject,
    Object(Holder),
}

/// The top-level object.
pub(super) struct Body {
    pub status: Option<Value>,
    pub error: Option<Value>,
    /// The list and `total` at the top (ListProjectJobs).
    pub top: Holder,
    /// `result` (ListJob).
    pub result: ResultField,
}

/// Reads `body`; `Ok(None)` when it is JSON but not an object. `list_key` names the list at
/// the top (`nested == false`) or inside `result` (`nested == true`).
pub(super) fn read(
    body: &[u8],
    list_key: &'static str,
    nested: bool,
) -> Result<Option<Body>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let top = de.deserialize_any(Classify(TopSeed { list_key, nested }))?;
    de.end()?;
    Ok(top)
}

/// What a value becomes, by its JSON shape: a handler for arrays and objects, and the values
/// for null and for anything else.
trait Shape<'de>: Sized {
    type Out;
    fn null(self) -> Self::Out;
    fn other(self) -> Self::Out;
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Out, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.other())
    }
    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(self.other())
    }
}

/// Any JSON value, handed to a [`Shape`].
struct Classify<S>(S);

impl<'de, S: Shape<'de>> Visitor<'de> for Classify<S> {
    type Value = S::Out;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<S::Out, E> {
        Ok(self.0.null())
    }
    fn visit_none<E>(self) -> Result<S::Out, E> {
        Ok(self.0.null())
    }
    fn visit_bool<E>(self, _: bool) -> Result<S::Out, E> {
        Ok(self.0.other())
    }
    fn visit_i64<E>(self, _: i64) -> Result<S::Out, E> {
        Ok(self.0.other())
    }
    fn visit_u64<E>(self, _: u64) -> Result<S::Out, E> {
        Ok(self.0.other())
    }
    fn visit_f64<E>(self, _: f64) -> Result<S::Out, E> {
        Ok(self.0.other())
    }
    fn visit_str<E>(self, _: &str) -> Result<S::Out, E> {
        Ok(self.0.other())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<S::Out, A::Error> {
        self.0.seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S::Out, A::Error> {
        self.0.map(map)
    }
}

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Classify<S> {
    type Value = S::Out;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Out, D::Error> {
        d.deserialize_any(self)
    }
}

/// A key, as its position in `names` (`None`: a key nobody reads), without allocating.
struct KeyIn<'n>(&'n [&'n str]);

impl<'de> Visitor<'de> for KeyIn<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|n| *n == key))
    }
}

impl<'de> DeserializeSeed<'de> for KeyIn<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

/// The slot of `key` in [`KNOWN`]: a `match` (the compiler branches on the length first)
/// rather than comparing with each name in turn, since it runs for every key of every entry.
fn known_slot(key: &str) -> Option<usize> {
    Some(match key {
        "id" => 0,
        "project_id" => 1,
        "job_name" => 2,
        "last_build_status" => 3,
        "last_build_time" => 4,
        "health_score" => 5,
        "disabled" => 6,
        "source_code" => 7,
        "favorite" => 8,
        "project_permission_switch" => 9,
        "is_copy" => 10,
        "is_delete" => 11,
        "is_execute" => 12,
        "is_forbidden" => 13,
        "is_modify" => 14,
        "is_view" => 15,
        "last_build_user" => 16,
        "last_build_user_id" => 17,
        "trigger_type" => 18,
        "is_finished" => 19,
        "last_job_running_status" => 20,
        "build_time" => 21,
        "build_project_id" => 22,
        "project_name" => 23,
        "build_number" => 24,
        "code_branch" => 25,
        "commit_id" => 26,
        "commit_detail_url" => 27,
        "forbidden_msg" => 28,
        _ => return None,
    })
}

/// An entry's key, as its slot in [`KNOWN`] (`None`: a key nobody reads), without allocating.
struct KnownKey;

impl<'de> Visitor<'de> for KnownKey {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(known_slot(key))
    }
}

impl<'de> DeserializeSeed<'de> for KnownKey {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

struct TopSeed {
    list_key: &'static str,
    nested: bool,
}

impl<'de> Shape<'de> for TopSeed {
    type Out = Option<Body>;
    fn null(self) -> Option<Body> {
        None
    }
    fn other(self) -> Option<Body> {
        None
    }
    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Body>, A::Error> {
        // ListJob's list and total are read inside `result` only; ListProjectJobs has no
        // `result` worth reading.
        let (flat, nested) = (
            ["status", "error", "total", self.list_key],
            ["status", "error", "result"],
        );
        let names: &[&str] = if self.nested { &nested } else { &flat };
        let mut body = Body {
            status: None,
            error: None,
            top: Holder {
                total: None,
                list: List::Missing,
            },
            result: ResultField::Missing,
        };
        while let Some(key) = map.next_key_seed(KeyIn(names))? {
            match (key, self.nested) {
                (Some(0), _) => body.status = Some(map.next_value()?),
                (Some(1), _) => body.error = Some(map.next_value()?),
                (Some(_), true) => {
                    body.result = map.next_value_seed(Classify(ResultSeed(self.list_key)))?;
                }
                (Some(2), false) => body.top.total = Some(map.next_value()?),
                (Some(_), false) => body.top.list = map.next_value_seed(Classify(ListSeed))?,
                (None, _) => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(body))
    }
}

struct ResultSeed(&'static str);

impl<'de> Shape<'de> for ResultSeed {
    type Out = ResultField;
    fn null(self) -> ResultField {
        ResultField::Missing
    }
    fn other(self) -> ResultField {
        ResultField::NotObject
    }
    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResultField, A::Error> {
        let mut holder = Holder {
            total: None,
            list: List::Missing,
        };
        while let Some(key) = map.next_key_seed(KeyIn(&["total", self.0]))? {
            match key {
                Some(0) => holder.total = Some(map.next_value()?),
                Some(_) => holder.list = map.next_value_seed(Classify(ListSeed))?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ResultField::Object(holder))
    }
}

struct ListSeed;

impl<'de> Shape<'de> for ListSeed {
    type Out = List;
    fn null(self) -> List {
        List::Missing
    }
    fn other(self) -> List {
        List::NotAnArray
    }
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1_000));
        while let Some(entry) = seq.next_element_seed(Classify(EntrySeed))? {
            entries.push(entry);
        }
        Ok(List::Entries(entries))
    }
}

struct EntrySeed;

impl<'de> Shape<'de> for EntrySeed {
    type Out = Entry;
    fn null(self) -> Entry {
        Entry::NotObject
    }
    fn other(self) -> Entry {
        Entry::NotObject
    }
    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let mut fields = Fields(Default::default());
        while let Some(key) = map.next_key_seed(KnownKey)? {
            match key.and_then(|k| fields.0.get_mut(k)) {
                Some(slot) => *slot = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Entry::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_has_its_own_slot_and_nothing_else_has_one() {
        for (i, name) in KNOWN.iter().enumerate() {
            assert_eq!(known_slot(name), Some(i), "{name}");
        }
        for other in ["", "ID", "jobs", "job_creator", "is_manager", "id "] {
            assert_eq!(known_slot(other), None, "{other:?}");
        }
    }
}
