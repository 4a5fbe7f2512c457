// The page's behaviour: read the form (or the query string), POST /api/write,
// set the poems. Plain DOM, no framework; server text is only ever set through
// textContent, never parsed as HTML.
//
// Query string (also how the browser test drives it):
//   ?acrostic=春夏秋冬 | ?begin=明月   &form=wujue|qijue|wulv|qilv|free
//   &temperature=0.8 &tones=off|loose|strict &rhyme=0|1 &count=N &seed=N
//   &vertical=1 &marks=0   &auto=1 writes at once
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var MARK = { '平': '○', '仄': '●', either: '◐' };
  var TONE_CLASS = { '平': 'ping', '仄': 'ze', either: 'either' };
  var last = null; // the last response, for the copy button

  function setStatus(text, isError) {
    var s = $('status');
    s.textContent = text;
    s.className = isError ? 'error' : '';
  }

  function applyView() {
    var p = $('poems');
    p.classList.toggle('vertical', $('vertical').checked);
    p.classList.toggle('no-marks', !$('marks').checked);
  }

  function fromQuery() {
    var q = new URLSearchParams(location.search);
    if (q.has('begin')) { $('mode').value = 'begin'; $('text').value = q.get('begin'); }
    if (q.has('acrostic')) { $('mode').value = 'acrostic'; $('text').value = q.get('acrostic'); }
    ['form', 'tones', 'temperature', 'count', 'seed'].forEach(function (k) {
      if (q.has(k)) { $(k).value = q.get(k); }
    });
    if (q.has('rhyme')) { $('rhyme').checked = q.get('rhyme') !== '0'; }
    if (q.has('vertical')) { $('vertical').checked = q.get('vertical') === '1'; }
    if (q.has('marks')) { $('marks').checked = q.get('marks') !== '0'; }
    $('temperature-out').value = $('temperature').value;
    applyView();
    return q.get('auto') === '1';
  }

  function request() {
    var body = {
      form: $('form').value,
      tones: $('tones').value,
      rhyme: $('rhyme').checked,
      temperature: Number($('temperature').value),
      count: Number($('count').value) || 1
    };
    var text = $('text').value.replace(/\s+/g, '');
    if (text) { body[$('mode').value] = text; }
    var seed = $('seed').value.trim();
    if (seed) { body.seed = Number(seed); }
    return body;
  }

  // A shareable address for what was just written (same seed, same poems).
  function remember(body, seed) {
    var q = new URLSearchParams();
    ['acrostic', 'begin', 'form', 'tones', 'temperature', 'count'].forEach(function (k) {
      if (body[k] !== undefined) { q.set(k, body[k]); }
    });
    q.set('rhyme', body.rhyme ? '1' : '0');
    q.set('seed', seed);
    if ($('vertical').checked) { q.set('vertical', '1'); }
    try { history.replaceState(null, '', '?' + q.toString()); } catch (e) { /* file:// or sandboxed */ }
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function renderPoem(poem) {
    var art = el('article', 'poem');
    art.setAttribute('data-text', poem.text);
    poem.lines.forEach(function (line) {
      var div = el('div', 'line');
      div.setAttribute('data-line', line.text);
      line.chars.forEach(function (ch) {
        var r = el('ruby', 'ch' + (ch.tone ? ' ' + TONE_CLASS[ch.tone] : '') + (ch.rhyme ? ' foot' : ''));
        r.appendChild(document.createTextNode(ch.c));
        r.appendChild(el('rt', '', ch.tone ? MARK[ch.tone] : '\u00a0'));
        if (ch.rhyme) { r.title = '韵脚'; }
        div.appendChild(r);
      });
      if (line.punct) { div.appendChild(el('span', 'p', line.punct)); }
      art.appendChild(div);
    });
    var notes = (poem.notes || []).slice();
    if (poem.rhyme_group) { notes.unshift('韵：' + poem.rhyme_group); }
    if (notes.length) { art.appendChild(el('p', 'note', notes.join(' · '))); }
    return art;
  }

  function render(resp) {
    var box = $('poems');
    box.textContent = '';
    resp.poems.forEach(function (p) { box.appendChild(renderPoem(p)); });
    last = resp;
    $('copy').disabled = resp.poems.length === 0;
    setStatus('用时 ' + resp.elapsed_ms.toFixed(1) + ' 毫秒 · 种子 ' + resp.seed, false);
  }

  function write(ev) {
    if (ev) { ev.preventDefault(); }
    var body = request();
    $('go').disabled = true;
    document.body.setAttribute('data-state', 'writing');
    setStatus('正在作诗……', false);
    fetch('/api/write', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { throw new Error(j.error || ('HTTP ' + r.status)); }
        return j;
      }, function () { throw new Error('HTTP ' + r.status); });
    }).then(function (resp) {
      render(resp);
      remember(body, resp.seed);
      document.body.setAttribute('data-state', 'done');
    }).catch(function (e) {
      setStatus('出错了：' + e.message, true);
      document.body.setAttribute('data-state', 'error');
    }).then(function () { $('go').disabled = false; });
  }

  function plainText() {
    if (!last) { return ''; }
    return last.poems.map(function (p) {
      return p.lines.map(function (l) { return l.text + l.punct; }).join('\n');
    }).join('\n\n');
  }

  function copy() {
    var text = plainText();
    var done = function () { setStatus('已复制', false); };
    var fallback = function () {
      var t = el('textarea');
      t.value = text;
      t.setAttribute('readonly', '');
      t.style.position = 'fixed';
      t.style.opacity = '0';
      document.body.appendChild(t);
      t.select();
      try { document.execCommand('copy'); done(); } catch (e) { setStatus('无法复制，请手动选择', true); }
      document.body.removeChild(t);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  }

  $('f').addEventListener('submit', write);
  $('copy').addEventListener('click', copy);
  $('vertical').addEventListener('change', applyView);
  $('marks').addEventListener('change', applyView);
  $('temperature').addEventListener('input', function () {
    $('temperature-out').value = $('temperature').value;
  });
  $('mode').addEventListener('change', function () {
    $('text').placeholder = $('mode').value === 'acrostic' ? '春夏秋冬' : '明月';
  });
  if (fromQuery()) { write(); }
})();
