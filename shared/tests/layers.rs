//! The layering of `shared/src` (see the note in `lib.rs`), checked from
//! the source: every `crate::…` path a module names outside its tests must
//! point to a lower layer or stay within its own, and no modules import
//! each other in a cycle. A domain flow that reached for Redis, DynamoDB or
//! HTTP fails here, with the line that did it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

/// Each top-level module and its layer.
const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("error", 0),
    ("ts", 0),
    ("validate", 0),
    ("ids", 0),
    ("ports", 0),
    ("domain", 1),
    ("gate", 2),
    ("ledger", 2),
    ("payments", 2),
    ("secrets", 2),
    ("memory", 2),
    ("http", 2),
    ("job", 2),
    ("metrics", 2),
    ("pages", 2),
    ("ticket_list", 2),
    ("provisioned", 2),
    ("config", 3),
    ("app", 3),
];

fn layer_of(module: &str) -> Option<u8> {
    let top = module.split("::").next()?;
    LAYERS.iter().find(|(name, _)| *name == top).map(|(_, layer)| *layer)
}

/// The node a file belongs to: its top-level module, or `domain::<flow>`,
/// since the flows must not import each other in a cycle either.
fn node_of(relative: &Path) -> String {
    let parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .filter(|part| part != "mod")
        .collect();
    match parts.as_slice() {
        [domain, flow, ..] if domain == "domain" => format!("domain::{flow}"),
        [top, ..] => top.clone(),
        [] => String::new(),
    }
}

/// The code of a file that counts: no comments, and nothing from the
/// `#[cfg(test)]` module on (tests may use the in-memory adapters).
fn code(source: &str) -> Vec<(usize, String)> {
    source
        .lines()
        .enumerate()
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(number, line)| (number + 1, line.to_owned()))
        .collect()
}

/// The nodes a `crate::` use tree or path names, e.g. `crate::{error::Error,
/// domain::{accounts, auth::Tokens}}` → `error`, `domain::accounts`,
/// `domain::auth`.
fn named(tree: &str) -> Vec<String> {
    let mut nodes = Vec::new();
    let mut stack: Vec<Vec<String>> = vec![Vec::new()];
    let mut ident = String::new();
    let flush = |ident: &mut String, stack: &mut Vec<Vec<String>>, nodes: &mut Vec<String>| {
        if !ident.is_empty() {
            let mut path: Vec<String> = stack.iter().flatten().cloned().collect();
            path.push(std::mem::take(ident));
            nodes.push(match path.as_slice() {
                [domain, flow, ..] if domain == "domain" => format!("domain::{flow}"),
                [top, ..] => top.clone(),
                [] => unreachable!(),
            });
        }
    };
    let mut chars = tree.chars().peekable();
    let mut depth = 0;
    while let Some(c) = chars.next() {
        match c {
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                stack.last_mut().expect("a level").push(std::mem::take(&mut ident));
            }
            '{' => {
                depth += 1;
                stack.push(Vec::new());
            }
            ',' => {
                flush(&mut ident, &mut stack, &mut nodes);
                stack.last_mut().expect("a level").clear();
            }
            '}' => {
                flush(&mut ident, &mut stack, &mut nodes);
                stack.pop();
                stack.last_mut().expect("a level").clear();
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            c if c.is_alphanumeric() || c == '_' => ident.push(c),
            _ if depth == 0 => break,
            _ => {}
        }
    }
    flush(&mut ident, &mut stack, &mut nodes);
    nodes
}

/// Every `crate::` reference in a file's code, with its line number.
fn references(source: &str) -> Vec<(usize, String)> {
    let lines = code(source);
    let joined: String = lines.iter().map(|(_, line)| format!("{line}\n")).collect();
    let line_at = |offset: usize| {
        let index = joined[..offset].matches('\n').count();
        lines.get(index).map_or(0, |(number, _)| *number)
    };
    joined
        .match_indices("crate::")
        .flat_map(|(offset, _)| {
            let at = line_at(offset);
            named(&joined[offset + "crate::".len()..])
                .into_iter()
                .map(move |node| (at, node))
        })
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("read src").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// node → (node it names → the first `file:line` that names it)
fn graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src").to_owned();
        if relative == Path::new("lib.rs") {
            continue;
        }
        let node = node_of(&relative);
        let source = fs::read_to_string(&file).expect("read a source file");
        let edges = graph.entry(node.clone()).or_default();
        for (line, target) in references(&source) {
            if target != node {
                edges
                    .entry(target)
                    .or_insert_with(|| format!("{}:{line}", relative.display()));
            }
        }
    }
    graph
}

#[test]
fn the_use_tree_reader_finds_nested_modules() {
    assert_eq!(
        named("{error::Error, domain::{accounts, auth::Tokens}, ports::{Page}}; rest"),
        ["error", "domain::accounts", "domain::auth", "ports"]
    );
    assert_eq!(named("ts::format(&now)"), ["ts"]);
    assert_eq!(named("domain::flash_sale;"), ["domain::flash_sale"]);
}

#[test]
fn every_module_has_a_layer() {
    let unplaced: Vec<String> = graph().into_keys().filter(|node| layer_of(node).is_none()).collect();
    assert!(unplaced.is_empty(), "place these in LAYERS: {unplaced:?}");
}

#[test]
fn dependencies_point_down() {
    let mut upward = Vec::new();
    for (node, edges) in graph() {
        let Some(own) = layer_of(&node) else { continue };
        for (target, at) in edges {
            if layer_of(&target).is_some_and(|layer| layer > own) {
                upward.push(format!(
                    "{at}: `{node}` (layer {own}) uses `{target}`, a layer above it"
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layering:\n  {}",
        upward.join("\n  ")
    );
}

#[test]
fn the_domain_knows_no_adapter_and_no_edge() {
    let outside = [
        "gate", "ledger", "payments", "secrets", "memory", "http", "job", "metrics", "config", "app",
    ];
    let mut found = Vec::new();
    for (node, edges) in graph().into_iter().filter(|(node, _)| node.starts_with("domain")) {
        for (target, at) in edges
            .into_iter()
            .filter(|(target, _)| outside.contains(&target.as_str()))
        {
            found.push(format!("{at}: `{node}` uses `{target}`"));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn no_modules_import_each_other_in_a_cycle() {
    let graph = graph();
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for target in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(cycle) = visit(target, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("an import cycle: {}", cycle.join(" → "));
        }
    }
}
