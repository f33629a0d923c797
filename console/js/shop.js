// Shoppers' pages: today's sales, an item (grab and pay), my orders, the
// red-packet rain and the balance, sign-in and registration.

import {
  api, countdown, hasWaitingRoom, needsTicket, session, signIn, ticketFor, waitInLine, when, yuan,
} from './api.js';
import { action, every, errorLine, form, go, h, notice, onLeave, route, table, view } from './ui.js';

const signedIn = () => session.get('shopper');

/** Sends the shopper to sign in, and back here after. */
function signInFirst() {
  go(`#/login?then=${encodeURIComponent(location.hash)}`);
}

const STATE_WORDS = {
  upcoming: 'Starts in', active: 'On now — ends in', ended: 'Ended', sold_out: 'Sold out',
};

/** A live countdown to the sale's start (upcoming) or end (on now). */
function saleClock(item) {
  const clock = h('span', { class: `clock ${item.state}` });
  const begin = new Date(item.seckill_begin || item.begin);
  const end = new Date(item.seckill_end || item.end);
  const tick = () => {
    const now = Date.now();
    if (item.state === 'upcoming' && now >= begin) item.state = 'active';
    if (item.state === 'active' && now >= end) item.state = 'ended';
    clock.className = `clock ${item.state}`;
    const deadline = item.state === 'upcoming' ? begin : item.state === 'active' ? end : null;
    clock.textContent = deadline
      ? `${STATE_WORDS[item.state]} ${countdown(deadline - now)}`
      : STATE_WORDS[item.state];
  };
  tick();
  every(1000, tick);
  return clock;
}

function stockBar(remaining, total) {
  const percent = total > 0 ? Math.round((100 * remaining) / total) : 0;
  return h('div', { class: 'stock' },
    h('div', { class: 'bar' }, h('span', { style: `width:${percent}%` })),
    h('small', {}, `${remaining} of ${total} left`));
}

function price(item) {
  return h('p', { class: 'price' }, h('strong', {}, yuan(item.seckill_price)), ' ', h('del', {}, yuan(item.price)));
}

// ------------------------------------------------------------------ today

route('/', async (_, query) => {
  const slot = query.get('slot') || '';
  const [slots, items, rains] = await Promise.all([
    api('GET', '/seckill/slots'),
    api('GET', `/seckill/items?limit=50&slot=${encodeURIComponent(slot)}`),
    api('GET', '/red-packets'),
  ]);
  const chip = (id, label, state) => h('a', {
    class: `chip ${state || ''} ${id === slot ? 'selected' : ''}`, href: id ? `#/?slot=${id}` : '#/',
  }, label);
  const raining = rains.items.filter((rain) => rain.state === 'active');
  view(
    raining.length ? h('a', { class: 'rain-banner', href: `#/rain/${raining[0].id}` },
      `🧧 ${raining[0].name}: red packets are falling now — tap to catch one`) : null,
    h('h1', {}, 'Today’s flash sales'),
    h('div', { class: 'chips' }, chip('', 'All'),
      slots.items.map((s) => chip(s.id, `${s.name} · ${s.state}`, s.state))),
    items.items.length
      ? h('div', { class: 'cards' }, items.items.map((item) => h('a', { class: 'card', href: `#/items/${item.id}` },
        item.images?.[0] ? h('img', { src: item.images[0], alt: '' }) : h('div', { class: 'placeholder' }, '秒'),
        h('h2', {}, item.name),
        price(item),
        stockBar(item.remaining, item.seckill_num),
        saleClock(item))))
      : h('p', { class: 'muted' }, 'Nothing on sale in this slot.'),
  );
});

// ------------------------------------------------------------------- item

route('/items/:id', async ({ id }) => {
  const item = await api('GET', `/seckill/items/${id}`);
  const stock = h('div', {}, stockBar(item.remaining, item.seckill_num));
  const result = h('div', { class: 'result' });
  const error = errorLine();
  const room = hasWaitingRoom(item.guard);
  // A wait in line ends with the page: no grab for a page the shopper left.
  const leaving = new AbortController();
  onLeave(() => leaving.abort());
  const label = room ? 'Join the line' : 'Grab it';
  const line = h('p', { class: 'line', id: 'line', hidden: true });
  const grab = h('button', {
    class: 'primary big',
    onclick: async () => {
      if (!signedIn()) { signInFirst(); return; }
      error.clear();
      grab.disabled = true;
      try {
        if (room) {
          grab.textContent = 'In line…';
          line.hidden = false;
          await waitInLine(`/seckill/items/${id}`, (words) => { line.textContent = words; }, leaving.signal);
          line.textContent = 'Your turn: grabbing now.';
        }
        grab.textContent = needsTicket(item.guard) ? 'Getting a ticket…' : 'Grabbing…';
        const headers = needsTicket(item.guard)
          ? { 'Sale-Ticket': await ticketFor(`/seckill/items/${id}`) } : {};
        const order = await api('POST', `/seckill/items/${id}/grab`, { role: 'shopper', headers });
        result.replaceChildren(orderToPay(order));
        refresh();
      } catch (problem) {
        error.show(problem);
      } finally {
        grab.disabled = false;
        grab.textContent = label;
      }
    },
  }, label);
  // Each read counts as a view toward hot-item discovery: a tab in the
  // background does not read, one in view reads every 5 s.
  const refresh = async () => {
    if (document.hidden) return;
    try {
      const fresh = await api('GET', `/seckill/items/${id}`);
      stock.replaceChildren(stockBar(fresh.remaining, fresh.seckill_num));
    } catch { /* the next refresh tries again */ }
  };
  every(5000, refresh);
  view(
    h('p', {}, h('a', { href: '#/' }, '← Today’s sales')),
    h('article', { class: 'item' },
      item.images?.[0] ? h('img', { src: item.images[0], alt: '' }) : h('div', { class: 'placeholder' }, '秒'),
      h('h1', {}, item.name),
      price(item),
      saleClock(item),
      stock,
      h('p', { class: 'muted' }, `One per shopper. Pay within ${Math.round(item.pay_timeout_seconds / 60)} minutes of grabbing.`,
        room ? ` This sale has a waiting room: join its line, before the opening or after; it is let in ${item.guard.waiting_room_rate} a second.`
          : needsTicket(item.guard) ? ' This sale asks your browser for a ticket first (a short proof of work).' : ''),
      h('div', { class: 'actions' }, grab),
      line,
      error,
      result),
  );
});

/**
 * The ways to pay offered here, asked once per page load: `methods`, and
 * `stripe` (its publishable key and Stripe.js) when the shop may take cards.
 * Without it Stripe is left to clients that carry their own Stripe.js.
 */
let offered;
function payOptions() {
  offered ??= api('GET', '/payments/methods').then(
    (answer) => ({ ...answer, methods: answer.methods.filter((m) => m !== 'stripe' || answer.stripe) }),
    () => ({ methods: ['sandbox'] }),
  );
  return offered;
}

const METHOD_WORDS = {
  alipay: '支付宝 Alipay', wechat: '微信支付 WeChat Pay', stripe: 'Card (Stripe)', cod: '货到付款 Cash on delivery',
};

/** The order just won: a countdown to its deadline and the pay buttons. */
function orderToPay(order) {
  const box = h('div', { class: 'won' });
  const deadline = new Date(order.pay_deadline);
  const clock = h('strong', {});
  const tick = () => { clock.textContent = countdown(deadline - Date.now()); };
  tick();
  every(1000, tick);
  box.append(h('h2', {}, 'You got one!'), h('p', {}, 'Pay within ', clock, ' or it goes back on sale.'),
    payChoice(order.order_id, order.price, box));
  return box;
}

/**
 * A button per way to pay. The sandbox answers at once; Alipay's cashier
 * is a page of its own that sends the shopper back here; WeChat Pay's is a
 * QR code for the phone; Stripe's a card form of Stripe.js; cash on
 * delivery confirms.
 */
function payChoice(orderId, amount, box) {
  const buttons = h('div', { class: 'actions pay-methods' });
  const error = errorLine();
  payOptions().then(({ methods }) => buttons.replaceChildren(...methods.map((method) => {
    const button = h('button', {
      class: method === 'sandbox' ? 'primary' : '',
      onclick: async () => {
        error.clear();
        button.disabled = true;
        try {
          const paid = await api('POST', `/orders/${orderId}/pay`, { role: 'shopper', body: { method } });
          await payment(paid, box);
        } catch (problem) {
          error.show(problem);
          button.disabled = false;
        }
      },
    }, METHOD_WORDS[method] || `Pay ${yuan(amount)}`);
    return button;
  })));
  return h('div', {}, buttons, error);
}

/** Shows what became of a pay, or takes the shopper where it finishes. */
async function payment(order, box) {
  const action = order.pay_action;
  if (action?.kind === 'redirect') {
    location.assign(action.url);
  } else if (action?.kind === 'qr_code') {
    box.replaceChildren(h('h2', {}, '微信支付 WeChat Pay'), qrCode(action.code_url),
      h('p', {}, 'Scan the code with WeChat to pay ', h('strong', {}, yuan(order.price)), '. ',
        h('a', { href: action.code_url, target: '_blank', rel: 'noopener', class: 'code-link' }, 'Open the code')),
      h('p', { class: 'muted waiting' }, 'Waiting for WeChat Pay…'));
    waitForPayment(order.id, box);
  } else if (action?.kind === 'client_secret') {
    await cardForm(order, action.client_secret, box);
  } else {
    box.replaceChildren(...settled(order));
  }
}

/**
 * Stripe's card form, drawn by Stripe.js from where the API says (Stripe's
 * own; a stand-in locally): the card goes to Stripe, never to this shop.
 * Confirmed, the page waits for Stripe's webhook to say the order is paid.
 */
async function cardForm(order, clientSecret, box) {
  const { stripe } = await payOptions();
  if (!window.Stripe) {
    await new Promise((resolve, reject) => {
      document.head.append(h('script', { src: stripe.js, onload: resolve, onerror: () => reject(new Error('Stripe.js did not load')) }));
    });
  }
  const client = window.Stripe(stripe.publishable_key);
  const card = client.elements().create('card');
  const fields = h('div', { class: 'card-fields' });
  const error = errorLine();
  const pay = h('button', {
    class: 'primary',
    onclick: async () => {
      pay.disabled = true;
      error.clear();
      const result = await client.confirmCardPayment(clientSecret, { payment_method: { card } });
      if (result.error) {
        error.show(result.error.message || 'The card was not accepted');
        pay.disabled = false;
      } else {
        box.replaceChildren(h('h2', {}, 'Card (Stripe)'), h('p', { class: 'muted waiting' }, 'Waiting for Stripe…'));
        waitForPayment(order.id, box);
      }
    },
  }, `Pay ${yuan(order.price)} by card`);
  box.replaceChildren(h('h2', {}, 'Card (Stripe)'), fields, h('div', { class: 'actions' }, pay), error);
  card.mount(fields);
}

/** What an order no longer waiting for payment tells its shopper. */
function settled(order) {
  const more = h('a', { href: '#/orders' }, 'See my orders');
  switch (order.status) {
    case 'CONFIRMED':
      return [h('h2', {}, 'Confirmed ✓'), h('p', {}, `Pay the courier ${yuan(order.price)} on delivery. `, more)];
    case 'CANCELLED':
      return [h('h2', {}, 'Cancelled'), h('p', {}, 'The time to pay ran out, or it was cancelled; the unit went back on sale. ',
        'A payment made anyway is refunded. ', more)];
    default:
      return [h('h2', {}, 'Paid ✓'), h('p', {}, `${yuan(order.price)} paid, transaction ${order.transaction_id}. `, more)];
  }
}

/** A QR code of `text`, drawn here (no image service sees the code). */
function qrCode(text) {
  const figure = h('div', { class: 'qr', role: 'img', 'aria-label': 'QR code to scan with WeChat' });
  import('./vendor/qrcode.mjs').then(({ default: qrcode }) => {
    const code = qrcode(0, 'M');
    code.addData(text);
    code.make();
    figure.innerHTML = code.createSvgTag({ cellSize: 4, margin: 2, scalable: true });
  });
  return figure;
}

/**
 * Asks the order until the provider's notification (or the job's query)
 * has moved it: the provider, not the page, says whether it is paid.
 */
function waitForPayment(orderId, box) {
  let asking = false;
  let done = false;
  every(1000, async () => {
    if (asking || done) return;
    asking = true;
    try {
      const order = await api('GET', `/orders/${orderId}`, { role: 'shopper' });
      const waiting = box.querySelector('.waiting');
      if (order.status !== 'PENDING_PAYMENT') {
        done = true;
        box.replaceChildren(...settled(order));
      } else if (order.payment_failure && waiting) waiting.textContent = `Declined: ${order.payment_failure}. Try again.`;
    } catch { /* asked again in a second */ } finally { asking = false; }
  });
}

// ------------------------------------------------------------- my orders

const ORDER_WORDS = {
  PENDING_PAYMENT: 'to pay', PAID: 'paid', CONFIRMED: 'pay on delivery', SHIPPED: 'shipped', COMPLETED: 'received',
  RETURN_REQUESTED: 'return asked', RETURNED: 'returned', CANCELLED: 'cancelled',
};

route('/orders', async () => {
  if (!signedIn()) { signInFirst(); return; }
  const error = errorLine();
  const act = (label, path) => action(label, async () => {
    await api('POST', path, { role: 'shopper' });
    go(`#/orders?${Date.now()}`);
  }, error, { done: `Order ${label.toLowerCase()}: done` });
  const { items } = await api('GET', '/orders?limit=50', { role: 'shopper' });
  view(h('h1', {}, 'My orders'), error, table([
    { label: 'Item', cell: (o) => h('a', { href: `#/items/${o.sku_id}` }, o.name) },
    { label: 'Price', cell: (o) => yuan(o.price) },
    { label: 'Status', cell: (o) => h('span', { class: `status ${o.status}` }, ORDER_WORDS[o.status] || o.status) },
    { label: 'When', cell: (o) => when(o.create_time) },
    {
      label: '', cell: (o) => ({
        PENDING_PAYMENT: [h('a', { class: 'button primary', href: `#/orders/${o.id}` }, 'Pay'),
          act('Cancel', `/orders/${o.id}/cancel`)],
        SHIPPED: o.pay_type === 'online' ? [act('Received', `/orders/${o.id}/receive`)] : '',
        COMPLETED: [o.return_refusal ? h('span', { class: 'muted' }, `Return refused: ${o.return_refusal} `) : null,
          act('Return', `/orders/${o.id}/return`)],
        RETURN_REQUESTED: o.return_reason || '',
      })[o.status] || '',
    },
  ], items, 'No orders yet: grab something on the first page.'));
});

/**
 * One order: paid or not, and the way to pay while it is open. The
 * provider's cashier sends the shopper back here, before or after its
 * notification: the page waits for the order to say.
 */
route('/orders/:id', async ({ id }) => {
  if (!signedIn()) { signInFirst(); return; }
  const order = await api('GET', `/orders/${id}`, { role: 'shopper' });
  const box = h('div', { class: 'won' });
  if (order.status !== 'PENDING_PAYMENT') {
    box.replaceChildren(...(['PAID', 'CONFIRMED', 'CANCELLED'].includes(order.status)
      ? settled(order) : [h('h2', {}, ORDER_WORDS[order.status] || order.status)]));
  } else if (order.pay_method && order.pay_method !== 'sandbox' && !order.payment_failure) {
    box.replaceChildren(h('h2', {}, 'Waiting for the payment'),
      h('p', { class: 'muted waiting' }, `Waiting for ${METHOD_WORDS[order.pay_method] || order.pay_method} to confirm…`),
      payChoice(order.id, order.price, box));
    waitForPayment(order.id, box);
  } else {
    box.replaceChildren(h('h2', {}, `Pay ${yuan(order.price)}`),
      h('p', {}, 'Before ', when(order.pay_deadline), ', or it goes back on sale.'),
      order.payment_failure ? h('p', { class: 'error' }, `Declined: ${order.payment_failure}`) : null,
      payChoice(order.id, order.price, box));
  }
  view(h('p', {}, h('a', { href: '#/orders' }, '← My orders')), h('h1', {}, order.name), box);
});

// ------------------------------------------------------------------ rain

route('/rain', async () => {
  const { items } = await api('GET', '/red-packets');
  view(h('h1', {}, 'Red-packet rain'), table([
    { label: 'Rain', cell: (r) => h('a', { href: `#/rain/${r.id}` }, r.name) },
    { label: 'Packets', cell: (r) => `${r.remaining} of ${r.count} left` },
    { label: 'When', cell: (r) => saleClock({ ...r, state: r.state }) },
  ], items, 'No rain today. Come back later.'));
});

route('/rain/:id', async ({ id }) => {
  const { items } = await api('GET', '/red-packets');
  const rain = items.find((r) => r.id === id);
  if (!rain) { view(h('h1', {}, 'This rain is over'), h('p', {}, h('a', { href: '#/rain' }, 'See the rains'))); return; }
  const stage = h('div', { class: 'stage', 'aria-label': 'Falling red packets: tap one' });
  const status = h('p', { class: 'rain-status' }, 'Tap a falling packet!');
  const error = errorLine();
  let done = false;
  const leaving = new AbortController();
  onLeave(() => leaving.abort());
  // One claim at a time: a second tap while the first is answered would
  // only be told ALREADY_CLAIMED.
  let claiming = false;
  const finish = (words) => {
    done = true;
    status.replaceChildren(...words);
    stage.classList.add('over');
  };
  const tap = async (packet) => {
    if (done || claiming || packet.classList.contains('tapped')) return;
    if (!signedIn()) { signInFirst(); return; }
    packet.classList.add('tapped');
    claiming = true;
    error.clear();
    try {
      if (hasWaitingRoom(rain.guard)) {
        await waitInLine(`/red-packets/${id}`, (words) => { status.textContent = words; }, leaving.signal);
        status.textContent = 'Your turn: catching it now.';
      }
      const headers = needsTicket(rain.guard) ? { 'Sale-Ticket': await ticketFor(`/red-packets/${id}`) } : {};
      const won = await api('POST', `/red-packets/${id}/claim`, { role: 'shopper', headers });
      finish([h('strong', { class: 'amount' }, yuan(won.amount)), ' is yours! It reaches your ',
        h('a', { href: '#/balance' }, 'balance'), ' within seconds.']);
    } catch (problem) {
      if (problem.code === 'ALREADY_CLAIMED') {
        finish(['You already caught ', h('strong', {}, yuan(problem.body.amount)), ' from this rain. ',
          h('a', { href: '#/balance' }, 'See your balance')]);
      } else if (problem.code === 'EXHAUSTED') {
        finish(['Every packet has been caught. Better luck next rain!']);
      } else {
        error.show(problem);
      }
    } finally {
      claiming = false;
    }
  };
  const begin = new Date(rain.begin);
  const end = new Date(rain.end);
  // Packets fall only while the rain is open: one waited for starts on its
  // own, and an ended one stops.
  const drop = () => {
    const now = Date.now();
    if (now >= end) stage.classList.add('over');
    if (done || document.hidden || now < begin || now >= end) return;
    const packet = h('button', {
      class: 'packet', 'aria-label': 'red packet',
      style: `left:${5 + Math.random() * 80}%;animation-duration:${2.5 + Math.random() * 2}s`,
      onclick: () => tap(packet),
    }, '福');
    packet.addEventListener('animationend', () => packet.remove());
    stage.append(packet);
  };
  if (rain.state === 'sold_out') finish(['Every packet has been caught. Better luck next rain!']);
  every(350, drop);
  view(
    h('h1', {}, `🧧 ${rain.name}`),
    h('p', {}, `${yuan(rain.total_amount)} in ${rain.count} packets · `, saleClock(rain)),
    status, error, stage,
  );
  onLeave(() => { done = true; });
});

// --------------------------------------------------------------- balance

route('/balance', async () => {
  if (!signedIn()) { signInFirst(); return; }
  const balance = await api('GET', '/me/balance?limit=50', { role: 'shopper' });
  view(
    h('h1', {}, 'My balance'),
    h('p', { class: 'balance' }, yuan(balance.balance)),
    h('p', { class: 'muted' }, 'Packets you catch are credited by the payout job within seconds.'),
    table([
      { label: 'Packet', cell: (c) => c.red_packet_id },
      { label: 'Amount', cell: (c) => yuan(c.amount) },
      { label: 'Credited', cell: (c) => when(c.credited_at) },
    ], balance.credits, 'No packets yet: catch one in the rain.'),
  );
});

// -------------------------------------------------------- sign in / up

async function signInAs(username, password, then) {
  session.set('shopper', { ...await signIn('/auth/login', { username, password }), username });
  notice(`Signed in as ${username}`);
  go(then || '#/');
}

/** A shopper's name and password; `use` is the password's autocomplete (current- or new-password). */
const credentials = (use) => [
  { name: 'username', label: 'Username', required: true, autocomplete: 'username' },
  { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: use },
];

route('/login', (_, query) => {
  view(
    h('h1', {}, 'Sign in'),
    form(credentials('current-password'), {},
      ({ username, password }) => signInAs(username, password, query.get('then')), 'Sign in'),
    h('p', {}, 'New here? ', h('a', { href: `#/register?${query}` }, 'Create an account')),
  );
});

route('/register', (_, query) => {
  view(
    h('h1', {}, 'Create an account'),
    form([...credentials('new-password'), { name: 'phone', label: 'Phone (optional)', type: 'tel' }], {}, async (values) => {
      await api('POST', '/auth/register', { body: values });
      await signInAs(values.username, values.password, query.get('then'));
    }, 'Create account'),
  );
});

route('/logout', () => {
  session.clear('shopper');
  go('#/');
});
