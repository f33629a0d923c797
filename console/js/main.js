// The console: shoppers' pages at #/…, operators' at #/admin/…, one page
// (index.html) and the JSON API, no build step.

import { session } from './api.js';
import { h, show } from './ui.js';
import './shop.js';
import './admin.js';

function nav() {
  const operator = location.hash.startsWith('#/admin');
  const link = (href, label) => h('a', { href, class: location.hash.split('?')[0] === href ? 'here' : '' }, label);
  const links = operator
    ? [link('#/admin', 'SKUs'), link('#/admin/records/slots', 'Slots'), link('#/admin/records/brands', 'Brands'),
      link('#/admin/records/categories', 'Categories'), link('#/admin/records/activities', 'Activities'),
      link('#/admin/orders', 'Orders'), link('#/admin/rains', 'Rains'), link('#/admin/hot', 'Hot items'),
      session.get('operator') ? link('#/admin/logout', 'Sign out') : link('#/admin/login', 'Sign in'),
      link('#/', 'Shop')]
    : [link('#/', 'Today'), link('#/rain', 'Rain'), link('#/orders', 'My orders'), link('#/balance', 'Balance'),
      session.get('shopper') ? link('#/logout', `Sign out ${session.get('shopper').username || ''}`.trim()) : link('#/login', 'Sign in'),
      link('#/admin', 'Operators')];
  document.getElementById('nav').replaceChildren(...links);
}

async function render() {
  nav();
  await show();
  nav();
}

// A provider's cashier sends the shopper back with its trade number in
// the query (Alipay's return_url): show that order, which waits for the
// notification to say it is paid.
const returned = new URLSearchParams(location.search).get('out_trade_no');
if (returned) history.replaceState(null, '', `${location.pathname}#/orders/${encodeURIComponent(returned)}`);

window.addEventListener('hashchange', render);
render();
