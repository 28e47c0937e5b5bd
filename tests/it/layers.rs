//! The crate's layout rules, checked on the source itself (README "Architecture"):
//! - every module of a layer imports only modules of the layers below it (or its own layer's
//!   folder), never one above;
//! - no two modules import each other, directly or through others (no import circle);
//! - no source file is longer than [`MAX_LINES`] lines, its `#[cfg(test)]` module aside;
//! - `src/` holds `main.rs`, `lib.rs`, `app.rs` and folders only.
//!
//! An import is any path in code (not in comments or strings) that names a module of this
//! crate: `crate::…`, `super::…`, `self::…`, a child module, or an alias a `use` made for one.
//! A `pub use` of a module's own descendant is naming, not a dependency, and a path through such
//! a re-export counts as a path to the module that defines the item.
//!
//! This is `tests/it/layers.rs`, a module of the `it` test binary; it reads the tree through
//! `CARGO_MANIFEST_DIR`, so it finds `src/` wherever the test binary runs from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import its own top-level folder and anything listed
/// before it.
const LAYERS: &[&str] = &[
    "util", "codearts", "sim", "domain", "store", "config", "notify", "engine", "chat", "server",
    "app", "bench", "cli",
];

/// Longest a source file may be, its test module aside.
const MAX_LINES: usize = 600;

type ModPath = Vec<String>;

struct Module {
    file: PathBuf,
    /// The code with comments, strings and the test module removed.
    code: String,
    lines: usize,
    children: BTreeSet<String>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn module_path(file: &Path) -> ModPath {
    let rel = file.strip_prefix(src_dir()).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs").to_owned();
    if !(stem == "mod" || (parts.is_empty() && (stem == "lib" || stem == "main"))) {
        parts.push(stem);
    } else if parts.is_empty() {
        parts.push(stem); // lib, main: the roots
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable src dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The source with comments and string/char literals blanked (newlines kept).
fn strip(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    _ => j += 1,
                }
            }
            out.extend(chars[i..j.min(chars.len())].iter().map(|&c| blank(c)));
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(chars.len());
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{…}'), or a lifetime ('a).
            let end = if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                j + 1
            } else if chars.get(i + 2) == Some(&'\'') {
                i + 3
            } else {
                i + 1
            };
            let end = end.min(chars.len());
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The code without its `#[cfg(test)]` items (the test module and test-only helpers).
fn without_tests(code: &str) -> String {
    without_tests_counted(code).0
}

/// How many lines the `#[cfg(test)]` items of `code` span.
fn test_lines(code: &str) -> usize {
    without_tests_counted(code).1
}

/// [`without_tests`], and how many lines it blanked.
fn without_tests_counted(code: &str) -> (String, usize) {
    let mut removed = 0;
    let mut out = code.to_owned();
    while let Some(at) = out.find("#[cfg(test)]") {
        let rest = &out[at..];
        let end = match (rest.find('{'), rest.find(';')) {
            (Some(brace), semi) if semi.is_none_or(|s| brace < s) => {
                let mut depth = 0;
                let mut end = rest.len();
                for (k, ch) in rest[brace..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = brace + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (_, Some(semi)) => semi + 1,
            _ => rest.len(),
        };
        let blanked: String = rest[..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        removed += rest[..end].matches('\n').count() + 1;
        out.replace_range(at..at + end, &blanked);
    }
    (out, removed)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Sep, // ::
    Punct(char),
}

fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(Token::Ident(word.trim_start_matches("r#").to_owned()));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token::Sep);
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

/// One `use` tree flattened: (path, the name it binds, whether it is `pub`).
fn use_trees(toks: &[Token]) -> Vec<(Vec<String>, String, bool)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == Token::Ident("use".into()) {
            let public = i > 0
                && (toks[i - 1] == Token::Ident("pub".into()) || toks[i - 1] == Token::Punct(')'));
            let mut j = i + 1;
            tree(toks, &mut j, Vec::new(), public, &mut out);
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn tree(
    toks: &[Token],
    j: &mut usize,
    prefix: Vec<String>,
    public: bool,
    out: &mut Vec<(Vec<String>, String, bool)>,
) {
    let mut path = prefix;
    loop {
        match toks.get(*j) {
            Some(Token::Ident(w)) if w == "as" => {
                *j += 1;
                if let Some(Token::Ident(alias)) = toks.get(*j) {
                    let alias = alias.clone();
                    *j += 1;
                    out.push((path, alias, public));
                }
                return;
            }
            Some(Token::Ident(w)) if w == "self" && !path.is_empty() => {
                *j += 1;
                let name = path.last().cloned().unwrap_or_default();
                if !matches!(toks.get(*j), Some(Token::Ident(a)) if a == "as") {
                    out.push((path, name, public));
                    return;
                }
            }
            Some(Token::Ident(w)) => {
                path.push(w.clone());
                *j += 1;
            }
            Some(Token::Sep) => *j += 1,
            Some(Token::Punct('{')) => {
                *j += 1;
                loop {
                    match toks.get(*j) {
                        Some(Token::Punct('}')) => {
                            *j += 1;
                            return;
                        }
                        Some(Token::Punct(',')) => *j += 1,
                        None => return,
                        _ => tree(toks, j, path.clone(), public, out),
                    }
                }
            }
            Some(Token::Punct('*')) => {
                *j += 1;
                out.push((path, "*".into(), public));
                return;
            }
            _ => {
                if !path.is_empty() {
                    let name = path.last().cloned().unwrap_or_default();
                    out.push((path, name, public));
                }
                return;
            }
        }
    }
}

/// Paths in code: `a::b::c` runs of identifiers, with where they start.
fn inline_paths(toks: &[Token]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == Token::Ident("use".into()) {
            // `use` trees are read by [`use_trees`].
            while i < toks.len() && toks[i] != Token::Punct(';') {
                i += 1;
            }
            continue;
        }
        let preceded_by_sep = i > 0 && toks[i - 1] == Token::Sep;
        if let (Token::Ident(first), false) = (&toks[i], preceded_by_sep) {
            let mut path = vec![first.clone()];
            let mut j = i + 1;
            while toks.get(j) == Some(&Token::Sep) {
                match toks.get(j + 1) {
                    Some(Token::Ident(w)) => {
                        path.push(w.clone());
                        j += 2;
                    }
                    _ => break,
                }
            }
            if path.len() > 1 {
                out.push(path);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

struct Crate {
    modules: BTreeMap<ModPath, Module>,
    /// `(module, name)` → the module a `pub use` of a descendant points that name at.
    reexports: BTreeMap<(ModPath, String), ModPath>,
}

impl Crate {
    fn load() -> Self {
        let mut files = Vec::new();
        rust_files(&src_dir(), &mut files);
        let mut modules = BTreeMap::new();
        for file in files {
            let source = std::fs::read_to_string(&file).expect("readable source");
            let code = without_tests(&strip(&source));
            let toks = tokens(&code);
            let mut children = BTreeSet::new();
            for w in toks.windows(3) {
                if let [Token::Ident(m), Token::Ident(name), Token::Punct(';')] = w
                    && m == "mod"
                {
                    children.insert(name.clone());
                }
            }
            // Every line counts (comments and blank lines too), except those of test items.
            let lines = source.lines().count() - test_lines(&strip(&source));
            let path = module_path(&file);
            modules.insert(
                path,
                Module {
                    file,
                    code,
                    lines,
                    children,
                },
            );
        }
        let mut krate = Crate {
            modules,
            reexports: BTreeMap::new(),
        };
        let mut reexports = BTreeMap::new();
        for (path, module) in &krate.modules {
            for (target, name, public) in use_trees(&tokens(&module.code)) {
                if !public {
                    continue;
                }
                if let Some(resolved) = krate.absolute(path, module, &target) {
                    let to = krate.module_of(&resolved);
                    if to.starts_with(path) && to != *path {
                        reexports.insert((path.clone(), name), to);
                    }
                }
            }
        }
        krate.reexports = reexports;
        krate
    }

    /// The crate-absolute form of a path written in `module`, if it names this crate.
    fn absolute(&self, here: &ModPath, module: &Module, path: &[String]) -> Option<Vec<String>> {
        let root = is_root(here);
        let dir: ModPath = if root { Vec::new() } else { here.clone() };
        let first = path.first()?.as_str();
        match first {
            "crate" => Some(path[1..].to_vec()),
            "self" => Some([dir, path[1..].to_vec()].concat()),
            "super" => {
                let mut base = dir;
                let mut rest = path;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                Some([base, rest.to_vec()].concat())
            }
            name if module.children.contains(name) => Some([dir, path.to_vec()].concat()),
            _ => None,
        }
    }

    /// The longest module prefix of an absolute path, through re-exports.
    fn module_of(&self, path: &[String]) -> ModPath {
        let mut best: ModPath = Vec::new();
        for n in (1..=path.len()).rev() {
            if self.modules.contains_key(&path[..n]) {
                best = path[..n].to_vec();
                break;
            }
        }
        if let Some(next) = path.get(best.len())
            && let Some(to) = self.reexports.get(&(best.clone(), next.clone()))
        {
            let mut deeper = to.clone();
            deeper.extend_from_slice(&path[best.len() + 1..]);
            return self.module_of(&deeper);
        }
        best
    }

    fn edges(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
        for (here, module) in &self.modules {
            let toks = tokens(&module.code);
            let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut targets = Vec::new();
            for (path, name, public) in use_trees(&toks) {
                let Some(abs) = self.absolute(here, module, &path) else {
                    continue;
                };
                let to = self.module_of(&abs);
                if public && to.starts_with(here) {
                    continue; // naming a descendant
                }
                if to == abs {
                    aliases.insert(name, abs.clone());
                }
                targets.push(abs);
            }
            for path in inline_paths(&toks) {
                if let Some(abs) = self.absolute(here, module, &path) {
                    targets.push(abs);
                } else if let Some(base) = aliases.get(&path[0]) {
                    targets.push([base.clone(), path[1..].to_vec()].concat());
                }
            }
            let set = edges.entry(here.clone()).or_default();
            for abs in targets {
                let to = self.module_of(&abs);
                if !to.is_empty() && to != *here && !is_root(&to) {
                    set.insert(to);
                }
            }
        }
        edges
    }
}

fn is_root(path: &ModPath) -> bool {
    path.len() == 1 && (path[0] == "lib" || path[0] == "main")
}

fn name(path: &ModPath) -> String {
    path.join("::")
}

fn rank(path: &ModPath) -> Option<usize> {
    if is_root(path) {
        return Some(LAYERS.len());
    }
    LAYERS.iter().position(|l| *l == path[0])
}

#[test]
fn imports_point_down_the_layers() {
    let krate = Crate::load();
    let mut wrong = Vec::new();
    for (from, tos) in krate.edges() {
        let Some(from_rank) = rank(&from) else {
            wrong.push(format!(
                "{} is in no layer: add its folder to LAYERS in {}",
                name(&from),
                file!()
            ));
            continue;
        };
        for to in tos {
            if to[0] == from[0] {
                continue;
            }
            match rank(&to) {
                Some(to_rank) if to_rank < from_rank => {}
                _ => wrong.push(format!(
                    "{} imports {}, a layer above or beside it",
                    name(&from),
                    name(&to)
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "layer order broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_module_imports_itself_through_others() {
    let krate = Crate::load();
    let edges = krate.edges();
    let circles = strongly_connected(&edges);
    let listed: Vec<String> = circles
        .iter()
        .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" <-> "))
        .collect();
    assert!(listed.is_empty(), "import circles:\n{}", listed.join("\n"));
}

#[test]
fn no_source_file_is_too_long() {
    let krate = Crate::load();
    let long: Vec<String> = krate
        .modules
        .values()
        .filter(|m| m.lines > MAX_LINES)
        .map(|m| format!("{}: {} lines", m.file.display(), m.lines))
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines outside tests:\n{}",
        long.join("\n")
    );
}

#[test]
fn src_top_level_holds_the_roots_and_folders() {
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(src_dir()).expect("src") {
        let path = entry.expect("entry").path();
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_file() && !["main.rs", "lib.rs", "app.rs"].contains(&file.as_ref()) {
            stray.push(file.into_owned());
        }
    }
    assert!(
        stray.is_empty(),
        "files at src/ top level (move them into a folder): {stray:?}"
    );
}

#[test]
fn the_checker_sees_imports() {
    let code = strip(
        "use crate::{a::B, c::{self, d as e}}; // crate::x\nfn f() { super::g::h(); let s = \"crate::y\"; }",
    );
    let toks = tokens(&code);
    let uses: Vec<_> = use_trees(&toks)
        .into_iter()
        .map(|(p, n, _)| (p.join("::"), n))
        .collect();
    assert_eq!(
        uses,
        vec![
            ("crate::a::B".to_owned(), "B".to_owned()),
            ("crate::c".to_owned(), "c".to_owned()),
            ("crate::c::d".to_owned(), "e".to_owned()),
        ]
    );
    let inline: Vec<_> = inline_paths(&toks)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert!(inline.contains(&"super::g::h".to_owned()));
    assert!(!inline.iter().any(|p| p.contains('x') || p.contains('y')));
}

/// Tarjan's strongly connected components of more than one module.
fn strongly_connected(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<ModPath, usize>,
        low: BTreeMap<ModPath, usize>,
        stack: Vec<ModPath>,
        on_stack: BTreeSet<ModPath>,
        next: usize,
        out: Vec<Vec<ModPath>>,
    }
    fn visit(s: &mut State<'_>, v: &ModPath) {
        s.index.insert(v.clone(), s.next);
        s.low.insert(v.clone(), s.next);
        s.next += 1;
        s.stack.push(v.clone());
        s.on_stack.insert(v.clone());
        let tos: Vec<ModPath> = s.edges.get(v).into_iter().flatten().cloned().collect();
        for w in tos {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let low = s.low[v].min(s.low[&w]);
                s.low.insert(v.clone(), low);
            } else if s.on_stack.contains(&w) {
                let low = s.low[v].min(s.index[&w]);
                s.low.insert(v.clone(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = w == *v;
                component.push(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}
