// The JSON API: requests with the signed-in role's token, problem details
// turned into errors that read as words, money and time as people read them.

const base = (window.FLASHSALE_API || '').replace(/\/$/, '');

/** An RFC 9457 problem (or a network failure) as an Error whose message is the problem's words. */
export class Problem extends Error {
  constructor(status, body, retryAfter) {
    super(body.detail || body.title || body.message || `The server answered ${status}`);
    this.status = status;
    this.code = body.code || (status ? `HTTP_${status}` : 'NETWORK');
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

const keys = { shopper: 'flashsale.shopper', operator: 'flashsale.operator' };

/** Each role's token, kept in this browser until it expires or is refused. */
export const session = {
  get(role) {
    try {
      const saved = JSON.parse(localStorage.getItem(keys[role]));
      if (saved && new Date(saved.expires_at) > new Date()) return saved;
    } catch { /* nothing saved */ }
    return null;
  },
  set(role, value) { localStorage.setItem(keys[role], JSON.stringify(value)); },
  clear(role) { localStorage.removeItem(keys[role]); },
};

/**
 * One request. `role` sends that role's token; `body` goes as JSON.
 * Resolves to the parsed JSON (null for 204); rejects with a Problem.
 */
export async function api(method, path, { role, body, headers = {} } = {}) {
  const sent = { ...headers };
  const signedIn = role && session.get(role);
  if (signedIn) sent.Authorization = `Bearer ${signedIn.token}`;
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(base + path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      // Pages load one after another: a request that hangs must not hold the next page.
      signal: AbortSignal.timeout(15000),
    });
  } catch {
    throw new Problem(0, { title: 'The server cannot be reached: check the connection and try again.' });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!response.ok) {
    // A token the server no longer takes is dropped, so the page asks to sign in again.
    if (response.status === 401 && signedIn) session.clear(role);
    const problem = data && typeof data === 'object' ? data : { title: text || response.statusText };
    throw new Problem(response.status, problem, response.headers.get('Retry-After'));
  }
  return data;
}

/** Integer cents as yuan: 990 → "¥9.90". */
export function yuan(cents) {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}¥${Math.trunc(abs / 100).toLocaleString('en')}.${String(abs % 100).padStart(2, '0')}`;
}

/** Yuan as typed ("9.9") → integer cents (990), or NaN. */
export function cents(text) {
  const match = /^\s*(\d+)(?:\.(\d{0,2}))?\s*$/.exec(String(text));
  if (!match) return NaN;
  return Number(match[1]) * 100 + Number((match[2] || '').padEnd(2, '0'));
}

export function when(instant) {
  return instant ? new Date(instant).toLocaleString() : '—';
}

/** "2d 03:04:05" / "03:04:05" until `ms` passes. */
export function countdown(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86400);
  const clock = [Math.floor(total / 3600) % 24, Math.floor(total / 60) % 60, total % 60]
    .map((n) => String(n).padStart(2, '0')).join(':');
  return days ? `${days}d ${clock}` : clock;
}

/** An instant as the value of an <input type="datetime-local"> (local time). */
export function localInput(instant) {
  const date = new Date(instant);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

/** Whether a sale's guard has a waiting room (as the server's `Guard::has_waiting_room`). */
export function hasWaitingRoom(guard) {
  return Boolean(guard && guard.waiting_room_rate > 0);
}

/** Whether a sale's guard asks each tap for a ticket (as the server's `Guard::needs_ticket`). */
export function needsTicket(guard) {
  return Boolean(guard && (guard.ticket_required || guard.challenge_difficulty > 0 || hasWaitingRoom(guard)));
}

/** Where a place stands in a room's line, in words. */
function standing(place, room) {
  if (Date.parse(room.server_time) < Date.parse(room.opens_at)) {
    return `You have a place in the line. At the opening, the ${room.draws} places taken before it `
      + 'are called in a random order, so there is no need to hurry.';
  }
  const position = place.place === 'drawn'
    ? Math.floor((place.draw / 2 ** 53) * room.draws)
    : room.draws + place.number - 1;
  const ahead = Math.max(0, position - room.called);
  const seconds = Math.ceil(ahead / Math.max(1, room.rate));
  return `About ${ahead} ahead of you (${room.rate} called a second, so about ${countdown(seconds * 1000)}). `
    + 'Keep this page open; coming back later keeps your place.';
}

/**
 * Waits in a sale's waiting room until the shopper's place is called:
 * takes the place (or finds it again: coming back keeps it), then reads the
 * room's document once a second, which the edge keeps a second, so the
 * wait costs no function, and tells `progress` where the line stands.
 * `sale` is as for `ticketFor`. Stops, with a Problem, when `signal` is
 * aborted (the page was left) or the room is gone (the sale deleted, or
 * its room turned off).
 */
export async function waitInLine(sale, progress, signal) {
  const place = await api('POST', `${sale}/queue`, { role: 'shopper' });
  for (;;) {
    if (signal?.aborted) throw new Problem(0, { title: 'You left the line.' });
    let reply = null;
    try {
      reply = await fetch(`${base}${sale}/queue`, { cache: 'no-store' });
    } catch { /* the next look tries again */ }
    if (reply && (reply.status === 404 || reply.status === 409)) {
      throw new Problem(reply.status, await reply.json().catch(() => ({ title: 'The line is gone.' })));
    }
    if (reply?.ok) {
      const room = await reply.json();
      const called = place.place === 'drawn'
        ? room.last_called_draw !== null && place.draw <= room.last_called_draw
        : place.number <= room.arrivals_called;
      if (called) return;
      progress(standing(place, room));
    }
    await new Promise((resolve) => { setTimeout(resolve, 1000); });
  }
}

function zeroBits(digest) {
  let bits = 0;
  for (const byte of new Uint8Array(digest)) { bits += byte ? Math.clz32(byte) - 24 : 8; if (byte) break; }
  return bits;
}

/**
 * The first nonce whose SHA-256 (after the challenge) starts with
 * `difficulty` zero bits. Nonces are tried 256 at a time: WebCrypto answers
 * each digest asynchronously, and one at a time that wait, not the hashing,
 * dominates.
 */
async function solve(challenge, difficulty) {
  const utf8 = new TextEncoder();
  const batch = 256;
  for (let first = 0; ; first += batch) {
    const digests = await Promise.all(Array.from({ length: batch },
      (_, i) => crypto.subtle.digest('SHA-256', utf8.encode(challenge + (first + i)))));
    const found = digests.findIndex((digest) => zeroBits(digest) >= difficulty);
    if (found >= 0) return String(first + found);
  }
}

/**
 * The sale's challenge. A waiting room that called this place may still
 * ask it to wait a moment (`IN_LINE`: others took the places it left, or
 * the rate has no room for one more this instant): it asks again when told.
 */
async function challengeOf(sale) {
  for (let tries = 1; ; tries += 1) {
    try {
      return await api('GET', `${sale}/challenge`, { role: 'shopper' });
    } catch (problem) {
      if (problem.code !== 'IN_LINE' || tries >= 60) throw problem;
      const seconds = Number(problem.retryAfter) || 1;
      await new Promise((resolve) => { setTimeout(resolve, seconds * 1000); });
    }
  }
}

/**
 * A ticket for a guarded sale: fetch the challenge, solve it, trade both
 * for a ticket. `sale` is `/seckill/items/{id}` or `/red-packets/{id}`.
 */
export async function ticketFor(sale) {
  const { challenge, difficulty } = await challengeOf(sale);
  const { ticket } = await api('POST', `${sale}/ticket`, {
    role: 'shopper', body: { challenge, nonce: await solve(challenge, difficulty) },
  });
  return ticket;
}

/**
 * A sign-in (`path` is `/auth/login` or `/admin/login`). An account that has
 * seen many attempts lately answers CHALLENGE_REQUIRED with a challenge:
 * it is solved here and the sign-in sent again with it, once.
 */
export async function signIn(path, credentials) {
  try {
    return await api('POST', path, { body: credentials });
  } catch (problem) {
    if (problem.code !== 'CHALLENGE_REQUIRED') throw problem;
    const { challenge, difficulty } = problem.body;
    const solution = { challenge, nonce: await solve(challenge, difficulty) };
    return api('POST', path, { body: { ...credentials, solution } });
  }
}
