// router.js — path-based routing with the History API. The server answers
// the app's paths (/, /experiments..., /runs/..., /compare..., /models...)
// with index.html (server/ui_static.c), so deep links and reloads work.
import { useEffect, useState } from 'preact/hooks';

const listeners = new Set();

export function navigate(url, { replace = false } = {}) {
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((f) => f());
}

// Changes query parameters of the current URL (null removes one).
export function setQuery(changes, opts = { replace: true }) {
  const u = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') u.delete(k);
    else u.set(k, v);
  }
  const s = u.toString();
  navigate(location.pathname + (s ? '?' + s : ''), opts);
}

export function useLocation() {
  const [, tick] = useState(0);
  useEffect(() => {
    const f = () => tick((n) => n + 1);
    listeners.add(f);
    addEventListener('popstate', f);
    return () => {
      listeners.delete(f);
      removeEventListener('popstate', f);
    };
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

// Same-origin links are handled here instead of by a page load.
export function interceptLinks(root) {
  root.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download') || e.button !== 0) return;
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const href = a.getAttribute('href');
    if (!href.startsWith('/') || href.startsWith('//') || href.startsWith('/get-artifact') ||
        href.startsWith('/api/') || href.startsWith('/ajax-api/')) return;
    e.preventDefault();
    navigate(href);
  });
}
