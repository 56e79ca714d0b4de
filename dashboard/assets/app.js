// The migration dashboard of envelope-proxy.
//
// It polls /api/clients (and /api/clients/{name}[?replica=R] and
// /api/suggestions?client=NAME in the detail view) every five seconds and
// draws the page from the answers: the fleet of replicas that share the
// evidence, the clients, and one client with the rules suggested for it.
// Client names, codes, replica names and sample bodies come from config and
// traffic, so they are only ever put in the page as text (textContent,
// setAttribute); nothing here turns a string into markup. The list's
// filters, sort and page, and the replica a client's page is limited to,
// live in the URL's hash, so the back button, a reload and a shared link
// all keep them.
'use strict';

(() => {
  const POLL_MS = 5000;
  const FETCH_TIMEOUT_MS = 10000;
  const PAGE_SIZE = 50;
  // The SVG namespace is a name, not an address: nothing is fetched from it.
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const VERDICT_TEXT = {
    ready: 'ready',
    not_ready: 'not ready',
    insufficient_evidence: 'insufficient evidence',
  };
  // Severity order, most urgent first, as the verdict package has it.
  const VERDICT_RANK = { not_ready: 0, insufficient_evidence: 1, ready: 2 };
  const MODES = ['legacy', 'shadow', 'envelope'];
  const KINDS = ['client', 'cohort', 'default', 'removed'];
  // A replica's states, as package evidence names them.
  const REPLICA_STATES = ['active', 'silent', 'stopped', 'gone'];
  // Where a contract violation's envelope came from, for a human: the
  // label and what it means.
  const VIOLATION_SOURCES = {
    live: ['live', 'An envelope the proxy sent this client'],
    dry_run: ['dry run', 'What this shadow client\'s dry run computed: what it would get once flipped'],
  };
  // Why the contract refuses an envelope, for a human.
  const VIOLATION_REASONS = {
    undocumented_status: 'The contract documents no response with this status for this operation.',
    undocumented_code: 'The contract does not list this error code for this status.',
    schema: 'The body does not match the response\'s schema.',
    not_json: 'The body is not JSON.',
  };
  // The shadow outcomes the page tells apart, as package event names them:
  // the colour class of their row and what they mean. Both kinds of
  // ignored count as compared, like match and mismatch.
  const OUTCOMES = {
    match: ['good', 'The candidate answered the envelope\'s status and an equal body'],
    mismatch: ['bad', 'The statuses differ, or the bodies differ outside the ignored paths'],
    ignored: ['ignored', 'Equal statuses; the bodies differ only at shadow.ignore paths'],
    ignored_learned: ['learned', 'Equal statuses; the bodies differ only at paths learned as the candidate\'s noise (shadow.learn_ignores), and ignored ones'],
    candidate_error: ['other', 'The candidate could not be reached, or its answer could not be read'],
    candidate_timeout: ['other', 'No answer within candidate.timeout'],
    dropped: ['other', 'shadow.max_in_flight comparisons were already running'],
    skipped_too_large: ['other', 'A body was over shadow.max_body_bytes, or the request body over shadow.max_request_bytes'],
    skipped_method: ['other', 'Dry-run, not replayed: the method is not in shadow.methods nor the route in shadow.replay'],
    dry_run: ['other', 'No candidate configured: the dry run is all there is'],
    upstream_error: ['other', 'The legacy backend itself failed: nothing to compare'],
  };
  // A rule suggestion's kind as the page labels it, and what its count
  // counts.
  const SUGGESTION_KINDS = {
    unmapped: ['unmapped', 'unmapped'],
    candidate: ['candidate', 'comparisons agree'],
  };

  // The list's columns: key, header, and how a row sorts on it.
  const COLUMNS = [
    { key: 'name', label: 'Client', dir: 'asc' },
    { key: 'mode', label: 'Mode', dir: 'asc' },
    { key: 'requests', label: 'Requests', num: true },
    { key: 'share', label: 'Share', num: true, title: 'Part of all requests in the window' },
    { key: 'c4xx', label: '4xx', num: true, title: 'Share of the client\'s responses with a 4xx status' },
    { key: 'c5xx', label: '5xx', num: true, title: 'Share of the client\'s responses with a 5xx status' },
    { key: 'unmapped', label: 'Unmapped', num: true, title: 'Errors no rule matched' },
    { key: 'contract', label: 'Contract', num: true, title: 'Envelopes the new API\'s contract does not allow (live and dry run)' },
    { key: 'mismatch', label: 'Mismatch', num: true, title: 'Shadow: mismatches over compared exchanges' },
    { key: 'p50', label: 'Added p50', num: true, title: 'Latency the proxy added, median' },
    { key: 'p99', label: 'Added p99', num: true, title: 'Latency the proxy added, 99th percentile' },
    { key: 'verdict', label: 'Verdict', dir: 'asc', title: 'Not ready first, then insufficient evidence, then ready' },
  ];
  const DEFAULT_SORT = { key: 'requests', dir: 'desc' };

  const state = {
    overview: null, // the last overview that arrived
    rows: [], // the overview's clients with their sort keys
    receivedAt: 0, // when the last successful poll ended (Date.now())
    error: '', // why the last poll failed; empty when it worked
    detailName: null, // the client the detail view shows; null in the list
    detailReplica: '', // the replica its numbers are limited to; '' for the fleet
    detail: null, // its last ClientDetail
    detailRaw: '', // the JSON it came from, to skip redrawing unchanged data
    detailMissing: false, // the API said 404
    suggest: null, // the client's last Suggestions; null when not fetched
    suggestRaw: '', // the JSON they came from
    filter: { name: '', mode: '', verdict: '' },
    sort: { ...DEFAULT_SORT },
    page: 1,
    open: new Set(), // rows whose reasons are expanded
    listScroll: 0,
    cameFromList: false,
    range: 'recent', // the charts' range: 'recent' (last hour, by minute) or 'series' (the window, by hour)
  };

  let pollSeq = 0;
  let pollTimer = 0;
  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers -------------------------------------------------------

  // h builds an element. attrs: class, text, on<event> handlers, and
  // attributes; children: nodes, strings (as text) and arrays of them.
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    add(e, children);
    return e;
  }

  function s(tag, attrs, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    add(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.setAttribute('class', v);
      else if (k === 'text') e.textContent = v;
      else if (typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function add(parent, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) {
      for (const x of c) add(parent, x);
    } else if (c instanceof Node) {
      parent.append(c);
    } else {
      parent.append(document.createTextNode(String(c)));
    }
  }

  // ---- formatting --------------------------------------------------------

  const numberFormat = new Intl.NumberFormat('en-US');
  const count = (n) => numberFormat.format(n || 0);

  // percent formats a ratio as verdict.Percent does: 0.004 is "0.4%",
  // 0.00012 is "0.012%".
  function percent(r) {
    if (r === null || r === undefined || !Number.isFinite(r)) return '–';
    const p = r * 100;
    let prec = 1;
    while (prec < 4 && p !== 0 && p < 1 / 10 ** prec) prec++;
    if (prec > 1) prec++;
    let out = p.toFixed(prec);
    if (out.includes('.')) out = out.replace(/0+$/, '').replace(/\.$/, '');
    return out + '%';
  }

  function ms(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return '–';
    if (v >= 1000) return (v / 1000).toFixed(2) + ' s';
    if (v >= 100) return Math.round(v) + ' ms';
    if (v >= 10) return v.toFixed(1) + ' ms';
    return v.toFixed(2) + ' ms';
  }

  // latencyPair shows p50 and p99 with one unit when they share it.
  function latencyPair(a, b) {
    const x = ms(a);
    const y = ms(b);
    return x.endsWith(' ms') && y.endsWith(' ms') ? `${x.slice(0, -3)} / ${y}` : `${x} / ${y}`;
  }

  function ago(msAgo) {
    const sec = Math.max(0, Math.round(msAgo / 1000));
    if (sec < 60) return sec + 's ago';
    if (sec < 3600) return Math.floor(sec / 60) + 'm ago';
    return Math.floor(sec / 3600) + 'h ago';
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
  const when = (d) => dateTimeFormat.format(d);

  const ratio = (n, d) => (d ? n / d : 0);
  const verdictText = (st) => VERDICT_TEXT[st] || st || 'unknown';

  // ---- data --------------------------------------------------------------

  // summaryRow adds the derived values the list sorts on to a summary.
  function summaryRow(c) {
    const classes = c.classes || {};
    const lat = c.added_latency || {};
    const sh = c.shadow;
    return {
      c,
      name: c.name || '',
      mode: c.mode || 'legacy',
      requests: c.requests || 0,
      share: c.share || 0,
      c4xx: c.requests ? ratio(classes['4xx'] || 0, c.requests) : null,
      c5xx: c.requests ? ratio(classes['5xx'] || 0, c.requests) : null,
      unmapped: c.unmapped || 0,
      contract: c.contract ? c.contract.violations || 0 : null,
      mismatch: sh && sh.compared ? sh.mismatch_ratio : null,
      p50: lat.count ? lat.p50_ms : null,
      p99: lat.count ? lat.p99_ms : null,
      verdict: (c.verdict && c.verdict.state) || '',
    };
  }

  function compareRows(a, b) {
    const { key, dir } = state.sort;
    let x = a[key];
    let y = b[key];
    if (key === 'verdict') {
      x = VERDICT_RANK[x] ?? 9;
      y = VERDICT_RANK[y] ?? 9;
    }
    // Rows without the value (no shadow, no traffic) go last either way.
    if (x === null && y !== null) return 1;
    if (y === null && x !== null) return -1;
    let r = 0;
    if (typeof x === 'string') r = x.localeCompare(y);
    else if (x !== null) r = x - y;
    if (dir === 'desc') r = -r;
    return r || a.name.localeCompare(b.name);
  }

  function visibleRows() {
    const q = state.filter.name.trim().toLowerCase();
    const { mode, verdict } = state.filter;
    const rows = state.rows.filter((r) => (!q || r.name.toLowerCase().includes(q))
      && (!mode || r.mode === mode)
      && (!verdict || r.verdict === verdict));
    rows.sort(compareRows);
    return rows;
  }

  // ---- fetching ----------------------------------------------------------

  // getJSON returns the parsed body and its text; null for a 404 when
  // allowed.
  async function getJSON(url, allow404) {
    const opts = {
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
    };
    if (typeof AbortSignal !== 'undefined' && AbortSignal.timeout) {
      opts.signal = AbortSignal.timeout(FETCH_TIMEOUT_MS);
    }
    let resp;
    try {
      resp = await fetch(url, opts);
    } catch (e) {
      throw new Error(e && e.name === 'TimeoutError' ? 'the admin listener did not answer in time' : 'the admin listener could not be reached');
    }
    if (resp.status === 404 && allow404) return null;
    if (resp.status === 401 || resp.status === 403) {
      throw new Error(`HTTP ${resp.status} from ${url}: reload the page to sign in again`);
    }
    if (!resp.ok) {
      // The API explains its failures ({"error": "..."}, as the 503 of an
      // unreadable store); anything else is named by its status alone.
      let why = '';
      try {
        const body = await resp.json();
        if (body && typeof body.error === 'string' && body.error) why = ': ' + body.error;
      } catch {
        // not JSON: the status says enough
      }
      throw new Error(`HTTP ${resp.status} from ${url}${why}`);
    }
    const text = await resp.text();
    try {
      return { text, data: JSON.parse(text) };
    } catch {
      throw new Error(`${url} did not answer JSON`);
    }
  }

  async function poll() {
    clearTimeout(pollTimer);
    const seq = ++pollSeq;
    const name = state.detailName;
    const replica = state.detailReplica;
    const suggest = name !== null && wantsSuggestions(name);
    try {
      const [ov, det, sg] = await Promise.all([
        getJSON('/api/clients'),
        name === null ? Promise.resolve(undefined) : getJSON(detailURL(name, replica), true),
        suggest ? getJSON(suggestionsURL(name, false)) : Promise.resolve(null),
      ]);
      if (seq !== pollSeq) return; // a navigation started a newer poll
      state.overview = ov.data;
      state.rows = (ov.data.clients || []).map(summaryRow);
      if (name !== null) {
        state.detailMissing = det === null;
        if (det === null) {
          state.detail = null;
          state.detailRaw = '';
        } else if (det.text !== state.detailRaw) {
          state.detail = det.data;
          state.detailRaw = det.text;
        }
        if (sg === null) {
          state.suggest = null;
          state.suggestRaw = '';
        } else if (sg.text !== state.suggestRaw) {
          state.suggest = sg.data;
          state.suggestRaw = sg.text;
        }
      }
      state.error = '';
      state.receivedAt = Date.now();
    } catch (e) {
      if (seq !== pollSeq) return;
      state.error = (e && e.message) || String(e);
    }
    render();
    pollTimer = setTimeout(poll, POLL_MS);
  }

  // detailURL is the API's URL of a client's detail, limited to one
  // replica when replica is not ''.
  function detailURL(name, replica) {
    return '/api/clients/' + encodeURIComponent(name) + (replica ? '?replica=' + encodeURIComponent(replica) : '');
  }

  // suggestionsURL is the API's URL of the rules and shadow.ignore entries
  // suggested from a client's evidence: JSON, or the config fragment to
  // paste when yaml is set.
  function suggestionsURL(name, yaml) {
    return '/api/suggestions?client=' + encodeURIComponent(name) + (yaml ? '&format=yaml' : '');
  }

  // SUGGESTING_MODES are the modes whose page shows suggestions: a legacy
  // client's traffic is neither rewritten nor compared.
  const SUGGESTING_MODES = ['shadow', 'envelope'];

  // wantsSuggestions says whether a poll fetches the client's suggestions:
  // unless its last known mode is legacy. A client switched to shadow gets
  // them from the poll after the one that brings its new mode.
  function wantsSuggestions(name) {
    let mode = '';
    if (state.detail) {
      mode = state.detail.mode || 'legacy';
    } else {
      const row = state.rows.find((r) => r.name === name);
      if (row) mode = row.mode;
    }
    return mode === '' || SUGGESTING_MODES.includes(mode);
  }

  // ---- routing -----------------------------------------------------------

  // detailHash is the hash of a client's page, limited to one replica when
  // replica is not ''.
  function detailHash(name, replica) {
    return 'client=' + encodeURIComponent(name) + (replica ? '&replica=' + encodeURIComponent(replica) : '');
  }

  function listHash() {
    const p = new URLSearchParams();
    if (state.filter.name) p.set('name', state.filter.name);
    if (state.filter.mode) p.set('mode', state.filter.mode);
    if (state.filter.verdict) p.set('verdict', state.filter.verdict);
    if (state.sort.key !== DEFAULT_SORT.key || state.sort.dir !== DEFAULT_SORT.dir) {
      p.set('sort', state.sort.key);
      p.set('dir', state.sort.dir);
    }
    if (state.page > 1) p.set('page', String(state.page));
    return p.toString();
  }

  // saveListState puts the list's state in the URL without adding a
  // history entry for every keystroke.
  function saveListState() {
    const hash = listHash();
    const url = hash ? '#' + hash : location.pathname + location.search;
    history.replaceState(null, '', url);
  }

  function route() {
    const p = new URLSearchParams(location.hash.slice(1));
    const client = p.get('client');
    if (client !== null) {
      const replica = p.get('replica') || '';
      if (state.detailName === null) {
        state.listScroll = window.scrollY;
        state.cameFromList = state.overview !== null;
      }
      if (client !== state.detailName || replica !== state.detailReplica) {
        if (client !== state.detailName) {
          state.suggest = null;
          state.suggestRaw = '';
        }
        state.detailName = client;
        state.detailReplica = replica;
        state.detail = null;
        state.detailRaw = '';
        state.detailMissing = false;
      }
      render();
      window.scrollTo(0, 0);
      poll();
      return;
    }
    const wasDetail = state.detailName !== null;
    state.detailName = null;
    state.detailReplica = '';
    state.detail = null;
    state.detailRaw = '';
    state.suggest = null;
    state.suggestRaw = '';
    state.filter.name = p.get('name') || '';
    state.filter.mode = MODES.includes(p.get('mode')) ? p.get('mode') : '';
    state.filter.verdict = p.get('verdict') in VERDICT_TEXT ? p.get('verdict') : '';
    const sortKey = p.get('sort');
    if (COLUMNS.some((c) => c.key === sortKey)) {
      state.sort = { key: sortKey, dir: p.get('dir') === 'asc' ? 'asc' : 'desc' };
    } else {
      state.sort = { ...DEFAULT_SORT };
    }
    state.page = Math.max(1, parseInt(p.get('page'), 10) || 1);
    syncControls();
    render();
    if (wasDetail) window.scrollTo(0, state.listScroll);
  }

  function openClient(name) {
    location.hash = detailHash(name, '');
  }

  // setReplica limits the client's page to one replica ('' for the whole
  // fleet), keeping the choice in the URL as the list's filters are kept:
  // without a history entry of its own.
  function setReplica(replica) {
    if (state.detailName === null || replica === state.detailReplica) return;
    state.detailReplica = replica;
    state.detail = null;
    state.detailRaw = '';
    state.detailMissing = false;
    history.replaceState(null, '', '#' + detailHash(state.detailName, replica));
    render();
    poll();
  }

  function backToList(ev) {
    if (state.cameFromList) {
      if (ev) ev.preventDefault();
      history.back();
    }
  }

  // ---- rendering: frame --------------------------------------------------

  function render() {
    renderFacts();
    renderFleetWarning();
    const inDetail = state.detailName !== null;
    $('fleet').hidden = inDetail;
    $('list').hidden = inDetail;
    $('detail').hidden = !inDetail;
    if (inDetail) {
      renderDetail();
    } else {
      renderFleet();
      renderList();
    }
    tick();
  }

  let factsFor = null;
  function renderFacts() {
    const ov = state.overview;
    if (!ov || factsFor === ov) return;
    factsFor = ov;
    const t = ov.thresholds || {};
    const st = ov.state || {};
    const facts = $('facts');
    let storage;
    if (st.kind === 'memory' || (!st.persistent && !st.kind)) {
      storage = h('span', { class: 'warn', title: st.error || '' }, 'memory only', st.error ? ': ' + st.error : '');
    } else if (st.error) {
      storage = h('span', { class: 'warn', title: st.error }, `${st.kind || 'store'} failing`,
        st.pending ? `, ${count(st.pending)} pending` : '');
    } else if (!st.persistent) {
      storage = h('span', { class: 'warn' }, `${st.kind || 'store'} not open yet`);
    } else {
      storage = h('span', { class: 'ok' }, st.kind || 'persistent', st.since ? ` since ${when(new Date(st.since))}` : '');
    }
    facts.replaceChildren(
      h('div', null, h('dt', { text: 'Window' }), h('dd', { text: ov.window || '–' })),
      h('div', null, h('dt', { text: 'Requests' }), h('dd', { text: count(ov.requests) })),
      h('div', null, h('dt', { text: 'Evidence' }), h('dd', null, storage)),
      h('div', { title: 'The minimum counts compared exchanges for a shadow client and requests for an envelope client' },
        h('dt', { text: 'Ready at' }), h('dd', {
          text: `≥ ${count(t.min_requests)} requests · mismatch ≤ ${percent(t.max_mismatch_ratio)} · `
            + `unmapped ≤ ${count(t.max_unmapped)} · candidate errors ≤ ${percent(t.max_candidate_errors_ratio)} · `
            + `upstream errors ≤ ${percent(t.max_upstream_errors_ratio)} · `
            + `contract violations ≤ ${count(t.max_contract_violations)}`,
        })),
    );
  }

  // tick refreshes the freshness text and the error banner; it runs every
  // second so "updated 12s ago" counts up between polls.
  function tick() {
    const upd = $('updated');
    const banner = $('error');
    if (!state.receivedAt) {
      upd.textContent = state.error ? 'no data yet' : 'loading…';
    } else {
      upd.textContent = 'updated ' + ago(Date.now() - state.receivedAt);
      const gen = state.overview && state.overview.generated_at;
      upd.title = gen ? 'Evidence computed at ' + new Date(gen).toLocaleString() : '';
    }
    upd.classList.toggle('stale', Boolean(state.error));
    for (const e of document.querySelectorAll('[data-local-t]')) {
      e.textContent = ago(Date.now() - Number(e.getAttribute('data-local-t')));
    }
    if (state.error) {
      const kept = state.receivedAt ? `Showing the data from ${ago(Date.now() - state.receivedAt)}` : 'No data yet';
      banner.textContent = `Could not refresh: ${state.error.replace(/\.$/, '')}. ${kept}; retrying every ${POLL_MS / 1000}s.`;
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  // ---- rendering: fleet --------------------------------------------------

  // renderFleetWarning shows the overview's warning about replicas gone
  // silent, on every view: their evidence is missing from every number.
  function renderFleetWarning() {
    const w = (state.overview && state.overview.fleet_warning) || '';
    const banner = $('fleet-warning');
    const text = w ? `Fleet: ${w.replace(/\.$/, '')}. What they have not written is missing from every number on this page.` : '';
    if (banner.textContent !== text) banner.textContent = text;
    banner.hidden = !w;
  }

  // localTime turns a time the server stamped into this browser's clock,
  // through the overview's generated_at, so that "12s ago" is right even
  // when the two clocks disagree.
  function localTime(iso) {
    const t = Date.parse(iso);
    const gen = Date.parse((state.overview && state.overview.generated_at) || '');
    if (!Number.isFinite(t)) return null;
    return Number.isFinite(gen) && state.receivedAt ? t + (state.receivedAt - gen) : t;
  }

  // relTime is a relative time that tick() keeps counting up.
  function relTime(iso) {
    const t = localTime(iso);
    if (t === null || !iso || iso.startsWith('0001-')) return h('span', { class: 'none', text: '–' });
    return h('time', {
      datetime: iso, title: new Date(Date.parse(iso)).toLocaleString(), 'data-local-t': String(t), text: ago(Date.now() - t),
    });
  }

  // storeProblem says what is wrong with the evidence store, or null.
  function storeProblem(st) {
    if (st.kind === 'memory') {
      return ['Evidence in memory only.', [
        st.error ? st.error.replace(/\.$/, '') + '.' : '',
        'It is lost at a restart and shared with no other replica.',
        st.lost ? `${count(st.lost)} minute buckets were dropped (memory full).` : '',
      ]];
    }
    if (!st.error && !st.lost) return null;
    return [st.error ? 'Evidence store problem.' : 'Evidence lost.', [
      st.error ? st.error.replace(/\.$/, '') + '.' : '',
      st.error ? `${count(st.pending)} minute buckets of this replica's evidence (one per client and minute) not yet written.` : '',
      st.lost ? `${count(st.lost)} minute buckets lost: dropped while the store was unreachable and memory was full.` : '',
    ]];
  }

  let fleetFor = null;
  function renderFleet() {
    const ov = state.overview;
    if (!ov || fleetFor === ov) return;
    fleetFor = ov;
    const st = ov.state || {};
    const fact = (label, value, cls) => h('div', { class: cls || null }, h('dt', { text: label }), h('dd', null, value));
    $('fleet-store').replaceChildren(...[
      fact('Store', h('span', { class: 'store-kind', 'data-kind': st.kind || '', text: st.kind || (st.persistent ? 'persistent' : 'memory') })),
      st.location ? fact('Location', h('code', { class: 'location', title: st.location, text: st.location })) : null,
      fact('This replica', h('span', { class: 'mono', text: st.replica || '–' })),
      fact('Evidence since', st.since ? when(new Date(st.since)) : '–'),
    ].filter(Boolean));
    const problem = storeProblem(st);
    const box = $('store-problem');
    if (problem) {
      box.replaceChildren(h('strong', { text: problem[0] }), ' ', problem[1].filter(Boolean).join(' '));
      box.classList.toggle('memory', st.kind === 'memory');
    }
    box.hidden = !problem;
    const reps = ov.replicas || [];
    $('replicas-body').replaceChildren(...(reps.length
      ? reps.map(replicaRow)
      : [h('tr', null, h('td', { colspan: 6, class: 'muted', text: 'No replica has written evidence in the window.' }))]));
  }

  function replicaState(st) {
    const known = REPLICA_STATES.includes(st) ? st : 'other';
    return h('span', { class: 'rstate rs-' + known, 'data-state': st || 'unknown', text: st || 'unknown' });
  }

  function replicaRow(r) {
    const share = h('td', { class: 'num share-cell' });
    const bar = h('span', { class: 'share-bar', 'aria-hidden': 'true' }, h('span', { class: 'share-fill' }));
    bar.firstChild.style.width = Math.max(0, Math.min(100, (r.share || 0) * 100)) + '%';
    share.append(h('div', { class: 'share' }, bar, h('span', { text: percent(r.share || 0) })));
    return h('tr', { 'data-replica': r.name, class: r.self ? 'self' : null },
      h('th', { scope: 'row' }, h('span', { class: 'mono replica-name', text: r.name }),
        r.self ? h('span', { class: 'self-tag', text: 'this replica' }) : null),
      h('td', null, replicaState(r.state)),
      h('td', { text: r.started ? when(new Date(r.started)) : '–' }),
      h('td', { class: 'last-write' }, relTime(r.last_seen)),
      h('td', { class: 'num', text: count(r.requests) }),
      share);
  }

  // ---- rendering: list ---------------------------------------------------

  function syncControls() {
    $('filter-name').value = state.filter.name;
    $('filter-mode').value = state.filter.mode;
    $('filter-verdict').value = state.filter.verdict;
  }

  let rowsSig = '';
  function renderList() {
    renderCounts();
    renderHead();
    const rows = visibleRows();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    if (state.page > pages) state.page = pages;
    const start = (state.page - 1) * PAGE_SIZE;
    const pageRows = rows.slice(start, start + PAGE_SIZE);

    // Keep the keyboard focus on the same row across redraws.
    const active = document.activeElement;
    const focusRow = active && active.closest && active.closest('tr[data-client]');
    const focusName = focusRow ? focusRow.getAttribute('data-client') : null;
    const focusSummary = active && active.tagName === 'SUMMARY';

    // Redraw the rows only when what they show changed, so a poll that
    // brings the same numbers leaves the table (hover, selection) alone.
    const sig = JSON.stringify([pageRows.map((r) => r.c), (state.overview || {}).thresholds]);
    const body = $('clients-body');
    if (sig === rowsSig) {
      renderPager(rows.length, start, pageRows.length, pages);
      return;
    }
    rowsSig = sig;
    body.replaceChildren(...pageRows.map(clientRow));
    if (focusName !== null) {
      for (const tr of body.children) {
        if (tr.getAttribute('data-client') === focusName) {
          const target = tr.querySelector(focusSummary ? 'summary' : 'a');
          if (target) target.focus({ preventScroll: true });
        }
      }
    }
    $('clients-empty').hidden = !(state.overview && rows.length === 0);
    renderPager(rows.length, start, pageRows.length, pages);
  }

  let countsSig = '';
  function renderCounts() {
    const by = { ready: 0, not_ready: 0, insufficient_evidence: 0 };
    for (const r of state.rows) if (r.verdict in by) by[r.verdict]++;
    const sig = JSON.stringify([by, state.rows.length, state.filter.verdict, state.overview !== null]);
    if (sig === countsSig) return;
    countsSig = sig;
    const card = (verdict, label, n) => h('button', {
      type: 'button',
      class: 'count' + (verdict ? ' count-' + verdict : ''),
      'data-count': verdict || 'all',
      'aria-pressed': String(state.filter.verdict === verdict),
      title: verdict ? `Show only the clients whose verdict is ${label}` : 'Show every client',
      onclick: () => setFilter('verdict', state.filter.verdict === verdict ? '' : verdict),
    }, h('span', { class: 'count-n', text: state.overview ? count(n) : '–' }), h('span', { class: 'count-label', text: label }));
    $('counts').replaceChildren(
      card('', 'clients', state.rows.length),
      card('not_ready', 'not ready', by.not_ready),
      card('insufficient_evidence', 'insufficient evidence', by.insufficient_evidence),
      card('ready', 'ready', by.ready),
    );
  }

  let headBuilt = false;
  function renderHead() {
    const head = $('clients-head');
    if (!headBuilt) {
      headBuilt = true;
      head.replaceChildren(...COLUMNS.map((col) => h('th', {
        scope: 'col',
        class: 'col-' + col.key + (col.num ? ' num' : ''),
        'data-key': col.key,
      }, h('button', {
        type: 'button',
        class: 'sort',
        title: col.title ? col.title + '. Sort by this column' : 'Sort by this column',
        onclick: () => sortBy(col),
      }, h('span', { text: col.label }), h('span', { class: 'arrow', 'aria-hidden': 'true' })))));
    }
    for (const th of head.children) {
      const key = th.getAttribute('data-key');
      const on = key === state.sort.key;
      if (on) th.setAttribute('aria-sort', state.sort.dir === 'asc' ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
      th.querySelector('.arrow').textContent = on ? (state.sort.dir === 'asc' ? '▲' : '▼') : '';
    }
  }

  function sortBy(col) {
    if (state.sort.key === col.key) {
      state.sort.dir = state.sort.dir === 'asc' ? 'desc' : 'asc';
    } else {
      state.sort = { key: col.key, dir: col.dir || 'desc' };
    }
    state.page = 1;
    saveListState();
    renderList();
  }

  function setFilter(which, value) {
    state.filter[which] = value;
    state.page = 1;
    syncControls();
    saveListState();
    renderList();
  }

  function modeTag(mode) {
    const m = MODES.includes(mode) ? mode : 'legacy';
    return h('span', { class: 'mode mode-' + m, text: mode || 'legacy' });
  }

  function kindTag(kind) {
    if (!kind || kind === 'client') return null;
    const k = KINDS.includes(kind) ? kind : 'other';
    return h('span', { class: 'kind kind-' + k, text: kind });
  }

  function verdictBadge(st, big) {
    const known = st in VERDICT_TEXT;
    return h('span', {
      class: 'badge' + (known ? ' v-' + st : '') + (big ? ' big' : ''),
      'data-verdict': st || 'unknown',
    }, verdictText(st));
  }

  function pctCell(v, warnAt) {
    const td = h('td', { class: 'num' + (v === null ? ' none' : '') }, v === null ? '–' : percent(v));
    if (v !== null && warnAt !== undefined && v > warnAt) td.classList.add('hot');
    return td;
  }

  // contractCell shows a row's contract violations: '–' when none of its
  // envelopes was checked in the window, hot over the threshold.
  function contractCell(n, cs, max) {
    if (n === null) return h('td', { class: 'num none', title: 'No envelope of this client was checked in the window', text: '–' });
    return h('td', {
      class: 'num' + (n > max ? ' hot' : '') + (n ? '' : ' none'),
      title: `${count(n)} of ${count(cs.checked)} checked envelopes break the contract`,
      text: count(n),
    });
  }

  function clientRow(r) {
    const c = r.c;
    const v = c.verdict || {};
    const reasons = v.reasons || [];
    const t = (state.overview && state.overview.thresholds) || {};
    const tr = h('tr', { 'data-client': r.name, class: 'row v-row-' + (v.state || 'unknown') });
    tr.addEventListener('click', (ev) => {
      if (ev.target.closest('a, button, summary, details')) return;
      state.cameFromList = true;
      openClient(r.name);
    });
    const link = h('a', { href: '#client=' + encodeURIComponent(r.name), class: 'client-link', title: r.name, text: r.name });
    let why = null;
    if (reasons.length === 1) {
      why = h('span', { class: 'reason', title: reasons[0], text: reasons[0] });
    } else if (reasons.length > 1) {
      const d = h('details', { class: 'reasons' });
      d.open = state.open.has(r.name);
      d.addEventListener('toggle', () => {
        if (d.open) state.open.add(r.name);
        else state.open.delete(r.name);
      });
      d.append(
        h('summary', { title: reasons.join('\n') },
          h('span', { class: 'reason', text: reasons[0] }),
          h('span', { class: 'more', text: `+${reasons.length - 1} more` })),
        h('ul', null, reasons.map((x) => h('li', { text: x }))),
      );
      why = d;
    }
    add(tr, [
      h('th', { scope: 'row', class: 'name' }, link, kindTag(c.kind)),
      h('td', null, modeTag(c.mode)),
      h('td', { class: 'num', text: count(r.requests) }),
      h('td', { class: 'num', text: percent(r.share) }),
      pctCell(r.c4xx),
      pctCell(r.c5xx),
      h('td', { class: 'num' + (r.unmapped > (t.max_unmapped || 0) ? ' hot' : '') + (r.unmapped ? '' : ' none'), text: count(r.unmapped) }),
      contractCell(r.contract, c.contract, t.max_contract_violations || 0),
      pctCell(r.mismatch, t.max_mismatch_ratio),
      h('td', { class: 'num' + (r.p50 === null ? ' none' : ''), text: ms(r.p50) }),
      h('td', { class: 'num' + (r.p99 === null ? ' none' : ''), text: ms(r.p99) }),
      h('td', { class: 'verdict' }, h('div', { class: 'verdict-line' }, verdictBadge(v.state), why)),
    ]);
    return tr;
  }

  let pagerSig = '';
  function renderPager(total, start, shown, pages) {
    const go = (p) => () => {
      state.page = p;
      saveListState();
      renderList();
      $('clients').scrollIntoView({ block: 'start' });
    };
    const btn = (label, text, page, disabled) => h('button', {
      type: 'button', class: 'btn', 'aria-label': label, disabled: disabled, onclick: go(page), text,
    });
    const showing = total === 0
      ? (state.overview ? 'showing 0 of 0' : '')
      : `showing ${count(start + 1)}–${count(start + shown)} of ${count(total)}`;
    const sig = `${showing}|${state.page}|${pages}`;
    if (sig === pagerSig) return;
    pagerSig = sig;
    $('pager').replaceChildren(
      h('p', { id: 'showing', class: 'showing', text: showing }),
      h('div', { class: 'pages' },
        btn('First page', '«', 1, state.page <= 1),
        btn('Previous page', '‹ Prev', state.page - 1, state.page <= 1),
        h('span', { class: 'page-of', text: `page ${state.page} of ${pages}` }),
        btn('Next page', 'Next ›', state.page + 1, state.page >= pages),
        btn('Last page', '»', pages, state.page >= pages)),
    );
  }

  // ---- rendering: detail -------------------------------------------------

  // renderReplicaSelect fills the replica selector from the overview's
  // replicas, rebuilding its options only when they change so that a poll
  // never closes it under the pointer. A replica named by the URL but not
  // in the overview (it wrote nothing in the window) stays selectable.
  let replicaOptsSig = '';
  function renderReplicaSelect() {
    const sel = $('detail-replica');
    const reps = (state.overview && state.overview.replicas) || [];
    const cur = state.detailReplica;
    const sig = JSON.stringify([reps.map((r) => [r.name, Boolean(r.self), r.state]), cur]);
    if (sig !== replicaOptsSig) {
      replicaOptsSig = sig;
      const opts = [h('option', { value: '' }, 'All replicas')];
      for (const r of reps) {
        opts.push(h('option', { value: r.name },
          r.name + (r.self ? ' (this replica)' : '') + (r.state && r.state !== 'active' ? ` · ${r.state}` : '')));
      }
      if (cur && !reps.some((r) => r.name === cur)) opts.push(h('option', { value: cur }, `${cur} (not in the window)`));
      sel.replaceChildren(...opts);
    }
    if (sel.value !== cur) sel.value = cur;
  }

  let detailDrawn = null; // the detail object the section shows
  let suggestDrawn = null; // the suggestions it shows
  let detailDrawnFor = ''; // the client and replica it was drawn for
  function renderDetail() {
    $('back').setAttribute('href', '#' + listHash());
    renderReplicaSelect();
    const sec = $('detail-body');
    const name = state.detailName;
    const replica = state.detailReplica;
    const drawnFor = JSON.stringify([name, replica]);
    if (state.detailMissing) {
      detailDrawn = null;
      sec.replaceChildren(h('h2', { id: 'detail-title', text: name }),
        h('p', { class: 'empty', text: replica
          ? `No client by this name has evidence from replica ${replica} in the window.`
          : 'No client by this name has evidence in the window.' }));
      return;
    }
    const d = state.detail;
    if (!d) {
      if (detailDrawn !== null || !sec.firstChild || detailDrawnFor !== drawnFor) {
        detailDrawn = null;
        detailDrawnFor = drawnFor;
        sec.replaceChildren(h('h2', { id: 'detail-title', text: name }), h('p', { class: 'empty', text: 'loading…' }));
      }
      return;
    }
    if (d === detailDrawn && state.suggest === suggestDrawn) return; // unchanged since the last poll
    detailDrawn = d;
    suggestDrawn = state.suggest;
    detailDrawnFor = drawnFor;
    const v = d.verdict || {};
    const sh = d.shadow;
    sec.replaceChildren();
    add(sec, [
      h('div', { class: 'detail-head' },
        h('h2', { id: 'detail-title' }, h('span', { text: d.name }), kindTag(d.kind)),
        modeTag(d.mode),
        verdictBadge(v.state, true),
        d.replica ? h('span', { class: 'replica-tag', 'data-replica': d.replica }, 'replica ', h('span', { class: 'mono', text: d.replica })) : null),
      d.replica ? scopeNote(d.replica) : null,
      h('div', { class: 'panel verdict-panel v-panel-' + (v.state || 'unknown') },
        h('h3', { text: 'Why ' + verdictText(v.state) }),
        (v.reasons || []).length
          ? h('ul', { class: 'reason-list' }, (v.reasons || []).map((x) => h('li', { text: x })))
          : h('p', { class: 'muted', text: 'No reason given.' })),
      statsGrid(d),
      h('div', { class: 'charts' },
        rangeSwitch(),
        requestsChart(d[state.range] || {}),
        sh ? mismatchChart(d[state.range] || {}) : null,
        !sh && d.mode === 'envelope' ? unmappedChart(d[state.range] || {}) : null),
      sh ? shadowSection(d) : null,
      (d.samples || []).length ? samplesSection(d) : null,
      unmappedSection(d),
      suggestionsSection(d, state.suggest),
      violationsSection(d),
      rewritesSection(d),
      passthroughSection(d),
    ]);
  }

  // scopeNote says that the page counts one replica's traffic only.
  function scopeNote(replica) {
    return h('p', { class: 'scope', id: 'detail-scope', 'data-replica': replica },
      'Limited to replica ', h('strong', { class: 'mono', text: replica }),
      ': the verdict, numbers, charts and samples below count only the traffic it served. ',
      h('button', { type: 'button', class: 'btn quiet inline', onclick: () => setReplica('') }, 'Show all replicas'));
  }

  function stat(label, value, sub, cls) {
    return h('div', { class: 'stat' + (cls ? ' ' + cls : '') },
      h('div', { class: 'stat-label', text: label }),
      h('div', { class: 'stat-value', text: value }),
      sub ? h('div', { class: 'stat-sub', text: sub }) : null);
  }

  function statsGrid(d) {
    const t = (state.overview && state.overview.thresholds) || {};
    const lat = d.added_latency || {};
    const classes = d.classes || {};
    const total = Object.values(classes).reduce((a, b) => a + b, 0);
    const classOrder = ['1xx', '2xx', '3xx', '4xx', '5xx', 'none'];
    const keys = Object.keys(classes).sort((a, b) => {
      const x = classOrder.indexOf(a);
      const y = classOrder.indexOf(b);
      return (x < 0 ? 99 : x) - (y < 0 ? 99 : y) || a.localeCompare(b);
    });
    const bar = h('div', { class: 'classbar', role: 'img', 'aria-label': 'Responses by status class' });
    const legend = h('ul', { class: 'classes' });
    for (const k of keys) {
      const n = classes[k];
      const cls = 'cl-' + (classOrder.includes(k) ? k : 'other');
      if (n > 0 && total > 0) {
        const seg = h('span', { class: 'seg ' + cls, title: `${k}: ${count(n)} (${percent(n / total)})` });
        seg.style.width = (100 * n / total) + '%';
        bar.append(seg);
      }
      legend.append(h('li', null, h('span', { class: 'dot ' + cls }), h('span', { class: 'cl-name', text: k }),
        h('span', { class: 'cl-n', text: `${count(n)} · ${percent(ratio(n, total))}` })));
    }
    const sh = d.shadow;
    const bad = (cond) => (cond ? 'bad' : '');
    return h('div', { class: 'stats' },
      stat('Requests', count(d.requests), `${percent(d.share)} of ${d.replica ? 'the fleet\'s' : 'all'} requests`),
      h('div', { class: 'stat wide' },
        h('div', { class: 'stat-label', text: 'Status classes' }),
        total ? bar : h('div', { class: 'muted', text: 'no responses' }),
        keys.length ? legend : null),
      stat('Added latency', lat.count ? latencyPair(lat.p50_ms, lat.p99_ms) : '–',
        lat.count ? `p50 / p99 over ${count(lat.count)} requests` : 'no measurement'),
      sh ? stat('Shadow mismatch', sh.compared ? percent(sh.mismatch_ratio) : '–',
        `${count(sh.compared)} compared · threshold ≤ ${percent(t.max_mismatch_ratio)}`,
        bad(sh.compared && sh.mismatch_ratio > t.max_mismatch_ratio)) : null,
      sh ? stat('Candidate errors', percent(sh.candidate_errors_ratio), `threshold ≤ ${percent(t.max_candidate_errors_ratio)}`,
        bad(sh.candidate_errors_ratio > t.max_candidate_errors_ratio)) : null,
      stat('Unmapped errors', count(d.unmapped), `threshold ≤ ${count(t.max_unmapped)}`,
        bad(d.unmapped > (t.max_unmapped || 0))),
      contractStat(d.contract, t.max_contract_violations || 0),
      stat('Upstream errors', count(d.upstream_errors),
        d.requests ? `${percent(ratio(d.upstream_errors, d.requests))} of requests · threshold ≤ ${percent(t.max_upstream_errors_ratio)}` : '',
        bad(d.mode === 'envelope' && ratio(d.upstream_errors, d.requests) > t.max_upstream_errors_ratio)),
      d.mode === 'envelope' || d.rewritten || d.wrapped || d.passed
        ? stat('Envelope', `${count(d.rewritten)} / ${count(d.wrapped)} / ${count(d.passed)}`, 'rewritten / wrapped / passed')
        : null,
    );
  }

  // contractStat is the contract checks' tile, null when nothing of the
  // client's was checked in the window.
  function contractStat(cs, max) {
    if (!cs) return null;
    const tile = stat('Contract violations', count(cs.violations),
      `${count(cs.checked)} checked · ${count(cs.extensions)} extensions · ${count(cs.skipped)} skipped · threshold ≤ ${count(max)}`,
      (cs.violations || 0) > max ? 'bad contract-stat' : 'contract-stat');
    tile.title = 'Envelopes the new API\'s contract does not allow, live and in shadow dry runs. Extensions: allowed only as what the contract marks beyond the new API\'s documentation. Skipped: not checked (too many checks at once, or streamed).';
    return tile;
  }

  function section(title, ...content) {
    return h('section', { class: 'panel' }, h('h3', { text: title }), ...content);
  }

  function table(cls, headers, rows) {
    return h('table', { class: 'data ' + cls },
      h('thead', null, h('tr', null, headers.map((x) => h('th', {
        scope: 'col', class: x.startsWith('#') ? 'num' : '', text: x.replace(/^#/, ''),
      })))),
      h('tbody', null, rows));
  }

  function rewritesSection(d) {
    const rw = d.rewrites || [];
    if (!rw.length) {
      return (d.mode === 'envelope' || d.rewritten || d.wrapped) ? section('Rewrites', h('p', { class: 'muted', text: 'Nothing rewritten in the window.' })) : null;
    }
    return section('Rewrites',
      table('rewrites', ['Legacy status', 'Legacy code', '', 'Status', 'Code', '#Count'], rw.map((x) => h('tr', null,
        h('td', { class: 'mono', text: String(x.legacy_status) }),
        h('td', { class: 'mono', text: x.legacy_code || '—' }),
        h('td', { class: 'arrow-cell', 'aria-label': 'becomes', text: '→' }),
        h('td', { class: 'mono', text: String(x.status) }),
        h('td', { class: 'mono', text: x.code || '—' }),
        h('td', { class: 'num', text: count(x.count) })))));
  }

  function passthroughSection(d) {
    const entries = Object.entries(d.passthrough || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    if (!entries.length) return null;
    const total = entries.reduce((a, [, n]) => a + n, 0);
    return section('Passed through unchanged',
      table('passthrough', ['Reason', '#Count', '#Share'], entries.map(([k, n]) => h('tr', null,
        h('td', { class: 'mono', text: k }),
        h('td', { class: 'num', text: count(n) }),
        h('td', { class: 'num', text: percent(n / total) })))));
  }

  // unmappedSection lists the legacy errors that fell to the generic
  // fallback in the window, greying those the rules in force map now:
  // they no longer count as unmapped, nor against the verdict.
  function unmappedSection(d) {
    const codes = d.unmapped_codes || [];
    if (!codes.length) return null;
    return section('Unmapped codes',
      h('p', { class: 'muted', text: 'Legacy error codes no rule matched; they fell to the generic fallback. Add a rule for each before flipping.' }),
      codes.map((u) => h('div', { class: 'unmapped' + (u.covered ? ' covered' : ''), 'data-covered': u.covered ? 'true' : 'false' },
        h('div', { class: 'unmapped-head' },
          h('code', { class: 'code-name', text: u.code || '(no code)' }),
          u.covered ? h('span', {
            class: 'covered-tag',
            title: 'A rule in the config in force maps this code now: the errors above were seen before it, and no longer count as unmapped nor against the verdict.',
            text: 'covered by a rule now; not counted',
          }) : null,
          h('span', { class: 'muted', text: `legacy status ${u.legacy_status} · ${count(u.count)} seen` + (u.sample_time ? ` · sample from ${when(new Date(u.sample_time))}` : '') })),
        u.sample ? codeBlock(u.sample, [], 'unmapped-sample') : h('p', { class: 'muted', text: 'No sample kept (dashboard.samples is off).' }))));
  }

  // ---- suggestions -------------------------------------------------------

  // YAML_NOT_STRINGS are the plain scalars YAML reads as something other
  // than a string (YAML 1.1's booleans included), which the YAML endpoint
  // double-quotes, as it does what reads as a number or a date.
  const YAML_NOT_STRINGS = new Set(['', '~', 'null', 'Null', 'NULL', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE',
    'y', 'Y', 'yes', 'Yes', 'YES', 'n', 'N', 'no', 'No', 'NO', 'on', 'On', 'ON', 'off', 'Off', 'OFF', '<<',
    '.nan', '.NaN', '.NAN', '.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF', '-.inf', '-.Inf', '-.INF']);

  // yamlNotString says whether YAML would read str, unquoted, as another
  // type than a string: a null, a boolean, a number, a date.
  function yamlNotString(str) {
    if (YAML_NOT_STRINGS.has(str)) return true;
    if (!/^[-+.0-9]/.test(str)) return false;
    const plain = str.replace(/_/g, '');
    return /^[-+]?(?:0[bB][01]+|0[oO]?[0-7]+|0[xX][0-9a-fA-F]+|[0-9]+)$/.test(plain) // integers
      || /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(plain) // floats
      || /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/.test(str) // sexagesimal
      || /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?$/.test(str); // dates
  }

  // yamlPlain says whether str can be written unquoted, in a flow
  // collection (the match: {...}) when flow is set: no indicator where YAML
  // would read one, no space at either end.
  function yamlPlain(str, flow) {
    if (str.startsWith('---') || str.startsWith('...') || str.startsWith(' ') || str.endsWith(' ')) return false;
    const cs = [...str];
    const blank = (c) => c === undefined || c === ' ';
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i];
      const spaceAfter = blank(cs[i + 1]);
      if (i === 0 && '#,[]{}&*!|>\'"%@`'.includes(c)) return false;
      if (i === 0 && c === '-' && spaceAfter) return false;
      if (c === ':' && (flow || spaceAfter)) return false;
      if (c === '?' && (flow || (i === 0 && spaceAfter))) return false;
      if (flow && ',[]{}'.includes(c)) return false;
      if (c === '#' && i > 0 && cs[i - 1] === ' ') return false;
    }
    return true;
  }

  // yamlScalar writes a value of a rule as YAML, quoted as the YAML
  // endpoint quotes it: double quotes for what YAML would read as another
  // type and for what is not printable, single quotes for what holds an
  // indicator (a regexp's brackets, ": ", " #"), else plain.
  function yamlScalar(v, flow) {
    if (typeof v === 'number') return String(v);
    const str = String(v);
    if (/[^\u0020-\u007e\u00a0-\ud7ff\ue000-\ufefe\uff00-\ufffd\u{10000}-\u{10ffff}]|[\u2028\u2029]/u.test(str) || yamlNotString(str)) {
      return JSON.stringify(str).replace(/[\u007f-\u009f\u2028\u2029\ufeff]/g,
        (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
    }
    return yamlPlain(str, flow) ? str : "'" + str.replace(/'/g, "''") + "'";
  }

  // ruleYAML writes a suggested rule (transform.Rule as JSON) as one entry
  // of a rules: list, in the shape of the YAML endpoint: the fields in its
  // order, the match as a flow mapping.
  function ruleYAML(rule) {
    const r = rule || {};
    const m = r.match || {};
    const flow = [];
    for (const k of ['status', 'code', 'message', 'shape']) {
      if (m[k]) flow.push(`${k}: ${yamlScalar(m[k], true)}`);
    }
    if ((m.has || []).length) flow.push(`has: [${m.has.map((x) => yamlScalar(x, true)).join(', ')}]`);
    const lines = [];
    if (r.name) lines.push(`name: ${yamlScalar(r.name, false)}`);
    lines.push(`match: {${flow.join(', ')}}`);
    for (const k of ['status', 'code', 'message', 'fallback_message', 'fields']) {
      if (r[k]) lines.push(`${k}: ${yamlScalar(r[k], false)}`);
    }
    return lines.map((l, i) => (i === 0 ? '- ' : '  ') + l);
  }

  // yamlBlock shows YAML lines in the code-block style, as text.
  function yamlBlock(lines, cls) {
    return h('pre', { class: 'code ' + cls }, lines.map((l) => h('span', { class: 'line', text: l })));
  }

  // shellWord quotes a word for a POSIX shell when it needs it.
  function shellWord(w) {
    return /^[A-Za-z0-9_.,:/@%+=-]+$/.test(w) ? w : "'" + w.replace(/'/g, "'\\''") + "'";
  }

  // suggestionSample is one labelled sample body of a rule suggestion.
  function suggestionSample(title, cls, body) {
    return h('div', { class: 'side ' + cls },
      h('div', { class: 'side-head' }, h('span', { text: title })),
      codeBlock(body, [], 'suggestion-body'));
  }

  // suggestionsSection shows the rules and shadow.ignore entries suggested
  // from the evidence, for shadow and envelope clients: each rule with why,
  // the clients and count behind it, its YAML and its samples; then the
  // candidate's learned noise; and where to get it all as a config
  // fragment.
  function suggestionsSection(d, sg) {
    if (!SUGGESTING_MODES.includes(d.mode) || !sg) return null;
    const name = d.name;
    const rules = sg.rules || [];
    const ignore = sg.ignore || [];
    const box = h('section', { class: 'panel suggestions', id: 'suggestions' }, h('h3', { text: 'Suggested rules' }));
    if (!rules.length && !ignore.length) {
      box.append(h('p', { class: 'muted nothing', text: `Nothing to suggest: no unmapped error, no consistent difference with the candidate and no learned noise over ${sg.window || 'the window'}.` }));
      return box;
    }
    add(box, [
      h('p', { class: 'muted', text: 'Rules for the legacy errors no rule maps, and for those the candidate consistently answers otherwise than the dry run, '
        + `from the evidence over ${sg.window || 'the window'}; what the config in force covers already is left out. Review each before pasting it under rules: in config.yaml.`
        + (d.replica ? ` Drawn from every replica's evidence, not only ${d.replica}'s.` : '') }),
      h('div', { class: 'suggest-copy' },
        h('a', { href: suggestionsURL(name, true), class: 'btn copy-yaml', target: '_blank', rel: 'noopener', text: 'Copy as YAML' }),
        h('span', { class: 'muted', text: 'or run' }),
        h('code', { class: 'suggest-cmd', text: `envelope-proxy suggest -admin ${shellWord(location.origin)} -client ${shellWord(name)}` })),
      rules.length ? rules.map((x) => {
        const kind = SUGGESTION_KINDS[x.kind] || [x.kind || 'rule', 'seen'];
        const meta = [(x.clients || []).join(', ') || '(no client)', `${count(x.count)} ${kind[1]}`];
        return h('article', { class: 'suggestion', 'data-kind': x.kind || '' },
          h('div', { class: 'suggestion-head' },
            h('span', { class: 'suggestion-kind', text: kind[0] }),
            h('code', { class: 'suggestion-legacy', text: `${x.legacy_status} ${x.legacy_code || '(no code)'}` }),
            h('span', { class: 'muted suggestion-meta', text: meta.join(' · ') })),
          h('p', { class: 'suggestion-reason', text: x.reason || '' }),
          yamlBlock(ruleYAML(x.rule), 'rule-yaml'),
          x.sample || x.envelope_sample || x.candidate_sample
            ? h('div', { class: 'sides suggestion-samples' },
              x.sample ? suggestionSample('Legacy', 'sg-legacy', x.sample) : null,
              x.envelope_sample ? suggestionSample('Envelope (dry run)', 'sg-envelope', x.envelope_sample) : null,
              x.candidate_sample ? suggestionSample('Candidate', 'sg-candidate', x.candidate_sample) : null)
            : null);
      }) : h('p', { class: 'muted', text: 'No rule to suggest.' }),
      h('h4', { text: 'Learned noise' }),
      ignore.length
        ? [
          h('p', { class: 'muted', text: 'JSON Pointers at which the candidate\'s two answers to the same request differed (shadow.learn_sample), over every client\'s double replays: entries for shadow.ignore.' }),
          h('ul', { class: 'noise-list' }, ignore.map((x) => h('li', { 'data-pointer': x.pointer },
            h('code', { class: 'noise-pointer', text: x.pointer }),
            h('span', { class: 'noise-routes' }, ' on ', (x.routes || []).map((r, i) => [i ? ', ' : '', h('code', { text: r })])),
            h('span', { class: 'muted noise-count', text: `: differed in ${count(x.count)} of ${count(x.checks)} double replays` })))),
        ]
        : h('p', { class: 'muted', text: 'No noise learned.' }),
    ]);
    return box;
  }

  // violationPointer is the JSON Pointer a violation's detail names ("at
  // /data/id: ..."), '' when it names none.
  function violationPointer(detail) {
    const m = /^at (\/[^\s]*): /.exec(detail || '');
    return m ? m[1] : '';
  }

  function violationsSection(d) {
    const vs = d.violations || [];
    const cs = d.contract;
    if (!vs.length) {
      if (!cs || !cs.checked) return null;
      return section('Contract violations',
        h('p', { class: 'muted conforms', text: `Every envelope checked in the window conforms to the new API's contract (${count(cs.checked)} checked).` }));
    }
    return section('Contract violations',
      h('p', { class: 'muted', text: 'Envelopes the new API\'s contract does not allow. Live: sent to this client. Dry run: computed by a shadow client\'s dry run, what it would get once flipped. Errors no rule matched are not counted here: they are the unmapped codes.' }),
      vs.map((x) => {
        const src = VIOLATION_SOURCES[x.source] || [x.source || 'unknown source', ''];
        const ptr = violationPointer(x.detail);
        const meta = [x.route || '(no route)', src[0], `${count(x.count)} seen`];
        if (x.sample_time) meta.push(`sample from ${when(new Date(x.sample_time))}`);
        return h('div', { class: 'violation', 'data-source': x.source || '', 'data-reason': x.reason || '' },
          h('div', { class: 'violation-head' },
            h('code', { class: 'code-name', text: `${x.status} ${x.code || 'success'}` }),
            h('code', { class: 'violation-reason', title: VIOLATION_REASONS[x.reason] || '', text: x.reason || '(no reason)' }),
            h('span', { class: 'muted', title: src[1] || null, text: meta.join(' · ') })),
          VIOLATION_REASONS[x.reason] || x.detail
            ? h('p', { class: 'violation-why' },
              VIOLATION_REASONS[x.reason] ? h('span', { text: VIOLATION_REASONS[x.reason] + ' ' }) : null,
              x.detail ? h('code', { class: 'violation-detail', text: x.detail }) : null)
            : null,
          x.sample
            ? codeBlock(x.sample, ptr ? [ptr] : [], 'violation-sample', 'the contract breaks at ')
            : h('p', { class: 'muted', text: 'No sample kept (dashboard.samples is off).' }));
      }));
  }

  function shadowSection(d) {
    const sh = d.shadow || {};
    const outcomes = Object.entries(sh.outcomes || {}).sort((a, b) => b[1] - a[1]);
    const total = outcomes.reduce((a, [, n]) => a + n, 0);
    const routes = d.routes || [];
    const paths = d.paths || [];
    return h('div', { class: 'shadow-grid' },
      section('Shadow outcomes',
        outcomes.length
          ? table('outcomes', ['Outcome', '#Count', '#Share'], outcomes.map(([k, n]) => h('tr', { class: 'oc-' + (OUTCOMES[k] || ['other'])[0], 'data-outcome': k },
            h('td', { class: 'mono', title: (OUTCOMES[k] || [])[1] || null, text: k }),
            h('td', { class: 'num', text: count(n) }),
            h('td', { class: 'num', text: percent(ratio(n, total)) }))))
          : h('p', { class: 'muted', text: 'No shadow exchange in the window.' })),
      section('Routes with the most mismatches',
        routes.length
          ? table('routes', ['Route', '#Compared', '#Mismatches', '#Rate'], routes.map((x) => h('tr', null,
            h('td', { class: 'mono', text: x.route }),
            h('td', { class: 'num', text: count(x.compared) }),
            h('td', { class: 'num', text: count(x.mismatches) }),
            h('td', { class: 'num', text: percent(ratio(x.mismatches, x.compared)) }))))
          : h('p', { class: 'muted', text: 'No mismatching route.' })),
      section('Paths that differ most',
        paths.length
          ? table('paths', ['JSON Pointer', '#Count'], paths.map((x) => h('tr', null,
            h('td', { class: 'mono', text: x.path === '' ? '(whole document)' : x.path }),
            h('td', { class: 'num', text: count(x.count) }))))
          : h('p', { class: 'muted', text: 'No differing path.' })));
  }

  function samplesSection(d) {
    const samples = d.samples || [];
    return section(`Mismatch samples (${samples.length})`,
      h('p', { class: 'muted', text: 'What the client got (legacy), what the proxy would send (envelope) and what the new service answered (candidate). Highlighted lines are the differences between the envelope and the candidate.' }),
      samples.map((x) => {
        const diffPaths = (x.diff || []).map((op) => op.path);
        return h('article', { class: 'sample' },
          h('div', { class: 'sample-head' },
            h('code', { class: 'request', text: x.request || '' }),
            x.time ? h('span', { class: 'muted', text: when(new Date(x.time)) }) : null),
          h('div', { class: 'sides' },
            side('Legacy', 'col-legacy', x.legacy_status, x.legacy_body, []),
            side('Envelope (proxy)', 'col-envelope', x.envelope_status, x.envelope_body, diffPaths),
            side('Candidate', 'col-candidate', x.candidate_status, x.candidate_body, diffPaths)),
          (x.diff || []).length
            ? table('ops', ['Op', 'Path', 'Candidate value'], x.diff.map((op) => h('tr', null,
              h('td', { class: 'mono op-' + (['add', 'remove', 'replace'].includes(op.op) ? op.op : 'other'), text: op.op }),
              h('td', { class: 'mono', text: op.path === '' ? '(whole document)' : op.path }),
              h('td', { class: 'mono value', text: op.value === undefined ? '' : op.value }))))
            : null);
      }));
  }

  function side(title, cls, status, body, diffPaths) {
    return h('div', { class: 'side ' + cls },
      h('div', { class: 'side-head' }, h('span', { text: title }),
        status ? h('span', { class: 'status s' + String(status)[0], text: String(status) }) : null),
      codeBlock(body || '', diffPaths, ''));
  }

  // ---- JSON pretty-printing with pointers --------------------------------

  // parseJSON reads text into a tree that keeps each scalar's source text
  // (so big numbers and escapes show as sent) and the members' order; it
  // returns null when text is not JSON, for example a truncated body.
  function parseJSON(text) {
    let i = 0;
    const n = text.length;
    const scalar = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
    const fail = () => { throw new SyntaxError('not JSON'); };
    const ws = () => { while (i < n && ' \t\n\r'.includes(text[i])) i++; };
    const str = () => {
      const start = i++;
      while (i < n) {
        const ch = text[i];
        if (ch === '\\') i += 2;
        else if (ch === '"') return text.slice(start, ++i);
        else if (ch < ' ') fail();
        else i++;
      }
      return fail();
    };
    const value = (depth) => {
      if (depth > 256) fail();
      ws();
      const ch = text[i];
      if (ch === '{' || ch === '[') {
        const obj = ch === '{';
        const kids = [];
        i++;
        ws();
        if (text[i] === (obj ? '}' : ']')) {
          i++;
          return { kind: obj ? 'object' : 'array', kids };
        }
        for (;;) {
          let key = null;
          if (obj) {
            ws();
            if (text[i] !== '"') fail();
            const raw = str();
            key = { raw, name: JSON.parse(raw) };
            ws();
            if (text[i++] !== ':') fail();
          }
          kids.push({ key, node: value(depth + 1) });
          ws();
          const sep = text[i++];
          if (sep === ',') continue;
          if (sep === (obj ? '}' : ']')) return { kind: obj ? 'object' : 'array', kids };
          fail();
        }
      }
      if (ch === '"') return { kind: 'scalar', raw: str(), type: 'string' };
      scalar.lastIndex = i;
      const m = scalar.exec(text);
      if (!m) fail();
      i += m[0].length;
      return { kind: 'scalar', raw: m[0], type: /^[-\d]/.test(m[0]) ? 'number' : m[0] };
    };
    try {
      const root = value(0);
      ws();
      return i === n ? root : null;
    } catch {
      return null;
    }
  }

  const escapePointer = (k) => k.replace(/~/g, '~0').replace(/\//g, '~1');

  // jsonLines pretty-prints a parsed tree as lines, each with the JSON
  // Pointer of the value it belongs to (a container's brackets belong to
  // the container).
  function jsonLines(root) {
    const lines = [];
    const walk = (node, depth, ptr, key, last) => {
      const prefix = key ? [{ cls: 'j-key', text: key.raw }, { text: ': ' }] : [];
      const comma = last ? [] : [{ text: ',' }];
      if (node.kind === 'scalar') {
        lines.push({ depth, ptr, parts: [...prefix, { cls: 'j-' + node.type, text: node.raw }, ...comma] });
        return;
      }
      const [open, close] = node.kind === 'object' ? ['{', '}'] : ['[', ']'];
      if (!node.kids.length) {
        lines.push({ depth, ptr, parts: [...prefix, { text: open + close }, ...comma] });
        return;
      }
      lines.push({ depth, ptr, parts: [...prefix, { text: open }] });
      node.kids.forEach((kid, idx) => {
        const seg = kid.key ? escapePointer(kid.key.name) : String(idx);
        walk(kid.node, depth + 1, ptr + '/' + seg, kid.key, idx === node.kids.length - 1);
      });
      lines.push({ depth, ptr, parts: [{ text: close }, ...comma] });
    };
    walk(root, 0, '', null, true);
    return lines;
  }

  // underDiff says whether the value at ptr is one of the diff paths or
  // inside one.
  function underDiff(ptr, paths) {
    for (const p of paths) {
      if (p === '' || ptr === p || ptr.startsWith(p + '/')) return p;
    }
    return null;
  }

  // codeBlock shows a body pretty-printed when it is JSON, as sent when it
  // is not, marking with class "diff" the lines under a diff path; their
  // title names the path after why ('differs at ' by default).
  function codeBlock(body, diffPaths, cls, why) {
    const pre = h('pre', { class: 'code' + (cls ? ' ' + cls : '') });
    if (body === '') {
      pre.append(h('span', { class: 'line muted', text: '(empty body)' }));
      return pre;
    }
    const root = parseJSON(body);
    if (!root) {
      for (const text of body.split('\n')) {
        const line = h('span', { class: 'line', text: text || ' ' });
        if (diffPaths.includes('')) line.classList.add('diff');
        pre.append(line);
      }
      pre.classList.add('raw');
      pre.title = 'Not JSON (or cut short): shown as received';
      return pre;
    }
    for (const ln of jsonLines(root)) {
      const line = h('span', { class: 'line', 'data-pointer': ln.ptr });
      line.append('  '.repeat(ln.depth));
      for (const part of ln.parts) line.append(part.cls ? h('span', { class: part.cls, text: part.text }) : part.text);
      const hit = underDiff(ln.ptr, diffPaths);
      if (hit !== null) {
        line.classList.add('diff');
        line.title = (why || 'differs at ') + (hit === '' ? 'the whole document' : hit);
      }
      pre.append(line);
    }
    return pre;
  }

  // ---- charts ------------------------------------------------------------

  const CHART = { w: 520, h: 150, left: 56, right: 10, top: 12, bottom: 26 };

  function chartFrame(label, points, step, max, fmtY) {
    const { w, h: ht, left, right, top, bottom } = CHART;
    const svg = s('svg', {
      viewBox: `0 0 ${w} ${ht}`, class: 'chart', role: 'img', 'aria-label': label,
    });
    const y0 = ht - bottom;
    svg.append(
      s('line', { x1: left, x2: w - right, y1: top, y2: top, class: 'grid' }),
      s('line', { x1: left, x2: w - right, y1: (top + y0) / 2, y2: (top + y0) / 2, class: 'grid' }),
      s('line', { x1: left, x2: w - right, y1: y0, y2: y0, class: 'axis' }),
      s('text', { x: left - 6, y: top + 4, class: 'tick', 'text-anchor': 'end', text: fmtY(max) }),
      s('text', { x: left - 6, y: y0 + 4, class: 'tick', 'text-anchor': 'end', text: fmtY(0) }),
    );
    if (points.length) {
      const first = new Date(points[0].t * 1000);
      const last = new Date((points[points.length - 1].t + step) * 1000);
      const long = last - first > 20 * 3600 * 1000;
      const fmt = (d) => (long ? when(d) : timeFormat.format(d));
      svg.append(
        s('text', { x: left, y: ht - 8, class: 'tick', 'text-anchor': 'start', text: fmt(first) }),
        s('text', { x: w - right, y: ht - 8, class: 'tick', 'text-anchor': 'end', text: fmt(last) }),
      );
    }
    return svg;
  }

  // bars draws one bar per point: value(p) is its height (null draws
  // none), tip(p) its tooltip, and overlay(p) an optional second bar from
  // the axis (the errors in the requests).
  function bars(svg, points, max, value, tip, overlay) {
    const { w, h: ht, left, right, top, bottom } = CHART;
    const y0 = ht - bottom;
    const span = y0 - top;
    const bw = (w - left - right) / Math.max(points.length, 1);
    const gap = bw > 4 ? 1 : 0;
    points.forEach((p, idx) => {
      const x = left + idx * bw;
      const g = s('g', { class: 'pt' }, s('title', { text: tip(p) }),
        s('rect', { x, y: top, width: bw, height: span, class: 'hit' }));
      const v = value(p);
      if (v !== null && v > 0) {
        const bh = Math.max(1, (v / max) * span);
        g.append(s('rect', { x: x + gap / 2, y: y0 - bh, width: Math.max(bw - gap, 0.5), height: bh, class: 'bar' }));
      }
      const o = overlay ? overlay(p) : 0;
      if (o > 0) {
        const oh = Math.max(1, (o / max) * span);
        g.append(s('rect', { x: x + gap / 2, y: y0 - oh, width: Math.max(bw - gap, 0.5), height: oh, class: 'bar err' }));
      }
      svg.append(g);
    });
  }

  function chartBox(title, legend, svg, note) {
    return h('figure', { class: 'panel chart-box' },
      h('figcaption', null, h('span', { class: 'chart-title', text: title }), legend),
      svg,
      note ? h('p', { class: 'muted small', text: note }) : null);
  }

  function requestsChart(series) {
    const points = series.points || [];
    const step = series.step_seconds || 60;
    const max = Math.max(1, ...points.map((p) => p.requests || 0));
    const svg = chartFrame('Requests over time', points, step, max, count);
    bars(svg, points, max, (p) => p.requests || 0,
      (p) => `${timeFormat.format(new Date(p.t * 1000))}: ${count(p.requests)} requests, ${count(p.errors)} errors`
        + (p.unmapped ? `, ${count(p.unmapped)} unmapped` : ''),
      (p) => p.errors || 0);
    const legend = h('span', { class: 'legend' },
      h('span', { class: 'key key-bar' }), 'requests', h('span', { class: 'key key-err' }), 'errors');
    return chartBox('Requests', legend, svg, points.length ? `one bar per ${stepText(step)}` : 'no data in the window');
  }

  function mismatchChart(series) {
    const points = series.points || [];
    const step = series.step_seconds || 60;
    const t = (state.overview && state.overview.thresholds) || {};
    const rate = (p) => (p.compared ? p.mismatches / p.compared : null);
    const limit = t.max_mismatch_ratio || 0;
    const max = Math.max(limit * 1.5, 0.001, ...points.map((p) => rate(p) || 0));
    const svg = chartFrame('Mismatch rate over time', points, step, max, percent);
    bars(svg, points, max, rate,
      (p) => `${timeFormat.format(new Date(p.t * 1000))}: `
        + (p.compared ? `${percent(rate(p))} mismatch (${count(p.mismatches)} of ${count(p.compared)} compared)` : 'nothing compared'));
    svg.classList.add('rate');
    if (limit > 0) {
      const { w, h: ht, left, right, top, bottom } = CHART;
      const y = ht - bottom - (limit / max) * (ht - bottom - top);
      svg.append(
        s('line', { x1: left, x2: w - right, y1: y, y2: y, class: 'limit' }),
        s('text', { x: w - right - 2, y: y - 4, class: 'tick limit-label', 'text-anchor': 'end', text: 'max ' + percent(limit) }),
      );
    }
    const legend = h('span', { class: 'legend' }, h('span', { class: 'key key-rate' }), 'mismatches / compared',
      h('span', { class: 'key key-limit' }), 'threshold');
    return chartBox('Mismatch rate', legend, svg, null);
  }

  function unmappedChart(series) {
    const points = series.points || [];
    const step = series.step_seconds || 60;
    const max = Math.max(1, ...points.map((p) => p.unmapped || 0));
    const svg = chartFrame('Unmapped errors over time', points, step, max, count);
    bars(svg, points, max, (p) => p.unmapped || 0,
      (p) => `${timeFormat.format(new Date(p.t * 1000))}: ${count(p.unmapped)} unmapped of ${count(p.errors)} errors`);
    svg.classList.add('unmapped-chart');
    const legend = h('span', { class: 'legend' }, h('span', { class: 'key key-err' }), 'errors no rule matched');
    return chartBox('Unmapped errors', legend, svg, null);
  }

  // rangeSwitch picks the charts' range: the last hour by minute, or the
  // readiness window by hour.
  function rangeSwitch() {
    const win = (state.overview && state.overview.window) || 'window';
    const opt = (value, label) => h('button', {
      type: 'button',
      class: 'range-opt' + (state.range === value ? ' on' : ''),
      'aria-pressed': state.range === value ? 'true' : 'false',
      'data-range': value,
      onclick: () => { state.range = value; detailDrawn = null; renderDetail(); },
    }, label);
    return h('div', { class: 'range-switch', role: 'group', 'aria-label': 'Chart range' },
      h('span', { class: 'muted small', text: 'Charts:' }),
      opt('recent', 'last hour, by minute'), opt('series', `last ${win}, by hour`));
  }

  function stepText(sec) {
    if (sec % 3600 === 0) return sec === 3600 ? 'hour' : `${sec / 3600} hours`;
    if (sec % 60 === 0) return sec === 60 ? 'minute' : `${sec / 60} minutes`;
    return `${sec} seconds`;
  }

  // ---- wiring ------------------------------------------------------------

  function init() {
    $('filter-name').addEventListener('input', (e) => setFilter('name', e.target.value));
    $('filter-mode').addEventListener('change', (e) => setFilter('mode', e.target.value));
    $('filter-verdict').addEventListener('change', (e) => setFilter('verdict', e.target.value));
    $('filters').addEventListener('submit', (e) => e.preventDefault());
    $('detail-replica').addEventListener('change', (e) => setReplica(e.target.value));
    $('back').addEventListener('click', backToList);
    $('filters').addEventListener('reset', (e) => {
      e.preventDefault();
      state.filter = { name: '', mode: '', verdict: '' };
      state.page = 1;
      syncControls();
      saveListState();
      renderList();
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && state.detailName !== null && !e.defaultPrevented) {
        if (state.cameFromList) history.back();
        else location.hash = listHash();
      }
    });
    window.addEventListener('hashchange', route);
    setInterval(tick, 1000);
    route();
    if (state.detailName === null) poll();
  }

  init();
})();
