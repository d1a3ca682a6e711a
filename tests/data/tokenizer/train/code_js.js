// debounce.js: small helpers for a web page.
'use strict';

export function debounce(fn, wait = 100) {
  let timer = null;
  return function (...args) {
    clearTimeout(timer);
    timer = setTimeout(() => fn.apply(this, args), wait);
  };
}

export function throttle(fn, interval = 250) {
  let last = 0;
  return (...args) => {
    const now = Date.now();
    if (now - last >= interval) {
      last = now;
      return fn(...args);
    }
    return undefined;
  };
}

export async function fetchJson(url, { retries = 3, timeoutMs = 5000 } = {}) {
  for (let attempt = 1; attempt <= retries; attempt++) {
    const controller = new AbortController();
    const id = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const res = await fetch(url, { signal: controller.signal });
      if (!res.ok) throw new Error(`HTTP ${res.status} for ${url}`);
      return await res.json();
    } catch (err) {
      if (attempt === retries) throw err;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    } finally {
      clearTimeout(id);
    }
  }
  return null;
}

const escapeMap = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => escapeMap[c]);

export function renderList(items) {
  if (!Array.isArray(items) || items.length === 0) return '<p class="empty">Nothing here.</p>';
  const rows = items.map((it, i) => `<li data-index="${i}">${escapeHtml(it.label)}</li>`);
  return `<ul class="list">\n${rows.join('\n')}\n</ul>`;
}

export class EventBus {
  constructor() {
    this.handlers = new Map();
  }
  on(name, handler) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(handler);
    return () => this.handlers.get(name)?.delete(handler);
  }
  emit(name, payload) {
    for (const h of this.handlers.get(name) ?? []) {
      try {
        h(payload);
      } catch (e) {
        console.error(`handler for ${name} failed:`, e);
      }
    }
  }
}
