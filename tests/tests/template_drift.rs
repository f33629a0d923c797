//! `infra/template.yaml` against the code it deploys. Every check derives
//! its expectation from the code (each function's `routes()`, the table
//! definitions, the crates in `functions/`), so a change on one side only
//! fails here with what to change on the other.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write,
    path::Path,
    sync::Arc,
};

use integration_tests::{WORKSPACE, template_yaml};
use serde_norway::Value;
use shared::{
    App,
    config::{Applies, SETTINGS},
    http::Routes,
    ledger::tables::{self, IndexDef, TableDef},
    metrics,
};

/// The functions that serve HTTP, by binary name. A new one belongs here and
/// in `local_server::routes()`, which `http_functions_are_the_local_servers`
/// holds this list to.
fn http_functions() -> Vec<(&'static str, Routes<Arc<App>>)> {
    vec![
        ("accounts", accounts::routes()),
        ("admin", admin::routes()),
        ("catalog", catalog::routes()),
        ("grab", grab::routes()),
        ("order", order::routes()),
        ("pay", pay::routes()),
        ("payment-notify", payment_notify::routes()),
        ("red-packet-claim", red_packet_claim::routes()),
    ]
}

/// The functions whose every route is the target of a crowd, throttled per
/// route at the gateway.
const THROTTLED: &[&str] = &["grab", "red-packet-claim"];

/// The binaries that touch no Redis, so run outside the VPC without the
/// app's settings: the authorizer only checks a signature, the seeder only
/// writes one operator, the edge function reads SKUs and campaigns and
/// writes pages and the ticket list, the warm-up job reads the sales and
/// asks Lambda for instances.
const OUTSIDE_VPC: &[&str] = &["authorizer", "seed-admin", "edge", "warm-up"];

/// The binaries that serve no HTTP and run on no schedule: the gateway
/// calls the authorizer, an operator the seeder, the tables' streams the
/// edge function.
const NOT_SCHEDULED: &[&str] = &["authorizer", "seed-admin", "edge"];

/// The binary of the HTTP API's Lambda authorizer.
const AUTHORIZER: &str = "authorizer";

/// Every binary of every crate in `functions/`: `src/main.rs` is the
/// crate's own (named after its directory), `src/bin/*.rs` the others.
fn workspace_binaries() -> BTreeSet<String> {
    let mut binaries = BTreeSet::new();
    let functions = Path::new(WORKSPACE).join("functions");
    for entry in std::fs::read_dir(&functions).expect("read functions/") {
        let dir = entry.expect("read functions/").path();
        if dir.join("src/main.rs").exists() {
            binaries.insert(dir.file_name().unwrap().to_string_lossy().into_owned());
        }
        if let Ok(bins) = std::fs::read_dir(dir.join("src/bin")) {
            for bin in bins {
                let path = bin.expect("read src/bin").path();
                if path.extension().is_some_and(|e| e == "rs") {
                    binaries.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    binaries
}

fn route_key(method: &str, path: &str) -> String {
    format!("{} {path}", method.to_uppercase())
}

/// Fails with every problem at once, so one run says all there is to fix.
fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "infra/template.yaml disagrees with the code:\n  {}",
        problems.join("\n  ")
    );
}

// ------------------------------------------------------------ the template

struct Template(Value);

/// A function resource of the template.
struct Function<'a> {
    id: &'a str,
    resource: &'a Value,
}

impl Template {
    fn load() -> Template {
        Template(template_yaml())
    }

    fn resources_of(&self, kind: &str) -> Vec<(&str, &Value)> {
        let resources = self.0["Resources"].as_mapping().expect("Resources");
        resources
            .iter()
            .filter(|(_, resource)| resource["Type"].as_str() == Some(kind))
            .map(|(id, resource)| (id.as_str().expect("logical ids are strings"), resource))
            .collect()
    }

    /// The functions by the binary they run.
    fn functions(&self) -> BTreeMap<&str, Function<'_>> {
        let mut functions = BTreeMap::new();
        for (id, resource) in self.resources_of("AWS::Serverless::Function") {
            let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} has no Metadata.BuildProperties.Binary"));
            let previous = functions.insert(binary, Function { id, resource });
            assert!(previous.is_none(), "two functions run the binary {binary}");
        }
        functions
    }

    /// A function's property, or the one `Globals.Function` gives it.
    fn property<'a>(&'a self, function: &'a Function<'_>, name: &str) -> &'a Value {
        match &function.resource["Properties"][name] {
            Value::Null => &self.0["Globals"]["Function"][name],
            own => own,
        }
    }

    /// Each table resource's logical id, by the table's logical name
    /// (`TableName: !Sub "${AWS::StackName}-<name>"`).
    fn tables(&self) -> BTreeMap<String, (&str, &Value)> {
        self.resources_of("AWS::DynamoDB::Table")
            .into_iter()
            .map(|(id, table)| {
                let name = sub(&table["Properties"]["TableName"])
                    .and_then(|s| s.strip_prefix("${AWS::StackName}-"))
                    .unwrap_or_else(|| panic!("{id}: TableName must be !Sub \"${{AWS::StackName}}-<name>\""));
                (name.to_owned(), (id, table))
            })
            .collect()
    }
}

fn tagged<'a>(value: &'a Value, tag: &str) -> Option<&'a Value> {
    match value {
        Value::Tagged(tagged) if tagged.tag == tag => Some(&tagged.value),
        _ => None,
    }
}

fn reference(value: &Value) -> Option<&str> {
    tagged(value, "Ref")?.as_str()
}

/// What a `!Ref` names, also when only under a condition
/// (`!If [cond, !Ref X, !Ref AWS::NoValue]`, a provider's secret).
fn reference_if_any(value: &Value) -> Option<&str> {
    match tagged(value, "If").and_then(Value::as_sequence) {
        Some(branches) if branches.get(2).and_then(reference) == Some("AWS::NoValue") => reference(branches.get(1)?),
        _ => reference(value),
    }
}

/// The string of a `!Sub`, in either form (`!Sub "…"`, `!Sub ["…", {vars}]`).
fn sub(value: &Value) -> Option<&str> {
    match tagged(value, "Sub")? {
        Value::Sequence(form) => form.first()?.as_str(),
        string => string.as_str(),
    }
}

fn get_att(value: &Value) -> Option<&str> {
    tagged(value, "GetAtt")?.as_str()
}

/// A value that may be one item or a list of them.
fn items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(values) => values.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// The events of a function of one `Type`, by name.
fn events<'a>(function: &Function<'a>, kind: &str) -> Vec<(&'a str, &'a Value)> {
    function.resource["Properties"]["Events"]
        .as_mapping()
        .map(|events| {
            events
                .iter()
                .filter(|(_, event)| event["Type"].as_str() == Some(kind))
                .map(|(name, event)| (name.as_str().unwrap_or(""), &event["Properties"]))
                .collect()
        })
        .unwrap_or_default()
}

/// The route keys (`METHOD /path`) of a function's HttpApi events.
fn template_routes(function: &Function<'_>) -> BTreeSet<String> {
    events(function, "HttpApi")
        .into_iter()
        .map(|(_, event)| {
            route_key(
                event["Method"].as_str().unwrap_or(""),
                event["Path"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

fn code_routes(routes: &Routes<Arc<App>>) -> BTreeSet<String> {
    routes
        .listed()
        .iter()
        .map(|(method, path)| route_key(method.as_str(), path))
        .collect()
}

// ------------------------------------------------------------------ routes

#[test]
fn http_functions_are_the_local_servers() {
    let mut listed: Vec<String> = http_functions()
        .iter()
        .flat_map(|(_, routes)| code_routes(routes))
        .collect();
    listed.sort();
    let mut served: Vec<String> = code_routes(&local_server::routes()).into_iter().collect();
    served.sort();
    assert_eq!(
        listed, served,
        "tests/tests/template_drift.rs's http_functions() must list every function local_server::routes() merges"
    );
}

#[test]
fn every_route_is_served_by_its_function_and_no_other() {
    let template = Template::load();
    let functions = template.functions();
    let mut problems = Vec::new();
    let mut owner_in_code = BTreeMap::new();
    for (binary, routes) in http_functions() {
        for route in code_routes(&routes) {
            owner_in_code.insert(route, binary);
        }
    }
    let mut owner_in_template = BTreeMap::new();
    for (binary, function) in &functions {
        for (name, event) in events(function, "HttpApi") {
            if reference(&event["ApiId"]) != Some("HttpApi") {
                problems.push(format!("{}: event {name} must have ApiId: !Ref HttpApi", function.id));
            }
        }
        for route in template_routes(function) {
            if let Some(other) = owner_in_template.insert(route.clone(), *binary) {
                problems.push(format!("`{route}` is mapped to both {other} and {binary}"));
            }
        }
    }
    for (route, binary) in &owner_in_code {
        match owner_in_template.get(route) {
            None => problems.push(format!("`{route}` is served by {binary} but has no HttpApi event")),
            Some(mapped) if mapped != binary => problems.push(format!(
                "`{route}` is served by {binary} but mapped to the function running {mapped}"
            )),
            Some(_) => {}
        }
    }
    for (route, binary) in &owner_in_template {
        if !owner_in_code.contains_key(route) {
            problems.push(format!(
                "`{route}` is mapped to {binary}, whose routes() does not serve it"
            ));
        }
    }
    assert_none(problems);
}

/// `/admin/*` but the login is for operators: the authorizer turns every
/// other caller away. Everything else must stay reachable without it.
fn needs_operator(route: &str) -> bool {
    let (method, path) = route.split_once(' ').expect("METHOD /path");
    path.starts_with("/admin/") && !(method == "POST" && path == "/admin/login")
}

#[test]
fn operator_routes_and_only_they_sit_behind_the_authorizer() {
    let template = Template::load();
    let functions = template.functions();
    let mut problems = Vec::new();

    let auth = &template.0["Resources"]["HttpApi"]["Properties"]["Auth"];
    if !auth["DefaultAuthorizer"].is_null() {
        problems.push("HttpApi must have no DefaultAuthorizer: shoppers' and public routes have none".into());
    }
    let authorizer = &auth["Authorizers"]["AdminAuthorizer"];
    let authorizer_id = functions.get(AUTHORIZER).map(|f| f.id).unwrap_or("(none)");
    if get_att(&authorizer["FunctionArn"]) != Some(&format!("{authorizer_id}.Arn")) {
        problems.push(format!(
            "AdminAuthorizer must be FunctionArn: !GetAtt {authorizer_id}.Arn (the `{AUTHORIZER}` binary)"
        ));
    }
    let headers: Vec<_> = items(&authorizer["Identity"]["Headers"])
        .into_iter()
        .filter_map(Value::as_str)
        .collect();
    if headers != ["Authorization"] {
        problems.push("AdminAuthorizer must take its identity from the Authorization header".into());
    }
    if authorizer["AuthorizerPayloadFormatVersion"].as_str() != Some("2.0")
        || authorizer["EnableSimpleResponses"].as_bool() != Some(true)
    {
        problems.push("AdminAuthorizer answers in the simple format of payload 2.0".into());
    }

    for function in functions.values() {
        for (name, event) in events(function, "HttpApi") {
            let route = route_key(
                event["Method"].as_str().unwrap_or(""),
                event["Path"].as_str().unwrap_or(""),
            );
            let guarded_by = event["Auth"]["Authorizer"].as_str();
            match (needs_operator(&route), guarded_by) {
                (true, Some("AdminAuthorizer")) | (false, None) => {}
                (true, _) => problems.push(format!(
                    "{}.{name} `{route}` is for operators: add Auth: {{Authorizer: AdminAuthorizer}}",
                    function.id
                )),
                (false, Some(other)) => problems.push(format!(
                    "{}.{name} `{route}` must have no gateway authorizer, not {other}",
                    function.id
                )),
            }
        }
    }
    assert_none(problems);
}

#[test]
fn the_crowds_routes_are_throttled_and_every_throttle_names_a_route() {
    let template = Template::load();
    let functions = template.functions();
    let api = &template.0["Resources"]["HttpApi"]["Properties"];
    let settings = api["RouteSettings"].as_mapping().cloned().unwrap_or_default();
    let all_routes: BTreeSet<String> = functions.values().flat_map(template_routes).collect();
    let mut problems = Vec::new();

    for (binary, routes) in http_functions() {
        if !THROTTLED.contains(&binary) {
            continue;
        }
        for route in code_routes(&routes) {
            let setting = settings.get(route.as_str());
            let limited = |key: &str| setting.is_some_and(|s| reference(&s[key]).is_some() || s[key].is_number());
            if !limited("ThrottlingRateLimit") || !limited("ThrottlingBurstLimit") {
                problems.push(format!(
                    "`{route}` ({binary}) needs RouteSettings with ThrottlingRateLimit and ThrottlingBurstLimit"
                ));
            }
        }
    }
    for key in settings.keys() {
        let key = key.as_str().unwrap_or("");
        if !all_routes.contains(key) {
            problems.push(format!(
                "RouteSettings `{key}` is no route of the API (the deploy would fail)"
            ));
        }
    }
    if api["DefaultRouteSettings"]["ThrottlingRateLimit"].is_null() {
        problems.push("HttpApi needs DefaultRouteSettings throttling for the other routes".into());
    }
    assert_none(problems);
}

// --------------------------------------------------------------- functions

#[test]
fn every_binary_is_a_function_built_by_cargo_lambda_for_arm64() {
    let template = Template::load();
    let functions = template.functions();
    let binaries = workspace_binaries();
    let mut problems = Vec::new();
    for binary in &binaries {
        if !functions.contains_key(binary.as_str()) {
            problems.push(format!("the binary {binary} (functions/) has no function"));
        }
    }
    for (binary, function) in &functions {
        let id = function.id;
        if !binaries.contains(*binary) {
            problems.push(format!("{id} runs {binary}, which no crate in functions/ builds"));
        }
        if function.resource["Metadata"]["BuildMethod"].as_str() != Some("rust-cargolambda") {
            problems.push(format!("{id} must have Metadata.BuildMethod: rust-cargolambda"));
        }
        let expect = |name: &str, wanted: Value, problems: &mut Vec<String>| {
            let actual = template.property(function, name);
            if *actual != wanted {
                problems.push(format!("{id}: {name} must be {wanted:?}, not {actual:?}"));
            }
        };
        expect("Runtime", "provided.al2023".into(), &mut problems);
        expect("Architectures", Value::Sequence(vec!["arm64".into()]), &mut problems);
        expect("Handler", "bootstrap".into(), &mut problems);
        // The workspace root, relative to infra/.
        expect("CodeUri", "..".into(), &mut problems);
    }
    assert_none(problems);
}

#[test]
fn functions_that_run_the_app_are_in_the_vpc_with_its_settings() {
    let template = Template::load();
    let mut problems = Vec::new();
    for (binary, function) in template.functions() {
        let id = function.id;
        let properties = &function.resource["Properties"];
        let env = &template.property(&function, "Environment")["Variables"];
        let table_prefix = sub(&env["TABLE_PREFIX"]) == Some("${AWS::StackName}-");
        if OUTSIDE_VPC.contains(&binary) {
            if !properties["VpcConfig"].is_null() {
                problems.push(format!("{id} touches no cache: keep it out of the VPC"));
            }
            continue;
        }
        let groups: Vec<_> = items(&properties["VpcConfig"]["SecurityGroupIds"])
            .into_iter()
            .filter_map(reference)
            .collect();
        if groups != ["FunctionSecurityGroup"] || items(&properties["VpcConfig"]["SubnetIds"]).len() < 2 {
            problems.push(format!(
                "{id} must run in the private subnets with FunctionSecurityGroup, the group the cache lets in"
            ));
        }
        let redis_url = sub(&env["REDIS_URL"]).unwrap_or("");
        if !redis_url.starts_with("rediss://") || reference(&env["REDIS_PASSWORD_ARN"]) != Some("CachePasswordSecret") {
            problems.push(format!(
                "{id}: REDIS_URL must be rediss:// (TLS), its password the secret REDIS_PASSWORD_ARN: !Ref CachePasswordSecret"
            ));
        }
        if env["REDIS_CLUSTER"].as_str() != Some("true") {
            problems.push(format!("{id}: REDIS_CLUSTER must be \"true\" (ElastiCache Serverless)"));
        }
        if !table_prefix {
            problems.push(format!("{id}: TABLE_PREFIX must be !Sub \"${{AWS::StackName}}-\""));
        }
        if reference(&env["JWT_SECRET_ARN"]) != Some("JwtSecret") {
            problems.push(format!("{id}: JWT_SECRET_ARN must be !Ref JwtSecret"));
        }
    }
    assert_none(problems);
}

/// The functions that move money: they charge, close, look up and refund
/// at the providers.
const MONEY: [&str; 4] = ["admin", "pay", "payment-notify", "payments"];

/// A payment provider's setting as the cloud gives it (its stand-ins'
/// addresses are local only).
fn provider_setting(name: &str) -> bool {
    let provider = ["STRIPE_", "ALIPAY_", "WECHATPAY_"].iter().any(|p| name.starts_with(p));
    (provider && !name.ends_with("_API_BASE")) || ["PUBLIC_API_URL", "SHOP_URL", "SANDBOX_PAYMENTS"].contains(&name)
}

/// Every provider setting the code reads reaches the functions that move
/// money (a secret by its `_ARN`), and no other function: a grab's cold
/// start reads no provider's secret. With any provider on, the sandbox is
/// off: where money is real, nobody may be "paid" by a stand-in.
#[test]
fn payment_providers_are_configured_on_the_money_functions_only() {
    let template = Template::load();
    let expected: BTreeSet<String> = SETTINGS
        .iter()
        .filter(|setting| setting.applies != Applies::Local && provider_setting(setting.name))
        .map(|setting| setting.name.to_owned())
        .collect();
    let mut problems = Vec::new();
    for (binary, function) in template.functions() {
        let env = template.property(&function, "Environment")["Variables"]
            .as_mapping()
            .cloned()
            .unwrap_or_default();
        let given: BTreeSet<String> = env
            .keys()
            .filter_map(Value::as_str)
            .filter(|name| provider_setting(name))
            .map(str::to_owned)
            .collect();
        if MONEY.contains(&binary) {
            let missing: Vec<_> = expected.difference(&given).collect();
            if !missing.is_empty() {
                problems.push(format!("{}: no {missing:?}", function.id));
            }
            let sandbox = tagged(&env[&Value::from("SANDBOX_PAYMENTS")], "If").and_then(Value::as_sequence);
            let off_with_providers = sandbox.is_some_and(|branches| {
                branches.first().and_then(Value::as_str) == Some("OffersAProvider")
                    && branches.get(1).and_then(Value::as_str) == Some("false")
            });
            if !off_with_providers {
                problems.push(format!(
                    "{}: SANDBOX_PAYMENTS must be !If [OffersAProvider, \"false\", …]",
                    function.id
                ));
            }
        } else if !given.is_empty() {
            problems.push(format!("{} moves no money but is given {given:?}", function.id));
        }
    }
    assert_none(problems);
}

/// Every binary in `functions/` that serves no HTTP is a periodic job, but
/// the authorizer and the seeder, which are invoked by API Gateway and by
/// hand.
#[test]
fn periodic_jobs_run_on_scheduler_schedules_with_their_rate_as_a_parameter() {
    let template = Template::load();
    let functions = template.functions();
    let http: BTreeSet<&str> = http_functions().iter().map(|(binary, _)| *binary).collect();
    let mut problems = Vec::new();
    for binary in workspace_binaries() {
        let Some(function) = functions.get(binary.as_str()) else {
            continue;
        };
        let schedules = events(function, "ScheduleV2");
        let periodic = !http.contains(binary.as_str()) && !NOT_SCHEDULED.contains(&binary.as_str());
        if !periodic {
            if !schedules.is_empty() {
                problems.push(format!("{} ({binary}) is not a periodic job", function.id));
            }
            continue;
        }
        let rate_parameter = schedules.first().and_then(|(_, event)| {
            sub(&event["ScheduleExpression"])?
                .strip_prefix("rate(${")?
                .strip_suffix("})")
        });
        match rate_parameter {
            Some(parameter) if schedules.len() == 1 && !template.0["Parameters"][parameter].is_null() => {}
            _ => problems.push(format!(
                "{} ({binary}) needs one ScheduleV2 event, ScheduleExpression: !Sub \"rate(${{<Parameter>}}\")",
                function.id
            )),
        }
    }
    assert_none(problems);
}

/// A statement that lets a function read secrets (checked by
/// `secrets_are_read_at_cold_start_never_held_in_the_environment`).
fn reads_secrets(statement: &Value) -> bool {
    items(&statement["Action"])
        .iter()
        .any(|action| action.as_str().is_some_and(|a| a.starts_with("secretsmanager:")))
}

/// The settings that are secrets, by the name of their value; the
/// environment may only name them by ARN (`<NAME>_ARN`).
const SECRET_SETTINGS: [&str; 9] = [
    "JWT_SECRET",
    "REDIS_PASSWORD",
    "EDGE_KEY",
    "ADMIN_PASSWORD",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "ALIPAY_PRIVATE_KEY",
    "WECHATPAY_PRIVATE_KEY",
    "WECHATPAY_API_V3_KEY",
];

/// No function's environment holds a secret's value (a
/// `{{resolve:secretsmanager:…}}`, a secret setting by value, a password in
/// `REDIS_URL`), since `lambda:GetFunctionConfiguration` shows it; each
/// role may `GetSecretValue` exactly the secrets its environment names by
/// ARN, and nothing else of Secrets Manager.
#[test]
fn secrets_are_read_at_cold_start_never_held_in_the_environment() {
    let template = Template::load();
    let secrets: BTreeSet<&str> = template
        .resources_of("AWS::SecretsManager::Secret")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut problems = Vec::new();
    for function in template.functions().values() {
        let id = function.id;
        let env = template.property(function, "Environment")["Variables"]
            .as_mapping()
            .cloned()
            .unwrap_or_default();
        let mut named = BTreeSet::new();
        for (name, value) in &env {
            let name = name.as_str().unwrap_or("");
            let text = sub(value).or(value.as_str()).unwrap_or("");
            if text.contains("{{resolve:") || format!("{value:?}").contains("{{resolve:") {
                problems.push(format!("{id}: {name} resolves a secret into the environment"));
            }
            // Declared empty only so that `sam local` may set it.
            if SECRET_SETTINGS.contains(&name) && value.as_str() != Some("") {
                problems.push(format!("{id}: {name} by value; give {name}_ARN instead"));
            }
            if name == "REDIS_URL"
                && text
                    .split_once('@')
                    .is_some_and(|(user, _)| user.matches(':').count() > 1)
            {
                problems.push(format!("{id}: REDIS_URL carries a password"));
            }
            if let Some(setting) = name.strip_suffix("_ARN") {
                match reference_if_any(value) {
                    Some(secret) if secrets.contains(secret) && SECRET_SETTINGS.contains(&setting) => {
                        named.insert(secret.to_owned());
                    }
                    _ => problems.push(format!("{id}: {name} must be !Ref to a secret of a known setting")),
                }
            }
        }
        let mut readable = BTreeSet::new();
        for policy in items(&function.resource["Properties"]["Policies"]) {
            for statement in items(&policy["Statement"]).into_iter().filter(|s| reads_secrets(s)) {
                let actions: Vec<&Value> = items(&statement["Action"]);
                if actions
                    .iter()
                    .any(|a| a.as_str() != Some("secretsmanager:GetSecretValue"))
                {
                    problems.push(format!("{id}: of Secrets Manager, only secretsmanager:GetSecretValue"));
                }
                for resource in items(&statement["Resource"]) {
                    match reference_if_any(resource) {
                        Some(secret) if secrets.contains(secret) => {
                            readable.insert(secret.to_owned());
                        }
                        _ => problems.push(format!("{id}: secrets by !Ref only, not {resource:?}")),
                    }
                }
            }
        }
        if readable != named {
            problems.push(format!(
                "{id}: may read the secrets {readable:?} but its environment names {named:?}"
            ));
        }
    }
    assert_none(problems);
}

/// A statement that lets a function write the item pages or the ticket
/// list (checked by `the_edge_function_follows_both_streams_into_the_pages_and_the_ticket_list`).
fn writes_the_edge(statement: &Value) -> bool {
    let all_start = |prefix: &str| {
        items(&statement["Action"])
            .iter()
            .all(|action| action.as_str().is_some_and(|a| a.starts_with(prefix)))
    };
    (all_start("s3:") && sub(&statement["Resource"]).is_some_and(|r| r.starts_with("${PagesBucket.Arn}/")))
        || (all_start("cloudfront-keyvaluestore:") && get_att(&statement["Resource"]) == Some("TicketList.Arn"))
}

/// A statement that lets a function ask for provisioned concurrency
/// (checked by `the_warm_up_job_warms_exactly_the_crowd_functions_aliases`).
fn warms_the_crowd(statement: &Value) -> bool {
    items(&statement["Action"])
        .iter()
        .any(|action| action.as_str().is_some_and(|a| a.starts_with("lambda:")))
}

/// Least privilege: DynamoDB actions named one by one, on tables and
/// indexes of this template that the code defines.
#[test]
fn policies_name_exact_actions_on_real_tables_and_indexes() {
    let template = Template::load();
    let by_id: BTreeMap<&str, &TableDef> = template
        .tables()
        .into_iter()
        .filter_map(|(name, (id, _))| tables::ALL.iter().find(|t| t.name == name).map(|t| (id, t)))
        .collect();
    let mut problems = Vec::new();
    for function in template.functions().values() {
        let id = function.id;
        for policy in items(&function.resource["Properties"]["Policies"]) {
            let Some(statements) = policy.get("Statement") else {
                problems.push(format!(
                    "{id}: only inline statements, no managed or SAM template policies"
                ));
                continue;
            };
            for statement in items(statements)
                .into_iter()
                .filter(|s| !reads_secrets(s) && !writes_the_edge(s) && !warms_the_crowd(s))
            {
                for action in items(&statement["Action"]) {
                    let action = action.as_str().unwrap_or("");
                    if !action.starts_with("dynamodb:") || action.contains('*') {
                        problems.push(format!("{id}: action `{action}` must be one named DynamoDB action"));
                    }
                }
                for resource in items(&statement["Resource"]) {
                    let known = if let Some(arn) = get_att(resource) {
                        arn.strip_suffix(".Arn").is_some_and(|t| by_id.contains_key(t))
                    } else if let Some(arn) = sub(resource) {
                        arn.strip_prefix("${")
                            .and_then(|s| s.split_once(".Arn}/index/"))
                            .is_some_and(|(table, index)| {
                                by_id
                                    .get(table)
                                    .is_some_and(|def| def.indexes.iter().any(|i| i.name == index))
                            })
                    } else {
                        false
                    };
                    if !known {
                        problems.push(format!(
                            "{id}: resource {resource:?} is no table (!GetAtt <Table>.Arn) or index \
                             (!Sub \"${{<Table>.Arn}}/index/<name>\") of shared::ledger::tables"
                        ));
                    }
                }
            }
        }
    }
    assert_none(problems);
}

// ------------------------------------------------------------------ tables

/// What the template and the code must agree on for one table.
#[derive(Debug, PartialEq)]
struct TableShape {
    key: (String, Option<String>),
    attributes: BTreeMap<String, String>,
    indexes: BTreeMap<String, (String, Option<String>, String)>,
    local_indexes: bool,
    billing: String,
    point_in_time_recovery: bool,
}

impl TableShape {
    fn of(def: &TableDef) -> TableShape {
        TableShape {
            key: (def.hash_key.into(), def.range_key.map(Into::into)),
            attributes: def
                .key_attributes()
                .into_iter()
                .map(|name| (name.into(), "S".into()))
                .collect(),
            indexes: def
                .indexes
                .iter()
                .map(|i| {
                    (
                        i.name.into(),
                        (i.hash_key.into(), i.range_key.map(Into::into), "ALL".into()),
                    )
                })
                .collect(),
            local_indexes: false,
            billing: "PAY_PER_REQUEST".into(),
            point_in_time_recovery: true,
        }
    }

    fn declared(table: &Value) -> TableShape {
        let properties = &table["Properties"];
        let key = |schema: &Value| {
            let part = |kind: &str| {
                items(schema)
                    .into_iter()
                    .find(|k| k["KeyType"].as_str() == Some(kind))
                    .and_then(|k| k["AttributeName"].as_str())
                    .map(str::to_owned)
            };
            (part("HASH").unwrap_or_default(), part("RANGE"))
        };
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        TableShape {
            key: key(&properties["KeySchema"]),
            attributes: items(&properties["AttributeDefinitions"])
                .into_iter()
                .map(|a| (text(&a["AttributeName"]), text(&a["AttributeType"])))
                .collect(),
            indexes: items(&properties["GlobalSecondaryIndexes"])
                .into_iter()
                .map(|i| {
                    let (hash, range) = key(&i["KeySchema"]);
                    (
                        text(&i["IndexName"]),
                        (hash, range, text(&i["Projection"]["ProjectionType"])),
                    )
                })
                .collect(),
            local_indexes: !properties["LocalSecondaryIndexes"].is_null(),
            billing: text(&properties["BillingMode"]),
            point_in_time_recovery: properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
                .as_bool()
                == Some(true),
        }
    }
}

/// `sku_activities` → `SkuActivities`.
fn camel(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn key_schema_yaml(out: &mut String, indent: &str, hash: &str, range: Option<&str>) {
    writeln!(out, "{indent}KeySchema:").unwrap();
    for (name, kind) in std::iter::once((hash, "HASH")).chain(range.map(|r| (r, "RANGE"))) {
        writeln!(out, "{indent}  - AttributeName: {name}\n{indent}    KeyType: {kind}").unwrap();
    }
}

/// The resource to paste into the template for a table of the code.
fn table_yaml(def: &TableDef) -> String {
    let mut out = String::new();
    writeln!(out, "  {}Table:\n    Type: AWS::DynamoDB::Table", camel(def.name)).unwrap();
    writeln!(
        out,
        "    DeletionPolicy: Delete\n    UpdateReplacePolicy: Retain\n    Properties:"
    )
    .unwrap();
    writeln!(out, "      TableName: !Sub \"${{AWS::StackName}}-{}\"", def.name).unwrap();
    writeln!(out, "      BillingMode: PAY_PER_REQUEST").unwrap();
    writeln!(
        out,
        "      PointInTimeRecoverySpecification:\n        PointInTimeRecoveryEnabled: true"
    )
    .unwrap();
    writeln!(out, "      DeletionProtectionEnabled: !Ref TableDeletionProtection").unwrap();
    writeln!(out, "      AttributeDefinitions:").unwrap();
    for attribute in def.key_attributes() {
        writeln!(out, "        - AttributeName: {attribute}\n          AttributeType: S").unwrap();
    }
    key_schema_yaml(&mut out, "      ", def.hash_key, def.range_key);
    if !def.indexes.is_empty() {
        writeln!(out, "      GlobalSecondaryIndexes:").unwrap();
        for IndexDef {
            name,
            hash_key,
            range_key,
        } in def.indexes
        {
            writeln!(out, "        - IndexName: {name}").unwrap();
            key_schema_yaml(&mut out, "          ", hash_key, *range_key);
            writeln!(out, "          Projection:\n            ProjectionType: ALL").unwrap();
        }
    }
    out
}

#[test]
fn tables_are_exactly_the_codes() {
    let template = Template::load();
    let declared = template.tables();
    let mut problems = Vec::new();
    for def in tables::ALL {
        match declared.get(def.name) {
            None => problems.push(format!(
                "table `{}` is missing; add to Resources (and to Outputs, and to the policies of the \
                 functions that use it):\n{}",
                def.name,
                table_yaml(def)
            )),
            Some((id, table)) => {
                let (expected, actual) = (TableShape::of(def), TableShape::declared(table));
                if expected != actual {
                    problems.push(format!(
                        "{id} is not table `{}` of the code:\n    template {actual:?}\n    code     {expected:?}\n\
                         the resource the code implies:\n{}",
                        def.name,
                        table_yaml(def)
                    ));
                }
            }
        }
    }
    for (name, (id, _)) in &declared {
        if !tables::ALL.iter().any(|t| t.name == name) {
            problems.push(format!("{id} (`{name}`) is no table of shared::ledger::tables::ALL"));
        }
    }
    assert_none(problems);
}

#[test]
fn outputs_name_the_api_the_cache_and_every_table() {
    let template = Template::load();
    let outputs = &template.0["Outputs"];
    let values: Vec<&Value> = outputs
        .as_mapping()
        .map(|o| o.values().map(|output| &output["Value"]).collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    for (name, (id, _)) in template.tables() {
        if !values.iter().any(|v| reference(v) == Some(id)) {
            problems.push(format!("Outputs must give the name of table `{name}` (!Ref {id})"));
        }
    }
    if !sub(&outputs["ApiUrl"]["Value"]).is_some_and(|v| v.contains("${HttpApi}")) {
        problems.push("Outputs must have ApiUrl from HttpApi".into());
    }
    // Whichever engine GateEngine picks, its endpoint is the output.
    let endpoint = serde_norway::to_string(&outputs["RedisEndpoint"]["Value"]).unwrap_or_default();
    for engine in [
        "Cache.Endpoint.Address",
        "CacheReplicationGroup.ConfigurationEndPoint.Address",
        "MemoryDbCluster.ClusterEndpoint.Address",
    ] {
        if !endpoint.contains(engine) {
            problems.push(format!("Outputs must have RedisEndpoint from {engine}"));
        }
    }
    assert_none(problems);
}

/// Every figure `shared::metrics` records: the dashboard shows them all.
const WATCHED: &[&str] = &[
    metrics::GRABS,
    metrics::CLAIMS,
    metrics::LATENCY,
    metrics::REDIS_ERRORS,
    metrics::DYNAMODB_ERRORS,
    metrics::TIMEOUTS_RELEASED,
    metrics::PAYOUT_CREDITED,
    metrics::PAYOUT_BACKLOG,
    metrics::PAYOUT_OLDEST_AGE,
    metrics::JOB_RUNS,
];

/// The `FunctionName` an alarm's metric is about, if any.
fn alarmed_function(alarm: &Value) -> Option<&str> {
    items(&alarm["Properties"]["Dimensions"])
        .into_iter()
        .find(|dimension| dimension["Name"].as_str() == Some("FunctionName"))
        .and_then(|dimension| reference(&dimension["Value"]))
}

#[test]
fn the_dashboard_shows_every_figure_and_alarms_watch_the_sale_and_every_job() {
    let template = Template::load();
    let mut problems = Vec::new();

    let dashboards = template.resources_of("AWS::CloudWatch::Dashboard");
    let body = dashboards
        .first()
        .and_then(|(_, dashboard)| sub(&dashboard["Properties"]["DashboardBody"]))
        .unwrap_or_default();
    // With every ${…} a plain string, the body must be JSON.
    let plain = body.split("${").enumerate().fold(String::new(), |mut out, (i, piece)| {
        if i == 0 {
            out.push_str(piece);
        } else {
            out.push('X');
            out.push_str(piece.split_once('}').map_or(piece, |(_, rest)| rest));
        }
        out
    });
    if let Err(error) = serde_json::from_str::<serde_json::Value>(&plain) {
        problems.push(format!("the dashboard's body is not JSON: {error}"));
    }
    for figure in WATCHED {
        if !body.contains(figure) {
            problems.push(format!("the dashboard does not show `{figure}`"));
        }
    }

    let alarms = template.resources_of("AWS::CloudWatch::Alarm");
    for (id, alarm) in &alarms {
        let actions = items(&alarm["Properties"]["AlarmActions"]);
        if !actions.iter().any(|action| reference(action) == Some("AlarmTopic")) {
            problems.push(format!("{id} does not notify AlarmTopic"));
        }
    }
    let on_metric = |namespace: &str, name: &str| {
        alarms.iter().any(|(_, alarm)| {
            let properties = &alarm["Properties"];
            (properties["Namespace"].as_str() == Some(namespace) && properties["MetricName"].as_str() == Some(name))
                || items(&properties["Metrics"]).iter().any(|metric| {
                    let watched = &metric["MetricStat"]["Metric"];
                    watched["Namespace"].as_str() == Some(namespace) && watched["MetricName"].as_str() == Some(name)
                })
        })
    };
    for (namespace, name, why) in [
        ("AWS/ApiGateway", "5xx", "the API's 5xx answers"),
        (metrics::NAMESPACE, metrics::GRABS, "UNAVAILABLE grabs"),
        (metrics::NAMESPACE, metrics::CLAIMS, "UNAVAILABLE claims"),
        (metrics::NAMESPACE, metrics::PAYOUT_OLDEST_AGE, "the payout lag"),
    ] {
        if !on_metric(namespace, name) {
            problems.push(format!("no alarm watches {why} ({namespace} {name})"));
        }
    }
    for (binary, function) in template.functions() {
        if events(&function, "ScheduleV2").is_empty() {
            continue;
        }
        for (metric, why) in [("Errors", "failing"), ("Invocations", "not running")] {
            let watched = alarms.iter().any(|(_, alarm)| {
                alarm["Properties"]["MetricName"].as_str() == Some(metric)
                    && alarmed_function(alarm) == Some(function.id)
            });
            if !watched {
                problems.push(format!(
                    "no alarm on {} ({binary}) {why} (AWS/Lambda {metric})",
                    function.id
                ));
            }
        }
    }
    assert_none(problems);
}

// ----------------------------------------------------------------- console

/// What `scripts/deploy-console.sh` needs in the repo: the page, and the
/// local `config.js` it stands in for with one naming the stack's API.
const CONSOLE_FILES: &[&str] = &["console/index.html", "console/config.js"];

/// Whether a CloudFront path pattern (`*` any run of characters, `?` one)
/// matches `path`.
fn cloudfront_matches(pattern: &str, path: &str) -> bool {
    let regex = format!("^{}$", regex::escape(pattern).replace(r"\*", ".*").replace(r"\?", "."));
    regex::Regex::new(&regex).expect("a pattern").is_match(path)
}

/// A route's path as a browser asks it, each `{param}` a value.
fn example_path(route_path: &str) -> String {
    regex::Regex::new(r"\{[^}]+\}")
        .unwrap()
        .replace_all(route_path, "x1")
        .into_owned()
}

/// The `max-age` of a `Cache-Control` value.
fn max_age(cache_control: &str) -> u64 {
    let found = regex::Regex::new(r"max-age=(\d+)").unwrap();
    found.captures(cache_control).expect("a max-age")[1].parse().unwrap()
}

/// A private bucket that only the distribution reads, through origin
/// access control.
fn private_bucket_behind_the_distribution(template: &Template, bucket: &str, problems: &mut Vec<String>) {
    let resources = &template.0["Resources"];
    let block = &resources[bucket]["Properties"]["PublicAccessBlockConfiguration"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        if block[setting].as_bool() != Some(true) {
            problems.push(format!(
                "{bucket} must set PublicAccessBlockConfiguration.{setting}: true"
            ));
        }
    }
    let origins = items(&resources["ConsoleDistribution"]["Properties"]["DistributionConfig"]["Origins"]);
    let domain = format!("{bucket}.RegionalDomainName");
    let origin = origins
        .iter()
        .find(|origin| get_att(&origin["DomainName"]) == Some(domain.as_str()));
    if origin.is_none_or(|o| get_att(&o["OriginAccessControlId"]) != Some("ConsoleOriginAccessControl.Id")) {
        problems.push(format!(
            "ConsoleDistribution needs an origin {domain} with OriginAccessControlId: !GetAtt ConsoleOriginAccessControl.Id"
        ));
    }
    let allows: Vec<&Value> = template
        .resources_of("AWS::S3::BucketPolicy")
        .into_iter()
        .filter(|(_, policy)| reference(&policy["Properties"]["Bucket"]) == Some(bucket))
        .flat_map(|(_, policy)| items(&policy["Properties"]["PolicyDocument"]["Statement"]))
        .filter(|statement| statement["Effect"].as_str() == Some("Allow"))
        .collect();
    if allows.is_empty() {
        problems.push(format!(
            "a bucket policy of {bucket} must let ConsoleDistribution read it"
        ));
    }
    for statement in allows {
        let principal = &statement["Principal"];
        let cloudfront = principal.as_mapping().is_some_and(|p| p.len() == 1)
            && items(&principal["Service"])
                .into_iter()
                .map(Value::as_str)
                .collect::<Vec<_>>()
                == [Some("cloudfront.amazonaws.com")];
        let get_object = items(&statement["Action"])
            .into_iter()
            .map(Value::as_str)
            .collect::<Vec<_>>()
            == [Some("s3:GetObject")];
        let source = sub(&statement["Condition"]["StringEquals"]["AWS:SourceArn"]).unwrap_or("");
        if !cloudfront || !get_object || !source.ends_with(":distribution/${ConsoleDistribution}") {
            problems.push(format!(
                "{bucket}'s policy may allow only s3:GetObject to Service: cloudfront.amazonaws.com, \
                 on StringEquals AWS:SourceArn of ConsoleDistribution, not {statement:?}"
            ));
        }
    }
}

/// One distribution is the shop: the console (its default), the item
/// pages (`/items/`, from their own bucket) and every route of the API,
/// so browsers call one origin and the API needs no CORS. The API's
/// answers are cached only as they say, and its stock documents' second
/// fits; CloudFront passes on what the code reads, and its key proves it.
#[test]
fn the_shop_is_one_distribution_of_private_buckets_and_the_api() {
    let template = Template::load();
    let resources = &template.0["Resources"];
    let mut problems = Vec::new();
    private_bucket_behind_the_distribution(&template, "ConsoleBucket", &mut problems);
    private_bucket_behind_the_distribution(&template, "PagesBucket", &mut problems);

    let config = &resources["ConsoleDistribution"]["Properties"]["DistributionConfig"];
    if config["DefaultCacheBehavior"]["TargetOriginId"].as_str() != Some("console-bucket") {
        problems.push("ConsoleDistribution's default behaviour must serve the console (console-bucket)".into());
    }
    let behaviours = items(&config["CacheBehaviors"]);
    // CloudFront takes the first behaviour whose pattern matches.
    let behaviour_of = |path: &str| {
        behaviours
            .iter()
            .find(|b| cloudfront_matches(b["PathPattern"].as_str().unwrap_or(""), path))
            .copied()
    };
    let page = format!("/{}", shared::pages::item_key("sku-1"));
    if behaviour_of(&page).and_then(|b| b["TargetOriginId"].as_str()) != Some("pages-bucket") {
        problems.push(format!("{page} must be served from pages-bucket"));
    }

    let api_origin = items(&config["Origins"])
        .into_iter()
        .find(|origin| origin["Id"].as_str() == Some("api"));
    match api_origin {
        None => problems.push("ConsoleDistribution needs the origin `api`".into()),
        Some(origin) => {
            if sub(&origin["DomainName"]) != Some("${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}") {
                problems.push("the origin `api` must be HttpApi's execute-api domain".into());
            }
            if origin["CustomOriginConfig"]["OriginProtocolPolicy"].as_str() != Some("https-only") {
                problems.push("the origin `api` must be https-only".into());
            }
            let proves = items(&origin["OriginCustomHeaders"]).into_iter().any(|header| {
                header["HeaderName"].as_str() == Some(shared::http::identity::EDGE_KEY_HEADER)
                    && sub(&header["HeaderValue"]) == Some("{{resolve:secretsmanager:${EdgeKeySecret}:SecretString}}")
            });
            if !proves {
                problems.push(format!(
                    "the origin `api` must send {} with the value of EdgeKeySecret",
                    shared::http::identity::EDGE_KEY_HEADER
                ));
            }
        }
    }
    let accounts = &template.functions()["accounts"];
    if reference(&template.property(accounts, "Environment")["Variables"]["EDGE_KEY_ARN"]) != Some("EdgeKeySecret") {
        problems.push("the accounts function counts per viewer address: EDGE_KEY_ARN: !Ref EdgeKeySecret".into());
    }

    let functions = template.functions();
    for route in functions.values().flat_map(template_routes) {
        let (_, path) = route.split_once(' ').unwrap();
        let path = example_path(path);
        match behaviour_of(&path) {
            Some(b)
                if b["TargetOriginId"].as_str() == Some("api")
                    && reference(&b["CachePolicyId"]) == Some("ApiCachePolicy")
                    && reference(&b["OriginRequestPolicyId"]) == Some("ApiOriginRequestPolicy")
                    && b["ViewerProtocolPolicy"].as_str() == Some("https-only")
                    && items(&b["AllowedMethods"]).len() == 7 => {}
            _ => problems.push(format!(
                "`{route}` ({path}) must reach the api origin through a behaviour with ApiCachePolicy, \
                 ApiOriginRequestPolicy, https-only and every method"
            )),
        }
        if route.starts_with("ANY ") || route.starts_with("OPTIONS ") || route.ends_with(" $default") {
            problems.push(format!("`{route}` would answer for paths of the console"));
        }
    }
    if !resources["HttpApi"]["Properties"]["CorsConfiguration"].is_null() {
        problems.push("HttpApi needs no CorsConfiguration: browsers call it through their own origin".into());
    }

    let cache = &resources["ApiCachePolicy"]["Properties"]["CachePolicyConfig"];
    let ttl = |name: &str| cache[name].as_u64();
    let longest = max_age(shared::http::routes::LIVE_MAX_AGE).max(max_age(shared::http::routes::SHARED_MAX_AGE));
    if ttl("MinTTL") != Some(0) || ttl("DefaultTTL") != Some(0) || ttl("MaxTTL") != Some(longest) {
        problems.push(format!(
            "ApiCachePolicy must keep only what the API says: MinTTL 0, DefaultTTL 0, MaxTTL {longest} \
             (its longest max-age)"
        ));
    }
    let keyed = &cache["ParametersInCacheKeyAndForwardedToOrigin"];
    let names = |config: &Value| -> BTreeSet<String> {
        items(&config["Headers"])
            .into_iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect()
    };
    if names(&keyed["HeadersConfig"]) != BTreeSet::from(["authorization".to_owned()])
        || keyed["QueryStringsConfig"]["QueryStringBehavior"].as_str() != Some("all")
    {
        problems.push("ApiCachePolicy must key on the Authorization header and every query string".into());
    }
    let forwarded = &resources["ApiOriginRequestPolicy"]["Properties"]["OriginRequestPolicyConfig"];
    let read: BTreeSet<String> = [
        "content-type",
        "sale-ticket",
        "if-none-match",
        shared::http::identity::VIEWER_ADDRESS_HEADER,
    ]
    .map(str::to_owned)
    .into();
    if forwarded["HeadersConfig"]["HeaderBehavior"].as_str() != Some("whitelist")
        || names(&forwarded["HeadersConfig"]) != read
    {
        problems.push(format!(
            "ApiOriginRequestPolicy must pass on exactly the headers the API reads, {read:?} (never Host)"
        ));
    }

    let outputs = &template.0["Outputs"];
    if !sub(&outputs["ConsoleUrl"]["Value"]).is_some_and(|v| v.contains("${ConsoleDistribution.DomainName}")) {
        problems.push("Outputs must have ConsoleUrl from ConsoleDistribution.DomainName".into());
    }
    for (output, id) in [
        ("ConsoleBucketName", "ConsoleBucket"),
        ("ConsoleDistributionId", "ConsoleDistribution"),
        ("PagesBucketName", "PagesBucket"),
    ] {
        if reference(&outputs[output]["Value"]) != Some(id) {
            problems.push(format!("Outputs must have {output}: !Ref {id}"));
        }
    }
    assert_none(problems);
}

/// In the cloud the edge function renders every changed SKU's page and
/// lists every changed sale that asks tickets: the SKUs' and campaigns'
/// tables stream their keys to it, and it may read those records (a rain
/// with its totals), the
/// token secret, and write pages where the distribution serves them and the
/// ticket list the edge's Function reads, nothing else.
#[test]
fn the_edge_function_follows_both_streams_into_the_pages_and_the_ticket_list() {
    let template = Template::load();
    let resources = &template.0["Resources"];
    let mut problems = Vec::new();
    let tables = template.tables();
    let skus = tables[tables::SKUS.name].0;
    let campaigns = tables[tables::CAMPAIGNS.name].0;
    for table in [skus, campaigns] {
        if resources[table]["Properties"]["StreamSpecification"]["StreamViewType"].as_str() != Some("KEYS_ONLY") {
            problems.push(format!("{table} must stream its keys (StreamViewType: KEYS_ONLY)"));
        }
    }
    let functions = template.functions();
    let Some(edge) = functions.get("edge") else {
        panic!("no function runs the edge binary");
    };
    let fed: BTreeSet<String> = events(edge, "DynamoDB")
        .into_iter()
        .filter(|(_, event)| {
            items(&event["FunctionResponseTypes"])
                .into_iter()
                .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
        })
        .filter_map(|(_, event)| get_att(&event["Stream"]).map(str::to_owned))
        .collect();
    let streams: BTreeSet<String> = [format!("{skus}.StreamArn"), format!("{campaigns}.StreamArn")].into();
    if fed != streams || events(edge, "DynamoDB").len() != 2 {
        problems.push(format!(
            "{}: one DynamoDB event on each of {streams:?}, reporting batch item failures",
            edge.id
        ));
    }
    let env = &template.property(edge, "Environment")["Variables"];
    if reference(&env["PAGES_BUCKET"]) != Some("PagesBucket") {
        problems.push(format!("{}: PAGES_BUCKET: !Ref PagesBucket", edge.id));
    }
    if get_att(&env["TICKET_LIST"]) != Some("TicketList.Arn") {
        problems.push(format!("{}: TICKET_LIST: !GetAtt TicketList.Arn", edge.id));
    }
    if reference(&env["JWT_SECRET_ARN"]) != Some("JwtSecret") {
        problems.push(format!(
            "{}: JWT_SECRET_ARN: !Ref JwtSecret (the ticket key's)",
            edge.id
        ));
    }
    let pages_key = format!("${{PagesBucket.Arn}}/{}", shared::pages::item_key("*"));
    let pages_dir = pages_key.rsplit_once('/').map(|(dir, _)| format!("{dir}/*")).unwrap();
    let mut granted = BTreeSet::new();
    for statement in items(&edge.resource["Properties"]["Policies"])
        .iter()
        .flat_map(|p| items(&p["Statement"]))
    {
        for resource in items(&statement["Resource"]) {
            let target = sub(resource)
                .or_else(|| get_att(resource))
                .or_else(|| reference(resource))
                .unwrap_or_default();
            for action in items(&statement["Action"]).into_iter().filter_map(Value::as_str) {
                granted.insert((action.to_owned(), target.to_owned()));
            }
        }
    }
    let wanted: BTreeSet<(String, String)> = [
        ("dynamodb:GetItem", format!("{skus}.Arn")),
        ("dynamodb:GetItem", format!("{campaigns}.Arn")),
        (
            "dynamodb:Query",
            format!("{}.Arn", tables[tables::CAMPAIGN_TOTALS.name].0),
        ),
        ("s3:PutObject", pages_dir.clone()),
        ("s3:DeleteObject", pages_dir),
        ("secretsmanager:GetSecretValue", "JwtSecret".to_owned()),
        (
            "cloudfront-keyvaluestore:DescribeKeyValueStore",
            "TicketList.Arn".to_owned(),
        ),
        ("cloudfront-keyvaluestore:GetKey", "TicketList.Arn".to_owned()),
        ("cloudfront-keyvaluestore:UpdateKeys", "TicketList.Arn".to_owned()),
    ]
    .map(|(action, target)| (action.to_owned(), target))
    .into();
    if granted != wanted {
        problems.push(format!("{} may do exactly {wanted:?}, not {granted:?}", edge.id));
    }
    assert_none(problems);
}

/// The crowd functions are published to the alias the gateway invokes,
/// and only the warm-up job may ask Lambda for their instances: exactly
/// the provisioned-concurrency actions, on exactly those aliases, sized by
/// the template's parameters.
#[test]
fn the_warm_up_job_warms_exactly_the_crowd_functions_aliases() {
    let template = Template::load();
    let functions = template.functions();
    let mut problems = Vec::new();
    let mut aliases = BTreeSet::new();
    for (binary, setting) in [("grab", "GRAB_FUNCTION"), ("red-packet-claim", "CLAIM_FUNCTION")] {
        assert!(THROTTLED.contains(&binary), "{binary} is a crowd function");
        let function = &functions[binary];
        if function.resource["Properties"]["AutoPublishAlias"].as_str() != Some(shared::provisioned::ALIAS) {
            problems.push(format!(
                "{}: AutoPublishAlias: {}",
                function.id,
                shared::provisioned::ALIAS
            ));
        }
        let warm_up = &functions["warm-up"];
        if reference(&template.property(warm_up, "Environment")["Variables"][setting]) != Some(function.id) {
            problems.push(format!("{}: {setting}: !Ref {}", warm_up.id, function.id));
        }
        aliases.insert(format!("${{{}.Arn}}:{}", function.id, shared::provisioned::ALIAS));
    }
    let wanted_actions: BTreeSet<String> = [
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:PutProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig",
    ]
    .map(str::to_owned)
    .into();
    for (binary, function) in &functions {
        for statement in items(&function.resource["Properties"]["Policies"])
            .iter()
            .flat_map(|p| items(&p["Statement"]))
            .filter(|s| warms_the_crowd(s))
        {
            let actions: BTreeSet<String> = items(&statement["Action"])
                .into_iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let resources: BTreeSet<String> = items(&statement["Resource"])
                .into_iter()
                .filter_map(sub)
                .map(str::to_owned)
                .collect();
            if *binary != "warm-up" || actions != wanted_actions || resources != aliases {
                problems.push(format!(
                    "{}: only the warm-up job may do {wanted_actions:?}, on exactly {aliases:?}",
                    function.id
                ));
            }
        }
    }
    let env = &template.property(&functions["warm-up"], "Environment")["Variables"];
    for (setting, parameter) in [
        ("WARM_CROWD", "WarmCrowd"),
        ("WARM_LIMIT", "WarmLimit"),
        ("WARM_SECONDS_PER_REQUEST", "WarmSecondsPerRequest"),
    ] {
        if reference(&env[setting]) != Some(parameter) || template.0["Parameters"][parameter].is_null() {
            problems.push(format!("WarmUpFunction: {setting}: !Ref {parameter}, a parameter"));
        }
    }
    assert_none(problems);
}

/// The path every grab and claim route is asked at.
fn crowd_paths() -> Vec<String> {
    let functions = Template::load();
    let functions = functions.functions();
    THROTTLED
        .iter()
        .flat_map(|name| template_routes(&functions[name]))
        .filter(|route| route.starts_with("POST ") && (route.ends_with("/grab") || route.ends_with("/claim")))
        .map(|route| example_path(route.split_once(' ').unwrap().1))
        .collect()
}

/// Grabs and claims reach the API only through the ticket check, which
/// reads the list the edge function writes.
#[test]
fn grabs_and_claims_pass_the_ticket_check_at_the_edge() {
    let template = Template::load();
    let resources = &template.0["Resources"];
    let mut problems = Vec::new();
    let config = &resources["ConsoleDistribution"]["Properties"]["DistributionConfig"];
    let behaviours = items(&config["CacheBehaviors"]);
    let checked = |behaviour: &Value| {
        items(&behaviour["FunctionAssociations"])
            .into_iter()
            .any(|association| {
                association["EventType"].as_str() == Some("viewer-request")
                    && get_att(&association["FunctionARN"]) == Some("EdgeTicketCheck.FunctionMetadata.FunctionARN")
            })
    };
    let paths = crowd_paths();
    if paths.len() != 2 {
        problems.push(format!("expected the grab and the claim route, found {paths:?}"));
    }
    for path in &paths {
        let first = behaviours
            .iter()
            .find(|b| cloudfront_matches(b["PathPattern"].as_str().unwrap_or(""), path));
        if !first.is_some_and(|b| checked(b)) {
            problems.push(format!(
                "{path} must first match a behaviour with EdgeTicketCheck at viewer-request"
            ));
        }
    }
    for behaviour in behaviours.iter().filter(|b| checked(b)) {
        let pattern = behaviour["PathPattern"].as_str().unwrap_or("");
        if !paths.iter().any(|path| cloudfront_matches(pattern, path)) {
            problems.push(format!("{pattern} passes the ticket check but is no grab or claim"));
        }
    }
    let function = &resources["EdgeTicketCheck"]["Properties"];
    let config = &function["FunctionConfig"];
    if config["Runtime"].as_str() != Some("cloudfront-js-2.0") || function["AutoPublish"].as_bool() != Some(true) {
        problems.push("EdgeTicketCheck: Runtime cloudfront-js-2.0, AutoPublish true".into());
    }
    let stores: Vec<_> = items(&config["KeyValueStoreAssociations"])
        .into_iter()
        .filter_map(|association| get_att(&association["KeyValueStoreARN"]))
        .collect();
    if stores != ["TicketList.Arn"] {
        problems.push(format!(
            "EdgeTicketCheck must read TicketList and nothing else, not {stores:?}"
        ));
    }
    assert_none(problems);
}

/// Runs `EdgeTicketCheck`'s source, as the template deploys it, under Node:
/// the `cloudfront` module is a stand-in whose KeyValueStore holds
/// `entries` (throwing on a missing key, as CloudFront's does), and each
/// `(method, uri, ticket)` is one viewer request. Each answer is
/// `{"passed": true}` or the refusal's `status` and `body`.
fn run_edge_check(
    entries: &BTreeMap<String, String>,
    requests: &[(&str, &str, Option<&str>)],
) -> Vec<serde_json::Value> {
    let template = Template::load();
    let source = template.0["Resources"]["EdgeTicketCheck"]["Properties"]["FunctionCode"]
        .as_str()
        .expect("EdgeTicketCheck's FunctionCode is its source")
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("node_modules/cloudfront");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(
        module.join("package.json"),
        r#"{"name": "cloudfront", "type": "module", "main": "index.js"}"#,
    )
    .unwrap();
    std::fs::write(
        module.join("index.js"),
        r#"export default {
  kvs: () => ({
    exists: async (key) => Object.hasOwn(globalThis.entries, key),
    get: async (key) => {
      if (!Object.hasOwn(globalThis.entries, key)) throw new Error('Key not found');
      return globalThis.entries[key];
    },
  }),
};
"#,
    )
    .unwrap();
    // CloudFront calls `handler` itself; Node needs it exported.
    std::fs::write(
        dir.path().join("check.mjs"),
        format!("{source}\nexport {{ handler }};\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("run.mjs"),
        r#"import { readFileSync } from 'node:fs';
const { entries, requests } = JSON.parse(readFileSync(0, 'utf8'));
globalThis.entries = entries;
const { handler } = await import('./check.mjs');
const answers = [];
for (const [method, uri, ticket] of requests) {
  const headers = ticket === null ? {} : { 'sale-ticket': { value: ticket } };
  const request = { method, uri, headers, querystring: {}, cookies: {} };
  const answer = await handler({ version: '1.0', context: {}, viewer: { ip: '192.0.2.1' }, request });
  answers.push(answer === request
    ? { passed: true }
    : { passed: false, status: answer.statusCode, body: JSON.parse(answer.body.data) });
}
console.log(JSON.stringify(answers));
"#,
    )
    .unwrap();
    let mut node = std::process::Command::new("node")
        .arg("run.mjs")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node (scripts/install-deps.sh installs it)");
    let input = serde_json::json!({ "entries": entries, "requests": requests });
    std::io::Write::write_all(&mut node.stdin.take().unwrap(), input.to_string().as_bytes()).unwrap();
    let output = node.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the harness's answers")
}

/// A ticket the API would issue now (or `age` ago) for this shopper and
/// sale, signed with `secret`'s ticket key.
fn api_ticket(secret: &str, shopper: &str, sale: &str, age: chrono::Duration) -> String {
    use shared::domain::tickets::{Solution, Tickets, solve};
    let tickets = Tickets::new(secret.as_bytes());
    let now = chrono::Utc::now() - age;
    let challenge = tickets.challenge(shopper, sale, 0, now);
    let solution = Solution {
        nonce: solve(&challenge.challenge, 0),
        challenge: challenge.challenge,
    };
    tickets.ticket(shopper, sale, 0, &solution, now).unwrap().ticket
}

/// The Function refuses exactly the taps the API would refuse for want of
/// a ticket, in the API's own words, and lets everything else through:
/// tickets are the API's own, signed in Rust and checked in JavaScript.
#[test]
fn the_ticket_check_refuses_at_the_edge_what_the_api_would() {
    use shared::domain::{
        admission::{
            Sale,
            edge::{ASKS_TICKET, TICKET_KEY},
        },
        tickets::ticket_key,
    };
    const SECRET: &str = "the-edge-test-secret-of-at-least-32-bytes";
    let listed = |sales: &[&str], key: Option<&str>| -> BTreeMap<String, String> {
        let mut entries: BTreeMap<String, String> = sales
            .iter()
            .map(|sale| ((*sale).to_owned(), ASKS_TICKET.to_owned()))
            .collect();
        if let Some(key) = key {
            entries.insert(TICKET_KEY.to_owned(), key.to_owned());
        }
        entries
    };
    let sku = Sale::Sku("s1").key();
    let rain = Sale::Campaign("r1").key();
    let key = ticket_key(SECRET.as_bytes());
    let fresh = |sale: &str| api_ticket(SECRET, "alice", sale, chrono::Duration::zero());
    let expired = api_ticket(SECRET, "alice", &sku, chrono::Duration::minutes(5));
    let forged = api_ticket(
        "another-secret-of-at-least-32-bytes-long",
        "alice",
        &sku,
        chrono::Duration::zero(),
    );
    let for_s1 = fresh(&sku);
    let for_s2 = fresh(&Sale::Sku("s2").key());
    let for_rain = fresh(&rain);
    // The payload of a ticket for s2 under the signature of one for s1.
    let spliced = {
        let theirs: Vec<&str> = for_s1.split('.').collect();
        let mine: Vec<&str> = for_s2.split('.').collect();
        format!("{}.{}.{}", theirs[0], mine[1], theirs[2])
    };
    let grab = "/seckill/items/s1/grab";
    let claim = "/red-packets/r1/claim";
    let requests: Vec<(&str, &str, Option<&str>, bool)> = vec![
        ("POST", grab, None, false),
        ("POST", grab, Some(&for_s1), true),
        ("POST", grab, Some(&for_s2), false),
        ("POST", grab, Some(&expired), false),
        ("POST", grab, Some(&forged), false),
        ("POST", grab, Some(&spliced), false),
        ("POST", grab, Some("not a ticket"), false),
        ("POST", grab, Some("a.b.c"), false),
        ("POST", claim, None, false),
        ("POST", claim, Some(&for_rain), true),
        ("POST", claim, Some(&for_s1), false),
        // Not a grab or claim, or a sale not listed: not the edge's to judge.
        ("GET", grab, None, true),
        ("POST", "/seckill/items/s1/ticket", None, true),
        ("POST", "/seckill/items/unlisted/grab", None, true),
        ("POST", "/red-packets/unlisted/claim", None, true),
    ];
    let entries = listed(&[&sku, &rain], Some(&key));
    let answers = run_edge_check(
        &entries,
        &requests.iter().map(|(m, u, t, _)| (*m, *u, *t)).collect::<Vec<_>>(),
    );
    let refusal = shared::http::problem::TICKET_REQUIRED;
    let mut problems = Vec::new();
    for ((method, uri, ticket, passes), answer) in requests.iter().zip(&answers) {
        let case = format!("{method} {uri} with {:?}", ticket.map(|t| &t[..t.len().min(24)]));
        let passed = answer["passed"].as_bool() == Some(true);
        if passed != *passes {
            problems.push(format!("{case}: passed {passed} (expected {passes})"));
        }
        if !passed {
            let body = &answer["body"];
            let row = (
                answer["status"].as_u64(),
                body["code"].as_str(),
                body["title"].as_str(),
                body["type"].as_str(),
                body["status"].as_u64(),
            );
            let expected = (
                Some(u64::from(refusal.status.as_u16())),
                Some(refusal.code),
                Some(refusal.title),
                Some(refusal.type_uri),
                Some(u64::from(refusal.status.as_u16())),
            );
            if row != expected {
                problems.push(format!("{case}: answered {row:?}, not the API's {expected:?}"));
            }
        }
    }
    // A list without its key (or none at all) lets everything through: the
    // API still checks.
    for entries in [listed(&[&sku], None), BTreeMap::new()] {
        let answers = run_edge_check(&entries, &[("POST", grab, None)]);
        if answers[0]["passed"].as_bool() != Some(true) {
            problems.push(format!(
                "with the list {entries:?} a ticketless grab must pass to the API"
            ));
        }
    }
    assert_none(problems);
}

#[test]
fn the_files_the_console_deploy_uploads_exist() {
    let missing: Vec<&str> = CONSOLE_FILES
        .iter()
        .copied()
        .filter(|file| !Path::new(WORKSPACE).join(file).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "scripts/deploy-console.sh uploads the console, but {missing:?} are missing"
    );
}
