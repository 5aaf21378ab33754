// The deoss console: plain JavaScript over the gateway's API, signed in by
// a session cookie; every request carries the console header (the
// gateway's CSRF guard). Uploads use tus with 4 MiB PATCHes and resume
// across a page reload (the upload's URL is kept in localStorage).
'use strict'

const H = { 'X-Deoss-Console': '1' }
const $ = (s) => document.querySelector(s)
let me = null

async function api (path, opts = {}) {
  const r = await fetch(path, { ...opts, credentials: 'same-origin', headers: { ...H, ...(opts.headers || {}) } })
  if (!r.ok) {
    let msg = r.status + ' ' + r.statusText
    try { const e = await r.json(); msg = e.message || e.error || msg } catch (_) {}
    const err = new Error(msg)
    err.status = r.status
    throw err
  }
  return r
}

function bytes (n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++ }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + u[i]
}

function el (tag, props = {}, ...kids) {
  const e = document.createElement(tag)
  Object.assign(e, props)
  for (const k of kids) e.append(k)
  return e
}

// --- pages

const pages = ['files', 'upload', 'space', 'network', 'file']

function show () {
  const [hash, arg] = location.hash.slice(1).split('/')
  const page = pages.includes(hash) ? hash : 'files'
  for (const p of pages) {
    $('#page-' + p).hidden = p !== page
    const a = $('#nav-' + p)
    if (!a) continue
    if (p === page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current')
  }
  if (page === 'file') loadFile(arg)
  if (page === 'files') loadFiles()
  if (page === 'network') loadNodes()
  if (page === 'space') loadSpace()
}

// A file's columns as a map of nodes: healthy, suspect, faulty (or
// exiting), missing (lost, or not reported yet).
async function loadFile (fid) {
  const list = $('#columns')
  list.replaceChildren()
  $('#file-info').textContent = fid
  let loc
  try {
    loc = await (await api('/file/location/' + fid)).json()
  } catch (e) {
    $('#file-info').textContent = fid + ': ' + e.message
    return
  }
  const nodes = await (await api('/nodes')).json()
  const state = {}
  for (const n of nodes) state[n.address] = n.state
  $('#file-info').textContent = fid + ' (' + loc.state + ')'
  for (const c of loc.columns) {
    let cls = 'healthy'
    if (c.down === 'lost' || !c.reported) cls = 'missing'
    else if (c.down === 'faulty' || c.down === 'exiting') cls = 'faulty'
    else if (c.down === 'suspect' || state[c.node] === 'suspect') cls = 'suspect'
    const li = el('li', { className: 'col ' + cls, title: cls },
      el('strong', { textContent: 'column ' + c.column }), el('span', { textContent: cls }),
      el('span', { className: 'fid', textContent: c.node.slice(0, 13) + '…' }))
    li.dataset.column = c.column
    list.append(li)
  }
}

async function loadSpace () {
  const ts = await (await api('/console/space')).json()
  const list = $('#territories')
  list.replaceChildren()
  $('#space-empty').hidden = ts.length > 0
  for (const t of ts) {
    const total = t.total_bytes || 1
    const free = Math.max(0, t.total_bytes - t.used_bytes - t.locked_bytes)
    const part = (cls, n) => {
      const d = el('span', { className: 'seg ' + cls, title: cls + ': ' + bytes(n) })
      d.style.width = (100 * n / total) + '%'
      return d
    }
    const bar = el('div', { className: 'bar', role: 'img' }, part('used', t.used_bytes), part('locked', t.locked_bytes))
    bar.setAttribute('aria-label', bytes(t.used_bytes) + ' used, ' + bytes(t.locked_bytes) + ' locked, ' + bytes(free) + ' free of ' + bytes(t.total_bytes))
    const expires = new Date(t.expires * 1000)
    const li = el('li', {},
      el('h3', { textContent: t.name }), bar,
      el('p', { textContent: bytes(t.used_bytes) + ' used, ' + bytes(t.locked_bytes) + ' locked, ' + bytes(free) + ' free of ' + bytes(t.total_bytes) +
        (expires > new Date() ? '; expires ' : '; expired ') + expires.toISOString().slice(0, 10) }))
    li.dataset.territory = t.name
    list.append(li)
  }
}

// filesGen counts the list's loads: each row says which load drew it.
let filesGen = 0

async function loadFiles () {
  const gen = ++filesGen
  const files = await (await api('/files/' + me.account)).json()
  if (gen !== filesGen) return // a later load is under way
  const body = $('#files tbody')
  body.replaceChildren()
  $('#files-empty').hidden = files.length > 0
  for (const f of files) {
    const del = el('button', { type: 'button', className: 'delete', textContent: 'Delete' })
    del.addEventListener('click', async () => {
      if (del.dataset.armed !== '1') { del.dataset.armed = '1'; del.textContent = 'Confirm delete'; return }
      del.disabled = true
      try { await api('/file/' + f.fid, { method: 'DELETE' }); loadFiles() } catch (e) { del.textContent = 'Failed: ' + e.message }
    })
    const link = el('a', { href: '/file/download/' + f.fid, download: f.name, className: 'download', textContent: 'Download' })
    // A private file is read with the console's session only through a
    // short share link: a navigation carries the cookie but not the
    // console header, so the plain link would be refused.
    if (f.private) {
      link.addEventListener('click', async (e) => {
        if (link.dataset.shared === '1') return
        e.preventDefault()
        try {
          link.href = await shareURL(f.fid, '5m')
          link.dataset.shared = '1'
          link.click() // the link's own download, with the link in place
          link.dataset.shared = '' // the next click asks again: this one lasts 5 minutes
        } catch (err) { link.textContent = 'Failed: ' + err.message }
      })
    }
    const share = el('button', { type: 'button', className: 'share', textContent: 'Share' })
    share.addEventListener('click', async () => {
      share.disabled = true
      try {
        const url = await shareURL(f.fid, '24h')
        const out = el('input', { className: 'share-url', readOnly: true, value: url })
        out.setAttribute('aria-label', 'share link to ' + f.name + ', good for 24 hours')
        const td = el('td', {}, el('span', { textContent: 'Share link, good for 24 hours: ' }), out)
        td.colSpan = 7
        row.after(el('tr', { className: 'share-row' }, td))
        share.textContent = 'Shared'
        out.select()
      } catch (err) { share.textContent = 'Failed: ' + err.message; share.disabled = false }
    })
    const row = el('tr', {},
      el('td', {}, el('a', { href: '#file/' + f.fid, className: 'name', textContent: f.name }), el('div', { className: 'fid', textContent: f.fid })),
      el('td', { textContent: bytes(f.size) }),
      el('td', { className: 'state-' + f.state, textContent: f.state }),
      el('td', { textContent: f.territory }),
      el('td', { textContent: f.packed ? 'yes' : '' }),
      el('td', { textContent: f.private ? 'private' : 'public' }),
      el('td', {}, link, ' ', share, ' ', del))
    row.dataset.fid = f.fid
    row.dataset.name = f.name
    row.dataset.gen = gen
    body.append(row)
  }
}

// shareURL asks the gateway for a link that reads fid without a key for d
// (it signs it for this account; revoking the gateway revokes it).
async function shareURL (fid, d) {
  const r = await (await api('/console/share/' + fid + '?for=' + d, { method: 'POST' })).json()
  return new URL(r.url, location.href).href
}

async function loadChain () {
  const c = await (await api('/console/chain')).json()
  $('#chain-height').textContent = 'height ' + c.height
  const body = $('#blocks tbody')
  body.replaceChildren()
  for (const b of c.blocks) {
    body.append(el('tr', {}, el('td', { textContent: String(b.height) }), el('td', { textContent: new Date(b.time).toISOString().replace('T', ' ').slice(0, 19) }),
      el('td', { textContent: String(b.txs) })))
  }
}

// The repair picture: files by how many of their 12 columns are healthy
// (a bar each), the queue of orders and the time it would take.
async function loadRepair () {
  const st = await (await api('/repair/status')).json()
  const hist = $('#health')
  hist.replaceChildren()
  const most = Math.max(1, ...st.health.map((h) => h.files))
  st.health.forEach((h, healthy) => {
    const bar = el('span', { className: 'hbar' })
    bar.style.width = (100 * h.files / most) + '%'
    const li = el('li', {}, el('span', { className: 'hlabel', textContent: healthy + ' healthy' }), bar,
      el('span', { textContent: h.files + ' files, ' + bytes(h.bytes) }))
    li.dataset.healthy = healthy
    li.dataset.files = h.files
    hist.append(li)
  })
  const queue = $('#queue tbody')
  queue.replaceChildren()
  st.queue.forEach((q, healthy) => {
    if (q.orders === 0) return
    const tr = el('tr', {}, el('td', { textContent: String(healthy) }), el('td', { textContent: String(q.orders) }),
      el('td', { textContent: bytes(q.bytes) }), el('td', { textContent: String(q.eligible) }))
    tr.dataset.healthy = healthy
    queue.append(tr)
  })
  const orders = st.queue.reduce((n, q) => n + q.orders, 0)
  $('#queue').hidden = orders === 0
  $('#queue-empty').hidden = orders !== 0
  $('#repair-summary').textContent = orders === 0 && st.claims === 0
    ? 'Nothing to repair.'
    : orders + ' repair orders queued, ' + st.claims + ' being rebuilt; ' +
      (st.eta_seconds >= 0 ? 'about ' + st.eta_seconds + ' s to clear at ' + bytes(st.rate_bytes_per_second) + '/s' : 'no repair rate measured yet')
}

async function loadNodes () {
  loadChain()
  loadRepair()
  const nodes = await (await api('/nodes')).json()
  const body = $('#nodes tbody')
  body.replaceChildren()
  $('#nodes-count').textContent = nodes.length + ' storage nodes'
  for (const n of nodes) {
    body.append(el('tr', {},
      el('td', { className: 'fid', textContent: n.address }),
      el('td', { textContent: n.state }),
      el('td', { textContent: n.score.toFixed(2) }),
      el('td', { textContent: bytes(n.used) + ' of ' + bytes(n.capacity) }),
      el('td', { textContent: n.proofs_passed + ' passed, ' + n.proofs_missed + ' missed' }),
      el('td', { textContent: String(n.stake) }),
      el('td', { textContent: n.cooldown_until || '' })))
  }
}

// --- uploads (tus)

function b64 (s) {
  const b = new TextEncoder().encode(s)
  let t = ''
  for (const c of b) t += String.fromCharCode(c)
  return btoa(t)
}

function patch (url, offset, blob, progress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest()
    x.open('PATCH', url)
    x.setRequestHeader('Tus-Resumable', '1.0.0')
    x.setRequestHeader('Upload-Offset', String(offset))
    x.setRequestHeader('Content-Type', 'application/offset+octet-stream')
    for (const k in H) x.setRequestHeader(k, H[k])
    x.upload.onprogress = (e) => progress(e.loaded)
    x.onload = () => x.status === 204 ? resolve(x) : reject(new Error('PATCH: ' + x.status + ' ' + x.responseText))
    x.onerror = () => reject(new Error('the connection broke'))
    x.send(blob)
  })
}

// tusUpload sends file with tus, resuming an upload this browser began
// (its URL is kept in localStorage); on.acked(offset, resumed) is told each
// offset the gateway confirmed, on.progress(bytes) the bytes sent so far.
async function tusUpload (file, territory, priv, on) {
  const key = 'tus:' + [file.name, file.size, file.lastModified, territory, priv].join(':')
  const tus = { 'Tus-Resumable': '1.0.0' }
  let url = localStorage.getItem(key)
  let offset = 0
  if (url) {
    try {
      const r = await api(url, { method: 'HEAD', headers: tus })
      offset = Number(r.headers.get('Upload-Offset'))
    } catch (_) { url = null }
  }
  if (!url) {
    const r = await api('/tus/', {
      method: 'POST',
      headers: { ...tus, 'Upload-Length': String(file.size), 'Upload-Metadata': 'filename ' + b64(file.name) + ',territory ' + b64(territory) + ',private ' + b64(String(priv)) },
    })
    url = new URL(r.headers.get('Location'), location.href).pathname
    localStorage.setItem(key, url)
  }
  let fid = ''
  const chunk = 4 << 20
  on.acked(offset, offset > 0)
  on.progress(offset)
  while (offset < file.size) {
    const at = offset
    const x = await patch(url, at, file.slice(at, Math.min(at + chunk, file.size)), (sent) => on.progress(at + sent))
    offset = Number(x.getResponseHeader('Upload-Offset'))
    fid = x.getResponseHeader('Deoss-Fid') || fid
    on.acked(offset, false)
  }
  localStorage.removeItem(key)
  return fid
}

function startUpload (file) {
  const bar = el('progress', { max: file.size || 1, value: 0 })
  const pct = el('span', { className: 'pct', textContent: '0%' })
  const info = el('span', { className: 'info' })
  const resumed = el('span', { className: 'resumed' })
  const li = el('li', {}, el('div', { textContent: file.name + ' (' + bytes(file.size) + ') ' }, pct, ' ', info, ' ', resumed), bar)
  li.dataset.name = file.name
  $('#uploads').append(li)
  const start = Date.now()
  let first = -1
  tusUpload(file, $('#territory').value, $('#private').checked, {
    acked (offset, isResume) {
      li.dataset.offset = offset
      if (isResume) {
        li.dataset.resumed = offset
        resumed.textContent = '(resumed at ' + bytes(offset) + ')'
      }
    },
    progress (done) {
      if (first < 0) first = done
      bar.value = done
      pct.textContent = Math.floor(100 * done / (file.size || 1)) + '%'
      const secs = (Date.now() - start) / 1000
      const rate = (done - first) / Math.max(secs, 0.001)
      const eta = rate > 0 ? Math.ceil((file.size - done) / rate) : 0
      info.textContent = bytes(rate) + '/s, ' + eta + ' s left'
    },
  }).then((fid) => {
    pct.textContent = '100%'
    info.textContent = 'stored as ' + fid
    li.dataset.fid = fid
    li.classList.add('done')
  }, (e) => {
    info.textContent = 'failed: ' + e.message + ' (pick the file again to resume)'
    info.className = 'error'
  })
}

function wireUploads () {
  const input = $('#file')
  input.addEventListener('change', () => { for (const f of input.files) startUpload(f); input.value = '' })
  const drop = $('#drop')
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over') })
  drop.addEventListener('dragleave', () => drop.classList.remove('over'))
  drop.addEventListener('drop', (e) => {
    e.preventDefault()
    drop.classList.remove('over')
    for (const f of e.dataTransfer.files) startUpload(f)
  })
}

// --- start

async function main () {
  try {
    me = await (await api('/console/me')).json()
  } catch (_) {
    $('#signed-out').hidden = false
    for (const p of pages) $('#page-' + p).hidden = true
    return
  }
  $('#account').textContent = me.account
  $('#signout').addEventListener('click', async () => {
    await api('/console/signout', { method: 'POST' })
    location.reload()
  })
  wireUploads()
  window.addEventListener('hashchange', show)
  show()
  document.body.dataset.ready = '1'
}

main()
