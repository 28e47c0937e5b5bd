//! `${NAME}` expansion: every string value of the file is expanded on the parsed TOML tree,
//! before it becomes the typed sections, so a new key is expanded without being listed anywhere.
//!
//! A problem names the key path (`channels[0].url`) and the variable, never the value: the
//! value of a secret key must not reach an error message.

use std::borrow::Cow;

use toml::de::{DeTable, DeValue};

/// Where `${NAME}` values come from: the process environment, or a test's table.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands every string in the document, in place. A string that fails to expand is left as
/// written (so that a type error in the same value is still reported as it was before) and
/// its problem is added as `key.path: message`. Problems come in the order of toml's map of
/// keys (sorted by name), not in file order; each one carries its line once `error` adds it.
pub(crate) fn expand_table(table: &mut DeTable<'_>, env: Env<'_>, problems: &mut Vec<String>) {
    expand_entries(table, "", env, problems);
}

fn expand_entries(table: &mut DeTable<'_>, prefix: &str, env: Env<'_>, problems: &mut Vec<String>) {
    for (key, value) in table.iter_mut() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        expand_value(value.get_mut(), &path, env, problems);
    }
}

fn expand_value(value: &mut DeValue<'_>, path: &str, env: Env<'_>, problems: &mut Vec<String>) {
    match value {
        DeValue::String(text) => match expand(text, env) {
            // Unchanged strings keep borrowing the file's text.
            Ok(expanded) if expanded != **text => *text = Cow::Owned(expanded),
            Ok(_) => {}
            Err(e) => problems.push(format!("{path}: {e}")),
        },
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item.get_mut(), &format!("{path}[{i}]"), env, problems);
            }
        }
        DeValue::Table(table) => expand_entries(table, path, env, problems),
        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_) => {}
    }
}

/// Replaces each `${NAME}` with the variable's value. `$${` stands for a literal `${`.
pub(crate) fn expand(raw: &str, env: Env<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail
                .find('}')
                .ok_or_else(|| "unclosed ${ (write $${ for a literal)".to_owned())?;
            let name = &tail[..end];
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!("${{{name}}} is not a valid variable name"));
            }
            let value = env(name).ok_or_else(|| {
                format!("environment variable {name} is not set (referenced as ${{{name}}})")
            })?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "CODEARTS_TOKEN").then(|| "tok-123".to_owned())
    }

    #[test]
    fn expansion_handles_escapes_and_bad_names() {
        assert_eq!(expand("a$${b}c", &env).unwrap(), "a${b}c");
        assert_eq!(expand("cost $5", &env).unwrap(), "cost $5");
        assert_eq!(expand("${CODEARTS_TOKEN}!", &env).unwrap(), "tok-123!");
        assert!(expand("${1X}", &env).is_err());
        assert!(expand("${OPEN", &env).is_err());
    }

    #[test]
    fn the_tree_is_expanded_in_every_string_and_problems_name_the_key_path() {
        let text = "top = \"${CODEARTS_TOKEN}\"\nn = 5\n[a.b]\nlist = [\"x\", \"${UNSET}\"]\n\
                    [[t]]\nk = \"$${lit}\"\n[[t]]\nk = \"${1BAD}\"\n";
        let mut root = DeTable::parse(text).unwrap();
        let mut problems = Vec::new();
        expand_table(root.get_mut(), &env, &mut problems);
        assert_eq!(
            problems,
            [
                "a.b.list[1]: environment variable UNSET is not set (referenced as ${UNSET})",
                "t[1].k: ${1BAD} is not a valid variable name",
            ]
        );
        let value: toml::Value =
            serde::Deserialize::deserialize(toml::de::Deserializer::from(root)).unwrap();
        assert_eq!(value["top"].as_str(), Some("tok-123"));
        assert_eq!(value["n"].as_integer(), Some(5));
        assert_eq!(value["t"][0]["k"].as_str(), Some("${lit}"));
        // A value that failed stays as written.
        assert_eq!(value["a"]["b"]["list"][1].as_str(), Some("${UNSET}"));
    }
}
