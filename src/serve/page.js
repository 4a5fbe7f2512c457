// The page's behaviour: read the form (or the query string), POST /api/write,
// set the poems. Plain DOM, no framework; server text is only ever set through
// textContent, never parsed as HTML.
//
// Query string (also how the browser test drives it):
//   ?acrostic=春夏秋冬 | ?begin=明月   &form=wujue|qijue|wulv|qilv|free
//   &title=送别 &keywords=明月,江
//   &temperature=0.8 &tones=off|loose|strict &rhyme=0|1 &count=N &seed=N
//   &vertical=1 &marks=0   &auto=1 writes at once
//   &lock=1.2,3.1 then clicks those characters (line.char) of the first poem,
//   &rewrite=3 then clicks line 3's 改 (and sets data-rewritten on <body>)
//   ?view=check&poem=床前明月光，… &auto=1 checks it; &tap=2.4 clicks that character
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
    if (q.get('view') === 'check') { showView('check'); }
    if (q.has('poem')) { $('check-text').value = q.get('poem'); }
    if (q.has('begin')) { $('mode').value = 'begin'; $('text').value = q.get('begin'); }
    if (q.has('acrostic')) { $('mode').value = 'acrostic'; $('text').value = q.get('acrostic'); }
    ['form', 'tones', 'temperature', 'count', 'seed', 'title', 'keywords'].forEach(function (k) {
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
    var title = $('title').value.replace(/\s+/g, '');
    if (title) { body.title = title; }
    var keywords = $('keywords').value.trim();
    if (keywords) { body.keywords = keywords; }
    var seed = $('seed').value.trim();
    if (seed) { body.seed = Number(seed); }
    return body;
  }

  // A shareable address for what was just written (same seed, same poems).
  function remember(body, seed) {
    var q = new URLSearchParams();
    ['acrostic', 'begin', 'title', 'keywords', 'form', 'tones', 'temperature', 'count'].forEach(function (k) {
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

  // A written poem: click a character to lock it, click 改 to rewrite its line.
  // `locked` holds "line.char" keys (from 0) to show as locked.
  function renderPoem(poem, locked) {
    var art = el('article', 'poem');
    art.setAttribute('data-text', poem.text);
    poem.lines.forEach(function (line, i) {
      var div = el('div', 'line');
      div.setAttribute('data-line', line.text);
      line.chars.forEach(function (ch, j) {
        var r = el('ruby', 'ch' + (ch.tone ? ' ' + TONE_CLASS[ch.tone] : '') + (ch.rhyme ? ' foot' : ''));
        r.appendChild(document.createTextNode(ch.c));
        r.appendChild(el('rt', '', ch.tone ? MARK[ch.tone] : '\u00a0'));
        r.setAttribute('data-c', ch.c);
        if (ch.rhyme) { r.title = '韵脚'; }
        if (locked && locked[i + '.' + j]) { r.classList.add('locked'); }
        r.addEventListener('click', function () { r.classList.toggle('locked'); });
        div.appendChild(r);
      });
      if (line.punct) { div.appendChild(el('span', 'p', line.punct)); }
      var redo = el('button', 'redo', '改');
      redo.type = 'button';
      redo.title = '改写此句（锁定的字保留）';
      redo.addEventListener('click', function () { rewrite(art, i); });
      div.appendChild(redo);
      art.appendChild(div);
    });
    var notes = (poem.notes || []).slice();
    if (poem.rhyme_group) { notes.unshift('韵：' + poem.rhyme_group); }
    if (notes.length) { art.appendChild(el('p', 'note', notes.join(' · '))); }
    return art;
  }

  function render(resp, locked) {
    var box = $('poems');
    box.textContent = '';
    resp.poems.forEach(function (p) { box.appendChild(renderPoem(p, locked)); });
    last = resp;
    $('copy').disabled = resp.poems.length === 0;
    setStatus('用时 ' + resp.elapsed_ms.toFixed(1) + ' 毫秒 · 种子 ' + resp.seed, false);
  }

  // The locked characters of a poem on the page: {"line.char": true}.
  function locksOf(art) {
    var out = {};
    Array.prototype.forEach.call(art.querySelectorAll('.line'), function (div, i) {
      Array.prototype.forEach.call(div.querySelectorAll('.ch'), function (r, j) {
        if (r.classList.contains('locked')) { out[i + '.' + j] = true; }
      });
    });
    return out;
  }

  // A template of the poem: locked characters (and every character of the
  // lines kept whole) stay, the rest become □.
  function templateOf(art, keepLine) {
    return Array.prototype.map.call(art.querySelectorAll('.line'), function (div, i) {
      var chars = Array.prototype.map.call(div.querySelectorAll('.ch'), function (r) {
        return (keepLine(i) || r.classList.contains('locked')) ? r.getAttribute('data-c') : '□';
      }).join('');
      var p = div.querySelector('.p');
      return chars + (p ? p.textContent : '');
    }).join('');
  }

  function post(path, body) {
    return fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { throw new Error(j.error || ('HTTP ' + r.status)); }
        return j;
      }, function () { throw new Error('HTTP ' + r.status); });
    });
  }

  // Rewrites line i of a written poem: the other lines (and locked characters) stay.
  function rewrite(art, i) {
    var locked = locksOf(art);
    var body = request();
    delete body.acrostic;
    delete body.begin;
    delete body.seed;
    // the kept lines already hold the keywords placed in them
    delete body.keywords;
    body.count = 1;
    body.template = templateOf(art, function (k) { return k !== i; });
    document.body.setAttribute('data-state', 'writing');
    setStatus('正在改写第 ' + (i + 1) + ' 句……', false);
    return post('/api/write', body).then(function (resp) {
      var fresh = renderPoem(resp.poems[0], locked);
      fresh.setAttribute('data-before', art.getAttribute('data-text'));
      fresh.querySelectorAll('.line')[i].classList.add('rewritten');
      art.parentNode.replaceChild(fresh, art);
      if (last) { last.poems = Array.prototype.map.call($('poems').children, function (a) { return { lines: linesOf(a) }; }); }
      document.body.setAttribute('data-rewritten', String(i + 1));
      document.body.setAttribute('data-state', 'done');
      setStatus('已改写第 ' + (i + 1) + ' 句 · 种子 ' + resp.seed, false);
    }).catch(function (e) {
      setStatus('出错了：' + e.message, true);
      document.body.setAttribute('data-state', 'error');
    });
  }

  function linesOf(art) {
    return Array.prototype.map.call(art.querySelectorAll('.line'), function (div) {
      var p = div.querySelector('.p');
      return { text: div.getAttribute('data-line'), punct: p ? p.textContent : '' };
    });
  }

  function write(ev) {
    if (ev) { ev.preventDefault(); }
    var body = request();
    // Characters locked on the first poem are kept where they stand.
    var first = $('poems').querySelector('.poem');
    var locked = first ? locksOf(first) : {};
    if (Object.keys(locked).length) {
      delete body.acrostic;
      delete body.begin;
      body.template = templateOf(first, function () { return false; });
    }
    $('go').disabled = true;
    document.body.setAttribute('data-state', 'writing');
    setStatus('正在作诗……', false);
    return post('/api/write', body).then(function (resp) {
      // An acrostic's heads are locked characters: a rewritten line keeps its head.
      for (var i = 0; body.acrostic && i < body.acrostic.length; i++) { locked[i + '.0'] = true; }
      render(resp, locked);
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

  // --- the check view ---
  function showView(v) {
    var check = v === 'check';
    $('check-view').hidden = !check;
    ['f', 'poems', 'write-hint'].forEach(function (id) { $(id).hidden = check; });
    document.querySelector('.view').hidden = check;
    $('tab-write').setAttribute('aria-selected', String(!check));
    $('tab-check').setAttribute('aria-selected', String(check));
  }

  var TONE_NAME = { ping: '平', ze: '仄', both: '可平可仄' };

  function renderChecked(res) {
    var art = el('article', 'poem checked');
    if (res.error) {
      art.appendChild(el('p', 'verdict bad', res.error));
      return art;
    }
    var bad = {};
    res.faults.forEach(function (f) {
      if (f.pos > 0) {
        var k = (f.line - 1) + '.' + (f.pos - 1);
        bad[k] = (bad[k] ? bad[k] + '、' : '') + f.name;
      }
    });
    var sugg = {};
    (res.suggestions || []).forEach(function (s) { sugg[(s.line - 1) + '.' + (s.pos - 1)] = s; });
    var head = res.form + (res.rhyme_group ? ' · ' + res.rhyme_group : '');
    art.appendChild(el('p', 'note', head));
    var box = el('div', 'sugg');
    res.lines.forEach(function (line, i) {
      var div = el('div', 'line');
      div.setAttribute('data-line', line.text);
      line.chars.forEach(function (ch, j) {
        var k = i + '.' + j;
        var r = el('ruby', 'ch' + (ch.tone ? ' ' + (ch.tone === 'both' ? 'either' : ch.tone) : '') +
          (ch.foot ? ' foot' : '') + (bad[k] ? ' bad' : ''));
        r.appendChild(document.createTextNode(ch.ch));
        r.appendChild(el('rt', '', ch.mark));
        r.title = (ch.tone ? TONE_NAME[ch.tone] : '未知') + (bad[k] ? ' · ' + bad[k] : '');
        r.setAttribute('data-pos', (i + 1) + '.' + (j + 1));
        if (bad[k]) {
          r.addEventListener('click', function () { showSuggestions(box, res, sugg[k], i, j); });
        }
        div.appendChild(r);
      });
      if (line.end) { div.appendChild(el('span', 'p', line.end)); }
      art.appendChild(div);
    });
    art.appendChild(box);
    var ul = el('ul', 'faults');
    res.faults.forEach(function (f) {
      var where = '第' + f.line + '句' + (f.pos > 0 ? '第' + f.pos + '字' + (f.ch ? ' ' + f.ch : '') : '');
      ul.appendChild(el('li', 'fault', where + '　' + f.name + '：' + f.why));
    });
    if (res.faults.length) { art.appendChild(ul); }
    var rd = el('ul', 'readings');
    res.readings.forEach(function (r) {
      rd.appendChild(el('li', '', r.ch + '（第' + r.line + '句第' + r.pos + '字）读' + TONE_NAME[r.tone] + '，合' + r.rule));
    });
    (res.notes || []).forEach(function (n) { rd.appendChild(el('li', '', n)); });
    if (rd.children.length) { art.appendChild(rd); }
    art.appendChild(el('p', 'verdict ' + (res.ok ? 'ok' : 'bad'),
      res.ok ? '合律：每条规则都守住了' : '犯 ' + res.faults.length + ' 处'));
    return art;
  }

  // The model's suggestions for one broken character; a click puts it in and checks again.
  function showSuggestions(box, res, s, i, j) {
    box.textContent = '';
    box.appendChild(el('span', '', '第' + (i + 1) + '句第' + (j + 1) + '字可换：'));
    if (!s || !s.options.length) {
      box.appendChild(el('span', '', '模型没有合律的建议'));
    } else {
      s.options.forEach(function (o) {
        var b = el('button', 'pick', o[0] + ' ' + (100 * o[1]).toFixed(1) + '%');
        b.type = 'button';
        b.addEventListener('click', function () {
          $('check-text').value = res.lines.map(function (l, li) {
            var cs = l.chars.map(function (c, cj) { return (li === i && cj === j) ? o[0] : c.ch; });
            return cs.join('') + (l.end || '');
          }).join('');
          check();
        });
        box.appendChild(b);
      });
    }
    document.body.setAttribute('data-state', 'suggested');
  }

  function check() {
    var text = $('check-text').value.trim();
    if (!text) { setStatus('先贴一首诗', true); return Promise.resolve(); }
    var body = { text: text, suggest: true };
    if ($('check-form').value) { body.form = $('check-form').value; }
    document.body.setAttribute('data-state', 'checking');
    setStatus('正在检查……', false);
    return post('/api/check', body).then(function (resp) {
      var box = $('checked');
      box.textContent = '';
      resp.poems.forEach(function (p) { box.appendChild(renderChecked(p)); });
      setStatus(resp.ok ? '合律' : '有不合律之处（红字）', false);
      document.body.setAttribute('data-state', 'checked');
    }).catch(function (e) {
      setStatus('出错了：' + e.message, true);
      document.body.setAttribute('data-state', 'error');
    });
  }

  // Clicks the query string asks for, after the first result is on the page.
  function clicks(q) {
    if (q.has('lock')) {
      q.get('lock').split(',').forEach(function (lc) {
        var at = lc.split('.');
        var line = document.querySelectorAll('#poems .poem')[0].querySelectorAll('.line')[Number(at[0]) - 1];
        if (line) { line.querySelectorAll('.ch')[Number(at[1]) - 1].click(); }
      });
    }
    if (q.has('rewrite')) {
      var n = Number(q.get('rewrite')) - 1;
      var line = document.querySelectorAll('#poems .poem .line')[n];
      if (line) { line.querySelector('.redo').click(); }
    }
    if (q.has('tap')) {
      var r = document.querySelector('#checked [data-pos="' + q.get('tap') + '"]');
      if (r) { r.click(); }
    }
  }

  $('tab-write').addEventListener('click', function () { showView('write'); });
  $('tab-check').addEventListener('click', function () { showView('check'); });
  $('check-go').addEventListener('click', check);
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
  if (fromQuery()) {
    var q = new URLSearchParams(location.search);
    var first = q.get('view') === 'check' ? check() : write();
    first.then(function () { clicks(q); });
  }
})();
