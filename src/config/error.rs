//! The error a config file fails with: every problem, each naming its key, and the line in
//! the file where that key is set.

use std::fmt;

/// Every problem found in a config file, each naming its key.
#[derive(Debug)]
pub struct ConfigError {
    pub origin: String,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.problems.as_slice() {
            return write!(f, "{}: {only}", self.origin);
        }
        write!(f, "{}: {} problems:", self.origin, self.problems.len())?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Prefixes a `key: message` problem with the line of `key` in the file, when it is there.
pub(crate) fn with_line(text: &str, problem: String) -> String {
    let Some((key, _)) = problem.split_once(": ") else {
        return problem;
    };
    match line_of(text, key) {
        Some(line) => format!("line {line}: {problem}"),
        None => problem,
    }
}

/// The 1-based line where a key path such as `jobs[2].id` or `codearts.auth.token` is set.
fn line_of(text: &str, path: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut span = None;
    for segment in path.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let (key, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
        span = Some(key.span());
        let mut value = value;
        if let Some(i) = index {
            let DeValue::Array(items) = value.get_ref() else {
                break;
            };
            value = items.get(i)?;
            span = Some(value.span());
        }
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    let start = span?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
}
