//! Per-client limits on real Redis (one node, or a cluster with
//! `REDIS_CLUSTER=true`): a shopper hammering a route gets its burst and
//! then `429 RATE_LIMITED` with `Retry-After`, however many of its taps
//! arrive at once; registrations are counted per address (behind the
//! edge, per viewer address it vouches for); failed logins
//! slow the address guessing at an account, and an account that does not
//! exist alike, while guesses from many addresses make the account's
//! sign-ins ask for a proof of work, never lock its owner out. And a
//! guarded sale: accounts too young and taps without a ticket (or with
//! another's) are refused; a solved challenge buys one; a waiting room
//! calls its line at its rate, however many ask at once.
//!
//! Cluster pass: `scripts/test.sh` runs this suite again on a three-master
//! Redis Cluster (`REDIS_CLUSTER=true`), as deployed.

use std::{collections::HashSet, time::Duration};

use axum::{
    body::Body,
    http::{Request, header},
};
use chrono::Utc;
use futures::future::join_all;
use integration_tests::{Reply, TestApp};
use serde_json::json;
use shared::{
    Error,
    domain::{
        accounts,
        admission::{Action, Limits, Sale, challenge, room},
        tickets,
    },
    ports::{Place, Rate},
    ts,
};

fn per_minute(action: Action, count: u32) -> Limits {
    let rate = Rate {
        count,
        period: Duration::from_secs(60),
    };
    Limits::none().with(action, Some(rate))
}

fn assert_limited(reply: &Reply) {
    reply.assert_problem(429, "RATE_LIMITED");
    let wait: u64 = reply.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
}

fn count(replies: &[Reply], status: u16, code: &str) -> usize {
    replies
        .iter()
        .filter(|reply| reply.status.as_u16() == status && reply.code() == code)
        .count()
}

#[tokio::test]
async fn one_shopper_hammering_grab_gets_its_burst_then_waits() {
    let t = TestApp::start_limited(per_minute(Action::Grab, 5)).await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 100, 900).await;
    let alice = t.user_token("alice");
    let path = format!("/seckill/items/{sku}/grab");
    let replies = join_all((0..40).map(|_| t.post(&path, Some(&alice), None))).await;

    assert_eq!(count(&replies, 201, ""), 1, "one unit for alice");
    assert_eq!(count(&replies, 409, "ALREADY_PURCHASED"), 4, "the rest of her burst");
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status.as_u16() == 429).collect();
    assert_eq!(limited.len(), 35);
    limited.into_iter().for_each(assert_limited);
    assert_eq!(t.remaining(&sku).await, 99);
    assert_eq!(t.live_orders(&sku).await.len(), 1);
}

#[tokio::test]
async fn each_shopper_of_a_crowd_is_counted_on_their_own() {
    let t = TestApp::start_limited(per_minute(Action::Grab, 2)).await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 100, 900).await;
    let path = format!("/seckill/items/{sku}/grab");
    let tokens: Vec<String> = (0..60).map(|i| t.user_token(&format!("shopper{i}"))).collect();
    let taps = tokens.iter().flat_map(|token| [token, token, token]);
    let replies = join_all(taps.map(|token| t.post(&path, Some(token), None))).await;

    assert_eq!(count(&replies, 201, ""), 60, "each shopper's one unit");
    assert_eq!(count(&replies, 409, "ALREADY_PURCHASED"), 60);
    assert_eq!(count(&replies, 429, "RATE_LIMITED"), 60, "each shopper's third tap");
    assert_eq!(t.remaining(&sku).await, 40);
    assert_eq!(t.live_orders(&sku).await.len(), 60);
}

#[tokio::test]
async fn registrations_are_counted_per_address() {
    let t = TestApp::start_limited(per_minute(Action::Register, 3)).await;
    let forms = (0..5).map(|i| json!({"username": format!("newcomer{i}"), "password": "correct horse"}));
    let replies = join_all(forms.map(|form| t.post("/auth/register", None, Some(form)))).await;
    assert_eq!(count(&replies, 201, ""), 3);
    replies
        .iter()
        .filter(|r| r.status.as_u16() == 429)
        .for_each(assert_limited);
}

/// A registration sent from `source` (a loopback address of its own) to
/// `base`, with these extra headers; its status.
async fn register_from(source: [u8; 4], base: &str, username: &str, headers: &[(&str, &str)]) -> u16 {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(source))
        .build()
        .unwrap();
    let mut request = client
        .post(format!("{base}/auth/register"))
        .json(&json!({"username": username, "password": "correct horse"}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

/// Behind the edge (nginx here, CloudFront in the cloud) every request's
/// peer is the edge, which passes on each viewer's address with its key:
/// registrations are counted per viewer. A viewer address a client writes
/// itself, straight to the API, is not believed.
#[tokio::test]
async fn behind_the_edge_registrations_are_counted_per_viewer() {
    let key = "the local edge's key, thirty-two bytes or more";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let t = TestApp::start_tuned(&integration_tests::services().redis, |config| {
        config.limits = per_minute(Action::Register, 2);
        config.edge_key = Some(shared::config::Secret(key.into()));
    })
    .await;
    let served = t
        .router
        .clone()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, served).await });
    let pages = tempfile::tempdir().unwrap();
    let edge = local_server::edge::Edge::start(api, pages.path(), key).unwrap();
    let (edge, api) = (format!("http://{}", edge.address), format!("http://{api}"));

    let mut first = Vec::new();
    for i in 0..3 {
        first.push(register_from([127, 0, 0, 2], &edge, &format!("first{i}"), &[]).await);
    }
    assert_eq!(first, [201, 201, 429], "one viewer's two, then refused");
    assert_eq!(
        register_from([127, 0, 0, 3], &edge, "second", &[]).await,
        201,
        "another viewer behind the same edge"
    );

    let mut forged = Vec::new();
    for i in 0..3 {
        let viewer = format!("198.51.100.{i}:443");
        let headers = [(shared::http::identity::VIEWER_ADDRESS_HEADER, viewer.as_str())];
        forged.push(register_from([127, 0, 0, 4], &api, &format!("forger{i}"), &headers).await);
    }
    assert_eq!(
        forged,
        [201, 201, 429],
        "counted as its own address, whatever it claims"
    );
}

#[tokio::test]
async fn failed_logins_slow_an_account_whether_or_not_it_exists() {
    let t = TestApp::start_limited(per_minute(Action::FailedLogin, 3)).await;
    let form = json!({"username": "alice", "password": "correct horse"});
    assert_eq!(t.post("/auth/register", None, Some(form.clone())).await.status, 201);

    let mut refusals = Vec::new();
    for username in ["alice", "mallory"] {
        let guess = json!({"username": username, "password": "a guess"});
        let wrong = join_all((0..3).map(|_| t.post("/auth/login", None, Some(guess.clone())))).await;
        wrong.iter().for_each(|reply| reply.assert_problem(401, "UNAUTHORIZED"));
        let right = json!({"username": username, "password": "correct horse"});
        let refused = t.post("/auth/login", None, Some(right)).await;
        assert_limited(&refused);
        refusals.push(refused.body);
    }
    assert_eq!(
        refusals[0], refusals[1],
        "the refusal does not tell which account exists"
    );

    let admin = json!({"login_name": "admin", "password": "a guess"});
    let guesses = join_all((0..20).map(|_| t.post("/admin/login", None, Some(admin.clone())))).await;
    assert_eq!(
        count(&guesses, 401, "UNAUTHORIZED"),
        3,
        "guesses sent at once are counted alike"
    );
    assert_eq!(count(&guesses, 429, "RATE_LIMITED"), 17);
}

/// A sign-in sent from `address`, as the local server sees its peer.
async fn sign_in_from(t: &TestApp, address: &str, form: &serde_json::Value) -> Reply {
    let peer: std::net::SocketAddr = format!("{address}:40000").parse().unwrap();
    let mut request = Request::post("/admin/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(form.to_string()))
        .unwrap();
    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    t.send(request).await
}

#[tokio::test]
async fn thirty_guesses_from_one_address_do_not_lock_the_operator_out_elsewhere() {
    let t = TestApp::start_limited(Limits::defaults()).await;
    t.admin_token().await;
    let guess = json!({"login_name": "admin", "password": "a guess"});
    let mut guesses = Vec::new();
    for _ in 0..30 {
        guesses.push(sign_in_from(&t, "203.0.113.66", &guess).await);
    }
    assert_eq!(count(&guesses, 401, "UNAUTHORIZED"), 5);
    assert_eq!(count(&guesses, 429, "RATE_LIMITED"), 25);
    let owner = json!({"login_name": "admin", "password": integration_tests::ADMIN_PASSWORD});
    let signed_in = sign_in_from(&t, "198.51.100.7", &owner).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
}

#[tokio::test]
async fn a_crowd_of_guessers_makes_sign_ins_ask_for_work_that_the_owner_pays() {
    let t = TestApp::start_limited(Limits::defaults()).await;
    t.admin_token().await;
    let guess = json!({"login_name": "admin", "password": "a guess"});
    let guesses = join_all((0..40).map(|bot| {
        let guess = guess.clone();
        let t = &t;
        async move { sign_in_from(t, &format!("203.0.113.{bot}"), &guess).await }
    }))
    .await;
    assert_eq!(count(&guesses, 401, "UNAUTHORIZED"), 20, "the account's ceiling");
    assert_eq!(count(&guesses, 403, "CHALLENGE_REQUIRED"), 20);

    let owner = json!({"login_name": "admin", "password": integration_tests::ADMIN_PASSWORD});
    let asked = sign_in_from(&t, "198.51.100.7", &owner).await;
    asked.assert_problem(403, "CHALLENGE_REQUIRED");
    let challenge = asked.str("challenge");
    let difficulty = asked.body["difficulty"].as_u64().unwrap() as u8;
    assert!(ts::parse(&asked.str("expires_at")).is_ok());
    let nonce = tickets::solve(&challenge, difficulty);
    let mut solved = owner.clone();
    solved["solution"] = json!({"challenge": challenge, "nonce": nonce});
    let signed_in = sign_in_from(&t, "198.51.100.7", &solved).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    sign_in_from(&t, "198.51.100.7", &solved)
        .await
        .assert_problem(403, "CHALLENGE_FAILED");
}

#[tokio::test]
async fn a_successful_login_clears_the_failures() {
    let t = TestApp::start_limited(per_minute(Action::FailedLogin, 2)).await;
    let form = json!({"username": "bob", "password": "correct horse"});
    assert_eq!(t.post("/auth/register", None, Some(form.clone())).await.status, 201);
    let guess = json!({"username": "bob", "password": "a guess"});
    for _ in 0..3 {
        t.post("/auth/login", None, Some(guess.clone()))
            .await
            .assert_problem(401, "UNAUTHORIZED");
        assert_eq!(t.post("/auth/login", None, Some(form.clone())).await.status, 200);
    }
}

/// A grab (or claim) with `Sale-Ticket`.
async fn tap(t: &TestApp, path: &str, token: &str, ticket: Option<&str>) -> Reply {
    let mut request = Request::post(path).header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(ticket) = ticket {
        request = request.header("Sale-Ticket", ticket);
    }
    t.send(request.body(Body::empty()).unwrap()).await
}

/// Signs in `username`, registered `age` ago.
async fn shopper_aged(t: &TestApp, username: &str, age: chrono::Duration) -> String {
    let form = json!({"username": username, "password": "correct horse"});
    let registration = serde_json::from_value(form.clone()).unwrap();
    accounts::register(&t.app.ledger, registration, Utc::now() - age)
        .await
        .unwrap();
    t.post("/auth/login", None, Some(form)).await.str("token")
}

/// Fetches a challenge of `sale` (`/seckill/items/{id}` or
/// `/red-packets/{id}`), solves it as a client would, and buys a ticket.
async fn ticket_to(t: &TestApp, sale: &str, token: &str) -> String {
    let challenge = t.get(&format!("{sale}/challenge"), Some(token)).await;
    assert_eq!(challenge.status, 200, "{}", challenge.body);
    let (text, difficulty) = (
        challenge.str("challenge"),
        challenge.body["difficulty"].as_u64().unwrap(),
    );
    let nonce = tickets::solve(&text, u8::try_from(difficulty).unwrap());
    let bought = t
        .post(
            &format!("{sale}/ticket"),
            Some(token),
            Some(json!({"challenge": text, "nonce": nonce})),
        )
        .await;
    assert_eq!(bought.status, 201, "{}", bought.body);
    bought.str("ticket")
}

#[tokio::test]
async fn a_guarded_sale_admits_only_old_enough_ticket_holders() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let now = Utc::now();
    let sku = t
        .post(
            "/admin/skus",
            Some(&admin),
            Some(json!({
                "name": "Guarded phone", "price": 10000, "seckill_price": 990, "seckill_num": 10,
                "seckill_begin": ts::format(&(now - chrono::Duration::minutes(1))),
                "seckill_end": ts::format(&(now + chrono::Duration::hours(1))),
                "guard": {"challenge_difficulty": 8, "min_account_age_hours": 24},
            })),
        )
        .await
        .str("id");
    let published = t.post(&format!("/admin/skus/{sku}/publish"), Some(&admin), None).await;
    assert_eq!(published.status, 200, "{}", published.body);
    let (item, grab) = (format!("/seckill/items/{sku}"), format!("/seckill/items/{sku}/grab"));

    let newcomer = shopper_aged(&t, "newcomer", chrono::Duration::hours(1)).await;
    tap(&t, &grab, &newcomer, None)
        .await
        .assert_problem(403, "ACCOUNT_TOO_NEW");
    t.get(&format!("{item}/challenge"), Some(&newcomer))
        .await
        .assert_problem(403, "ACCOUNT_TOO_NEW");

    let regular = shopper_aged(&t, "regular", chrono::Duration::days(2)).await;
    tap(&t, &grab, &regular, None)
        .await
        .assert_problem(403, "TICKET_REQUIRED");
    let challenge = t.get(&format!("{item}/challenge"), Some(&regular)).await;
    let unsolved = json!({"challenge": challenge.str("challenge"), "nonce": "surely-not"});
    t.post(&format!("{item}/ticket"), Some(&regular), Some(unsolved))
        .await
        .assert_problem(403, "CHALLENGE_FAILED");
    let ticket = ticket_to(&t, &item, &regular).await;
    let other = shopper_aged(&t, "other", chrono::Duration::days(2)).await;
    tap(&t, &grab, &other, Some(&ticket))
        .await
        .assert_problem(403, "TICKET_REQUIRED");
    let won = tap(&t, &grab, &regular, Some(&ticket)).await;
    assert_eq!(won.status, 201, "{}", won.body);
    assert_eq!(t.remaining(&sku).await, 9);

    let campaign = t
        .post(
            "/admin/red-packets",
            Some(&admin),
            Some(json!({"name": "Guarded rain", "total_amount": 1000, "count": 10,
                        "begin": ts::format(&(now - chrono::Duration::minutes(1))),
                        "end": ts::format(&(now + chrono::Duration::hours(1))),
                        "guard": {"ticket_required": true}})),
        )
        .await
        .str("id");
    let claim = format!("/red-packets/{campaign}/claim");
    tap(&t, &claim, &other, None)
        .await
        .assert_problem(403, "TICKET_REQUIRED");
    let ticket = ticket_to(&t, &format!("/red-packets/{campaign}"), &other).await;
    let claimed = tap(&t, &claim, &other, Some(&ticket)).await;
    assert_eq!(claimed.status, 200, "{}", claimed.body);
}

/// A SKU with a waiting room calling `rate` places a second, opening at
/// `opening`, published.
async fn roomed_sale(t: &TestApp, admin: &str, rate: u32, opening: chrono::DateTime<Utc>) -> String {
    let sku = t
        .post(
            "/admin/skus",
            Some(admin),
            Some(json!({
                "name": "Queued phone", "price": 10000, "seckill_price": 990, "seckill_num": 100,
                "seckill_begin": ts::format(&opening),
                "seckill_end": ts::format(&(opening + chrono::Duration::hours(1))),
                "guard": {"waiting_room_rate": rate},
            })),
        )
        .await
        .str("id");
    let published = t.post(&format!("/admin/skus/{sku}/publish"), Some(admin), None).await;
    assert_eq!(published.status, 200, "{}", published.body);
    sku
}

/// On real Redis, with the crowd arriving at once: every early place is a
/// distinct draw and later ones are numbered in turn; at the opening the
/// line is called at the room's rate, exactly, however many ask at once;
/// the room's document and the admissions agree.
#[tokio::test]
async fn a_waiting_room_calls_exactly_its_rate_however_many_ask_at_once() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let opening = Utc::now() + chrono::Duration::hours(1);
    let sku = roomed_sale(&t, &admin, 5, opening).await;
    let sale = Sale::Sku(&sku);
    let at = |millis: i64| opening + chrono::Duration::milliseconds(millis);
    let ports = t.app.ports();
    let control = &t.app.admission;
    // Shoppers as their verified tokens name them.
    let crowd: Vec<_> = (0..210)
        .map(|i| t.app.tokens.verify(&t.user_token(&format!("shopper{i:03}"))).unwrap())
        .collect();
    let claims = |i: usize| &crowd[i];

    let early = join_all(
        (0..200).map(|i| async move { room::join(ports, control, claims(i), sale, at(-5_000)).await.unwrap() }),
    )
    .await;
    let draws: HashSet<u64> = early
        .iter()
        .map(|joined| match joined.place {
            Place::Drawn { draw } => draw,
            other => panic!("before the opening a place is drawn: {other:?}"),
        })
        .collect();
    assert_eq!(draws.len(), 200, "every early place its own draw");
    let late =
        join_all((200..210).map(|i| async move { room::join(ports, control, claims(i), sale, at(1)).await.unwrap() }))
            .await;
    let mut numbers: Vec<u64> = late
        .iter()
        .map(|joined| match joined.place {
            Place::Arrived { number } => number,
            other => panic!("after the opening a place is numbered: {other:?}"),
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=10).collect::<Vec<u64>>());

    let ten_seconds_in = at(10_000);
    let asked =
        join_all((0..210).map(|i| async move { challenge(ports, control, claims(i), sale, ten_seconds_in).await }))
            .await;
    let admitted = asked.iter().filter(|answer| answer.is_ok()).count();
    assert_eq!(admitted, 50, "ten seconds of five a second");
    assert!(
        asked
            .iter()
            .all(|answer| matches!(answer, Ok(_) | Err(Error::InLine { .. }))),
        "the rest wait in line"
    );
    let room = room::line(ports, control, sale, ten_seconds_in).await.unwrap();
    assert_eq!(
        (
            room.level.admitted,
            room.level.waiting,
            room.level.called,
            room.level.arrivals_called
        ),
        (50, 160, 50, 0)
    );
    let last = room.level.last_called_draw.unwrap();
    let called_by_draw = early
        .iter()
        .zip(&asked)
        .all(|(joined, answer)| matches!(joined.place, Place::Drawn { draw } if (draw <= last) == answer.is_ok()));
    assert!(
        called_by_draw,
        "the document tells each page whether its draw was called"
    );
}

/// Through the API: a place, the room's document for an edge to keep, and
/// the refusals of one who took no place or of a sale with no room.
#[tokio::test]
async fn the_waiting_room_over_http() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let opening = Utc::now() + chrono::Duration::minutes(10);
    let sku = roomed_sale(&t, &admin, 100, opening).await;
    let token = t.user_token("alice");
    let queue = format!("/seckill/items/{sku}/queue");

    let joined = t.post(&queue, Some(&token), None).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    assert_eq!(
        (joined.str("place"), joined.body["rate"].as_u64()),
        ("drawn".into(), Some(100))
    );
    let again = t.post(&queue, Some(&token), None).await;
    assert_eq!(again.body["draw"], joined.body["draw"], "the same place");
    let room = t.get(&queue, None).await;
    assert_eq!(room.status, 200, "{}", room.body);
    assert_eq!(
        (room.body["draws"].as_u64(), room.body["called"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        room.headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("public, max-age=1, stale-while-revalidate=2")
    );

    let open = roomed_sale(&t, &admin, 100, Utc::now() - chrono::Duration::minutes(1)).await;
    t.get(&format!("/seckill/items/{open}/challenge"), Some(&t.user_token("bob")))
        .await
        .assert_problem(409, "NO_PLACE");
    let plain = t.open_sale(&admin, 5, 900).await;
    t.post(&format!("/seckill/items/{plain}/queue"), Some(&token), None)
        .await
        .assert_problem(409, "NO_WAITING_ROOM");
}
