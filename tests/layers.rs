//! The runtime crate's layers hold (see `spychro/src/README.md`): reading every source file
//! of `spychro/src`, no code imports from a higher layer, the modules of the top layer import
//! each other without a cycle, nothing imports through the crate root, and no file outgrows
//! one concept (550 lines of code, comments aside).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first; a module may use its own layer and those below.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["sys"],
    &["wire"],
    &["call"],
    &["worker"],
    &["engine"],
    &["backend"],
    &["channel", "job", "pool", "process", "results"],
    &["supervisor"],
    &["cluster"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code: comment lines (doc comments included) left out.
fn code(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with("//")
        })
        .map(str::to_owned)
        .collect()
}

/// The top-level module a source file belongs to (`lib` for lib.rs).
fn module_of(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// `crate::name` paths used in `line`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let tail = &rest[at + "crate::".len()..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.push(name);
        }
        rest = tail;
    }
    // `use crate::{a, b}` lists.
    if let Some(at) = line.find("crate::{") {
        let list = &line[at + "crate::{".len()..];
        for part in list.split([',', '}']) {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn layers_hold_and_files_stay_small() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("spychro/src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut api_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        let from = module_of(&root, path);
        let lines = code(path);
        let shown = path.strip_prefix(&root).unwrap().display().to_string();
        if lines.len() > 550 {
            problems.push(format!(
                "{shown} has {} lines of code (over 550)",
                lines.len()
            ));
        }
        if from == "lib" {
            continue;
        }
        let Some(from_layer) = layer_of(&from) else {
            problems.push(format!("{shown}: module `{from}` is in no layer"));
            continue;
        };
        for line in &lines {
            for to in crate_paths(line) {
                if to == from || to == "__private" && from == "lib" {
                    continue;
                }
                if to.starts_with(|c: char| c.is_uppercase()) || to == "private" {
                    problems.push(format!(
                        "{shown}: imports `crate::{to}` through the crate root: `{}`",
                        line.trim()
                    ));
                    continue;
                }
                match layer_of(&to) {
                    Some(l) if l > from_layer => problems.push(format!(
                        "{shown}: `{from}` (layer {from_layer}) imports `{to}` (layer {l}), a \
                         higher layer: `{}`",
                        line.trim()
                    )),
                    Some(l) if l == from_layer => {
                        api_edges.entry(from.clone()).or_default().insert(to);
                    }
                    Some(_) => {}
                    None => problems.push(format!(
                        "{shown}: imports `crate::{to}`, which is in no layer: `{}`",
                        line.trim()
                    )),
                }
            }
        }
    }
    // Modules of one layer may use each other, but not in a circle.
    fn visit(
        at: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(start) = path.iter().position(|m| m == at) {
            cycles.push(format!("{} -> {at}", path[start..].join(" -> ")));
            return;
        }
        path.push(at.to_owned());
        for next in edges.get(at).into_iter().flatten() {
            visit(next, edges, path, cycles);
        }
        path.pop();
    }
    let mut cycles = Vec::new();
    for m in api_edges.keys() {
        visit(m, &api_edges, &mut Vec::new(), &mut cycles);
    }
    problems.extend(cycles.into_iter().map(|c| format!("import cycle: {c}")));
    assert!(
        problems.is_empty(),
        "the layers of spychro/src/README.md do not hold:\n  {}",
        problems.join("\n  ")
    );
}
