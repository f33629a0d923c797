//! The README and `docs/` kept true to the tree: every link between them
//! lands on a file and a heading that exist, every path they name exists,
//! the design names every Lua script and every script of `scripts/`, and the README's layout names every
//! function. A page moved or a
//! script added without its line fails here.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README and every page of `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let docs = fs::read_dir(root().join("docs")).expect("docs/");
    pages.extend(
        docs.map(|entry| entry.expect("a docs/ entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "md")),
    );
    pages.sort();
    pages
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped,
/// spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings, outside its code blocks.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut anchors = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            anchors.insert(anchor(line.trim_start_matches('#')));
        }
    }
    anchors
}

/// The targets of a page's markdown links `](…)`.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target.to_owned()))
        .collect()
}

#[test]
fn every_link_between_the_pages_lands_on_a_file_and_a_heading() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = read(&page);
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().expect("a page's folder").join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", page.display()));
            } else if !fragment.is_empty() && !anchors(&read(&target)).contains(fragment) {
                broken.push(format!("{}: {link}: no such heading", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The names of the entries of a folder of the tree, filtered and trimmed.
fn names(folder: &str, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join(folder))
        .expect(folder)
        .filter_map(|entry| {
            let name = entry
                .expect("an entry")
                .file_name()
                .into_string()
                .expect("a UTF-8 name");
            name.ends_with(suffix).then_some(name)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn the_design_names_every_lua_script() {
    let design = read(&root().join("docs/design.md"));
    let missing: Vec<String> = names("lua", ".lua")
        .into_iter()
        .filter(|script| !design.contains(&format!("`{script}`")))
        .collect();
    assert!(missing.is_empty(), "docs/design.md does not name {missing:?}");
}

#[test]
fn the_design_names_every_script() {
    let design = read(&root().join("docs/design.md"));
    let missing: Vec<String> = names("scripts", "")
        .into_iter()
        .filter(|script| !design.contains(&format!("`{script}`")))
        .collect();
    assert!(missing.is_empty(), "docs/design.md does not name {missing:?}");
}

#[test]
fn the_readme_names_every_function() {
    let readme = read(&root().join("README.md"));
    let missing: Vec<String> = names("functions", "")
        .into_iter()
        .filter(|function| !readme.contains(&format!("`{function}`")))
        .collect();
    assert!(missing.is_empty(), "the README's layout does not name {missing:?}");
}

/// The repository paths a page names in code spans: `shared/src/…`,
/// `./scripts/test.sh`, `openapi.yaml` (patterns with `<…>` or `*` aside).
fn paths_named(text: &str) -> Vec<String> {
    const TOP: &[&str] = &[
        "shared/",
        "functions/",
        "lua/",
        "tests/",
        "scripts/",
        "infra/",
        "console/",
        "docs/",
        "simulation/",
        "rehearse/",
        "bench/",
        "local-server/",
        ".ci/",
        "openapi.yaml",
        ".env.example",
        "rust-toolchain.toml",
        "samconfig.toml",
    ];
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|span| span.strip_prefix("./").unwrap_or(span))
        .filter(|span| TOP.iter().any(|top| span.starts_with(top)))
        .filter(|span| !span.contains(['<', '*', ' ', '{', '…']))
        .map(|span| span.trim_end_matches(['.', ',']).to_owned())
        .collect()
}

#[test]
fn every_path_the_pages_name_exists() {
    let mut missing = Vec::new();
    for page in pages() {
        for path in paths_named(&read(&page)) {
            if !root().join(&path).exists() {
                missing.push(format!("{}: {path}", page.display()));
            }
        }
    }
    assert!(missing.is_empty(), "no such path:\n{}", missing.join("\n"));
}
