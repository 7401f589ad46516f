//! The architecture as a test: reads the source tree (no external tools) and fails when a boundary
//! is crossed.
//!
//! 1. The pure rooms (`wire`, `config`, `balance`, `flow`, `dataplane`) refer to no room that does
//!    I/O (`dpdk`, `slowpath`, `runtime`, `appliance`, `control`, `cli`, `pktgen`). Of
//!    `platform` they may use only the safe CPU hints ([`PLATFORM_FOR_PURE`]: prefetch, the SIMD
//!    compare, the huge-page hint), not its clock or signal flags: the pipeline gets its time as a
//!    parameter.
//! 2. `unsafe` appears as code only under `src/dpdk/` and `src/platform/` (the crate root also
//!    denies `unsafe_code` elsewhere; this catches tests, benches, examples and fuzz targets too).
//! 3. The runtime (the loops and their hub) refers to nothing above it (`appliance`, `cli`).
//! 4. No two public types in `src/` share a name (except [`SHARED_TYPE_NAMES`]).
//! 5. No function in `src/` is longer than [`MAX_FN_LINES`] lines unless [`LONG_FN_ALLOWED`] names
//!    it with a reason; an entry that is no longer needed fails too, so the list only shrinks.
//!
//! The checks run on the code with comments and string/char literals blanked out (line structure
//! kept), so a path or the word `unsafe` in a doc comment or a message does not count.

use std::path::{Path, PathBuf};

/// The rooms that must not do I/O.
const PURE_ROOMS: &[&str] = &["wire", "config", "balance", "flow", "dataplane"];
/// Rooms the pure rooms must not refer to.
const IMPURE_ROOMS: &[&str] = &[
    "dpdk",
    "slowpath",
    "runtime",
    "appliance",
    "control",
    "cli",
    "pktgen",
];
/// The `platform` modules the pure rooms may use: CPU hints without state or I/O per call.
const PLATFORM_FOR_PURE: &[&str] = &["prefetch", "simd", "hugepage_hint"];
/// The rooms allowed `unsafe` code.
const UNSAFE_ROOMS: &[&str] = &["src/dpdk/", "src/platform/"];
/// Longest function (signature to closing brace) not needing an entry in [`LONG_FN_ALLOWED`].
const MAX_FN_LINES: usize = 120;
/// Functions allowed past [`MAX_FN_LINES`]: (file, function name, reason).
const LONG_FN_ALLOWED: &[(&str, &str, &str)] = &[];

// ---------------------------------------------------------------------------------------------
// The scanner.
// ---------------------------------------------------------------------------------------------

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `src` with every comment and the contents of every string and char literal replaced by spaces
/// (newlines kept, one output char per input char), so positions and line numbers still match.
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && is_ident(c[i - 1]);
        if c[i] == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && at(i + 1) == '*' {
            i = skip_block_comment(&c, i, &mut out);
        } else if !prev_ident && (c[i] == 'r' || (c[i] == 'b' && at(i + 1) == 'r')) {
            let start = if c[i] == 'b' { i + 2 } else { i + 1 };
            let hashes = c[start..].iter().take_while(|&&h| h == '#').count();
            if at(start + hashes) == '"' {
                out.extend(&c[i..=start + hashes]);
                i = start + hashes + 1;
                let closes = |i: usize| c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#');
                while i < c.len() && !closes(i) {
                    out.push(blank(c[i]));
                    i += 1;
                }
                let end = (i + hashes + 1).min(c.len());
                out.extend(&c[i..end]);
                i = end;
            } else {
                out.push(c[i]);
                i += 1;
            }
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                let n = if c[i] == '\\' { 2 } else { 1 };
                out.extend(c[i..(i + n).min(c.len())].iter().map(|&ch| blank(ch)));
                i += n;
            }
            if i < c.len() {
                out.push('"');
                i += 1;
            }
        } else if c[i] == '\'' && (at(i + 1) == '\\' || (at(i + 1) != '\'' && at(i + 2) == '\'')) {
            // A char literal ('x', '\n', '\'', '\u{..}'); a lifetime ('a) has no closing quote.
            out.push('\'');
            let mut j = i + 1 + if at(i + 1) == '\\' { 2 } else { 1 };
            while j < c.len() && c[j] != '\'' {
                j += 1;
            }
            for _ in i + 1..j {
                out.push(' ');
            }
            if j < c.len() {
                out.push('\'');
            }
            i = j + 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Blanks the (possibly nested) block comment starting at `i`; returns the index after it.
fn skip_block_comment(c: &[char], mut i: usize, out: &mut String) -> usize {
    let mut depth = 0usize;
    while i < c.len() {
        let two = (c[i], c.get(i + 1).copied().unwrap_or('\0'));
        if two == ('/', '*') || two == ('*', '/') {
            depth = if two.0 == '/' { depth + 1 } else { depth - 1 };
            out.push_str("  ");
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            out.push(if c[i] == '\n' { '\n' } else { ' ' });
            i += 1;
        }
    }
    i
}

/// Byte offsets where the word `word` occurs in `code` (not as part of a longer identifier).
fn word_positions(code: &str, word: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(k) = code[from..].find(word) {
        let s = from + k;
        let e = s + word.len();
        let before = code[..s].chars().next_back().is_some_and(is_ident);
        let after = code[e..].chars().next().is_some_and(is_ident);
        if !before && !after {
            found.push(s);
        }
        from = e;
    }
    found
}

/// 1-based line of byte offset `pos`.
fn line_of(code: &str, pos: usize) -> usize {
    code[..pos].matches('\n').count() + 1
}

/// A tiny cursor over code for the path parser.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }
    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.s[self.pos..].starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> Option<String> {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let n: usize = rest
            .chars()
            .take_while(|&c| is_ident(c))
            .map(char::len_utf8)
            .sum();
        (n > 0).then(|| {
            self.pos += n;
            rest[..n].to_string()
        })
    }
}

/// The paths of a use tree or plain path at the cursor (after `crate::`): `a::b`, `{a, b::{c, d}}`,
/// `a::*`. `self` and `*` end a path at their parent.
fn parse_tree(cur: &mut Cursor<'_>) -> Vec<Vec<String>> {
    if cur.eat("{") {
        let mut all = Vec::new();
        loop {
            if cur.eat("}") {
                break;
            }
            let before = cur.pos;
            all.extend(parse_tree(cur));
            if !cur.eat(",") {
                cur.eat("}");
                break;
            }
            if cur.pos == before {
                break;
            }
        }
        return all;
    }
    if cur.eat("*") {
        return vec![Vec::new()];
    }
    match cur.ident() {
        None => Vec::new(),
        Some(id) if id == "self" => vec![Vec::new()],
        Some(id) => {
            let save = cur.pos;
            if cur.eat("::") && !cur.s[cur.pos..].trim_start().starts_with('<') {
                let subs = parse_tree(cur);
                if !subs.is_empty() {
                    return subs
                        .into_iter()
                        .map(|mut p| {
                            p.insert(0, id.clone());
                            p
                        })
                        .collect();
                }
            } else {
                cur.pos = save;
            }
            vec![vec![id]]
        }
    }
}

/// Every crate-rooted path in stripped `code` (`crate::x::y`, `use crate::{a, b::c}`,
/// `$crate::x`, and `super::super::x` chains that climb to the crate root from a file whose module
/// is `depth` levels deep), as (line, segments after the root).
fn crate_paths(code: &str, depth: usize) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    for s in word_positions(code, "crate") {
        let mut cur = Cursor {
            s: code,
            pos: s + "crate".len(),
        };
        if !cur.eat("::") {
            continue;
        }
        for p in parse_tree(&mut cur) {
            found.push((line_of(code, s), p));
        }
    }
    for s in word_positions(code, "super") {
        if code[..s].trim_end().ends_with("::") {
            continue; // not the start of a path
        }
        let mut cur = Cursor { s: code, pos: s };
        let mut climbs = 0;
        while cur.ident().as_deref() == Some("super") && cur.eat("::") {
            climbs += 1;
        }
        // One `super` fewer than the depth stays inside the file's room; more than the depth only
        // happens inside inline modules, whose nesting this scanner does not track.
        if depth == 0 || climbs != depth {
            continue;
        }
        cur = Cursor { s: code, pos: s };
        for _ in 0..climbs {
            cur.ident();
            cur.eat("::");
        }
        for p in parse_tree(&mut cur) {
            found.push((line_of(code, s), p));
        }
    }
    found
}

/// How deep the module of `file` (e.g. `src/flow/table.rs`: 2, `src/flow/mod.rs`: 1) is.
fn module_depth(file: &str) -> usize {
    let parts: Vec<&str> = file.trim_start_matches("src/").split('/').collect();
    match parts.last() {
        Some(&"mod.rs") | Some(&"lib.rs") | Some(&"main.rs") => parts.len() - 1,
        _ => parts.len(),
    }
}

/// Why a pure room may not use `path` (segments after `crate`), or `None` when it may.
fn forbidden_for_pure(path: &[String]) -> Option<String> {
    let room = path.first()?;
    if IMPURE_ROOMS.contains(&room.as_str()) {
        return Some(format!("refers to the impure room `{room}`"));
    }
    if room == "platform" {
        let ok = path
            .get(1)
            .is_some_and(|m| PLATFORM_FOR_PURE.contains(&m.as_str()));
        if !ok {
            return Some(format!(
                "uses `crate::{}`; of platform only {PLATFORM_FOR_PURE:?} are for pure rooms",
                path.join("::")
            ));
        }
    }
    None
}

/// Functions with a body in stripped `code`: (name, first line, last line).
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    for s in word_positions(code, "fn") {
        let mut cur = Cursor {
            s: code,
            pos: s + 2,
        };
        let Some(name) = cur.ident() else { continue };
        // The body is the first `{` outside parentheses/brackets; a `;` first means no body.
        let (mut depth, mut i, mut open) = (0i32, cur.pos, None);
        while i < bytes.len() {
            match bytes[i] {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b';' if depth == 0 => break,
                b'{' if depth == 0 => {
                    open = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some(open) = open else { continue };
        let mut braces = 0i32;
        for (k, &b) in bytes.iter().enumerate().skip(open) {
            braces += i32::from(b == b'{') - i32::from(b == b'}');
            if braces == 0 {
                found.push((name, line_of(code, s), line_of(code, k)));
                break;
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The tree.
// ---------------------------------------------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir` (relative to the package root), as ("dir/…/x.rs", stripped code).
fn rust_files(dir: &str) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.map(|e| e.expect("dir entry").path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(base, &p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p.strip_prefix(base).expect("under root");
                let rel = rel.to_string_lossy().replace('\\', "/");
                let text = std::fs::read_to_string(&p).expect("read source");
                out.push((rel, strip(&text)));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &root().join(dir), &mut out);
    out
}

fn fail_with(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn pure_rooms_refer_to_nothing_impure() {
    let mut problems = Vec::new();
    for room in PURE_ROOMS {
        let files = rust_files(&format!("src/{room}"));
        assert!(!files.is_empty(), "no sources under src/{room}");
        for (file, code) in files {
            for (line, path) in crate_paths(&code, module_depth(&file)) {
                if let Some(why) = forbidden_for_pure(&path) {
                    problems.push(format!("{file}:{line}: {why}"));
                }
            }
        }
    }
    fail_with("pure rooms crossing their boundary", &problems);
}

/// The rooms above the runtime: it is started by them and must not call up into them.
const ABOVE_RUNTIME: &[&str] = &["appliance", "cli"];

#[test]
fn runtime_does_not_reach_up() {
    let mut problems = Vec::new();
    let files = rust_files("src/runtime");
    assert!(!files.is_empty(), "no sources under src/runtime");
    for (file, code) in files {
        for (line, path) in crate_paths(&code, module_depth(&file)) {
            if let Some(room) = path.first().filter(|r| ABOVE_RUNTIME.contains(&r.as_str())) {
                problems.push(format!(
                    "{file}:{line}: the runtime refers to `crate::{room}`, a room above it"
                ));
            }
        }
    }
    fail_with("the runtime reaching up", &problems);
}

#[test]
fn unsafe_only_in_dpdk_and_platform() {
    let mut problems = Vec::new();
    for dir in ["src", "tests", "benches", "examples", "fuzz/fuzz_targets"] {
        for (file, code) in rust_files(dir) {
            if UNSAFE_ROOMS.iter().any(|r| file.starts_with(r)) {
                continue;
            }
            for pos in word_positions(&code, "unsafe") {
                problems.push(format!("{file}:{}: `unsafe`", line_of(&code, pos)));
            }
        }
    }
    fail_with("`unsafe` outside src/dpdk and src/platform", &problems);
}

/// Public type names that several modules define on purpose: one `Args` per CLI subcommand, and
/// one `Packet` view and `Repr` per wire protocol module (`ipv4::Packet`, `tcp::Packet`, ...).
const SHARED_TYPE_NAMES: &[&str] = &["Args", "Packet", "Repr"];

/// The public type names (`pub struct|enum|type|trait Name`) a stripped source file defines.
fn public_types(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for w in words.windows(3) {
            if w[0] == "pub" && matches!(w[1], "struct" | "enum" | "type" | "trait") {
                let name: String = w[2].chars().take_while(|&c| is_ident(c)).collect();
                if !name.is_empty() {
                    out.push((n + 1, name));
                }
            }
        }
    }
    out
}

#[test]
fn no_two_public_types_share_a_name() {
    let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (file, code) in rust_files("src") {
        for (line, name) in public_types(&code) {
            seen.entry(name).or_default().push(format!("{file}:{line}"));
        }
    }
    let problems: Vec<String> = seen
        .iter()
        .filter(|(name, at)| at.len() > 1 && !SHARED_TYPE_NAMES.contains(&name.as_str()))
        .map(|(name, at)| format!("`{name}` is defined at {}", at.join(", ")))
        .collect();
    fail_with("one name, one type", &problems);
}

#[test]
fn public_types_are_found() {
    let code = strip("pub struct A;\n// pub struct B;\npub(crate) struct C;\n  pub enum D<T> {}\n");
    let names: Vec<String> = public_types(&code).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["A", "D"]);
}

#[test]
fn functions_are_short() {
    let mut problems = Vec::new();
    let mut used = vec![false; LONG_FN_ALLOWED.len()];
    for (file, code) in rust_files("src") {
        for (name, first, last) in functions(&code) {
            let len = last - first + 1;
            if len <= MAX_FN_LINES {
                continue;
            }
            match LONG_FN_ALLOWED
                .iter()
                .position(|&(f, n, _)| f == file && n == name)
            {
                Some(k) => used[k] = true,
                None => problems.push(format!(
                    "{file}:{first}: fn {name} is {len} lines (> {MAX_FN_LINES}): split it into named steps"
                )),
            }
        }
    }
    for (k, &(file, name, _)) in LONG_FN_ALLOWED.iter().enumerate() {
        if !used[k] {
            problems.push(format!(
                "{file}: fn {name} is allowed to be long but is not: remove it from LONG_FN_ALLOWED"
            ));
        }
    }
    fail_with("function length", &problems);
}

// ---------------------------------------------------------------------------------------------
// The scanner's own checks.
// ---------------------------------------------------------------------------------------------

fn paths_of(src: &str) -> Vec<String> {
    crate_paths(&strip(src), 2)
        .into_iter()
        .map(|(_, p)| p.join("::"))
        .collect()
}

#[test]
fn scanner_ignores_comments_and_strings() {
    let src = "// use crate::dpdk;\n/* crate::dpdk /* nested */ crate::slowpath */\n\
               /// [`crate::dpdk::Mbuf`]\nlet s = \"crate::dpdk unsafe\";\n\
               let r = r#\"crate::dpdk \"quoted\" unsafe\"#;\nlet c = '\"'; let q = '\\'';\n\
               fn f<'a>(x: &'a u8) -> &'a u8 { x }\nuse crate::wire::Frame;\n";
    assert_eq!(paths_of(src), vec!["wire::Frame"]);
    let code = strip(src);
    assert!(word_positions(&code, "unsafe").is_empty());
    assert_eq!(code.lines().count(), src.lines().count());
    assert_eq!(line_of(&code, code.find("wire").unwrap()), 8);
}

#[test]
fn scanner_finds_paths_in_code() {
    assert_eq!(
        paths_of("let x = crate::dpdk::Mbuf::new();"),
        vec!["dpdk::Mbuf::new"]
    );
    assert_eq!(
        paths_of("use crate::{wire, slowpath::{NeighbourTable, arp::*}, platform::simd::eq};"),
        vec![
            "wire",
            "slowpath::NeighbourTable",
            "slowpath::arp",
            "platform::simd::eq"
        ]
    );
    assert_eq!(paths_of("use crate::{self as c};"), vec![""]);
    assert_eq!(paths_of("$crate::dpdk::x!()"), vec!["dpdk::x"]);
    assert_eq!(
        paths_of("let v = crate::flow::Table::<u8>::new();"),
        vec!["flow::Table"]
    );
    assert!(paths_of("mycrate::dpdk::x(); let crate_x = 1;").is_empty());
    // From a file two levels deep (`src/flow/table.rs`), two `super`s reach the crate root.
    assert_eq!(
        paths_of("use super::super::dpdk::Mbuf;"),
        vec!["dpdk::Mbuf"]
    );
    assert!(paths_of("use super::key::FlowKey; pub(super) fn f() {}").is_empty());
    assert_eq!(module_depth("src/flow/table.rs"), 2);
    assert_eq!(module_depth("src/flow/mod.rs"), 1);
    assert_eq!(module_depth("src/dataplane/x/mod.rs"), 2);
}

#[test]
fn pure_room_rule() {
    let check = |p: &str| {
        let segs: Vec<String> = p.split("::").map(str::to_string).collect();
        forbidden_for_pure(&segs).is_none()
    };
    assert!(check("wire::Frame"));
    assert!(check("platform::prefetch::prefetch"));
    assert!(check("platform::simd::eq_mask16"));
    assert!(!check("dpdk::Mbuf"));
    assert!(!check("slowpath::NeighbourTable"));
    assert!(!check("platform::signal::stop_requested"));
    assert!(!check("platform::TscClock"));
    assert!(!check("platform"));
}

#[test]
fn scanner_measures_functions_and_finds_unsafe() {
    let src = "trait T { fn decl(&self); }\n\
               fn one() -> [u8; 2] {\n  let s = \"}\";\n  [0; 2]\n}\n\
               impl X { fn two<F: Fn() -> u8>(f: F) where F: Copy {\n f();\n }\n}\n\
               fn uns() { unsafe { g() } }\n";
    let code = strip(src);
    let fns = functions(&code);
    let names: Vec<_> = fns.iter().map(|(n, a, b)| (n.as_str(), *a, *b)).collect();
    assert_eq!(names, vec![("one", 2, 5), ("two", 6, 8), ("uns", 10, 10)]);
    assert_eq!(word_positions(&code, "unsafe").len(), 1);
    assert!(word_positions("let unsafe_x = not_unsafe;", "unsafe").is_empty());
}
