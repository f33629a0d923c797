// The few pieces every page is built from: elements, forms, tables, the
// error line, and the hash router with per-page timers.

import { Problem, cents, localInput } from './api.js';

/** An element: h('button', { class: 'primary', onclick }, 'Grab'). */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = value;
    else if (name === 'text') element.textContent = value;
    else if (name in element && typeof value !== 'string') element[name] = value;
    else element.setAttribute(name, value === true ? '' : value);
  }
  element.append(...children.flat(Infinity).filter(shown));
  return element;
}

/** Whether a child is shown: null, undefined and false are parts a page leaves out. */
function shown(child) {
  return child !== null && child !== undefined && child !== false;
}

/** A line that says what went wrong, in the problem's words. */
export function errorLine() {
  const line = h('p', { class: 'error', role: 'alert', hidden: true });
  line.show = (error) => {
    line.hidden = false;
    line.replaceChildren(...problemWords(error));
  };
  line.clear = () => { line.hidden = true; line.replaceChildren(); };
  return line;
}

/** The problem's own words (its `detail`), capitalised, and its stable code. */
function problemWords(error) {
  const message = String(error.message || error);
  const words = message.charAt(0).toUpperCase() + message.slice(1);
  return error instanceof Problem ? [words, ' ', h('code', {}, error.code)] : [words];
}

/** Runs an action from a button; says what happened or what went wrong. */
export function action(label, run, error, { done, kind } = {}) {
  const button = h('button', {
    class: kind,
    onclick: async () => {
      error.clear();
      button.disabled = true;
      try {
        await run();
        if (done) notice(done);
      } catch (problem) {
        error.show(problem);
      } finally {
        button.disabled = false;
      }
    },
  }, label);
  return button;
}

/** Shows a message at the top of the page for a few seconds. */
export function notice(message, kind = 'ok') {
  const box = document.getElementById('notice');
  box.className = kind;
  box.textContent = message;
  box.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

/**
 * A form from field specs: { name, label, type, required, options, step, help }.
 * Types: text, number, money (yuan in, cents out), datetime, date, time,
 * select, checkbox, password. `submit(values)` may throw a Problem: it is shown under the form.
 */
export function form(fields, values, submit, label = 'Save') {
  const error = errorLine();
  const inputs = {};
  const rows = fields.map((field) => {
    const input = field.type === 'select'
      ? h('select', { name: field.name }, field.options.map(([value, text]) => h('option', { value }, text)))
      : h('input', {
        name: field.name,
        type: { money: 'text', datetime: 'datetime-local' }[field.type] || field.type || 'text',
        inputmode: field.type === 'money' ? 'decimal' : undefined,
        required: field.required,
        step: field.type === 'time' ? 1 : field.step,
        min: field.min,
        max: field.max,
        autocomplete: field.autocomplete,
        placeholder: field.placeholder,
      });
    setValue(input, field, values[field.name]);
    inputs[field.name] = input;
    return h('label', { class: field.type === 'checkbox' ? 'check' : '' }, h('span', {}, field.label), input,
      field.help ? h('small', {}, field.help) : null);
  });
  const button = h('button', { type: 'submit', class: 'primary' }, label);
  const element = h('form', {
    class: 'fields',
    onsubmit: async (event) => {
      event.preventDefault();
      error.clear();
      button.disabled = true;
      try {
        await submit(Object.fromEntries(fields.map((field) => [field.name, readValue(inputs[field.name], field)])));
      } catch (problem) {
        error.show(problem);
      } finally {
        button.disabled = false;
      }
    },
  }, rows, h('div', { class: 'actions' }, button), error);
  element.inputs = inputs;
  return element;
}

function setValue(input, field, value) {
  if (value === undefined || value === null) return;
  if (field.type === 'checkbox') input.checked = Boolean(value);
  else if (field.type === 'money') input.value = (value / 100).toFixed(2);
  else if (field.type === 'datetime') input.value = localInput(value);
  else input.value = String(value);
}

function readValue(input, field) {
  const raw = input.value.trim();
  switch (field.type) {
    case 'checkbox': return input.checked;
    case 'number': return raw === '' ? undefined : Number(raw);
    case 'money': {
      if (raw === '') return undefined;
      const amount = cents(raw);
      if (Number.isNaN(amount)) throw new Error(`${field.label}: write an amount in yuan, such as 9.90`);
      return amount;
    }
    case 'datetime': return raw === '' ? undefined : new Date(raw).toISOString();
    case 'time': return raw === '' ? undefined : (raw.length === 5 ? `${raw}:00` : raw);
    case 'select': return /^\d+$/.test(raw) && field.numeric ? Number(raw) : raw;
    default: return raw === '' ? undefined : raw;
  }
}

/** A table from columns ({ label, cell: row => node|string }); scrolls sideways on a phone. */
export function table(columns, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'table' }, h('table', {},
    h('thead', {}, h('tr', {}, columns.map((column) => h('th', {}, column.label)))),
    h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((column) => h('td', { 'data-label': column.label }, column.cell(row))))))));
}

// ---------------------------------------------------------------- router

const routes = [];
let leaving = [];

/** A page at `pattern` ('/items/:id'); `render(params, query)` fills the view. */
export function route(pattern, render) {
  const names = [];
  const regex = new RegExp(`^${pattern.replace(/:(\w+)/g, (_, name) => { names.push(name); return '([^/]+)'; })}$`);
  routes.push({ regex, names, render });
}

/** Runs `fn` every `ms` until the page is left. */
export function every(ms, fn) {
  const timer = setInterval(fn, ms);
  leaving.push(() => clearInterval(timer));
}

/** Runs `fn` when the page is left. */
export function onLeave(fn) { leaving.push(fn); }

export function go(hash) { location.hash = hash; }

/** Replaces what `element` shows; null and false children (parts a page leaves out) are skipped. */
export function fill(element, ...children) {
  element.replaceChildren(...children.filter(shown));
}

export function view(...children) {
  fill(document.getElementById('view'), ...children);
}

let showing = Promise.resolve();

/**
 * Shows the page the hash names. Pages are shown one after another: a page
 * still loading when the hash changes again finishes first, so its late
 * answer never replaces the newer page, and its timers are stopped.
 */
export function show() {
  showing = showing.then(showNow).catch((error) => console.error('page not shown', error));
  return showing;
}

async function showNow() {
  const left = leaving;
  leaving = [];
  left.forEach((leave) => leave());
  const [path, search] = (location.hash.slice(1) || '/').split('?');
  const query = new URLSearchParams(search || '');
  for (const { regex, names, render } of routes) {
    const match = regex.exec(path);
    if (!match) continue;
    try {
      const params = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(match[i + 1])]));
      await render(params, query);
    } catch (error) {
      const line = errorLine();
      line.show(error);
      view(h('h1', {}, 'Something went wrong'), line);
    }
    window.scrollTo(0, 0);
    return;
  }
  view(h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. ', h('a', { href: '#/' }, 'Back to today’s sales')));
}
