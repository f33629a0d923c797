//! Configuration in one place: every setting the code, the scripts and the
//! template read is in `shared::config::SETTINGS`, every one there is read
//! somewhere, `docs/configuration.md` is that table, and `.env.example`
//! names every setting of a local run. A setting added without its line,
//! or a line left after its setting went, fails here.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use integration_tests::{WORKSPACE, template_yaml};
use regex::Regex;
use serde_norway::Value;
use shared::config::{Applies, SETTINGS};

/// What the platform sets, not the project: the AWS SDK's own and the
/// shell's.
const PLATFORM: &[&str] = &["AWS_ACCESS_KEY_ID", "AWS_REGION", "HOME"];

fn files(folder: &str, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![Path::new(WORKSPACE).join(folder)];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())) {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if extensions.iter().any(|ext| path.extension().is_some_and(|e| e == *ext)) {
                found.push(path);
            }
        }
    }
    found
}

/// What a file does, not what it says: its comment lines dropped, and a
/// source file's tests (from `#[cfg(test)]` on) too.
fn code_of(path: &Path, comment: &str) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = match text.find("#[cfg(test)]") {
        Some(tests) if path.to_string_lossy().contains("/src/") => text[..tests].to_owned(),
        _ => text,
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with(comment))
        .collect::<Vec<_>>()
        .join("\n")
}

fn names_in(pattern: &Regex, paths: &[PathBuf], comment: &str, read: &mut BTreeSet<String>) {
    for path in paths {
        for found in pattern.captures_iter(&code_of(path, comment)) {
            read.extend(found.iter().skip(1).flatten().map(|name| name.as_str().to_owned()));
        }
    }
}

/// The environment variables the template gives any function.
fn template_variables() -> BTreeSet<String> {
    let template = template_yaml();
    let mut environments = vec![&template["Globals"]["Function"]["Environment"]["Variables"]];
    if let Some(resources) = template["Resources"].as_mapping() {
        environments.extend(
            resources
                .values()
                .map(|resource| &resource["Properties"]["Environment"]["Variables"]),
        );
    }
    environments
        .into_iter()
        .filter_map(Value::as_mapping)
        .flat_map(|variables| variables.keys().filter_map(Value::as_str).map(str::to_owned))
        .collect()
}

/// Every setting some part of the project reads.
fn read_anywhere() -> BTreeSet<String> {
    let mut read = BTreeSet::new();
    let rust: Vec<PathBuf> = [
        "functions",
        "shared/src",
        "local-server",
        "tests",
        "simulation",
        "bench",
        "rehearse",
    ]
    .into_iter()
    .flat_map(|folder| files(folder, &["rs"]))
    .filter(|path| !path.ends_with("config/settings.rs"))
    .collect();
    let readers = Regex::new(
        r#"(?:env::var(?:_os)?|env_var|vars|required|required_in|setting)\(\s*(?:vars,\s*)?"([A-Z][A-Z0-9_]+)"|parse\(\s*vars,\s*"([A-Z][A-Z0-9_]+)"|env\s*=\s*"([A-Z][A-Z0-9_]+)"|"(RATE_LIMIT_[A-Z_]+)"|SecretSetting \{\s*name: "([A-Z][A-Z0-9_]+)",\s*arn: "([A-Z][A-Z0-9_]+)""#,
    )
    .expect("a pattern");
    names_in(&readers, &rust, "//", &mut read);
    let mut shell = files("scripts", &["sh"]);
    shell.push(Path::new(WORKSPACE).join(".ci/run"));
    let expansions = Regex::new(r"\$\{([A-Z][A-Z0-9_]+):?-").expect("a pattern");
    names_in(&expansions, &shell, "#", &mut read);
    read.retain(|name| !PLATFORM.contains(&name.as_str()));
    read
}

#[test]
fn every_variable_the_template_sets_is_a_setting_the_code_reads() {
    let read = read_anywhere();
    let unread: Vec<String> = template_variables()
        .into_iter()
        .filter(|name| !read.contains(name))
        .collect();
    assert!(unread.is_empty(), "the template sets what no code reads: {unread:?}");
}

#[test]
fn every_setting_read_is_in_the_table_and_every_one_there_is_read() {
    let read = read_anywhere();
    let listed: BTreeSet<String> = SETTINGS.iter().map(|setting| setting.name.to_owned()).collect();
    assert_eq!(listed.len(), SETTINGS.len(), "a setting is listed twice");
    let unlisted: Vec<&String> = read.difference(&listed).collect();
    let unread: Vec<&String> = listed.difference(&read).collect();
    assert!(
        unlisted.is_empty() && unread.is_empty(),
        "read but not in shared::config::SETTINGS: {unlisted:?}; listed but read nowhere: {unread:?}"
    );
}

/// The table of `docs/configuration.md`, as `SETTINGS` renders it.
fn table() -> String {
    let mut table = String::from("| setting | default | where | meaning |\n|---|---|---|---|\n");
    for setting in SETTINGS {
        table.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            setting.name,
            setting.default,
            setting.applies.name(),
            setting.meaning
        ));
    }
    table
}

#[test]
fn the_configuration_page_is_the_table() {
    let page = fs::read_to_string(Path::new(WORKSPACE).join("docs/configuration.md")).expect("the page");
    let table = table();
    assert!(
        page.contains(&table),
        "docs/configuration.md should hold, as is, the table of shared::config::SETTINGS:\n\n{table}"
    );
}

#[test]
fn the_env_example_names_every_setting_of_a_local_run() {
    let example = fs::read_to_string(Path::new(WORKSPACE).join(".env.example")).expect(".env.example");
    let missing: Vec<&str> = SETTINGS
        .iter()
        .filter(|setting| matches!(setting.applies, Applies::Local | Applies::Both))
        .map(|setting| setting.name)
        .filter(|name| !example.contains(&format!("{name}=")))
        .collect();
    assert!(missing.is_empty(), ".env.example does not name {missing:?}");
}
