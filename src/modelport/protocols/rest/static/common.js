// Shared by the pages: the bearer token (entered once, kept for this browser tab) and small DOM helpers.
'use strict';
const TOKEN_KEY = 'modelport.token';

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

function authHeaders(extra) {
  const headers = Object.assign({}, extra || {});
  if (token()) headers.authorization = 'Bearer ' + token();
  return headers;
}

// Build an element; text goes through textContent only, never innerHTML, so names cannot inject markup.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svgEl(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

async function getJSON(path) {
  const r = await fetch(path, {headers: authHeaders()});
  let body = null;
  try { body = await r.json(); } catch (e) { body = {error: 'the server answered ' + r.status + ' without JSON'}; }
  if (!r.ok) {
    const err = new Error((body && body.error) || ('HTTP ' + r.status));
    err.status = r.status;
    throw err;
  }
  return body;
}

function showStatus(text, bad) {
  const s = document.getElementById('status');
  s.textContent = text || '';
  s.className = bad ? 'error' : 'muted';
}

function setupToken(onChange) {
  const input = document.getElementById('token');
  input.value = token();
  document.getElementById('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    else sessionStorage.removeItem(TOKEN_KEY);
    onChange();
  });
}

function fmt(v) {
  if (typeof v !== 'number') return String(v);
  if (!isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(Math.round(v * 1e4) / 1e4);
}
