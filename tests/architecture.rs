//! The house rules that the compiler does not check (see `ARCHITECTURE.md`):
//!
//! 1. no import circles between the files of `src/`: every `use crate::...`, `crate::a::b`
//!    path and `super::` path is resolved to the file that defines the module it names, and the
//!    resulting file graph must be acyclic. A parent declaring `mod child;` or naming its own
//!    children by relative path (`child::f`) is not an import, and `#[cfg(test)]` code is not
//!    counted (a test may reach across layers). [`KNOWN_CIRCLES`] is empty and must stay so;
//! 2. no source file in `src/` or `tests/` over [`MAX_LINES`] lines ([`OVER_THE_LIMIT`] is
//!    empty);
//! 3. the sans-IO cores and the engine (`src/runtime/`) never import `crate::tools`.
//!
//! Std only: a small lexer blanks comments and string literals, then paths are read from the
//! token stream. It is deliberately simple; its own unit tests (bottom) show it can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may be.
const MAX_LINES: usize = 1000;

/// Files allowed over [`MAX_LINES`], each with its line count as a ceiling (it may shrink,
/// never grow). Empty since the store, SMPP session, config and window splits.
const OVER_THE_LIMIT: &[(&str, usize)] = &[];

/// Imports allowed to close a circle: (importing file, imported file). Empty since
/// `parse_ws_url` moved to `campaign::mode` and the token buckets to `postgres::pacing`; an
/// entry whose import is gone fails the check, so it cannot go stale.
const KNOWN_CIRCLES: &[(&str, &str)] = &[];

/// Module trees that are sans-IO (or the engine) and so may never import `crate::tools`.
const NO_TOOLS: &[&str] = &[
    "amd", "sip", "rtp", "agent", "sms", "campaign", "audio", "call", "runtime",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A source file: its path relative to the crate root, its module path, and its code with
/// comments and literals blanked.
struct Source {
    rel: String,
    module: Vec<String>,
    code: String,
    /// Reached only through a `#[cfg(test)] mod name;` (its imports are not counted).
    test_only: bool,
}

// ---------------------------------------------------------------------------------------------
// Lexing

/// The code of a Rust file with comments, string, byte-string, raw-string and char literals
/// replaced by spaces (newlines kept, so line numbers and braces of code stay right).
fn blank(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let keep_newlines = |s: &[u8], out: &mut Vec<u8>| {
        out.extend(s.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
    };
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            keep_newlines(&b[i..end], &mut out);
            i = end;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            let start = i;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            keep_newlines(&b[start..i.min(b.len())], &mut out);
        } else if (c == b'r' || (c == b'b' && b.get(i + 1) == Some(&b'r')))
            && !prev_is_ident(b, i)
            && raw_string_start(b, i).is_some()
        {
            let (hashes, open) = raw_string_start(b, i).unwrap_or((0, i));
            let mut j = open + 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"'
                    && b[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == b'#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            keep_newlines(&b[i..j.min(b.len())], &mut out);
            i = j;
        } else if c == b'"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            keep_newlines(&b[start..i.min(b.len())], &mut out);
        } else if c == b'\'' {
            // A char literal ('a', '\n', '\u{1F600}', '"') or a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 2 + p + 1)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 3)
            } else {
                // Multi-byte UTF-8 char literals.
                let s = &src[i + 1..];
                s.chars().next().and_then(|ch| {
                    let n = ch.len_utf8();
                    (s.as_bytes().get(n) == Some(&b'\'')).then_some(i + 1 + n + 1)
                })
            };
            match end {
                Some(e) => {
                    keep_newlines(&b[i..e], &mut out);
                    i = e;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

fn prev_is_ident(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// `r"`, `r#"`, `br##"`...: the number of `#` and the index of the opening quote.
fn raw_string_start(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = if b[i] == b'b' { i + 2 } else { i + 1 };
    let mut hashes = 0;
    while b.get(j) == Some(&b'#') {
        hashes += 1;
        j += 1;
    }
    (b.get(j) == Some(&b'"')).then_some((hashes, j))
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Semi,
    Other(u8),
}

fn tokens(code: &str) -> Vec<Tok> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(code[start..i].to_string()));
            continue;
        }
        match c {
            b':' if b.get(i + 1) == Some(&b':') => {
                out.push(Tok::Colons);
                i += 1;
            }
            b'{' => out.push(Tok::Open),
            b'}' => out.push(Tok::Close),
            b',' => out.push(Tok::Comma),
            b';' => out.push(Tok::Semi),
            c if c.is_ascii_whitespace() => {}
            c => out.push(Tok::Other(c)),
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Paths

/// Every module path a file names through `crate::` or `super::` (in `use` trees and in code),
/// made absolute. `module` is the file's own module path; inline `mod name { ... }` blocks are
/// followed so that `super::` inside them is right.
fn named_paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let toks = tokens(code);
    let mut out = Vec::new();
    // The inline module stack: (name, brace depth at which its block opened).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        if let Some(after) = cfg_test_attr(&toks, i) {
            i = skip_item(&toks, after);
            continue;
        }
        match &toks[i] {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Open)) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(kw) if kw == "use" => {
                let here = here(module, &inline);
                let end = toks[i..]
                    .iter()
                    .position(|t| *t == Tok::Semi)
                    .map_or(toks.len(), |p| i + p);
                use_tree(&toks[i + 1..end], &[], &here, &mut out);
                i = end + 1;
                continue;
            }
            Tok::Ident(first) if first == "crate" || first == "super" => {
                let after_colons = i == 0 || toks[i - 1] != Tok::Colons;
                if after_colons && toks.get(i + 1) == Some(&Tok::Colons) {
                    let here = here(module, &inline);
                    let mut segs = vec![first.clone()];
                    let mut j = i + 1;
                    while toks.get(j) == Some(&Tok::Colons) {
                        match toks.get(j + 1) {
                            Some(Tok::Ident(s)) => segs.push(s.clone()),
                            _ => break,
                        }
                        j += 2;
                    }
                    if let Some(abs) = absolute(&here, &segs) {
                        out.push(abs);
                    }
                    i = j;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// `#[cfg(test)]` at `i`: the index after it.
fn cfg_test_attr(toks: &[Tok], i: usize) -> Option<usize> {
    let want = [
        Tok::Other(b'#'),
        Tok::Other(b'['),
        Tok::Ident("cfg".into()),
        Tok::Other(b'('),
        Tok::Ident("test".into()),
        Tok::Other(b')'),
        Tok::Other(b']'),
    ];
    toks[i..].starts_with(&want).then_some(i + want.len())
}

/// The index after the item starting at `i` (further attributes, then up to its `;` or its
/// closing brace, whichever ends it).
fn skip_item(toks: &[Tok], mut i: usize) -> usize {
    while i < toks.len() {
        match toks[i] {
            Tok::Semi => return i + 1,
            Tok::Open => return matching(toks, i) + 1,
            _ => i += 1,
        }
    }
    i
}

fn here(module: &[String], inline: &[(String, usize)]) -> Vec<String> {
    module
        .iter()
        .cloned()
        .chain(inline.iter().map(|(n, _)| n.clone()))
        .collect()
}

/// `crate::a::b` or `super::super::c` from `here` -> the absolute module path (without
/// `crate`); `None` for paths that do not start with either.
fn absolute(here: &[String], segs: &[String]) -> Option<Vec<String>> {
    let mut abs: Vec<String>;
    let mut rest = segs;
    match segs.first().map(String::as_str) {
        Some("crate") => {
            abs = Vec::new();
            rest = &segs[1..];
        }
        Some("super") => {
            abs = here.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                abs.pop();
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    abs.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(abs)
}

/// Walks a `use` tree (the tokens after `use`), pushing every leaf path that starts with
/// `crate` or `super`, made absolute.
fn use_tree(toks: &[Tok], prefix: &[String], here: &[String], out: &mut Vec<Vec<String>>) {
    let mut i = 0;
    let mut segs: Vec<String> = Vec::new();
    let emit = |segs: &[String], prefix: &[String], out: &mut Vec<Vec<String>>| {
        let full: Vec<String> = prefix.iter().chain(segs.iter()).cloned().collect();
        if let Some(abs) = absolute(here, &full) {
            out.push(abs);
        }
    };
    while i < toks.len() {
        match &toks[i] {
            Tok::Ident(s) if s == "as" => {
                // `as name`: skip the alias.
                i += 2;
                continue;
            }
            Tok::Ident(s) if s == "pub" => {}
            Tok::Ident(s) => segs.push(s.clone()),
            Tok::Open => {
                let close = matching(toks, i);
                let mut inner = prefix.to_vec();
                inner.extend(segs.iter().cloned());
                use_tree(&toks[i + 1..close], &inner, here, out);
                segs.clear();
                i = close + 1;
                continue;
            }
            Tok::Comma => {
                if !segs.is_empty() {
                    emit(&segs, prefix, out);
                }
                segs.clear();
            }
            _ => {}
        }
        i += 1;
    }
    if !segs.is_empty() {
        emit(&segs, prefix, out);
    }
}

fn matching(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

// ---------------------------------------------------------------------------------------------
// The module tree

/// Follows the `mod name;` declarations from `src/lib.rs` (with `#[path]`), giving every file
/// of the library its module path.
fn library() -> Vec<Source> {
    module_tree("src/lib.rs")
}

/// The binary's files: `src/main.rs` and the modules it declares (`src/cli/`), which are not
/// part of the library.
fn binary() -> Vec<Source> {
    module_tree("src/main.rs")
}

/// Follows the `mod name;` declarations from `entry` (with `#[path]`), giving every file of
/// that crate its module path.
fn module_tree(entry: &str) -> Vec<Source> {
    let mut out = Vec::new();
    let mut todo = vec![(root().join(entry), Vec::<String>::new(), false)];
    while let Some((file, module, test_only)) = todo.pop() {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let code = blank(&text);
        let mod_rs = matches!(
            file.file_name().and_then(|n| n.to_str()),
            Some("lib.rs" | "mod.rs" | "main.rs")
        );
        let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
        let child_dir = if mod_rs {
            dir.clone()
        } else {
            dir.join(file.file_stem().unwrap_or_default())
        };
        for (name, path_attr, cfg_test) in file_mods(&text, &code) {
            let child = match path_attr {
                Some(p) => dir.join(p),
                None => {
                    let flat = child_dir.join(format!("{name}.rs"));
                    if flat.exists() {
                        flat
                    } else {
                        child_dir.join(&name).join("mod.rs")
                    }
                }
            };
            let mut m = module.clone();
            m.push(name);
            todo.push((child, m, test_only || cfg_test));
        }
        let rel = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        out.push(Source {
            rel,
            module,
            code,
            test_only,
        });
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// `mod name;` declarations of a file (not inline blocks), with their `#[path = "..."]` and
/// whether they are `#[cfg(test)]`.
fn file_mods(text: &str, code: &str) -> Vec<(String, Option<String>, bool)> {
    let mut out = Vec::new();
    let mut path_attr: Option<String> = None;
    let mut cfg_test = false;
    for (line, raw) in code.lines().zip(text.lines()) {
        let l = line.trim();
        if raw.trim_start().starts_with("#[path") {
            path_attr = raw.split('"').nth(1).map(str::to_string);
            continue;
        }
        if l == "#[cfg(test)]" {
            cfg_test = true;
            continue;
        }
        let l = l
            .strip_prefix("pub(crate) ")
            .or_else(|| l.strip_prefix("pub(super) "))
            .unwrap_or(l);
        let l = l.strip_prefix("pub ").unwrap_or(l);
        if let Some(name) = l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            out.push((name.trim().to_string(), path_attr.take(), cfg_test));
            cfg_test = false;
        } else if !l.starts_with("#[") && !l.is_empty() {
            path_attr = None;
            cfg_test = false;
        }
    }
    out
}

/// The file that defines the longest prefix of `path`.
fn resolve<'a>(files: &'a BTreeMap<Vec<String>, String>, path: &[String]) -> Option<&'a String> {
    (0..=path.len()).rev().find_map(|n| files.get(&path[..n]))
}

/// The file-level import graph: file -> files it names.
fn graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeMap<Vec<String>, String> = sources
        .iter()
        .map(|s| (s.module.clone(), s.rel.clone()))
        .collect();
    let mut g = BTreeMap::new();
    for s in sources.iter().filter(|s| !s.test_only) {
        let deps: BTreeSet<String> = named_paths(&s.module, &s.code)
            .iter()
            .filter_map(|p| resolve(&files, p))
            .filter(|f| **f != s.rel)
            .cloned()
            .collect();
        g.insert(s.rel.clone(), deps);
    }
    g
}

/// A cycle of the graph (its files in order, the first repeated at the end), if any.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark: BTreeMap<&str, Mark> = g.keys().map(|k| (k.as_str(), Mark::New)).collect();
    for start in g.keys() {
        if mark[start.as_str()] != Mark::New {
            continue;
        }
        // Iterative DFS: the stack holds (node, its remaining successors).
        let mut stack: Vec<(&str, Vec<&str>)> = Vec::new();
        let succ = |n: &str| -> Vec<&str> {
            g.get(n)
                .map(|s| s.iter().map(String::as_str).collect())
                .unwrap_or_default()
        };
        mark.insert(start, Mark::Open);
        stack.push((start, succ(start)));
        while let Some((node, rest)) = stack.last_mut() {
            let node = *node;
            match rest.pop() {
                Some(next) => match mark.get(next).copied().unwrap_or(Mark::Done) {
                    Mark::New => {
                        mark.insert(next, Mark::Open);
                        stack.push((next, succ(next)));
                    }
                    Mark::Open => {
                        let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[from..].iter().map(|(n, _)| n.to_string()).collect();
                        cycle.push(next.to_string());
                        return Some(cycle);
                    }
                    Mark::Done => {}
                },
                None => {
                    mark.insert(node, Mark::Done);
                    stack.pop();
                }
            }
        }
    }
    None
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The rules

#[test]
fn every_library_file_is_in_the_module_tree() {
    // The binary's own modules (`src/main.rs`, `src/cli/`) are reached from `src/main.rs`.
    let known: BTreeSet<String> = library()
        .into_iter()
        .chain(binary())
        .map(|s| s.rel)
        .collect();
    let mut all = Vec::new();
    rust_files(&root().join("src"), &mut all);
    let missing: Vec<String> = all
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .unwrap_or(p)
                .to_string_lossy()
                .replace('\\', "/")
        })
        .filter(|p| !known.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "files the module walk did not reach: {missing:?}"
    );
}

#[test]
fn no_import_circles_between_files() {
    let mut g = graph(&library());
    for (from, to) in KNOWN_CIRCLES {
        let known = g.get_mut(*from).is_some_and(|deps| deps.remove(*to));
        assert!(
            known,
            "{from} no longer imports {to}: remove it from KNOWN_CIRCLES"
        );
    }
    if let Some(cycle) = find_cycle(&g) {
        panic!("import circle: {}", cycle.join(" -> "));
    }
}

#[test]
fn no_file_over_the_line_limit() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("tests"), &mut files);
    let mut bad = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(root())
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        let lines = std::fs::read_to_string(&f)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        let ceiling = OVER_THE_LIMIT
            .iter()
            .find(|(p, _)| *p == rel)
            .map_or(MAX_LINES, |(_, n)| *n);
        if lines > ceiling {
            bad.push(format!("{rel}: {lines} lines (limit {ceiling})"));
        }
    }
    assert!(bad.is_empty(), "split these files: {bad:#?}");
}

#[test]
fn the_engine_and_the_sans_io_cores_never_import_tools() {
    let sources = library();
    let mut bad = Vec::new();
    for s in &sources {
        if !s
            .module
            .first()
            .is_some_and(|m| NO_TOOLS.contains(&m.as_str()))
        {
            continue;
        }
        for p in named_paths(&s.module, &s.code) {
            if p.first().map(String::as_str) == Some("tools") {
                bad.push(format!("{} names crate::{}", s.rel, p.join("::")));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

// ---------------------------------------------------------------------------------------------
// The checker's own tests

fn m(path: &str) -> Vec<String> {
    path.split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn use_trees_and_code_paths_are_resolved() {
    let code = blank(
        "use crate::a::{b, c::{self, D}};\n\
         use super::e as f;\n\
         // use crate::commented::out;\n\
         fn g() { let s = \"crate::in_a_string::x\"; crate::h::i(); super::super::j::K; }\n\
         mod inner { use super::*; use super::super::l; }\n\
         #[cfg(test)]\n\
         mod tests { use crate::test_only::Helper; }\n",
    );
    let got = named_paths(&m("x::y"), &code);
    let want: Vec<Vec<String>> = [
        "a::b", "a::c", "a::c::D", "x::e", "h::i", "j::K", "x::y", "x::l",
    ]
    .iter()
    .map(|p| m(p))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn a_two_file_circle_is_found() {
    let src = |rel: &str, module: &str, text: &str| Source {
        rel: rel.into(),
        module: m(module),
        code: blank(text),
        test_only: false,
    };
    let sources = vec![
        src("src/lib.rs", "", "pub mod a; pub mod b;"),
        src("src/a.rs", "a", "use crate::b::Thing; pub struct Other;"),
        src(
            "src/b.rs",
            "b",
            "pub struct Thing; fn f() -> super::a::Other { todo!() }",
        ),
    ];
    let cycle = find_cycle(&graph(&sources)).expect("the circle a -> b -> a");
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.contains(&"src/a.rs".to_string()) && cycle.contains(&"src/b.rs".to_string()));

    let acyclic = vec![
        src("src/lib.rs", "", "pub mod a; pub mod b;"),
        src("src/a.rs", "a", "use crate::b::Thing;"),
        src("src/b.rs", "b", "pub struct Thing; // use crate::a::X;"),
    ];
    assert_eq!(find_cycle(&graph(&acyclic)), None);
}

#[test]
fn literals_and_lifetimes_are_blanked_without_eating_code() {
    let code = blank("fn f<'a>(x: &'a str) -> char { let _ = r#\"crate::z\"#; '{' }");
    assert!(!code.contains("crate::z"));
    assert_eq!(code.matches('{').count(), 1, "{code}");
    assert_eq!(code.matches('}').count(), 1, "{code}");
}
