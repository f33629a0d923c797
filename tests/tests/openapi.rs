//! `openapi.yaml` against the code it describes: the routes of
//! `local_server::routes()` (every function's `routes()`), the problem
//! table's codes and statuses (`shared::http::problem`), and what the local server serves at
//! `GET /openapi.json`. Each check prints everything there is to fix at once.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use integration_tests::TestApp;
use serde_json::Value;
use shared::http::problem;

/// The document, as the local server embeds it.
const SOURCE: &str = include_str!("../../openapi.yaml");

/// Routes the local server adds to the functions' routes. They are not
/// deployed, so the document marks them `x-local-only: true`.
const LOCAL_ONLY: &[(&str, &str)] = &[("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/metrics")];

/// The operation keys of an OpenAPI path item.
const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn document() -> Value {
    serde_norway::from_str(SOURCE)
        .expect("openapi.yaml must be YAML that maps to JSON (quote numeric keys: '200', not 200)")
}

fn route_key(method: &str, path: &str) -> String {
    format!("{} {path}", method.to_uppercase())
}

/// Fails with every problem at once, so one run says all there is to fix.
fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "openapi.yaml disagrees with the code:\n  {}",
        problems.join("\n  ")
    );
}

struct Operation<'a> {
    key: String,
    path: &'a str,
    path_item: &'a Value,
    operation: &'a Value,
}

impl Operation<'_> {
    fn local_only(&self) -> bool {
        self.operation["x-local-only"].as_bool() == Some(true)
    }
}

fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let paths = doc["paths"].as_object().expect("`paths` is a mapping");
    let mut operations = Vec::new();
    for (path, path_item) in paths {
        for method in METHODS {
            if let Some(operation) = path_item.get(*method) {
                operations.push(Operation {
                    key: route_key(method, path),
                    path,
                    path_item,
                    operation,
                });
            }
        }
    }
    operations
}

/// Follows local `$ref`s (`#/components/…`) to what they name.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> Result<&'a Value, String> {
    for _ in 0..8 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Ok(value);
        };
        value = reference
            .strip_prefix('#')
            .and_then(|pointer| doc.pointer(pointer))
            .ok_or_else(|| format!("`$ref: {reference}` names nothing in the document"))?;
    }
    Err("a `$ref` chain longer than 8".into())
}

/// Every `{name}` of a path template.
fn template_parameters(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn document_is_openapi_3_1() {
    let doc = document();
    let version = doc["openapi"].as_str().unwrap_or("");
    assert!(version.starts_with("3.1"), "`openapi` must be 3.1.x, not `{version}`");
    assert_eq!(*local_server::OPENAPI, doc, "the local server embeds openapi.yaml");
}

#[test]
fn every_route_is_documented_and_every_operation_is_a_route() {
    let doc = document();
    let served: BTreeSet<String> = local_server::routes()
        .listed()
        .iter()
        .map(|(method, path)| route_key(method.as_str(), path))
        .collect();
    let local: BTreeSet<String> = LOCAL_ONLY.iter().map(|(m, p)| route_key(m, p)).collect();
    let mut documented = BTreeSet::new();
    let mut documented_local = BTreeSet::new();
    for operation in operations(&doc) {
        if operation.local_only() {
            documented_local.insert(operation.key);
        } else {
            documented.insert(operation.key);
        }
    }
    let mut problems = Vec::new();
    let mut report = |only_in: &BTreeSet<String>, not_in: &BTreeSet<String>, why: &str| {
        problems.extend(only_in.difference(not_in).map(|route| format!("`{route}` {why}")));
    };
    report(
        &served,
        &documented,
        "is a route of local_server::routes() but not in the document",
    );
    report(
        &documented,
        &served,
        "is in the document but no function's routes() serves it",
    );
    report(
        &local,
        &documented_local,
        "is served by the local server only and must be in the document with `x-local-only: true`",
    );
    report(
        &documented_local,
        &local,
        "is marked `x-local-only` but is not one of the local server's own routes (LOCAL_ONLY)",
    );
    assert_none(problems);
}

#[test]
fn path_parameters_match_the_path_templates() {
    let doc = document();
    let mut problems = Vec::new();
    for operation in operations(&doc) {
        let key = &operation.key;
        let mut declared = BTreeMap::new();
        let listed = [&operation.path_item["parameters"], &operation.operation["parameters"]];
        for parameter in listed.into_iter().filter_map(Value::as_array).flatten() {
            match resolve(&doc, parameter) {
                Ok(parameter) if parameter["in"] == "path" => {
                    let name = parameter["name"].as_str().unwrap_or("").to_owned();
                    if parameter["required"] != true {
                        problems.push(format!("`{key}`: path parameter `{name}` must be `required: true`"));
                    }
                    if parameter["schema"].is_null() {
                        problems.push(format!("`{key}`: path parameter `{name}` has no schema"));
                    }
                    declared.insert(name, ());
                }
                Ok(_) => {}
                Err(error) => problems.push(format!("`{key}`: {error}")),
            }
        }
        let declared: BTreeSet<String> = declared.into_keys().collect();
        let in_template = template_parameters(operation.path);
        for missing in in_template.difference(&declared) {
            problems.push(format!("`{key}`: `{{{missing}}}` has no path parameter declared"));
        }
        for extra in declared.difference(&in_template) {
            problems.push(format!("`{key}`: path parameter `{extra}` is not in the path"));
        }
    }
    assert_none(problems);
}

#[test]
fn every_operation_has_a_unique_id_a_success_and_a_security_requirement() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut ids = BTreeMap::new();
    let mut problems = Vec::new();
    for operation in operations(&doc) {
        let key = &operation.key;
        match operation.operation["operationId"].as_str() {
            None | Some("") => problems.push(format!("`{key}` has no operationId")),
            Some(id) => {
                if let Some(other) = ids.insert(id.to_owned(), key.clone()) {
                    problems.push(format!("`{key}` and `{other}` share the operationId `{id}`"));
                }
            }
        }
        let responses = operation.operation["responses"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if !responses.keys().any(|status| status.starts_with('2')) {
            problems.push(format!("`{key}` has no 2xx response"));
        }
        for status in responses.keys() {
            if status.len() != 3 || !status.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(format!("`{key}`: response `{status}` is not an HTTP status code"));
            }
        }
        // Explicit on every operation, so a public route is public on purpose.
        match operation.operation["security"].as_array() {
            None => problems.push(format!("`{key}` must say its `security` (`[]` when public)")),
            Some(requirements) => {
                for name in requirements.iter().filter_map(Value::as_object).flat_map(|r| r.keys()) {
                    if !schemes.contains_key(name) {
                        problems.push(format!("`{key}`: security scheme `{name}` is not in components"));
                    }
                }
                // As the SAM template's authorizer guards them.
                let (method, path) = key.split_once(' ').unwrap();
                let for_operators = path.starts_with("/admin/") && !(method == "POST" && path == "/admin/login");
                let operator_only = serde_json::json!([{"operatorToken": []}]);
                if for_operators && operation.operation["security"] != operator_only {
                    problems.push(format!(
                        "`{key}` is an operator route: `security: [{{operatorToken: []}}]`"
                    ));
                }
            }
        }
    }
    assert_none(problems);
}

#[test]
fn every_reference_resolves() {
    fn walk(doc: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if map.contains_key("$ref")
                    && let Err(error) = resolve(doc, value)
                {
                    problems.push(format!("{at}: {error}"));
                }
                for (key, child) in map {
                    walk(doc, child, &format!("{at}/{key}"), problems);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(doc, child, &format!("{at}/{i}"), problems);
                }
            }
            _ => {}
        }
    }
    let doc = document();
    let mut problems = Vec::new();
    walk(&doc, &doc, "#", &mut problems);
    assert_none(problems);
}

/// The `code`s and `status` a problem schema allows (`const` or `enum`),
/// looking through `allOf` / `oneOf` / `anyOf` and `$ref`s.
fn problem_constraints(doc: &Value, schema: &Value, codes: &mut BTreeSet<String>, statuses: &mut BTreeSet<u64>) {
    let Ok(schema) = resolve(doc, schema) else { return };
    let code = &schema["properties"]["code"];
    codes.extend(code["const"].as_str().map(str::to_owned));
    codes.extend(
        code["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned),
    );
    statuses.extend(schema["properties"]["status"]["const"].as_u64());
    for combinator in ["allOf", "oneOf", "anyOf"] {
        for part in schema[combinator].as_array().into_iter().flatten() {
            problem_constraints(doc, part, codes, statuses);
        }
    }
}

#[test]
fn problem_codes_and_statuses_are_the_error_types() {
    let doc = document();
    let status_of: BTreeMap<String, u64> = problem::ALL
        .iter()
        .map(|row| (row.code.to_owned(), u64::from(row.status.as_u16())))
        .collect();
    let mut problems = Vec::new();

    let documented: BTreeSet<String> = doc["components"]["schemas"]["ProblemCode"]["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let codes: BTreeSet<String> = status_of.keys().cloned().collect();
    if documented != codes {
        problems.push(format!(
            "components.schemas.ProblemCode must list exactly the codes of shared::http::problem::ALL: \
             missing {:?}, unknown {:?}",
            codes.difference(&documented).collect::<Vec<_>>(),
            documented.difference(&codes).collect::<Vec<_>>()
        ));
    }

    for operation in operations(&doc) {
        let responses = operation.operation["responses"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (status, response) in &responses {
            let at = format!("`{}` response {status}", operation.key);
            let response = match resolve(&doc, response) {
                Ok(response) => response,
                Err(error) => {
                    problems.push(format!("{at}: {error}"));
                    continue;
                }
            };
            let problem = &response["content"]["application/problem+json"]["schema"];
            if problem.is_null() {
                // A payment provider hears a failure in its own format.
                let providers = response["x-provider-format"] == serde_json::Value::Bool(true);
                if status.starts_with(['4', '5']) && status != "429" && !providers {
                    problems.push(format!("{at}: an error the API answers is application/problem+json"));
                }
                continue;
            }
            let (mut codes, mut statuses) = (BTreeSet::new(), BTreeSet::new());
            problem_constraints(&doc, problem, &mut codes, &mut statuses);
            if codes.is_empty() {
                problems.push(format!("{at}: the problem schema must say which `code`s it carries"));
            }
            if statuses.iter().any(|s| s.to_string() != *status) {
                problems.push(format!("{at}: the problem schema's `status` is {statuses:?}"));
            }
            for code in &codes {
                match status_of.get(code) {
                    None => problems.push(format!("{at}: `{code}` is no code of shared::http::problem::ALL")),
                    Some(real) if real.to_string() != *status => {
                        problems.push(format!("{at}: `{code}` is answered with {real}, not {status}"))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    assert_none(problems);
}

#[tokio::test]
async fn the_local_server_serves_this_document_and_its_local_routes() {
    let t = TestApp::start().await;
    let served = t.get("/openapi.json", None).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.content_type, "application/json");
    assert_eq!(served.body, document(), "GET /openapi.json must serve openapi.yaml");

    let health = t.get("/health", None).await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
}
