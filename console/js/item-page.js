// The script of a rendered item page (items/{sku_id}.html, 模板静态化):
// the page itself is static, rendered at publish and served by the edge;
// this asks only the stock document, which the edge keeps a second. The
// countdown runs on the server's clock (a shopper's own is often minutes
// off), and the buy button turns on only while the sale is open, or, when
// the sale has a waiting room, until it ends: the shopper joins its line and
// the page grabs when their turn comes.

import {
  api, countdown, hasWaitingRoom, needsTicket, session, ticketFor, waitInLine,
} from './api.js';

const sale = document.getElementById('sale');
const sku = sale.dataset.sku;
const shop = sale.dataset.shop;
const guard = JSON.parse(sale.dataset.guard || '{}');
const [clock, stock, grab, error, result, line] = ['clock', 'stock', 'grab', 'error', 'result', 'line']
  .map((id) => document.getElementById(id));
const room = hasWaitingRoom(guard);
if (room) grab.textContent = 'Join the line';

// What the last poll said; until it answers, the window the page was
// rendered with.
let level = { state: 'upcoming', remaining: null, begin: sale.dataset.begin, end: sale.dataset.end };
// The server's clock less this machine's, as of the last poll.
let offset = 0;
let grabbing = false;
let won = false;

/** Where the sale stands now on the server's clock. */
function stateNow() {
  const now = Date.now() + offset;
  if (level.state === 'sold_out') return 'sold_out';
  if (now < Date.parse(level.begin)) return 'upcoming';
  if (now >= Date.parse(level.end)) return 'ended';
  return 'active';
}

function render() {
  const state = stateNow();
  const now = Date.now() + offset;
  clock.className = `clock ${state}`;
  clock.textContent = {
    upcoming: () => `Starts in ${countdown(Date.parse(level.begin) - now)}`,
    active: () => `On now — ends in ${countdown(Date.parse(level.end) - now)}`,
    sold_out: () => 'Sold out',
    ended: () => 'Ended',
  }[state]();
  if (level.remaining !== null) stock.textContent = `${level.remaining} left`;
  const open = state === 'active' || (room && state === 'upcoming');
  grab.disabled = !open || grabbing || won;
}

/**
 * Asks the stock document, from the page's own origin: the edge that served
 * the page (CloudFront, or nginx locally) keeps it for a second, where the
 * API's own address would reach a function on every poll. The browser
 * keeps no copy (`no-store`), and the edge says how old its copy is
 * (`Age`), which the clock takes into account.
 */
async function poll() {
  try {
    const asked = Date.now();
    const reply = await fetch(`/seckill/items/${sku}/stock`, { cache: 'no-store' });
    if (!reply.ok) return;
    const doc = await reply.json();
    const age = Number(reply.headers.get('age') || 0) * 1000;
    const answered = Date.now();
    offset = Date.parse(doc.server_time) + age + (answered - asked) / 2 - answered;
    level = doc;
  } catch { /* the next poll tries again */ }
  render();
}

grab.addEventListener('click', async () => {
  if (!session.get('shopper')) {
    location.href = `${shop}#/login?then=${encodeURIComponent(`#/items/${sku}`)}`;
    return;
  }
  grabbing = true;
  error.hidden = true;
  render();
  try {
    if (room) {
      line.hidden = false;
      await waitInLine(`/seckill/items/${sku}`, (words) => { line.textContent = words; });
      line.textContent = 'Your turn: grabbing now.';
    }
    const headers = needsTicket(guard) ? { 'Sale-Ticket': await ticketFor(`/seckill/items/${sku}`) } : {};
    const order = await api('POST', `/seckill/items/${sku}/grab`, { role: 'shopper', headers });
    won = true;
    const pay = document.createElement('a');
    pay.className = 'button primary';
    pay.href = `${shop}#/orders/${encodeURIComponent(order.order_id)}`;
    pay.textContent = 'Pay now';
    const words = document.createElement('p');
    words.textContent = 'You got one! Pay before its deadline or it goes back on sale. ';
    words.append(pay);
    result.replaceChildren(words);
    result.className = 'won';
  } catch (problem) {
    error.hidden = false;
    error.textContent = `${problem.message} (${problem.code || 'ERROR'})`;
  } finally {
    grabbing = false;
    render();
  }
});

render();
poll();
setInterval(poll, 1000);
setInterval(render, 250);
