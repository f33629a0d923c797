// Operators' pages (#/admin/…): SKUs, the catalog records around them,
// orders and shipping, red-packet rains, hot items, and the live board of
// one sale or rain.

import { api, session, signIn, when, yuan } from './api.js';
import { action, every, errorLine, fill, form, go, h, notice, route, table, view } from './ui.js';

const OP = { role: 'operator' };
const call = (method, path, body) => api(method, path, { ...OP, body });

/** Operator pages need an operator's token: without one, the sign-in page. */
function adminRoute(pattern, render) {
  route(pattern, (params, query) => {
    if (!session.get('operator')) {
      go(`#/admin/login?then=${encodeURIComponent(location.hash)}`);
      return undefined;
    }
    return render(params, query);
  });
}

const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'));

route('/admin/login', (_, query) => {
  view(
    h('h1', {}, 'Operator sign-in'),
    form([
      { name: 'login_name', label: 'Login name', required: true, autocomplete: 'username' },
      { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' },
    ], {}, async (credentials) => {
      session.set('operator', await signIn('/admin/login', credentials));
      notice(`Signed in as ${credentials.login_name}`);
      go(query.get('then') || '#/admin');
    }, 'Sign in'),
  );
});

route('/admin/logout', () => {
  session.clear('operator');
  go('#/admin/login');
});

// ------------------------------------------------------------------- SKUs

const SALE_STATES = { upcoming: 'upcoming', active: 'on now', ended: 'ended', sold_out: 'sold out' };

function saleState(sku) {
  const now = Date.now();
  if (sku.status !== 2) return 'draft';
  if (now < new Date(sku.seckill_begin)) return SALE_STATES.upcoming;
  if (now >= new Date(sku.seckill_end)) return SALE_STATES.ended;
  return 'on sale now';
}

adminRoute('/admin', async () => {
  const { items } = await call('GET', '/admin/skus?limit=100');
  const error = errorLine();
  view(
    h('div', { class: 'title' }, h('h1', {}, 'SKUs'), h('a', { class: 'button primary', href: '#/admin/skus/new' }, 'New SKU')),
    error,
    table([
      { label: 'Name', cell: (s) => h('a', { href: `#/admin/skus/${s.id}` }, s.name) },
      { label: 'Sale price', cell: (s) => yuan(s.seckill_price) },
      { label: 'Units', cell: (s) => String(s.seckill_num) },
      { label: 'Sale', cell: (s) => `${when(s.seckill_begin)} – ${when(s.seckill_end)}` },
      { label: 'State', cell: (s) => h('span', { class: 'status' }, saleState(s)) },
      {
        label: '', cell: (s) => [
          s.status !== 2 ? action('Publish', () => call('POST', `/admin/skus/${s.id}/publish`).then(reload), error, { done: 'Published' }) : null,
          s.status === 2 ? h('a', { class: 'button', href: `#/admin/board/sku/${s.id}` }, 'Live board') : null,
        ],
      },
    ], items, 'No SKUs yet.'),
  );
});

/** Options of a select from a catalog listing: [[id, name], …]. */
async function choices(path) {
  const { items } = await call('GET', `${path}?limit=100`);
  return [['', '—'], ...items.map((record) => [record.id, record.name])];
}

/** Fields the server keeps itself: never sent back on a PUT. */
const SKU_SERVER_FIELDS = ['id', 'status', 'sale_num', 'comment_num', 'create_time', 'update_time', 'published_at', 'shards'];

adminRoute('/admin/skus/:id', async ({ id }) => {
  const creating = id === 'new';
  const now = Date.now();
  const sku = creating
    ? { seckill_begin: new Date(now).toISOString(), seckill_end: new Date(now + 3600e3).toISOString(), pay_timeout_seconds: 900 }
    : await call('GET', `/admin/skus/${id}`);
  const [brands, categories] = await Promise.all([choices('/admin/brands'), choices('/admin/categories')]);
  // The SKU's own brand and category stay choosable even when not among the first 100.
  for (const [list, id, name] of [[brands, sku.brand_id, sku.brand_name], [categories, sku.category1_id, sku.category1_name]]) {
    if (id && !list.some(([value]) => value === id)) list.push([id, name || id]);
  }
  const values = {
    ...sku,
    image: sku.images?.[0],
    ticket_required: sku.guard?.ticket_required,
    challenge_difficulty: sku.guard?.challenge_difficulty,
    min_account_age_hours: sku.guard?.min_account_age_hours,
    waiting_room_rate: sku.guard?.waiting_room_rate,
  };
  const editor = form([
    { name: 'name', label: 'Name', required: true },
    { name: 'price', label: 'Price (¥)', type: 'money', required: true },
    { name: 'seckill_price', label: 'Sale price (¥)', type: 'money', required: true },
    { name: 'seckill_num', label: 'Units on sale', type: 'number', min: 0, required: true },
    { name: 'seckill_begin', label: 'Sale starts', type: 'datetime', required: true },
    { name: 'seckill_end', label: 'Sale ends', type: 'datetime', required: true },
    { name: 'pay_timeout_seconds', label: 'Seconds to pay', type: 'number', min: 1 },
    { name: 'brand_id', label: 'Brand', type: 'select', options: brands },
    { name: 'category1_id', label: 'Category', type: 'select', options: categories },
    { name: 'image', label: 'Image URL', type: 'url' },
    { name: 'ticket_required', label: 'Ask each shopper for a ticket', type: 'checkbox' },
    { name: 'challenge_difficulty', label: 'Proof-of-work difficulty (0–24)', type: 'number', min: 0, max: 24 },
    { name: 'min_account_age_hours', label: 'Accounts older than (hours)', type: 'number', min: 0 },
    { name: 'waiting_room_rate', label: 'Waiting room: shoppers let in a second (0 none)', type: 'number', min: 0, max: 100000 },
  ], values, async (form) => {
    const body = Object.fromEntries(Object.entries(sku).filter(([key]) => !SKU_SERVER_FIELDS.includes(key)));
    const {
      image, ticket_required, challenge_difficulty, min_account_age_hours, waiting_room_rate, ...fields
    } = form;
    Object.assign(body, fields);
    body.images = [image, ...(sku.images || []).slice(1)].filter(Boolean);
    body.brand_name = brands.find(([value]) => value === form.brand_id)?.[1];
    body.category1_name = categories.find(([value]) => value === form.category1_id)?.[1];
    for (const key of ['brand_id', 'category1_id', 'brand_name', 'category1_name']) {
      if (!body[key] || body[key] === '—') delete body[key];
    }
    body.guard = {
      ticket_required,
      challenge_difficulty: challenge_difficulty || 0,
      min_account_age_hours: min_account_age_hours || 0,
      waiting_room_rate: waiting_room_rate || 0,
    };
    const saved = creating ? await call('POST', '/admin/skus', body) : await call('PUT', `/admin/skus/${id}`, body);
    notice(creating ? 'SKU created' : 'SKU saved');
    go(`#/admin/skus/${saved.id}?saved=${Date.now()}`);
  }, creating ? 'Create' : 'Save');
  const error = errorLine();
  const panel = creating ? null : h('div', { class: 'actions' },
    action(sku.status === 2 ? 'Publish again' : 'Publish', async () => {
      const published = await call('POST', `/admin/skus/${id}/publish`);
      notice(`Published: ${published.remaining} on sale`);
      reload();
    }, error, { kind: 'primary' }),
    action('Mark hot', async () => {
      const hot = await call('PUT', `/admin/hot-items/${id}`);
      notice(`Marked hot: stock over ${hot.shards} shard(s)`);
    }, error),
    sku.status === 2 ? h('a', { class: 'button', href: `#/admin/board/sku/${id}` }, 'Live board') : null,
    action('Delete', async () => {
      if (!window.confirm(`Delete ${sku.name}?`)) return;
      await call('DELETE', `/admin/skus/${id}`);
      notice('Deleted');
      go('#/admin');
    }, error, { kind: 'danger' }));
  view(
    h('p', {}, h('a', { href: '#/admin' }, '← SKUs')),
    h('h1', {}, creating ? 'New SKU' : sku.name),
    creating ? null : h('p', { class: 'muted' }, `${saleState(sku)} · id ${id}`),
    panel, error, editor,
  );
});

// ------------------------------------------------- catalog records

const ENABLED = [[1, 'enabled'], [2, 'disabled']];

/** The records every catalog page lists, creates, edits and deletes alike. */
const RECORDS = {
  slots: {
    title: 'Time slots', path: '/admin/slots',
    help: 'The daily timetable shoppers browse by (times in the server’s SLOT_UTC_OFFSET).',
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'starttime', label: 'Starts', type: 'time', required: true },
      { name: 'endtime', label: 'Ends', type: 'time', required: true },
      { name: 'sort', label: 'Order', type: 'number' },
      { name: 'status', label: 'Status', type: 'select', options: ENABLED, numeric: true },
    ],
  },
  brands: {
    title: 'Brands', path: '/admin/brands',
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'letter', label: 'Initial', max: 1 },
      { name: 'image', label: 'Logo URL', type: 'url' },
      { name: 'seq', label: 'Order', type: 'number' },
    ],
  },
  categories: {
    title: 'Categories', path: '/admin/categories',
    help: 'A tree of three levels: a parent of 0 is the top.',
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'parent_id', label: 'Parent id', placeholder: '0' },
      { name: 'is_menu', label: 'In the menu', type: 'select', options: [['1', 'yes'], ['0', 'no']] },
      { name: 'is_show', label: 'Shown', type: 'select', options: [['1', 'yes'], ['0', 'no']] },
      { name: 'seq', label: 'Order', type: 'number' },
    ],
  },
  activities: {
    title: 'Activities', path: '/admin/activities',
    help: 'A promotion grouping SKUs (Double 11, …); link SKUs from the activity’s page.',
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'status', label: 'Status', type: 'select', options: [[1, 'open'], [2, 'not open']], numeric: true },
      { name: 'startdate', label: 'Date', type: 'date' },
      { name: 'begintime', label: 'Begins', type: 'datetime' },
      { name: 'endtime', label: 'Ends', type: 'datetime' },
    ],
  },
};

adminRoute('/admin/records/:kind', async ({ kind }, query) => {
  const spec = RECORDS[kind];
  const editing = query.get('id');
  const [{ items }, current] = await Promise.all([
    call('GET', `${spec.path}?limit=100`),
    editing ? call('GET', `${spec.path}/${encodeURIComponent(editing)}`) : null,
  ]);
  const error = errorLine();
  const editor = form(spec.fields, current || {}, async (values) => {
    const body = { ...(current || {}), ...values };
    // The server works out a slot's or activity's length from its times.
    delete body.id;
    delete body.total_time;
    for (const [key, value] of Object.entries(body)) if (value === undefined) delete body[key];
    if (current) await call('PUT', `${spec.path}/${current.id}`, body);
    else await call('POST', spec.path, body);
    notice(current ? 'Saved' : 'Created');
    go(`#/admin/records/${kind}?saved=${Date.now()}`);
  }, current ? 'Save' : 'Create');
  const columns = spec.fields.slice(0, 4).map((field) => ({
    label: field.label,
    cell: (record) => {
      const value = record[field.name];
      const option = field.options?.find(([choice]) => String(choice) === String(value));
      return option ? option[1] : field.type === 'datetime' ? when(value) : String(value ?? '');
    },
  }));
  columns[0].cell = (record) => h('a', { href: `#/admin/records/${kind}?id=${record.id}` }, record.name);
  columns.push({
    label: '', cell: (record) => [
      kind === 'activities' ? h('a', { class: 'button', href: `#/admin/activities/${record.id}` }, 'SKUs') : null,
      action('Delete', async () => {
        await call('DELETE', `${spec.path}/${record.id}`);
        go(`#/admin/records/${kind}?deleted=${Date.now()}`);
      }, error, { kind: 'danger', done: 'Deleted' }),
    ],
  });
  view(
    h('h1', {}, spec.title),
    spec.help ? h('p', { class: 'muted' }, spec.help) : null,
    error,
    table(columns, items.filter((record) => record.is_del !== 2)),
    h('h2', {}, current ? `Edit ${current.name}` : 'Add one'),
    current ? h('p', {}, h('a', { href: `#/admin/records/${kind}` }, 'Add a new one instead')) : null,
    editor,
  );
});

adminRoute('/admin/activities/:id', async ({ id }) => {
  const [activity, linked, skus] = await Promise.all([
    call('GET', `/admin/activities/${id}`),
    call('GET', `/admin/activities/${id}/skus?limit=100`),
    call('GET', '/admin/skus?limit=100'),
  ]);
  const error = errorLine();
  const names = Object.fromEntries(skus.items.map((sku) => [sku.id, sku.name]));
  const link = form([
    { name: 'sku_id', label: 'SKU', type: 'select', options: skus.items.map((sku) => [sku.id, sku.name]) },
  ], {}, async ({ sku_id: skuId }) => {
    await call('PUT', `/admin/activities/${id}/skus/${skuId}`);
    go(`#/admin/activities/${id}?linked=${Date.now()}`);
  }, 'Link');
  view(
    h('p', {}, h('a', { href: '#/admin/records/activities' }, '← Activities')),
    h('h1', {}, activity.name),
    error,
    table([
      { label: 'SKU', cell: (l) => h('a', { href: `#/admin/skus/${l.sku_id}` }, names[l.sku_id] || l.sku_id) },
      {
        label: '', cell: (l) => action('Unlink', async () => {
          await call('DELETE', `/admin/activities/${id}/skus/${l.sku_id}`);
          go(`#/admin/activities/${id}?unlinked=${Date.now()}`);
        }, error),
      },
    ], linked.items, 'No SKUs linked.'),
    h('h2', {}, 'Link a SKU'),
    link,
  );
});

// ----------------------------------------------------------------- orders

const STATUSES = ['PENDING_PAYMENT', 'PAID', 'CONFIRMED', 'SHIPPED', 'COMPLETED', 'RETURN_REQUESTED', 'RETURNED',
  'CANCELLED'];

adminRoute('/admin/orders', async (_, query) => {
  const status = query.get('status') || 'PAID';
  const cursor = query.get('cursor');
  const page = await call('GET', `/admin/orders?status=${status}&limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
  const error = errorLine();
  view(
    h('h1', {}, 'Orders'),
    h('div', { class: 'chips' }, STATUSES.map((s) => h('a', {
      class: `chip ${s === status ? 'selected' : ''}`, href: `#/admin/orders?status=${s}`,
    }, s.replace('_', ' ').toLowerCase()))),
    error,
    table([
      { label: 'Order', cell: (o) => h('code', {}, o.id) },
      { label: 'Item', cell: (o) => o.name },
      { label: 'Shopper', cell: (o) => o.username },
      { label: 'Price', cell: (o) => yuan(o.price) },
      { label: 'Placed', cell: (o) => when(o.create_time) },
      { label: 'Ship to', cell: (o) => [o.receiver_contact, o.receiver_mobile, o.receiver_address].filter(Boolean).join(', ') || '—' },
      { label: 'Pay', cell: (o) => (o.pay_type === 'cash_on_delivery' ? 'on delivery' : o.pay_method || '—') },
      { label: '', cell: (o) => orderActions(o, status, error) },
    ], page.items, `No ${status.replace('_', ' ').toLowerCase()} orders.`),
    page.next_cursor ? h('a', { class: 'button', href: `#/admin/orders?status=${status}&cursor=${encodeURIComponent(page.next_cursor)}` }, 'Older') : null,
  );
});

/** What an operator can do with an order in its status. */
function orderActions(o, status, error) {
  const step = (label, path, done, body) => action(label, async () => {
    await call('POST', `/admin/orders/${o.id}/${path}`, body);
    go(`#/admin/orders?status=${status}&done=${Date.now()}`);
  }, error, { kind: 'primary', done });
  switch (o.status) {
    case 'PAID':
    case 'CONFIRMED':
      return step('Ship', 'ship', 'Shipped');
    case 'SHIPPED':
      return o.pay_type === 'cash_on_delivery' ? step('Cash collected', 'collect', 'Collected') : `shipped ${when(o.consign_time)}`;
    case 'RETURN_REQUESTED':
      return [o.return_reason ? h('span', { class: 'muted' }, `“${o.return_reason}” `) : null,
        step('Accept return', 'return/accept', 'Return accepted'),
        action('Refuse', async () => {
          const reason = prompt('Why is the return refused?');
          if (!reason) return;
          await call('POST', `/admin/orders/${o.id}/return/refuse`, { reason });
          go(`#/admin/orders?status=${status}&done=${Date.now()}`);
        }, error, { done: 'Return refused' })];
    case 'RETURNED':
      return `refund ${(o.refund_status || '').toLowerCase()}`;
    default:
      return o.consign_time ? `shipped ${when(o.consign_time)}` : '';
  }
}

// ------------------------------------------------------------------ rains

adminRoute('/admin/rains', async () => {
  const { items } = await call('GET', '/admin/red-packets');
  const now = Date.now();
  const create = form([
    { name: 'name', label: 'Name', required: true },
    { name: 'total_amount', label: 'Total (¥)', type: 'money', required: true },
    { name: 'count', label: 'Packets', type: 'number', min: 1, max: 100000, required: true },
    { name: 'min_amount', label: 'Least a packet holds (¥)', type: 'money' },
    { name: 'begin', label: 'Opens', type: 'datetime', required: true },
    { name: 'end', label: 'Closes', type: 'datetime', required: true },
  ], { begin: new Date(now).toISOString(), end: new Date(now + 3600e3).toISOString(), min_amount: 1 }, async (values) => {
    const created = await call('POST', '/admin/red-packets', values);
    notice(`Rain created: ${created.count} packets`);
    go(`#/admin/board/rain/${created.id}`);
  }, 'Create rain');
  view(
    h('h1', {}, 'Red-packet rains'),
    table([
      { label: 'Rain', cell: (r) => h('a', { href: `#/admin/board/rain/${r.id}` }, r.name) },
      { label: 'Total', cell: (r) => yuan(r.total_amount) },
      { label: 'Packets left', cell: (r) => `${r.remaining} of ${r.count}` },
      { label: 'Open', cell: (r) => `${when(r.begin)} – ${when(r.end)}` },
      { label: 'State', cell: (r) => r.state.replace('_', ' ') },
    ], items, 'No rains yet.'),
    h('h2', {}, 'New rain'),
    h('p', { class: 'muted' }, 'The total is split at random into the packets, each at least the least amount, before the rain opens.'),
    create,
  );
});

// -------------------------------------------------------------- hot items

adminRoute('/admin/hot', async () => {
  const { items } = await call('GET', '/admin/hot-items');
  const error = errorLine();
  const mark = form([{ name: 'sku_id', label: 'SKU id', required: true }], {}, async ({ sku_id: skuId }) => {
    const hot = await call('PUT', `/admin/hot-items/${skuId}`);
    notice(`Marked hot: stock over ${hot.shards} shard(s)`);
    go(`#/admin/hot?marked=${Date.now()}`);
  }, 'Mark hot');
  view(
    h('h1', {}, 'Hot items'),
    h('p', { class: 'muted' }, 'Every item counted in the last minute, busiest first. A SKU is found hot when its rate reaches HOT_RATE; marking one ahead of its crowd splits its stock at once.'),
    error,
    table([
      { label: 'Item', cell: (i) => (i.kind === 'sku' ? h('a', { href: `#/admin/skus/${i.id}` }, i.id) : `rain ${i.id}`) },
      { label: 'Per second (10 s)', cell: (i) => i.rate_10s.toFixed(1) },
      { label: 'Per second (60 s)', cell: (i) => i.rate_60s.toFixed(1) },
      { label: 'Hot', cell: (i) => (i.hot ? `yes, ${i.why} ${when(i.since)}` : 'no') },
      {
        label: '', cell: (i) => (i.kind !== 'sku' ? '' : i.hot
          ? action('Unmark', async () => { await call('DELETE', `/admin/hot-items/${i.id}`); go(`#/admin/hot?unmarked=${Date.now()}`); }, error)
          : action('Mark hot', async () => { await call('PUT', `/admin/hot-items/${i.id}`); go(`#/admin/hot?marked=${Date.now()}`); }, error)),
      },
    ], items, 'No traffic in the last minute.'),
    h('h2', {}, 'Mark a SKU hot ahead of its sale'),
    mark,
  );
});

// ------------------------------------------------------------ live board

/** A bar a second for the last minute, each split by answer. */
function trafficChart(seconds, winning) {
  const answered = (second) => Object.values(second.answers).reduce((sum, n) => sum + n, 0);
  const peak = Math.max(1, ...seconds.map((s) => Math.max(s.taps, answered(s))));
  const width = 600;
  const height = 160;
  const bar = width / seconds.length;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'taps a second over the last minute');
  seconds.forEach((second, index) => {
    const won = second.answers[winning] || 0;
    const lost = answered(second) - won;
    let top = height;
    for (const [count, cls] of [[won, 'bar-won'], [lost, 'bar-lost']]) {
      if (!count) continue;
      const size = (count / peak) * (height - 10);
      top -= size;
      const rect = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      Object.entries({ x: index * bar + 1, y: top, width: bar - 2, height: size, class: cls })
        .forEach(([name, value]) => rect.setAttribute(name, value));
      svg.append(rect);
    }
  });
  return svg;
}

function figure(label, value, extra) {
  return h('div', { class: 'figure' }, h('small', {}, label), h('strong', {}, value), extra ? h('small', {}, extra) : null);
}

function progress(label, done, total) {
  const percent = total > 0 ? Math.min(100, Math.round((100 * done) / total)) : 0;
  return h('div', { class: 'progress' }, h('small', {}, `${label}: ${done} of ${total} (${percent}%)`),
    h('div', { class: 'bar' }, h('span', { style: `width:${percent}%` })));
}

adminRoute('/admin/board/:kind/:id', async ({ kind, id }) => {
  const rain = kind === 'rain';
  const live = rain ? `/admin/red-packets/${id}/live` : `/admin/skus/${id}/live`;
  const body = h('div', { class: 'board' });
  const stamp = h('small', { class: 'muted' });
  const error = errorLine();
  let orders = null;
  // The sale's waiting room, if it has one: its public document, as the
  // waiting pages read it.
  let room = null;
  const queue = rain ? `/red-packets/${id}/queue` : `/seckill/items/${id}/queue`;
  const readRoom = async () => {
    try { room = await api('GET', queue); } catch { room = null; }
  };
  const draw = (board) => {
    const winning = rain ? 'CLAIMED' : 'CREATED';
    const answers = Object.entries(board.answers_60s).sort((a, b) => b[1] - a[1]);
    const total = rain ? board.count : board.seckill_num;
    fill(body,
      h('div', { class: 'figures' },
        figure(rain ? 'Packets left' : 'Units left', String(board.remaining ?? '—'), `of ${total}`),
        figure(rain ? 'Claims a second' : 'Grabs a second', board.rate_10s.toFixed(1), 'over 10 s'),
        figure(rain ? 'Claimed' : 'Sold', String((rain ? board.claimed : board.sold) ?? '—')),
        rain ? figure('Credited', yuan(board.credited_amount), `${board.credited} packets`) : figure('State', board.state.replace('_', ' '))),
      room && h('div', { class: 'figures room' },
        figure('Waiting in line', String(room.waiting), `${room.draws} drawn, ${room.arrivals} after the opening`),
        figure('Let in', String(room.admitted), `${room.rate} a second`),
        figure('Called', String(room.called)),
        figure('Abandoned', String(room.abandoned), 'places passed on')),
      progress(rain ? 'Packets claimed' : 'Units sold', (rain ? board.claimed : board.sold) ?? 0, total),
      rain
        ? progress('Payout: claimed packets credited', board.credited, board.claimed)
        : orders && progress('Payment: sold units paid', (orders.PAID || 0) + (orders.SHIPPED || 0) + (orders.COMPLETED || 0), board.sold),
      h('h2', {}, 'The last minute'),
      trafficChart(board.seconds, winning),
      h('p', { class: 'legend' }, h('span', { class: 'bar-won' }, rain ? 'claimed' : 'won'), ' ', h('span', { class: 'bar-lost' }, 'refused'),
        ` · tallest bar ${Math.max(0, ...board.seconds.map((s) => s.taps))} taps`),
      table([
        { label: 'Answer', cell: ([code]) => h('code', {}, code) },
        { label: 'In the last minute', cell: ([, count]) => String(count) },
      ], answers, 'No taps in the last minute.'),
      !rain && orders ? h('p', { class: 'muted' }, 'Orders by status: ',
        Object.entries(orders).map(([status, count]) => `${status.toLowerCase().replace('_', ' ')} ${count}`).join(' · ')) : null,
    );
  };
  // One read at a time, so a slow answer never draws over a newer one.
  let reading = false;
  const refresh = async () => {
    if (reading) return;
    reading = true;
    try {
      const [board] = await Promise.all([call('GET', live), readRoom()]);
      draw(board);
      stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
      error.clear();
    } catch (problem) {
      if (problem.status === 401) go(`#/admin/login?then=${encodeURIComponent(location.hash)}`);
      else error.show(problem);
    } finally {
      reading = false;
    }
  };
  // Orders by status read every order of the sale: every 10 s, not every second.
  const refreshOrders = async () => {
    if (rain) return;
    try { orders = (await call('GET', `/admin/skus/${id}/stats`)).orders; } catch { /* kept from the last read */ }
  };
  const [first] = await Promise.all([call('GET', live), readRoom()]);
  await refreshOrders();
  view(
    h('p', {}, h('a', { href: rain ? '#/admin/rains' : `#/admin/skus/${id}` }, rain ? '← Rains' : '← SKU')),
    h('div', { class: 'title' }, h('h1', {}, `Live: ${first.name}`), stamp),
    error, body,
  );
  draw(first);
  stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
  every(1000, refresh);
  every(10000, refreshOrders);
});
