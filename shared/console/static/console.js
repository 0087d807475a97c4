// keyseal admin console. Plain JavaScript, no dependencies, no build step.
// It calls the admin API of its own origin; the admin token lives in the
// `session` object below only (never in storage, cookies or the URL), so a
// reload signs the admin out. Every privileged call first gets a fresh
// step-up token from POST /admin/auth/step-up and sends it once.
(function () {
  'use strict';

  // The API root is the folder above the one this script is served from
  // (/console/console.js -> /), which keeps an API Gateway stage prefix.
  const apiRoot = new URL('..', document.currentScript.src);
  // How often the seal state is refreshed.
  const refreshMS = 3000;
  const auditPage = 50;
  const knownActions = [
    'byok.kms.seal', 'byok.kms.unseal', 'byok.kms.register', 'byok.kms.deregister', 'byok.kms.migrate',
    'byok.tmk.rotate', 'byok.tmk.rewrap', 'byok.tmk.revoke', 'byok.waiver.acknowledge', 'auth.step_up',
    'agent.create', 'agent.revoke', 'tenant.provision', 'audit.checkpoint',
    'webhook.create', 'webhook.delete', 'webhook.rotate_secret', 'webhook.disable',
  ];

  const session = { token: '', tenant: '', status: '', timer: 0, refreshing: false, auditCursor: '' };

  const $ = (id) => document.getElementById(id);

  // el builds an element: text children become text nodes (never HTML).
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function show(id, text) {
    const e = $(id);
    e.textContent = text;
    e.hidden = false;
  }
  function hide(...ids) {
    for (const id of ids) $(id).hidden = true;
  }

  function when(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  // ApiError is a refused call: the HTTP status, the API's error code and
  // message, and any extra fields of its body (reason, ...).
  class ApiError extends Error {
    constructor(status, code, message, extra) {
      super(message);
      this.status = status;
      this.code = code;
      this.extra = extra || {};
    }
  }

  // words explains a failed call in a sentence, with the API's own message.
  function words(err) {
    if (!(err instanceof ApiError)) return 'Unexpected error: ' + err.message;
    const said = err.message ? ' keyseal said: "' + err.message + '"' : '';
    const tag = ' (HTTP ' + err.status + (err.code ? ', ' + err.code : '') + ')';
    switch (err.code) {
      case 'network':
        return 'keyseal could not be reached: ' + err.message;
      case 'insufficient_user_authentication':
        return 'This action needs a recent sign-in with multi-factor authentication: sign in again (with MFA), then retry.' + said + tag;
      case 'unauthorized':
        return 'Your token was not accepted (missing, expired or not signed by the configured identity provider): sign in again.' + said + tag;
      case 'forbidden':
        return 'Your token lacks the keyseal:admin role.' + said + tag;
      case 'not_sealed':
        return 'Nothing to unseal: the tenant is not sealed (the poller may have unsealed it already).' + said + tag;
      case 'unseal_failed':
        return 'Unseal failed: keyseal still cannot use the key' +
          (err.extra.reason ? ' (' + err.extra.reason + ')' : '') + '. Restore keyseal\'s access to the key, then retry.' + said + tag;
      case 'rate_limited':
        return 'Too many requests: wait a moment and retry.' + said + tag;
      default:
        return (err.message || 'The request failed.') + tag;
    }
  }

  // api calls the admin API with the session's token; extra headers (the
  // step-up token) are sent as given. It resolves to the parsed body or
  // rejects with an ApiError.
  async function api(method, path, body, headers) {
    const h = Object.assign({ Authorization: 'Bearer ' + session.token }, headers || {});
    if (body !== undefined) h['Content-Type'] = 'application/json';
    return call(method, path, body, h);
  }

  async function call(method, path, body, headers) {
    let resp;
    try {
      resp = await fetch(new URL(path, apiRoot), {
        method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, 'network', e.message);
    }
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      const b = data && typeof data === 'object' ? data : {};
      // Admin errors are {"error": code, "message"}; agent-style ones nest.
      const nested = b.error && typeof b.error === 'object' ? b.error : null;
      const code = nested ? nested.type : b.error;
      const message = nested ? nested.message : b.message;
      const extra = Object.assign({}, b);
      delete extra.error;
      delete extra.message;
      throw new ApiError(resp.status, code || '', message || text.slice(0, 200) || resp.statusText, extra);
    }
    return data;
  }

  // privileged runs a step-up call: a fresh single-use token, then the call.
  async function privileged(method, path, body) {
    const up = await api('POST', 'admin/auth/step-up', {});
    return api(method, path, body, { 'X-Keyseal-StepUp': up.step_up_token });
  }

  // ---- sign-in ----

  async function signIn(token) {
    session.token = token.trim();
    hide('signin-error');
    try {
      const t = await api('GET', 'admin/tenant-kms');
      session.tenant = t.tenant_id;
    } catch (err) {
      session.token = '';
      show('signin-error', words(err));
      return;
    }
    $('token').value = '';
    $('signin').hidden = true;
    $('app').hidden = false;
    $('signout').hidden = false;
    $('who').textContent = 'tenant ' + session.tenant;
    route();
    refresh();
    loadHealth();
    loadWaiver();
    loadAgents();
    session.timer = window.setInterval(refresh, refreshMS);
  }

  async function devSignIn() {
    hide('signin-error');
    try {
      const r = await call('POST', 'dev/admin-token', undefined, {});
      await signIn(r.admin_token);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        show('signin-error', 'This server has no dev sign-in: only the local server (make run) mints dev admin tokens. Paste a token instead.');
      } else {
        show('signin-error', words(err));
      }
    }
  }

  function signOut() {
    window.clearInterval(session.timer);
    session.token = '';
    session.tenant = '';
    session.status = '';
    $('app').hidden = true;
    $('signout').hidden = true;
    $('signin').hidden = false;
    $('who').textContent = '';
    hide('banner', 'unseal-result', 'agent-key-box');
    $('agent-key').textContent = '';
  }

  // ---- navigation ----

  function route() {
    const audit = location.hash === '#audit';
    $('page-tenant-kms').hidden = audit;
    $('page-audit').hidden = !audit;
    for (const [id, on] of [['nav-tenant-kms', !audit], ['nav-audit', audit]]) {
      if (on) $(id).setAttribute('aria-current', 'page');
      else $(id).removeAttribute('aria-current');
    }
    if (audit && session.token) loadAudit(false);
  }

  // ---- Tenant KMS: status and the sealed banner ----

  function facts(dl, rows) {
    dl.replaceChildren();
    for (const [k, v, cls] of rows) {
      dl.append(el('dt', {}, k), el('dd', cls ? { class: cls } : {}, v === null || v === undefined || v === '' ? '—' : v));
    }
  }

  async function refresh() {
    if (session.refreshing || !session.token) return;
    session.refreshing = true;
    try {
      const t = await api('GET', 'admin/tenant-kms');
      hide('refresh-error');
      renderTenant(t);
    } catch (err) {
      show('refresh-error', 'Could not refresh the tenant state: ' + words(err));
    } finally {
      session.refreshing = false;
    }
  }

  function renderTenant(t) {
    session.tenant = t.tenant_id;
    if (session.status && t.status !== session.status) {
      // The seal state moved: the health shown is stale, and so is the
      // outcome of an earlier unseal once the tenant seals again.
      if (t.status === 'sealed') hide('unseal-result');
      loadHealth();
    }
    session.status = t.status;
    facts($('status'), [
      ['Tenant', t.tenant_id],
      ['Status', t.status, 'status-' + t.status],
      ['Provider', t.provider + (t.byok ? ' (BYOK)' : ' (platform key)')],
      ['Key', t.key_id],
      ['Seal reason', t.seal_reason],
      ['Sealed since', t.sealed_since ? when(t.sealed_since) : null],
      ['Last verify', when(t.last_verified_at) + (t.last_latency_ms ? ' (' + t.last_latency_ms + ' ms)' : '')],
      ['Last verify error', t.last_verify_error],
      ['KMS reachable', t.kms_reachable ? 'yes' : 'no'],
      ['Serving from cache until', t.serving_from_cache_until ? when(t.serving_from_cache_until) : null],
      ['Active version', 'v' + t.active_version],
      ['Rotation age', t.rotation_age_days + ' days' + (t.rotation_due ? ' (rotation due)' : '')],
    ]);
    renderBanner(t);
    renderVersions(t);
  }

  function renderBanner(t) {
    const b = $('banner');
    if (t.status === 'sealed') {
      b.className = 'banner sealed';
      $('banner-title').textContent = 'Tenant sealed';
      $('banner-detail').textContent = 'since ' + when(t.sealed_since) + (t.seal_reason ? ' (' + t.seal_reason + ')' : '') +
        ': no agent gets a session until keyseal can use the key again.';
      $('banner-error').textContent = t.last_verify_error || 'none recorded';
      $('retry-unseal').hidden = false;
      b.hidden = false;
    } else if (t.status === 'revoked') {
      b.className = 'banner revoked';
      $('banner-title').textContent = 'Tenant revoked';
      $('banner-detail').textContent = 'its active key version was revoked: a "tmk" rotation creates a new one.';
      $('banner-error').textContent = t.last_verify_error || 'none recorded';
      $('retry-unseal').hidden = true;
      b.hidden = false;
    } else if (!t.kms_reachable && t.serving_from_cache_until) {
      b.className = 'banner warning';
      $('banner-title').textContent = 'KMS unreachable';
      $('banner-detail').textContent = 'serving from the cached key until ' + when(t.serving_from_cache_until) + ', then the tenant seals.';
      $('banner-error').textContent = t.last_verify_error || 'none recorded';
      $('retry-unseal').hidden = true;
      b.hidden = false;
    } else {
      b.hidden = true;
    }
  }

  async function retryUnseal() {
    const btn = $('retry-unseal');
    btn.disabled = true;
    hide('unseal-result');
    try {
      await privileged('POST', 'admin/tenant-kms/unseal', {});
      show('unseal-result', 'Unsealed: keyseal can use the key again and agents get sessions.');
      $('unseal-result').className = 'result ok';
    } catch (err) {
      show('unseal-result', words(err));
      $('unseal-result').className = 'result error';
    } finally {
      btn.disabled = false;
      await refresh();
    }
  }

  // ---- Health ----

  async function loadHealth() {
    const btn = $('health-run');
    btn.disabled = true;
    hide('health-error');
    try {
      const h = await api('GET', 'admin/tenant-kms/health');
      const rows = [
        ['Health', h.status, 'status-' + h.status],
        ['Latency', h.latency_ms + ' ms (' + h.latency_class + ')', 'latency-' + h.latency_class],
        ['Key state', h.checks && h.checks.key_state],
        ['Key accessible', h.checks && h.checks.cmk_accessible ? 'yes' : 'no'],
        ['Master key valid', h.checks && h.checks.tmk_valid ? 'yes' : 'no'],
        ['Checked', when(h.checked_at) + (h.cached ? ' (cached)' : '')],
      ];
      if (h.diagnosis) rows.push(['Diagnosis', h.diagnosis]);
      if (h.kms_error) rows.push(['KMS error', h.kms_error]);
      for (const r of h.remediation || []) rows.push(['Remediation: ' + r.action, r.command]);
      facts($('health'), rows);
    } catch (err) {
      show('health-error', words(err));
    } finally {
      btn.disabled = false;
    }
  }

  // ---- Key versions: rotate and revoke ----

  function renderVersions(t) {
    const body = $('versions');
    body.replaceChildren();
    for (const v of t.versions || []) {
      const state = v.revoked_at ? 'revoked ' + when(v.revoked_at) : v.active ? 'active' : 'retained';
      const action = v.revoked_at ? '' :
        el('button', { type: 'button', class: 'danger small', 'data-version': String(v.version), onclick: () => openRevoke(v.version) },
          'Revoke v' + v.version);
      body.append(el('tr', v.revoked_at ? { class: 'revoked' } : {},
        el('td', {}, 'v' + v.version), el('td', {}, v.provider), el('td', { class: 'mono' }, v.key_id),
        el('td', {}, when(v.created_at)), el('td', {}, v.age_days + (v.rotation_overdue ? ' (overdue)' : '')),
        el('td', {}, state), el('td', {}, action)));
    }
  }

  async function rotate() {
    hide('versions-result', 'versions-error');
    const body = { rotation_type: $('rotate-type').value };
    if ($('rotate-reason').value) body.reason = $('rotate-reason').value;
    try {
      const r = await api('POST', 'admin/tenant-kms/rotate', body);
      show('versions-result', 'Rotated (' + r.rotation_type + '): the active version is v' + r.active_version + '.');
      $('rotate-reason').value = '';
    } catch (err) {
      show('versions-error', words(err));
    }
    refresh();
  }

  function openRevoke(version) {
    hide('versions-result', 'versions-error');
    $('revoke-version').textContent = 'v' + version;
    $('revoke-tenant').textContent = session.tenant;
    $('revoke-panel').dataset.version = String(version);
    $('revoke-confirm').value = '';
    $('revoke-panel').hidden = false;
    $('revoke-confirm').focus();
  }

  async function submitRevoke() {
    hide('versions-result', 'versions-error');
    const v = $('revoke-panel').dataset.version;
    // The typed id goes to the API as it is: keyseal checks it (and refuses
    // before spending the step-up token) so the console cannot skip it.
    try {
      const r = await privileged('POST', 'admin/tenant-kms/versions/' + encodeURIComponent(v) + '/revoke',
        { confirm: $('revoke-confirm').value });
      $('revoke-panel').hidden = true;
      show('versions-result', 'Revoked v' + r.version + ' at ' + when(r.revoked_at) + ' (tenant ' + r.tenant_status + '): ' + r.note +
        ' (' + when(r.backups_expire_at) + ').');
    } catch (err) {
      show('versions-error', words(err));
    }
    refresh();
  }

  // ---- Waiver ----

  async function loadWaiver() {
    hide('waiver-error');
    try {
      const [w, s] = await Promise.all([api('GET', 'admin/tenant-kms/legal-waiver'), api('GET', 'admin/tenant-kms/legal-waiver/status')]);
      $('waiver-text').textContent = w.text;
      facts($('waiver-status'), [
        ['Current version', w.version],
        ['Acknowledged', s.acknowledged ? 'yes' : 'no', s.acknowledged ? 'status-active' : 'status-sealed'],
        ['Acknowledged version', s.acknowledged_version],
        ['By', s.acknowledged_by],
        ['At', s.acknowledged_at ? when(s.acknowledged_at) : null],
        ['Needs re-acknowledgment', s.requires_reacknowledgment ? 'yes' : 'no'],
      ]);
    } catch (err) {
      show('waiver-error', words(err));
    }
  }

  async function ackWaiver() {
    hide('waiver-result', 'waiver-error');
    try {
      const r = await api('POST', 'admin/tenant-kms/legal-waiver',
        { acknowledged: $('waiver-ack-box').checked, acknowledged_by: $('waiver-by').value });
      show('waiver-result', 'Acknowledged' + (r && r.version ? ' version ' + r.version : '') + '.');
      $('waiver-ack-box').checked = false;
      loadWaiver();
    } catch (err) {
      show('waiver-error', words(err));
    }
  }

  // ---- Agents ----

  async function loadAgents() {
    try {
      const r = await api('GET', 'admin/agents');
      const body = $('agents');
      body.replaceChildren();
      for (const a of r.agents || []) {
        const action = a.revoked_at ? '' :
          el('button', { type: 'button', class: 'danger small', onclick: (ev) => revokeAgent(ev.currentTarget, a) }, 'Revoke');
        body.append(el('tr', a.revoked_at ? { class: 'revoked' } : {},
          el('td', { class: 'mono' }, a.agent_id), el('td', {}, a.name), el('td', {}, when(a.created_at)), el('td', {}, a.created_by),
          el('td', {}, a.revoked_at ? 'revoked ' + when(a.revoked_at) : 'active'), el('td', {}, action)));
      }
    } catch (err) {
      show('agents-error', words(err));
    }
  }

  async function createAgent() {
    hide('agents-error', 'agent-key-box');
    try {
      const a = await api('POST', 'admin/agents', { name: $('agent-name').value });
      $('agent-key-name').textContent = a.name;
      $('agent-key').textContent = a.agent_key;
      $('agent-key-box').hidden = false;
      $('agent-name').value = '';
    } catch (err) {
      show('agents-error', words(err));
    }
    loadAgents();
  }

  // revokeAgent asks once more on the same button before revoking.
  async function revokeAgent(btn, a) {
    if (btn.dataset.armed !== '1') {
      btn.dataset.armed = '1';
      btn.textContent = 'Confirm revoke of ' + a.name;
      return;
    }
    hide('agents-error');
    try {
      await api('DELETE', 'admin/agents/' + encodeURIComponent(a.agent_id));
    } catch (err) {
      show('agents-error', words(err));
    }
    loadAgents();
  }

  // ---- Audit Logs ----

  async function loadAudit(more) {
    hide('audit-error');
    const q = new URLSearchParams({ limit: String(auditPage) });
    const action = $('audit-action').value.trim();
    if (action) q.set('action', action);
    if (more && session.auditCursor) q.set('cursor', session.auditCursor);
    try {
      const r = await api('GET', 'admin/audit?' + q.toString());
      const body = $('audit-entries');
      if (!more) body.replaceChildren();
      for (const e of r.entries || []) {
        const critical = e.severity === 'critical';
        body.append(el('tr', { class: critical ? 'critical' : '', 'data-action': e.action },
          el('td', {}, e.seq), el('td', {}, when(e.ts)), el('td', { class: 'mono' }, e.action),
          el('td', {}, critical ? el('span', { class: 'badge critical' }, 'critical') : e.severity),
          el('td', {}, e.actor), el('td', { class: 'mono details' }, e.details ? JSON.stringify(e.details) : '')));
      }
      if (!more && !(r.entries || []).length) {
        body.append(el('tr', {}, el('td', { colspan: '6' }, action ? 'No entries with action ' + action + '.' : 'No entries.')));
      }
      session.auditCursor = r.next_cursor || '';
      $('audit-more').hidden = !session.auditCursor;
    } catch (err) {
      show('audit-error', words(err));
    }
  }

  async function verifyAudit() {
    hide('audit-verify-result', 'audit-error');
    try {
      const r = await api('GET', 'admin/audit/verify');
      const res = $('audit-verify-result');
      if (r.valid) {
        show('audit-verify-result', 'Chain verified: all ' + r.entries + ' entries link and hash correctly.');
        res.className = 'result ok';
      } else {
        show('audit-verify-result', 'Chain broken at entry ' + r.first_bad_seq + ' (of ' + r.entries + ').');
        res.className = 'result error';
      }
    } catch (err) {
      show('audit-error', words(err));
    }
  }

  // ---- wiring ----

  document.addEventListener('DOMContentLoaded', () => {
    const list = $('audit-actions');
    for (const a of knownActions) list.append(el('option', { value: a }));
    $('signin-token').addEventListener('click', () => {
      if (!$('token').value.trim()) {
        show('signin-error', 'Paste an admin token first.');
        return;
      }
      signIn($('token').value);
    });
    $('signin-dev').addEventListener('click', devSignIn);
    $('signout').addEventListener('click', signOut);
    $('retry-unseal').addEventListener('click', retryUnseal);
    $('health-run').addEventListener('click', loadHealth);
    $('rotate').addEventListener('click', rotate);
    $('revoke-submit').addEventListener('click', submitRevoke);
    $('revoke-cancel').addEventListener('click', () => { $('revoke-panel').hidden = true; });
    $('waiver-ack').addEventListener('click', ackWaiver);
    $('agent-create').addEventListener('click', createAgent);
    $('agent-key-hide').addEventListener('click', () => {
      $('agent-key').textContent = '';
      $('agent-key-box').hidden = true;
    });
    $('audit-apply').addEventListener('click', () => loadAudit(false));
    $('audit-action').addEventListener('keydown', (ev) => { if (ev.key === 'Enter') loadAudit(false); });
    $('audit-verify').addEventListener('click', verifyAudit);
    $('audit-more').addEventListener('click', () => loadAudit(true));
    window.addEventListener('hashchange', route);
  });
})();
