// webhook-guard console: the admin JSON API in a page. No framework, no build step.
//
// The credential lives in `credential` below, inside this closure only: never in cookies,
// storage, the URL or the DOM. Secrets the API shows once are put in the reveal dialog and
// removed from it when it closes; no variable keeps them.
(function () {
  'use strict';

  var credential = null; // { header: 'x-api-key' | 'authorization', value, label, basic }
  var MAX_PAGES = 50;
  var KNOWN_ACTIONS = [
    'api-key.created', 'api-key.deleted', 'integrator.created',
    'integrator.secret.regenerated', 'project.created', 'project.deleted',
    'project.secret.previous-ended', 'project.secret.regenerated'
  ];

  function $(id) { return document.getElementById(id); }

  // el('p', {class: 'x'}, 'text', child…): a DOM node; text is always text, never HTML.
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) return;
        if (name === 'onclick') node.addEventListener('click', value);
        else if (name === 'text') node.textContent = value;
        else node.setAttribute(name, value === true ? '' : String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // ---- the API -------------------------------------------------------------------------

  function ApiError(status, title, detail, body) {
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.body = body;
    this.message = detail || title || ('HTTP ' + status);
  }

  function SignedOut() { this.message = 'signed out'; }

  // One request to the admin API. A 401 ends the session (unless `quiet`), a non-2xx answer
  // throws ApiError with the problem document's detail.
  function api(method, path, body, quiet) {
    if (!credential) return Promise.reject(new SignedOut());
    var headers = { accept: 'application/json, application/problem+json' };
    headers[credential.header] = credential.value;
    var init = { method: method, headers: headers, cache: 'no-store', credentials: 'omit',
      referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      var type = response.headers.get('content-type') || '';
      var parsed = type.indexOf('json') >= 0
        ? response.json().catch(function () { return null; })
        : response.text().then(function () { return null; });
      return parsed.then(function (json) {
        if (response.ok) return json;
        var title = json && json.title ? String(json.title) : response.statusText;
        var detail = json && json.detail ? String(json.detail) : '';
        if (response.status === 401 && !quiet) {
          signOut('The API refused the credentials' + (detail ? ': ' + detail : '') +
            '. Sign in again.');
          throw new SignedOut();
        }
        throw new ApiError(response.status, title, detail, json);
      });
    }, function () {
      throw new ApiError(0, 'Network error', 'the server could not be reached', null);
    });
  }

  function withQuery(path, name, value) {
    return path + (path.indexOf('?') >= 0 ? '&' : '?') + name + '=' + encodeURIComponent(value);
  }

  // Every item of a list endpoint, following `nextCursor` (`?cursor=`) when the API pages.
  function fetchAll(path, member) {
    var items = [];
    function page(url, n) {
      return api('GET', url).then(function (json) {
        var list = json && Array.isArray(json[member]) ? json[member] : [];
        items = items.concat(list);
        var next = json && typeof json.nextCursor === 'string' && json.nextCursor ? json.nextCursor : null;
        if (next && list.length && n < MAX_PAGES) return page(withQuery(path, 'cursor', next), n + 1);
        return items;
      });
    }
    return page(path, 1);
  }

  function enc(id) { return encodeURIComponent(id); }

  // ---- time ----------------------------------------------------------------------------

  var relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

  function exact(iso) {
    var d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'long' });
  }

  function ago(iso) {
    var seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
    var units = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400],
      ['hour', 3600], ['minute', 60], ['second', 1]];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(seconds) >= units[i][1] || units[i][0] === 'second') {
        return relative.format(Math.trunc(seconds / units[i][1]), units[i][0]);
      }
    }
    return '';
  }

  // A <time> with the relative text and the exact time on hover (title) and for machines.
  function when(iso, none) {
    if (!iso) return el('span', { class: 'muted' }, none || 'Never');
    return el('time', { datetime: iso, title: exact(iso) }, ago(iso));
  }

  function remaining(iso) {
    var s = Math.round((Date.parse(iso) - Date.now()) / 1000);
    if (isNaN(s)) return '';
    if (s <= 0) return 'ended';
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var parts = [];
    if (h) parts.push(h + ' h');
    if (h || m) parts.push(m + ' min');
    parts.push(sec + ' s');
    return 'in ' + parts.join(' ');
  }

  // A live countdown to `iso`, ticked every second.
  function countdown(iso) {
    if (!iso) return el('span', { class: 'muted' }, 'Does not expire');
    return el('time', { datetime: iso, title: exact(iso), 'data-countdown': '' }, remaining(iso));
  }

  setInterval(function () {
    var nodes = document.querySelectorAll('[data-countdown]');
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = remaining(nodes[i].getAttribute('datetime'));
  }, 1000);

  // ---- page furniture ------------------------------------------------------------------

  function flash(text) {
    var node = $('flash');
    node.textContent = '';
    // A new text node so screen readers announce a repeated message too.
    setTimeout(function () { node.textContent = text; }, 50);
  }

  function problemText(e) {
    if (e instanceof ApiError) return (e.detail || e.title) + (e.status ? ' (HTTP ' + e.status + ')' : '');
    return String(e && e.message ? e.message : e);
  }

  // What a project-scoped key may not do, in place of the page's content.
  function forbidden(what, e) {
    return el('div', { class: 'notice', role: 'note' },
      el('p', null, el('strong', null, 'Not allowed: '), 'this API key is limited to some projects, so it may not ' + what + '.'),
      el('p', { class: 'hint' }, 'The API answered: ' + problemText(e) + '. Sign in with an unrestricted key or with your client id and API secret to do this.'));
  }

  // The text of a failed change: a 403 says what a project-scoped key may not do.
  function explain(e, what) {
    if (e instanceof ApiError && e.status === 403) {
      return new ApiError(403, e.title, 'this API key is limited to some projects, so it may not ' + what +
        ' (the API answered: ' + (e.detail || e.title) + ')', e.body);
    }
    return e;
  }

  function failure(e) {
    return el('p', { class: 'error', role: 'alert' }, 'The request failed: ' + problemText(e));
  }

  function showError(id, e) {
    var node = $(id);
    node.textContent = problemText(e);
    node.hidden = false;
  }

  function hideError(id) {
    var node = $(id);
    node.textContent = '';
    node.hidden = true;
  }

  function copyButton(label, read) {
    var status = el('span', { class: 'hint', role: 'status' });
    var button = el('button', { type: 'button', class: 'copy', 'aria-label': label, onclick: function () {
      copy(read(), status);
    } }, 'Copy');
    return [button, status];
  }

  function copy(text, status) {
    function done(ok) {
      status.textContent = ok ? 'Copied.' : 'Could not copy: select the text and copy it.';
      setTimeout(function () { status.textContent = ''; }, 4000);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(fallbackCopy(text)); });
    } else {
      done(fallbackCopy(text));
    }
  }

  function fallbackCopy(text) {
    var area = el('textarea', { readonly: true, class: 'offscreen', 'aria-hidden': 'true' });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    area.value = '';
    document.body.removeChild(area);
    return ok;
  }

  function heading(text) { return el('h1', { id: 'page-title', tabindex: '-1' }, text); }

  function cell(label, content) { return el('td', { 'data-label': label }, content); }

  function table(caption, headers, rows, empty) {
    if (!rows.length) return el('p', { class: 'empty' }, empty);
    return el('div', { class: 'table-wrap' },
      el('table', null,
        el('caption', { class: 'visually-hidden' }, caption),
        el('thead', null, el('tr', null, headers.map(function (h) { return el('th', { scope: 'col' }, h); }))),
        el('tbody', null, rows)));
  }

  // ---- dialogs -------------------------------------------------------------------------

  document.addEventListener('click', function (event) {
    var target = event.target.closest ? event.target.closest('[data-close]') : null;
    if (target) {
      var dialog = target.closest('dialog');
      if (dialog) dialog.close();
    }
  });

  var onRevealClosed = null;

  // Shows a secret once. Closing the dialog (button or Escape) empties it.
  function reveal(title, intro, secret, extra, after) {
    $('reveal-title').textContent = title;
    $('reveal-intro').textContent = intro;
    $('reveal-value').textContent = secret;
    $('reveal-extra').textContent = extra || '';
    $('reveal-status').textContent = '';
    onRevealClosed = after || null;
    $('reveal-dialog').showModal();
    $('reveal-copy').focus();
  }

  $('reveal-copy').addEventListener('click', function () {
    copy($('reveal-value').textContent, $('reveal-status'));
  });
  $('reveal-close').addEventListener('click', function () { $('reveal-dialog').close(); });
  $('reveal-dialog').addEventListener('close', function () {
    $('reveal-value').textContent = '';
    $('reveal-status').textContent = '';
    $('reveal-extra').textContent = '';
    var after = onRevealClosed;
    onRevealClosed = null;
    if (after) after();
  });

  var confirmAction = null;
  var confirmExpected = null;

  // A confirmation for something that cannot be undone. With `expected` (a name), the
  // button is enabled only once it is typed; without, once "I understand" is ticked.
  function confirmDanger(options) {
    $('confirm-title').textContent = options.title;
    $('confirm-text').textContent = options.text;
    $('confirm-ok').textContent = options.ok;
    confirmAction = options.action;
    confirmExpected = options.expected || null;
    $('confirm-input').value = '';
    $('confirm-check').checked = false;
    $('confirm-type').hidden = !confirmExpected;
    $('confirm-tick').hidden = !!confirmExpected;
    if (confirmExpected) {
      $('confirm-input-label').textContent = 'Type “' + confirmExpected + '” to confirm';
    }
    hideError('confirm-error');
    updateConfirm();
    $('confirm-dialog').showModal();
    (confirmExpected ? $('confirm-input') : $('confirm-check')).focus();
  }

  function updateConfirm() {
    var ok = confirmExpected ? $('confirm-input').value === confirmExpected : $('confirm-check').checked;
    $('confirm-ok').disabled = !ok;
  }

  $('confirm-input').addEventListener('input', updateConfirm);
  $('confirm-check').addEventListener('change', updateConfirm);
  $('confirm-form').addEventListener('submit', function (event) {
    event.preventDefault();
    if ($('confirm-ok').disabled || !confirmAction) return;
    $('confirm-ok').disabled = true;
    confirmAction().then(function () {
      confirmAction = null;
      $('confirm-dialog').close();
    }, function (e) {
      if (e instanceof SignedOut) return;
      showError('confirm-error', e);
      updateConfirm();
    });
  });

  var graceAction = null;

  // The grace choice of a regeneration: none (the default) or 1–3600 seconds.
  function chooseGrace(title, text, action) {
    $('grace-title').textContent = title;
    $('grace-text').textContent = text;
    $('grace-none').checked = true;
    $('grace-seconds').value = '600';
    $('grace-seconds').disabled = true;
    hideError('grace-error');
    graceAction = action;
    $('grace-dialog').showModal();
    $('grace-none').focus();
  }

  function graceChanged() { $('grace-seconds').disabled = !$('grace-some').checked; }
  $('grace-none').addEventListener('change', graceChanged);
  $('grace-some').addEventListener('change', graceChanged);
  $('grace-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var seconds = 0;
    if ($('grace-some').checked) {
      seconds = Number($('grace-seconds').value);
      if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) {
        showError('grace-error', 'The grace period must be a whole number of seconds from 1 to 3600.');
        $('grace-seconds').focus();
        return;
      }
    }
    var action = graceAction;
    $('grace-ok').disabled = true;
    action(seconds).then(function () {
      $('grace-ok').disabled = false;
      graceAction = null;
      $('grace-dialog').close();
    }, function (e) {
      $('grace-ok').disabled = false;
      if (e instanceof SignedOut) return;
      showError('grace-error', e);
    });
  });

  // ---- sign in -------------------------------------------------------------------------

  function methodChanged() {
    var basic = $('method-basic').checked;
    $('signin-key').hidden = basic;
    $('signin-basic').hidden = !basic;
  }
  $('method-key').addEventListener('change', methodChanged);
  $('method-basic').addEventListener('change', methodChanged);

  $('signin-form').addEventListener('submit', function (event) {
    event.preventDefault();
    $('signin-error').hidden = true;
    var candidate;
    if ($('method-basic').checked) {
      var id = $('client-id').value.trim(), secret = $('client-secret').value.trim();
      if (!id || !secret) return signinError('Enter both the client id and the API secret.');
      candidate = { header: 'authorization', value: 'Basic ' + btoa(id + ':' + secret), label: 'Signed in as ' + id, basic: true };
    } else {
      var key = $('api-key').value.trim();
      if (!key) return signinError('Paste an API key.');
      candidate = { header: 'x-api-key', value: key, label: 'Signed in with an API key', basic: false };
    }
    $('signin-submit').disabled = true;
    credential = candidate;
    api('GET', '/v1/projects', undefined, true).then(function () {
      $('signin-submit').disabled = false;
      $('api-key').value = '';
      $('client-secret').value = '';
      $('signin').hidden = true;
      $('view').hidden = false;
      $('nav').hidden = false;
      $('who').hidden = false;
      $('who-text').textContent = credential.label;
      if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/keys';
      else render();
    }, function (e) {
      credential = null;
      $('signin-submit').disabled = false;
      signinError(e.status === 401
        ? 'These credentials were refused' + (e.detail ? ': ' + e.detail : '') + '.'
        : 'Could not sign in: ' + problemText(e));
    });
  });

  function signinError(text) {
    $('signin-error').textContent = text;
    $('signin-error').hidden = false;
    $('signin-error').focus();
  }

  function signOut(message) {
    credential = null;
    var dialogs = document.querySelectorAll('dialog');
    onRevealClosed = null;
    for (var i = 0; i < dialogs.length; i++) if (dialogs[i].open) dialogs[i].close();
    $('reveal-value').textContent = '';
    clear($('view'));
    $('view').hidden = true;
    $('nav').hidden = true;
    $('who').hidden = true;
    $('who-text').textContent = '';
    $('signin').hidden = false;
    $('api-key').value = '';
    $('client-secret').value = '';
    if (message) {
      $('signin-error').textContent = message;
      $('signin-error').hidden = false;
    } else {
      $('signin-error').hidden = true;
    }
    $('signin-title').setAttribute('tabindex', '-1');
    $('signin-title').focus();
  }

  $('sign-out').addEventListener('click', function () { signOut('You signed out.'); });

  // ---- routing -------------------------------------------------------------------------

  var renderId = 0;

  function route() {
    var parts = location.hash.replace(/^#\/?/, '').split('/');
    return { page: parts[0] || 'keys', id: parts[1] ? decodeURIComponent(parts[1]) : null };
  }

  function render() {
    if (!credential) return;
    var r = route();
    var id = ++renderId;
    var links = document.querySelectorAll('#nav a');
    for (var i = 0; i < links.length; i++) {
      if (links[i].getAttribute('data-page') === r.page) links[i].setAttribute('aria-current', 'page');
      else links[i].removeAttribute('aria-current');
    }
    var view = $('view');
    clear(view);
    var pages = { keys: keysPage, projects: r.id ? projectPage : projectsPage, integrator: integratorPage, audit: auditPage };
    var page = pages[r.page] || keysPage;
    view.setAttribute('data-page', r.id ? 'project' : r.page);
    view.setAttribute('aria-busy', 'true');
    Promise.resolve(page(r.id)).then(function (nodes) {
      if (id !== renderId || !credential) return;
      clear(view);
      append(view, nodes);
      view.removeAttribute('aria-busy');
      var title = $('page-title');
      if (title) title.focus();
    }, function (e) {
      if (id !== renderId || e instanceof SignedOut) return;
      clear(view);
      append(view, [heading('Something went wrong'), failure(e)]);
      view.removeAttribute('aria-busy');
    });
  }

  window.addEventListener('hashchange', render);

  // Renders the current page again, keeping focus where the user expects it.
  function refresh() { render(); }

  // ---- API keys ------------------------------------------------------------------------

  function projectNames() {
    return fetchAll('/v1/projects', 'projects').then(function (projects) {
      var names = {};
      projects.forEach(function (p) { names[p.projectId] = p.name || p.projectId; });
      return { list: projects, names: names };
    }, function (e) {
      if (e instanceof SignedOut) throw e;
      return { list: [], names: {} };
    });
  }

  function keysPage() {
    return Promise.all([fetchAll('/v1/api-keys', 'apiKeys').catch(function (e) { return e; }), projectNames()])
      .then(function (both) {
        var keys = both[0], projects = both[1];
        var out = [heading('API keys')];
        if (keys instanceof SignedOut) throw keys;
        if (keys instanceof ApiError && keys.status === 403) {
          out.push(forbidden('list, create or delete API keys', keys));
          return out;
        }
        if (keys instanceof Error || keys instanceof ApiError) throw keys;
        out.push(el('p', null, 'Keys call the admin API with the header ', el('code', null, 'x-api-key'),
          '. A key is shown once, when it is created; here it is masked.'));
        out.push(el('div', { class: 'toolbar' }, el('button', { type: 'button', class: 'primary', id: 'create-key', onclick: function () {
          openCreateKey(projects.list);
        } }, 'Create API key')));
        var rows = keys.map(function (k) {
          var scope = k.projects && k.projects.length
            ? el('ul', { class: 'plain' }, k.projects.map(function (p) {
              return el('li', null, projects.names[p] ? projects.names[p] + ' ' : '', el('code', null, p));
            }))
            : el('span', null, 'All projects');
          var label = k.name ? 'Delete the key ' + k.name : 'Delete the unnamed key ' + k.key;
          return el('tr', { 'data-key-id': k.id },
            cell('Name', k.name ? k.name : el('span', { class: 'muted' }, '(no name)')),
            cell('Key', el('code', null, k.key)),
            cell('Limited to', scope),
            cell('Created', when(k.createdAt)),
            cell('Last used', when(k.lastUsedAt, 'Never')),
            cell('Expires', k.expiresAt ? when(k.expiresAt) : el('span', { class: 'muted' }, 'Never')),
            cell('Actions', el('button', { type: 'button', class: 'danger delete-key', 'aria-label': label, onclick: function () {
              deleteKey(k);
            } }, 'Delete')));
        });
        out.push(table('API keys', ['Name', 'Key', 'Limited to', 'Created', 'Last used', 'Expires', 'Actions'],
          rows, 'No API keys yet.'));
        return out;
      });
  }

  function openCreateKey(projects) {
    $('key-name').value = '';
    $('key-expiry').value = '';
    var list = $('key-project-list');
    clear(list);
    if (!projects.length) list.appendChild(el('p', { class: 'hint' }, 'No projects yet.'));
    projects.forEach(function (p, i) {
      var id = 'key-project-' + i;
      list.appendChild(el('div', { class: 'check' },
        el('input', { type: 'checkbox', id: id, value: p.projectId }),
        el('label', { for: id }, (p.name || '(no name)') + ' ', el('code', null, p.projectId))));
    });
    $('create-key-step1').hidden = false;
    $('create-key-step2').hidden = true;
    hideError('create-key-error');
    $('create-key-dialog').showModal();
    $('key-name').focus();
  }

  function keyRequest() {
    var body = {};
    var name = $('key-name').value.trim();
    if (name) body.name = name;
    var ticked = Array.prototype.slice.call($('key-project-list').querySelectorAll('input:checked'))
      .map(function (i) { return i.value; });
    if (ticked.length) body.projects = ticked;
    var expiry = $('key-expiry').value;
    if (expiry) body.expiresInSeconds = Number(expiry);
    return body;
  }

  $('create-key-next').addEventListener('click', function () {
    var body = keyRequest();
    var summary = $('create-key-summary');
    clear(summary);
    append(summary, [
      el('dt', null, 'Name'), el('dd', null, body.name || '(no name)'),
      el('dt', null, 'Limited to'), el('dd', null, body.projects ? body.projects.join(', ') : 'All projects (full access)'),
      el('dt', null, 'Expires'), el('dd', null, $('key-expiry').selectedOptions[0].textContent)
    ]);
    $('create-key-step1').hidden = true;
    $('create-key-step2').hidden = false;
    $('create-key-confirm').focus();
  });

  $('create-key-back').addEventListener('click', function () {
    $('create-key-step2').hidden = true;
    $('create-key-step1').hidden = false;
    $('key-name').focus();
  });

  $('create-key-form').addEventListener('submit', function (event) { event.preventDefault(); });

  $('create-key-confirm').addEventListener('click', function () {
    var button = $('create-key-confirm');
    button.disabled = true;
    api('POST', '/v1/api-keys', keyRequest()).then(function (created) {
      button.disabled = false;
      $('create-key-dialog').close();
      var name = created.name ? '“' + created.name + '”' : 'without a name';
      reveal('Your new API key', 'The API key ' + name + ':', String(created.key),
        'Send it as the x-api-key header.', refresh);
      created.key = null;
    }, function (e) {
      button.disabled = false;
      if (e instanceof SignedOut) return;
      showError('create-key-error', explain(e, 'create API keys'));
    });
  });

  function deleteKey(k) {
    confirmDanger({
      title: 'Delete the API key ' + (k.name ? '“' + k.name + '”' : k.key) + '?',
      text: 'This cannot be undone. Every integration using this key stops working at once: its next request is refused.',
      ok: 'Delete key',
      expected: k.name || null,
      action: function () {
        return api('DELETE', '/v1/api-keys/' + enc(k.id)).then(function () {
          flash('The API key ' + (k.name || k.key) + ' was deleted.');
          refresh();
        }, function (e) { throw explain(e, 'delete API keys'); });
      }
    });
  }

  // ---- projects ------------------------------------------------------------------------

  function webhookUrl(p) { return location.origin + p.webhookPath; }

  function projectsPage() {
    return fetchAll('/v1/projects', 'projects').then(function (projects) {
      var out = [heading('Projects'),
        el('p', null, 'Each project verifies the webhooks sent to its URL with its signing secret.'),
        el('div', { class: 'toolbar' }, el('button', { type: 'button', class: 'primary', id: 'create-project', onclick: openCreateProject }, 'Create project'))];
      var rows = projects.map(function (p) {
        var url = webhookUrl(p);
        var live = (p.keys || []).length;
        return el('tr', { 'data-project-id': p.projectId },
          cell('Name', el('a', { href: '#/projects/' + enc(p.projectId) }, p.name || p.projectId)),
          cell('Scheme', p.scheme),
          cell('Webhook URL', el('div', { class: 'url-row' }, el('code', { class: 'url' }, url),
            copyButton('Copy the webhook URL of ' + (p.name || p.projectId), function () { return url; }))),
          cell('Live keys', String(live) + (live > 1 ? ' (rotating)' : '')));
      });
      out.push(table('Projects', ['Name', 'Scheme', 'Webhook URL', 'Live keys'], rows, 'No projects yet.'));
      return out;
    });
  }

  function openCreateProject() {
    $('project-name').value = '';
    $('project-scheme').value = 'standard-webhooks';
    hideError('create-project-error');
    $('create-project-dialog').showModal();
    $('project-name').focus();
  }

  $('create-project-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var body = { scheme: $('project-scheme').value };
    var name = $('project-name').value.trim();
    if (name) body.name = name;
    $('create-project-ok').disabled = true;
    api('POST', '/v1/projects', body).then(function (created) {
      $('create-project-ok').disabled = false;
      $('create-project-dialog').close();
      var id = created.projectId;
      reveal('Project created: its signing secret', 'The signing secret of ' + (created.name || id) + ':',
        String(created.signingSecret), 'Give it to the sender; webhooks go to ' + webhookUrl(created) + '.',
        function () { location.hash = '#/projects/' + enc(id); });
      created.signingSecret = null;
    }, function (e) {
      $('create-project-ok').disabled = false;
      if (e instanceof SignedOut) return;
      showError('create-project-error', explain(e, 'create projects'));
    });
  });

  function projectPage(id) {
    return api('GET', '/v1/projects/' + enc(id)).then(function (p) {
      var name = p.name || p.projectId;
      var url = webhookUrl(p);
      var rows = (p.keys || []).map(function (k) {
        return el('tr', { 'data-key-id': k.id, 'data-role': k.role },
          cell('Key', el('code', null, k.id)),
          cell('Role', el('span', { class: 'badge ' + k.role }, k.role === 'current' ? 'Current' : 'Grace')),
          cell('Created', when(k.createdAt)),
          cell('Expires', countdown(k.expiresAt)),
          cell('Last verified', when(k.lastVerifiedAt, 'Never')));
      });
      var hasGrace = (p.keys || []).some(function (k) { return k.role === 'grace'; });
      return [
        el('p', { class: 'crumbs' }, el('a', { href: '#/projects' }, '← All projects')),
        heading('Project ' + name),
        el('dl', { class: 'summary' },
          el('dt', null, 'Project id'), el('dd', null, el('code', null, p.projectId)),
          el('dt', null, 'Scheme'), el('dd', null, p.scheme),
          el('dt', null, 'Created'), el('dd', null, when(p.createdAt)),
          el('dt', null, 'Webhook URL'), el('dd', null, el('div', { class: 'url-row' }, el('code', { class: 'url' }, url),
            copyButton('Copy the webhook URL', function () { return url; })))),
        el('h2', null, 'Signing keys'),
        el('p', null, 'The current key signs; grace keys still verify until they expire.'),
        table('Signing keys', ['Key', 'Role', 'Created', 'Expires', 'Last verified'], rows, 'No live keys.'),
        el('div', { class: 'toolbar' },
          el('button', { type: 'button', class: 'primary', id: 'regenerate-secret', onclick: function () { regenerateProject(p); } }, 'Regenerate signing secret'),
          el('button', { type: 'button', id: 'end-previous', disabled: !hasGrace, onclick: function () { endPrevious(p); } }, 'End previous secrets now')),
        el('h2', null, 'Danger zone'),
        el('div', { class: 'toolbar' },
          el('button', { type: 'button', class: 'danger', id: 'delete-project', onclick: function () { deleteProject(p); } }, 'Delete project'))
      ];
    }, function (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 403)) {
        return [heading('Project not available'), failure(e), el('p', null, el('a', { href: '#/projects' }, 'Back to the projects'))];
      }
      throw e;
    });
  }

  function regenerateProject(p) {
    chooseGrace('Regenerate the signing secret of ' + (p.name || p.projectId),
      'A new signing secret is made at once. Choose whether webhooks signed with the old one are still accepted for a while.',
      function (seconds) {
        var body = seconds ? { oldSecretValidForSeconds: seconds } : {};
        return api('POST', '/v1/external-support/' + enc(p.projectId) + '/secret/regenerate', body).then(function (done) {
          var extra = done.oldSecretExpiresAt
            ? 'The old secret keeps working until ' + exact(done.oldSecretExpiresAt) + '.'
            : 'The old secret no longer works.';
          reveal('New signing secret', 'The new signing secret of ' + (p.name || p.projectId) + ':',
            String(done.signingSecret), extra, refresh);
          done.signingSecret = null;
        }, function (e) { throw explain(e, 'regenerate this project\'s signing secret'); });
      });
  }

  function endPrevious(p) {
    confirmDanger({
      title: 'End the previous secrets of ' + (p.name || p.projectId) + ' now?',
      text: 'Webhooks signed with any old secret of this project are refused from now on. This cannot be undone.',
      ok: 'End previous secrets',
      expected: null,
      action: function () {
        return api('DELETE', '/v1/external-support/' + enc(p.projectId) + '/secret/previous').then(function (done) {
          var n = done && done.endedKeyIds ? done.endedKeyIds.length : 0;
          flash(n === 1 ? 'One previous secret was ended.' : n + ' previous secrets were ended.');
          refresh();
        }, function (e) { throw explain(e, 'end previous secrets'); });
      }
    });
  }

  function deleteProject(p) {
    confirmDanger({
      title: 'Delete the project ' + (p.name || p.projectId) + '?',
      text: 'This cannot be undone. Its webhook URL stops accepting webhooks at once and its signing secrets are destroyed.',
      ok: 'Delete project',
      expected: p.name || null,
      action: function () {
        return api('DELETE', '/v1/projects/' + enc(p.projectId)).then(function () {
          flash('The project ' + (p.name || p.projectId) + ' was deleted.');
          location.hash = '#/projects';
        }, function (e) { throw explain(e, 'delete projects'); });
      }
    });
  }

  // ---- integrator ----------------------------------------------------------------------

  function integratorPage() {
    return [
      heading('Integrator'),
      el('p', null, 'Your API secret is the password of HTTP Basic authentication, with your client id as the user name.'),
      el('div', { class: 'toolbar' },
        el('button', { type: 'button', class: 'primary', id: 'regenerate-api-secret', onclick: regenerateIntegrator }, 'Regenerate API secret'))
    ];
  }

  function regenerateIntegrator() {
    chooseGrace('Regenerate your API secret',
      'A new API secret is made at once. Choose whether the old one still works for a while.',
      function (seconds) {
        var body = seconds ? { oldSecretValidForSeconds: seconds } : {};
        return api('POST', '/v1/integrator/regenerate-secret', body).then(function (done) {
          var extra = done.oldSecretExpiresAt
            ? 'The old secret keeps working until ' + exact(done.oldSecretExpiresAt) + '.'
            : 'The old secret no longer works.';
          var signOutAfter = credential && credential.basic && !done.oldSecretExpiresAt;
          if (signOutAfter) extra += ' You signed in with it: sign in again with the new one.';
          reveal('New API secret', 'Your new API secret:', String(done.secret), extra, function () {
            if (signOutAfter) signOut('Your API secret changed. Sign in with the new one.');
          });
          done.secret = null;
        }, function (e) { throw explain(e, 'regenerate the API secret'); });
      });
  }

  // ---- audit ---------------------------------------------------------------------------

  function auditPage() {
    var state = { events: [], next: null, projects: {} };
    var projectFilter = el('select', { id: 'audit-project' }, el('option', { value: '' }, 'All projects'));
    var actionFilter = el('select', { id: 'audit-action' }, el('option', { value: '' }, 'All actions'),
      KNOWN_ACTIONS.map(function (a) { return el('option', { value: a }, a); }));
    var body = el('div', { id: 'audit-body' });
    var count = el('p', { class: 'hint', role: 'status', id: 'audit-count' });
    var more = el('button', { type: 'button', id: 'audit-more', hidden: true }, 'Load older events');

    function load(cursor) {
      var path = '/v1/audit?limit=50';
      var first = cursor ? withQuery(path, 'before', cursor) : path;
      return api('GET', first).catch(function (e) {
        // A server that pages with an opaque `cursor=` instead of `before=`.
        if (cursor && e instanceof ApiError && e.status === 400) return api('GET', withQuery(path, 'cursor', cursor));
        throw e;
      }).then(function (json) {
        var events = json && Array.isArray(json.events) ? json.events : [];
        state.events = state.events.concat(events);
        state.next = json && typeof json.nextCursor === 'string' && json.nextCursor ? json.nextCursor : null;
        draw();
      });
    }

    function draw() {
      var p = projectFilter.value, a = actionFilter.value;
      var shown = state.events.filter(function (e) {
        return (!p || e.projectId === p) && (!a || e.action === a);
      });
      var rows = shown.map(function (e) {
        var details = [];
        if (e.newKeyId) details.push('new key ' + e.newKeyId);
        if (e.oldKeyIds && e.oldKeyIds.length) details.push('old keys ' + e.oldKeyIds.join(', '));
        if (e.graceSeconds) details.push('grace ' + e.graceSeconds + ' s');
        if (e.expiresAt) details.push('until ' + exact(e.expiresAt));
        return el('tr', null,
          cell('When', when(e.at)),
          cell('Action', el('code', null, e.action)),
          cell('Project', e.projectId
            ? [state.projects[e.projectId] ? state.projects[e.projectId] + ' ' : '', el('code', null, e.projectId)]
            : '—'),
          cell('Actor', e.actor ? el('code', null, String(e.actor)) : '—'),
          cell('Details', details.join('; ') || '—'));
      });
      clear(body);
      append(body, table('Audit events, newest first', ['When', 'Action', 'Project', 'Actor', 'Details'], rows,
        state.events.length ? 'No fetched event matches the filters.' : 'No events yet.'));
      count.textContent = 'Showing ' + shown.length + ' of ' + state.events.length + ' fetched events' +
        (state.next ? '; load older events to see more.' : '.');
      more.hidden = !state.next;
    }

    more.addEventListener('click', function () {
      more.disabled = true;
      load(state.next).then(function () { more.disabled = false; more.focus(); }, function (e) {
        more.disabled = false;
        if (!(e instanceof SignedOut)) append(body, failure(e));
      });
    });
    projectFilter.addEventListener('change', draw);
    actionFilter.addEventListener('change', draw);

    return projectNames().then(function (projects) {
      projects.list.forEach(function (p) {
        state.projects[p.projectId] = p.name || '';
        projectFilter.appendChild(el('option', { value: p.projectId }, (p.name ? p.name + ' — ' : '') + p.projectId));
      });
      return load(null);
    }).then(function () {
      return [heading('Audit log'),
        el('p', null, 'Every change to a credential, newest first. Secrets are never logged.'),
        el('form', { class: 'filters', id: 'audit-filters' },
          el('div', { class: 'field' }, el('label', { for: 'audit-project' }, 'Project'), projectFilter),
          el('div', { class: 'field' }, el('label', { for: 'audit-action' }, 'Action'), actionFilter)),
        count, body, el('div', { class: 'toolbar' }, more)];
    });
  }

  document.addEventListener('submit', function (event) {
    if (event.target && event.target.id === 'audit-filters') event.preventDefault();
  });

  // A reload starts signed out: nothing is remembered.
  $('api-key').focus();
})();
