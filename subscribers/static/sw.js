/* ticker: the push service worker, served at /sw.js (scope "/").
 *
 * push                    -> show the alert ({"title","body","url","icon","image","tag","alert"})
 *                            and report a "shown" receipt, once per alert id: delivery is
 *                            at-least-once (a crash mid-send sends a batch again), so a
 *                            second copy of an alert already shown is dropped
 * notificationclick       -> focus a tab already on the alert's url, or open one; "clicked"
 * pushsubscriptionchange  -> subscribe again and hand the server the new subscription along
 *                            with "oldEndpoint", so it replaces the old row
 *
 * The server fills SERVER_CONFIG in when it serves this file.
 */
"use strict";

const SERVER_CONFIG = {} /* @ticker-config */;
const config = Object.assign({
  siteName: "Newsroom",
  eventsUrl: "/api/push/events",
  vapidKeyUrl: "/api/push/vapid-public-key",
  subscriptionsUrl: "/api/push/subscriptions",
}, SERVER_CONFIG);

const PREFS_CACHE = "ticker-push";
// Alert ids already shown, in IndexedDB (it survives the worker being stopped between
// pushes). Bounded: a second copy arrives within minutes, so the last SHOWN_KEEP ids do.
const SHOWN_DB = "ticker-push";
const SHOWN_STORE = "shown";
const SHOWN_KEEP = 200;
const PREFS_URL = new URL("/__ticker-push/prefs", self.location.origin).href;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

/** The payload as an object; anything unreadable becomes {} (a generic notification). */
function readPayload(data) {
  if (!data) return {};
  try {
    const value = data.json();
    return value && typeof value === "object" && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

function text(value) {
  return typeof value === "string" && value.trim() ? value : undefined;
}

/** Only http(s) addresses; relative ones are resolved against this site. */
function safeUrl(value, fallback) {
  const given = text(value) || fallback;
  if (!given) return undefined;
  try {
    const url = new URL(given, self.location.origin);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}

function receipt(alert, event) {
  if (alert === undefined || alert === null || alert === "") return Promise.resolve();
  // A lost receipt only makes a count low; it must never stop the notification.
  return fetch(config.eventsUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ alert, event }),
    keepalive: true,
  }).catch(() => {});
}

function openShown() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(SHOWN_DB, 1);
    req.onupgradeneeded = () => {
      // Keyed by alert id; "seq" orders them so the oldest are dropped first.
      const store = req.result.createObjectStore(SHOWN_STORE, { keyPath: "alert" });
      store.createIndex("seq", "seq");
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Records `alert` as shown; false when it already was. One readwrite transaction: two
 *  copies handled at once are serialised by IndexedDB, so only one of them wins. */
async function firstTimeShown(alert) {
  const db = await openShown();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(SHOWN_STORE, "readwrite");
      const store = tx.objectStore(SHOWN_STORE);
      let first = false;
      store.get(alert).onsuccess = (e) => {
        if (e.target.result) return;
        first = true;
        store.put({ alert, seq: Date.now() + Math.random() });
        store.count().onsuccess = (c) => {
          let extra = c.target.result - SHOWN_KEEP;
          if (extra <= 0) return;
          store.index("seq").openCursor().onsuccess = (cur) => {
            const cursor = cur.target.result;
            if (!cursor || extra-- <= 0) return;
            cursor.delete();
            cursor.continue();
          };
        };
      };
      tx.oncomplete = () => resolve(first);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

function alertId(value) {
  return (typeof value === "number" && Number.isSafeInteger(value) && value > 0)
    || (typeof value === "string" && /^[0-9]{1,16}$/.test(value)) ? String(value) : null;
}

async function showOnce(p, title, options) {
  const id = alertId(p.alert);
  if (id !== null) {
    let first = true;
    // Without IndexedDB (a private window may refuse it) showing twice beats showing none.
    try { first = await firstTimeShown(id); } catch { first = true; }
    // A dropped copy shows nothing. Chromium tolerates that now and then (a budget of silent
    // pushes; past it, it shows its own "updated in the background" notice), and copies are
    // rare: at most the in-flight window of a send that a crash interrupted.
    if (!first) return;
  }
  await self.registration.showNotification(title, options);
  // "shown" only once the browser has accepted the notification.
  await receipt(p.alert, "shown");
}

self.addEventListener("push", (event) => {
  const p = readPayload(event.data);
  // A push that shows nothing is penalised by browsers, so a broken payload still shows one.
  const title = text(p.title) || config.siteName;
  const id = alertId(p.alert);
  // One notification per alert: its own tag (a story's updates replace each other), else
  // one made from its id, so even a copy that slipped past the record replaces the first.
  const tag = text(p.tag) || (id !== null ? `alert-${id}` : undefined);
  const options = {
    body: text(p.body) || (text(p.title) ? undefined : "There is news: open to read it."),
    icon: safeUrl(p.icon),
    image: safeUrl(p.image),
    tag,
    renotify: Boolean(tag),
    data: { url: safeUrl(p.url, "/"), alert: p.alert === undefined ? null : p.alert },
  };
  event.waitUntil(showOnce(p, title, options));
});

async function focusOrOpen(url) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((client) => client.url === url && "focus" in client);
  if (open) return open.focus();
  return self.clients.openWindow ? self.clients.openWindow(url) : undefined;
}

self.addEventListener("notificationclick", (event) => {
  const data = event.notification.data || {};
  event.notification.close();
  event.waitUntil(Promise.all([
    focusOrOpen(data.url || new URL("/", self.location.origin).href).catch(() => {}),
    receipt(data.alert, "clicked"),
  ]));
});

function base64UrlToBytes(value) {
  const b64 = value.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function bytesToBase64Url(buffer) {
  let raw = "";
  new Uint8Array(buffer).forEach((b) => { raw += String.fromCharCode(b); });
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function storedPrefs() {
  try {
    const res = await (await caches.open(PREFS_CACHE)).match(PREFS_URL);
    return res ? await res.json() : {};
  } catch {
    return {};
  }
}

async function resubscribe(event) {
  const old = event.oldSubscription;
  let publicKey = null;
  try {
    const res = await fetch(config.vapidKeyUrl);
    if (res.ok) publicKey = (await res.json()).publicKey;
  } catch { /* fall back to the key the old subscription used */ }
  if (!publicKey && old && old.options.applicationServerKey) {
    publicKey = bytesToBase64Url(old.options.applicationServerKey);
  }
  let sub = event.newSubscription;
  if (!sub) {
    if (!publicKey) return;
    sub = await self.registration.pushManager.subscribe({
      userVisibleOnly: true, applicationServerKey: base64UrlToBytes(publicKey),
    });
  }
  const prefs = await storedPrefs();
  const body = {
    subscription: sub.toJSON(),
    language: prefs.language || self.navigator.language,
    timezone: prefs.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    vapidKey: publicKey,
    oldEndpoint: old ? old.endpoint : null,
    // The old auth secret proves the replacement comes from the subscriber itself (the same
    // proof DELETE asks for); without it the server keeps the old row until its push
    // service answers 404/410 for it.
    oldAuth: old && old.toJSON().keys ? old.toJSON().keys.auth : null,
  };
  // Without stored topics the server keeps those of the row that oldEndpoint names.
  if (Array.isArray(prefs.topics)) body.topics = prefs.topics;
  await fetch(config.subscriptionsUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

self.addEventListener("pushsubscriptionchange", (event) => {
  event.waitUntil(resubscribe(event).catch(() => {}));
});
