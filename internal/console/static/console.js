// The broker's operator console. It signs the operator in at the partner's
// authorization server (authorization code with PKCE, as a public client),
// keeps the access token in this tab's session storage, and calls the broker's
// own HTTP API with it. Every element is built with the DOM and every value
// set as text (textContent, attributes), never parsed as markup.

const API = '../v1/'; // the broker's API, relative to /console/
const PAGE_SIZE = 50;
const TOKEN_KEY = 'broker-console.token';
const LOGIN_KEY = 'broker-console.login';

let config = null;

// --- DOM ------------------------------------------------------------------

// el makes an element with attributes (on* are event listeners) and
// children; strings and numbers become text nodes, null is skipped.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  document.getElementById('view').replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

function errorBox(err) {
  return el('p', { class: 'error', role: 'alert', id: 'error' }, err instanceof Error ? err.message : String(err));
}

// when writes an RFC 3339 time as "2026-12-01 10:00:00 UTC", or "—".
function when(t) {
  if (!t) return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
}

function stateBadge(state) {
  const cls = state === 'RELINK_REQUIRED' ? 'state relink' : state === 'LINKED' ? 'state linked' : 'state';
  return el('span', { class: cls }, state === 'RELINK_REQUIRED' ? '⚠ RELINK_REQUIRED' : state);
}

function table(id, headers, rows, empty) {
  if (rows.length === 0) return el('p', { class: 'muted', id: id + '-empty' }, empty);
  return el('table', { id },
    el('thead', null, el('tr', null, headers.map((h) => el('th', null, h)))),
    el('tbody', null, rows));
}

// --- Routes ---------------------------------------------------------------

// route returns the view and its parameters from the location's hash,
// "#/links?state=LINKED".
function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [view, query] = hash.split('?', 2);
  return { view: view || 'overview', params: new URLSearchParams(query || '') };
}

function href(view, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v) q.set(k, v);
  const s = q.toString();
  return '#/' + view + (s ? '?' + s : '');
}

function linkHref(skill, user) {
  return href('link', { skill, user });
}

// --- Sign-in ----------------------------------------------------------------

function base64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function signIn() {
  if (!crypto.subtle) {
    throw new Error('Signing in needs a secure context: open the console over HTTPS (or on localhost).');
  }
  const verifier = randomString(32);
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const state = randomString(16);
  sessionStorage.setItem(LOGIN_KEY, JSON.stringify({ verifier, state, hash: location.hash }));
  const url = new URL(config.authorization_endpoint);
  const q = url.searchParams;
  q.set('response_type', 'code');
  q.set('client_id', config.client_id);
  q.set('redirect_uri', config.redirect_uri);
  q.set('scope', config.scope);
  q.set('state', state);
  q.set('code_challenge', challenge);
  q.set('code_challenge_method', 'S256');
  if (config.audience) {
    q.set('audience', config.audience);
    q.set('resource', config.audience);
  }
  location.assign(url.toString());
}

// finishSignIn handles the authorization server's answer in the query: it
// removes the code from the address bar at once, checks the state, and
// exchanges the code for a token.
async function finishSignIn(query) {
  const saved = JSON.parse(sessionStorage.getItem(LOGIN_KEY) || 'null');
  sessionStorage.removeItem(LOGIN_KEY);
  history.replaceState(null, '', location.pathname + ((saved && saved.hash) || ''));
  if (query.has('error')) {
    throw new Error('The authorization server did not sign you in: ' + query.get('error') +
      (query.get('error_description') ? ' (' + query.get('error_description') + ')' : ''));
  }
  if (!saved || !query.get('state') || query.get('state') !== saved.state) {
    throw new Error('This sign-in answer was not asked for by this tab; sign in again.');
  }
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: query.get('code') || '',
    redirect_uri: config.redirect_uri,
    client_id: config.client_id,
    code_verifier: saved.verifier,
  });
  if (config.audience) body.set('resource', config.audience);
  let resp;
  try {
    resp = await fetch(config.token_endpoint, { method: 'POST', body, credentials: 'omit' });
  } catch (e) {
    throw new Error('The token endpoint cannot be reached from this page (' + e.message + '). ' +
      'The authorization server must allow this origin there.');
  }
  const answer = await resp.json().catch(() => ({}));
  if (!resp.ok || !answer.access_token) {
    throw new Error('The token endpoint refused the code: ' + (answer.error || resp.status) +
      (answer.error_description ? ' (' + answer.error_description + ')' : ''));
  }
  const expiresIn = Number(answer.expires_in) || 3600;
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify({
    access_token: answer.access_token,
    expires_at: Date.now() + expiresIn * 1000,
  }));
}

function token() {
  const t = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null');
  if (!t || !t.access_token || Date.now() > t.expires_at - 10000) {
    sessionStorage.removeItem(TOKEN_KEY);
    return null;
  }
  return t.access_token;
}

// subject returns the sub claim of the access token when it is a JWT, for
// "signed in as"; never the token itself.
function subject(raw) {
  try {
    const payload = raw.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0))));
    return typeof claims.sub === 'string' ? claims.sub : '';
  } catch {
    return '';
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  render();
}

function showSignIn(reason) {
  rendered('signin');
  document.getElementById('nav').hidden = true;
  document.getElementById('who').replaceChildren();
  show(el('section', { class: 'signin' },
    el('h2', null, 'Sign in'),
    reason ? el('p', { class: 'error', role: 'alert', id: 'error' }, reason) : null,
    el('p', null, 'Operators sign in at the partner\'s authorization server, as the client ',
      el('code', null, config.client_id), '. The console then calls the broker\'s API with the token it got: ',
      'seeing anything needs the scope ', el('code', null, config.admin_scope), '.'),
    el('p', null, el('button', {
      id: 'signin', class: 'primary',
      onclick: () => signIn().catch((e) => show(errorBox(e))),
    }, 'Sign in'))));
}

// --- API --------------------------------------------------------------------

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// segment writes an id as one path segment: "." and ".." as %2E, since a bare
// dot segment is path syntax.
function segment(id) {
  const s = encodeURIComponent(id);
  return s === '.' || s === '..' ? s.replace(/\./g, '%2E') : s;
}

async function call(method, path, query) {
  const t = token();
  if (!t) throw new APIError(401, 'Your sign-in has expired.');
  const url = new URL(API + path, location.href);
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  let resp;
  try {
    resp = await fetch(url, { method, headers: { Authorization: 'Bearer ' + t }, credentials: 'omit' });
  } catch (e) {
    throw new APIError(0, 'The broker cannot be reached: ' + e.message);
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new APIError(resp.status, body.message || resp.statusText || 'HTTP ' + resp.status);
  return body;
}

// failed shows err in the view, or the sign-in page when the token is no
// longer accepted, or what a missing scope keeps from the operator.
function failed(err) {
  if (err instanceof APIError && err.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn('Your sign-in is no longer accepted (' + err.message + '); sign in again.');
    return;
  }
  if (err instanceof APIError && err.status === 403) {
    show(el('section', { id: 'forbidden', class: 'error', role: 'alert' },
      el('h2', null, 'Not allowed'),
      el('p', null, 'You are signed in, but your token lacks the scope ', el('code', null, config.admin_scope),
        ', which the console needs to show links, events and deliveries. ',
        'Ask for it at the partner\'s authorization server, then sign out and in again.'),
      el('p', null, 'The broker said: ', err.message)));
    return;
  }
  show(errorBox(err));
}

// --- Views ------------------------------------------------------------------

const views = { overview, links, link, deliveries };

async function render() {
  if (!token()) {
    showSignIn('');
    return;
  }
  const { view, params } = route();
  document.getElementById('nav').hidden = false;
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('current', a.dataset.view === view || (view === 'link' && a.dataset.view === 'links'));
  }
  const who = subject(token());
  document.getElementById('who').replaceChildren(
    who ? el('span', { id: 'subject' }, 'Signed in as ', el('strong', null, who)) : '',
    el('button', { id: 'signout', onclick: signOut }, 'Sign out'));
  const fn = views[view];
  if (!fn) {
    show(errorBox('No such page: ' + view));
  } else {
    try {
      await fn(params);
    } catch (err) {
      failed(err);
    }
  }
  rendered(view);
}

// rendered marks the body with the view shown and a count of the views shown,
// once the view is complete, for tests and styles to rely on.
function rendered(view) {
  document.body.dataset.view = view;
  document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
}

function skillOptions(selected, withAll) {
  const opts = withAll ? [el('option', { value: '' }, 'every skill')] : [];
  for (const s of config.skills) opts.push(el('option', { value: s, selected: s === selected }, s));
  return opts;
}

// countSince counts the events of type that occurred since since (and match
// keep), reading at most five pages; it returns the count and whether it
// stopped early.
async function countSince(type, since, keep) {
  let n = 0;
  let pageToken = '';
  for (let page = 0; page < 5; page++) {
    const resp = await call('GET', 'events', { type, page_size: 1000, page_token: pageToken });
    for (const e of resp.events) {
      if (new Date(e.occurred_at) < since) return { n, more: false };
      if (!keep || keep(e)) n++;
    }
    if (!resp.next_page_token) return { n, more: false };
    pageToken = resp.next_page_token;
  }
  return { n, more: true };
}

function card(title, id, entries) {
  return el('div', { class: 'card', id },
    el('h3', null, title),
    el('dl', null, entries.map(([k, v, key]) => [el('dt', null, k), el('dd', { 'data-key': key || k }, v)])));
}

async function overview() {
  const since = new Date(Date.now() - 3600 * 1000);
  const [stats, bySkill, refreshed, refused] = await Promise.all([
    call('GET', 'stats'),
    Promise.all(config.skills.map((skill) => call('GET', 'stats', { skill_id: skill }))),
    countSince('link.refreshed', since),
    countSince('link.relink_required', since, (e) => e.data && e.data.reason === 'invalid_grant'),
  ]);
  const count = (c) => String(c.n) + (c.more ? '+' : '');
  const total = (links) => Object.values(links).reduce((a, b) => a + b, 0);
  show(
    el('h2', null, 'Overview'),
    el('div', { class: 'cards' },
      card('Links by state', 'links-by-state', [
        ['LINKED', stats.links.LINKED ?? 0],
        ['RELINK_REQUIRED', stats.links.RELINK_REQUIRED ?? 0],
      ]),
      card('Links by skill', 'links-by-skill', config.skills.map((skill, i) => [skill, total(bySkill[i].links)])),
      card('Deliveries to Alexa', 'deliveries', [
        ['PENDING', stats.deliveries.PENDING ?? 0],
        ['FAILED', stats.deliveries.FAILED ?? 0],
        ['DELIVERED', stats.deliveries.DELIVERED ?? 0],
        ['SUPERSEDED', stats.deliveries.SUPERSEDED ?? 0],
      ]),
      card('Webhooks', 'webhooks', [['backlog (PENDING)', stats.webhooks.PENDING ?? 0, 'PENDING']]),
      card('Last hour', 'last-hour', [
        ['refreshes', count(refreshed)],
        ['LWA refusals (invalid_grant)', count(refused), 'invalid_grant'],
      ])),
    el('p', { class: 'muted' }, 'Links that need the user to link again: ',
      el('a', { href: href('links', { state: 'RELINK_REQUIRED' }) }, 'RELINK_REQUIRED'),
      '. Deliveries waiting or failed: ', el('a', { href: href('deliveries') }, 'Deliveries'), '.'));
}

// links lists the links of one skill, or of every skill one after the other:
// the page token is then the skill's index, ':' and its page token.
async function links(params) {
  const skill = params.get('skill') || '';
  const state = params.get('state') || '';
  const prefix = params.get('prefix') || '';
  const skills = skill ? [skill] : config.skills;
  let [index, pageToken] = (params.get('page') || '0:').split(/:(.*)/s);
  index = Number(index) || 0;
  const rows = [];
  let next = '';
  for (let i = index; i < skills.length && !next && rows.length < PAGE_SIZE; i++) {
    const resp = await call('GET', 'links', {
      skill_id: skills[i], state, user_id_prefix: prefix,
      page_size: PAGE_SIZE - rows.length, page_token: i === index ? pageToken : '',
    });
    for (const l of resp.links) {
      rows.push(el('tr', { class: l.state === 'RELINK_REQUIRED' ? 'relink' : null, 'data-user': l.user_id, 'data-skill': l.skill_id },
        el('td', { class: 'id' }, el('a', { href: linkHref(l.skill_id, l.user_id) }, l.user_id)),
        el('td', null, l.skill_id),
        el('td', null, stateBadge(l.state)),
        el('td', null, l.region || '—'),
        el('td', null, when(l.access_token_expires_at)),
        el('td', null, when(l.last_refreshed_at))));
    }
    if (resp.next_page_token) next = i + ':' + resp.next_page_token;
    else if (i + 1 < skills.length && rows.length >= PAGE_SIZE) next = (i + 1) + ':';
  }
  const filters = el('form', { class: 'filters', id: 'filters' },
    el('label', null, 'Skill', el('select', { id: 'filter-skill', name: 'skill' }, skillOptions(skill, true))),
    el('label', null, 'State', el('select', { id: 'filter-state', name: 'state' },
      ['', 'LINKED', 'RELINK_REQUIRED'].map((s) => el('option', { value: s, selected: s === state }, s || 'every state')))),
    el('label', null, 'User id starts with', el('input', { id: 'filter-prefix', name: 'prefix', value: prefix, autocomplete: 'off' })),
    el('button', { id: 'apply', class: 'primary', type: 'submit' }, 'Search'));
  filters.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = new FormData(filters);
    location.hash = href('links', { skill: f.get('skill'), state: f.get('state'), prefix: f.get('prefix') });
  });
  const notice = sessionStorage.getItem('broker-console.notice');
  sessionStorage.removeItem('broker-console.notice');
  show(
    el('h2', null, 'Links'),
    notice ? el('p', { class: 'notice', id: 'notice', role: 'status' }, notice) : null,
    filters,
    table('links', ['User id', 'Skill', 'State', 'Region', 'Token expires', 'Last refresh'], rows, 'No link matches.'),
    el('div', { class: 'pager' },
      params.get('page') ? el('a', { id: 'first-page', href: href('links', { skill, state, prefix }) }, 'First page') : null,
      next ? el('a', { id: 'next-page', href: href('links', { skill, state, prefix, page: next }) }, 'Next page') : null));
}

function eventData(e) {
  const parts = [];
  for (const [k, v] of Object.entries(e.data || {})) parts.push(k + ': ' + (typeof v === 'string' ? v : JSON.stringify(v)));
  return parts.join(' · ');
}

async function link(params) {
  const skill = params.get('skill') || '';
  const user = params.get('user') || '';
  const path = 'links/' + segment(user);
  const [l, events, pending] = await Promise.all([
    call('GET', path, { skill_id: skill }),
    call('GET', path + '/events', { skill_id: skill, page_size: PAGE_SIZE }),
    call('GET', 'pending-deliveries', { user_id: user, skill_id: skill }),
  ]);
  const status = el('div', { id: 'status' });
  const refresh = el('button', { id: 'refresh', class: 'primary' }, 'Refresh now');
  const del = el('button', { id: 'delete', class: 'danger' }, 'Delete');
  refresh.addEventListener('click', async () => {
    refresh.disabled = true;
    try {
      const after = await call('POST', path + ':refresh', { skill_id: l.skill_id });
      await link(params);
      document.getElementById('status').replaceChildren(el('p', { class: 'notice', id: 'notice', role: 'status' },
        'Refreshed: the access token now expires ' + when(after.access_token_expires_at) + '.'));
    } catch (err) {
      refresh.disabled = false;
      if (err instanceof APIError && (err.status === 401 || err.status === 403)) failed(err);
      else status.replaceChildren(errorBox(err));
    }
  });
  del.addEventListener('click', () => confirmDelete(l, path));
  const timeline = el('ol', { class: 'timeline', id: 'timeline' },
    events.events.map((e) => el('li', {
      class: e.type === 'link.relink_required' || e.type === 'delivery.failed' ? 'bad' : null,
      'data-type': e.type,
    },
    el('span', { class: 'when' }, when(e.occurred_at)),
    el('span', { class: 'type' }, e.type), ' by ', el('span', { class: 'actor' }, e.actor),
    eventData(e) ? [' — ', el('span', { class: 'data' }, eventData(e))] : null)));
  const pendingRows = pending.deliveries.map((d) => el('tr', { 'data-message': d.message_id },
    el('td', { class: 'id' }, d.message_id),
    el('td', null, d.kind),
    el('td', { class: 'num' }, d.attempts),
    el('td', null, d.last_error || '—'),
    el('td', null, when(d.next_attempt_at))));
  show(
    el('p', null, el('a', { href: href('links', { skill: l.skill_id }) }, '← Links')),
    el('h2', null, 'Link of ', el('span', { id: 'link-user' }, l.user_id)),
    el('table', { class: 'fields', id: 'link' }, el('tbody', null,
      [['User id', l.user_id], ['Skill', l.skill_id], ['State', stateBadge(l.state)], ['Region', l.region || '—'],
        ['Linked', when(l.linked_at)], ['Access token expires', when(l.access_token_expires_at)],
        ['Last refresh', when(l.last_refreshed_at)]]
        .map(([k, v]) => el('tr', null, el('th', null, k), el('td', { 'data-field': k }, v))))),
    el('div', { class: 'actions' }, refresh, del),
    status,
    el('h3', null, 'Deliveries waiting to be sent'),
    table('pending', ['Message id', 'Kind', 'Attempts', 'Last error', 'Next attempt'], pendingRows,
      'None: delivered and failed ones are in the timeline below.'),
    el('h3', null, 'Timeline'),
    events.events.length ? timeline : el('p', { class: 'muted' }, 'No events.'),
    events.next_page_token ? el('p', { class: 'muted' }, 'Showing the newest ' + events.events.length + ' events.') : null);
}

// confirmDelete asks, naming the user and the skill, before deleting.
function confirmDelete(l, path) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').replaceChildren(
    'Delete the link of user ', el('strong', { id: 'confirm-user' }, l.user_id), ' in skill ', el('strong', null, l.skill_id),
    '? Its stored tokens are removed for good: the user must link the skill again. The event is kept in the audit trail.');
  dialog.returnValue = '';
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'yes') return;
    try {
      await call('DELETE', path, { skill_id: l.skill_id, reason: 'operator' });
      sessionStorage.setItem('broker-console.notice', 'Deleted the link of ' + l.user_id + ' in skill ' + l.skill_id + '.');
      location.hash = href('links', { skill: l.skill_id });
    } catch (err) {
      failed(err);
    }
  }, { once: true });
  dialog.showModal();
}

async function deliveries(params) {
  const kind = params.get('kind') || '';
  const skill = params.get('skill') || '';
  const pageToken = params.get('page') || '';
  const [pending, failedEvents] = await Promise.all([
    call('GET', 'pending-deliveries', { kind, skill_id: skill, page_size: PAGE_SIZE, page_token: pageToken }),
    call('GET', 'events', { type: 'delivery.failed', page_size: 200 }),
  ]);
  const userLink = (s, u) => el('a', { href: linkHref(s, u) }, u);
  const pendingRows = pending.deliveries.map((d) => el('tr', { 'data-message': d.message_id },
    el('td', { class: 'id' }, d.message_id),
    el('td', null, d.kind),
    el('td', { class: 'id' }, userLink(d.skill_id, d.user_id)),
    el('td', null, d.skill_id),
    el('td', { class: 'num' }, d.attempts),
    el('td', null, d.last_error || '—'),
    el('td', null, when(d.next_attempt_at)),
    el('td', null, when(d.submitted_at))));
  const failedRows = failedEvents.events
    .filter((e) => (!kind || (e.data && e.data.kind === kind)) && (!skill || e.skill_id === skill))
    .map((e) => el('tr', { 'data-message': (e.data && e.data.message_id) || '' },
      el('td', null, when(e.occurred_at)),
      el('td', { class: 'id' }, (e.data && e.data.message_id) || '—'),
      el('td', null, (e.data && e.data.kind) || '—'),
      el('td', { class: 'id' }, userLink(e.skill_id, e.user_id)),
      el('td', null, e.skill_id),
      el('td', null, (e.data && e.data.last_error) || '—')));
  const filters = el('form', { class: 'filters', id: 'filters' },
    el('label', null, 'Kind', el('select', { id: 'filter-kind', name: 'kind' },
      [['', 'every kind'], ['profile_report', 'profile reports'], ['alexa_event', 'Alexa events']]
        .map(([v, t]) => el('option', { value: v, selected: v === kind }, t)))),
    el('label', null, 'Skill', el('select', { id: 'filter-skill', name: 'skill' }, skillOptions(skill, true))),
    el('button', { id: 'apply', class: 'primary', type: 'submit' }, 'Show'));
  filters.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = new FormData(filters);
    location.hash = href('deliveries', { kind: f.get('kind'), skill: f.get('skill') });
  });
  show(
    el('h2', null, 'Deliveries'),
    filters,
    el('h3', null, 'Waiting to be sent (PENDING)'),
    table('deliveries-pending', ['Message id', 'Kind', 'User', 'Skill', 'Attempts', 'Last error', 'Next attempt', 'Submitted'],
      pendingRows, 'No delivery is waiting.'),
    pending.next_page_token ? el('p', { class: 'pager' },
      el('a', { id: 'next-page', href: href('deliveries', { kind, skill, page: pending.next_page_token }) }, 'Next page')) : null,
    el('h3', null, 'Failed (newest first)'),
    table('deliveries-failed', ['When', 'Message id', 'Kind', 'User', 'Skill', 'Last error'], failedRows, 'No delivery failed lately.'));
}

// --- Start --------------------------------------------------------------------

async function start() {
  try {
    const resp = await fetch('config.json', { credentials: 'omit' });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error('The console cannot sign anyone in: ' + (body.error || resp.statusText));
    config = body;
  } catch (err) {
    show(errorBox(err));
    return;
  }
  const query = new URLSearchParams(location.search);
  if (query.has('code') || query.has('error')) {
    try {
      await finishSignIn(query);
    } catch (err) {
      showSignIn(err.message);
      return;
    }
  }
  window.addEventListener('hashchange', render);
  await render();
}

start();
