#!/usr/bin/env python3
"""The web console in a real browser (headless Chromium, the Debian
package, driven by Playwright), against a running local server.

An operator signs in, adds a brand, a time slot, a category and an
activity, creates and publishes a SKU, a guarded SKU (a proof of work per
ticket) and a red-packet rain; a shopper on a phone-sized screen registers,
finds the SKU among today's sales, grabs and pays it (a second grab is
refused in words) and grabs the guarded one, which she pays on the Alipay
stand-in's cashier and is sent back to the shop; she pays another on
WeChat Pay's QR code (opened as her phone would), a third by card through
Stripe.js's form and takes a fourth cash on delivery; the operator sees the sale's
live board and the hot items, then a crowd of 100 shoppers (over the API)
taps a third sale of 60 units 300 times over six seconds and its board
shows every answer by code; the shopper taps the rain until a packet is
hers and sees it credited to her balance; the operator watches the rain's
board and ships the order; she receives it and asks to return it, the
operator accepts (refunded) and ships and collects the cash-on-delivery
one. Every page is screenshotted
into the given directory, and the template's sale dashboard drawn from the
local server's figures meanwhile (see dashboard.py). Any JavaScript error, failed page load or page
wider than the phone fails the run.

Run by scripts/browser-test.sh: console.py <base url> <screenshot dir>.
"""
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

import dashboard

BASE, SHOTS, EDGE = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
CONSOLE = f"{BASE}/console/"
SHOTS.mkdir(parents=True, exist_ok=True)
RUN = str(int(time.time()))
SHOPPER = f"mei{RUN}"
SKU_NAME = f"Browser phone {RUN}"
GUARDED_NAME = f"Guarded phone {RUN}"
CROWD_NAME = f"Crowd phone {RUN}"
RAIN_NAME = f"Browser rain {RUN}"
WECHAT_NAME = f"WeChat phone {RUN}"
COD_NAME = f"Cash phone {RUN}"
CARD_NAME = f"Card phone {RUN}"
PAGE_NAME = f"Static phone {RUN}"
ROOM_NAME = f"Queued phone {RUN}"
PHONE = {"width": 390, "height": 844}
# Every wait is bounded: a page that never shows what it should fails.
expect.set_options(timeout=20_000)

errors = []


def watch(page: Page, who: str):
    page.on("pageerror", lambda error: errors.append(f"{who}: {error}"))
    # A refused request is logged by the browser too; the pages show those
    # in words and the test checks them. Anything else is a page's bug.
    page.on(
        "console",
        lambda m: m.type == "error"
        and not m.text.startswith("Failed to load resource: the server responded with a status of 4")
        and errors.append(f"{who} console: {m.text}"),
    )


def shoot(page: Page, name: str):
    page.wait_for_load_state("networkidle")
    page.evaluate("document.getElementById('notice').hidden = true")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=name != "shop-rain")


def fits_the_phone(page: Page):
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the phone"


def heading(page: Page, text: str):
    expect(page.locator("h1")).to_contain_text(text)


def add_record(page: Page, kind: str, title: str, fields: dict):
    """Adds a catalog record through its page's form; it shows in the page's table."""
    page.goto(f"{CONSOLE}#/admin/records/{kind}")
    heading(page, title)
    for name, value in fields.items():
        page.fill(f"input[name={name}]", value)
    page.click("button:has-text('Create')")
    expect(page.locator("table")).to_contain_text(fields["name"])
    shoot(page, f"admin-{kind}")


def open_new_sku(page: Page):
    page.goto(f"{CONSOLE}#/admin/skus/new")
    heading(page, "New SKU")


def fill_new_sku(page: Page, fields: dict):
    """Fills the open new-SKU form (inputs by name) and sends it."""
    for name, value in fields.items():
        page.fill(f"input[name={name}]", value)
    page.click("button:has-text('Create')")


def call(method: str, path: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    """One API request (the crowd's, outside the browser): its status and JSON body."""
    request = urllib.request.Request(f"{BASE}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"null")


def on_sale(name: str, seckill_price: int, units: int, opens_in: int = -60, guard: dict | None = None) -> dict:
    """A SKU created and published over the API, on sale from `opens_in` seconds from now
    (a minute ago unless told) until an hour from now, with `guard` if given."""
    _, admin = call("POST", "/admin/login", body={"login_name": "admin", "password": "admin"})
    now = time.time()
    stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    status, sku = call("POST", "/admin/skus", admin["token"], {
        "name": name, "price": seckill_price * 10, "seckill_price": seckill_price, "seckill_num": units,
        "seckill_begin": stamp(now + opens_in), "seckill_end": stamp(now + 3600), "guard": guard or {}})
    assert status == 201, sku
    assert call("POST", f"/admin/skus/{sku['id']}/publish", admin["token"])[0] == 200
    return sku


def crowd_on(units: int, groups: int, group_size: int, taps: int) -> tuple[str, Counter]:
    """A sale of `units` and a crowd (registered and signed in over the API) arriving in
    `groups` of `group_size` shoppers, a group a second, each shopper tapping grab once a
    second `taps` times (16 taps in flight): the sale's id and how many taps got each answer."""
    sku = on_sale(CROWD_NAME, 9900, units)

    def sign_up(n):
        credentials = {"username": f"crowd{n}x{RUN}", "password": "correct-horse-battery"}
        call("POST", "/auth/register", body=credentials)
        return call("POST", "/auth/login", body=credentials)[1]["token"]

    tally = Counter()
    with ThreadPoolExecutor(16) as pool:
        tokens = list(pool.map(sign_up, range(groups * group_size)))
        arrivals = [tokens[g * group_size:(g + 1) * group_size] for g in range(groups)]
        for second in range(groups + taps - 1):
            started = time.monotonic()
            tapping = [token for g, group in enumerate(arrivals) if 0 <= second - g < taps for token in group]
            answers = pool.map(lambda token: call("POST", f"/seckill/items/{sku['id']}/grab", token), tapping)
            tally.update("CREATED" if status == 201 else body["code"] for status, body in answers)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return sku["id"], tally


def operator_sets_up(page: Page) -> tuple[str, str]:
    page.goto(f"{CONSOLE}#/admin")
    heading(page, "Operator sign-in")
    shoot(page, "admin-login")
    page.fill("input[name=login_name]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button:has-text('Sign in')")
    heading(page, "SKUs")

    add_record(page, "brands", "Brands", {"name": f"Acme {RUN}", "letter": "A"})
    add_record(page, "slots", "Time slots", {"name": "All day", "starttime": "00:00:00", "endtime": "23:59:59"})
    add_record(page, "categories", "Categories", {"name": f"Phones {RUN}"})
    add_record(page, "activities", "Activities", {"name": f"Double 11 {RUN}"})

    # A SKU of five phones at ¥9.90, on sale from now for an hour.
    open_new_sku(page)
    page.select_option("select[name=brand_id]", label=f"Acme {RUN}")
    page.select_option("select[name=category1_id]", label=f"Phones {RUN}")
    fill_new_sku(page, {"name": SKU_NAME, "price": "1999", "seckill_price": "9.90", "seckill_num": "5"})
    heading(page, SKU_NAME)
    sku_id = re.search(r"#/admin/skus/([^?]+)", page.url).group(1)
    page.click("button:has-text('Publish')")
    expect(page.locator("#notice")).to_contain_text("Published: 5 on sale")
    # Saved again as it stands (a PUT of the whole record, re-published).
    page.click("button:has-text('Save')")
    expect(page.locator("#notice")).to_contain_text("SKU saved")
    shoot(page, "admin-sku")

    # The activity gets the SKU; the brand is edited in place.
    page.goto(f"{CONSOLE}#/admin/records/activities")
    heading(page, "Activities")
    page.locator("tr", has_text=f"Double 11 {RUN}").locator("a.button:has-text('SKUs')").click()
    heading(page, f"Double 11 {RUN}")
    page.select_option("select[name=sku_id]", label=SKU_NAME)
    page.click("button:has-text('Link')")
    expect(page.locator("table")).to_contain_text(SKU_NAME)
    shoot(page, "admin-activity")
    page.goto(f"{CONSOLE}#/admin/records/brands")
    heading(page, "Brands")
    page.click(f"a:has-text('Acme {RUN}')")
    expect(page.locator("h2")).to_contain_text(f"Edit Acme {RUN}")
    page.fill("input[name=name]", f"Acme Corp {RUN}")
    page.click("button:has-text('Save')")
    expect(page.locator("table")).to_contain_text(f"Acme Corp {RUN}")

    # A bad form is refused in words, not silently.
    open_new_sku(page)
    page.eval_on_selector("input[name=seckill_num]", "input => input.removeAttribute('min')")
    fill_new_sku(page, {"name": "Refused", "price": "1", "seckill_price": "1", "seckill_num": "-1"})
    expect(page.locator(".error:visible")).to_contain_text("seckill_num")
    expect(page.locator(".error:visible code")).to_have_text("VALIDATION")

    # A guarded sale: a proof of work (difficulty 8) buys each shopper's ticket.
    open_new_sku(page)
    fill_new_sku(page, {"name": GUARDED_NAME, "price": "99", "seckill_price": "1", "seckill_num": "3",
                        "challenge_difficulty": "8"})
    heading(page, GUARDED_NAME)
    page.click("button:has-text('Publish')")
    expect(page.locator("#notice")).to_contain_text("Published: 3 on sale")

    page.goto(f"{CONSOLE}#/admin")
    heading(page, "SKUs")
    expect(page.locator("table")).to_contain_text(SKU_NAME)
    shoot(page, "admin-skus")

    # A rain of ¥100 in 20 packets, open now.
    page.goto(f"{CONSOLE}#/admin/rains")
    heading(page, "Red-packet rains")
    page.fill("input[name=name]", RAIN_NAME)
    page.fill("input[name=total_amount]", "100")
    page.fill("input[name=count]", "20")
    page.click("button:has-text('Create rain')")
    heading(page, f"Live: {RAIN_NAME}")
    rain_id = re.search(r"#/admin/board/rain/([^?]+)", page.url).group(1)
    page.goto(f"{CONSOLE}#/admin/rains")
    heading(page, "Red-packet rains")
    expect(page.locator("table")).to_contain_text(RAIN_NAME)
    shoot(page, "admin-rains")
    return sku_id, rain_id


def shopper_buys(page: Page):
    page.goto(f"{CONSOLE}#/register")
    heading(page, "Create an account")
    page.fill("input[name=username]", SHOPPER)
    page.fill("input[name=password]", "correct-horse-battery")
    shoot(page, "shop-register")
    page.click("button:has-text('Create account')")
    heading(page, "Today’s flash sales")
    card = page.locator(".card", has_text=SKU_NAME)
    expect(card).to_contain_text("¥9.90")
    expect(card).to_contain_text("5 of 5 left")
    expect(card.locator(".clock")).to_contain_text("On now — ends in")
    expect(page.locator(".rain-banner")).to_be_visible()
    shoot(page, "shop-today")
    fits_the_phone(page)

    card.click()
    heading(page, SKU_NAME)
    page.click("button:has-text('Grab it')")
    expect(page.locator(".won")).to_contain_text("You got one!")
    shoot(page, "shop-item")
    fits_the_phone(page)
    page.click("button:has-text('Pay ¥9.90')")
    expect(page.locator(".won")).to_contain_text("Paid ✓")
    # One per shopper: the second grab is refused with the problem's words.
    page.click("button:has-text('Grab it')")
    expect(page.locator(".error:visible")).to_contain_text("You already hold an order for this item")
    expect(page.locator(".error:visible code")).to_have_text("ALREADY_PURCHASED")
    shoot(page, "shop-item-paid")

    # The guarded sale: the browser solves the challenge for a ticket, then grabs.
    page.goto(f"{CONSOLE}#/")
    page.locator(".card", has_text=GUARDED_NAME).click()
    heading(page, GUARDED_NAME)
    expect(page.locator(".item")).to_contain_text("asks your browser for a ticket")
    page.click("button:has-text('Grab it')")
    expect(page.locator(".won")).to_contain_text("You got one!")


def shopper_pays_each_way(page: Page):
    """The guarded order (won last) through Alipay's cashier and back; a second sale through
    WeChat Pay's QR code; a third cash on delivery."""
    expect(page.locator(".pay-methods")).to_contain_text("WeChat Pay")
    shoot(page, "shop-pay-methods")
    page.click("button:has-text('Alipay')")
    expect(page.locator("#amount")).to_have_text("¥1.00")
    page.screenshot(path=str(SHOTS / "alipay-cashier.png"), full_page=True)
    page.click("#pay")
    # Paid, the cashier sends her back; the page waits for the notification.
    heading(page, GUARDED_NAME)
    expect(page.locator(".won")).to_contain_text("Paid ✓")
    shoot(page, "shop-paid-alipay")

    for name, price in ((WECHAT_NAME, 500), (CARD_NAME, 600), (COD_NAME, 700)):
        sku = on_sale(name, price, 2)
        page.goto(f"{CONSOLE}#/items/{sku['id']}")
        heading(page, name)
        page.click("button:has-text('Grab it')")
        expect(page.locator(".won")).to_contain_text("You got one!")
    # The last won (cash on delivery) first: this page still shows its order.
    page.click("button:has-text('Cash on delivery')")
    expect(page.locator(".won")).to_contain_text("Confirmed ✓")
    expect(page.locator(".won")).to_contain_text("Pay the courier ¥7.00 on delivery")

    page.goto(f"{CONSOLE}#/orders")
    heading(page, "My orders")
    page.locator("tr", has_text=WECHAT_NAME).locator("a:has-text('Pay')").click()
    heading(page, WECHAT_NAME)
    page.click("button:has-text('WeChat Pay')")
    expect(page.locator(".qr svg")).to_be_visible()
    shoot(page, "shop-wechat-qr")
    # Her phone scans the code: the stand-in's page for it, where she pays.
    phone = page.context.new_page()
    phone.goto(page.locator("a.code-link").get_attribute("href"))
    expect(phone.locator("#amount")).to_have_text("¥5.00")
    phone.click("#pay")
    expect(phone.locator("#status")).to_have_text("SUCCESS")
    phone.close()
    expect(page.locator(".won")).to_contain_text("Paid ✓")

    # By card: Stripe.js's form (its stand-in locally) confirms the intent
    # at Stripe; its webhook marks the order paid.
    page.goto(f"{CONSOLE}#/orders")
    page.locator("tr", has_text=CARD_NAME).locator("a:has-text('Pay')").click()
    heading(page, CARD_NAME)
    page.click("button:has-text('Card (Stripe)')")
    page.fill("input[name=card-number]", "4242 4242 4242 4242")
    page.fill("input[name=card-exp]", "12 / 34")
    page.fill("input[name=card-cvc]", "123")
    shoot(page, "shop-card")
    page.click("button:has-text('by card')")
    expect(page.locator(".won")).to_contain_text("Paid ✓")

    page.goto(f"{CONSOLE}#/orders")
    for name, words in ((SKU_NAME, "paid"), (GUARDED_NAME, "paid"), (WECHAT_NAME, "paid"),
                        (CARD_NAME, "paid"), (COD_NAME, "pay on delivery")):
        expect(page.locator("tr", has_text=name)).to_contain_text(words)
    shoot(page, "shop-orders")


# A machine whose clock is ten minutes slow (as a shopper's often is).
SLOW_CLOCK = """
(() => {
  const Real = Date, shift = -10 * 60 * 1000;
  class Slow extends Real {
    constructor(...args) { if (args.length) super(...args); else super(Real.now() + shift); }
    static now() { return Real.now() + shift; }
  }
  window.Date = Slow;
})();
"""


def shopper_waits_on_a_rendered_page(context):
    """The item's static page (rendered at publish, 模板静态化), served by the local edge
    (nginx, where CloudFront stands), on a machine ten minutes slow: the shopper signs in
    at the edge's address, as the page asks; the page counts down on the server's clock,
    opens the buy button when the sale opens, grabs, and the console takes the payment."""
    sku = on_sale(PAGE_NAME, 800, 3, opens_in=15)
    page = context.new_page()
    watch(page, "rendered page")
    page.add_init_script(SLOW_CLOCK)
    page.goto(f"{EDGE}/console/#/login")
    page.fill("input[name=username]", SHOPPER)
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("button:has-text('Sign in')")
    heading(page, "Today’s flash sales")
    page.goto(f"{EDGE}/items/{sku['id']}.html")
    heading(page, PAGE_NAME)
    expect(page.locator("#grab")).to_be_disabled()
    # Seconds to go, as the server counts them; the machine would say ten minutes.
    expect(page.locator("#clock")).to_contain_text(re.compile(r"Starts in 00:00:\d\d"))
    expect(page.locator("#stock")).to_have_text("3 left")
    page.screenshot(path=str(SHOTS / "item-page-upcoming.png"), full_page=True)
    expect(page.locator("#grab")).to_be_enabled(timeout=30_000)
    expect(page.locator("#clock")).to_contain_text("On now")
    page.click("#grab")
    expect(page.locator("#result")).to_contain_text("You got one!")
    page.screenshot(path=str(SHOTS / "item-page-won.png"), full_page=True)
    page.click("a:has-text('Pay now')")
    heading(page, PAGE_NAME)
    page.click("button:has-text('Pay ¥8.00')")
    expect(page.locator(".won")).to_contain_text("Paid ✓")
    page.close()


def shopper_waits_in_line(page: Page) -> str:
    """A sale with a waiting room letting in one shopper a second: the shopper joins its
    line before the opening, with three others who joined over the API, waits, and
    grabs when her place is called."""
    sku = on_sale(ROOM_NAME, 700, 10, opens_in=6, guard={"waiting_room_rate": 1})
    for n in range(3):
        credentials = {"username": f"liner{n}x{RUN}", "password": "correct-horse-battery"}
        call("POST", "/auth/register", body=credentials)
        token = call("POST", "/auth/login", body=credentials)[1]["token"]
        status, place = call("POST", f"/seckill/items/{sku['id']}/queue", token)
        assert status == 200 and place["place"] == "drawn", place
    page.goto(f"{CONSOLE}#/items/{sku['id']}")
    heading(page, ROOM_NAME)
    expect(page.locator(".item")).to_contain_text("This sale has a waiting room")
    page.click("button:has-text('Join the line')")
    expect(page.locator("#line")).to_contain_text("You have a place in the line")
    shoot(page, "shop-waiting-room")
    expect(page.locator(".won")).to_contain_text("You got one!", timeout=30_000)
    status, room = call("GET", f"/seckill/items/{sku['id']}/queue")
    assert status == 200 and room["draws"] == 4 and room["admitted"] >= 1, room
    return sku["id"]


def operator_watches_the_line(page: Page, sku_id: str):
    """The sale's board shows its waiting room: how many wait, were let in, at what rate."""
    page.goto(f"{CONSOLE}#/admin/board/sku/{sku_id}")
    heading(page, f"Live: {ROOM_NAME}")
    expect(page.locator(".figure", has_text="Waiting in line")).to_contain_text("4 drawn")
    expect(page.locator(".figure", has_text="Let in")).to_contain_text("1 a second")
    shoot(page, "admin-board-line")


def shopper_taps_the_rain(page: Page, rain_id: str):
    page.goto(f"{CONSOLE}#/orders")
    heading(page, "My orders")
    expect(page.locator("table")).to_contain_text(SKU_NAME)
    expect(page.locator("table")).to_contain_text("paid")
    shoot(page, "shop-orders")
    fits_the_phone(page)

    # The rain: packets fall; tapping one claims it.
    page.goto(f"{CONSOLE}#/rain/{rain_id}")
    heading(page, RAIN_NAME)
    packet = page.locator(".packet").first
    expect(packet).to_be_visible()
    page.wait_for_timeout(1500)
    shoot(page, "shop-rain")
    # A falling packet never holds still, so the tap is dispatched to it.
    packet.dispatch_event("click")
    expect(page.locator(".rain-status")).to_contain_text("is yours")
    won = page.locator(".rain-status .amount").inner_text()
    shoot(page, "shop-rain-won")
    fits_the_phone(page)

    # The payout job credits it within a few seconds.
    for _ in range(30):
        page.goto(f"{CONSOLE}#/balance?{time.time()}")
        heading(page, "My balance")
        if page.locator(".balance").inner_text() == won:
            break
        page.wait_for_timeout(1000)
    expect(page.locator(".balance")).to_have_text(won)
    expect(page.locator("table")).to_contain_text(won)
    shoot(page, "shop-balance")
    fits_the_phone(page)


def operator_watches_the_sale(page: Page, sku_id: str):
    """Right after the grabs: the board and the hot items show the last minute."""
    page.goto(f"{CONSOLE}#/admin/board/sku/{sku_id}")
    heading(page, f"Live: {SKU_NAME}")
    units = page.locator(".figure", has_text="Units left")
    expect(units).to_contain_text("4")
    expect(units).to_contain_text("of 5")
    expect(page.locator(".figure:has(small:text-is('Sold'))")).to_contain_text("1")
    # The refused second grab and the won first one, each by its code.
    expect(page.locator(".board table")).to_contain_text("CREATED")
    expect(page.locator(".board table")).to_contain_text("ALREADY_PURCHASED")
    expect(page.locator(".chart rect.bar-won")).to_have_count(1)
    expect(page.locator(".progress", has_text="Payment")).to_contain_text("1 of 1")
    shoot(page, "admin-board-sale")

    # A crowd of 100 shoppers arriving 25 a second, each tapping once a second three times, on
    # 60 units: the board shows the sale drain over six seconds, every answer under its code.
    crowd_sku, tally = crowd_on(units=60, groups=4, group_size=25, taps=3)
    assert tally["CREATED"] == 60 and sum(tally.values()) == 300, tally
    page.goto(f"{CONSOLE}#/admin/board/sku/{crowd_sku}")
    heading(page, f"Live: {CROWD_NAME}")
    expect(page.locator(".figure", has_text="Units left")).to_contain_text("0")
    expect(page.locator(".figure:has(small:text-is('Sold'))")).to_contain_text("60")
    for code, count in tally.items():
        expect(page.locator(".board tr", has_text=code)).to_contain_text(str(count))
    shoot(page, "admin-board-crowd")

    page.goto(f"{CONSOLE}#/admin/hot")
    heading(page, "Hot items")
    expect(page.locator("table")).to_contain_text(sku_id)
    shoot(page, "admin-hot")


def operator_watches_the_rain_and_ships(page: Page, sku_id: str, rain_id: str):
    page.goto(f"{CONSOLE}#/admin/board/rain/{rain_id}")
    heading(page, f"Live: {RAIN_NAME}")
    expect(page.locator(".figure", has_text="Packets left")).to_contain_text("19")
    expect(page.locator(".progress", has_text="Payout")).to_contain_text("1 of 1")
    expect(page.locator(".board table")).to_contain_text("CLAIMED")
    shoot(page, "admin-board-rain")

    # An operator on a phone: the pages fit, wide tables scroll inside themselves.
    page.set_viewport_size(PHONE)
    for path, title in (("#/admin", "SKUs"), ("#/admin/orders?status=PAID", "Orders"),
                        (f"#/admin/skus/{sku_id}", SKU_NAME), (f"#/admin/board/rain/{rain_id}", RAIN_NAME)):
        page.goto(f"{CONSOLE}{path}")
        heading(page, title)
        page.wait_for_load_state("networkidle")
        fits_the_phone(page)
    shoot(page, "admin-board-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    page.goto(f"{CONSOLE}#/admin/orders?status=PAID")
    heading(page, "Orders")
    row = page.locator("tr", has_text=SKU_NAME)
    expect(row).to_contain_text(SHOPPER)
    shoot(page, "admin-orders")
    row.locator("button:has-text('Ship')").click()
    expect(page.locator("#notice")).to_contain_text("Shipped")
    page.goto(f"{CONSOLE}#/admin/orders?status=SHIPPED")
    expect(page.locator(".chip.selected")).to_have_text("shipped")
    expect(page.locator("tr", has_text=SKU_NAME)).to_contain_text("shipped")


def cash_on_delivery_and_a_return(admin: Page, shop: Page):
    admin.goto(f"{CONSOLE}#/admin/orders?status=CONFIRMED")
    heading(admin, "Orders")
    # Each step's page reloads its list: the order leaves it.
    admin.locator("tr", has_text=COD_NAME).locator("button:has-text('Ship')").click()
    expect(admin.locator("tr", has_text=COD_NAME)).to_have_count(0)
    admin.goto(f"{CONSOLE}#/admin/orders?status=SHIPPED")
    admin.locator("tr", has_text=COD_NAME).locator("button:has-text('Cash collected')").click()
    expect(admin.locator("tr", has_text=COD_NAME)).to_have_count(0)
    expect(admin.locator("#notice")).to_contain_text("Collected")

    shop.goto(f"{CONSOLE}#/orders")
    heading(shop, "My orders")
    expect(shop.locator("tr", has_text=COD_NAME)).to_contain_text("received")
    shop.locator("tr", has_text=SKU_NAME).locator("button:has-text('Received')").click()
    expect(shop.locator("tr", has_text=SKU_NAME)).to_contain_text("received")
    shop.locator("tr", has_text=SKU_NAME).locator("button:has-text('Return')").click()
    expect(shop.locator("tr", has_text=SKU_NAME)).to_contain_text("return asked")

    admin.goto(f"{CONSOLE}#/admin/orders?status=RETURN_REQUESTED")
    heading(admin, "Orders")
    shoot(admin, "admin-return")
    admin.locator("tr", has_text=SKU_NAME).locator("button:has-text('Accept return')").click()
    expect(admin.locator("tr", has_text=SKU_NAME)).to_have_count(0)
    expect(admin.locator("#notice")).to_contain_text("Return accepted")
    admin.goto(f"{CONSOLE}#/admin/orders?status=RETURNED")
    expect(admin.locator("tr", has_text=SKU_NAME)).to_contain_text("refund refunded")
    shop.goto(f"{CONSOLE}#/orders")
    expect(shop.locator("tr", has_text=SKU_NAME)).to_contain_text("returned")


with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    operator = browser.new_context(viewport={"width": 1280, "height": 860})
    shopper = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    admin_page, shop_page = operator.new_page(), shopper.new_page()
    watch(admin_page, "operator")
    watch(shop_page, "shopper")
    figures = dashboard.Sampler(BASE)
    figures.start()
    try:
        sku, rain = operator_sets_up(admin_page)
        shopper_buys(shop_page)
        shopper_pays_each_way(shop_page)
        shopper_waits_on_a_rendered_page(shopper)
        room_sku = shopper_waits_in_line(shop_page)
        operator_watches_the_line(admin_page, room_sku)
        operator_watches_the_sale(admin_page, sku)
        shopper_taps_the_rain(shop_page, rain)
        operator_watches_the_rain_and_ships(admin_page, sku, rain)
        cash_on_delivery_and_a_return(admin_page, shop_page)
    except Exception:
        # What each page said, to tell a broken page from a refused request.
        for who, page in (("operator", admin_page), ("shopper", shop_page)):
            page.screenshot(path=str(SHOTS / f"failed-{who}.png"), full_page=True)
            print(f"{who} at {page.url}: {page.evaluate('document.body.innerText')}", file=sys.stderr)
        print("\n".join(errors), file=sys.stderr)
        raise
    figures.stop()
    dashboard.render(figures.samples, browser, SHOTS / "dashboard.png")
    browser.close()

assert not errors, "JavaScript errors:\n" + "\n".join(errors)
print(f"console: every page worked in Chromium; screenshots in {SHOTS}")
