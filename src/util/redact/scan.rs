//! The credential rules of [`super::Redactor`], one function per shape, each a single pass over
//! one line that returns the line with what it matched replaced by [`MARK`]. Matching is on
//! ASCII (case-insensitive where names are concerned), and every cut is at an ASCII byte or at
//! the end of the line, so multi-byte text passes through untouched.

/// What every redacted value is replaced with.
pub const MARK: &str = "[redacted]";

/// Header names whose value is a credential up to the end of the line (or of its quotes).
const HEADERS: &[&str] = &[
    "authorization",
    "x-auth-token",
    "x-subject-token",
    "x-security-token",
    "cookie",
    "set-cookie",
];

/// Key words whose value is always redacted, wherever they appear inside a key
/// (`DB_PASSWORD`, `client_secret`, `apiKey`).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "accesskey",
    "access_key",
    "access-key",
    "privatekey",
    "private_key",
    "private-key",
];

/// Key words that count only as a whole word, not followed by a letter: `token` (but not
/// `tokenizer`, `tokens`), `pwd` (but `PWD` and `OLDPWD` alone are directories).
const SECRET_STEMS: &[&str] = &["token", "pwd"];

/// Key words whose value is redacted only when it looks like key material (a long run of
/// base64 or hex), wherever they appear in a key: `cache_key=…` is often innocent,
/// `cache_key=3f2a…c9` need not be shown.
const KEY_WORDS: &[&str] = &["key", "signature", "session", "cookie", "salt"];

/// The same, as the key's last part only (`x_auth`, `AK`, `sk`), where a substring match would
/// catch innocent keys (`author`, `task`).
const KEY_PARTS: &[&str] = &["auth", "sig", "ak", "sk"];

/// The shortest value the "long base64 or hex run" rule matches.
const MIN_KEY_MATERIAL: usize = 16;

/// Prefixes of well-known token formats (GitHub, GitLab, Slack).
const TOKEN_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxr-",
    "xoxs-",
];

/// Removes terminal escape sequences (`ESC [ … letter`) and control characters other than tab.
pub(super) fn strip_controls(line: &str) -> String {
    if !line.chars().any(|c| c.is_control() && c != '\t') {
        return line.to_owned();
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, then one final byte in '@'..='~'.
                for next in chars.by_ref() {
                    if ('@'..='~').contains(&next) {
                        break;
                    }
                }
            }
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

/// `Authorization: …`, `X-Auth-Token: …`, `Cookie: …` (also `=` and JSON-style quoted
/// names): the value, to the end of the line or of the quotes it sits in.
pub(super) fn header_values(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    let bytes = line.as_bytes();
    let mut cuts = Vec::new();
    // Where each name occurs next at or after `from`, searched again only once passed, so
    // the pass stays linear however often the names occur.
    let mut next: Vec<Option<usize>> = HEADERS.iter().map(|name| lower.find(name)).collect();
    let mut from = 0;
    loop {
        for (slot, name) in next.iter_mut().zip(HEADERS) {
            if slot.is_some_and(|at| at < from) {
                *slot = lower[from..].find(name).map(|at| from + at);
            }
        }
        let found = next
            .iter()
            .zip(HEADERS)
            .filter_map(|(at, name)| at.map(|at| (at, name.len())))
            .min();
        let Some((start, len)) = found else { break };
        from = start + len;
        if start > 0 && is_word(bytes[start - 1]) && bytes[start - 1] != b'-' {
            continue;
        }
        let Some(value_at) = separator_after(bytes, start + len) else {
            continue;
        };
        let opening = start
            .checked_sub(1)
            .map(|i| bytes[i])
            .filter(|b| is_quote(*b));
        let end = match (bytes.get(value_at), opening) {
            (Some(&q), _) if is_quote(q) => closing_quote(bytes, value_at),
            (_, Some(q)) => find_byte(bytes, value_at, q),
            _ => bytes.len(),
        };
        let value_start = if bytes.get(value_at).is_some_and(|b| is_quote(*b)) {
            value_at + 1
        } else {
            value_at
        };
        if end > value_start {
            cuts.push((value_start, end));
            from = end;
        }
    }
    apply(line, &cuts)
}

/// `Bearer <token>` and `Basic <base64>`: the token, when it looks like one (8 characters or
/// more, with a digit, a symbol or an upper-case letter after the first), so prose such as
/// "Bearer authentication" stays.
pub(super) fn auth_schemes(line: &str) -> String {
    let lower = line.to_ascii_lowercase();
    let bytes = line.as_bytes();
    let mut cuts = Vec::new();
    for scheme in ["bearer", "basic"] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(scheme) {
            let start = from + at;
            let after = start + scheme.len();
            from = after;
            if (start > 0 && is_word(bytes[start - 1])) || bytes.get(after) != Some(&b' ') {
                continue;
            }
            let token_at = after + bytes[after..].iter().take_while(|b| **b == b' ').count();
            let end = token_at
                + bytes[token_at..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(b))
                    .count();
            if looks_like_token(&bytes[token_at..end]) {
                cuts.push((token_at, end));
                from = end;
            }
        }
    }
    cuts.sort_unstable();
    apply(line, &cuts)
}

/// `scheme://user:password@host`: the user-info part, when it has a password or is long
/// enough to be a token (`https://ghp_…@github.com`); `ssh://git@host` stays.
pub(super) fn url_userinfo(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut cuts = Vec::new();
    let mut from = 0;
    while let Some(at) = line[from..].find("://") {
        let start = from + at + 3;
        let end = start
            + bytes[start..]
                .iter()
                .take_while(|b| !b.is_ascii_whitespace() && !b"/?#\"'<>()[]{}`".contains(b))
                .count();
        from = end.max(start);
        if let Some(at_sign) = line[start..end].rfind('@') {
            let info = &line[start..start + at_sign];
            if info.contains(':') || info.len() >= MIN_KEY_MATERIAL {
                cuts.push((start, start + at_sign));
            }
        }
    }
    apply(line, &cuts)
}

/// `key=value`, `key: value`, `"key": "value"`, `key = 'value'`, `KEY=value` in a URL query
/// (ending at `&`): the value, when the key names a secret ([`SECRET_WORDS`],
/// [`SECRET_STEMS`]) or the key names key material ([`KEY_WORDS`]) and the value is a long
/// base64 or hex run. An unquoted value ends at white space or `&,;)]}`; a quoted one at its
/// closing quote. Placeholders (`true`, `null`, `***`, `$VAR`, …) are left as they are.
pub(super) fn key_values(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let sep = bytes[i];
        let value_at = if sep == b'=' || sep == b':' {
            separator_value(bytes, i)
        } else {
            None
        };
        let Some(value_at) = value_at else {
            i += 1;
            continue;
        };
        let nested = matches!(bytes[value_at], b'{' | b'[' | b'(');
        let kind = key_before(line, i)
            .filter(|_| !nested)
            .map(|(key, opening)| (classify_key(&key), opening));
        match kind {
            Some((KeyKind::Secret, opening)) => {
                let (start, end) = value_span(bytes, value_at, opening, false);
                if end > start && !is_placeholder(&line[start..end]) {
                    cuts.push((start, end));
                }
                // A placeholder holds no separator either: nothing to look at inside it.
                i = end.max(i + 1);
            }
            Some((KeyKind::Material, opening)) => {
                let (start, end) = value_span(bytes, value_at, opening, true);
                if is_key_material(&line[start..end]) {
                    cuts.push((start, end));
                    i = end.max(i + 1);
                } else {
                    i += 1;
                }
            }
            Some((KeyKind::Plain, _)) | None => i += 1,
        }
    }
    apply(line, &cuts)
}

/// `--password value`, `--token value` (a command-line flag naming a secret, then a space):
/// the value.
pub(super) fn flag_values(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut cuts = Vec::new();
    let mut from = 0;
    while let Some(at) = line[from..].find("--") {
        let name_at = from + at + 2;
        from = name_at;
        if !bytes.get(name_at).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        let name_end = name_at
            + bytes[name_at..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_')
                .count();
        from = name_end;
        if bytes.get(name_end) != Some(&b' ') {
            continue;
        }
        let key = line[name_at..name_end].to_ascii_lowercase();
        let takes_no_secret = ["-stdin", "-file", "-env", "-from", "-path"]
            .iter()
            .any(|suffix| key.ends_with(suffix));
        if takes_no_secret || classify_key(&key) != KeyKind::Secret {
            continue;
        }
        let value_at = name_end + 1;
        if bytes.get(value_at).is_none_or(|b| b"-<>|& ".contains(b)) {
            continue;
        }
        let (start, end) = value_span(bytes, value_at, None, false);
        if end > start && !is_placeholder(&line[start..end]) {
            cuts.push((start, end));
        }
        from = end.max(from);
    }
    apply(line, &cuts)
}

/// Standalone strings shaped like credentials: a Huawei Cloud access key (exactly 20 upper-case
/// letters and digits, with both), a secret key (exactly 40 letters and digits with upper case,
/// lower case and digits: a 40-hex git commit id has no upper case), a JWT (`eyJ…` with two
/// dots), and tokens with a well-known prefix ([`TOKEN_PREFIXES`]).
pub(super) fn shaped_tokens(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut cuts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_token_byte(bytes[i]) || (i > 0 && is_token_byte(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let end = i + bytes[i..].iter().take_while(|b| is_token_byte(**b)).count();
        let word = &line[i..end];
        if is_shaped_secret(word) {
            cuts.push((i, end));
        } else {
            // Alphanumeric runs inside the word (`AK=…` glued by `_` or `.`).
            let mut j = i;
            while j < end {
                let run = bytes[j..end]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric())
                    .count();
                if run > 0 && is_aksk(&line[j..j + run]) {
                    cuts.push((j, j + run));
                }
                j += run.max(1);
            }
        }
        i = end;
    }
    apply(line, &cuts)
}

/// A line that is nothing but a long base64 run with mixed case: the body of a PEM block
/// whose `BEGIN` line is not in view.
pub(super) fn is_key_body_line(line: &str) -> bool {
    let t = line.trim();
    let body = t.trim_end_matches('=');
    body.len() >= 24
        && t.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        && body.bytes().any(|b| b.is_ascii_uppercase())
        && body.bytes().any(|b| b.is_ascii_lowercase())
        && body
            .bytes()
            .any(|b| b.is_ascii_digit() || b == b'+' || b == b'/')
        && (body.len() >= 40 || t.len() != body.len())
}

#[derive(Debug, PartialEq, Eq)]
enum KeyKind {
    Secret,
    Material,
    Plain,
}

fn classify_key(key: &str) -> KeyKind {
    if SECRET_WORDS.iter().any(|w| key.contains(w))
        || (key != "pwd" && key != "oldpwd" && SECRET_STEMS.iter().any(|stem| has_stem(key, stem)))
    {
        return KeyKind::Secret;
    }
    let last_part = key.rsplit(['_', '-', '.']).next().unwrap_or(key);
    if KEY_WORDS.iter().any(|w| key.contains(w)) || KEY_PARTS.contains(&last_part) {
        return KeyKind::Material;
    }
    KeyKind::Plain
}

/// `stem` occurs in `key` not followed by a letter (`github_token`, `authToken2`, not
/// `tokenizer`).
fn has_stem(key: &str, stem: &str) -> bool {
    key.match_indices(stem).any(|(at, _)| {
        !key.as_bytes()
            .get(at + stem.len())
            .is_some_and(u8::is_ascii_alphabetic)
    })
}

/// A value that stands for no secret: empty, a boolean or null word, a mask, a variable
/// reference, or what a redactor already put there.
fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    v.is_empty()
        || [
            "true",
            "false",
            "null",
            "none",
            "nil",
            "undefined",
            "[redacted]",
            "<redacted>",
        ]
        .contains(&lower.as_str())
        || v.bytes().all(|b| b == b'*' || b == b'x' || b == b'X')
        || (v.starts_with('$') && v[1..].bytes().all(|b| is_word(b) || b"{}()".contains(&b)))
}

/// A run of base64 or hex of [`MIN_KEY_MATERIAL`] characters or more, with a digit in it.
fn is_key_material(value: &str) -> bool {
    value.len() >= MIN_KEY_MATERIAL
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
        && value.bytes().any(|b| b.is_ascii_digit())
}

fn is_shaped_secret(word: &str) -> bool {
    is_aksk(word)
        || (word.starts_with("eyJ") && word.len() >= 20 && word.matches('.').count() == 2)
        || TOKEN_PREFIXES
            .iter()
            .any(|p| word.starts_with(p) && word.len() >= p.len() + 16)
}

/// An access key (20 upper-case letters and digits, with both) or a secret key (40 letters
/// and digits, with upper case, lower case and digits).
fn is_aksk(word: &str) -> bool {
    let b = word.as_bytes();
    let all_alnum = b.iter().all(u8::is_ascii_alphanumeric);
    let upper = b.iter().any(u8::is_ascii_uppercase);
    let lower = b.iter().any(u8::is_ascii_lowercase);
    let digit = b.iter().any(u8::is_ascii_digit);
    let access_key = b.len() == 20 && !lower;
    let secret_key = b.len() == 40 && lower;
    all_alnum && upper && digit && (access_key || secret_key)
}

/// A bearer or basic credential rather than a word of prose.
fn looks_like_token(token: &[u8]) -> bool {
    token.len() >= 8
        && (token
            .iter()
            .any(|b| b.is_ascii_digit() || b"-._~+/=".contains(b))
            || token[1..].iter().any(u8::is_ascii_uppercase))
}

/// After a name ending at `at`: an optional closing quote, spaces, `:` or `=`, spaces; where
/// the value starts. `None` when no separator follows.
fn separator_after(bytes: &[u8], mut at: usize) -> Option<usize> {
    if bytes.get(at).is_some_and(|b| is_quote(*b)) {
        at += 1;
    }
    at += bytes[at.min(bytes.len())..]
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    match bytes.get(at) {
        Some(b':' | b'=') => separator_value(bytes, at),
        _ => None,
    }
}

/// For a `:` or `=` at `sep`, where its value starts (after spaces); `None` for `::`, `==`,
/// `!=`, `<=`, `>=`, `:=`-style operators and for a separator with nothing after it.
fn separator_value(bytes: &[u8], sep: usize) -> Option<usize> {
    let next = bytes.get(sep + 1).copied();
    let prev = sep.checked_sub(1).map(|i| bytes[i]);
    if matches!(next, Some(b':' | b'=' | b'/'))
        || matches!(prev, Some(b':' | b'=' | b'!' | b'<' | b'>'))
    {
        return None;
    }
    let start = sep + 1;
    let at = start
        + bytes[start..]
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
    (at < bytes.len()).then_some(at)
}

/// The key before a separator at `sep` (lower-cased), and the quote that opened the pair
/// when it sits inside one (`"password=x"`) rather than around the key alone (`"password":`).
fn key_before(line: &str, sep: usize) -> Option<(String, Option<u8>)> {
    let bytes = line.as_bytes();
    let mut end = sep;
    while end > 0 && (bytes[end - 1] == b' ' || bytes[end - 1] == b'\t') {
        end -= 1;
    }
    let closing = end > 0 && is_quote(bytes[end - 1]);
    if closing {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && (is_word(bytes[start - 1]) || bytes[start - 1] == b'.') {
        start -= 1;
    }
    if start == end {
        return None;
    }
    let opening = start
        .checked_sub(1)
        .map(|i| bytes[i])
        .filter(|b| is_quote(*b) && !closing);
    Some((line[start..end].to_ascii_lowercase(), opening))
}

/// The value starting at `at`: inside its quotes when quoted, else up to white space, one of
/// `&,;)]}`, a quote, or the `opening` quote of the pair. With `short`, an unquoted value
/// also ends at `:` and at an `=` that is not trailing base64 padding, so key material is
/// measured without running into the next pair (and the scan stays linear).
fn value_span(bytes: &[u8], at: usize, opening: Option<u8>, short: bool) -> (usize, usize) {
    if bytes.get(at).is_some_and(|q| is_quote(*q)) {
        return (at + 1, closing_quote(bytes, at));
    }
    let stops = |b: u8| b.is_ascii_whitespace() || b"&,;)]}\"'`".contains(&b) || Some(b) == opening;
    let mut end = at;
    while end < bytes.len() && !stops(bytes[end]) {
        if short && bytes[end] == b':' {
            break;
        }
        if short && bytes[end] == b'=' {
            let padding = bytes[end..].iter().take_while(|b| **b == b'=').count();
            if bytes.get(end + padding).is_none_or(|b| stops(*b)) {
                end += padding;
            }
            break;
        }
        end += 1;
    }
    (at, end)
}

/// The index of the quote closing the one at `open` (backslash escapes skipped), or the end.
fn closing_quote(bytes: &[u8], open: usize) -> usize {
    let quote = bytes[open];
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn find_byte(bytes: &[u8], from: usize, byte: u8) -> usize {
    bytes[from..]
        .iter()
        .position(|b| *b == byte)
        .map_or(bytes.len(), |p| from + p)
}

fn is_quote(b: u8) -> bool {
    b == b'"' || b == b'\''
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_-.".contains(&b)
}

/// `line` with each `(start, end)` byte range (sorted, not overlapping, at ASCII boundaries)
/// replaced by [`MARK`].
fn apply(line: &str, cuts: &[(usize, usize)]) -> String {
    if cuts.is_empty() {
        return line.to_owned();
    }
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    for &(start, end) in cuts {
        if start < copied || end > line.len() || start >= end {
            continue;
        }
        out.push_str(&line[copied..start]);
        out.push_str(MARK);
        copied = end;
    }
    out.push_str(&line[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_redacted_to_the_end_of_the_line_or_their_quotes() {
        assert_eq!(
            header_values("Authorization: Bearer abc.def.ghi"),
            "Authorization: [redacted]"
        );
        assert_eq!(
            header_values(r#"curl -H "Authorization: Basic dXNlcjpwYXNz" https://x.test/a"#),
            r#"curl -H "Authorization: [redacted]" https://x.test/a"#
        );
        assert_eq!(
            header_values(r#"{"X-Auth-Token": "MIIsecret", "accept": "json"}"#),
            r#"{"X-Auth-Token": "[redacted]", "accept": "json"}"#
        );
        assert_eq!(
            header_values("proxy-authorization=Negotiate YIIabc"),
            "proxy-authorization=[redacted]"
        );
        assert_eq!(
            header_values("Set-Cookie: sid=42; Path=/"),
            "Set-Cookie: [redacted]"
        );
        for innocent in [
            "authorization failed for user bob",
            "cookies: 3",
            "unauthorization: x",
        ] {
            assert_eq!(header_values(innocent), innocent);
        }
    }

    #[test]
    fn bearer_and_basic_tokens_are_redacted_but_prose_stays() {
        assert_eq!(
            auth_schemes("sending Bearer eyJhbGciOi.J9x-y_z now"),
            "sending Bearer [redacted] now"
        );
        assert_eq!(auth_schemes("basic dXNlcjpwYXNz"), "basic [redacted]");
        for innocent in [
            "Bearer authentication is required",
            "Basic setup done",
            "BasicAuthFilter loaded",
            "bearer",
        ] {
            assert_eq!(auth_schemes(innocent), innocent);
        }
    }

    #[test]
    fn url_passwords_and_token_users_are_redacted() {
        assert_eq!(
            url_userinfo("git clone https://bot:hunter2@codehub.example.com/a/b.git"),
            "git clone https://[redacted]@codehub.example.com/a/b.git"
        );
        assert_eq!(
            url_userinfo("remote https://ghp_0123456789abcdef0123@github.com/x"),
            "remote https://[redacted]@github.com/x"
        );
        for innocent in [
            "ssh://git@github.com/org/repo.git",
            "git@github.com:org/repo.git",
            "see https://example.com/a@b",
            "mailto dev@example.com",
        ] {
            assert_eq!(url_userinfo(innocent), innocent);
        }
    }

    #[test]
    fn secret_keys_lose_their_values_in_every_common_syntax() {
        let cases = [
            ("password=hunter2", "password=[redacted]"),
            (
                "PASSWORD = hunter2 (from vault)",
                "PASSWORD = [redacted] (from vault)",
            ),
            ("db_passwd: 'p@ss w0rd'", "db_passwd: '[redacted]'"),
            (
                r#"{"password": "hunter2", "user": "bob"}"#,
                r#"{"password": "[redacted]", "user": "bob"}"#,
            ),
            (
                r#"{"client_secret":"abc\"def"}"#,
                r#"{"client_secret":"[redacted]"}"#,
            ),
            (
                "https://x.test/?user=a&token=abc123&x=1",
                "https://x.test/?user=a&token=[redacted]&x=1",
            ),
            (
                "export GITHUB_TOKEN=ghx_abc",
                "export GITHUB_TOKEN=[redacted]",
            ),
            (
                "accessToken: abc, next: 1",
                "accessToken: [redacted], next: 1",
            ),
            (
                "api_key=k1; api-key=k2",
                "api_key=[redacted]; api-key=[redacted]",
            ),
            (r#"-e "DB_PWD=s3cr3t" run"#, r#"-e "DB_PWD=[redacted]" run"#),
            (
                "--from-literal=password=abc",
                "--from-literal=password=[redacted]",
            ),
            ("cache_key=3f2a9c0b1d2e3f4a5b6c", "cache_key=[redacted]"),
            (
                "SK=Zq3xV8bN2mL5kJ7hG9fD1sA4pO6iU0yT3rE5wQ8z",
                "SK=[redacted]",
            ),
            ("x_auth: 0123456789abcdef01", "x_auth: [redacted]"),
        ];
        for (line, want) in cases {
            assert_eq!(key_values(line), want, "{line}");
        }
    }

    #[test]
    fn placeholders_plain_keys_and_operators_stay() {
        for innocent in [
            "password: ",
            "password=",
            r#""password": """#,
            "password: true",
            "secret=null",
            "token: ******",
            "PASSWORD=$DB_PASSWORD",
            "password=${{ secrets.PW }}",
            "PWD=/home/build",
            "OLDPWD=/tmp",
            "tokenizer: loaded",
            "tokens: 5",
            "if token == other",
            "token != nil",
            "std::token::Kind",
            "time 12:30:45",
            "https://example.com/x",
            "cache_key=build-cache",
            "author: 0123456789abcdef0123",
            "task: 0123456789abcdef0123",
            "commit: 4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a",
            r#""credentials": {"#,
            "key: -----BEGIN RSA PRIVATE KEY-----",
        ] {
            assert_eq!(key_values(innocent), innocent, "{innocent}");
        }
    }

    #[test]
    fn secret_flags_lose_their_values() {
        assert_eq!(
            flag_values("docker login --username bob --password hunter2 swr.test"),
            "docker login --username bob --password [redacted] swr.test"
        );
        assert_eq!(
            flag_values("tool --token 'a b' x"),
            "tool --token '[redacted]' x"
        );
        for innocent in [
            "--password-stdin < file",
            "--password --verbose",
            "--tokens 5",
            "a -- b",
        ] {
            assert_eq!(flag_values(innocent), innocent);
        }
    }

    #[test]
    fn ak_sk_jwt_and_prefixed_tokens_are_redacted_by_shape() {
        let cases = [
            ("ak HPUAL6NHO1XQ4KSVPX9Z used", "ak [redacted] used"),
            ("key AKIAIOSFODNN7EXAMPLE.", "key [redacted]."),
            (
                "sk Zq3xV8bN2mL5kJ7hG9fD1sA4pO6iU0yT3rE5wQ8z end",
                "sk [redacted] end",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl ok",
                "jwt [redacted] ok",
            ),
            ("ghp_0123456789abcdefABCD0123 pushed", "[redacted] pushed"),
            ("slack xoxb-1234-5678-abcdefghij", "slack [redacted]"),
            (
                "glued CLOUD_SDK_AK_HPUAL6NHO1XQ4KSVPX9Z",
                "glued CLOUD_SDK_AK_[redacted]",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(shaped_tokens(line), want, "{line}");
        }
        for innocent in [
            "commit 4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a",
            "digest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "MAX_RETRY_COUNT_LIMIT",
            "ABCDEFGHIJKLMNOPQRST",
            "12345678901234567890",
            "job f5af662119404ad187437cd272b5099b",
            "uuid 550E8400-E29B-41D4-A716-446655440000",
            "com.example.very.long.PackageNameForTesting",
        ] {
            assert_eq!(shaped_tokens(innocent), innocent, "{innocent}");
        }
    }

    #[test]
    fn key_body_lines_are_recognised_but_hashes_and_words_are_not() {
        assert!(is_key_body_line(
            "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"
        ));
        assert!(is_key_body_line("dHJ1bmNhdGVkS2V5TWF0ZXJpYWw="));
        for innocent in [
            "4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a",
            "SomeJavaClassNameThatIsVeryLongIndeedYes",
            "BUILD SUCCESSFUL in 4s",
            "",
        ] {
            assert!(!is_key_body_line(innocent), "{innocent}");
        }
    }

    #[test]
    fn control_sequences_go_and_text_stays() {
        assert_eq!(strip_controls("\u{1b}[1;32mok\u{1b}[0m"), "ok");
        assert_eq!(strip_controls("构建 ok"), "构建 ok");
        assert_eq!(strip_controls("a\u{0}b\u{1b}"), "ab");
    }

    #[test]
    fn hostile_lines_finish_quickly() {
        let started = std::time::Instant::now();
        for line in [
            "=".repeat(200_000),
            ":".repeat(200_000),
            "a=".repeat(100_000),
            "password=".repeat(20_000),
            "\"".repeat(200_000),
            "Bearer ".repeat(30_000),
            "://@".repeat(50_000),
            "-----BEGIN ".repeat(20_000),
            "a".repeat(200_000),
        ] {
            let r = super::super::Redactor::default();
            let _ = r.line(&line);
            let _ = r.lines([line.as_str(), line.as_str()]);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }
}
