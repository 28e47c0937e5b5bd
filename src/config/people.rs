//! `[[people]]`: who a CodeArts user is on each chat platform, so a channel with
//! `mention = "author"` can mention the person whose build failed (docs/events.md,
//! "Mentioning the author"). A person without an id for a platform is named there, never
//! mentioned; nobody else is ever mentioned.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// The CodeArts user: the name builds show (user name or nickname) or the IAM user id,
    /// compared without regard to case.
    pub codearts: String,
    /// Discord user id (digits).
    pub discord: Option<String>,
    /// Slack member id (`U…` or `W…`).
    pub slack: Option<String>,
    /// Feishu open id (`ou_…`).
    pub feishu: Option<String>,
    /// DingTalk: the mobile number the group knows the person by.
    pub dingtalk_mobile: Option<String>,
    /// WeCom user id.
    pub wecom: Option<String>,
}

impl Person {
    /// Whether this entry is the CodeArts user named `who` or with id `user_id`.
    pub fn is(&self, who: Option<&str>, user_id: Option<&str>) -> bool {
        let mine = self.codearts.trim();
        [who, user_id]
            .into_iter()
            .flatten()
            .any(|name| !mine.is_empty() && name.trim().eq_ignore_ascii_case(mine))
    }
}

/// The entry for the CodeArts user `who` (or `user_id`), if one maps them.
pub fn find<'a>(
    people: &'a [Person],
    who: Option<&str>,
    user_id: Option<&str>,
) -> Option<&'a Person> {
    people.iter().find(|p| p.is(who, user_id))
}

/// Checks every entry: ids in each platform's shape, one entry per CodeArts user.
pub(crate) fn validate_people(people: &[Person], problems: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    for (i, p) in people.iter().enumerate() {
        let key = format!("people[{i}]");
        let name = p.codearts.trim().to_lowercase();
        if name.is_empty() {
            problems.push(format!(
                "{key}.codearts: is empty (the CodeArts user name or id)"
            ));
        } else if !seen.insert(name) {
            problems.push(format!("{key}.codearts: {:?} is mapped twice", p.codearts));
        }
        let check = |field: &str,
                     value: &Option<String>,
                     ok: fn(&str) -> bool,
                     shape: &str,
                     problems: &mut Vec<String>| {
            if let Some(v) = value
                && !ok(v)
            {
                problems.push(format!("{key}.{field}: {v:?} is not {shape}"));
            }
        };
        check(
            "discord",
            &p.discord,
            |v| v.len() >= 15 && v.len() <= 21 && v.bytes().all(|b| b.is_ascii_digit()),
            "a Discord user id (15 to 21 digits; Developer Mode, right-click the user, Copy User ID)",
            problems,
        );
        check(
            "slack",
            &p.slack,
            |v| {
                v.len() >= 9
                    && v.len() <= 20
                    && (v.starts_with('U') || v.starts_with('W'))
                    && v.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            },
            "a Slack member id (U or W and upper-case letters and digits; profile, More, Copy member ID)",
            problems,
        );
        check(
            "feishu",
            &p.feishu,
            |v| {
                v.starts_with("ou_")
                    && v.len() > 3
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            },
            "a Feishu open id (ou_…)",
            problems,
        );
        check(
            "dingtalk_mobile",
            &p.dingtalk_mobile,
            |v| {
                (5..=20).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_digit() || b == b'+' || b == b'-')
            },
            "a mobile number (digits, + and -)",
            problems,
        );
        check(
            "wecom",
            &p.wecom,
            |v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@')
                    })
            },
            "a WeCom user id (letters, digits, _ - . @)",
            problems,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Person {
        Person {
            codearts: "alice".to_owned(),
            discord: Some("123456789012345678".to_owned()),
            slack: Some("U012ABCDEF".to_owned()),
            feishu: None,
            dingtalk_mobile: None,
            wecom: None,
        }
    }

    #[test]
    fn people_are_found_by_name_or_id_without_case() {
        let people = [alice()];
        assert!(find(&people, Some("Alice"), None).is_some());
        assert!(find(&people, None, Some("ALICE")).is_some());
        assert!(find(&people, Some("bob"), Some("u-2")).is_none());
    }

    #[test]
    fn ids_of_the_wrong_shape_are_named() {
        let mut bad = alice();
        bad.discord = Some("@alice".to_owned());
        bad.slack = Some("<@U012>".to_owned());
        let mut problems = Vec::new();
        validate_people(&[bad, alice()], &mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("people[0].discord"));
        assert!(problems[1].starts_with("people[0].slack"));
        assert!(problems[2].contains("mapped twice"));
    }
}
