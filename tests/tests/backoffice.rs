//! The back office and the storefront: every catalog record through its
//! life cycle, search, addresses, fulfilment, operators, paging.

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use chrono::{Duration, FixedOffset, Timelike, Utc};
use integration_tests::{Reply, TestApp, services};
use local_server::services::Served;
use serde_json::{Value, json};
use shared::{
    domain::{accounts, storefront},
    ports::{PortError, SkuStore},
    ts,
};

async fn put(t: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    t.call(Method::PUT, path, Some(token), Some(body)).await
}

async fn delete(t: &TestApp, path: &str, token: &str) -> Reply {
    t.call(Method::DELETE, path, Some(token), None).await
}

fn created(reply: Reply) -> String {
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.str("id")
}

/// A SKU body on sale from a minute ago for an hour.
fn sku_body(name: &str, extra: Value) -> Value {
    let now = Utc::now();
    let mut body = json!({
        "name": name, "price": 5000, "seckill_price": 100, "seckill_num": 10,
        "seckill_begin": ts::format(&(now - Duration::minutes(1))),
        "seckill_end": ts::format(&(now + Duration::hours(1))),
    });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

#[tokio::test]
async fn operator_sets_up_a_sale_and_a_shopper_finds_buys_and_receives_it() {
    // The sale's time zone is one whose clock reads 12:30 now, so the
    // slot around now (12:00–12:59:59) holds the whole test whatever the
    // hour it runs: run at 05:59:59 UTC with a slot of that hour, it once
    // saw its slot end halfway.
    let half_past_noon = 12 * 3600 + 30 * 60;
    let offset = half_past_noon - Utc::now().num_seconds_from_midnight() as i32;
    let t = TestApp::start_tuned(&services().redis, |config| {
        config.slot_utc_offset = FixedOffset::east_opt(offset).unwrap()
    })
    .await;
    let admin = t.admin_token().await;

    // A slot around now (in the sale's time zone), a brand, a category tree.
    let local_now = Utc::now().with_timezone(&t.app.slot_offset);
    let slot = created(
        t.post(
            "/admin/slots",
            Some(&admin),
            Some(json!({"name": "Now", "starttime": "12:00:00", "endtime": "12:59:59", "sort": 1})),
        )
        .await,
    );
    let brand = created(
        t.post(
            "/admin/brands",
            Some(&admin),
            Some(json!({"name": "Acme", "letter": "A"})),
        )
        .await,
    );
    let phones = created(
        t.post("/admin/categories", Some(&admin), Some(json!({"name": "Phones"})))
            .await,
    );
    let smart = created(
        t.post(
            "/admin/categories",
            Some(&admin),
            Some(json!({"name": "Smart", "parent_id": phones, "is_menu": "1"})),
        )
        .await,
    );
    let activity = created(
        t.post(
            "/admin/activities",
            Some(&admin),
            Some(json!({"name": "Double 11", "startdate": "2026-11-11"})),
        )
        .await,
    );
    let sku = created(
        t.post(
            "/admin/skus",
            Some(&admin),
            Some(sku_body(
                "Acme Phone 5",
                json!({"brand_id": brand, "brand_name": "Acme", "category1_id": phones, "category2_id": smart,
                       "images": ["a.jpg", "b.jpg"], "seckill_begin": ts::format(&local_now.with_minute(0).unwrap().with_second(1).unwrap().to_utc())}),
            )),
        )
        .await,
    );
    // Started in the slot before, still on sale.
    let earlier = local_now.with_minute(0).unwrap().with_second(0).unwrap().to_utc() - Duration::minutes(30);
    let other = created(
        t.post(
            "/admin/skus",
            Some(&admin),
            Some(sku_body("Other thing", json!({"seckill_begin": ts::format(&earlier)}))),
        )
        .await,
    );
    let linked = put(
        &t,
        &format!("/admin/activities/{activity}/skus/{sku}"),
        &admin,
        json!(null),
    )
    .await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.body);
    for id in [&sku, &other] {
        assert_eq!(
            t.post(&format!("/admin/skus/{id}/publish"), Some(&admin), None)
                .await
                .status,
            StatusCode::OK
        );
    }
    let links = t.get(&format!("/admin/activities/{activity}/skus"), Some(&admin)).await;
    assert_eq!(links.body["items"][0]["sku_id"], sku.as_str());

    // The storefront finds it by slot, category (any level), brand and name.
    let slots = t.get("/seckill/slots", None).await;
    assert_eq!(slots.status, StatusCode::OK, "{}", slots.body);
    let today = slots.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == slot.as_str())
        .unwrap()
        .clone();
    assert_eq!(today["state"], "active");
    let find = |query: String| {
        let t = &t;
        async move {
            let reply = t.get(&format!("/seckill/items?{query}"), None).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(find(format!("slot={slot}")).await, vec![sku.clone()]);
    assert_eq!(find(format!("category={smart}")).await, vec![sku.clone()]);
    assert_eq!(
        find(format!("category={phones}&brand={brand}")).await,
        vec![sku.clone()]
    );
    assert_eq!(find("q=Phone".into()).await, vec![sku.clone()]);
    assert_eq!(find("".into()).await.len(), 2);
    let listed = t.get("/seckill/items?q=Phone", None).await;
    assert_eq!(
        (
            listed.body["items"][0]["remaining"].as_i64(),
            listed.body["items"][0]["state"].as_str()
        ),
        (Some(10), Some("active"))
    );

    // The shopper registers, keeps an address, buys and pays with it.
    t.post(
        "/auth/register",
        None,
        Some(json!({"username": "mia", "password": "mia-password"})),
    )
    .await;
    let mia = t
        .post(
            "/auth/login",
            None,
            Some(json!({"username": "mia", "password": "mia-password"})),
        )
        .await
        .str("token");
    let me = put(&t, "/me", &mia, json!({"nick_name": "Mia", "phone": "13800000000"})).await;
    assert_eq!((me.str("nick_name"), me.str("username")), ("Mia".into(), "mia".into()));
    assert_eq!(t.get("/me", Some(&mia)).await.str("phone"), "13800000000");
    let home = created(
        t.post(
            "/me/addresses",
            Some(&mia),
            Some(json!({"contact": "Mia", "phone": "13800000000", "address": "1 Road", "provinceid": "GD", "cityid": "SZ"})),
        )
        .await,
    );
    let office = created(
        t.post(
            "/me/addresses",
            Some(&mia),
            Some(json!({"contact": "Mia W", "phone": "13900000000", "address": "9 Tower", "alias": "office"})),
        )
        .await,
    );
    let order = t
        .post(&format!("/seckill/items/{sku}/grab"), Some(&mia), None)
        .await
        .str("order_id");
    let paid = t
        .post(
            &format!("/orders/{order}/pay"),
            Some(&mia),
            Some(json!({"address_id": office})),
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    assert_eq!(
        (paid.str("receiver_contact"), paid.str("receiver_address")),
        ("Mia W".into(), "9 Tower".into())
    );

    // A second order ships to the default address when none is named.
    let order2 = t
        .post(&format!("/seckill/items/{other}/grab"), Some(&mia), None)
        .await
        .str("order_id");
    let paid2 = t.post(&format!("/orders/{order2}/pay"), Some(&mia), None).await;
    assert_eq!(
        (paid2.str("receiver_mobile"), paid2.str("receiver_address")),
        ("13800000000".into(), "GD SZ 1 Road".into())
    );
    assert!(!home.is_empty());

    // The operator finds the paid orders and ships; the shopper receives.
    let paid_list = t.get("/admin/orders?status=PAID", Some(&admin)).await;
    let ids: Vec<&str> = paid_list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![order2.as_str(), order.as_str()], "newest first");
    assert_eq!(
        t.post(&format!("/admin/orders/{order}/ship"), Some(&admin), None)
            .await
            .str("status"),
        "SHIPPED"
    );
    t.post(&format!("/admin/orders/{order}/ship"), Some(&admin), None).await;
    assert_eq!(
        t.post(&format!("/orders/{order}/receive"), Some(&mia), None)
            .await
            .str("status"),
        "COMPLETED"
    );
    t.post(&format!("/admin/orders/{order}/ship"), Some(&admin), None)
        .await
        .assert_problem(409, "INVALID_STATE");
    assert_eq!(
        t.get("/admin/orders?status=COMPLETED", Some(&admin)).await.body["items"][0]["id"],
        order.as_str()
    );
}

#[tokio::test]
async fn records_in_use_by_a_live_sale_cannot_be_deleted() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let brand = created(
        t.post("/admin/brands", Some(&admin), Some(json!({"name": "Busy"})))
            .await,
    );
    let top = created(
        t.post("/admin/categories", Some(&admin), Some(json!({"name": "Top"})))
            .await,
    );
    let mid = created(
        t.post(
            "/admin/categories",
            Some(&admin),
            Some(json!({"name": "Mid", "parent_id": top})),
        )
        .await,
    );
    let leaf = created(
        t.post(
            "/admin/categories",
            Some(&admin),
            Some(json!({"name": "Leaf", "parent_id": mid})),
        )
        .await,
    );
    t.post(
        "/admin/categories",
        Some(&admin),
        Some(json!({"name": "Too deep", "parent_id": leaf})),
    )
    .await
    .assert_problem(400, "VALIDATION");
    t.post(
        "/admin/categories",
        Some(&admin),
        Some(json!({"name": "Orphan", "parent_id": "01NOPARENT"})),
    )
    .await
    .assert_problem(400, "VALIDATION");
    let activity = created(
        t.post("/admin/activities", Some(&admin), Some(json!({"name": "Sale"})))
            .await,
    );
    let sku = created(
        t.post(
            "/admin/skus",
            Some(&admin),
            Some(sku_body("Busy SKU", json!({"brand_id": brand, "category3_id": leaf}))),
        )
        .await,
    );
    put(
        &t,
        &format!("/admin/activities/{activity}/skus/{sku}"),
        &admin,
        json!(null),
    )
    .await;

    // Not on sale yet: nothing refers to them from a live sale.
    t.post(&format!("/admin/skus/{sku}/publish"), Some(&admin), None).await;
    delete(&t, &format!("/admin/brands/{brand}"), &admin)
        .await
        .assert_problem(409, "CONFLICT");
    delete(&t, &format!("/admin/categories/{leaf}"), &admin)
        .await
        .assert_problem(409, "CONFLICT");
    delete(&t, &format!("/admin/categories/{mid}"), &admin)
        .await
        .assert_problem(409, "CONFLICT");
    delete(&t, &format!("/admin/activities/{activity}"), &admin)
        .await
        .assert_problem(409, "CONFLICT");
    delete(&t, &format!("/admin/skus/{sku}"), &admin)
        .await
        .assert_problem(409, "CONFLICT");

    // Unlinked, the activity may go (softly: it disappears from reads).
    assert_eq!(
        delete(&t, &format!("/admin/activities/{activity}/skus/{sku}"), &admin)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&t, &format!("/admin/activities/{activity}"), &admin)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    t.get(&format!("/admin/activities/{activity}"), Some(&admin))
        .await
        .assert_problem(404, "NOT_FOUND");

    // A brand nobody sells may go; so may a slot.
    let idle = created(
        t.post("/admin/brands", Some(&admin), Some(json!({"name": "Idle"})))
            .await,
    );
    assert_eq!(
        delete(&t, &format!("/admin/brands/{idle}"), &admin).await.status,
        StatusCode::NO_CONTENT
    );
    t.get(&format!("/admin/brands/{idle}"), Some(&admin))
        .await
        .assert_problem(404, "NOT_FOUND");
    let slot = created(
        t.post(
            "/admin/slots",
            Some(&admin),
            Some(json!({"name": "Noon", "starttime": "12:00:00", "endtime": "14:00:00"})),
        )
        .await,
    );
    let shown = t.get(&format!("/admin/slots/{slot}"), Some(&admin)).await;
    assert_eq!(shown.body["total_time"].as_f64(), Some(2.0));
    assert_eq!(
        delete(&t, &format!("/admin/slots/{slot}"), &admin).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn published_terms_change_only_in_step_with_redis() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 5, 900).await;
    for user in ["p1", "p2", "p3"] {
        t.post(&format!("/seckill/items/{sku}/grab"), Some(&t.user_token(user)), None)
            .await;
    }
    let current = t.sku_fields(&admin, &sku).await;
    let with = |field: &str, value: Value| {
        let mut body = current.clone();
        body[field] = value;
        body
    };
    put(&t, &format!("/admin/skus/{sku}"), &admin, with("seckill_num", json!(2)))
        .await
        .assert_problem(409, "CONFLICT");
    assert_eq!(t.remaining(&sku).await, 2, "a refused change leaves Redis alone");
    assert_eq!(
        t.get(&format!("/admin/skus/{sku}"), Some(&admin)).await.body["seckill_num"],
        5
    );

    let more = put(&t, &format!("/admin/skus/{sku}"), &admin, with("seckill_num", json!(8))).await;
    assert_eq!(more.body["seckill_num"], 8, "{}", more.body);
    assert_eq!(t.remaining(&sku).await, 5, "three sold, five more on sale");

    let ended = ts::format(&(Utc::now() - Duration::seconds(1)));
    let closed = put(
        &t,
        &format!("/admin/skus/{sku}"),
        &admin,
        with("seckill_end", json!(ended)),
    )
    .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    t.post(&format!("/seckill/items/{sku}/grab"), Some(&t.user_token("late")), None)
        .await
        .assert_problem(403, "ENDED");
    // Over now, the SKU may be deleted.
    assert_eq!(
        delete(&t, &format!("/admin/skus/{sku}"), &admin).await.status,
        StatusCode::NO_CONTENT
    );
    t.get(&format!("/admin/skus/{sku}"), Some(&admin))
        .await
        .assert_problem(404, "NOT_FOUND");

    // PUT under a new id creates it with the operator's id.
    let chosen = put(&t, "/admin/skus/PHONE-X-2026", &admin, with("seckill_num", json!(3))).await;
    assert_eq!(
        (chosen.status, chosen.str("id")),
        (StatusCode::OK, "PHONE-X-2026".into())
    );
}

#[tokio::test]
async fn every_listing_pages_with_a_cursor() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let mut brands = HashSet::new();
    for i in 0..23 {
        brands.insert(created(
            t.post(
                "/admin/brands",
                Some(&admin),
                Some(json!({"name": format!("Brand {i}")})),
            )
            .await,
        ));
    }
    let walk = |path: &'static str| {
        let (t, admin) = (&t, &admin);
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let separator = if path.contains('?') { '&' } else { '?' };
                let url = match &cursor {
                    Some(c) => format!("{path}{separator}limit=7&cursor={c}"),
                    None => format!("{path}{separator}limit=7"),
                };
                let page = t.get(&url, Some(admin)).await;
                assert_eq!(page.status, StatusCode::OK, "{}", page.body);
                let items = page.body["items"].as_array().unwrap();
                assert!(items.len() <= 7);
                seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
                match page.body["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => return seen,
                }
            }
        }
    };
    let seen = walk("/admin/brands").await;
    assert_eq!(seen.len(), 23, "each exactly once");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), brands);

    // Orders by status are merged from their shards, newest first.
    let sku = t.open_sale(&admin, 30, 900).await;
    let mut orders = Vec::new();
    for i in 0..30 {
        orders.push(
            t.post(
                &format!("/seckill/items/{sku}/grab"),
                Some(&t.user_token(&format!("buyer{i}"))),
                None,
            )
            .await
            .str("order_id"),
        );
    }
    let seen = walk("/admin/orders?status=PENDING_PAYMENT").await;
    orders.reverse();
    assert_eq!(seen, orders, "every order once, newest first");
    t.get("/admin/orders?status=PAID&cursor=bm90LWEtY3Vyc29y", Some(&admin))
        .await
        .assert_problem(400, "VALIDATION");
    t.get("/admin/orders", Some(&admin))
        .await
        .assert_problem(400, "VALIDATION");
    t.get("/admin/orders?status=LOST", Some(&admin))
        .await
        .assert_problem(400, "VALIDATION");
}

#[tokio::test]
async fn operators_are_added_and_disabling_one_revokes_it_at_once() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let added = t
        .post(
            "/admin/admins",
            Some(&admin),
            Some(json!({"login_name": "ops2", "password": "ops2-password"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert!(added.body.get("password").is_none());
    t.post(
        "/admin/admins",
        Some(&admin),
        Some(json!({"login_name": "ops2", "password": "another-one"})),
    )
    .await
    .assert_problem(409, "CONFLICT");
    let ops2 = t
        .post(
            "/admin/login",
            None,
            Some(json!({"login_name": "ops2", "password": "ops2-password"})),
        )
        .await
        .str("token");
    assert_eq!(
        t.get("/admin/admins", Some(&ops2)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    put(&t, "/admin/admins/admin", &admin, json!({"status": 2}))
        .await
        .assert_problem(409, "CONFLICT");
    let disabled = put(&t, "/admin/admins/ops2", &admin, json!({"status": 2})).await;
    assert_eq!(disabled.body["status"], 2, "{}", disabled.body);
    t.get("/admin/admins", Some(&ops2))
        .await
        .assert_problem(403, "FORBIDDEN");
    t.post(
        "/admin/login",
        None,
        Some(json!({"login_name": "ops2", "password": "ops2-password"})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    put(&t, "/admin/admins/nobody", &admin, json!({"status": 2}))
        .await
        .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn addresses_keep_exactly_one_default() {
    let t = TestApp::start().await;
    let user = t.user_token("nomad");
    let body = |n: i32, default: &str| json!({"contact": "N", "phone": "1", "address": format!("{n} St"), "is_default": default});
    let first = created(t.post("/me/addresses", Some(&user), Some(body(1, "0"))).await);
    let second = created(t.post("/me/addresses", Some(&user), Some(body(2, "1"))).await);
    let defaults = |reply: Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["is_default"] == "1")
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        defaults(t.get("/me/addresses", Some(&user)).await),
        vec![second.clone()]
    );
    assert_eq!(
        delete(&t, &format!("/me/addresses/{second}"), &user).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        defaults(t.get("/me/addresses", Some(&user)).await),
        vec![first.clone()],
        "the other is promoted"
    );
    put(&t, &format!("/me/addresses/{second}"), &user, body(3, "1"))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.post(
        "/me/addresses",
        Some(&user),
        Some(json!({"contact": "", "phone": "1", "address": "x"})),
    )
    .await
    .assert_problem(400, "VALIDATION");
    t.post(
        "/me/addresses",
        Some(&user),
        Some(json!({"contact": "N", "phone": "1", "address": "x", "is_default": "yes"})),
    )
    .await
    .assert_problem(400, "VALIDATION");
    for n in 0..19 {
        created(t.post("/me/addresses", Some(&user), Some(body(n, "0"))).await);
    }
    t.post("/me/addresses", Some(&user), Some(body(99, "0")))
        .await
        .assert_problem(400, "VALIDATION");
    t.get("/me/addresses", Some(&t.user_token("other"))).await.body["items"]
        .as_array()
        .unwrap()
        .is_empty()
        .then_some(())
        .unwrap();
    t.get("/me", Some(&user)).await.assert_problem(404, "NOT_FOUND");
}

/// The books of a sale an audit reads: the gate's remaining stock beside
/// the ledger's orders by status.
#[tokio::test]
async fn a_sales_stats_show_the_gate_and_the_ledger_side_by_side() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 5, 900).await;
    let mut orders = Vec::new();
    for shopper in ["ann", "bob", "cy"] {
        let token = t.user_token(shopper);
        let grabbed = t.post(&format!("/seckill/items/{sku}/grab"), Some(&token), None).await;
        orders.push((token, grabbed.str("order_id")));
    }
    let (ann, bob) = (&orders[0], &orders[1]);
    let paid = t.post(&format!("/orders/{}/pay", ann.1), Some(&ann.0), None).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    let cancelled = t.post(&format!("/orders/{}/cancel", bob.1), Some(&bob.0), None).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);

    let stats = t.get(&format!("/admin/skus/{sku}/stats"), Some(&admin)).await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    assert_eq!(
        stats.body,
        json!({
            "sku_id": sku,
            "seckill_num": 5,
            "remaining": 3,
            "orders": {"PAID": 1, "CANCELLED": 1, "PENDING_PAYMENT": 1},
            "live_orders": 2,
            "shoppers_with_two_live_orders": 0,
        })
    );
    t.get("/admin/skus/none/stats", Some(&admin))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.get(&format!("/admin/skus/{sku}/stats"), Some(&ann.0))
        .await
        .assert_problem(403, "FORBIDDEN");
}

/// Thirty adds at once, each asking to be the default, on a book of
/// fifteen: exactly twenty addresses are kept and exactly one is default;
/// every other add is refused cleanly (the limit, or a retry).
#[tokio::test]
async fn concurrent_adds_keep_the_limit_and_a_single_default() {
    let t = TestApp::start().await;
    let user = t.user_token("crowded");
    let body = |n: usize, default: &str| json!({"contact": "C", "phone": "1", "address": format!("{n} Rd"), "is_default": default});
    for n in 0..15 {
        created(t.post("/me/addresses", Some(&user), Some(body(n, "0"))).await);
    }
    let adds = (100..130).map(|n| {
        let (t, user) = (&t, &user);
        async move { t.post("/me/addresses", Some(user), Some(body(n, "1"))).await }
    });
    let replies = futures::future::join_all(adds).await;
    let mut outcomes: std::collections::BTreeMap<(u16, String), usize> = Default::default();
    for reply in &replies {
        *outcomes
            .entry((reply.status.as_u16(), reply.code().to_owned()))
            .or_default() += 1;
        if reply.status != StatusCode::CREATED {
            assert!(matches!(reply.code(), "VALIDATION" | "CONFLICT"), "{}", reply.body);
        }
    }
    println!("30 concurrent adds: {outcomes:?}");
    let book = t.get("/me/addresses", Some(&user)).await;
    let items = book.body["items"].as_array().unwrap();
    let created_now = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(items.len(), 15 + created_now, "every acknowledged add is kept");
    assert!(items.len() <= accounts::MAX_ADDRESSES, "{} addresses", items.len());
    let defaults = items.iter().filter(|a| a["is_default"] == "1").count();
    assert_eq!(defaults, 1, "{}", book.body);
}

#[tokio::test]
async fn catalog_refusals() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let user = t.user_token("someone");
    for (path, body) in [
        ("/admin/brands", json!({"name": ""})),
        ("/admin/brands", json!({"name": "X", "letter": "XY"})),
        ("/admin/brands", json!({"name": "X", "seq": "first"})),
        (
            "/admin/slots",
            json!({"name": "Bad", "starttime": "14:00:00", "endtime": "12:00:00"}),
        ),
        (
            "/admin/slots",
            json!({"name": "Bad", "starttime": "25:00:00", "endtime": "26:00:00"}),
        ),
        ("/admin/categories", json!({"name": "Bad", "is_show": "maybe"})),
        (
            "/admin/activities",
            json!({"name": "Bad", "begintime": "2026-01-02T00:00:00Z", "endtime": "2026-01-01T00:00:00Z"}),
        ),
        ("/admin/activities", json!({"name": "Bad", "status": 7})),
    ] {
        let reply = t.post(path, Some(&admin), Some(body.clone())).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (400, "VALIDATION"),
            "{path} {body} → {}",
            reply.body
        );
    }
    for path in [
        "/admin/brands/01NONE",
        "/admin/slots/01NONE",
        "/admin/categories/01NONE",
        "/admin/activities/01NONE",
        "/admin/skus/01NONE",
    ] {
        t.get(path, Some(&admin)).await.assert_problem(404, "NOT_FOUND");
        delete(&t, path, &admin).await.assert_problem(404, "NOT_FOUND");
        t.get(path, Some(&user)).await.assert_problem(403, "FORBIDDEN");
        t.get(path, None).await.assert_problem(401, "UNAUTHORIZED");
    }
    put(&t, "/admin/activities/01NONE/skus/01NONE", &admin, json!(null))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.get("/seckill/items?slot=01NONE", None)
        .await
        .assert_problem(404, "NOT_FOUND");
    t.get("/seckill/items?limit=1000", None)
        .await
        .assert_problem(400, "VALIDATION");
    let order = {
        let sku = t.open_sale(&admin, 1, 900).await;
        t.post(&format!("/seckill/items/{sku}/grab"), Some(&user), None)
            .await
            .str("order_id")
    };
    t.post(&format!("/admin/orders/{order}/ship"), Some(&admin), None)
        .await
        .assert_problem(409, "INVALID_STATE");
    t.post(
        &format!("/orders/{order}/pay"),
        Some(&user),
        Some(json!({"address_id": "01NOADDRESS"})),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    t.post(
        &format!("/orders/{order}/pay"),
        Some(&user),
        Some(json!({"address": "inline"})),
    )
    .await
    .assert_problem(400, "VALIDATION");
}

#[tokio::test]
async fn a_sku_keeps_the_first_shard_count_recorded_for_it() {
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 10, 900).await;
    t.app.ledger.set_sku_shards(&sku, 3).await.unwrap();
    assert_eq!(
        t.app.ledger.set_sku_shards(&sku, 2).await,
        Err(PortError::ConditionFailed),
        "a concurrent split with another count loses"
    );
    t.app.ledger.set_sku_shards(&sku, 3).await.unwrap();
    assert_eq!(t.app.ledger.get_sku(&sku).await.unwrap().unwrap().shards, Some(3));
}

/// A fresh namespace whose item pages are rendered into `folder`.
async fn rendering_into(folder: &std::path::Path) -> TestApp {
    let root = folder.to_owned();
    TestApp::start_tuned(&integration_tests::services().redis, move |config| {
        config.pages = Some(shared::pages::FolderPages {
            root,
            shop: "/console/".into(),
        });
    })
    .await
}

/// 模板静态化: publishing renders the item's page where the edge serves it,
/// an edit renders it anew, and deleting the SKU takes it away; a SKU
/// never published has none.
#[tokio::test]
async fn publishing_renders_the_items_page_and_deleting_removes_it() {
    let folder = tempfile::tempdir().unwrap();
    let t = rendering_into(folder.path()).await;
    let admin = t.admin_token().await;
    let sku = created(
        t.post("/admin/skus", Some(&admin), Some(sku_body("Page phone", json!({}))))
            .await,
    );
    let path = format!("/items/{sku}.html");
    assert_eq!(
        t.get(&path, None).await.status,
        StatusCode::NOT_FOUND,
        "not published yet"
    );

    assert_eq!(
        t.post(&format!("/admin/skus/{sku}/publish"), Some(&admin), None)
            .await
            .status,
        StatusCode::OK
    );
    let rendered = t.get(&path, None).await;
    assert_eq!(rendered.status, StatusCode::OK);
    assert!(
        rendered.content_type.starts_with("text/html"),
        "{}",
        rendered.content_type
    );
    let html = rendered.body.as_str().unwrap();
    assert!(html.contains("<h1>Page phone</h1>") && html.contains("¥1.00"), "{html}");

    let edited = put(
        &t,
        &format!("/admin/skus/{sku}"),
        &admin,
        sku_body("<b>Page phone</b> 2", json!({})),
    )
    .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let html = t.get(&path, None).await.body.as_str().unwrap().to_owned();
    assert!(
        html.contains("<h1>&lt;b&gt;Page phone&lt;&#x2f;b&gt; 2</h1>"),
        "escaped and new: {html}"
    );

    // Its sale over, the SKU may be deleted, and its page goes with it.
    let now = Utc::now();
    let ended = json!({"seckill_begin": ts::format(&(now - Duration::hours(2))),
                       "seckill_end": ts::format(&(now - Duration::hours(1)))});
    assert_eq!(
        put(&t, &format!("/admin/skus/{sku}"), &admin, sku_body("Page phone", ended))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        delete(&t, &format!("/admin/skus/{sku}"), &admin).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.get(&path, None).await.status, StatusCode::NOT_FOUND);
}

/// The cloud's way: the edge function (told by the SKUs table's stream
/// which SKUs changed) renders each from the ledger into the pages bucket,
/// here moto's S3, with the headers CloudFront keeps it by; the functions
/// that write SKUs render nothing there themselves.
#[tokio::test]
async fn in_the_cloud_pages_are_rendered_from_the_ledger_into_the_bucket() {
    let s3 = local_server::services::Moto::start().unwrap();
    let client = shared::app::s3_client(Some(&s3.endpoint())).await;
    client.create_bucket().bucket("pages").send().await.unwrap();
    let pages = shared::pages::BucketPages::new(client.clone(), "pages", "/");
    let object = |sku: &str| {
        client
            .get_object()
            .bucket("pages")
            .key(format!("items/{sku}.html"))
            .send()
    };

    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let sku = created(
        t.post(
            "/admin/skus",
            Some(&admin),
            Some(sku_body("<i>Bucket</i> phone", json!({}))),
        )
        .await,
    );
    t.post(&format!("/admin/skus/{sku}/publish"), Some(&admin), None).await;
    assert!(object(&sku).await.is_err(), "publishing wrote no page itself");

    storefront::render_stored_item_page(&t.app.ledger, &pages, &sku)
        .await
        .unwrap();
    let page = object(&sku).await.unwrap();
    assert_eq!(page.content_type(), Some("text/html; charset=utf-8"));
    assert_eq!(page.cache_control(), Some("public, max-age=60"));
    let html = String::from_utf8(page.body.collect().await.unwrap().to_vec()).unwrap();
    assert!(html.contains("<h1>&lt;i&gt;Bucket&lt;&#x2f;i&gt; phone</h1>"), "{html}");
    assert!(
        html.contains(r#"href="/style.css""#),
        "the console is the distribution's root: {html}"
    );

    t.app.ledger.delete_sku(&sku).await.unwrap();
    storefront::render_stored_item_page(&t.app.ledger, &pages, &sku)
        .await
        .unwrap();
    assert!(object(&sku).await.is_err(), "gone with its SKU");

    let nowhere = shared::pages::BucketPages::new(client.clone(), "no-such-bucket", "/");
    assert!(
        storefront::render_stored_item_page(&t.app.ledger, &nowhere, &sku)
            .await
            .is_err(),
        "a write S3 refuses is a failure the stream retries"
    );
}

/// A stand-in for CloudFront KeyValueStore's data-plane API on loopback
/// (nothing local serves it): its keys, its version (the `ETag` a write
/// must name) and the `UpdateKeys` calls it took. `races` writes of
/// another writer land between a caller's read of the version and its
/// write.
#[derive(Default)]
struct StandInStore {
    keys: std::collections::BTreeMap<String, String>,
    version: u64,
    updates: usize,
    races: usize,
}

async fn key_value_store_stand_in() -> (Served, std::sync::Arc<std::sync::Mutex<StandInStore>>) {
    use axum::{
        Json, Router,
        extract::{Path, State},
        http::HeaderMap,
        response::{IntoResponse, Response},
        routing::get,
    };
    use std::sync::{Arc, Mutex};
    type Shared = Arc<Mutex<StandInStore>>;
    fn error(status: StatusCode, kind: &str) -> Response {
        (
            status,
            [("x-amzn-errortype", kind.to_owned())],
            Json(json!({"message": kind})),
        )
            .into_response()
    }
    async fn describe(State(store): State<Shared>, Path(arn): Path<String>) -> Response {
        let mut store = store.lock().unwrap();
        let etag = format!("v{}", store.version);
        if store.races > 0 {
            store.races -= 1;
            store.version += 1;
        }
        let body = json!({"KvsARN": arn, "ItemCount": store.keys.len(), "TotalSizeInBytes": 0, "Created": 1.7e9});
        ([("etag", etag)], Json(body)).into_response()
    }
    async fn get_key(State(store): State<Shared>, Path((_, key)): Path<(String, String)>) -> Response {
        let store = store.lock().unwrap();
        match store.keys.get(&key) {
            Some(value) => {
                Json(json!({"Key": key, "Value": value, "ItemCount": store.keys.len(), "TotalSizeInBytes": 0}))
                    .into_response()
            }
            None => error(StatusCode::NOT_FOUND, "ResourceNotFoundException"),
        }
    }
    async fn update(State(store): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
        let mut store = store.lock().unwrap();
        store.updates += 1;
        if headers.get("if-match").and_then(|v| v.to_str().ok()) != Some(&format!("v{}", store.version)) {
            return error(StatusCode::CONFLICT, "ConflictException");
        }
        let changes = |name: &str| body[name].as_array().cloned().unwrap_or_default();
        if changes("Puts").len() + changes("Deletes").len() > 50 {
            return error(StatusCode::BAD_REQUEST, "ValidationException");
        }
        for put in changes("Puts") {
            store.keys.insert(
                put["Key"].as_str().unwrap().into(),
                put["Value"].as_str().unwrap().into(),
            );
        }
        for delete in changes("Deletes") {
            store.keys.remove(delete["Key"].as_str().unwrap());
        }
        store.version += 1;
        let etag = format!("v{}", store.version);
        (
            [("etag", etag)],
            Json(json!({"ItemCount": store.keys.len(), "TotalSizeInBytes": 0})),
        )
            .into_response()
    }
    let store = Shared::default();
    let router = Router::new()
        .route("/key-value-stores/{arn}", get(describe))
        .route("/key-value-stores/{arn}/keys", axum::routing::post(update))
        .route("/key-value-stores/{arn}/keys/{key}", get(get_key))
        .with_state(store.clone());
    (Served::start(router).await.unwrap(), store)
}

/// The ticket list's adapter against the store's API: entries read back,
/// a write that lost a race to another writer made again on the new
/// version, and a large batch split into updates the API takes.
#[tokio::test]
async fn the_edge_ticket_list_writes_on_the_stores_current_version() {
    use shared::{ports::TicketList, ticket_list::KeyValueStoreTicketList};
    let (stand_in, store) = key_value_store_stand_in().await;
    let client = shared::app::key_value_store_client(Some(&format!("http://{}", stand_in.address))).await;
    let list = KeyValueStoreTicketList::new(
        client,
        "arn:aws:cloudfront::123456789012:key-value-store/0b5e6cf7-1d2b-4a3c-9a61-3f1c3c8b9e10",
    );
    let entry = |name: &'static str| {
        let list = list.clone();
        async move { list.entry(name).await.unwrap() }
    };
    assert_eq!(entry("ticket-key").await, None);
    list.update(&[("ticket-key".into(), "k1".into()), ("sku:a".into(), "1".into())], &[])
        .await
        .unwrap();
    assert_eq!(entry("ticket-key").await.as_deref(), Some("k1"));
    assert_eq!(entry("sku:a").await.as_deref(), Some("1"));

    store.lock().unwrap().races = 2;
    let before = store.lock().unwrap().updates;
    list.update(&[], &["sku:a".into()]).await.unwrap();
    assert_eq!(entry("sku:a").await, None, "written after losing twice");
    assert_eq!(store.lock().unwrap().updates - before, 3);

    let many: Vec<(String, String)> = (0..120).map(|i| (format!("sku:{i}"), "1".to_owned())).collect();
    let before = store.lock().unwrap().updates;
    list.update(&many, &[]).await.unwrap();
    assert_eq!(store.lock().unwrap().updates - before, 3, "50, 50 and 20");
    assert_eq!(store.lock().unwrap().keys.len(), 121);

    store.lock().unwrap().races = usize::MAX;
    assert!(
        list.update(&[("sku:z".into(), "1".into())], &[]).await.is_err(),
        "a list that never holds still is a failure the stream retries"
    );
}

/// A stand-in for Lambda's provisioned-concurrency API on loopback (moto
/// has none): the instances asked per function and alias, the calls that
/// changed them, and whether Lambda reports their allocation failed.
async fn lambda_stand_in() -> (
    Served,
    std::sync::Arc<std::sync::Mutex<(std::collections::BTreeMap<String, i64>, usize, bool)>>,
) {
    use axum::{
        Json, Router,
        extract::{Path, Query, State},
        response::{IntoResponse, Response},
        routing::get,
    };
    use std::{
        collections::{BTreeMap, HashMap},
        sync::{Arc, Mutex},
    };
    type Shared = Arc<Mutex<(BTreeMap<String, i64>, usize, bool)>>;
    fn missing(kind: &str) -> Response {
        (
            StatusCode::NOT_FOUND,
            [("x-amzn-errortype", kind.to_owned())],
            Json(json!({"message": kind})),
        )
            .into_response()
    }
    fn key(name: &str, query: &HashMap<String, String>) -> String {
        format!("{name}:{}", query.get("Qualifier").map_or("$LATEST", String::as_str))
    }
    async fn read(
        State(asked): State<Shared>,
        Path(name): Path<String>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        let asked = asked.lock().unwrap();
        let status = if asked.2 { "FAILED" } else { "IN_PROGRESS" };
        match asked.0.get(&key(&name, &q)) {
            Some(n) => Json(json!({"RequestedProvisionedConcurrentExecutions": n, "Status": status})).into_response(),
            None => missing("ProvisionedConcurrencyConfigNotFoundException"),
        }
    }
    async fn put(
        State(asked): State<Shared>,
        Path(name): Path<String>,
        Query(q): Query<HashMap<String, String>>,
        Json(body): Json<Value>,
    ) -> Response {
        let n = body["ProvisionedConcurrentExecutions"].as_i64().unwrap();
        let mut asked = asked.lock().unwrap();
        asked.0.insert(key(&name, &q), n);
        asked.1 += 1;
        (
            StatusCode::ACCEPTED,
            Json(json!({"RequestedProvisionedConcurrentExecutions": n, "Status": "IN_PROGRESS"})),
        )
            .into_response()
    }
    async fn remove(
        State(asked): State<Shared>,
        Path(name): Path<String>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        let mut asked = asked.lock().unwrap();
        asked.1 += 1;
        match asked.0.remove(&key(&name, &q)) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => missing("ResourceNotFoundException"),
        }
    }
    let asked = Shared::default();
    let router = Router::new()
        .route(
            "/2019-09-30/functions/{name}/provisioned-concurrency",
            get(read).put(put).delete(remove),
        )
        .with_state(asked.clone());
    (Served::start(router).await.unwrap(), asked)
}

/// The warm-up job over the real ledger and Lambda's API: a sale with a
/// waiting room published to open in five minutes gets the grab
/// function's alias the instances its rate needs, a rain nothing (none is
/// opening), and both are given back once the rush is over.
#[tokio::test]
async fn a_published_sale_warms_the_grab_function_before_it_opens_and_cools_it_after() {
    use shared::{
        domain::warm::{Warm, WarmSettings, warm_up},
        provisioned::ProvisionedConcurrency,
    };
    let (stand_in, asked) = lambda_stand_in().await;
    let capacity = ProvisionedConcurrency::new(
        shared::app::lambda_client(Some(&format!("http://{}", stand_in.address))).await,
        "stack-grab",
        "stack-claim",
    );
    let t = TestApp::start().await;
    let admin = t.admin_token().await;
    let now = Utc::now();
    let opens = now + Duration::minutes(5);
    let window = json!({"seckill_begin": ts::format(&opens), "seckill_end": ts::format(&(opens + Duration::hours(1))),
                        "guard": {"waiting_room_rate": 250}});
    let sku = created(
        t.post("/admin/skus", Some(&admin), Some(sku_body("Warm phone", window)))
            .await,
    );
    let published = t.post(&format!("/admin/skus/{sku}/publish"), Some(&admin), None).await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.body);

    let settings = WarmSettings::default();
    let warm = warm_up(&t.app.ledger, &capacity, &settings, now).await.unwrap();
    // 250 a second × 4 requests × 0.02 s.
    assert_eq!(warm, Warm { grab: 20, claim: 0 });
    assert_eq!(asked.lock().unwrap().0.get("stack-grab:live"), Some(&20));
    assert_eq!(asked.lock().unwrap().1, 1);
    warm_up(&t.app.ledger, &capacity, &settings, now).await.unwrap();
    assert_eq!(asked.lock().unwrap().1, 1, "nothing asked again while nothing changed");
    asked.lock().unwrap().2 = true;
    warm_up(&t.app.ledger, &capacity, &settings, now).await.unwrap();
    assert_eq!(
        asked.lock().unwrap().1,
        2,
        "an allocation Lambda gave up on is asked again"
    );
    asked.lock().unwrap().2 = false;

    let after = opens + settings.hold + Duration::seconds(1);
    warm_up(&t.app.ledger, &capacity, &settings, after).await.unwrap();
    assert_eq!(asked.lock().unwrap().0.get("stack-grab:live"), None, "given back");
}

/// The edge (nginx, where CloudFront stands) serves the rendered pages as
/// files and keeps each stock document as long as it says: a crowd polling
/// for a few seconds reaches the function about once a second, and sees a
/// grab within the document's lifetime.
#[tokio::test]
async fn the_edge_serves_pages_as_files_and_lets_about_one_stock_read_a_second_through() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use axum::{extract::Request, middleware::Next};

    let folder = tempfile::tempdir().unwrap();
    let t = rendering_into(folder.path()).await;
    // What reaches the functions, by kind.
    let (stock_reads, other) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counted = {
        let (stock_reads, other) = (stock_reads.clone(), other.clone());
        t.router
            .clone()
            .layer(axum::middleware::from_fn(move |request: Request, next: Next| {
                let counter = if request.uri().path().ends_with("/stock") {
                    &stock_reads
                } else {
                    &other
                };
                counter.fetch_add(1, Ordering::Relaxed);
                next.run(request)
            }))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, counted).await });
    let admin = t.admin_token().await;
    let sku = t.open_sale(&admin, 5, 900).await;
    let edge = local_server::edge::Edge::start(api, folder.path(), "unused: nothing here counts addresses").unwrap();
    let base = format!("http://{}", edge.address);
    let client = reqwest::Client::new();

    let page = client.get(format!("{base}/items/{sku}.html")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("<h1>Test phone</h1>"));
    let before = other.load(Ordering::Relaxed);

    let started = std::time::Instant::now();
    let polls = futures::future::join_all((0..40).map(|_| {
        let (client, url) = (client.clone(), format!("{base}/seckill/items/{sku}/stock"));
        async move {
            let mut answered = 0;
            while started.elapsed() < std::time::Duration::from_secs(3) {
                let reply = client.get(&url).send().await.unwrap();
                assert_eq!(reply.status(), StatusCode::OK);
                answered += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            answered
        }
    }))
    .await;
    let (polled, seconds) = (polls.iter().sum::<usize>(), started.elapsed().as_secs_f64());
    let reads = stock_reads.load(Ordering::Relaxed);
    println!("{polled} polls in {seconds:.1} s through the edge; {reads} reached the function");
    assert!(polled > 20 * reads, "{polled} polls, {reads} reads");
    assert!(
        (reads as f64) <= 2.0 * seconds + 2.0,
        "about one read a second: {reads} in {seconds:.1} s"
    );
    assert_eq!(
        other.load(Ordering::Relaxed),
        before,
        "the page views reached no function"
    );

    // A grab shows at the edge once the kept document has run out.
    let shopper = t.user_token("edge-shopper");
    t.post(&format!("/seckill/items/{sku}/grab"), Some(&shopper), None)
        .await;
    let mut seen = 5;
    for _ in 0..50 {
        let doc: serde_json::Value = client
            .get(format!("{base}/seckill/items/{sku}/stock"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen = doc["remaining"].as_i64().unwrap();
        if seen == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 4, "the edge passed the change on");
}
